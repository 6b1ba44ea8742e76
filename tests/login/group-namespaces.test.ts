/**
 * Two enterprise OIDC providers (two real upstream oidc-providers) that both put `admins` in
 * their groups claim. Groups are namespaced by the provider that vouched for them, so only
 * the configured provider's `admins` (`corp:admins`) passes `access.groups`,
 * `resources[].access.groups`, a tool rule's `groups` and `admins.groups`; the partner's
 * `admins` is `partner:admins` and passes none of them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { registerClient, type RegisteredClient } from '../helpers/oauth-flow.js';
import { loginThroughProvider, redeem } from '../helpers/provider-login.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { startUpstreamIdp, type UpstreamIdp } from '../helpers/upstream-idp.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const ADMIN_MCP = 'http://localhost:4201/mcp';
const TOOLS_MCP = 'http://localhost:4202/mcp';
const SECRET = 'upstream-secret-0123456789';

describe('groups namespaced by provider: two OIDC providers both emitting "admins"', () => {
  let ca: TestCa;
  let corp: UpstreamIdp;
  let partner: UpstreamIdp;
  let gw: RunningGateway;
  let client: RegisteredClient;
  const agent = () => new TestUserAgent({ ca: ca.ca });

  beforeAll(async () => {
    ca = await createTestCa();
    // Both IdPs name the gateway's callback before it binds its port: all again on a taken one.
    const startIdps = async (port: number) => {
      const idp = (id: string, users: Parameters<typeof startUpstreamIdp>[0]['users']) =>
        startUpstreamIdp({
          ca,
          clientId: 'gateway',
          clientSecret: SECRET,
          redirectUris: [`http://localhost:${port}/login/callback/${id}`],
          users,
        });
      const started = {
        corp: await idp('corp', {
          alice: { email: 'alice@corp.example', name: 'Alice', groups: ['admins'] },
        }),
        partner: await idp('partner', {
          // Admitted at login by her domain, so that the later checks are reached.
          mallory: { email: 'mallory@partner.example', name: 'Mallory', groups: ['admins'] },
          // Admitted by nothing but a group named like the corp's.
          eve: { email: 'eve@elsewhere.example', name: 'Eve', groups: ['admins'] },
        }),
      };
      return {
        ...started,
        stop: async () => {
          await started.corp.stop();
          await started.partner.stop();
        },
      };
    };
    const oidc = (id: string, upstream: UpstreamIdp) => ({
      id,
      name: `${id} SSO`,
      issuer: upstream.issuer,
      clientId: 'gateway',
      clientSecret: SECRET,
      groupsClaim: 'groups',
    });
    let idps: Awaited<ReturnType<typeof startIdps>>;
    ({ proxy: idps, gw } = await startGatewayBehind(
      (_authUrl, port) => startIdps(port),
      (started) => () => ({
        login: { oidc: [oidc('corp', started.corp), oidc('partner', started.partner)] },
        access: { groups: ['corp:admins'], domains: ['partner.example'] },
        admins: { groups: ['corp:admins'] },
        resources: [
          {
            url: ADMIN_MCP,
            name: 'Admin MCP',
            scopes: ['mcp:tools'],
            access: { groups: ['corp:admins'] },
          },
          {
            url: TOOLS_MCP,
            name: 'Tools MCP',
            scopes: ['mcp:tools'],
            tools: { default: 'allow', rules: { purge: { groups: ['corp:admins'] } } },
          },
        ],
        tls: { caFiles: [ca.caFile] },
      }),
    ));
    ({ corp, partner } = idps);
    client = await registerClient(gw.url);
  });

  afterAll(async () => {
    await gw?.stop();
    await corp?.stop();
    await partner?.stop();
    await ca?.cleanup();
  });

  async function login(provider: 'corp' | 'partner', user: string, resource: string) {
    (provider === 'corp' ? corp : partner).loginAs(user);
    return loginThroughProvider(gw.url, {
      clientId: client.client_id,
      resource,
      provider,
      agent: agent(),
    });
  }

  async function accessToken(provider: 'corp' | 'partner', user: string, resource: string) {
    const flow = await login(provider, user, resource);
    expect(flow.code).toBeTruthy();
    const token = await redeem(gw.url, flow, { clientId: client.client_id, resource });
    expect(token.status).toBe(200);
    return String(token.body.access_token);
  }

  /** `/verify` for a `tools/call` of `tool`, as a proxy forwarding the body would ask. */
  async function callTool(token: string, tool: string) {
    const url = new URL(TOOLS_MCP);
    const response = await fetch(`${gw.url}/verify`, {
      method: 'POST',
      headers: {
        'x-forwarded-proto': 'http',
        'x-forwarded-host': url.host,
        'x-forwarded-uri': url.pathname,
        'x-forwarded-method': 'POST',
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'mcp-method': 'tools/call',
        'mcp-name': tool,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: tool, arguments: {} },
      }),
    });
    await response.body?.cancel();
    return { status: response.status, groups: response.headers.get('x-auth-user-groups') };
  }

  it('carries each provider’s groups under its own name, in the token and X-Auth-User-Groups', async () => {
    const alice = await accessToken('corp', 'alice', TOOLS_MCP);
    const mallory = await accessToken('partner', 'mallory', TOOLS_MCP);
    expect(decodeJwt(alice).groups).toEqual(['corp:admins']);
    expect(decodeJwt(mallory).groups).toEqual(['partner:admins']);
    expect(await callTool(alice, 'search')).toEqual({ status: 200, groups: 'corp:admins' });
    expect(await callTool(mallory, 'search')).toEqual({ status: 200, groups: 'partner:admins' });
  });

  it('access.groups: the partner’s "admins" does not let a user in', async () => {
    const refused = await login('partner', 'eve', TOOLS_MCP);
    expect(refused.result.status).toBe(403);
    expect(refused.code).toBeNull();
    expect(refused.result.body).toContain('eve@elsewhere.example matches no rule in access');
    expect((await login('corp', 'alice', TOOLS_MCP)).code).toBeTruthy();
  });

  it('resources[].access.groups: only the corp’s admins get a token for the Admin MCP', async () => {
    const refused = await login('partner', 'mallory', ADMIN_MCP);
    expect(refused.result.status).toBe(403);
    expect(refused.result.body).toContain(
      'mallory@partner.example matches no rule in the access rules of Admin MCP (checked: groups).',
    );
    const token = await accessToken('corp', 'alice', ADMIN_MCP);
    expect(decodeJwt(token).aud).toBe(ADMIN_MCP);
  });

  it('a tool rule’s groups: only the corp’s admins may call purge', async () => {
    const alice = await accessToken('corp', 'alice', TOOLS_MCP);
    const mallory = await accessToken('partner', 'mallory', TOOLS_MCP);
    expect((await callTool(alice, 'purge')).status).toBe(200);
    expect((await callTool(mallory, 'purge')).status).toBe(403);
  });

  it('admins.groups: only the corp’s admins open the admin console', async () => {
    async function openAdmin(provider: 'corp' | 'partner', user: string) {
      (provider === 'corp' ? corp : partner).loginAs(user);
      const browser = agent();
      const choice = await browser.follow(`${gw.url}/admin`, () => false);
      const href = new RegExp(`href="(/interaction/[^"]+/login/${provider})"`).exec(
        choice.body,
      )?.[1];
      expect(href).toBeDefined();
      return browser.follow(new URL(href!, choice.url), () => false);
    }
    const admin = await openAdmin('corp', 'alice');
    expect(admin.url.pathname).toBe('/admin');
    expect(admin.status).toBe(200);
    const outsider = await openAdmin('partner', 'mallory');
    expect(outsider.url.pathname).toBe('/admin');
    expect(outsider.status).toBe(403);
  });
});
