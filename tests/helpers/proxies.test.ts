/**
 * Checks the proxy harness on its own (tests/helpers/caddy.ts, nginx.ts, streamable-server.ts,
 * legacy-sse-server.ts), so a failing gateway test through a proxy can be blamed on the gateway
 * and not on the harness. Real Caddy and real nginx, real MCP servers and clients from the SDK;
 * the only stand-in is the auth service's `/verify`, replaced by a few lines here that follow its
 * contract (docs/proxies.md):
 *
 * - `Authorization: Bearer good` → 200 with all seven identity headers (Authorization empty);
 * - `Bearer readonly` → 403 `insufficient_scope` with a JSON-RPC error body;
 * - `Bearer malformed` → 400 with a JSON body;
 * - anything else → 401 `WWW-Authenticate: Bearer resource_metadata="x"` with a JSON body;
 * - every non-2xx also carries the body in `X-Auth-Error-Body` (for nginx).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { describeWithBinary } from './binaries.js';
import { startCaddy } from './caddy.js';
import { AUTH_ERROR_BODY_HEADER, type IdentityResponseHeader } from './identity-headers.js';
import { startLegacySseServer, type LegacySseServer } from './legacy-sse-server.js';
import { startNginx, TOO_LARGE_BODY } from './nginx.js';
import { closeServer, listenOnFreePort } from './ports.js';
import type { ProxyOptions, RunningProxy } from './proxy-process.js';
import { startStreamableServer, type StreamableServer } from './streamable-server.js';

const GOOD = 'Bearer good';
const LEGACY_PREFIX = '/servers/legacy';
const STREAM_TIMEOUT_MS = 5_000;
const CALL_TIMEOUT_MS = 10_000;

/** What the stand-in's 200 answer attaches, in IDENTITY_RESPONSE_HEADERS order. */
const IDENTITY: Record<IdentityResponseHeader, string> = {
  'X-Auth-User-Id': 'user-1',
  'X-Auth-User-Email': 'alice@example.com',
  'X-Auth-User-Name': 'Alice Example',
  'X-Auth-User-Groups': 'staff,mcp-users',
  'X-Auth-Client-Id': 'client-1',
  'X-Auth-Scopes': 'mcp:read mcp:write',
  Authorization: '',
};

const UNAUTHORIZED_BODY = { error: 'unauthorized', error_description: 'No access token' };
const FORBIDDEN_BODY = {
  jsonrpc: '2.0',
  error: { code: -32003, message: 'insufficient_scope: mcp:write' },
  id: null,
};
const BAD_REQUEST_BODY = { error: 'invalid_request', error_description: 'Malformed Mcp-Name' };

interface VerifyCall {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

interface StandInAuth {
  url: string;
  verifyCalls: VerifyCall[];
  discoveryCalls: { url: string; headers: IncomingHttpHeaders }[];
  stop(): Promise<void>;
}

/** STAND-IN for the auth service: answers `/verify` and the discovery paths, nothing else. */
async function startStandInAuth(): Promise<StandInAuth> {
  const verifyCalls: VerifyCall[] = [];
  const discoveryCalls: StandInAuth['discoveryCalls'] = [];
  const server: Server = createServer((req, res) => {
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
    });
    req.on('end', () => {
      const path = new URL(req.url ?? '/', 'http://stand-in').pathname;
      if (path.startsWith('/.well-known/')) {
        discoveryCalls.push({ url: req.url ?? '', headers: req.headers });
        const host = String(req.headers['x-forwarded-host'] ?? req.headers.host);
        const proto = String(req.headers['x-forwarded-proto'] ?? 'http');
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ resource: `${proto}://${host}/mcp`, stand_in: true }));
        return;
      }
      if (path !== '/verify') {
        res.statusCode = 404;
        res.end();
        return;
      }
      verifyCalls.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        bodyBytes,
      });
      const deny = (status: number, body: object, challenge?: string): void => {
        const json = JSON.stringify(body);
        res.statusCode = status;
        res.setHeader('Content-Type', 'application/json');
        if (challenge !== undefined) res.setHeader('WWW-Authenticate', challenge);
        res.setHeader(AUTH_ERROR_BODY_HEADER, json);
        res.end(json);
      };
      switch (req.headers.authorization) {
        case GOOD:
          for (const [name, value] of Object.entries(IDENTITY)) res.setHeader(name, value);
          res.statusCode = 200;
          res.end();
          return;
        case 'Bearer readonly':
          deny(
            403,
            FORBIDDEN_BODY,
            'Bearer error="insufficient_scope", scope="mcp:read mcp:write", resource_metadata="x"',
          );
          return;
        case 'Bearer malformed':
          deny(400, BAD_REQUEST_BODY);
          return;
        default:
          deny(401, UNAUTHORIZED_BODY, 'Bearer resource_metadata="x"');
      }
    });
  });
  const port = await listenOnFreePort(server);
  return {
    url: `http://127.0.0.1:${port}`,
    verifyCalls,
    discoveryCalls,
    stop: () => closeServer(server),
  };
}

/**
 * An open event stream read chunk by chunk, every wait bounded: a proxy that buffers the stream
 * (or holds back its headers) fails the test with a timeout instead of hanging it.
 */
interface OpenStream {
  status: number;
  contentType: string | null;
  /** Reads until the text received so far matches `pattern`; fails if the stream ends first. */
  readUntil(pattern: RegExp): Promise<string>;
  close(): void;
}

async function openStream(url: string, init: RequestInit, timeoutMs: number): Promise<OpenStream> {
  const controller = new AbortController();
  const withTimeout = async <T>(promise: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`${what} not received within ${timeoutMs} ms: the proxy buffers`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  const response = await withTimeout(
    fetch(url, { ...init, signal: controller.signal }),
    'response headers',
  );
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  let received = '';
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    async readUntil(pattern) {
      if (reader === undefined) throw new Error('response has no body');
      while (!pattern.test(received)) {
        const { done, value } = await withTimeout(reader.read(), `data matching ${pattern}`);
        // The stream is still open when the data arrives: the proxy did not wait for its end.
        if (done) throw new Error(`stream ended before ${pattern} (got ${received})`);
        received += decoder.decode(value, { stream: true });
      }
      return received;
    },
    close() {
      controller.abort();
    },
  };
}

async function connectClient(transport: Transport): Promise<Client> {
  const client = new Client({ name: 'proxy-harness-test', version: '1.0.0' });
  await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
  return client;
}

/** `whoami`'s JSON: the X-Auth-* headers and the Authorization the MCP server received. */
async function whoami(client: Client): Promise<Record<string, unknown>> {
  const result = await client.callTool({ name: 'whoami', arguments: {} }, undefined, {
    timeout: CALL_TIMEOUT_MS,
  });
  const content = result.content as { type: string; text: string }[];
  return JSON.parse(content[0]?.text ?? 'null') as Record<string, unknown>;
}

function expectIdentity(headers: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(IDENTITY)) {
    if (name === 'Authorization') continue;
    expect(headers[name.toLowerCase()]).toBe(value);
  }
  // Empty or absent; never the client's token.
  expect(['', null, undefined]).toContain(headers.authorization);
}

function proxySuite(
  kind: 'caddy' | 'nginx',
  start: (options: ProxyOptions) => Promise<RunningProxy>,
): void {
  let auth: StandInAuth;
  let streamable: StreamableServer;
  let legacy: LegacySseServer;
  let proxy: RunningProxy;

  beforeAll(async () => {
    [auth, streamable, legacy] = await Promise.all([
      startStandInAuth(),
      startStreamableServer(),
      startLegacySseServer({ prefix: LEGACY_PREFIX }),
    ]);
    proxy = await start({
      authUrl: auth.url,
      routes: [
        { path: '/mcp', upstream: streamable.url },
        { path: `${LEGACY_PREFIX}/*`, upstream: legacy.url },
      ],
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([auth?.stop(), streamable?.stop(), legacy?.stop()]);
  });

  const postToMcp = (
    headers: Record<string, string>,
    body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  ): Promise<Response> =>
    fetch(`${proxy.url}/mcp?probe=1`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        ...headers,
      },
      body,
    });

  it('without a token: the 401, WWW-Authenticate and JSON body of /verify reach the client', async () => {
    const before = streamable.seenRequests.length;
    const response = await postToMcp({});
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer resource_metadata="x"');
    expect(await response.json()).toEqual(UNAUTHORIZED_BODY);
    expect(streamable.seenRequests.length).toBe(before);

    const call = auth.verifyCalls.at(-1);
    expect(call?.headers['x-forwarded-method']).toBe('POST');
    expect(call?.headers['x-forwarded-uri']).toBe('/mcp?probe=1');
    expect(call?.headers['x-forwarded-host']).toBe(`127.0.0.1:${proxy.port}`);
    expect(call?.headers['x-forwarded-proto']).toBe('http');
    // The body is not forwarded to the auth subrequest by Caddy or nginx.
    expect(call?.bodyBytes).toBe(0);
  });

  it('403 (with WWW-Authenticate) and 400 from /verify reach the client with their bodies', async () => {
    const forbidden = await postToMcp({ Authorization: 'Bearer readonly' });
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect(await forbidden.json()).toEqual(FORBIDDEN_BODY);

    const bad = await postToMcp({ Authorization: 'Bearer malformed' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual(BAD_REQUEST_BODY);
  });

  it('with the good token: the Streamable HTTP server gets the identity headers, never the token', async () => {
    const before = streamable.seenRequests.length;
    const transport = new StreamableHTTPClientTransport(new URL(`${proxy.url}/mcp`), {
      // A client trying to pass itself off as someone else gets overwritten.
      requestInit: { headers: { Authorization: GOOD, 'X-Auth-User-Id': 'mallory' } },
    });
    const client = await connectClient(transport);
    try {
      expectIdentity(await whoami(client));
    } finally {
      await client.close();
    }
    const seen = streamable.seenRequests.slice(before);
    expect(seen.length).toBeGreaterThan(0);
    for (const request of seen) expectIdentity(request.headers);
  });

  it('the legacy SSE stream passes its events through the proxy unbuffered', async () => {
    const stream = await openStream(
      `${proxy.url}${LEGACY_PREFIX}/sse`,
      { headers: { Authorization: GOOD, Accept: 'text/event-stream' } },
      STREAM_TIMEOUT_MS,
    );
    try {
      expect(stream.status).toBe(200);
      expect(stream.contentType).toMatch(/^text\/event-stream/);
      // The first event, sent with the response headers.
      const first = await stream.readUntil(/\n\n/);
      const endpoint = new RegExp(
        `^event: endpoint\ndata: (${LEGACY_PREFIX}/messages\\?sessionId=[0-9a-f-]+)\n`,
      );
      const messagesPath = endpoint.exec(first)?.[1];
      expect(messagesPath).toBeDefined();

      // A later event, written on its own while the stream stays open: the answer to a ping.
      const posted = await fetch(`${proxy.url}${messagesPath}`, {
        method: 'POST',
        headers: { Authorization: GOOD, 'Content-Type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'ping' }),
      });
      expect(posted.status).toBe(202);
      await posted.body?.cancel();
      expect(await stream.readUntil(/"id":7/)).toMatch(/event: message\ndata: .*"id":7/);
    } finally {
      stream.close();
    }
  });

  it('a legacy SSE session works end to end, with the identity headers on its POSTs', async () => {
    const before = legacy.seenRequests.length;
    const transport = new SSEClientTransport(new URL(`${proxy.url}${LEGACY_PREFIX}/sse`), {
      requestInit: { headers: { Authorization: GOOD } },
    });
    const client = await connectClient(transport);
    try {
      expectIdentity(await whoami(client));
      const echoed = await client.callTool({ name: 'echo', arguments: { text: 'hi' } }, undefined, {
        timeout: CALL_TIMEOUT_MS,
      });
      expect(echoed.content).toEqual([{ type: 'text', text: 'hi' }]);
    } finally {
      await client.close();
    }
    const seen = legacy.seenRequests.slice(before);
    expect(seen.map((r) => r.method)).toEqual(expect.arrayContaining(['GET', 'POST']));
    for (const request of seen) expectIdentity(request.headers);

    const unauthenticated = await fetch(`${proxy.url}${LEGACY_PREFIX}/messages?sessionId=x`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(unauthenticated.status).toBe(401);
    await unauthenticated.body?.cancel();
  });

  if (kind === 'nginx') {
    it('a body over 1 MiB gets the own 413 of nginx as a JSON-RPC error, before any auth call', async () => {
      const verifyCallsBefore = auth.verifyCalls.length;
      const response = await postToMcp({ Authorization: GOOD }, 'x'.repeat(1024 * 1024 + 1));
      expect(response.status).toBe(413);
      expect(await response.json()).toEqual(JSON.parse(TOO_LARGE_BODY));
      expect(auth.verifyCalls.length).toBe(verifyCallsBefore);
    });
  }

  it('OAuth discovery paths go to the auth service without forward auth', async () => {
    const verifyCallsBefore = auth.verifyCalls.length;
    for (const path of [
      '/.well-known/oauth-protected-resource/mcp',
      '/.well-known/oauth-protected-resource',
      '/.well-known/oauth-authorization-server',
    ]) {
      const response = await fetch(`${proxy.url}${path}`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        resource: `http://127.0.0.1:${proxy.port}/mcp`,
        stand_in: true,
      });
    }
    expect(auth.verifyCalls.length).toBe(verifyCallsBefore);
    expect(auth.discoveryCalls.at(-1)?.headers['x-forwarded-host']).toBe(`127.0.0.1:${proxy.port}`);

    const elsewhere = await fetch(`${proxy.url}/not-routed`);
    expect(elsewhere.status).toBe(404);
    await elsewhere.body?.cancel();
  });
}

describeWithBinary('caddy', 'proxy harness: Caddy forward_auth (stand-in /verify)', () => {
  proxySuite('caddy', startCaddy);
});

describeWithBinary('nginx', 'proxy harness: nginx auth_request (stand-in /verify)', () => {
  proxySuite('nginx', startNginx);
});
