/**
 * Fault tier: MCP's long-lived streams through the real Traefik (the shipped
 * traefik/traefik.yml, whose readTimeout is Traefik's default 60 s) and the real gateway:
 *
 * - a legacy HTTP+SSE stream (`GET /servers/legacy/sse` on an SDK server) and a Streamable
 *   HTTP GET stream, both delivered unbuffered (the first event arrives while the stream is
 *   open) and both still open after 70 s, longer than the read timeout: the legacy stream then
 *   carries the answer to a new call, the Streamable HTTP stream the event its server sends
 *   at 70 s.
 *
 * The one fixed wait here is the subject of the test: whether a stream outlives 60 s.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { startLegacySseServer, type LegacySseServer } from '../helpers/legacy-sse-server.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { eventually } from '../helpers/poll.js';
import { closeServer, listenOn, onFreePort } from '../helpers/ports.js';
import { startTraefik, type RunningTraefik } from '../helpers/traefik.js';

/** Longer than Traefik's default (and shipped) readTimeout of 60 s. */
const HELD_MS = 70_000;

/** A Streamable HTTP GET stream's server side: one event at once, one after HELD_MS. */
async function startStreamServer(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/first"}\n\n');
    const later = setTimeout(
      () => res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/later"}\n\n'),
      HELD_MS,
    );
    res.on('close', () => clearTimeout(later));
  });
  const port = await onFreePort(async (candidate) => {
    await listenOn(server, candidate);
    return candidate;
  });
  return { url: `http://127.0.0.1:${port}`, server };
}

/** Opens a GET stream through Traefik; collects its raw text as it arrives. */
function openStream(port: number, path: string, token: string) {
  return new Promise<{ status: number; text: () => string; close: () => void }>(
    (resolve, reject) => {
      let text = '';
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        },
        (res: IncomingMessage) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('error', () => undefined);
          resolve({ status: res.statusCode ?? 0, text: () => text, close: () => req.destroy() });
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
}

describeWithBinary('traefik', 'MCP streams through the real Traefik past its read timeout', () => {
  let gw: RunningGateway;
  let traefik: RunningTraefik;
  let legacy: LegacySseServer;
  let stream: { url: string; server: Server };

  beforeAll(async () => {
    legacy = await startLegacySseServer({ prefix: '/servers/legacy' });
    stream = await startStreamServer();
    ({ proxy: traefik, gw } = await startGatewayBehind(
      (authUrl) =>
        startTraefik({
          authUrl,
          routes: [
            { path: '/servers/legacy/*', upstream: legacy.url },
            { path: '/mcp', upstream: stream.url },
          ],
        }),
      (proxy) => () => ({
        resources: [
          { url: `${proxy.url}/servers/legacy`, name: 'Legacy SSE' },
          { url: `${proxy.url}/mcp`, name: 'Streamable HTTP' },
        ],
      }),
    ));
  });

  afterAll(async () => {
    await traefik?.stop();
    await gw?.stop();
    await Promise.all([legacy?.stop(), stream && closeServer(stream.server)]);
  });

  it(
    'keeps a legacy SSE stream and a Streamable HTTP stream open and unbuffered for 70 s',
    async () => {
      const client = await registerClient(gw.url);
      const token = async (path: string) =>
        String(
          (await obtainTokens(gw.url, { client, resource: `${traefik.url}${path}` })).token.body
            .access_token,
        );
      const [legacyToken, mcpToken] = [await token('/servers/legacy'), await token('/mcp')];
      const legacyStream = await openStream(traefik.port, '/servers/legacy/sse', legacyToken);
      const mcpStream = await openStream(traefik.port, '/mcp', mcpToken);
      try {
        expect([legacyStream.status, mcpStream.status]).toEqual([200, 200]);
        // Unbuffered: each stream's first event arrives while it is open.
        expect(
          await eventually(async () => legacyStream.text().includes('event: endpoint'), 10_000),
        ).toBe(true);
        expect(
          await eventually(async () => mcpStream.text().includes('notifications/first'), 10_000),
        ).toBe(true);
        const endpoint = /data: (\S+)/.exec(legacyStream.text())![1]!;

        await new Promise((resolve) => setTimeout(resolve, HELD_MS));

        // Still open: the Streamable HTTP stream delivers its server's late event, and the
        // legacy stream the answer to a call made now.
        expect(
          await eventually(async () => mcpStream.text().includes('notifications/later'), 15_000),
        ).toBe(true);
        const post = await fetch(`${traefik.url}${endpoint}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${legacyToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 'late', method: 'ping' }),
        });
        // The token is ten minutes old at most here; the POST reaches the server.
        expect(post.status).toBe(202);
        expect(await eventually(async () => legacyStream.text().includes('"late"'), 10_000)).toBe(
          true,
        );
      } finally {
        legacyStream.close();
        mcpStream.close();
      }
    },
    HELD_MS + 60_000,
  );
});
