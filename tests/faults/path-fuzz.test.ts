/**
 * Fault tier: a generated run of forwarded paths and JSON-RPC bodies against `/verify` behind
 * each real proxy (Caddy, nginx, Traefik from their shipped configurations), beside the
 * hand-written cases of tests/e2e/proxy-attacks.test.ts. A seeded generator (set FUZZ_SEED to
 * replay a run, FUZZ_CASES for more) composes paths from the pieces that confuse routers
 * (every encoding of `.`, `/`, `\`, `%`, `;`, case, non-ASCII) and bodies from the pieces that
 * confuse JSON decoders (duplicate and case-folded keys, escaped key names, NUL, nesting,
 * batches). The oracle, for every request:
 *
 * - no 5xx from the proxy or the gateway, and the gateway still answers afterwards;
 * - a token for the public server never reaches the secret server's backend;
 * - a body that reached the tool-rule server's backend names no denied tool under ANY of the
 *   readings a decoder might make: last key wins (JavaScript), first key wins, keys matched
 *   without case (Go's encoding/json), keys cut at NUL (C). A stricter reading never refuses
 *   what the gateway allowed.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { visit } from 'jsonc-parser';
import { describeWithBinary } from '../helpers/binaries.js';
import { seededRandom, type Random } from '../helpers/corpus.js';
import { startCaddy } from '../helpers/caddy.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { startNginx } from '../helpers/nginx.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import type { ProxyOptions, RunningProxy } from '../helpers/proxy-process.js';
import {
  rawRequest,
  startRecordingServer,
  type RecordingServer,
} from '../helpers/recording-server.js';
import { startTraefik } from '../helpers/traefik.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_206);
const CASES = Number(process.env.FUZZ_CASES ?? 600);
const DENIED = 'delete_everything';

const PATH_PIECES = [
  'servers',
  'public',
  'secret',
  'SECRET',
  'Secret',
  'x',
  '.',
  '..',
  '%2e',
  '%2E%2e',
  '.%2e',
  '%2f',
  '%2F',
  '\\',
  '%5c',
  '%5C',
  ';',
  '%3b',
  '%25',
  '%252f',
  '%00',
  '%0a',
  '%20',
  '%c0%af',
  '%c0%ae',
  '%ef%bc%8f',
  '%73ecret',
  'secre%74',
  '~',
  '%7e',
  '/',
  '//',
  '%u002f',
] as const;

function randomPath(random: Random): string {
  const pieces = ['/servers/public/'];
  const count = 1 + Math.floor(random.next() * 8);
  for (let i = 0; i < count; i += 1) pieces.push(random.pick(PATH_PIECES));
  if (random.next() < 0.5) pieces.push('/', random.pick(['secret', 'x', '..', '%2e%2e']), '/x');
  return pieces.join('');
}

const KEY_SPELLINGS: Record<string, readonly string[]> = {
  method: ['method', 'Method', 'METHOD', 'm\\u0065thod', 'method\\u0000', 'meth\\u006Fd'],
  name: ['name', 'Name', 'NAME', 'n\\u0061me', 'name\\u0000', '\\u006eame', 'nam\\u212A'],
  params: ['params', 'Params', 'p\\u0061rams'],
};

function randomBody(random: Random): string {
  const key = (field: string) =>
    random.next() < 0.7 ? field : random.pick(KEY_SPELLINGS[field] ?? [field]);
  const tool = () => (random.next() < 0.5 ? 'list_files' : DENIED);
  const nameMembers = [`"${key('name')}":"${tool()}"`];
  if (random.next() < 0.5) nameMembers.push(`"${key('name')}":"${tool()}"`);
  const depth = random.next() < 0.2 ? 30 + Math.floor(random.next() * 80) : 0;
  const args = depth > 0 ? `${'['.repeat(depth)}${']'.repeat(depth)}` : '{"a":1}';
  const params = `"${key('params')}":{${nameMembers.join(',')},"arguments":${args}}`;
  const methods = [`"${key('method')}":"tools/call"`];
  if (random.next() < 0.3)
    methods.push(`"${key('method')}":"${random.pick(['ping', 'tools/call'])}"`);
  const message = `{"jsonrpc":"2.0","id":${Math.floor(random.next() * 100)},${methods.join(',')},${params}}`;
  return random.next() < 0.2 ? `[${message},${message}]` : message;
}

/** Every (key, value) of an object, duplicates and their order kept: what decoders choose from. */
type Pairs = { pairs: [string, Node][] };
type Node = Pairs | Node[] | string | number | boolean | null;

function parseAllPairs(text: string): Node | undefined {
  const stack: { node: Pairs | Node[]; key?: string }[] = [];
  let root: Node | undefined;
  let key: string | undefined;
  const add = (value: Node) => {
    const top = stack.at(-1);
    if (!top) root = value;
    else if (Array.isArray(top.node)) top.node.push(value);
    else top.node.pairs.push([key!, value]);
  };
  try {
    visit(text, {
      onObjectBegin: () => {
        const node: Pairs = { pairs: [] };
        add(node);
        stack.push({ node });
      },
      onObjectEnd: () => void stack.pop(),
      onArrayBegin: () => {
        const node: Node[] = [];
        add(node);
        stack.push({ node });
      },
      onArrayEnd: () => void stack.pop(),
      onObjectProperty: (property) => {
        key = property;
      },
      onLiteralValue: (value: Node) => add(value),
    });
  } catch {
    return undefined;
  }
  return root;
}

type Reading = (pairs: Pairs, field: string) => Node | undefined;
const fold = (text: string) => text.toLowerCase().toUpperCase().toLowerCase();
const READINGS: Record<string, Reading> = {
  lastWins: (node, field) => node.pairs.findLast(([k]) => k === field)?.[1],
  firstWins: (node, field) => node.pairs.find(([k]) => k === field)?.[1],
  caseless: (node, field) => node.pairs.findLast(([k]) => fold(k) === fold(field))?.[1],
  cutAtNul: (node, field) => node.pairs.findLast(([k]) => k.split('\u0000')[0] === field)?.[1],
};

/** The tools a body calls under one reading. */
function calledTools(body: string, read: Reading): string[] {
  const root = parseAllPairs(body);
  const messages = Array.isArray(root) ? root : [root];
  return messages.flatMap((message) => {
    if (!message || typeof message !== 'object' || Array.isArray(message)) return [];
    if (read(message, 'method') !== 'tools/call') return [];
    const params = read(message, 'params');
    if (!params || typeof params !== 'object' || Array.isArray(params)) return [];
    const name = read(params, 'name');
    return [typeof name === 'string' ? name : ''];
  });
}

interface ProxyKind {
  name: 'caddy' | 'nginx' | 'traefik';
  start(options: ProxyOptions): Promise<RunningProxy>;
}

const KINDS: ProxyKind[] = [
  { name: 'caddy', start: startCaddy },
  { name: 'nginx', start: startNginx },
  { name: 'traefik', start: startTraefik },
];

for (const kind of KINDS) {
  describeWithBinary(kind.name, `generated paths and bodies through ${kind.name}`, () => {
    let gw: RunningGateway;
    let proxy: RunningProxy;
    let publicBackend: RecordingServer;
    let secretBackend: RecordingServer;
    let toolsBackend: RecordingServer;
    let publicToken: string;
    let toolsToken: string;

    beforeAll(async () => {
      [publicBackend, secretBackend, toolsBackend] = await Promise.all([
        startRecordingServer('public'),
        startRecordingServer('secret'),
        startRecordingServer('tools'),
      ]);
      const routes = [
        { path: '/servers/public/*', upstream: publicBackend.url },
        { path: '/servers/secret/*', upstream: secretBackend.url },
        { path: '/tools', upstream: toolsBackend.url },
      ];
      ({ proxy, gw } = await startGatewayBehind(
        (authUrl) => kind.start({ authUrl, routes }),
        (started) => () => ({
          resources: [
            { url: `${started.url}/servers/public`, name: 'Public' },
            { url: `${started.url}/servers/secret`, name: 'Secret' },
            {
              url: `${started.url}/tools`,
              name: 'Tools',
              tools: { default: 'allow', rules: { [DENIED]: { groups: ['dev:nobody'] } } },
            },
          ],
          // The generator is a prober: its refusals must not block the next probes.
          limits: { verifyFailures: { points: 1_000_000, duration: 60 } },
        }),
      ));
      const client = await registerClient(gw.url);
      const token = async (path: string) =>
        String(
          (await obtainTokens(gw.url, { client, resource: `${proxy.url}${path}` })).token.body
            .access_token,
        );
      publicToken = await token('/servers/public');
      toolsToken = await token('/tools');
    });

    afterAll(async () => {
      await proxy?.stop();
      await gw?.stop();
      await Promise.all([publicBackend, secretBackend, toolsBackend].map((s) => s?.stop()));
    });

    let probe = 0;
    const send = (path: string, bearer: string, body: string) => {
      probe += 1;
      return rawRequest(proxy.port, {
        path,
        method: 'POST',
        body,
        headers: { authorization: `Bearer ${bearer}` },
        // Each probe another client to the proxy's own rate limits.
        localAddress: `127.1.${Math.floor(probe / 250) % 250}.${1 + (probe % 250)}`,
      });
    };

    it(`routes no generated path to another server (seed ${SEED}, ${CASES} cases)`, async () => {
      const random = seededRandom(SEED);
      const errors: string[] = [];
      for (let i = 0; i < CASES; i += 1) {
        const path = randomPath(random);
        const answer = await send(path, publicToken, '{}').catch((error: Error) => ({
          status: 0,
          body: error.message,
        }));
        if (answer.status >= 500 || answer.status === 0) {
          errors.push(`${path}: ${answer.status} ${answer.body.slice(0, 80)}`);
        }
      }
      expect(errors).toEqual([]);
      expect(secretBackend.requests.map((r) => r.path)).toEqual([]);
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    });

    it(`lets no generated body call a denied tool under any reading (seed ${SEED})`, async () => {
      const random = seededRandom(SEED + 1);
      const errors: string[] = [];
      for (let i = 0; i < CASES; i += 1) {
        const body = randomBody(random);
        const answer = await send('/tools', toolsToken, body);
        if (answer.status >= 500) errors.push(`${body}: ${answer.status}`);
      }
      expect(errors).toEqual([]);
      const admitted = toolsBackend.requests.flatMap((request) =>
        Object.entries(READINGS)
          .filter(([, read]) => calledTools(request.body, read).includes(DENIED))
          .map(([reading]) => `${reading}: ${request.body}`),
      );
      expect(admitted).toEqual([]);
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    });
  });
}
