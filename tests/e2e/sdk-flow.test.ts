/**
 * End to end with real parts: the MCP SDK's own client, given only an MCP server URL,
 * discovers the gateway's authorization server from the server's protected resource metadata,
 * registers (DCR, then CIMD), logs the user in through a real upstream OpenID provider (a
 * second oidc-provider over https, trusted through a test CA), passes the gateway's consent
 * page, exchanges the code with PKCE and `resource`, calls tools, and refreshes.
 *
 * The MCP server has no auth code at all: it sits behind a real forward-auth proxy (Caddy
 * `forward_auth` → `/verify`), which also routes the protected resource metadata to the
 * gateway, as Traefik does in production.
 */
import { createServer, type Server } from 'node:https';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { startCaddy, type RunningProxy } from '../helpers/caddy.js';
import { startStreamableServer, type StreamableServer } from '../helpers/streamable-server.js';
import { getFreePort, listenOnFreePort } from '../helpers/ports.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { startUpstreamIdp, type UpstreamIdp } from '../helpers/upstream-idp.js';
import { TestUserAgent } from '../helpers/user-agent.js';
import { authorizeUrl, pkcePair } from '../helpers/oauth-flow.js';
import {
  atSdkRedirectUri,
  SDK_REDIRECT_URI,
  TestOAuthProvider,
  userApproves,
} from '../helpers/sdk-client.js';

const REDIRECT_URI = SDK_REDIRECT_URI;
const atRedirectUri = atSdkRedirectUri;
const UPSTREAM_CLIENT_SECRET = 'upstream-client-secret-9f8e7d6c5b4a';

async function connect(url: string, provider: TestOAuthProvider): Promise<Client> {
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  return client;
}

/** Runs the SDK's whole flow from the MCP URL alone; returns the connected client. */
async function sdkLogin(mcpUrl: string, provider: TestOAuthProvider, ca: TestCa) {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  const first = new Client({ name: 'e2e', version: '1.0.0' });
  await expect(first.connect(transport)).rejects.toThrow(UnauthorizedError);
  expect(provider.authorizationUrl).toBeDefined();
  const result = await userApproves(new TestUserAgent({ ca: ca.ca }), provider.authorizationUrl!);
  const code = result.url.searchParams.get('code');
  expect(code).toBeTruthy();
  await transport.finishAuth(code!);
  return { client: await connect(mcpUrl, provider), result };
}

describeWithBinary('caddy', 'MCP SDK client against the gateway (Caddy forward_auth)', () => {
  let ca: TestCa;
  let idp: UpstreamIdp;
  let gw: RunningGateway;
  let server: StreamableServer;
  let caddy: RunningProxy;
  /** The MCP server's public URL: through Caddy. */
  let mcp: { url: string };
  let cimdServer: Server;
  let cimdUrl: string;
  const secretsSeen: string[] = [];

  beforeAll(async () => {
    ca = await createTestCa();
    server = await startStreamableServer();

    // A Client ID Metadata Document host on loopback, over https with the test CA.
    cimdServer = createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
      if (req.url !== '/clients/e2e.json') return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(
        JSON.stringify({
          client_id: cimdUrl,
          client_name: 'CIMD end-to-end client',
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }),
      );
    });
    const cimdPort = await listenOnFreePort(cimdServer);
    cimdUrl = `https://localhost:${cimdPort}/clients/e2e.json`;

    // The IdP (its redirect URI) and Caddy (its auth URL) name the gateway's port before the
    // gateway binds it: all again on a new one when it was taken meanwhile.
    let issuer = '';
    ({ gw } = await startGatewayBehind(
      async (authUrl, gatewayPort) => {
        issuer = `http://localhost:${gatewayPort}`;
        idp = await startUpstreamIdp({
          ca,
          clientId: 'mcp-gateway',
          clientSecret: UPSTREAM_CLIENT_SECRET,
          redirectUris: [`${issuer}/login/callback/corp`],
          users: {
            alice: {
              email: 'alice@example.com',
              email_verified: true,
              name: 'Alice Example',
              groups: ['eng'],
            },
            mallory: { email: 'mallory@evil.example', email_verified: true, name: 'Mallory' },
          },
        });
        caddy = await startCaddy({ authUrl, routes: [{ path: '/mcp', upstream: server.url }] });
        mcp = { url: `${caddy.url}/mcp` };
        const started = { idp, caddy };
        return {
          stop: async () => {
            await started.caddy.stop();
            await started.idp.stop();
          },
        };
      },
      () => () => ({
        login: {
          oidc: [
            {
              id: 'corp',
              name: 'Corp IdP',
              issuer: idp.issuer,
              clientId: 'mcp-gateway',
              clientSecret: UPSTREAM_CLIENT_SECRET,
            },
          ],
        },
        access: { domains: ['example.com'] },
        resources: [{ url: mcp.url, name: 'E2E MCP server', scopes: ['mcp:tools'] }],
        tls: { caFiles: [ca.caFile] },
        registration: { cimd: { allowHosts: [`localhost:${cimdPort}`] } },
      }),
    ));
    expect(gw.url).toBe(issuer);
  });

  afterAll(async () => {
    await new Promise((resolve) => cimdServer?.close(resolve));
    await gw?.stop();
    await caddy?.stop();
    await server?.stop();
    await idp?.stop();
    await ca?.cleanup();
  });

  it('discovers, registers (DCR), logs in upstream, consents, calls tools and refreshes', async () => {
    idp.loginAs('alice');
    const provider = new TestOAuthProvider();
    const { client, result } = await sdkLogin(mcp.url, provider, ca);

    // The authorization request the SDK built from discovery alone.
    const request = provider.authorizationUrl!;
    expect(request.origin).toBe(gw.url);
    expect(request.searchParams.get('code_challenge_method')).toBe('S256');
    expect(request.searchParams.get('resource')).toBe(mcp.url);
    expect(result.url.searchParams.get('iss')).toBe(gw.url);
    expect(result.consentPage).toContain('SDK end-to-end client');
    expect(result.consentPage).toContain('E2E MCP server');

    // The token: audience-bound JWT with the resource's scope and a short lifetime.
    const tokens = provider.savedTokens!;
    secretsSeen.push(tokens.access_token, String(tokens.refresh_token));
    expect(decodeProtectedHeader(tokens.access_token).typ).toBe('at+jwt');
    const claims = decodeJwt(tokens.access_token);
    expect(claims.iss).toBe(gw.url);
    expect(claims.aud).toBe(mcp.url);
    expect(claims.scope).toBe('mcp:tools');
    expect(claims.exp! - claims.iat!).toBe(600);
    expect(claims.sub).toBe('oidc:corp:alice');
    expect(claims.email).toBe('alice@example.com');
    expect(claims.client_id).toBe(provider.clientId());
    expect(tokens.refresh_token).toBeTruthy();

    const tools = await client.listTools();
    expect(tools.tools.map((tool) => tool.name)).toEqual(
      expect.arrayContaining(['whoami', 'echo']),
    );
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    expect(JSON.stringify(whoami.content)).toContain('alice@example.com');
    await client.close();

    // Refresh: the access token is no longer accepted, the SDK refreshes by itself.
    const firstRefreshToken = tokens.refresh_token;
    provider.savedTokens = { ...tokens, access_token: 'expired-or-revoked' };
    const again = await connect(mcp.url, provider);
    const echoed = await again.callTool({ name: 'echo', arguments: { text: 'after refresh' } });
    expect(JSON.stringify(echoed.content)).toContain('after refresh');
    const refreshed = provider.savedTokens!;
    secretsSeen.push(refreshed.access_token, String(refreshed.refresh_token));
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(firstRefreshToken);
    expect(decodeJwt(refreshed.access_token).aud).toBe(mcp.url);
    await again.close();
  });

  it('does the same with a Client ID Metadata Document client', async () => {
    idp.loginAs('alice');
    const provider = new TestOAuthProvider({ clientMetadataUrl: cimdUrl });
    const { client, result } = await sdkLogin(mcp.url, provider, ca);
    expect(provider.authorizationUrl!.searchParams.get('client_id')).toBe(cimdUrl);
    expect(result.consentPage).toContain('CIMD end-to-end client');
    expect(result.consentPage).toContain(
      `${new URL(cimdUrl).host} (verified client metadata document)`,
    );
    const tokens = provider.savedTokens!;
    secretsSeen.push(tokens.access_token, String(tokens.refresh_token));
    const claims = decodeJwt(tokens.access_token);
    expect(claims.client_id).toBe(cimdUrl);
    expect(claims.aud).toBe(mcp.url);
    expect(claims.scope).toBe('mcp:tools');
    expect(claims.iss).toBe(gw.url);
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    expect(JSON.stringify(whoami.content)).toContain(cimdUrl);
    await client.close();
  });

  it('refuses CIMD client ids that point at private or loopback addresses', async () => {
    const literal = `https://127.0.0.1:${new URL(cimdUrl).port}/clients/e2e.json`;
    const notAllowed = `https://localhost:${await getFreePort()}/clients/e2e.json`;
    for (const clientId of [literal, notAllowed, 'https://10.0.0.1/client.json']) {
      const agent = new TestUserAgent({ ca: ca.ca });
      const page = await agent.follow(
        authorizeUrl(gw.url, {
          clientId,
          redirectUri: REDIRECT_URI,
          resource: mcp.url,
          codeChallenge: pkcePair().challenge,
        }),
        atRedirectUri,
      );
      expect(page.status).toBe(400);
      expect(page.hops).toHaveLength(1);
      expect(page.body).toContain('invalid_client');
    }
  });

  it('gives no code to a user outside the access rules and says why', async () => {
    idp.loginAs('mallory');
    const provider = new TestOAuthProvider();
    const transport = new StreamableHTTPClientTransport(new URL(mcp.url), {
      authProvider: provider,
    });
    await expect(new Client({ name: 'e2e', version: '1' }).connect(transport)).rejects.toThrow(
      UnauthorizedError,
    );
    const agent = new TestUserAgent({ ca: ca.ca });
    const page = await agent.follow(provider.authorizationUrl!, atRedirectUri);
    expect(page.status).toBe(403);
    expect(page.body).toContain(
      'mallory@evil.example matches no rule in access (checked: emails/domains)',
    );
    // Nothing was sent to the client's redirect URI yet, and no code ever is: the page's
    // link takes the browser back to the client with access_denied.
    expect(page.url.origin).toBe(gw.url);
    expect(page.hops.some((hop) => hop.location?.startsWith(REDIRECT_URI))).toBe(false);
    const event = gw.logRecords().find((record) => record.security_event === 'access_denied');
    expect(event).toMatchObject({ provider: 'corp', subject: 'oidc:corp:mallory' });

    const back = await agent.followLink(page, atRedirectUri);
    expect(back.url.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(back.url.searchParams.get('error')).toBe('access_denied');
    expect(back.url.searchParams.get('code')).toBeNull();
    expect(back.url.searchParams.get('iss')).toBe(gw.url);
  });

  it('never writes a token or secret it handled to its log (RS-13)', () => {
    expect(secretsSeen.length).toBeGreaterThanOrEqual(6);
    const log = gw.logs.join('\n');
    for (const secret of [...secretsSeen, UPSTREAM_CLIENT_SECRET])
      expect(log).not.toContain(secret);
  });

  it('passes no token at all to the MCP server, only identity headers (RS-10)', () => {
    const calls = server.seenRequests.filter((request) => request.method === 'POST');
    expect(calls.length).toBeGreaterThan(3);
    for (const request of calls) {
      expect(request.headers.authorization ?? '').toBe('');
      expect(String(request.headers['x-auth-user-id'])).toMatch(/^oidc:corp:/);
    }
  });
});
