/**
 * Enterprise OIDC login against a real OpenID provider (a second oidc-provider over https):
 * groups from `groupsClaim`, the global and per-resource access rules, and the re-check at
 * every refresh (the gateway redeems the provider's refresh token it kept, sealed).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  pkcePair,
  registerClient,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import {
  atLoopbackRedirect,
  loginThroughProvider,
  redeem,
  refresh,
  verifyStatus,
} from '../helpers/provider-login.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { startUpstreamIdp, type UpstreamIdp, type UpstreamUser } from '../helpers/upstream-idp.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const TOOLS = 'http://localhost:4101/mcp';
const FINANCE = 'http://localhost:4102/mcp';

describe('enterprise OIDC login', () => {
  let ca: TestCa;
  let idp: UpstreamIdp;
  let gw: RunningGateway;
  let client: RegisteredClient;
  const users: Record<string, UpstreamUser> = {
    alice: { email: 'alice@corp.example', name: 'Alice', groups: ['eng', 'finance'] },
    bob: { email: 'bob@corp.example', name: 'Bob', groups: ['sales'] },
    carol: { email: 'carol@corp.example', name: 'Carol', groups: ['eng'] },
    dave: { email: 'dave@corp.example', name: 'Dave', groups: ['eng'] },
  };
  const agent = () => new TestUserAgent({ ca: ca.ca });

  beforeAll(async () => {
    ca = await createTestCa();
    ({ proxy: idp, gw } = await startGatewayBehind(
      (_authUrl, port) =>
        startUpstreamIdp({
          ca,
          clientId: 'gateway',
          clientSecret: 'upstream-secret-0123456789',
          redirectUris: [`http://localhost:${port}/login/callback/corp`],
          users,
        }),
      (upstream) => () => ({
        login: {
          oidc: [
            {
              id: 'corp',
              name: 'Corp SSO',
              issuer: upstream.issuer,
              clientId: 'gateway',
              clientSecret: 'upstream-secret-0123456789',
              groupsClaim: 'groups',
            },
          ],
        },
        access: { groups: ['corp:eng'] },
        resources: [
          { url: TOOLS, name: 'Tools MCP', scopes: ['mcp:tools'] },
          {
            url: FINANCE,
            name: 'Finance MCP',
            scopes: ['mcp:tools'],
            access: { groups: ['corp:finance'] },
          },
        ],
        tls: { caFiles: [ca.caFile] },
      }),
    ));
    client = await registerClient(gw.url);
  });

  afterAll(async () => {
    await gw?.stop();
    await idp?.stop();
    await ca?.cleanup();
  });

  async function tokensFor(user: string, resource = TOOLS) {
    idp.loginAs(user);
    const login = await loginThroughProvider(gw.url, {
      clientId: client.client_id,
      resource,
      agent: agent(),
    });
    expect(login.code).toBeTruthy();
    const token = await redeem(gw.url, login, { clientId: client.client_id, resource });
    expect(token.status).toBe(200);
    return token.body as { access_token: string; refresh_token: string };
  }

  it('logs a member of an allowed group in; the token carries the groups of the claim, namespaced', async () => {
    const tokens = await tokensFor('alice');
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({
      sub: 'oidc:corp:alice',
      email: 'alice@corp.example',
      groups: ['corp:eng', 'corp:finance'],
      idp: 'corp',
      aud: TOOLS,
    });
    expect(await verifyStatus(gw.url, TOOLS, tokens.access_token)).toBe(200);
    // The upstream refresh token is kept only sealed: not in any log line either.
    const record = await gw.gateway.store.get<Record<string, unknown>>('account:oidc:corp:alice');
    expect(typeof record?.sealedSession).toBe('string');
    expect(JSON.stringify(record)).not.toMatch(/refreshToken/);
  });

  it('refuses a user in no allowed group, names the rule, and gives the client access_denied', async () => {
    idp.loginAs('bob');
    const browser = agent();
    const login = await loginThroughProvider(gw.url, {
      clientId: client.client_id,
      resource: TOOLS,
      agent: browser,
    });
    expect(login.result.status).toBe(403);
    expect(login.code).toBeNull();
    expect(login.result.body).toContain(
      'bob@corp.example matches no rule in access (checked: groups).',
    );
    const back = await browser.followLink(login.result, atLoopbackRedirect);
    expect(back.url.searchParams.get('error')).toBe('access_denied');
    expect(back.url.searchParams.get('code')).toBeNull();
    const event = gw
      .logRecords()
      .find((line) => line.security_event === 'access_denied' && line.subject === 'oidc:corp:bob');
    expect(event).toMatchObject({ provider: 'corp', reason: expect.stringContaining('groups') });
  });

  it('applies resources[].access: eng without finance gets no token for the Finance MCP', async () => {
    idp.loginAs('carol');
    const login = await loginThroughProvider(gw.url, {
      clientId: client.client_id,
      resource: FINANCE,
      agent: agent(),
    });
    expect(login.result.status).toBe(403);
    expect(login.result.body).toContain(
      'carol@corp.example matches no rule in the access rules of Finance MCP (checked: groups).',
    );
    // Alice (in finance) does get one.
    const tokens = await tokensFor('alice', FINANCE);
    expect(decodeJwt(tokens.access_token).aud).toBe(FINANCE);
  });

  it('re-reads the groups at every refresh: removed from the group, refused and revoked', async () => {
    const tokens = await tokensFor('dave');
    const first = await refresh(gw.url, tokens.refresh_token, client.client_id);
    expect(first.status).toBe(200);
    const refreshed = first.body as { access_token: string; refresh_token: string };
    expect(await verifyStatus(gw.url, TOOLS, refreshed.access_token)).toBe(200);

    users.dave!.groups = ['sales'];
    const second = await refresh(gw.url, refreshed.refresh_token, client.client_id);
    expect(second.status).toBe(400);
    expect(second.body.error).toBe('invalid_grant');
    // The grant is revoked: the access token issued before the removal is refused at once.
    expect(await verifyStatus(gw.url, TOOLS, refreshed.access_token)).toBe(401);
    const event = gw
      .logRecords()
      .find(
        (line) => line.security_event === 'access_withdrawn' && line.subject === 'oidc:corp:dave',
      );
    expect(event).toMatchObject({
      provider: 'corp',
      reason: expect.stringContaining('matches no rule in access'),
    });
    expect(JSON.stringify(event)).not.toContain(refreshed.refresh_token);
  });

  it('applies resources[].access at refresh too: out of finance, the Finance token is revoked', async () => {
    users.fay = { email: 'fay@corp.example', groups: ['eng', 'finance'] };
    const tokens = await tokensFor('fay', FINANCE);
    users.fay.groups = ['eng'];
    const refused = await refresh(gw.url, tokens.refresh_token, client.client_id);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    expect(await verifyStatus(gw.url, FINANCE, tokens.access_token)).toBe(401);
    const event = gw
      .logRecords()
      .find(
        (line) => line.security_event === 'access_withdrawn' && line.subject === 'oidc:corp:fay',
      );
    expect(event?.reason).toContain('the access rules of Finance MCP');
  });

  it('refuses the refresh of a user the provider disabled (its refresh token is refused)', async () => {
    users.erin = { email: 'erin@corp.example', groups: ['eng'] };
    const tokens = await tokensFor('erin');
    delete users.erin;
    const refused = await refresh(gw.url, tokens.refresh_token, client.client_id);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    expect(
      gw
        .logRecords()
        .some(
          (line) => line.security_event === 'access_withdrawn' && line.subject === 'oidc:corp:erin',
        ),
    ).toBe(true);
  });

  it('refuses a callback whose state belongs to no sign-in, and one replayed', async () => {
    idp.loginAs('carol');
    const browser = agent();
    // Stop at the gateway's callback to hold it.
    const atCallback = (url: URL) => url.pathname === '/login/callback/corp';
    const { challenge } = pkcePair();
    const held = await browser.follow(
      authorizeUrl(gw.url, {
        clientId: client.client_id,
        resource: TOOLS,
        codeChallenge: challenge,
      }),
      atCallback,
    );
    const callback = held.url;
    expect(callback.searchParams.get('code')).toBeTruthy();

    const forged = new URL(callback);
    forged.searchParams.set('state', 'forged-state');
    const refused = await browser.follow(forged, atLoopbackRedirect);
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('unknown, was already used or has expired');

    const accepted = await browser.follow(callback, atLoopbackRedirect);
    expect(accepted.status).toBe(200);
    expect(accepted.body).toContain('name="decision"'); // the consent page
    const replayed = await browser.follow(callback, atLoopbackRedirect);
    expect(replayed.status).toBe(400);
    expect(
      gw.logRecords().filter((line) => line.security_event === 'upstream_state_invalid').length,
    ).toBeGreaterThanOrEqual(2);
  });
});
