/**
 * Disabling and enabling a client from the admin console (`/admin/clients`), over HTTP with
 * the dev login: a disabled client's live access token is refused by `/verify` (401
 * invalid_token), its refresh and any new authorization are refused (invalid_client), its
 * registration cannot be managed, introspection says its tokens are inactive; enabling it
 * makes the same token, refresh token and registration access token work again (its grants
 * were kept). The forms' guards (administrator, CSRF token, same origin), the audit records,
 * the listing's State and Expires columns. Unused DCR clients expire, used ones do not.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { formatTime } from '../../src/account/views/account-page.js';
import { ACCOUNT_CLIENT_ID } from '../../src/oauth/constants.js';
import { CLIENT_EXPIRES } from '../../src/oauth/store-adapter.js';
import { DISABLED_CLIENTS_KEY, recordKey } from '../../src/store/keys.js';
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
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { eventually } from '../helpers/poll.js';
import { verifyStatus } from '../helpers/provider-login.js';
import { TestUserAgent, type FlowResult } from '../helpers/user-agent.js';

const RESOURCE = 'http://localhost:3999/mcp';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const PRE_REGISTERED = 'configured-agent';
const CONFIDENTIAL = 'confidential-agent';
const RESOURCE_SERVER = 'resource-server';
const SECRET = 'a-long-enough-test-secret';

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** The State column of a row. */
const stateOf = (row: string | undefined) =>
  /<td class="(?:disabled|active)">([^<]*)<\/td>/.exec(row ?? '')?.[1];

describe('disabling a client from the admin console', () => {
  let gw: RunningGateway;
  let alice: TestUserAgent;
  let bob: TestUserAgent;

  beforeAll(async () => {
    gw = await startGateway(() => ({
      admins: { emails: [ALICE] },
      clients: [
        {
          client_id: PRE_REGISTERED,
          client_name: 'Configured agent',
          redirect_uris: [LOOPBACK_REDIRECT],
        },
        {
          client_id: CONFIDENTIAL,
          client_name: 'Confidential agent',
          client_secret: SECRET,
          redirect_uris: [LOOPBACK_REDIRECT],
        },
        {
          client_id: RESOURCE_SERVER,
          client_secret: SECRET,
          redirect_uris: ['https://rs.example/unused'],
          allowIntrospection: true,
        },
      ],
    }));
    alice = new TestUserAgent();
    bob = new TestUserAgent();
    expect((await open(bob, '/account', BOB)).url.pathname).toBe('/account');
    // Signing in brings the browser back to /admin (not to the page first asked for).
    expect((await open(alice, '/admin', ALICE)).url.pathname).toBe('/admin');
  });
  afterAll(() => gw?.stop());

  const verify = (accessToken: string) => verifyStatus(gw.url, RESOURCE, accessToken);

  /** `/verify`'s full answer (status and challenge). */
  async function verifyAnswer(accessToken: string) {
    const response = await fetch(`${gw.url}/verify`, {
      headers: {
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'localhost:3999',
        'x-forwarded-uri': '/mcp',
        'x-forwarded-method': 'GET',
        authorization: `Bearer ${accessToken}`,
      },
    });
    await response.body?.cancel();
    return { status: response.status, challenge: response.headers.get('www-authenticate') };
  }

  /** `user` authorizes `clientId`, which redeems the code. */
  async function connect(clientId: string, user = BOB, secret?: string) {
    const { verifier, challenge } = pkcePair();
    const flow = await devLogin(gw.url, {
      clientId,
      resource: RESOURCE,
      codeChallenge: challenge,
      user,
    });
    const code = flow.url.searchParams.get('code');
    if (!code) throw new Error(`no code: ${flow.url.href} ${flow.body.slice(0, 300)}`);
    const params = {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: LOOPBACK_REDIRECT,
      resource: RESOURCE,
    };
    const token = secret
      ? await tokenRequest(gw.url, params, { authorization: basic(clientId, secret) })
      : await redeemCode(gw.url, { code, verifier, clientId, resource: RESOURCE });
    expect(token.status).toBe(200);
    return {
      accessToken: String(token.body.access_token),
      refreshToken: String(token.body.refresh_token),
    };
  }

  const refresh = (clientId: string, refreshToken: string, headers: Record<string, string> = {}) =>
    tokenRequest(
      gw.url,
      {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        ...(headers.authorization ? {} : { client_id: clientId }),
      },
      headers,
    );

  /** A new authorization of `clientId`: the code, or the page the browser ended on. */
  async function authorizeAgain(clientId: string) {
    const flow = await devLogin(gw.url, {
      clientId,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
      user: BOB,
    });
    return { code: flow.url.searchParams.get('code'), status: flow.status, body: flow.body };
  }

  /** Opens `path` in `agent`'s browser, signing in as `user` first when needed. */
  const open = (agent: TestUserAgent, path: string, user: string): Promise<FlowResult> =>
    openSignedIn(agent, new URL(path, gw.url), user);

  const post = (
    agent: TestUserAgent,
    action: 'disable' | 'enable',
    fields: Record<string, string>,
    origin: string | undefined = gw.url,
  ) => postFields(agent, new URL(`/admin/clients/${action}`, gw.url), fields, origin);

  /** Alice disables or enables `clientId` through the page's form. */
  async function setState(action: 'disable' | 'enable', clientId: string) {
    const page = await open(alice, '/admin/clients', ALICE);
    const result = await post(alice, action, { csrf: csrfToken(page.body), client_id: clientId });
    expect(result.hops[0]).toMatchObject({
      status: 303,
      location: `/admin/clients?done=${action}d`,
    });
    expect(result.status).toBe(200);
    return result;
  }

  async function auditRecords() {
    await gw.gateway.audit!.flush();
    return (await gw.gateway.store.readChained('audit')).map((entry) => entry.record);
  }

  it('disables a DCR client: /verify 401, refresh and new authorization refused; enabling restores the same tokens', async () => {
    const client = await registerClient(gw.url, { client_name: 'Paused agent' });
    const other = await registerClient(gw.url, { client_name: 'Other agent' });
    const tokens = await connect(client.client_id);
    const otherTokens = await connect(other.client_id);
    expect(await verify(tokens.accessToken)).toBe(200);
    const before = await open(alice, '/admin/clients', ALICE);
    expect(stateOf(clientRows(before.body).get(client.client_id))).toBe('Active');
    expect(clientRows(before.body).get(client.client_id)).toContain(
      'action="/admin/clients/disable"',
    );

    const disabled = await setState('disable', client.client_id);
    expect(disabled.body).toContain('Client disabled');
    const row = clientRows(disabled.body).get(client.client_id);
    expect(stateOf(row)).toBe('Disabled');
    expect(row).toContain('action="/admin/clients/enable"');
    // Its grant is still there (unlike a revocation).
    expect(row).toMatch(/<td>1<\/td>/);

    // The replica that handled the click knows at once.
    const refused = await verifyAnswer(tokens.accessToken);
    expect(refused.status).toBe(401);
    expect(refused.challenge).toContain('error="invalid_token"');
    expect(gw.logRecords()).toContainEqual(
      expect.objectContaining({ security_event: 'invalid_token', reasonCode: 'client_disabled' }),
    );
    const refreshed = await refresh(client.client_id, tokens.refreshToken);
    expect(refreshed.status).toBe(401);
    expect(refreshed.body.error).toBe('invalid_client');
    const again = await authorizeAgain(client.client_id);
    expect(again.code).toBeNull();
    expect(again.status).toBe(401);
    expect(again.body).toContain('invalid_client');
    // Its registration cannot be read either (RFC 7592), and the registration access token
    // is not destroyed by the refusal.
    const management = await fetch(client.registration_client_uri!, {
      headers: { authorization: `Bearer ${client.registration_access_token}` },
    });
    expect(management.status).toBe(401);
    expect(((await management.json()) as Record<string, unknown>).error).toBe('invalid_client');
    // Other clients are untouched.
    expect(await verify(otherTokens.accessToken)).toBe(200);

    const enabled = await setState('enable', client.client_id);
    expect(enabled.body).toContain('Client enabled');
    expect(stateOf(clientRows(enabled.body).get(client.client_id))).toBe('Active');
    // The very same access token, refresh token and registration access token work again.
    expect(await verify(tokens.accessToken)).toBe(200);
    const after = await refresh(client.client_id, tokens.refreshToken);
    expect(after.status).toBe(200);
    expect(await verify(String(after.body.access_token))).toBe(200);
    const read = await fetch(client.registration_client_uri!, {
      headers: { authorization: `Bearer ${client.registration_access_token}` },
    });
    expect(read.status).toBe(200);
    expect((await authorizeAgain(client.client_id)).code).toEqual(expect.any(String));

    const records = await auditRecords();
    for (const change of ['disable-client', 'enable-client']) {
      expect(records).toContainEqual(
        expect.objectContaining({
          kind: 'admin_change',
          actor: `admin:dev:${ALICE}`,
          change,
          clientId: client.client_id,
          clientKind: 'dcr',
          ip: expect.any(String),
        }),
      );
    }
  });

  it('disables pre-registered clients too: a confidential one gets 401 invalid_client with WWW-Authenticate; introspection says inactive', async () => {
    const tokens = await connect(PRE_REGISTERED);
    const confidential = await connect(CONFIDENTIAL, BOB, SECRET);
    const introspect = async (token: string) => {
      const response = await fetch(`${gw.url}/introspect`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basic(RESOURCE_SERVER, SECRET),
        },
        body: new URLSearchParams({ token }),
      });
      return (await response.json()) as Record<string, unknown>;
    };
    expect(await introspect(confidential.refreshToken)).toMatchObject({ active: true });

    await setState('disable', PRE_REGISTERED);
    await setState('disable', CONFIDENTIAL);
    expect(await verify(tokens.accessToken)).toBe(401);
    expect(await verify(confidential.accessToken)).toBe(401);
    expect((await refresh(PRE_REGISTERED, tokens.refreshToken)).body.error).toBe('invalid_client');
    // RFC 6749 §5.2: a client that authenticated with the Authorization header gets 401 and
    // a WWW-Authenticate challenge.
    const basicRefresh = await refresh(CONFIDENTIAL, confidential.refreshToken, {
      authorization: basic(CONFIDENTIAL, SECRET),
    });
    expect(basicRefresh.status).toBe(401);
    expect(basicRefresh.body.error).toBe('invalid_client');
    expect(basicRefresh.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect(await introspect(confidential.refreshToken)).toEqual({ active: false });
    expect((await authorizeAgain(PRE_REGISTERED)).code).toBeNull();

    await setState('enable', PRE_REGISTERED);
    await setState('enable', CONFIDENTIAL);
    expect(await verify(tokens.accessToken)).toBe(200);
    expect(await verify(confidential.accessToken)).toBe(200);
    expect(await introspect(confidential.refreshToken)).toMatchObject({
      active: true,
      client_id: CONFIDENTIAL,
    });
    const records = await auditRecords();
    expect(records).toContainEqual(
      expect.objectContaining({
        kind: 'admin_change',
        change: 'disable-client',
        clientId: PRE_REGISTERED,
        clientKind: 'pre-registered',
      }),
    );
  });

  it('refuses the forms to non-administrators, without the CSRF token and from another origin (403); the client keeps working', async () => {
    const client = await registerClient(gw.url, { client_name: 'Guarded agent' });
    const tokens = await connect(client.client_id);
    const page = await open(alice, '/admin/clients', ALICE);
    const token = csrfToken(page.body);
    const bobsToken = csrfToken((await bob.follow(new URL('/account', gw.url), never)).body);

    for (const action of ['disable', 'enable'] as const) {
      const byBob = await post(bob, action, { csrf: bobsToken, client_id: client.client_id });
      expect(byBob.status).toBe(403);
      expect(byBob.body).toContain('Not an administrator');
      const signedOut = await post(new TestUserAgent(), action, {
        csrf: token,
        client_id: client.client_id,
      });
      expect(signedOut.status).toBe(403);
      const noToken = await post(alice, action, { client_id: client.client_id });
      expect(noToken.status).toBe(403);
      expect(noToken.body).toContain('not sent from the admin console');
      const wrongToken = await post(alice, action, {
        csrf: bobsToken,
        client_id: client.client_id,
      });
      expect(wrongToken.status).toBe(403);
      const crossOrigin = await post(
        alice,
        action,
        { csrf: token, client_id: client.client_id },
        'https://evil.example',
      );
      expect(crossOrigin.status).toBe(403);
      expect(crossOrigin.body).toContain('not sent from this site');
    }
    const cookie = await alice.jar.getCookieString(`${gw.url}/admin/clients/disable`);
    const crossSite = await fetch(`${gw.url}/admin/clients/disable`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        cookie,
        'content-type': 'application/x-www-form-urlencoded',
        origin: gw.url,
        'sec-fetch-site': 'cross-site',
      },
      body: new URLSearchParams({ csrf: token, client_id: client.client_id }),
    });
    expect(crossSite.status).toBe(403);
    expect(await verify(tokens.accessToken)).toBe(200);
    expect(
      stateOf(clientRows((await open(alice, '/admin/clients', ALICE)).body).get(client.client_id)),
    ).toBe('Active');
    expect(
      (await auditRecords()).filter(
        (record) => record.kind === 'admin_change' && record.clientId === client.client_id,
      ),
    ).toEqual([]);
  });

  it('refuses the built-in account client (400) and unknown clients (404); a repeated click changes nothing', async () => {
    const page = await open(alice, '/admin/clients', ALICE);
    const csrf = csrfToken(page.body);
    expect((await post(alice, 'disable', { csrf, client_id: ACCOUNT_CLIENT_ID })).status).toBe(400);
    expect((await post(alice, 'disable', { csrf, client_id: 'dcr_nobody' })).status).toBe(404);
    expect((await post(alice, 'enable', { csrf, client_id: 'dcr_nobody' })).status).toBe(404);
    expect((await post(alice, 'disable', { csrf, client_id: '' })).status).toBe(400);
    // The account page keeps working for everyone.
    expect((await open(bob, '/account', BOB)).status).toBe(200);

    const client = await registerClient(gw.url, { client_name: 'Twice agent' });
    await setState('disable', client.client_id);
    await setState('disable', client.client_id);
    await setState('enable', client.client_id);
    await setState('enable', client.client_id);
    const changes = (await auditRecords()).filter(
      (record) => record.kind === 'admin_change' && record.clientId === client.client_id,
    );
    expect(changes.map((record) => record.change)).toEqual(['disable-client', 'enable-client']);
  });

  it('revoking a disabled DCR client deletes it and forgets its disabled mark', async () => {
    const client = await registerClient(gw.url, { client_name: 'Disabled then revoked' });
    const tokens = await connect(client.client_id);
    await setState('disable', client.client_id);
    expect(await gw.gateway.store.setMembers(DISABLED_CLIENTS_KEY)).toContain(client.client_id);
    const page = await open(alice, '/admin/clients', ALICE);
    const revoked = await alice.follow(new URL('/admin/clients/revoke', gw.url), never, {
      method: 'POST',
      body: new URLSearchParams({ csrf: csrfToken(page.body), client_id: client.client_id }),
      origin: gw.url,
    });
    expect(revoked.hops[0]).toMatchObject({ status: 303 });
    expect(await gw.gateway.store.setMembers(DISABLED_CLIENTS_KEY)).not.toContain(client.client_id);
    expect(await verify(tokens.accessToken)).toBe(401);
    expect((await refresh(client.client_id, tokens.refreshToken)).body.error).toBe(
      'invalid_client',
    );
  });

  it("shows each DCR client's expiry (registration.dcr.clientTtl after its last use)", async () => {
    const client = await registerClient(gw.url, { client_name: 'Expiring agent' });
    const record = await gw.gateway.store.get(recordKey('Client', client.client_id));
    const expiresAt = record?.[CLIENT_EXPIRES] as number;
    const now = Date.now() / 1000;
    expect(expiresAt).toBeGreaterThan(now + gw.config.registration.dcr.clientTtl - 60);
    expect(expiresAt).toBeLessThanOrEqual(now + gw.config.registration.dcr.clientTtl + 1);
    const rows = clientRows((await open(alice, '/admin/clients', ALICE)).body);
    // (the cell's text: its date is kept whole by a span, src/web/breakable.ts)
    const expiresOf = (row: string | undefined) =>
      /<td class="expires">([\s\S]*?)<\/td>/
        .exec(row ?? '')?.[1]
        ?.replace(/<[^>]+>/g, '')
        .replace(/\s+/g, ' ')
        .trim();
    expect(expiresOf(rows.get(client.client_id))).toBe(formatTime(expiresAt));
    expect(expiresOf(rows.get(PRE_REGISTERED))).toBe('-');
    // A registration written before expiries were recorded shows none (not "never").
    const { [CLIENT_EXPIRES]: _expires, ...older } = record!;
    await gw.gateway.store.set(recordKey('Client', client.client_id), older, 3600);
    const again = clientRows((await open(alice, '/admin/clients', ALICE)).body);
    expect(expiresOf(again.get(client.client_id))).toBe('-');
  });
});

describe('unused DCR clients expire (registration.dcr.clientTtl)', () => {
  let gw: RunningGateway;
  const TTL = 2;

  beforeAll(async () => {
    gw = await startGateway(() => ({ registration: { dcr: { clientTtl: TTL } } }));
  });
  afterAll(() => gw?.stop());

  const stored = (client: RegisteredClient) =>
    gw.gateway.store.get(recordKey('Client', client.client_id));

  it('keeps a client that keeps refreshing, and deletes one left unused', async () => {
    const used = await registerClient(gw.url, { client_name: 'Busy agent' });
    const unused = await registerClient(gw.url, { client_name: 'Idle agent' });
    const registeredExpiry = (await stored(used))?.[CLIENT_EXPIRES] as number;
    const { verifier, challenge } = pkcePair();
    const flow = await devLogin(gw.url, {
      clientId: used.client_id,
      resource: RESOURCE,
      codeChallenge: challenge,
    });
    const code = flow.url.searchParams.get('code');
    if (!code) throw new Error(`no code: ${flow.url.href} ${flow.body.slice(0, 300)}`);
    const token = await redeemCode(gw.url, {
      code,
      verifier,
      clientId: used.client_id,
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    let refreshToken = String(token.body.refresh_token);

    // The client refreshes while the idle one's lifetime runs out; the store's TTL is what
    // expires it, so this waits (bounded) for the record to be gone.
    const gone = await eventually(
      async () => {
        const refreshed = await tokenRequest(gw.url, {
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
          client_id: used.client_id,
        });
        expect(refreshed.status).toBe(200);
        refreshToken = String(refreshed.body.refresh_token);
        return (await stored(unused)) === undefined;
      },
      4 * TTL * 1000,
    );
    expect(gone).toBe(true);

    // Used past its first expiry: still registered, its expiry pushed back.
    expect(Date.now() / 1000).toBeGreaterThan(registeredExpiry);
    const record = await stored(used);
    expect(record).toBeDefined();
    expect(record![CLIENT_EXPIRES] as number).toBeGreaterThan(registeredExpiry);
    const refreshed = await tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: used.client_id,
    });
    expect(refreshed.status).toBe(200);

    // The idle one is gone: no authorization, no listing.
    const again = await devLogin(gw.url, {
      clientId: unused.client_id,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
    });
    expect(again.url.searchParams.get('code')).toBeNull();
    expect(again.body).toContain('invalid_client');
  });
});
