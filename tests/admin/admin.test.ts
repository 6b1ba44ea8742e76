/**
 * The admin console (`/admin`) over HTTP, with the scripted user agent and the dev login:
 * who is an administrator (`admins.emails`), the sign-in shared with `/account`, the pages,
 * client revocation with its guards (session, administrator, CSRF token, Origin /
 * Sec-Fetch-Site) and its effect (refresh refused, `/verify` refuses the client's access
 * token, `admin_change` audited), the activity filter, and escaping of attacker-chosen text.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  clientRows,
  csrfToken,
  never,
  openSignedIn,
  postFields,
} from '../helpers/admin-console.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  devLogin,
  LOOPBACK_REDIRECT,
  pkcePair,
  redeemCode,
  registerClient,
  tokenRequest,
} from '../helpers/oauth-flow.js';
import { TestUserAgent, type FlowResult } from '../helpers/user-agent.js';
import { ACCOUNT_CLIENT_ID } from '../../src/oauth/constants.js';
import { verifyStatus } from '../helpers/provider-login.js';

const RESOURCE = 'http://localhost:3999/mcp';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const PRE_REGISTERED = 'configured-agent';
const PAGES = ['/admin', '/admin/clients', '/admin/activity', '/admin/servers'];

/** The audit records listed on `/admin/activity?view=audit`: kind, subject and client of each row. */
function activityRows(body: string) {
  // (without the line-break hints long identifiers carry: src/web/breakable.ts)
  return [...body.replace(/<wbr>/g, '').matchAll(/<tr class="record">([\s\S]*?)<\/tr>/g)].map(
    (match) => ({
      kind: /<td class="kind">([\s\S]*?)<\/td>/.exec(match[1]!)?.[1] ?? '',
      subject: /<td class="subject">([\s\S]*?)<\/td>/.exec(match[1]!)?.[1] ?? '',
      client: /<td class="client">([\s\S]*?)<\/td>/.exec(match[1]!)?.[1] ?? '',
      seq: Number(/<td>(\d+)<\/td>/.exec(match[1]!)?.[1]),
    }),
  );
}

describe('admin console (/admin)', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGateway(() => ({
      admins: { emails: [ALICE] },
      clients: [
        {
          client_id: PRE_REGISTERED,
          client_name: 'Configured agent',
          redirect_uris: [LOOPBACK_REDIRECT],
        },
      ],
      resources: [
        {
          url: RESOURCE,
          name: 'Test <MCP>',
          scopes: ['mcp:tools'],
          upstreamAuthorization: 'jwt',
          tools: { default: 'deny', rules: { 'files_*': { scopes: ['files:write'] } } },
          access: { domains: ['example.com'] },
        },
      ],
    }));
  });
  afterAll(() => gw?.stop());

  const verify = (accessToken: string) =>
    verifyStatus(gw.url, 'http://localhost:3999/mcp', accessToken);

  /** A user authorizes a newly registered client, which gets tokens. */
  async function connectApp(user: string, clientName: string | undefined) {
    const client =
      clientName === undefined
        ? { client_id: PRE_REGISTERED }
        : await registerClient(gw.url, { client_name: clientName });
    const { verifier, challenge } = pkcePair();
    const flow = await devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: challenge,
      agent: new TestUserAgent(),
      user,
    });
    const code = flow.url.searchParams.get('code');
    if (!code) throw new Error(`no code: ${flow.url.href} ${flow.body.slice(0, 300)}`);
    const token = await redeemCode(gw.url, {
      code,
      verifier,
      clientId: client.client_id,
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    return {
      clientId: client.client_id,
      accessToken: String(token.body.access_token),
      refreshToken: String(token.body.refresh_token),
    };
  }

  /** Opens `path` in `agent`'s browser, signing in as `user` first when needed. */
  const open = (agent: TestUserAgent, path: string, user: string): Promise<FlowResult> =>
    openSignedIn(agent, new URL(path, gw.url), user);

  const post = (agent: TestUserAgent, fields: Record<string, string>, origin?: string) =>
    postFields(agent, new URL('/admin/clients/revoke', gw.url), fields, origin);

  let alice: TestUserAgent;
  let bob: TestUserAgent;

  beforeAll(async () => {
    alice = new TestUserAgent();
    bob = new TestUserAgent();
    // Bob is signed in (through /account: the same session) but no administrator.
    const bobsAccount = await open(bob, '/account', BOB);
    expect(bobsAccount.url.pathname).toBe('/account');
  });

  it('sends a visitor who is not signed in to the gateway sign-in, and back to /admin', async () => {
    const agent = new TestUserAgent();
    const start = await agent.follow(`${gw.url}/admin`, never);
    const first = start.hops[0]!;
    expect(first.status).toBe(303);
    const authorize = new URL(first.location!, gw.url);
    expect(authorize.pathname).toBe('/authorize');
    expect(authorize.searchParams.get('client_id')).toBe(ACCOUNT_CLIENT_ID);
    expect(start.body).toContain('Development sign-in');
    const page = await agent.submit(start, { name: 'email', value: ALICE }, never);
    expect(page.status).toBe(200);
    expect(page.url.href).toBe(`${gw.url}/admin`);
    expect(page.hops.map((hop) => new URL(hop.url).pathname)).toContain('/account/callback');
    expect(page.body).toContain('Admin console');
    expect(page.body).toContain(`Signed in as <strong>${ALICE}</strong>`);
    // The sign-in state names where to return: `admin` for /admin, nothing for /account.
    const adminStart = new TestUserAgent();
    expect((await adminStart.follow(`${gw.url}/admin/servers`, never)).hops[0]!.status).toBe(303);
    const [adminState] = await adminStart.jar.getCookies(`${gw.url}/account/callback`);
    expect(adminState!.value.split('.')).toHaveLength(3);
    expect(adminState!.value.split('.')[2]).toBe('admin');
    const accountStart = new TestUserAgent();
    await accountStart.follow(`${gw.url}/account`, never);
    const [accountState] = await accountStart.jar.getCookies(`${gw.url}/account/callback`);
    expect(accountState!.value.split('.')).toHaveLength(2);
  });

  it('shows every page to an administrator, with the security headers and no script', async () => {
    for (const path of PAGES) {
      const page = await open(alice, path, ALICE);
      expect([path, page.status]).toEqual([path, 200]);
      expect(page.url.pathname).toBe(path);
      expect(page.body).not.toMatch(/<script/i);
      const response = await fetch(`${gw.url}${path}`, {
        headers: { cookie: await alice.jar.getCookieString(`${gw.url}${path}`) },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-security-policy')).toBe(
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      );
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it('lists the configured MCP servers read-only, escaped', async () => {
    const page = await open(alice, '/admin/servers', ALICE);
    const text = page.body.replace(/\s+/g, ' ');
    expect(page.body).toContain('Test &lt;MCP&gt;');
    expect(page.body).not.toContain('Test <MCP>');
    expect(page.body.replace(/<wbr>/g, '')).toContain(`<code>${RESOURCE}</code>`);
    expect(page.body).toContain('mcp:tools');
    expect(text).toContain('<code>files_*</code>: scopes files:write');
    expect(page.body).toContain('default <strong>deny</strong>');
    expect(page.body).toContain('<td>jwt</td>');
    expect(page.body).toContain('domain example.com');
    expect(text).toContain('Read only: these are changed in the configuration file');
    // Configured servers have no edit or remove form (none was added at run time here).
    expect(page.body).not.toMatch(/<form method="post"/);
  });

  it('refuses every page and the revocation to a signed-in non-administrator (403)', async () => {
    const app = await connectApp(BOB, 'Bob agent');
    for (const path of PAGES) {
      const page = await bob.follow(new URL(path, gw.url), never);
      expect([path, page.status]).toEqual([path, 403]);
      expect(page.hops).toHaveLength(1);
      expect(page.body).toContain('Not an administrator');
      expect(page.body).not.toContain('Bob agent');
    }
    // Bob's CSRF token from his /account page does not help either.
    const account = await bob.follow(new URL('/account', gw.url), never);
    const refused = await post(
      bob,
      { csrf: csrfToken(account.body), client_id: app.clientId },
      gw.url,
    );
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('Not an administrator');
    expect(await verify(app.accessToken)).toBe(200);
    // Signed out: refused too, without a redirect.
    const stranger = await post(
      new TestUserAgent(),
      { csrf: 'x', client_id: app.clientId },
      gw.url,
    );
    expect(stranger.status).toBe(403);
    expect(await verify(app.accessToken)).toBe(200);
  });

  it('shows a client named <script> escaped', async () => {
    const name = '<script>alert(1)</script>';
    const app = await connectApp(BOB, name);
    const page = await open(alice, '/admin/clients', ALICE);
    const row = clientRows(page.body).get(app.clientId);
    expect(row).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.body).not.toMatch(/<script/i);
  });

  it('refuses a revocation without the CSRF token or from another origin (403), and the client keeps working', async () => {
    const app = await connectApp(BOB, 'Guarded agent');
    const page = await open(alice, '/admin/clients', ALICE);
    const token = csrfToken(page.body);
    const bobsToken = csrfToken((await bob.follow(new URL('/account', gw.url), never)).body);

    const noToken = await post(alice, { client_id: app.clientId }, gw.url);
    expect(noToken.status).toBe(403);
    expect(noToken.body).toContain('not sent from the admin console');
    const wrongToken = await post(alice, { csrf: bobsToken, client_id: app.clientId }, gw.url);
    expect(wrongToken.status).toBe(403);
    const crossOrigin = await post(
      alice,
      { csrf: token, client_id: app.clientId },
      'https://evil.example',
    );
    expect(crossOrigin.status).toBe(403);
    expect(crossOrigin.body).toContain('not sent from this site');
    const nullOrigin = await post(alice, { csrf: token, client_id: app.clientId }, 'null');
    expect(nullOrigin.status).toBe(403);
    const cookie = await alice.jar.getCookieString(`${gw.url}/admin/clients/revoke`);
    const withFetchSite = (origin: string, site: string) =>
      fetch(`${gw.url}/admin/clients/revoke`, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          cookie,
          'content-type': 'application/x-www-form-urlencoded',
          origin,
          'sec-fetch-site': site,
        },
        body: new URLSearchParams({ csrf: token, client_id: app.clientId }),
      });
    expect((await withFetchSite(gw.url, 'cross-site')).status).toBe(403);
    expect((await withFetchSite(gw.url, 'same-site')).status).toBe(403);
    expect(await verify(app.accessToken)).toBe(200);
    expect(gw.logRecords()).toContainEqual(
      expect.objectContaining({ reason: 'admin form posted from another origin' }),
    );
    // The same form, properly sent (Origin: null with same-origin, as a browser does), passes.
    const ok = await withFetchSite('null', 'same-origin');
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/admin/clients?done=revoked');
    expect(await verify(app.accessToken)).toBe(401);
  });

  it('revokes a client: refresh fails, /verify refuses its token, registration deleted, admin_change audited', async () => {
    const app = await connectApp(BOB, 'Doomed agent');
    const kept = await connectApp(BOB, 'Kept agent');
    expect(await verify(app.accessToken)).toBe(200);
    const page = await open(alice, '/admin/clients', ALICE);
    const rows = clientRows(page.body);
    expect(rows.get(app.clientId)).toContain('Doomed agent');
    expect(rows.get(app.clientId)).toMatch(/<td>1<\/td>/);

    const revoked = await post(
      alice,
      { csrf: csrfToken(page.body), client_id: app.clientId },
      gw.url,
    );
    expect(revoked.hops[0]).toMatchObject({ status: 303, location: '/admin/clients?done=revoked' });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toContain('Client revoked');
    const after = clientRows(revoked.body);
    expect(after.has(app.clientId)).toBe(false);
    expect(after.has(kept.clientId)).toBe(true);

    expect(await verify(app.accessToken)).toBe(401);
    const refresh = await tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: app.refreshToken,
      client_id: app.clientId,
    });
    // Its registration is gone with its grants: the client itself is unknown now.
    expect(refresh.status).toBe(401);
    expect(refresh.body.error).toBe('invalid_client');
    expect(await verify(kept.accessToken)).toBe(200);

    await gw.gateway.audit!.flush();
    const records = (await gw.gateway.store.readChained('audit')).map((entry) => entry.record);
    expect(records).toContainEqual(
      expect.objectContaining({
        kind: 'admin_change',
        actor: `admin:dev:${ALICE}`,
        change: 'revoke-client',
        clientId: app.clientId,
        clientKind: 'dcr',
        grants: 1,
        registrationDeleted: true,
      }),
    );
    expect(records).toContainEqual(
      expect.objectContaining({
        kind: 'grant_revoked',
        actor: `admin:dev:${ALICE}`,
        reason: 'admin',
        subject: `dev:${BOB}`,
        clientId: app.clientId,
      }),
    );

    // A second revocation finds nothing.
    const again = await post(
      alice,
      { csrf: csrfToken(revoked.body), client_id: app.clientId },
      gw.url,
    );
    expect(again.status).toBe(404);
    // The built-in account client cannot be revoked.
    const builtIn = await post(
      alice,
      { csrf: csrfToken(revoked.body), client_id: ACCOUNT_CLIENT_ID },
      gw.url,
    );
    expect(builtIn.status).toBe(400);
  });

  it('revokes a pre-registered client: its grants end (refresh invalid_grant, /verify 401), it stays configured', async () => {
    const app = await connectApp(BOB, undefined);
    expect(await verify(app.accessToken)).toBe(200);
    const page = await open(alice, '/admin/clients', ALICE);
    expect(clientRows(page.body).get(PRE_REGISTERED)).toContain('Configured agent');
    const revoked = await post(
      alice,
      { csrf: csrfToken(page.body), client_id: PRE_REGISTERED },
      gw.url,
    );
    expect(revoked.status).toBe(200);
    expect(clientRows(revoked.body).get(PRE_REGISTERED)).toMatch(/<td>0<\/td>/);
    expect(await verify(app.accessToken)).toBe(401);
    const refresh = await tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: app.refreshToken,
      client_id: PRE_REGISTERED,
    });
    expect(refresh.status).toBe(400);
    expect(refresh.body.error).toBe('invalid_grant');
    await gw.gateway.audit!.flush();
    const records = (await gw.gateway.store.readChained('audit')).map((entry) => entry.record);
    expect(records).toContainEqual(
      expect.objectContaining({
        kind: 'admin_change',
        actor: `admin:dev:${ALICE}`,
        clientId: PRE_REGISTERED,
        clientKind: 'pre-registered',
        grants: 1,
        registrationDeleted: false,
      }),
    );
  });

  it('lists the newest audit records, newest first, filtered by client, subject, kind and resource (escaped)', async () => {
    const first = await connectApp(BOB, 'Filtered agent');
    const second = await connectApp(ALICE, 'Other agent');
    await gw.gateway.audit!.flush();

    const all = activityRows((await open(alice, '/admin/activity?view=audit', ALICE)).body);
    expect(all.length).toBeGreaterThan(5);
    expect(all.length).toBeLessThanOrEqual(200);
    const seqs = all.map((row) => row.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));

    const byClient = activityRows(
      (
        await open(
          alice,
          `/admin/activity?view=audit&client=${encodeURIComponent(first.clientId)}`,
          ALICE,
        )
      ).body,
    );
    expect(byClient.length).toBeGreaterThan(0);
    expect(new Set(byClient.map((row) => row.client))).toEqual(new Set([first.clientId]));
    expect(byClient.map((row) => row.client)).not.toContain(second.clientId);

    const byKindAndSubject = activityRows(
      (
        await open(
          alice,
          `/admin/activity?view=audit&kind=token_issued&subject=${encodeURIComponent(`dev:${ALICE}`)}`,
          ALICE,
        )
      ).body,
    );
    expect(byKindAndSubject.length).toBeGreaterThan(0);
    for (const row of byKindAndSubject) {
      expect(row).toMatchObject({ kind: 'token_issued', subject: `dev:${ALICE}` });
    }

    const byResource = activityRows(
      (
        await open(
          alice,
          `/admin/activity?view=audit&resource=${encodeURIComponent(RESOURCE)}`,
          ALICE,
        )
      ).body,
    );
    expect(byResource.length).toBeGreaterThan(0);
    expect(byResource.map((row) => row.kind)).not.toContain('admin_change');
    const none = activityRows(
      (await open(alice, '/admin/activity?view=audit&resource=http://localhost:1/none', ALICE))
        .body,
    );
    expect(none).toEqual([]);

    // Filter values are echoed escaped, and match nothing.
    const hostile = await open(
      alice,
      `/admin/activity?view=audit&kind=${encodeURIComponent('"><script>x')}`,
      ALICE,
    );
    expect(hostile.body).toContain('value="&quot;&gt;&lt;script&gt;x"');
    expect(hostile.body).not.toMatch(/<script/i);
    expect(activityRows(hostile.body)).toEqual([]);
  });
});
