/**
 * The gateway as deployed, with real parts: MCP servers made with the SDK and containing no
 * auth code (one Streamable HTTP, one legacy HTTP+SSE), behind a real forward-auth proxy
 * (Caddy `forward_auth`, and nginx `auth_request` for the 401 and allow paths) that asks
 * `/verify`; the SDK's own client starts from an MCP URL and nothing else.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import {
  auth,
  extractWWWAuthenticateParams,
  UnauthorizedError,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startCaddy } from '../helpers/caddy.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { startLegacySseServer, type LegacySseServer } from '../helpers/legacy-sse-server.js';
import { startNginx } from '../helpers/nginx.js';
import type { RunningProxy } from '../helpers/proxy-process.js';
import { TestOAuthProvider, userApproves, whoamiOf } from '../helpers/sdk-client.js';
import { startStreamableServer, type StreamableServer } from '../helpers/streamable-server.js';
import { TestUserAgent } from '../helpers/user-agent.js';

/**
 * A client of MCP 2026-07-28, which names the operation in `Mcp-Method`/`Mcp-Name` headers:
 * SDK 1.32 does not yet, so this fetch adds them from the JSON-RPC body it sends.
 */
const withMcpHeaders: FetchLike = async (url, init) => {
  const headers = new Headers(init?.headers);
  if (typeof init?.body === 'string') {
    const message = JSON.parse(init.body) as { method?: string; params?: { name?: string } };
    if (message.method) headers.set('mcp-method', message.method);
    if (message.params?.name) headers.set('mcp-name', message.params.name);
  }
  return fetch(url, { ...init, headers });
};

async function sdkConnect(url: string, provider: TestOAuthProvider, user = 'alice@example.com') {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    authProvider: provider,
    fetch: withMcpHeaders,
  });
  const client = new Client({ name: 'e2e', version: '1.0.0' });
  try {
    await client.connect(transport);
    return client;
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  const result = await userApproves(new TestUserAgent(), provider.authorizationUrl!, user);
  await transport.finishAuth(result.url.searchParams.get('code')!);
  const connected = new Client({ name: 'e2e', version: '1.0.0' });
  await connected.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      authProvider: provider,
      fetch: withMcpHeaders,
    }),
  );
  return connected;
}

describeWithBinary('caddy', 'the gateway behind Caddy forward_auth', () => {
  let gw: RunningGateway;
  let caddy: RunningProxy;
  let serverA: StreamableServer;
  let serverB: StreamableServer;
  /** Stateful: issues `Mcp-Session-Id` (RS-12). */
  let sessionServer: StreamableServer;
  let legacy: LegacySseServer;
  let urlA: string;
  let urlB: string;
  let sessionUrl: string;
  let legacyUrl: string;

  beforeAll(async () => {
    serverA = await startStreamableServer();
    serverB = await startStreamableServer();
    sessionServer = await startStreamableServer({ path: '/s/mcp', sessions: true });
    legacy = await startLegacySseServer({ prefix: '/servers/legacy' });
    const routes = [
      { path: '/mcp', upstream: serverA.url },
      { path: '/b/mcp', upstream: serverB.url },
      { path: '/s/mcp', upstream: sessionServer.url },
      { path: '/servers/legacy/*', upstream: legacy.url },
    ];
    ({ proxy: caddy, gw } = await startGatewayBehind(
      (authUrl) => startCaddy({ authUrl, routes }),
      (proxy) => {
        urlA = `${proxy.url}/mcp`;
        urlB = `${proxy.url}/b/mcp`;
        sessionUrl = `${proxy.url}/s/mcp`;
        legacyUrl = `${proxy.url}/servers/legacy`;
        return () => ({
          login: {
            dev: {
              users: [
                { email: 'alice@example.com', name: 'Alice', groups: ['eng'] },
                { email: 'bob@example.com', name: 'Bob', groups: [] },
              ],
            },
          },
          resources: [
            {
              url: urlA,
              name: 'Server A',
              scopes: ['mcp:tools'],
              tools: {
                default: 'allow',
                // Caddy and nginx forward no body: rules decided on the Mcp-* headers, which
                // this client sends (tests/e2e/proxy-attacks.test.ts has the body default).
                operationFrom: 'headers',
                rules: { echo: { scopes: ['mcp:echo'] }, whoami: { groups: ['dev:eng'] } },
              },
            },
            { url: urlB, name: 'Server B', scopes: ['mcp:tools'] },
            { url: sessionUrl, name: 'Stateful server', scopes: ['mcp:tools'] },
            {
              url: legacyUrl,
              name: 'Legacy SSE server',
              scopes: ['mcp:tools'],
              upstreamAuthorization: 'jwt',
            },
          ],
        });
      },
    ));
  });

  afterAll(async () => {
    await caddy?.stop();
    await gw?.stop();
    await Promise.all([serverA?.stop(), serverB?.stop(), sessionServer?.stop(), legacy?.stop()]);
  });

  it('challenges a tokenless request with the spec 401, through the proxy', async () => {
    const response = await fetch(urlA, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${caddy.url}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"`,
    );
    const metadata = await (
      await fetch(`${caddy.url}/.well-known/oauth-protected-resource/mcp`)
    ).json();
    expect(metadata).toMatchObject({ resource: urlA, authorization_servers: [gw.url] });
    expect(serverA.seenRequests).toHaveLength(0);
  });

  it('lets the SDK client in from the MCP URL alone; the server sees identity headers, never the token', async () => {
    const provider = new TestOAuthProvider();
    const client = await sdkConnect(urlA, provider);
    const tools = await client.listTools();
    expect(tools.tools.map((tool) => tool.name).sort()).toEqual(['echo', 'whoami']);
    const identity = await whoamiOf(client);
    expect(identity).toMatchObject({
      'x-auth-user-id': 'dev:alice@example.com',
      'x-auth-user-email': 'alice@example.com',
      'x-auth-user-groups': 'dev:eng',
      'x-auth-client-id': provider.clientId(),
      'x-auth-scopes': 'mcp:tools',
    });
    const accessToken = provider.savedTokens!.access_token;
    for (const request of serverA.seenRequests) {
      expect(JSON.stringify(request.headers)).not.toContain(accessToken);
      expect(request.headers.authorization ?? '').toBe('');
    }
    await client.close();
  });

  it('refuses at resource B a token issued for resource A', async () => {
    const provider = new TestOAuthProvider();
    const client = await sdkConnect(urlA, provider);
    await client.close();
    const before = serverB.seenRequests.length;
    const response = await fetch(urlB, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${provider.savedTokens!.access_token}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(serverB.seenRequests).toHaveLength(before);
  });

  it("keeps another user's token out of a user's MCP session (RS-12)", async () => {
    const alice = new TestOAuthProvider();
    const aliceClient = await sdkConnect(sessionUrl, alice);
    await aliceClient.listTools();
    const sessionId = (aliceClient.transport as StreamableHTTPClientTransport).sessionId;
    expect(sessionId).toEqual(expect.any(String));
    const bob = new TestOAuthProvider();
    await (await sdkConnect(sessionUrl, bob, 'bob@example.com')).close();

    const before = sessionServer.seenRequests.length;
    const hijack = await fetch(sessionUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${bob.savedTokens!.access_token}`,
        'mcp-session-id': sessionId!,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    expect(hijack.status).toBe(404);
    expect(await hijack.json()).toMatchObject({
      error: { code: -32001, message: 'Session not found' },
    });
    expect(sessionServer.seenRequests).toHaveLength(before); // it never reached the server
    // Alice's session goes on.
    expect((await aliceClient.listTools()).tools.length).toBeGreaterThan(0);
    await aliceClient.close();
  });

  it('refuses a tool the user may not call with a JSON-RPC error, and allows one after step-up', async () => {
    const provider = new TestOAuthProvider();
    const bob = await sdkConnect(urlA, provider, 'bob@example.com');
    // whoami needs group eng: no scope would help. (Without the body, behind Caddy, the
    // gateway does not know the request id: the JSON-RPC error carries id null.)
    await expect(bob.callTool({ name: 'whoami', arguments: {} })).rejects.toThrow(
      /"code":-32001,"message":"Forbidden: you may not call the tool \\"whoami\\""/,
    );
    await bob.close();

    const alice = new TestOAuthProvider();
    const client = await sdkConnect(urlA, alice);
    expect(alice.savedTokens!.scope).toBe('mcp:tools');
    // echo needs scope mcp:echo: 403 insufficient_scope naming every scope needed.
    const challenge = await fetch(urlA, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${alice.savedTokens!.access_token}`,
        'content-type': 'application/json',
        'mcp-method': 'tools/call',
        'mcp-name': 'echo',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'echo', arguments: {} },
      }),
    });
    expect(challenge.status).toBe(403);
    const { error, scope } = extractWWWAuthenticateParams(challenge);
    expect(error).toBe('insufficient_scope');
    expect(scope?.split(' ').sort()).toEqual(['mcp:echo', 'mcp:tools']);
    // SDK 1.32.2 answers this 403 by refreshing its token without asking for the new scope
    // (a refresh cannot widen a grant), then gives up: a known client limitation.
    await expect(client.callTool({ name: 'echo', arguments: { text: 'hi' } })).rejects.toThrow(
      /403 after trying upscoping/,
    );
    // Stepping up is a new authorization for the challenged scopes, with the SDK's auth().
    alice.savedTokens = undefined;
    expect(await auth(alice, { serverUrl: urlA, scope, fetchFn: withMcpHeaders })).toBe('REDIRECT');
    const stepUp = alice.authorizationUrl!;
    expect(stepUp.searchParams.get('scope')?.split(' ').sort()).toEqual(['mcp:echo', 'mcp:tools']);
    const approved = await userApproves(new TestUserAgent(), stepUp);
    expect(approved.consentPage).toContain('mcp:echo');
    const transport = new StreamableHTTPClientTransport(new URL(urlA), {
      authProvider: alice,
      fetch: withMcpHeaders,
    });
    await transport.finishAuth(approved.url.searchParams.get('code')!);
    expect(alice.savedTokens!.scope?.split(' ').sort()).toEqual(['mcp:echo', 'mcp:tools']);
    const upgraded = new Client({ name: 'e2e', version: '1.0.0' });
    await upgraded.connect(transport);
    const echoed = await upgraded.callTool({ name: 'echo', arguments: { text: 'after step-up' } });
    expect(JSON.stringify(echoed.content)).toContain('after step-up');
    await upgraded.close();
    await client.close();
  });

  it('streams a legacy SSE server unbuffered, with a backend JWT instead of the client token', async () => {
    const provider = new TestOAuthProvider();
    (await sdkConnect(urlA, provider)).close();
    // A token for the legacy resource, through the same SDK flow against its URL.
    const legacyProvider = new TestOAuthProvider();
    const sse = new SSEClientTransport(new URL(`${legacyUrl}/sse`), {
      authProvider: legacyProvider,
    });
    await expect(new Client({ name: 'e2e', version: '1' }).connect(sse)).rejects.toThrow(
      UnauthorizedError,
    );
    const approved = await userApproves(new TestUserAgent(), legacyProvider.authorizationUrl!);
    await sse.finishAuth(approved.url.searchParams.get('code')!);
    const token = legacyProvider.savedTokens!.access_token;

    // The first SSE event arrives while the stream is still open: nothing buffers it.
    const controller = new AbortController();
    const stream = await fetch(`${legacyUrl}/sse`, {
      headers: { authorization: `Bearer ${token}` },
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('event: endpoint');
    controller.abort();

    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(
      new SSEClientTransport(new URL(`${legacyUrl}/sse`), { authProvider: legacyProvider }),
    );
    const identity = await whoamiOf(client);
    expect(identity['x-auth-user-id']).toBe('dev:alice@example.com');
    expect(String(identity.authorization)).toMatch(/^Bearer ey/);
    expect(String(identity.authorization)).not.toContain(token);
    await client.close();
  });
});

describeWithBinary('nginx', 'the gateway behind nginx auth_request', () => {
  let gw: RunningGateway;
  let nginx: RunningProxy;
  let server: StreamableServer;
  let url: string;

  beforeAll(async () => {
    server = await startStreamableServer();
    ({ proxy: nginx, gw } = await startGatewayBehind(
      (authUrl) => startNginx({ authUrl, routes: [{ path: '/mcp', upstream: server.url }] }),
      (proxy) => () => ({
        resources: [{ url: `${proxy.url}/mcp`, name: 'Behind nginx', scopes: ['mcp:tools'] }],
      }),
    ));
    url = `${nginx.url}/mcp`;
  });
  afterAll(async () => {
    await nginx?.stop();
    await gw?.stop();
    await server?.stop();
  });

  it('relays the 401 challenge and its JSON body', async () => {
    const response = await fetch(url, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain(
      `resource_metadata="${nginx.url}/.well-known/oauth-protected-resource/mcp"`,
    );
    expect(await response.json()).toMatchObject({ error: 'unauthorized' });
  });

  it('lets the SDK client through with identity headers', async () => {
    const provider = new TestOAuthProvider();
    const client = await sdkConnect(url, provider);
    const identity = await whoamiOf(client);
    expect(identity['x-auth-user-id']).toBe('dev:alice@example.com');
    expect(identity.authorization ?? '').toBe('');
    await client.close();
  });
});
