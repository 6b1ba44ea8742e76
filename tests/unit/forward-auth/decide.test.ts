/**
 * The `/verify` decision core (src/forward-auth/decide.ts) as a table: a forwardAuth request
 * in, a decision out, and the answer challenges.ts makes of a denial. Real jose-signed tokens,
 * in-memory dependencies; no server, no port.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type {
  SecurityEventDetails,
  SecurityEventKind,
} from '../../../src/events/security-events.js';
import { BodyTooLarge, ClientGone } from '../../../src/http/read-body.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { answerFor, type Answer } from '../../../src/forward-auth/challenges.js';
import {
  decide,
  type Decision,
  type DecisionDependencies,
  type VerifyRequest,
} from '../../../src/forward-auth/decide.js';
import { allowedAnswerHeaders } from '../../../src/forward-auth/identity-headers.js';
import { SessionBindings } from '../../../src/forward-auth/session-binding.js';
import { captureLogger } from '../../helpers/captured-logger.js';
import {
  accessToken,
  ALLOWED_ORIGIN,
  BACKEND_JWT,
  CLIENT,
  decisionParts,
  forwardedHeaders,
  ISSUER,
  PLAIN,
  PROXY,
  signingKey,
  STRICT,
  testVerifier,
  TOOLS,
  type SigningKey,
  type TokenOptions,
} from './fixtures.js';

const PRM_PLAIN = 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp';

interface RequestOptions {
  /** The original request's path and query (`X-Forwarded-Uri`). */
  uri?: string;
  method?: string;
  /** A token (`Authorization: Bearer …`); none when absent. */
  token?: string;
  headers?: Record<string, string>;
  /** The forwarded body, or what reading it throws. */
  body?: string | Error;
  peer?: string;
}

function request(options: RequestOptions = {}): VerifyRequest {
  const headers: Record<string, string> = {
    ...forwardedHeaders(),
    'x-forwarded-uri': options.uri ?? '/mcp',
    'x-forwarded-method': options.method ?? 'POST',
    ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
    ...options.headers,
  };
  const { body } = options;
  return {
    peerAddress: options.peer ?? PROXY,
    headers,
    body: () => {
      if (body instanceof Error) return Promise.reject(body);
      return body === undefined ? undefined : Promise.resolve(Buffer.from(body));
    },
  };
}

interface Harness {
  deps: DecisionDependencies;
  events: { kind: SecurityEventKind; details: SecurityEventDetails }[];
  revoked: Set<string>;
  disabled: Set<string>;
  store: MemoryStore;
}

function harness(overrides: Partial<DecisionDependencies> = {}): Harness {
  const events: Harness['events'] = [];
  const { tokens, revoked, disabled } = testVerifier(key);
  const store = new MemoryStore({ maxEntries: 1000 });
  const deps: DecisionDependencies = {
    ...decisionParts(key, tokens),
    events: { emit: (kind, details) => events.push({ kind, details }) },
    logger: captureLogger('error').logger,
    sessions: new SessionBindings({ store, ttlSeconds: 3600, cacheSize: 100, maxPerOwner: 2 }),
    ...overrides,
  };
  stores.push(store);
  return { deps, events, revoked, disabled, store };
}

let key: SigningKey;
const stores: MemoryStore[] = [];
const token = (options?: TokenOptions) => accessToken(key, options);

beforeAll(async () => {
  key = await signingKey('k1');
});

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
});

/** What a test expects of a denial: its decision, and the answer written for it. */
interface ExpectedDenial {
  reason: string;
  status: number;
  /** Headers the answer must have (exact values, or a pattern). */
  headers?: Record<string, string | RegExp>;
  body?: Record<string, unknown>;
  /** The security event raised, if any. */
  event?: SecurityEventKind;
}

function expectDenied(decision: Decision, expected: ExpectedDenial): Answer {
  if (decision.kind !== 'deny') throw new Error(`expected a denial, got ${decision.kind}`);
  expect(decision.reason).toBe(expected.reason);
  const answer = answerFor(decision.denial);
  expect(answer.status).toBe(expected.status);
  for (const [name, value] of Object.entries(expected.headers ?? {})) {
    if (typeof value === 'string') expect(answer.headers[name]).toBe(value);
    else expect(answer.headers[name]).toMatch(value);
  }
  expect(answer.headers['Content-Length']).toBe(String(Buffer.byteLength(answer.body)));
  if (expected.body) expect(JSON.parse(answer.body)).toMatchObject(expected.body);
  return answer;
}

interface Row {
  name: string;
  /** The request; async to mint its token. */
  request: () => Promise<VerifyRequest>;
  /** Changes to the harness before the decision. */
  arrange?: (harness: Harness) => void;
  expected: ExpectedDenial;
}

const denials: Row[] = [
  {
    name: 'no token: 401 with the RFC 9728 challenge, no error parameter, no event',
    request: async () => request(),
    expected: {
      reason: 'no_token',
      status: 401,
      headers: {
        'WWW-Authenticate': `Bearer resource_metadata="${PRM_PLAIN}", scope="mcp"`,
        'X-Auth-Error-Body': /"resource_metadata":"https:\/\/mcp\.example\.com\/\.well-known/,
        'Cache-Control': 'no-store',
      },
      body: { error: 'unauthorized', resource_metadata: PRM_PLAIN },
    },
  },
  {
    name: 'a token for another resource: 401 invalid_token (audience)',
    request: async () => request({ token: await token({ aud: TOOLS }) }),
    expected: {
      reason: 'audience',
      status: 401,
      headers: { 'WWW-Authenticate': /^Bearer error="invalid_token", error_description=/ },
      body: {
        error: 'invalid_token',
        error_description: 'the token was issued for another resource',
      },
      event: 'invalid_token',
    },
  },
  {
    name: 'an expired token: 401 invalid_token (expired)',
    request: async () => request({ token: await token({ expiresIn: -60 }) }),
    expected: {
      reason: 'expired',
      status: 401,
      body: { error: 'invalid_token', error_description: 'the token expired' },
      event: 'invalid_token',
    },
  },
  {
    name: 'a token of a revoked grant: 401 invalid_token (revoked)',
    request: async () => request({ token: await token({ grantId: 'grant-revoked' }) }),
    arrange: ({ revoked }) => revoked.add('grant-revoked'),
    expected: { reason: 'revoked', status: 401, event: 'invalid_token' },
  },
  {
    name: 'a token of a disabled client: 401 invalid_token (client_disabled)',
    request: async () => request({ token: await token({ clientId: 'client-off' }) }),
    arrange: ({ disabled }) => disabled.add('client-off'),
    expected: { reason: 'client_disabled', status: 401, event: 'invalid_token' },
  },
  {
    name: 'an ID token (typ JWT) is not an access token: 401 (type)',
    request: async () => request({ token: await token({ typ: 'JWT' }) }),
    expected: { reason: 'type', status: 401, event: 'invalid_token' },
  },
  {
    name: 'empty Bearer credentials: 401 (malformed)',
    request: async () => request({ headers: { authorization: 'Bearer ' } }),
    expected: {
      reason: 'malformed',
      status: 401,
      body: { error_description: 'the Bearer credentials are empty' },
      event: 'invalid_token',
    },
  },
  {
    name: 'a subrequest from an untrusted peer: 400, whatever it claims',
    request: async () => request({ token: await token(), peer: '192.0.2.99' }),
    expected: {
      reason: 'untrusted_proxy',
      status: 400,
      body: { error: 'invalid_request' },
      event: 'untrusted_proxy',
    },
  },
  {
    name: 'a path a proxy could route elsewhere: 400 ambiguous_path, before the token',
    request: async () => request({ uri: '/mcp/%2e%2e/tools', token: await token() }),
    expected: { reason: 'ambiguous_path', status: 400, event: 'ambiguous_path' },
  },
  {
    name: 'a header aliasing an identity header: 400',
    request: async () => request({ token: await token(), headers: { x_auth_user_id: 'bob' } }),
    expected: { reason: 'ambiguous_header', status: 400, event: 'ambiguous_header' },
  },
  {
    name: 'a URL under no resource: 403 no_resource (deny by default)',
    request: async () => request({ uri: '/elsewhere', token: await token() }),
    expected: { reason: 'no_resource', status: 403, body: { error: 'access_denied' } },
  },
  {
    name: 'a browser Origin not allowed: 403 JSON-RPC, before the token',
    request: async () => request({ headers: { origin: 'https://evil.example' } }),
    expected: {
      reason: 'origin',
      status: 403,
      body: { jsonrpc: '2.0', id: null, error: { code: -32001 } },
      event: 'origin_refused',
    },
  },
  {
    name: 'a token without the baseline scopes: 403 insufficient_scope with every scope',
    request: async () => request({ uri: '/strict', token: await token({ aud: STRICT }) }),
    expected: {
      reason: 'insufficient_scope',
      status: 403,
      headers: { 'WWW-Authenticate': /^Bearer error="insufficient_scope", scope="mcp strict"/ },
      body: { error: 'insufficient_scope', scope: 'mcp strict' },
    },
  },
  {
    name: 'revocations that cannot be read: 503',
    request: async () => request({ token: await token() }),
    arrange: (harness) => {
      harness.deps.revocations = { usable: () => false };
    },
    expected: { reason: 'store_unavailable', status: 503, headers: { 'Retry-After': '5' } },
  },
  {
    name: 'a client IP over limits.verifyFailures: 429 with Retry-After',
    request: async () => request({ token: await token() }),
    arrange: (harness) => {
      harness.deps.failureLimiter = { active: true, isBlocked: (ip) => (ip === CLIENT ? 42 : 0) };
    },
    expected: {
      reason: 'rate_limited',
      status: 429,
      headers: { 'Retry-After': '42' },
      body: { error: 'too_many_requests' },
    },
  },
  {
    name: 'a tool the rules refuse: 403 JSON-RPC error with the call id',
    request: async () =>
      request({
        uri: '/tools',
        token: await token({ aud: TOOLS }),
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 7,
          method: 'tools/call',
          params: { name: 'delete_all', arguments: { really: true } },
        }),
      }),
    expected: {
      reason: 'tool_denied',
      status: 403,
      body: {
        jsonrpc: '2.0',
        id: 7,
        error: { code: -32001, message: 'Forbidden: you may not call the tool "delete_all"' },
      },
      event: 'tool_denied',
    },
  },
  {
    name: 'a tool that needs another scope: 403 insufficient_scope, the scopes to step up to',
    request: async () =>
      request({
        uri: '/tools',
        token: await token({ aud: TOOLS }),
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_file"}}',
      }),
    expected: {
      reason: 'insufficient_scope',
      status: 403,
      body: { error: 'insufficient_scope', scope: 'mcp files:write' },
      event: 'tool_denied',
    },
  },
  {
    name: 'Mcp-Method saying another thing than the body: 400',
    request: async () =>
      request({
        uri: '/tools',
        token: await token({ aud: TOOLS }),
        headers: { 'mcp-method': 'tools/list' },
        body: '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_all"}}',
      }),
    expected: {
      reason: 'bad_request',
      status: 400,
      body: { jsonrpc: '2.0', id: 2, error: { code: -32600 } },
      event: 'header_body_mismatch',
    },
  },
  {
    name: 'a body two JSON decoders would read differently: 400, unread',
    request: async () =>
      request({
        uri: '/tools',
        token: await token({ aud: TOOLS }),
        body: '{"jsonrpc":"2.0","id":3,"method":"tools/list","method":"tools/call"}',
      }),
    expected: {
      reason: 'bad_request',
      status: 400,
      body: { error: { code: -32600, message: 'Invalid Request: duplicate key in JSON object' } },
      event: 'unreadable_body',
    },
  },
  {
    name: 'no body where a call could be: 403 operation_unknown (fail closed)',
    request: async () => request({ uri: '/tools', token: await token({ aud: TOOLS }) }),
    expected: { reason: 'operation_unknown', status: 403, body: { error: { code: -32001 } } },
  },
  {
    name: 'a body over verify.maxBodySize: 413',
    request: async () =>
      request({ uri: '/tools', token: await token({ aud: TOOLS }), body: new BodyTooLarge() }),
    expected: { reason: 'body_too_large', status: 413, body: { error: { code: -32600 } } },
  },
  {
    name: 'two MCP sessions named at once: 400',
    request: async () =>
      request({
        uri: '/mcp?sessionId=b',
        token: await token(),
        headers: { 'mcp-session-id': 'a' },
      }),
    expected: { reason: 'bad_request', status: 400, event: 'ambiguous_session' },
  },
];

describe('decide: denials', () => {
  it.each(denials)('$name', async (row) => {
    const setup = harness();
    row.arrange?.(setup);
    const decision = await decide(await row.request(), setup.deps);
    expectDenied(decision, row.expected);
    expect(setup.events.map((event) => event.kind)).toEqual(
      row.expected.event ? [row.expected.event] : [],
    );
  });

  it('gives the security event and the decision the original client address', async () => {
    const setup = harness();
    const decision = await decide(request({ token: await token({ aud: TOOLS }) }), setup.deps);
    expect(decision.clientIp()).toBe(CLIENT);
    expect(setup.events[0]?.details).toMatchObject({ ip: CLIENT, resource: PLAIN });
    // Before the proxy is trusted, only the peer is known.
    const untrusted = await decide(request({ peer: '192.0.2.99' }), setup.deps);
    expect(untrusted.clientIp()).toBe('192.0.2.99');
  });

  it('records a refused tool call by name and a hash of its arguments, never the arguments', async () => {
    const setup = harness();
    const args = { path: '/etc/passwd' };
    const decision = await decide(
      request({
        uri: '/tools',
        token: await token({ aud: TOOLS }),
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'delete_all', arguments: args },
        }),
      }),
      setup.deps,
    );
    if (decision.kind !== 'deny') throw new Error(decision.kind);
    expect(decision.tool).toBe('delete_all');
    expect(decision.argumentsHash).toBe(
      createHash('sha256').update(JSON.stringify(args)).digest('hex'),
    );
    expect(decision.token?.sub).toBe('alice');
    expect(decision.resource).toBe(TOOLS);
  });
});

describe('decide: allowed', () => {
  it('allows a valid token, with the identity headers the MCP server receives', async () => {
    const setup = harness();
    const decision = await decide(request({ token: await token() }), setup.deps);
    if (decision.kind !== 'allow') throw new Error(decision.kind);
    expect(decision.resource).toBe(PLAIN);
    expect(decision.authorization).toBe('');
    expect(allowedAnswerHeaders(decision.token, decision.resource, '')).toEqual({
      'X-Auth-User-Id': 'alice',
      'X-Auth-User-Email': 'alice@example.com',
      'X-Auth-User-Name': 'Zo%C3%AB Example',
      'X-Auth-User-Groups': 'corp:staff',
      'X-Auth-Client-Id': 'client-1',
      'X-Auth-Scopes': 'mcp',
      Authorization: '',
      'Cache-Control': 'no-store',
      'Content-Length': '0',
    });
    expect(setup.events).toEqual([]);
  });

  it('decides a cached token synchronously: no promise on the hot path', async () => {
    const setup = harness();
    const bearer = await token();
    const first = decide(request({ token: bearer }), setup.deps);
    expect(first).toBeInstanceOf(Promise);
    expect((await first).kind).toBe('allow');
    const again = decide(request({ token: bearer }), setup.deps);
    expect(again).not.toBeInstanceOf(Promise);
    expect((again as Decision).kind).toBe('allow');
    // A refusal of a cached token (revoked since) is synchronous too.
    setup.revoked.add('grant-1');
    const revoked = decide(request({ token: bearer }), setup.deps);
    expect(revoked).not.toBeInstanceOf(Promise);
    expectDenied(revoked as Decision, { reason: 'revoked', status: 401 });
  });

  it('allows a call the tool rules allow, after reading the body', async () => {
    const setup = harness();
    const decision = await decide(
      request({
        uri: '/tools',
        token: await token({ aud: TOOLS, groups: ['corp:admins'] }),
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_all"}}',
      }),
      setup.deps,
    );
    expect(decision.kind).toBe('allow');
  });

  it('allows a browser Origin the resource allows, in any case', async () => {
    const setup = harness();
    const decision = await decide(
      request({ token: await token(), headers: { origin: ALLOWED_ORIGIN.toUpperCase() } }),
      setup.deps,
    );
    expect(decision.kind).toBe('allow');
    expect(setup.events).toEqual([]);
  });

  it('does not read the body of a request to a resource without tool rules', async () => {
    const setup = harness();
    let read = false;
    const plain = request({ token: await token() });
    const decision = await decide(
      {
        ...plain,
        body: () => {
          read = true;
          return undefined;
        },
      },
      setup.deps,
    );
    expect(decision.kind).toBe('allow');
    expect(read).toBe(false);
  });

  it('replaces Authorization with a JWT signed for the backend, reused while fresh', async () => {
    const setup = harness();
    const bearer = await token({ aud: BACKEND_JWT });
    const decision = await decide(request({ uri: '/backend', token: bearer }), setup.deps);
    if (decision.kind !== 'allow') throw new Error(decision.kind);
    const jwt = decision.authorization.replace(/^Bearer /, '');
    expect(jwt).not.toBe(bearer);
    expect(decodeProtectedHeader(jwt)).toMatchObject({ typ: 'mcp-gateway+jwt', kid: 'k1' });
    expect(decodeJwt(jwt)).toMatchObject({ iss: ISSUER, sub: 'alice', aud: BACKEND_JWT });
    const again = await decide(request({ uri: '/backend', token: bearer }), setup.deps);
    expect(again.kind === 'allow' && again.authorization).toBe(decision.authorization);
    expect(allowedAnswerHeaders(decision.token, BACKEND_JWT, decision.authorization)).toMatchObject(
      { Authorization: decision.authorization },
    );
  });
});

describe('decide: MCP sessions', () => {
  it('binds a session to its first user: another user gets 404, as for no session', async () => {
    const setup = harness();
    const session = { headers: { 'mcp-session-id': 'session-1' } };
    const aliceToken = await token();
    const alice = await decide(request({ token: aliceToken, ...session }), setup.deps);
    expect(alice.kind).toBe('allow');
    const bob = await decide(
      request({ token: await token({ sub: 'bob' }), ...session }),
      setup.deps,
    );
    expectDenied(bob, {
      reason: 'session_mismatch',
      status: 404,
      body: { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' } },
    });
    expect(setup.events).toEqual([
      {
        kind: 'session_mismatch',
        details: { ip: CLIENT, resource: PLAIN, subject: 'bob', clientId: 'client-1' },
      },
    ]);
    // The binding is known now: alice's next request is decided without the store, at once.
    const known = decide(request({ token: aliceToken, ...session }), setup.deps);
    expect(known).not.toBeInstanceOf(Promise);
    expect(known).toMatchObject({ kind: 'allow' });
  });

  it('refuses new sessions past the per-user quota with 429 and Retry-After', async () => {
    const setup = harness();
    const bearer = await token();
    for (const id of ['s1', 's2']) {
      const decision = await decide(
        request({ token: bearer, headers: { 'mcp-session-id': id } }),
        setup.deps,
      );
      expect(decision.kind).toBe('allow');
    }
    const third = await decide(
      request({ token: bearer, headers: { 'mcp-session-id': 's3' } }),
      setup.deps,
    );
    expectDenied(third, {
      reason: 'session_quota',
      status: 429,
      headers: { 'Retry-After': '60' },
      event: 'rate_limited',
    });
    expect(setup.events[0]).toMatchObject({ kind: 'rate_limited', details: { route: 'session' } });
  });

  it('answers 503 when the bindings cannot be read', async () => {
    const setup = harness();
    await setup.store.close();
    const decision = await decide(
      request({ token: await token(), headers: { 'mcp-session-id': 'x' } }),
      setup.deps,
    );
    expectDenied(decision, { reason: 'store_unavailable', status: 503 });
  });
});

describe('decide: failures', () => {
  it('returns what failed (with what was known) instead of throwing', async () => {
    const setup = harness();
    const gone = new ClientGone();
    const decision = await decide(
      request({ uri: '/tools', token: await token({ aud: TOOLS }), body: gone }),
      setup.deps,
    );
    expect(decision).toMatchObject({ kind: 'failed', error: gone, resource: TOOLS });
    expect(decision.token?.sub).toBe('alice');
  });
});
