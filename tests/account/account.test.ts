/**
 * "Connected apps" (`/account`) over HTTP, with the scripted user agent: sign-in through the
 * gateway's own login (the built-in account client), the listing, and revocation with its
 * guards (session, CSRF token, Origin, ownership) and its effect (refresh refused, `/verify`
 * refuses the grant's access tokens at once; on two replicas sharing Redis, within the
 * revocation poll interval).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { pollUntil } from '../helpers/poll.js';
import {
  devLogin,
  LOOPBACK_REDIRECT,
  pkcePair,
  redeemCode,
  registerClient,
  tokenRequest,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { TestUserAgent, type FlowResult } from '../helpers/user-agent.js';
import { ACCOUNT_CLIENT_ID } from '../../src/oauth/constants.js';
import { accountGrantsKey, clientGrantsKey, grantUseKey } from '../../src/store/keys.js';

const RESOURCE = 'http://localhost:3999/mcp';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

const never = () => false;

interface ListedApp {
  clientId: string;
  /** The section's markup, as sent. */
  html: string;
  /** The `<h2>`, entities left as sent. */
  rawName: string;
}

/** The connected apps listed on an `/account` page. */
function listedApps(body: string): ListedApp[] {
  return [
    ...body.matchAll(/<section class="app" data-client="([^"]+)">([\s\S]*?)<\/section>/g),
  ].map((match) => ({
    clientId: match[1]!.replace(/&amp;/g, '&'),
    html: match[2]!,
    rawName: /<h2>([\s\S]*?)<\/h2>/.exec(match[2]!)?.[1] ?? '',
  }));
}

const listedClients = (body: string) => listedApps(body).map((app) => app.clientId);

function csrfToken(body: string): string {
  const token = /<input type="hidden" name="csrf" value="([^"]+)"/.exec(body)?.[1];
  if (!token) throw new Error(`no CSRF token on page: ${body.slice(0, 300)}`);
  return token;
}

/** `<dt>term</dt><dd>value</dd>` of a section, tags (and line-break hints) stripped. */
function definition(html: string, term: string): string | undefined {
  const match = new RegExp(`<dt>${term}</dt>\\s*<dd>([\\s\\S]*?)</dd>`).exec(html);
  return match?.[1]!
    .replace(/<[^>]+>/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

describe('connected apps (/account)', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw?.stop());

  const verify = async (accessToken: string, base = gw.url) =>
    (
      await fetch(`${base}/verify`, {
        headers: {
          authorization: `Bearer ${accessToken}`,
          'x-forwarded-proto': 'http',
          'x-forwarded-host': 'localhost:3999',
          'x-forwarded-uri': '/mcp',
          'x-forwarded-method': 'GET',
        },
      })
    ).status;

  const refresh = (refreshToken: string, clientId: string, base = gw.url) =>
    tokenRequest(base, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: clientId,
    });

  /**
   * A user (in `agent`'s browser) authorizes a newly registered client, or `existing`, and it
   * gets tokens.
   */
  async function connectApp(
    agent: TestUserAgent,
    user: string,
    clientName: string,
    options: { existing?: RegisteredClient; scope?: string } = {},
  ) {
    const client = options.existing ?? (await registerClient(gw.url, { client_name: clientName }));
    const { verifier, challenge } = pkcePair();
    const flow = await devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      scope: options.scope,
      codeChallenge: challenge,
      agent,
      user,
    });
    const code = flow.url.searchParams.get('code');
    if (!code) throw new Error(`no code: ${flow.url.href} ${flow.body.slice(0, 300)}`);
    const token = await redeemCode(gw.url, {
      code: code,
      verifier,
      clientId: client.client_id,
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    return {
      client,
      accessToken: String(token.body.access_token),
      refreshToken: String(token.body.refresh_token),
      pagesSeen: flow.pagesSeen,
    };
  }

  /** `/account` in `agent`'s browser, signing in first when it has no session. */
  async function openAccount(agent: TestUserAgent, user = ALICE): Promise<FlowResult> {
    let page = await agent.follow(`${gw.url}/account`, never);
    if (page.body.includes('Development sign-in')) {
      page = await agent.submit(page, { name: 'email', value: user }, never);
    }
    expect(page.status).toBe(200);
    expect(page.url.pathname).toBe('/account');
    return page;
  }

  /** Waits until `/account` shows `clientId` with a last use (recorded off the request path). */
  async function openAccountOnceUsed(agent: TestUserAgent, clientId: string) {
    const { value: page } = await pollUntil(
      () => openAccount(agent),
      (shown) => {
        const app = listedApps(shown.body).find((candidate) => candidate.clientId === clientId);
        return app !== undefined && definition(app.html, 'Last use') !== 'never';
      },
      { what: `/account to show a last use of ${clientId}`, timeoutMs: 5000 },
    );
    return page;
  }

  function post(
    agent: TestUserAgent,
    path: string,
    fields: Record<string, string>,
    origin?: string,
  ) {
    return agent.follow(new URL(path, gw.url), never, {
      method: 'POST',
      body: new URLSearchParams(fields),
      ...(origin === undefined ? {} : { origin }),
    });
  }

  const grantOf = (accessToken: string) =>
    JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()).gid as string;

  it('signs in through the gateway login (account client, PKCE, no consent) and redeems the code', async () => {
    const agent = new TestUserAgent();
    const start = await agent.follow(`${gw.url}/account`, never);
    // /account → /authorize for the account client → the dev login page.
    const [first, second] = start.hops;
    expect(first!.status).toBe(303);
    const authorize = new URL(first!.location!, gw.url);
    expect(authorize.pathname).toBe('/authorize');
    expect(Object.fromEntries(authorize.searchParams)).toEqual({
      response_type: 'code',
      client_id: ACCOUNT_CLIENT_ID,
      redirect_uri: `${gw.url}/account/callback`,
      scope: 'openid',
      state: expect.stringMatching(/^[\w-]{32}$/),
      code_challenge: expect.stringMatching(/^[\w-]{43}$/),
      code_challenge_method: 'S256',
    });
    expect(second!.url).toBe(authorize.href);
    // The state and the PKCE verifier, in a cookie: HttpOnly, SameSite=Lax, only for /account.
    const [stateCookie] = await agent.jar.getCookies(`${gw.url}/account/callback`);
    expect(stateCookie).toMatchObject({
      key: 'mcpgw_account_login',
      path: '/account',
      httpOnly: true,
      sameSite: 'lax',
    });
    const [state, verifier] = stateCookie!.value.split('.');
    expect(state).toBe(authorize.searchParams.get('state'));
    expect(createHash('sha256').update(verifier!).digest('base64url')).toBe(
      authorize.searchParams.get('code_challenge'),
    );
    const elsewhere = await agent.jar.getCookies(`${gw.url}/authorize`);
    expect(elsewhere.map((cookie) => cookie.key)).not.toContain('mcpgw_account_login');
    expect(start.body).toContain('Development sign-in');

    const page = await agent.submit(start, { name: 'email', value: ALICE }, never);
    expect(page.status).toBe(200);
    expect(page.url.href).toBe(`${gw.url}/account`);
    expect(page.body).toContain('Connected apps');
    expect(page.body).toContain(`Signed in as <strong>${ALICE}</strong>`);
    expect(page.body).toContain('No application holds access');
    // No consent page for the gateway's own client: straight from the login to the callback.
    const paths = page.hops.map((hop) => new URL(hop.url).pathname.replace(/[^/]{16,}/g, ':id'));
    expect(paths).toEqual([
      '/interaction/:id/login/dev',
      '/authorize/:id',
      '/interaction/:id',
      '/authorize/:id',
      '/account/callback',
      '/account',
    ]);
    // The code was redeemed (not left unused), and cannot be used again.
    const callback = new URL(page.hops.at(-2)!.url);
    expect(callback.searchParams.get('iss')).toBe(gw.url);
    const code = callback.searchParams.get('code')!;
    const stored = await gw.gateway.provider.AuthorizationCode.find(code);
    expect((stored as unknown as { consumed?: unknown } | undefined)?.consumed).toEqual(
      expect.any(Number),
    );
    const replay = await agent.follow(callback, never);
    expect(replay.status).toBe(400);
    // oidc-provider's session cookie is sent to /account (path /).
    const cookies = await agent.jar.getCookies(`${gw.url}/account`);
    expect(cookies.map((cookie) => cookie.key)).toContain('mcpgw_session');
    expect(cookies.find((cookie) => cookie.key === 'mcpgw_session')).toMatchObject({
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
    });
    // The account client's own grant is no connected app, and is in no index.
    expect(await gw.gateway.store.setMembers(clientGrantsKey(ACCOUNT_CLIENT_ID))).toEqual([]);
    expect(await gw.gateway.store.setMembers(accountGrantsKey(`dev:${ALICE}`))).toEqual([]);
  });

  it('sends pages with anti-framing, no-store and the other security headers', async () => {
    const agent = new TestUserAgent();
    await openAccount(agent);
    const response = await fetch(`${gw.url}/account`, {
      headers: { cookie: await agent.jar.getCookieString(`${gw.url}/account`) },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    );
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await response.text()).not.toMatch(/<script/i);
  });

  it('refuses a callback without the browser’s state, and the account client any resource', async () => {
    const agent = new TestUserAgent();
    const start = await agent.follow(`${gw.url}/account`, never);
    const state = new URL(start.hops[0]!.location!, gw.url).searchParams.get('state')!;
    // Another browser (no state cookie) arriving with this state.
    const stranger = await new TestUserAgent().follow(
      `${gw.url}/account/callback?state=${state}&code=x&iss=${encodeURIComponent(gw.url)}`,
      never,
    );
    expect(stranger.status).toBe(400);
    expect(stranger.body).toContain('Sign-in expired');

    // The account client asking for an MCP server: refused by the authorization server.
    const { challenge } = pkcePair();
    const url = new URL(`${gw.url}/authorize`);
    for (const [key, value] of Object.entries({
      response_type: 'code',
      client_id: ACCOUNT_CLIENT_ID,
      redirect_uri: `${gw.url}/account/callback`,
      scope: 'openid mcp:tools',
      resource: RESOURCE,
      state: 's',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }))
      url.searchParams.set(key, value);
    const refused = await new TestUserAgent().follow(url, (target) =>
      target.pathname.startsWith('/account/callback'),
    );
    expect(refused.url.searchParams.get('error')).toBe('invalid_target');
    expect(refused.url.searchParams.get('code')).toBeNull();

    // Its code goes to the gateway's callback only: not to another loopback port (where the
    // port rule would let any MCP client's go), as no consent page stands in the way.
    const signedIn = new TestUserAgent();
    await openAccount(signedIn);
    url.searchParams.delete('resource');
    url.searchParams.set('scope', 'openid');
    const elsewhere = `http://localhost:${Number(new URL(gw.url).port) + 1}/account/callback`;
    url.searchParams.set('redirect_uri', elsewhere);
    const diverted = await signedIn.follow(url, (target) => target.href.startsWith(elsewhere));
    expect(diverted.status).toBe(400);
    expect(diverted.body).toContain('redirect_uri');
    // The same request with the gateway's own callback does go through, silently.
    url.searchParams.set('redirect_uri', `${gw.url}/account/callback`);
    const own = await signedIn.follow(url, (target) => target.pathname === '/account/callback');
    expect(own.url.searchParams.get('code')).toEqual(expect.any(String));
  });

  it('refuses a callback with a planted cookie and someone else’s code (login CSRF)', async () => {
    // The attacker signs in as Bob and stops before the callback: code, state and cookie.
    const attacker = new TestUserAgent();
    const start = await attacker.follow(`${gw.url}/account`, never);
    const stopped = await attacker.submit(start, { name: 'email', value: BOB }, (url) =>
      url.pathname.startsWith('/account/callback'),
    );
    const callback = stopped.url;
    expect(callback.searchParams.get('code')).toEqual(expect.any(String));
    const [planted] = await attacker.jar.getCookies(`${gw.url}/account/callback`);

    // Alice's browser, signed in, with the attacker's cookie planted (e.g. by a sibling host).
    const alice = new TestUserAgent();
    await openAccount(alice);
    await alice.jar.setCookie(`${planted!.key}=${planted!.value}; Path=/account`, gw.url);
    const refused = await alice.follow(callback, never);
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('This browser is not signed in as that user');
    // And the code is spent: the attacker cannot finish with it either.
    await attacker.jar.setCookie(`${planted!.key}=${planted!.value}; Path=/account`, gw.url);
    expect((await attacker.follow(callback, never)).status).toBe(400);
    // Alice is still herself.
    expect((await openAccount(alice)).body).toContain(`Signed in as <strong>${ALICE}</strong>`);
  });

  it('lists the user’s own grants: client name (escaped), host, kind, resources, scopes, first and last use', async () => {
    const alice = new TestUserAgent();
    const bob = new TestUserAgent();
    const name = `Alice's <b>agent</b> & co`;
    const app = await connectApp(alice, ALICE, name);
    expect(app.pagesSeen).toEqual(['login', 'consent']);
    const bobsApp = await connectApp(bob, BOB, 'Bob agent');
    const clientId = app.client.client_id;

    const page = await openAccountOnceUsed(alice, clientId);
    const apps = listedApps(page.body);
    const listed = apps.find((candidate) => candidate.clientId === clientId)!;
    expect(listed).toBeDefined();
    expect(listedClients(page.body)).not.toContain(bobsApp.client.client_id);
    expect(page.body).not.toContain('Bob agent');
    expect(listed.rawName).toBe('Alice&#39;s &lt;b&gt;agent&lt;/b&gt; &amp; co');
    expect(page.body).not.toContain('<b>agent</b>');
    expect(definition(listed.html, 'Host')).toBe('127.0.0.1:8976');
    expect(definition(listed.html, 'Kind')).toBe('Registered itself (dynamic client registration)');
    expect(definition(listed.html, 'Client ID')).toBe(app.client.client_id);
    expect(definition(listed.html, 'Access')).toBe(`Test MCP ${RESOURCE} with scopes mcp:tools`);
    // One grant: no count shown.
    expect(definition(listed.html, 'Authorizations')).toBeUndefined();
    const now = Date.now();
    for (const term of ['First use', 'Last use']) {
      const shown = definition(listed.html, term)!;
      expect(shown).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
      const at = Date.parse(`${shown.replace(' UTC', '').replace(' ', 'T')}:00Z`);
      expect(Math.abs(now - at)).toBeLessThan(2 * 60_000);
    }
    // Bob sees his own, not Alice's.
    const bobsPage = await openAccount(bob, BOB);
    expect(listedClients(bobsPage.body)).toEqual([bobsApp.client.client_id]);
    expect(bobsPage.body).not.toContain('agent</b>');
  });

  it('refuses to revoke an app the user holds no grant of (404, whoever else does), and a form without the CSRF token or from another origin (403)', async () => {
    const alice = new TestUserAgent();
    const bob = new TestUserAgent();
    const app = await connectApp(alice, ALICE, 'Guarded agent');
    const clientId = app.client.client_id;
    const revokePath = '/account/apps/revoke';

    // Bob names Alice's client: he holds no grant of it, so there is nothing of his to revoke.
    const bobsPage = await openAccount(bob, BOB);
    const bobsCsrf = csrfToken(bobsPage.body);
    const idor = await post(bob, revokePath, { csrf: bobsCsrf, client_id: clientId }, gw.url);
    expect(idor.status).toBe(404);
    // The same answer as for a client nobody uses, for the gateway's own client, and without one.
    for (const fields of [
      { client_id: 'no-such-client' },
      { client_id: ACCOUNT_CLIENT_ID },
      {} as Record<string, string>,
    ]) {
      const missing = await post(bob, revokePath, { csrf: bobsCsrf, ...fields }, gw.url);
      expect([fields, missing.status, missing.body]).toEqual([fields, 404, idor.body]);
    }

    const alicesPage = await openAccount(alice);
    const token = csrfToken(alicesPage.body);
    const noToken = await post(alice, revokePath, { client_id: clientId }, gw.url);
    expect(noToken.status).toBe(403);
    const wrongToken = await post(
      alice,
      revokePath,
      { csrf: bobsCsrf, client_id: clientId },
      gw.url,
    );
    expect(wrongToken.status).toBe(403);
    const crossOrigin = await post(
      alice,
      revokePath,
      { csrf: token, client_id: clientId },
      'https://evil.example',
    );
    expect(crossOrigin.status).toBe(403);
    const nullOrigin = await post(alice, revokePath, { csrf: token, client_id: clientId }, 'null');
    expect(nullOrigin.status).toBe(403);
    // The browser's own word (Sec-Fetch-Site) counts too: cross-site is refused whatever the
    // Origin says, and `Origin: null` passes only with `same-origin` (see the browser test).
    const cookie = await alice.jar.getCookieString(`${gw.url}${revokePath}`);
    const withFetchSite = (origin: string, site: string) =>
      fetch(`${gw.url}${revokePath}`, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          cookie,
          origin,
          'sec-fetch-site': site,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ csrf: token, client_id: clientId }),
      }).then((response) => response.status);
    expect(await withFetchSite(gw.url, 'cross-site')).toBe(403);
    expect(await withFetchSite(gw.url, 'same-site')).toBe(403);
    expect(await withFetchSite('null', 'cross-site')).toBe(403);
    expect(
      gw
        .logRecords()
        .filter((line) => line.security_event === 'csrf_failed' && line.subject === `dev:${ALICE}`)
        .length,
    ).toBeGreaterThanOrEqual(7);
    // Without a session (another browser): refused before anything else.
    const signedOut = await post(
      new TestUserAgent(),
      revokePath,
      { csrf: token, client_id: clientId },
      gw.url,
    );
    expect(signedOut.status).toBe(403);

    // Still alive after all that.
    expect(await verify(app.accessToken)).toBe(200);
    const refreshed = await refresh(app.refreshToken, app.client.client_id);
    expect(refreshed.status).toBe(200);
    expect(listedClients((await openAccount(alice)).body)).toContain(clientId);
  });

  it('revokes an app: refresh fails and /verify refuses its access token at once; audited; consent asked again', async () => {
    const agent = new TestUserAgent();
    const app = await connectApp(agent, ALICE, 'Revoked agent');
    const other = await connectApp(agent, ALICE, 'Kept agent');
    const grantId = grantOf(app.accessToken);
    expect(await verify(app.accessToken)).toBe(200);

    const page = await openAccount(agent);
    expect(listedClients(page.body)).toContain(app.client.client_id);
    const revoked = await post(
      agent,
      '/account/apps/revoke',
      { csrf: csrfToken(page.body), client_id: app.client.client_id },
      gw.url,
    );
    // Post/redirect/get: back on the page, which no longer lists it.
    expect(revoked.hops[0]).toMatchObject({ status: 303, location: '/account?done=revoked' });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toContain('Access revoked');
    const listed = listedClients(revoked.body);
    expect(listed).not.toContain(app.client.client_id);
    expect(listed).toContain(other.client.client_id);

    // At once: no waiting for anything.
    expect(await verify(app.accessToken)).toBe(401);
    const refused = await refresh(app.refreshToken, app.client.client_id);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    // The other app is untouched.
    expect(await verify(other.accessToken)).toBe(200);

    // Indexes and use record are gone.
    const store = gw.gateway.store;
    expect(await store.setMembers(accountGrantsKey(`dev:${ALICE}`))).not.toContain(grantId);
    expect(await store.setMembers(clientGrantsKey(app.client.client_id))).toEqual([]);
    expect(await store.get(grantUseKey(grantId))).toBeUndefined();

    // Audit record and log line, naming the user as the actor.
    await gw.gateway.audit!.flush();
    const records = (await store.readChained('audit')).map((entry) => entry.record);
    expect(records).toContainEqual(
      expect.objectContaining({
        kind: 'grant_revoked',
        actor: `user:dev:${ALICE}`,
        reason: 'user',
        subject: `dev:${ALICE}`,
        clientId: app.client.client_id,
        grantId,
      }),
    );
    // (The log scrubs opaque-token-shaped strings, grant ids included: the audit has it.)
    expect(gw.logRecords()).toContainEqual(
      expect.objectContaining({
        event: 'grant_revoked',
        reason: 'user',
        subject: `dev:${ALICE}`,
        clientId: app.client.client_id,
      }),
    );

    // The application must ask again: the consent page, not a silent new grant.
    const again = await devLogin(gw.url, {
      clientId: app.client.client_id,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
      agent,
      decision: 'deny',
    });
    expect(again.pagesSeen).toEqual(['consent']);
  });

  it('lists an app authorized from two browsers once, and its Revoke ends both grants', async () => {
    const laptop = new TestUserAgent();
    const desktop = new TestUserAgent();
    const first = await connectApp(laptop, ALICE, 'Two-browser agent');
    // The same client in another browser session: a second grant, with one more scope.
    const second = await connectApp(desktop, ALICE, 'Two-browser agent', {
      existing: first.client,
      scope: 'mcp:tools email',
    });
    expect(second.pagesSeen).toEqual(['login', 'consent']);
    const clientId = first.client.client_id;
    const grants = [grantOf(first.accessToken), grantOf(second.accessToken)];
    expect(new Set(grants).size).toBe(2);
    const store = gw.gateway.store;
    expect((await store.setMembers(clientGrantsKey(clientId))).sort()).toEqual([...grants].sort());

    const page = await openAccountOnceUsed(laptop, clientId);
    const entries = listedApps(page.body).filter((app) => app.clientId === clientId);
    expect(entries).toHaveLength(1);
    const [entry] = entries;
    expect(entry!.rawName).toBe('Two-browser agent');
    expect(definition(entry!.html, 'Authorizations')).toBe('2, from different browser sessions');
    // What the grants allow together.
    expect(definition(entry!.html, 'Access')).toBe(
      `Test MCP ${RESOURCE} with scopes mcp:tools Your identity: email`,
    );
    // One form, naming the client.
    expect([...entry!.html.matchAll(/<form /g)]).toHaveLength(1);
    expect(entry!.html).toContain(`<input type="hidden" name="client_id" value="${clientId}" />`);

    const revoked = await post(
      laptop,
      '/account/apps/revoke',
      { csrf: csrfToken(page.body), client_id: clientId },
      gw.url,
    );
    expect(revoked.status).toBe(200);
    expect(listedClients(revoked.body)).not.toContain(clientId);
    // Both grants, from both browsers: tokens refused, refreshes fail, indexes emptied.
    for (const app of [first, second]) {
      expect(await verify(app.accessToken)).toBe(401);
      expect((await refresh(app.refreshToken, clientId)).body.error).toBe('invalid_grant');
    }
    expect(await store.setMembers(clientGrantsKey(clientId))).toEqual([]);
    const left = await store.setMembers(accountGrantsKey(`dev:${ALICE}`));
    expect(left.filter((id) => grants.includes(id))).toEqual([]);
    await gw.gateway.audit!.flush();
    const records = (await store.readChained('audit')).map((item) => item.record);
    const audited = records
      .filter((record) => record.kind === 'grant_revoked' && record.clientId === clientId)
      .map((record) => record.grantId as string);
    expect(audited.sort()).toEqual([...grants].sort());
    expect(gw.logRecords()).toContainEqual(
      expect.objectContaining({ event: 'grant_revoked', clientId, grants: 2 }),
    );
  });

  it('signs out: the session ends and /account asks for a login again', async () => {
    const agent = new TestUserAgent();
    const page = await openAccount(agent);
    const out = await post(agent, '/account/signout', { csrf: csrfToken(page.body) }, gw.url);
    expect(out.status).toBe(200);
    expect(out.body).toContain('Signed out');
    const after = await agent.follow(`${gw.url}/account`, never);
    expect(after.body).toContain('Development sign-in');
  });
});

describeWithBinary('redis-server', 'connected apps on two replicas sharing Redis', () => {
  let redis: RedisServer;
  let a: RunningGateway;
  let b: RunningGateway;
  /** B's own address (its issuer is A's, as behind one load balancer). */
  let bUrl: string;

  beforeAll(async () => {
    redis = await startRedis();
    const store = { redis: { url: redis.url, keyPrefix: 'account:' } };
    a = await startGateway(() => ({ store }));
    const issuer = a.url;
    b = await startGateway(() => ({ store, issuer }));
    bUrl = `http://127.0.0.1:${b.config.listen.port}`;
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await redis?.stop();
  });

  it('revoked at A: B refuses the access token within the revocation poll interval, and its refresh', async () => {
    const agent = new TestUserAgent();
    const client = await registerClient(a.url, { client_name: 'Replicated agent' });
    const { verifier, challenge } = pkcePair();
    const flow = await devLogin(a.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: challenge,
      agent,
    });
    const token = await tokenRequest(bUrl, {
      grant_type: 'authorization_code',
      code: flow.url.searchParams.get('code')!,
      code_verifier: verifier,
      redirect_uri: LOOPBACK_REDIRECT,
      client_id: client.client_id,
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    const accessToken = String(token.body.access_token);
    const verifyAtB = async () =>
      (
        await fetch(`${bUrl}/verify`, {
          headers: {
            authorization: `Bearer ${accessToken}`,
            'x-forwarded-proto': 'http',
            'x-forwarded-host': 'localhost:3999',
            'x-forwarded-uri': '/mcp',
            'x-forwarded-method': 'GET',
          },
        })
      ).status;
    expect(await verifyAtB()).toBe(200);

    const page = await agent.follow(`${a.url}/account`, never);
    const [listed] = listedApps(page.body);
    expect(listed?.rawName).toBe('Replicated agent');
    expect(listed?.clientId).toBe(client.client_id);
    const revoked = await agent.follow(new URL('/account/apps/revoke', a.url), never, {
      method: 'POST',
      body: new URLSearchParams({ csrf: csrfToken(page.body), client_id: client.client_id }),
      origin: a.url,
    });
    expect(revoked.status).toBe(200);
    expect(listedApps(revoked.body)).toEqual([]);

    const limit = b.config.verify.revocationPollInterval * 1000;
    const { value: status, elapsedMs } = await pollUntil(verifyAtB, (seen) => seen !== 200, {
      what: 'the other replica to refuse the revoked token',
      timeoutMs: limit,
      intervalMs: 10,
    });
    expect(status).toBe(401);
    expect(elapsedMs).toBeLessThan(limit);
    const refused = await tokenRequest(bUrl, {
      grant_type: 'refresh_token',
      refresh_token: String(token.body.refresh_token),
      client_id: client.client_id,
    });
    expect(refused.body.error).toBe('invalid_grant');
  });
});
