/**
 * The per-server diagnostics page (`/admin/servers/diagnostics`) and the discovery chain
 * behind it (src/admin/diagnostics.ts).
 *
 * With real parts: the gateway behind a real Caddy `forward_auth` in front of a real MCP
 * server (SDK, no auth code). A correctly proxied server passes every step; one whose URL
 * is the MCP server itself (no forwardAuth), one where nothing listens and one the proxy does
 * not route fail at the step that explains it. Non-administrators get 403 before anything is
 * requested; every value on the page is escaped.
 *
 * Then the chain alone against small HTTP fakes, for answers the gateway itself never gives:
 * redirects (reported, not followed), oversized and endless bodies (cut off), malformed or
 * incomplete challenges, a `resource_metadata` on another origin (not fetched), and
 * authorization server metadata without S256 or with another issuer.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { diagnoseResource, type DiagnosticsReport } from '../../src/admin/diagnostics.js';
import { MAX_BODY_BYTES, probe } from '../../src/admin/diagnostics-probe.js';
import { createTrustedFetch } from '../../src/net/outbound-fetch.js';
import { never, openSignedIn } from '../helpers/admin-console.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startCaddy, type RunningProxy } from '../helpers/caddy.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { closeServer, getFreePort, listenOn, onFreePort } from '../helpers/ports.js';
import { startStreamableServer, type StreamableServer } from '../helpers/streamable-server.js';
import { TestUserAgent, type FlowResult } from '../helpers/user-agent.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const HOSTILE_NAME = 'Files <script>alert(1)</script> & "more"';

const diagnosticsPath = (resource: string) =>
  `/admin/servers/diagnostics?${new URLSearchParams({ resource }).toString()}`;

/** The steps on a diagnostics page: id → verdict and the text of its findings. */
function pageSteps(body: string): Map<string, { verdict: string; text: string }> {
  return new Map(
    [
      ...body.matchAll(
        /<section class="step" data-step="([^"]+)" data-verdict="([^"]+)">([\s\S]*?)<\/section>/g,
      ),
    ].map((match) => [
      match[1]!,
      {
        verdict: match[2]!,
        text: /<ul class="findings">([\s\S]*?)<\/ul>/
          .exec(match[3]!)![1]!
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' '),
      },
    ]),
  );
}

describeWithBinary('caddy', 'diagnostics page, with the gateway behind Caddy forward_auth', () => {
  let gw: RunningGateway;
  let caddy: RunningProxy;
  let server: StreamableServer;
  let proxied: string;
  let direct: string;
  let unrouted: string;
  let nowhere: string;
  let alice: TestUserAgent;

  /**
   * Opens `path` in `agent`'s browser, signing in as `user` first when needed (the sign-in
   * returns to /admin, never to a URL it was given, so the page is opened again).
   */
  const open = (agent: TestUserAgent, path: string, user: string): Promise<FlowResult> =>
    openSignedIn(agent, new URL(path, gw.url), user, { reopen: true });

  beforeAll(async () => {
    server = await startStreamableServer();
    direct = `${server.url}/mcp`;
    nowhere = `http://127.0.0.1:${await getFreePort()}/mcp`;
    ({ proxy: caddy, gw } = await startGatewayBehind(
      (authUrl) => startCaddy({ authUrl, routes: [{ path: '/mcp', upstream: server.url }] }),
      (proxy) => {
        proxied = `${proxy.url}/mcp`;
        unrouted = `${proxy.url}/unrouted/mcp`;
        return () => ({
          admins: { emails: [ALICE] },
          resources: [
            { url: proxied, name: HOSTILE_NAME, scopes: ['mcp:tools'] },
            { url: direct, name: 'Direct', scopes: ['mcp:tools'] },
            { url: unrouted, name: 'Unrouted', scopes: ['mcp:tools'] },
            { url: nowhere, name: 'Nowhere', scopes: ['mcp:tools'] },
          ],
        });
      },
    ));
    alice = new TestUserAgent();
  });

  afterAll(async () => {
    await caddy?.stop();
    await gw?.stop();
    await server?.stop();
  });

  it('shows every step ok for a server behind the proxy, escaped, without script', async () => {
    const before = server.seenRequests.length;
    const page = await open(alice, diagnosticsPath(proxied), ALICE);
    expect(page.status).toBe(200);
    const steps = pageSteps(page.body);
    expect([...steps.keys()]).toEqual([
      'challenge',
      'resource-metadata',
      'authorization-server-metadata',
    ]);
    for (const [id, step] of steps)
      expect([id, step.verdict, step.text]).toEqual([id, 'ok', step.text]);
    expect(page.body).toContain('<dd class="summary" data-verdict="ok">');
    const challenge = steps.get('challenge')!.text;
    expect(challenge).toContain('401 Unauthorized');
    expect(challenge).toContain(
      `resource_metadata is the resource’s well-known URL ${caddy.url}/.well-known/oauth-protected-resource/mcp`,
    );
    expect(challenge).toContain('scope=&quot;mcp:tools&quot;');
    expect(challenge).toContain('GET (the event stream) is challenged too');
    expect(steps.get('resource-metadata')!.text).toContain(
      `authorization_servers names the issuer ${gw.url}`,
    );
    const metadata = steps.get('authorization-server-metadata')!.text;
    expect(metadata).toContain(`Served at ${gw.url}/.well-known/oauth-authorization-server`);
    expect(metadata).toContain('code_challenge_methods_supported includes S256');
    expect(metadata).toContain('Dynamic Client Registration');

    // What was sent and received is on the page, escaped: the name (in the title and in the
    // metadata document's resource_name) never as markup.
    expect(page.body).toContain(
      `www-authenticate: Bearer resource_metadata=&quot;${caddy.url}/.well-known/oauth-protected-resource/mcp&quot;`,
    );
    expect(page.body).toContain(
      'Files &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;more&quot;',
    );
    expect(page.body).toContain('\\&quot;more\\&quot;'); // inside the JSON excerpt
    expect(page.body).not.toMatch(/<script/i);
    // Nothing reached the MCP server: the proxy answered every tokenless request with 401.
    expect(server.seenRequests).toHaveLength(before);
  });

  it('explains a server whose URL bypasses the proxy: the MCP server answers without a token', async () => {
    const before = server.seenRequests.length;
    const page = await open(alice, diagnosticsPath(direct), ALICE);
    expect(page.status).toBe(200);
    const steps = pageSteps(page.body);
    expect(steps.get('challenge')!.verdict).toBe('failed');
    expect(steps.get('challenge')!.text).toContain(
      'the request reached the MCP server without a token',
    );
    expect(steps.get('challenge')!.text).toContain('add the forwardAuth middleware');
    expect(steps.get('resource-metadata')!.verdict).toBe('failed');
    expect(steps.get('resource-metadata')!.text).toContain('404 instead of the metadata document');
    // The issuer is fine whatever the resource: step 3 stands alone.
    expect(steps.get('authorization-server-metadata')!.verdict).toBe('ok');
    expect(page.body).toContain('<dd class="summary" data-verdict="failed">');
    // What the MCP server received from the diagnostics: no credential of any kind.
    const seen = server.seenRequests.slice(before);
    expect(seen.map((request) => request.method).sort()).toEqual(['GET', 'GET', 'POST']);
    for (const request of seen) {
      expect(request.headers.authorization).toBeUndefined();
      expect(request.headers.cookie).toBeUndefined();
      expect(request.headers['user-agent']).toBe('mcp-gateway-diagnostics');
    }
  });

  it('names a port where nothing listens, and a path the proxy does not route', async () => {
    const refused = pageSteps((await open(alice, diagnosticsPath(nowhere), ALICE)).body);
    expect(refused.get('challenge')!.verdict).toBe('failed');
    expect(refused.get('challenge')!.text).toContain(
      `connection refused: nothing listens at ${new URL(nowhere).host}`,
    );
    expect(refused.get('resource-metadata')!.text).toContain('connection refused');

    const notRouted = pageSteps((await open(alice, diagnosticsPath(unrouted), ALICE)).body);
    expect(notRouted.get('challenge')!.verdict).toBe('failed');
    expect(notRouted.get('challenge')!.text).toContain('404: nothing is routed at this URL');
    // Only the MCP route is missing: the well-known route reaches the gateway, which knows
    // the resource.
    expect(notRouted.get('resource-metadata')!.verdict).toBe('ok');
  });

  it('finds the server by any spelling of its URL, and answers 404 for one it does not know', async () => {
    const spelled = await open(
      alice,
      diagnosticsPath(`${proxied.toUpperCase().replace('/MCP', '/mcp')}/`),
      ALICE,
    );
    expect(spelled.status).toBe(200);
    expect(spelled.body.replace(/<wbr>/g, '')).toContain(`<code>${proxied}</code>`);
    for (const resource of ['http://127.0.0.1:1/other', 'not a url', 'x'.repeat(3000)]) {
      const page = await open(alice, diagnosticsPath(resource), ALICE);
      expect(page.status).toBe(404);
      expect(page.body).toContain('No MCP server is configured with this URL');
    }
    const bare = await open(alice, '/admin/servers/diagnostics', ALICE);
    expect(bare.status).toBe(404);
  });

  it('refuses non-administrators before requesting anything, and sends visitors to sign in', async () => {
    const before = server.seenRequests.length;
    const bob = new TestUserAgent();
    const page = await open(bob, diagnosticsPath(direct), BOB);
    expect(page.status).toBe(403);
    expect(page.body).toContain('Not an administrator');
    expect(server.seenRequests).toHaveLength(before);

    const visitor = await new TestUserAgent().follow(`${gw.url}${diagnosticsPath(direct)}`, never);
    expect(visitor.hops[0]!.status).toBe(303);
    expect(new URL(visitor.hops[0]!.location!, gw.url).pathname).toBe('/authorize');
    expect(server.seenRequests).toHaveLength(before);
  });

  it('logs who ran the diagnostics and the outcome', () => {
    const runs = gw
      .logRecords()
      .filter((record) => record.message === 'diagnostics run by an administrator');
    expect(runs.length).toBeGreaterThan(0);
    expect(runs).toContainEqual(
      expect.objectContaining({ subject: `dev:${ALICE}`, resource: proxied, verdict: 'ok' }),
    );
    expect(runs).toContainEqual(
      expect.objectContaining({
        resource: direct,
        verdict: 'failed',
        failed: ['challenge', 'resource-metadata'],
      }),
    );
  });

  it('links every server of /admin/servers to its diagnostics', async () => {
    const page = await open(alice, '/admin/servers', ALICE);
    for (const url of [proxied, direct]) {
      expect(page.body).toContain(
        `href="/admin/servers/diagnostics?resource=${encodeURIComponent(url)}"`,
      );
    }
  });
});

/** A small HTTP server whose answers each test sets; it records what it received. */
interface Fake {
  origin: string;
  seen: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  routes: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  stop(): Promise<void>;
}

async function startFake(): Promise<Fake> {
  const seen: Fake['seen'] = [];
  const routes: Fake['routes'] = new Map();
  const server = createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    const route = routes.get(`${req.method} ${req.url}`) ?? routes.get(req.url!);
    if (route) return route(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
  });
  const port = await onFreePort(async (candidate) => {
    await listenOn(server, candidate);
    return candidate;
  });
  return { origin: `http://127.0.0.1:${port}`, seen, routes, stop: () => closeServer(server) };
}

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}) =>
  (_req: IncomingMessage, res: ServerResponse) =>
    res
      .writeHead(status, { 'content-type': 'application/json', ...headers })
      .end(JSON.stringify(body));

function step(report: DiagnosticsReport, id: string) {
  const found = report.steps.find((s) => s.id === id)!;
  return { ...found, text: found.findings.map((f) => `[${f.verdict}] ${f.message}`).join('\n') };
}

describe('the discovery chain against servers that answer wrongly', () => {
  const fetch = createTrustedFetch([]);
  let fake: Fake;
  let other: Fake;

  beforeAll(async () => {
    fake = await startFake();
    other = await startFake();
  });
  afterEach(() => {
    fake.routes.clear();
    fake.seen.length = 0;
    other.seen.length = 0;
  });
  afterAll(async () => {
    await fake?.stop();
    await other?.stop();
  });

  /** A gateway-like fake: challenge, resource metadata and AS metadata, each replaceable. */
  function wellBehaved(resource: string, issuer: string) {
    const path = new URL(resource).pathname;
    const challenge = json(
      401,
      { error: 'unauthorized' },
      {
        'www-authenticate': `Bearer resource_metadata="${fake.origin}/.well-known/oauth-protected-resource${path}", scope="s"`,
      },
    );
    fake.routes.set(`POST ${path}`, challenge);
    fake.routes.set(`GET ${path}`, challenge);
    fake.routes.set(
      `/.well-known/oauth-protected-resource${path}`,
      json(200, {
        resource,
        authorization_servers: [issuer],
        bearer_methods_supported: ['header'],
      }),
    );
    fake.routes.set(
      '/.well-known/oauth-authorization-server',
      json(200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
        client_id_metadata_document_supported: true,
      }),
    );
  }

  it('passes a well-behaved server, and sends no credential anywhere', async () => {
    const resource = `${fake.origin}/mcp`;
    wellBehaved(resource, fake.origin);
    const report = await diagnoseResource({ resource, issuer: fake.origin }, fetch);
    expect(report.steps.map((s) => [s.id, s.verdict])).toEqual([
      ['challenge', 'ok'],
      ['resource-metadata', 'ok'],
      ['authorization-server-metadata', 'ok'],
    ]);
    expect(step(report, 'authorization-server-metadata').text).toContain(
      'Client ID Metadata Documents',
    );
    for (const request of fake.seen) {
      expect(request.headers.authorization).toBeUndefined();
      expect(request.headers.cookie).toBeUndefined();
    }
  });

  it('reports a redirect without following it', async () => {
    const resource = `${fake.origin}/mcp`;
    wellBehaved(resource, fake.origin);
    const moved = (_req: IncomingMessage, res: ServerResponse) =>
      res.writeHead(301, { location: `${other.origin}/mcp` }).end();
    fake.routes.set('POST /mcp', moved);
    fake.routes.set(`/.well-known/oauth-protected-resource/mcp`, moved);
    const report = await diagnoseResource({ resource, issuer: fake.origin }, fetch);
    expect(step(report, 'challenge').verdict).toBe('failed');
    expect(step(report, 'challenge').text).toContain(
      `answered 301, a redirect to ${other.origin}/mcp (not followed)`,
    );
    expect(step(report, 'resource-metadata').text).toContain('redirect');
    expect(other.seen).toHaveLength(0);
  });

  it('warns about an error code without a token and a missing scope; fails a challenge without resource_metadata', async () => {
    const resource = `${fake.origin}/mcp`;
    wellBehaved(resource, fake.origin);
    fake.routes.set(
      'POST /mcp',
      json(401, {}, { 'www-authenticate': 'Bearer error="invalid_token", realm="x"' }),
    );
    const report = await diagnoseResource({ resource, issuer: fake.origin }, fetch);
    const challenge = step(report, 'challenge');
    expect(challenge.verdict).toBe('failed');
    expect(challenge.text).toContain(
      '[failed] The Bearer challenge has no resource_metadata parameter',
    );
    expect(challenge.text).toContain('[warning] The Bearer challenge has no scope parameter');
    expect(challenge.text).toContain('[warning] The challenge carries error="invalid_token"');
    // Without a URL in the challenge, the well-known URL is read, as 2025-11-25 clients do.
    expect(step(report, 'resource-metadata').verdict).toBe('ok');
  });

  it('fails an unparseable challenge, naming where it breaks', async () => {
    const resource = `${fake.origin}/mcp`;
    wellBehaved(resource, fake.origin);
    fake.routes.set(
      'POST /mcp',
      json(401, {}, { 'www-authenticate': 'Bearer scope="a" realm="b"' }),
    );
    const report = await diagnoseResource({ resource, issuer: fake.origin }, fetch);
    expect(step(report, 'challenge').text).toContain(
      'WWW-Authenticate cannot be parsed: expected "," after the parameter "scope" (at character 17)',
    );
  });

  it('does not fetch a resource_metadata URL on another origin', async () => {
    const resource = `${fake.origin}/mcp`;
    wellBehaved(resource, fake.origin);
    fake.routes.set(
      'POST /mcp',
      json(
        401,
        {},
        {
          'www-authenticate': `Bearer resource_metadata="${other.origin}/.well-known/oauth-protected-resource/mcp", scope="s"`,
        },
      ),
    );
    const report = await diagnoseResource({ resource, issuer: fake.origin }, fetch);
    expect(step(report, 'challenge').verdict).toBe('warning');
    const metadata = step(report, 'resource-metadata');
    expect(metadata.verdict).toBe('failed');
    expect(metadata.text).toContain('is on another origin; it was not fetched');
    expect(other.seen).toHaveLength(0);
    expect(metadata.exchanges[0]!.request.url).toBe(
      `${fake.origin}/.well-known/oauth-protected-resource/mcp`,
    );
  });

  it('fails metadata for another resource or without the issuer', async () => {
    const resource = `${fake.origin}/mcp`;
    wellBehaved(resource, fake.origin);
    fake.routes.set(
      '/.well-known/oauth-protected-resource/mcp',
      json(200, {
        resource: `${fake.origin}/other`,
        authorization_servers: ['https://elsewhere.example'],
        bearer_methods_supported: ['query'],
        scopes_supported: ['s', 'offline_access'],
      }),
    );
    const text = step(
      await diagnoseResource({ resource, issuer: fake.origin }, fetch),
      'resource-metadata',
    ).text;
    expect(text).toContain(`[failed] resource is "${fake.origin}/other", not ${resource}`);
    expect(text).toContain('without the issuer');
    expect(text).toContain('[failed] bearer_methods_supported is ["query"]');
    expect(text).toContain('[warning] scopes_supported includes offline_access');
  });

  it('fails AS metadata with another issuer or without S256; warns when only OIDC discovery works', async () => {
    const resource = `${fake.origin}/mcp`;
    const issuer = `${fake.origin}/tenant`;
    wellBehaved(resource, issuer);
    fake.routes.delete('/.well-known/oauth-authorization-server');
    fake.routes.set(
      '/.well-known/openid-configuration/tenant',
      json(200, {
        issuer: `${fake.origin}/tenant/`,
        authorization_endpoint: `${issuer}/authorize`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['plain'],
      }),
    );
    const server = step(
      await diagnoseResource({ resource, issuer }, fetch),
      'authorization-server-metadata',
    );
    expect(server.verdict).toBe('failed');
    // RFC 8414 §3.1 path insertion, then the OIDC forms in MCP 2025-11-25's order.
    expect(server.exchanges.map((e) => new URL(e.request.url).pathname)).toEqual([
      '/.well-known/oauth-authorization-server/tenant',
      '/.well-known/openid-configuration/tenant',
    ]);
    expect(server.text).toContain('[warning] Not served at');
    expect(server.text).toContain(`[failed] issuer is "${fake.origin}/tenant/", not ${issuer}`);
    expect(server.text).toContain('[failed] Missing or not a URL: token_endpoint');
    expect(server.text).toContain(
      '[failed] code_challenge_methods_supported is ["plain"], without S256',
    );
    expect(server.text).toContain(
      '[warning] Neither registration_endpoint nor client_id_metadata_document_supported',
    );
  });

  it('reads at most the body cap, cuts an endless stream at the deadline, and refuses URLs with credentials', async () => {
    fake.routes.set('/big', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('x'.repeat(MAX_BODY_BYTES * 4));
    });
    fake.routes.set('/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: endpoint\n\n');
    });
    const request = { method: 'GET' as const, headers: {} };
    const big = await probe(fetch, { ...request, url: `${fake.origin}/big` });
    expect(big.response!.body).toHaveLength(MAX_BODY_BYTES);
    expect(big.response!.truncated).toBe(true);

    const stream = await probe(fetch, { ...request, url: `${fake.origin}/stream` }, 300);
    expect(stream.response!.status).toBe(200);
    expect(stream.response!.body).toBe('event: endpoint\n\n');
    expect(stream.failure).toEqual({ kind: 'timeout', message: 'no complete answer within 0.3 s' });

    const before = fake.seen.length;
    const credentials = await probe(fetch, {
      ...request,
      url: fake.origin.replace('//', '//user:pw@'),
    });
    expect(credentials.failure!.kind).toBe('invalid-url');
    expect(fake.seen).toHaveLength(before);
  });
});
