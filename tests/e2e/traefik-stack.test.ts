/**
 * The product as deployed: the real Traefik from traefik/traefik.yml and
 * traefik/dynamic_config.yaml (tests/helpers/traefik.ts: addresses changed, nothing else but
 * the CrowdSec middleware, which tests/crowdsec/ runs), the real gateway behind it on both
 * hosts (the issuer is the auth host through Traefik), and MCP servers made with the SDK.
 *
 * - The unmodified SDK client (no Mcp-Method/Mcp-Name) from the MCP URL alone: the 401
 *   challenge exactly as /verify wrote it, discovery, login, consent, tools/list and tools/call
 *   on a resource with tool rules, which only work because forwardAuth forwards the body; a
 *   denied tool refused with the documented JSON-RPC error; identity headers at the MCP server,
 *   the client's own (and its token) never.
 * - Traefik's limits per client address: the rate limit answers 429 to one address while
 *   another is served.
 * - Servers added in the admin console are routed by the running Traefik within seconds and
 *   gone when removed; a file Traefik cannot read keeps the routing it had (and the console
 *   says so); Traefik logs no error line but the one that file causes.
 */
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { csrfToken, never, openSignedIn, postFields } from '../helpers/admin-console.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { eventually } from '../helpers/poll.js';
import {
  rawRequest,
  startRecordingServer,
  type RecordingServer,
} from '../helpers/recording-server.js';
import { TestOAuthProvider, userApproves, whoamiOf } from '../helpers/sdk-client.js';
import { startStreamableServer, type StreamableServer } from '../helpers/streamable-server.js';
import { startTraefik, type RunningTraefik } from '../helpers/traefik.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const RULES = { default: 'allow', rules: { echo: { groups: ['dev:nobody'] } } };

describeWithBinary('traefik', 'the gateway behind the real Traefik', () => {
  let gw: RunningGateway;
  let traefik: RunningTraefik;
  let mcp: StreamableServer;
  let crm: RecordingServer;
  let mcpUrl: string;

  beforeAll(async () => {
    mcp = await startStreamableServer();
    crm = await startRecordingServer('crm');
    ({ proxy: traefik, gw } = await startGatewayBehind(
      (authUrl) => startTraefik({ authUrl, routes: [{ path: '/mcp', upstream: mcp.url }] }),
      (proxy) => {
        mcpUrl = `${proxy.url}/mcp`;
        return () => ({
          // The authorization server as clients see it: the auth host through Traefik.
          issuer: proxy.authHostUrl,
          login: {
            dev: { users: [{ email: 'alice@example.com', name: 'Alice', groups: ['eng'] }] },
          },
          resources: [{ url: mcpUrl, name: 'Tools', scopes: ['mcp:tools'], tools: RULES }],
          admins: { emails: ['alice@example.com'] },
          managedServers: {
            traefik: {
              directory: proxy.dynamicDir,
              certResolver: '',
              entryPoints: ['websecure'],
            },
            pollInterval: 1,
          },
        });
      },
    ));
  });

  afterAll(async () => {
    await traefik?.stop();
    await gw?.stop();
    await Promise.all([mcp?.stop(), crm?.stop()]);
  });

  it('relays the 401 challenge exactly as /verify wrote it, and serves discovery without a token', async () => {
    const viaTraefik = await fetch(mcpUrl, { method: 'POST', body: '{}' });
    // The same question asked of /verify directly, as Traefik describes the request.
    const direct = await fetch(`${gw.url}/verify`, {
      headers: {
        'x-forwarded-proto': 'http',
        'x-forwarded-host': new URL(mcpUrl).host,
        'x-forwarded-uri': '/mcp',
        'x-forwarded-method': 'POST',
      },
    });
    expect(viaTraefik.status).toBe(401);
    expect(viaTraefik.headers.get('www-authenticate')).toBe(direct.headers.get('www-authenticate'));
    expect(viaTraefik.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${traefik.url}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"`,
    );
    expect(await viaTraefik.text()).toBe(await direct.text());

    const prm = await fetch(`${traefik.url}/.well-known/oauth-protected-resource/mcp`);
    expect(prm.status).toBe(200);
    expect(await prm.json()).toMatchObject({
      resource: mcpUrl,
      authorization_servers: [gw.config.issuer],
    });
    // The authorization server's metadata through the auth host, as the SDK reads it.
    const metadata = await fetch(`${gw.config.issuer}/.well-known/oauth-authorization-server`);
    expect(((await metadata.json()) as Record<string, unknown>).issuer).toBe(gw.config.issuer);
  });

  it('lets the unmodified SDK client in from the MCP URL alone, with tool rules decided on the forwarded body', async () => {
    // The client also sends identity headers of its own: they never reach the server.
    const forging: FetchLike = (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set('x-auth-user-id', 'forged');
      headers.set('x-auth-scopes', 'everything');
      return fetch(url, { ...init, headers });
    };
    const provider = new TestOAuthProvider();
    const connect = async () => {
      const client = new Client({ name: 'traefik-e2e', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(mcpUrl), {
          authProvider: provider,
          fetch: forging,
        }),
      );
      return client;
    };
    await expect(connect()).rejects.toBeInstanceOf(UnauthorizedError);
    const approved = await userApproves(new TestUserAgent(), provider.authorizationUrl!);
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
      authProvider: provider,
      fetch: forging,
    });
    await transport.finishAuth(approved.url.searchParams.get('code')!);
    const client = await connect();
    try {
      const tools = await client.listTools();
      expect(tools.tools.map((tool) => tool.name).sort()).toEqual(['echo', 'whoami']);
      const identity = await whoamiOf(client);
      expect(identity).toMatchObject({
        'x-auth-user-id': 'dev:alice@example.com',
        'x-auth-scopes': 'mcp:tools',
        'x-auth-user-groups': 'dev:eng',
      });
      // The denied tool: refused by /verify with the documented JSON-RPC error, never run.
      const calls = mcp.seenRequests.length;
      await expect(client.callTool({ name: 'echo', arguments: { text: 'x' } })).rejects.toThrow(
        /"code":-32001,"message":"Forbidden: you may not call the tool/,
      );
      expect(mcp.seenRequests.length).toBe(calls);
    } finally {
      await client.close();
    }
    const token = provider.savedTokens!.access_token;
    for (const seen of mcp.seenRequests) {
      expect(seen.headers.authorization ?? '').not.toContain(token);
      expect(seen.headers['x-auth-user-id']).not.toBe('forged');
    }
  });

  it('answers 429 to one client address over the rate limit while another is served', async () => {
    const flood = await Promise.all(
      Array.from({ length: 160 }, () =>
        rawRequest(traefik.port, {
          path: '/mcp',
          method: 'POST',
          body: '{}',
          localAddress: '127.0.0.31',
        }),
      ),
    );
    expect(flood.filter((answer) => answer.status === 429).length).toBeGreaterThan(0);
    const other = await rawRequest(traefik.port, {
      path: '/mcp',
      method: 'POST',
      body: '{}',
      localAddress: '127.0.0.32',
    });
    expect(other.status).toBe(401);
  });

  it('routes a server added in the admin console within seconds, keeps routing through a file it cannot read, and drops a removed server', async () => {
    const agent = new TestUserAgent();
    const page = await openSignedIn(
      agent,
      new URL('/admin/servers/new', gw.url),
      'alice@example.com',
      {
        reopen: true,
      },
    );
    const crmUrl = `${traefik.url}/crm/mcp`;
    const added = await postFields(agent, new URL('/admin/servers', gw.url), {
      csrf: csrfToken(page.body),
      name: 'CRM',
      url: crmUrl,
      upstream: crm.url,
      scopes: 'crm',
      allowedOrigins: '',
      upstreamAuthorization: 'none',
      toolsDefault: 'none',
      toolsFrom: 'body',
      toolRules: '',
      rateLimitAverage: '50',
      rateLimitBurst: '100',
      inFlight: '20',
    });
    expect(added.body).toContain('Server added');
    const status = async (path: string, token?: string) =>
      (
        await rawRequest(traefik.port, {
          path,
          method: 'POST',
          body: '{}',
          headers: token ? { authorization: `Bearer ${token}` } : {},
        })
      ).status;
    // Protected through Traefik without a restart: first the challenge, then served.
    expect(await eventually(async () => (await status('/crm/mcp')) === 401, 10_000)).toBe(true);
    const client = await registerClient(gw.url, { scope: 'crm' });
    const { token } = await obtainTokens(gw.url, { client, resource: crmUrl, scope: 'crm' });
    expect(await status('/crm/mcp', String(token.body.access_token))).toBe(200);
    expect(crm.requests.at(-1)?.headers['x-auth-user-id']).toBe('dev:alice@example.com');

    // A file Traefik cannot read: the routing it had stays; the console says what is wrong.
    await writeFile(join(traefik.dynamicDir, 'broken.yaml'), 'http: [unclosed\n');
    expect(
      await eventually(async () => {
        const servers = await agent.follow(new URL('/admin/servers', gw.url), never);
        return servers.body.includes('Traefik cannot read') && servers.body.includes('broken.yaml');
      }, 10_000),
    ).toBe(true);
    expect(
      await eventually(
        async () => traefik.errors().some((e) => /broken\.yaml/.test(String(e.error))),
        10_000,
      ),
    ).toBe(true);
    expect(await status('/crm/mcp')).toBe(401);
    expect(await status('/mcp')).toBe(401);
    await rm(join(traefik.dynamicDir, 'broken.yaml'));

    // Removed in the console: gone from Traefik too.
    const list = await agent.follow(new URL('/admin/servers', gw.url), never);
    const id = /data-server="(s[0-9a-f]{10})"/.exec(list.body)?.[1];
    expect(id).toBeDefined();
    const removed = await postFields(agent, new URL(`/admin/servers/${id}/remove`, gw.url), {
      csrf: csrfToken(list.body),
    });
    expect(removed.body).toContain('Server removed');
    expect(await eventually(async () => (await status('/crm/mcp')) === 404, 10_000)).toBe(true);
    expect(await status('/mcp')).toBe(401);
  });

  it('logged no Traefik error but the unreadable file the test wrote, and no warning', () => {
    const unexpected = traefik.errors().filter((e) => !/broken\.yaml/.test(String(e.error)));
    expect(unexpected).toEqual([]);
    // Traefik 3.7 warns at start-up about an unset forwardAuth maxResponseBodySize and
    // aliasHeadersStrategy; the shipped files set both.
    expect(traefik.warnings()).toEqual([]);
  });
});
