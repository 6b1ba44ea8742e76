/**
 * The attacks of the security review, run through each real proxy the project supports, from
 * its shipped configuration (deploy/caddy, deploy/nginx, traefik/): the real gateway decides,
 * real backends answer (recorders that keep what reached them, and an SDK legacy SSE server).
 *
 * - path confusion: a token for one MCP server, sent to every spelling of another server's
 *   path, never reaches the other server's backend (and the review's own reproduction is
 *   refused with a security event);
 * - session binding: every way of naming another user's legacy SSE session is refused, and
 *   the victim's stream receives nothing of the attacker's;
 * - tool rules: decided on the body (which only Traefik forwards); client-written `Mcp-*`
 *   headers decide nothing unless the resource opts in; every method that can carry a body
 *   is judged; bodies other decoders would read differently are refused;
 * - the auth host never serves `/verify` or `/metrics` to outside callers;
 * - preflights never reach the MCP server; a session refusal keeps its 404 and body (nginx);
 * - Traefik: encoded delimiters refused at the entry point, open streams limited per client
 *   address rather than per host.
 */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { routedPath } from '../../src/resources/routed-path.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startCaddy } from '../helpers/caddy.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { startLegacySseServer, type LegacySseServer } from '../helpers/legacy-sse-server.js';
import { startNginx } from '../helpers/nginx.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { respellings, traversals } from '../helpers/path-variants.js';
import { eventually } from '../helpers/poll.js';
import type { ProxyOptions, RunningProxy } from '../helpers/proxy-process.js';
import {
  rawRequest,
  startRecordingServer,
  type RecordingServer,
} from '../helpers/recording-server.js';
import { startTraefik } from '../helpers/traefik.js';

interface ProxyKind {
  name: 'caddy' | 'nginx' | 'traefik';
  start(options: ProxyOptions): Promise<RunningProxy>;
  /** Whether the proxy forwards the request body to /verify (Traefik `forwardBody`). */
  forwardsBody: boolean;
}

const KINDS: ProxyKind[] = [
  { name: 'caddy', start: startCaddy, forwardsBody: false },
  { name: 'nginx', start: startNginx, forwardsBody: false },
  { name: 'traefik', start: startTraefik, forwardsBody: true },
];

const RULES = { default: 'allow', rules: { delete_everything: { groups: ['dev:nobody'] } } };
const call = (name: string, id: number | string = 1) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });

/** An open SSE stream: its events as they arrive. */
interface Stream {
  events: { event: string; data: string }[];
  close(): void;
}

function openStream(
  port: number,
  path: string,
  token: string,
  localAddress = '127.0.0.1',
): Promise<{ status: number; stream: Stream }> {
  return new Promise((resolve, reject) => {
    const events: Stream['events'] = [];
    let req: ClientRequest | undefined = undefined;
    req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        localAddress,
        agent: false,
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
      },
      (res: IncomingMessage) => {
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
            const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
            events.push({ event, data });
          }
        });
        res.on('error', () => undefined);
        resolve({ status: res.statusCode ?? 0, stream: { events, close: () => req?.destroy() } });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

for (const kind of KINDS) {
  describeWithBinary(kind.name, `attacks through ${kind.name}`, () => {
    let gw: RunningGateway;
    let proxy: RunningProxy;
    let publicBackend: RecordingServer;
    let secretBackend: RecordingServer;
    let toolsBackend: RecordingServer;
    let headersBackend: RecordingServer;
    let legacy: LegacySseServer;
    const token: Record<string, string> = {};

    beforeAll(async () => {
      [publicBackend, secretBackend, toolsBackend, headersBackend] = await Promise.all([
        startRecordingServer('public'),
        startRecordingServer('secret'),
        startRecordingServer('tools'),
        startRecordingServer('headers'),
      ]);
      legacy = await startLegacySseServer({ prefix: '/servers/legacy' });
      const routes = [
        { path: '/servers/public/*', upstream: publicBackend.url },
        { path: '/servers/secret/*', upstream: secretBackend.url },
        { path: '/servers/legacy/*', upstream: legacy.url },
        { path: '/tools', upstream: toolsBackend.url },
        { path: '/headers', upstream: headersBackend.url },
      ];
      ({ proxy, gw } = await startGatewayBehind(
        (authUrl) => kind.start({ authUrl, routes }),
        (started) => {
          const url = (path: string) => `${started.url}${path}`;
          return () => ({
            resources: [
              { url: url('/servers/public'), name: 'Public' },
              { url: url('/servers/secret'), name: 'Secret' },
              { url: url('/servers/legacy'), name: 'Legacy SSE' },
              {
                url: url('/tools'),
                name: 'Tool rules on the body',
                tools: RULES,
                allowedOrigins: ['https://app.example'],
              },
              {
                url: url('/headers'),
                name: 'Tool rules on the headers',
                tools: { ...RULES, operationFrom: 'headers' },
              },
            ],
          });
        },
      ));
      const url = (path: string) => `${proxy.url}${path}`;
      const client = await registerClient(gw.url);
      const grant = async (name: string, path: string, user = 'alice@example.com') => {
        const tokens = await obtainTokens(gw.url, { client, resource: url(path), user });
        token[name] = String(tokens.token.body.access_token);
      };
      await grant('public', '/servers/public');
      await grant('secret', '/servers/secret');
      await grant('legacyAlice', '/servers/legacy');
      await grant('legacyBob', '/servers/legacy', 'bob@example.com');
      await grant('tools', '/tools');
      await grant('headers', '/headers');
    });

    afterAll(async () => {
      await proxy?.stop();
      await gw?.stop();
      await Promise.all(
        [publicBackend, secretBackend, toolsBackend, headersBackend, legacy].map((s) => s?.stop()),
      );
    });

    /**
     * Each probe from its own loopback address: to the proxy's rate limits and the gateway's
     * refusal limit (which rightly slow a prober down) every probe is another client, so
     * every probe reaches the decision it is meant to test.
     */
    let probes = 0;
    const nextAddress = () => {
      probes += 1;
      return `127.0.${1 + Math.floor(probes / 250)}.${1 + (probes % 250)}`;
    };
    const send = (
      path: string,
      bearer: string,
      options: { method?: string; body?: string; headers?: Record<string, string> } = {},
    ) =>
      rawRequest(proxy.port, {
        path,
        method: options.method ?? 'POST',
        body: options.body,
        headers: { authorization: `Bearer ${bearer}`, ...options.headers },
        localAddress: nextAddress(),
      });

    describe('path confusion (issue item 1)', () => {
      it('serves each token at its own server (control)', async () => {
        expect((await send('/servers/secret/x', token.secret!)).body).toContain('"secret"');
        expect((await send('/servers/public/x', token.public!)).body).toContain('"public"');
        expect((await send('/servers/secret/x', token.public!)).status).toBe(401);
      });

      it("never lets a token reach another server's backend, whatever the spelling", async () => {
        const before = secretBackend.requests.length;
        const variants = [
          ...traversals('/servers/public', '/servers', 'secret'),
          ...respellings('/servers', 'secret'),
        ];
        const failures: string[] = [];
        for (const path of variants) {
          for (const method of ['POST', 'GET']) {
            const answer = await send(path, token.public!, { method, body: call('x') });
            if (answer.status >= 500) failures.push(`${method} ${path}: ${answer.status}`);
          }
        }
        expect(failures).toEqual([]);
        const reached = secretBackend.requests.slice(before).map((r) => `${r.method} ${r.path}`);
        expect(reached).toEqual([]);
        // Whatever reached the public backend was a path every reader routes alike.
        for (const seen of publicBackend.requests) {
          expect([seen.path, routedPath(seen.path.split('?')[0]!).ok]).toEqual([seen.path, true]);
        }
      });

      it("refuses the review's reproduction with 400 and a security event, or never routes it", async () => {
        const answer = await send('/servers/public/..%2fsecret/x', token.public!, {
          body: call('x'),
        });
        expect(secretBackend.requests.some((r) => r.path.includes('..'))).toBe(false);
        if (answer.status === 400) {
          expect(gw.logRecords().some((r) => r.security_event === 'ambiguous_path')).toBe(true);
        } else {
          // Traefik routes it to the public server itself, or refuses it at its entry point.
          expect(answer.status).not.toBe(200);
        }
      });
    });

    describe('legacy SSE session binding (issue item 2)', () => {
      it("puts nothing into another user's session, however the session is named", async () => {
        const { status, stream } = await openStream(
          proxy.port,
          '/servers/legacy/sse',
          token.legacyBob!,
        );
        expect(status).toBe(200);
        try {
          expect(await eventually(async () => stream.events.length > 0, 10_000)).toBe(true);
          const endpoint = stream.events[0]!;
          expect(endpoint.event).toBe('endpoint');
          const sessionId = new URL(endpoint.data, 'http://x').searchParams.get('sessionId')!;
          // The victim's client initialises at once: its first POST binds the session to it.
          // (The stream's GET names no session: the id comes back in the server's answer,
          // which forwardAuth never sees, so the first POST naming it is what binds it.)
          const first = await send(
            `/servers/legacy/messages?sessionId=${sessionId}`,
            token.legacyBob!,
            {
              body: JSON.stringify({ jsonrpc: '2.0', id: 'init', method: 'ping' }),
            },
          );
          expect(first.status).toBe(202);
          const post = (query: string, bearer: string, headers: Record<string, string> = {}) =>
            send(`/servers/legacy/messages${query}`, bearer, {
              body: call('echo', 'attacker'),
              headers,
            });
          const attacks: [string, Record<string, string>][] = [
            [`?sessionId=${sessionId}`, {}],
            [`?session%49d=${sessionId}`, {}],
            [`?%73essionId=${sessionId}`, {}],
            [`?session_id=${sessionId}`, {}],
            [`?sessionid=${sessionId}`, {}],
            [`?sessionId[]=${sessionId}`, {}],
            [`?sessionId=mine&sessionId=${sessionId}`, {}],
            [`?sessionId=${sessionId}&sessionId=mine`, {}],
            [`?sessionId=${sessionId}`, { 'mcp-session-id': 'mine' }],
            [`?x=1;sessionId=${sessionId}`, {}],
          ];
          const admitted: string[] = [];
          for (const [query, headers] of attacks) {
            const answer = await post(query, token.legacyAlice!, headers);
            if (answer.status !== 400 && answer.status !== 404) {
              admitted.push(`${query}: ${answer.status}`);
            }
          }
          expect(admitted).toEqual([]);
          // The victim's own call comes back on the victim's stream, and nothing else did.
          const own = await send(
            `/servers/legacy/messages?sessionId=${sessionId}`,
            token.legacyBob!,
            {
              body: JSON.stringify({ jsonrpc: '2.0', id: 'victim', method: 'ping' }),
            },
          );
          expect(own.status).toBe(202);
          expect(
            await eventually(
              async () => stream.events.some((e) => e.data.includes('"victim"')),
              10_000,
            ),
          ).toBe(true);
          expect(stream.events.filter((e) => e.data.includes('attacker'))).toEqual([]);
        } finally {
          stream.close();
        }
      });

      it('relays a session refusal as 404 with its JSON-RPC body (nginx turned it into 500)', async () => {
        const { stream } = await openStream(proxy.port, '/servers/legacy/sse', token.legacyBob!);
        try {
          expect(await eventually(async () => stream.events.length > 0, 10_000)).toBe(true);
          const query = new URL(stream.events[0]!.data, 'http://x').search;
          const first = await send(`/servers/legacy/messages${query}`, token.legacyBob!, {
            body: JSON.stringify({ jsonrpc: '2.0', id: 'init', method: 'ping' }),
          });
          expect(first.status).toBe(202);
          const answer = await send(`/servers/legacy/messages${query}`, token.legacyAlice!, {
            body: call('echo'),
          });
          expect(answer.status).toBe(404);
          expect(JSON.parse(answer.body)).toMatchObject({
            jsonrpc: '2.0',
            error: { code: -32001 },
          });
        } finally {
          stream.close();
        }
      });
    });

    describe('tool rules (issue items 3, 7, 8)', () => {
      const toolsCalls = () => toolsBackend.requests.filter((r) => r.body.includes('tools/call'));

      it('decides on the body: forged Mcp-* headers never let a denied call through', async () => {
        const before = toolsCalls().length;
        const answer = await send('/tools', token.tools!, {
          body: call('delete_everything'),
          headers: { 'mcp-method': 'tools/call', 'mcp-name': 'list_files' },
        });
        expect(answer.status).toBe(kind.forwardsBody ? 400 : 403);
        for (const method of ['PUT', 'PATCH']) {
          const other = await send('/tools', token.tools!, {
            method,
            body: call('delete_everything'),
          });
          expect([method, other.status]).toEqual([method, 403]);
        }
        expect(toolsCalls().slice(before)).toEqual([]);
      });

      it('serves allowed calls where the proxy forwards the body, refuses them (fail closed) where not', async () => {
        const answer = await send('/tools', token.tools!, { body: call('list_files') });
        expect(answer.status).toBe(kind.forwardsBody ? 200 : 403);
        if (!kind.forwardsBody) expect(answer.body).toMatch(/forward the request body/);
      });

      it('believes Mcp-* headers without a body only on a resource that opted in', async () => {
        const allowed = await send('/headers', token.headers!, {
          headers: { 'mcp-method': 'tools/call', 'mcp-name': 'list_files' },
          body: kind.forwardsBody ? call('list_files') : undefined,
        });
        expect(allowed.status).toBe(200);
        const denied = await send('/headers', token.headers!, {
          headers: { 'mcp-method': 'tools/call', 'mcp-name': 'delete_everything' },
        });
        expect(denied.status).toBe(403);
      });

      it('refuses bodies that other JSON decoders read differently, and deep nesting', async () => {
        if (!kind.forwardsBody) return; // No body reaches /verify: refused as unknown above.
        const before = toolsCalls().length;
        for (const body of [
          '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_files","Name":"delete_everything"}}',
          '{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"delete_everything"}}',
          '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_files","name":"delete_everything"}}',
          `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_everything","arguments":${'['.repeat(50_000)}${']'.repeat(50_000)}}}`,
        ]) {
          expect((await send('/tools', token.tools!, { body })).status).toBe(400);
        }
        expect(toolsCalls().slice(before)).toEqual([]);
      });

      it('never lets a CORS preflight reach the MCP server (item 16)', async () => {
        const answer = await send('/tools', 'none', {
          method: 'OPTIONS',
          body: call('delete_everything'),
          headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
        });
        expect(answer.status).not.toBe(200);
        expect(toolsBackend.requests.filter((r) => r.method === 'OPTIONS')).toEqual([]);
      });
    });

    describe('identity headers under another name', () => {
      it('never delivers a header a CGI-style server would read as an identity header', async () => {
        const before = publicBackend.requests.length;
        for (const name of ['X_Auth_User_Id', 'X.Auth.User.Email', 'X-Auth_Scopes']) {
          const answer = await send('/servers/public/x', token.public!, {
            headers: { [name]: 'admin@example.com' },
          });
          // Refused by /verify (400), or dropped on the way (nginx and Traefik drop them).
          expect([name, answer.status === 400 || answer.status === 200]).toEqual([name, true]);
        }
        const aliases = publicBackend.requests
          .slice(before)
          .flatMap((r) => Object.keys(r.headers))
          .filter((name) => /^x[-_.]auth[-_.]/.test(name) && /[_.]/.test(name));
        expect(aliases).toEqual([]);
      });
    });

    describe('the auth host (issue item 15)', () => {
      it.each(['/verify', '/verify?x=1', '/verify/', '/%76erify', '/metrics', '/%6detrics'])(
        'does not serve %s to outside callers',
        async (path) => {
          const answer = await rawRequest(proxy.port, {
            path,
            host: `localhost:${proxy.port}`,
            headers: {
              authorization: `Bearer ${token.secret!}`,
              'x-forwarded-proto': 'http',
              'x-forwarded-host': `127.0.0.1:${proxy.port}`,
              'x-forwarded-uri': '/servers/secret/x',
              'x-forwarded-method': 'POST',
            },
          });
          expect(answer.status).toBe(404);
          expect(answer.headers['x-auth-user-id']).toBeUndefined();
        },
      );

      it('serves the authorization server itself (control)', async () => {
        const answer = await rawRequest(proxy.port, {
          path: '/.well-known/oauth-authorization-server',
          host: `localhost:${proxy.port}`,
        });
        expect(answer.status).toBe(200);
      });
    });

    if (kind.name === 'traefik') {
      describe('Traefik itself (issue item 17)', () => {
        it('refuses encoded delimiters at the entry point (400), before any routing', async () => {
          for (const path of [
            '/servers/public/a%2fb',
            '/servers/public/a%5cb',
            '/servers/public/a%00',
          ]) {
            expect([path, (await send(path, token.public!)).status]).toEqual([path, 400]);
          }
        });

        it('counts open streams per client address, not per host', async () => {
          const streams: Stream[] = [];
          try {
            for (let i = 0; i < 20; i += 1) {
              const opened = await openStream(proxy.port, '/servers/legacy/sse', token.legacyBob!);
              expect(opened.status).toBe(200);
              streams.push(opened.stream);
            }
            const same = await openStream(proxy.port, '/servers/legacy/sse', token.legacyBob!);
            streams.push(same.stream);
            expect(same.status).toBe(429);
            const other = await openStream(
              proxy.port,
              '/servers/legacy/sse',
              token.legacyAlice!,
              '127.0.0.2',
            );
            streams.push(other.stream);
            expect(other.status).toBe(200);
          } finally {
            for (const stream of streams) stream.close();
          }
        });
      });
    }
  });
}
