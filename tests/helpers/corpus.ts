/**
 * A deterministic corpus of malformed requests for every endpoint of the auth service, and a
 * raw HTTP/1.1 client to send them with.
 *
 * fetch (undici) and node:http refuse to send much of what an attacker sends (CR/LF in header
 * values, raw non-UTF-8 bytes in the request line, no Host header, duplicated headers in a
 * chosen order), so requests are written byte for byte on a TCP socket.
 *
 * The corpus is generated from a seeded PRNG (mulberry32): the same seed gives the same cases,
 * so a failure names a case that can be replayed. Each case says what the answer must be:
 * which status class, and which body format the endpoint documents.
 */
import { connect } from 'node:net';

/* ------------------------------------------------------------------------------------------ */
/* Seeded randomness                                                                           */
/* ------------------------------------------------------------------------------------------ */

export interface Random {
  /** In [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  /** `count` distinct items (or all of them when there are fewer). */
  sample<T>(items: readonly T[], count: number): T[];
  bytes(length: number): Buffer;
  /** A string of `length` characters drawn from `alphabet`. */
  string(length: number, alphabet?: string): string;
}

/** mulberry32: small, fast, good enough to pick test inputs, and fully determined by `seed`. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)]!;
  return {
    next,
    int,
    pick,
    sample: <T>(items: readonly T[], count: number): T[] => {
      const pool = [...items];
      const chosen: T[] = [];
      while (chosen.length < count && pool.length > 0) {
        chosen.push(pool.splice(int(0, pool.length - 1), 1)[0]!);
      }
      return chosen;
    },
    bytes: (length: number) => Buffer.from(Array.from({ length }, () => int(0, 255))),
    string: (
      length: number,
      alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~',
    ) => Array.from({ length }, () => alphabet[int(0, alphabet.length - 1)]).join(''),
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Raw HTTP/1.1                                                                                */
/* ------------------------------------------------------------------------------------------ */

export type HeaderValue = string | Buffer;

export interface RawRequest {
  method: string;
  /** The request target exactly as written on the request line (may hold any bytes). */
  target: string | Buffer;
  /** In order, duplicates allowed. A `Host` header is added unless `noHost` is set. */
  headers?: [string, HeaderValue][];
  body?: string | Buffer;
  /** Send no Host header at all (HTTP/1.1 requires one). */
  noHost?: boolean;
  /** Do not add Content-Length for the body (e.g. the case sets Transfer-Encoding itself). */
  noContentLength?: boolean;
}

export interface RawResponse {
  status: number;
  /** Lower-case names; repeated headers joined with `, ` (set-cookie with `\n`). */
  headers: Record<string, string>;
  body: Buffer;
}

/** The connection ended before any status line arrived. */
export class NoAnswer extends Error {}

/**
 * Sends one request on a fresh connection and reads one answer. A write error after the server has answered (it refused a large body and closed) is not
 * an error: the answer is what counts.
 */
export function sendRaw(
  base: string,
  request: RawRequest,
  timeoutMs = 30_000,
): Promise<RawResponse> {
  const url = new URL(base);
  const head: Buffer[] = [
    Buffer.from(`${request.method} `, 'latin1'),
    typeof request.target === 'string' ? Buffer.from(request.target, 'latin1') : request.target,
    Buffer.from(' HTTP/1.1\r\n', 'latin1'),
  ];
  const names = new Set((request.headers ?? []).map(([name]) => name.toLowerCase()));
  if (!request.noHost && !names.has('host')) head.push(Buffer.from(`Host: ${url.host}\r\n`));
  for (const [name, value] of request.headers ?? []) {
    head.push(Buffer.from(`${name}: `, 'latin1'));
    head.push(typeof value === 'string' ? Buffer.from(value, 'latin1') : value);
    head.push(Buffer.from('\r\n', 'latin1'));
  }
  const body =
    request.body === undefined
      ? undefined
      : typeof request.body === 'string'
        ? Buffer.from(request.body, 'utf8')
        : request.body;
  if (body && !request.noContentLength && !names.has('content-length')) {
    head.push(Buffer.from(`Content-Length: ${body.length}\r\n`));
  }
  // Keep-alive, and close from this side once the answer is in: a server that answers before
  // reading a large body then drains it, where `Connection: close` would make it close with
  // unread data, i.e. reset the connection, which can destroy the answer before it is read.
  if (!names.has('connection')) head.push(Buffer.from('Connection: keep-alive\r\n'));
  head.push(Buffer.from('\r\n'));

  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const received = Buffer.concat(chunks);
      const parsed = parseResponse(received);
      if (parsed) resolve(parsed);
      else reject(error ?? new NoAnswer(`no answer (${received.length} bytes received)`));
    };
    const timer = setTimeout(
      () => finish(new NoAnswer(`no complete answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      // Stop as soon as a complete answer is in (the server may keep reading a large body).
      if (parseResponse(Buffer.concat(chunks), true)) finish();
    });
    socket.once('end', () => finish());
    socket.once('close', () => finish());
    socket.on('error', (error) => {
      // EPIPE/ECONNRESET while writing a body the server did not want: wait for the answer
      // already in flight ('close' follows), fail only if none came.
      if (chunks.length === 0) setTimeout(() => finish(error), 50);
    });
    socket.once('connect', () => {
      socket.write(Buffer.concat(head));
      if (body) socket.write(body);
    });
  });
}

/**
 * Parses a complete HTTP/1.1 answer; `undefined` while it is incomplete. With `strict`, an
 * answer without Content-Length and not chunked is complete only at the end of the stream.
 */
function parseResponse(data: Buffer, strict = false): RawResponse | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!statusMatch) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] =
      headers[name] === undefined
        ? value
        : `${headers[name]}${name === 'set-cookie' ? '\n' : ', '}${value}`;
  }
  const rest = data.subarray(end + 4);
  let body: Buffer | undefined;
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    body = decodeChunked(rest);
  } else if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.length >= length) body = rest.subarray(0, length);
  } else if (!strict) {
    body = rest;
  }
  if (body === undefined) return undefined;
  return { status: Number(statusMatch[1]), headers, body };
}

function decodeChunked(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset);
    if (lineEnd < 0) return undefined;
    const size = parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16);
    if (Number.isNaN(size)) return undefined;
    if (size === 0) return Buffer.concat(parts);
    const start = lineEnd + 2;
    if (data.length < start + size + 2) return undefined;
    parts.push(data.subarray(start, start + size));
    offset = start + size + 2;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* What an answer must be                                                                      */
/* ------------------------------------------------------------------------------------------ */

export type Expectation =
  /** An OAuth/JSON endpoint: 4xx, JSON body with an `error` string. */
  | { kind: 'json-error'; status?: number[] }
  /**
   * `/verify`: 4xx, JSON body with an `error` string (RFC 6750 / OAuth style) or a JSON-RPC
   * error object `{ code, message }` (challenges.ts), repeated in `X-Auth-Error-Body`.
   */
  | { kind: 'verify-denial'; status?: number[] }
  /** A browser-facing page (login, consent, or an /authorize request that cannot be trusted
   *  to redirect): 4xx HTML, never a redirect. */
  | { kind: 'page'; status?: number[] }
  /** /authorize with a client and redirect URI it can trust: 303 back to the registered
   *  redirect URI with `error` and `iss` (RFC 6749 §4.1.2.1, RFC 9207). */
  | { kind: 'error-redirect'; error?: string }
  /** /authorize where the garbage is in what the server may ignore (RFC 6749 §3.3: unknown
   *  scopes; `state` is opaque): 303 to the login interaction. */
  | { kind: 'login-redirect' }
  /** Fuzzed /authorize: any of the documented outcomes above. */
  | { kind: 'authorize-any' }
  /** A path that is no endpoint: 404 (any body). */
  | { kind: 'not-found' }
  /** RFC 7009 §2.2 / RFC 7662 §2.2: an unknown token from an authenticated client is answered
   *  with 200 (revocation: empty; introspection: `{"active":false}`). */
  | { kind: 'ok'; active?: false }
  /** Only Node's HTTP parser can answer (headers over 16 KB, an unreadable request line). */
  | { kind: 'parser-refusal'; status: number[] };

export interface CorpusCase {
  id: string;
  /** The endpoint family, for the summary. */
  endpoint: string;
  request: RawRequest;
  expect: Expectation;
  /**
   * The request may be refused by Node's HTTP parser before the application sees it (431 for
   * headers over 16 KB, 400 for CR/LF or invalid characters, 400 for no Host): such an answer
   * has no body and cannot be JSON. Allowed only where the case says so.
   */
  transport?: boolean;
}

export interface Verdict {
  ok: boolean;
  reason?: string;
}

/** Node's own refusal (http_server.js `socketOnError`): no Content-Type, empty body. */
export function isTransportRefusal(response: RawResponse): boolean {
  return (
    [400, 413, 414, 431].includes(response.status) &&
    response.headers['content-type'] === undefined &&
    response.body.length === 0
  );
}

function jsonBody(response: RawResponse): Record<string, unknown> | undefined {
  if (!/^application\/json/i.test(response.headers['content-type'] ?? '')) return undefined;
  try {
    const parsed: unknown = JSON.parse(response.body.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

const is4xx = (status: number) => status >= 400 && status < 500;

/** Checks one answer against what its case expects. */
export function judge(
  testCase: CorpusCase,
  response: RawResponse,
  context: { redirectUri: string; issuer: string },
): Verdict {
  const { status } = response;
  const fail = (reason: string): Verdict => ({ ok: false, reason });
  if (status >= 500) return fail(`server error ${status}`);
  if (testCase.transport && isTransportRefusal(response)) return { ok: true };
  const expect = testCase.expect;
  const statusAllowed = (allowed?: number[]) =>
    allowed ? allowed.includes(status) : is4xx(status);
  const location = response.headers.location;

  switch (expect.kind) {
    case 'json-error':
    case 'verify-denial': {
      if (!statusAllowed(expect.status)) return fail(`status ${status}`);
      const json = jsonBody(response);
      if (!json) return fail(`not a JSON object (${response.headers['content-type']})`);
      const error = json.error;
      const jsonRpcError =
        expect.kind === 'verify-denial' &&
        json.jsonrpc === '2.0' &&
        typeof error === 'object' &&
        error !== null &&
        typeof (error as Record<string, unknown>).code === 'number' &&
        typeof (error as Record<string, unknown>).message === 'string';
      if (typeof error !== 'string' && !jsonRpcError) return fail('no `error` in the JSON body');
      // The header carries the same JSON, with non-ASCII written as \u escapes (header values
      // are bytes): compare what the two parse to.
      if (
        expect.kind === 'verify-denial' &&
        !sameJson(response.headers['x-auth-error-body'], response.body.toString('utf8'))
      ) {
        return fail('X-Auth-Error-Body does not repeat the body');
      }
      return { ok: true };
    }
    case 'page':
      if (!statusAllowed(expect.status)) return fail(`status ${status}`);
      if (location !== undefined) return fail(`redirects to ${location}`);
      if (!/^text\/html/i.test(response.headers['content-type'] ?? ''))
        return fail(`not a page (${response.headers['content-type']})`);
      return { ok: true };
    case 'error-redirect':
      return checkErrorRedirect(response, context, expect.error);
    case 'login-redirect':
      return checkLoginRedirect(response);
    case 'authorize-any': {
      if (is4xx(status)) return judge({ ...testCase, expect: { kind: 'page' } }, response, context);
      const asError = checkErrorRedirect(response, context);
      return asError.ok ? asError : checkLoginRedirect(response);
    }
    case 'parser-refusal':
      return isTransportRefusal(response) && expect.status.includes(status)
        ? { ok: true }
        : fail(
            `status ${status} (${response.headers['content-type']}), expected Node's ${expect.status.join('/')}`,
          );
    case 'not-found':
      return status === 404 ? { ok: true } : fail(`status ${status}, expected 404`);
    case 'ok': {
      if (status !== 200) return fail(`status ${status}, expected 200`);
      if (expect.active === false && jsonBody(response)?.active !== false)
        return fail('introspection answer is not {"active":false}');
      return { ok: true };
    }
  }
}

function checkErrorRedirect(
  response: RawResponse,
  context: { redirectUri: string; issuer: string },
  error?: string,
): Verdict {
  const location = response.headers.location;
  if (response.status !== 303 || !location)
    return { ok: false, reason: `status ${response.status}, expected 303 to the redirect URI` };
  const target = new URL(location, context.issuer);
  if (`${target.origin}${target.pathname}` !== context.redirectUri)
    return { ok: false, reason: `redirects to ${location}` };
  // response_type=token answers in the fragment (response_mode default of that type).
  const params = new URLSearchParams(target.search || target.hash.slice(1));
  if (!params.get('error')) return { ok: false, reason: `redirect without error: ${location}` };
  if (error && params.get('error') !== error)
    return { ok: false, reason: `error ${params.get('error')}, expected ${error}` };
  if (params.get('iss') !== context.issuer) return { ok: false, reason: 'redirect without iss' };
  return { ok: true };
}

function checkLoginRedirect(response: RawResponse): Verdict {
  const location = response.headers.location ?? '';
  if (response.status === 303 && /^\/interaction\/[\w-]+$/.test(location)) return { ok: true };
  return {
    ok: false,
    reason: `status ${response.status} ${location}, expected 303 to /interaction/…`,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* The corpus                                                                                  */
/* ------------------------------------------------------------------------------------------ */

export interface CorpusContext {
  /** A registered public client (authorization_code + refresh_token, PKCE). */
  clientId: string;
  redirectUri: string;
  /** Its RFC 7592 registration access token, and another client's. */
  registrationAccessToken: string;
  otherRegistrationAccessToken: string;
  /** A valid access token for the protected resource (which has tool rules). */
  accessToken: string;
  /** The protected resource's public host and path, as Traefik would forward them. */
  resourceHost: string;
  resourcePath: string;
  /** A tool the resource's rules allow, and one they refuse. */
  allowedTool: string;
  deniedTool: string;
}

const MB = 1024 * 1024;

/** Invalid UTF-8: an overlong `/`, a lone continuation byte, bytes never valid, a truncated
 *  sequence, a surrogate encoded in UTF-8. */
export const INVALID_UTF8: Buffer[] = [
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0x80]),
  Buffer.from([0xff, 0xfe]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
];

/** Invalid UTF-8 as percent-encodings (what a URL can carry). */
export const INVALID_PERCENT = [
  '%C0%AF',
  '%80',
  '%FF%FE',
  '%E2%82',
  '%ED%A0%80',
  '%',
  '%G0',
  '%00',
];

/** Strings that have broken parsers, templates, logs or URL handling somewhere. */
export const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\u202e\u0041',
  '💥'.repeat(50),
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  "' OR '1'='1",
  '${jndi:ldap://127.0.0.1/x}',
  '{{7*7}}',
  '__proto__',
  'constructor',
  'javascript:alert(1)',
  'http://',
  'file:///etc/passwd',
  'data:text/html,<b>x</b>',
  'http://169.254.169.254/latest/meta-data/',
  '\r\nX-Injected: 1',
  'a'.repeat(10_000),
];

/** Values of the wrong JSON type, by the type the field should have. */
function wrongValues(kind: 'string' | 'strings' | 'number' | 'boolean' | 'object'): unknown[] {
  const deep = (depth: number): unknown => (depth === 0 ? 'x' : { a: deep(depth - 1) });
  const common = [{ $gt: '' }, [[['x']]], 1e308, -1, 1.5, deep(60)];
  switch (kind) {
    case 'string':
      return [42, true, {}, ['a', 'b'], [1], ...common];
    case 'strings':
      return ['http://127.0.0.1:1/cb', 42, true, {}, [1, 2], [{}], [null], [[]], ...common];
    case 'number':
      return ['3600', true, {}, [], 'abc', -1e308, ...common];
    case 'boolean':
      return ['true', 1, 0, {}, [], 'yes'];
    case 'object':
      return ['{}', 42, [], true, { keys: 'x' }, { keys: [1] }, { keys: [{ kty: 42 }] }];
  }
}

/**
 * RFC 7591 / OpenID Connect Dynamic Registration metadata the server understands, by type
 * (oidc-provider's RECOGNIZED_METADATA; RFC 7591 §2 has a server ignore the rest, so wrong
 * types in e.g. `software_id` are rightly accepted and dropped).
 */
export const DCR_FIELDS: [string, 'string' | 'strings' | 'number' | 'boolean' | 'object'][] = [
  ['redirect_uris', 'strings'],
  ['token_endpoint_auth_method', 'string'],
  ['grant_types', 'strings'],
  ['response_types', 'strings'],
  ['client_name', 'string'],
  ['client_uri', 'string'],
  ['logo_uri', 'string'],
  ['scope', 'string'],
  ['contacts', 'strings'],
  ['tos_uri', 'string'],
  ['policy_uri', 'string'],
  ['jwks_uri', 'string'],
  ['jwks', 'object'],
  ['response_modes', 'strings'],
  ['application_type', 'string'],
  ['subject_type', 'string'],
  ['id_token_signed_response_alg', 'string'],
  ['token_endpoint_auth_signing_alg', 'string'],
  ['default_max_age', 'number'],
  ['require_auth_time', 'boolean'],
  ['default_acr_values', 'strings'],
  ['initiate_login_uri', 'string'],
  ['sector_identifier_uri', 'string'],
];

/** Percent-encodes the UTF-8 bytes of `value` (a lone surrogate becomes U+FFFD's bytes, where
 *  encodeURIComponent would throw). */
function percentEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const char = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(char)
      ? char
      : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const form = (params: [string, string][]) =>
  params.map(([name, value]) => `${percentEncode(name)}=${percentEncode(value)}`).join('&');

const FORM = ['Content-Type', 'application/x-www-form-urlencoded'] as [string, string];
const JSON_TYPE = ['Content-Type', 'application/json'] as [string, string];

/** Flips, inserts and deletes a few random bytes (printable ASCII only, when `ascii`). */
function mutate(random: Random, input: Buffer, ascii = false): Buffer {
  const bytes = [...input];
  const edits = random.int(1, 6);
  const special = ascii
    ? [0x22, 0x5b, 0x5d, 0x7b, 0x7d, 0x2c, 0x3a, 0x5c]
    : [0x00, 0x22, 0x5b, 0x7b, 0x25, 0xc0, 0xff, 0x26, 0x3d];
  for (let i = 0; i < edits; i += 1) {
    const at = random.int(0, Math.max(0, bytes.length - 1));
    const op = random.int(0, 2);
    if (op === 0 && bytes.length > 0)
      bytes[at] = ascii ? random.int(0x20, 0x7e) : random.int(0, 255);
    else if (op === 1) bytes.splice(at, 0, random.pick(special));
    else bytes.splice(at, 1);
  }
  return Buffer.from(bytes);
}

/**
 * Builds the corpus. `seed` fixes every random choice; the context supplies the few real
 * values (a client, tokens) that let garbage reach past the first check of an endpoint.
 */
export function buildCorpus(seed: number, ctx: CorpusContext): CorpusCase[] {
  const random = seededRandom(seed);
  const cases: CorpusCase[] = [];
  const add = (endpoint: string, id: string, rest: Omit<CorpusCase, 'id' | 'endpoint'>) =>
    cases.push({ endpoint, id: `${endpoint} ${id}`, ...rest });

  /* ---------------------------------- POST /register ---------------------------------- */
  const validMetadata = {
    client_name: 'corpus',
    redirect_uris: [ctx.redirectUri],
    token_endpoint_auth_method: 'none',
  };
  const register = (
    id: string,
    body: string | Buffer,
    headers: [string, HeaderValue][] = [JSON_TYPE],
    transport = false,
  ) =>
    add('POST /register', id, {
      request: { method: 'POST', target: '/register', headers, body },
      expect: { kind: 'json-error' },
      ...(transport ? { transport } : {}),
    });
  for (const [field, kind] of DCR_FIELDS) {
    for (const value of random.sample(wrongValues(kind), 3)) {
      register(
        `${field}=${JSON.stringify(value).slice(0, 40)}`,
        JSON.stringify({ ...validMetadata, [field]: value }),
      );
    }
  }
  for (const value of random.sample(NASTY_STRINGS, 8)) {
    register(
      `redirect_uris=[${JSON.stringify(value).slice(0, 30)}]`,
      JSON.stringify({ ...validMetadata, redirect_uris: [value] }),
    );
  }
  for (const depth of [100, 1000, 10_000]) {
    register(
      `redirect_uris nested ${depth} arrays`,
      `{"redirect_uris":${'['.repeat(depth)}"http://127.0.0.1/cb"${']'.repeat(depth)}}`,
    );
    register(`${depth} nested objects`, `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
    register(`top-level ${depth} nested arrays`, `${'['.repeat(depth)}${']'.repeat(depth)}`);
  }
  register(
    '10 000 redirect_uris',
    JSON.stringify({
      ...validMetadata,
      redirect_uris: Array.from({ length: 10_000 }, (_, i) => `http://127.0.0.1:${1024 + i}/cb`),
    }),
  );
  register(
    '1 000 grant_types',
    JSON.stringify({ ...validMetadata, grant_types: Array(1000).fill('urn:x') }),
  );
  register('2 MB body', JSON.stringify({ ...validMetadata, client_name: 'x'.repeat(2 * MB) }));
  register('2 MB of whitespace', `${' '.repeat(2 * MB)}{}`);
  for (const [i, bytes] of INVALID_UTF8.entries()) {
    register(
      `invalid UTF-8 #${i} in redirect_uris`,
      Buffer.concat([
        Buffer.from('{"token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1:9/'),
        bytes,
        Buffer.from('"]}'),
      ]),
    );
    register(
      `invalid UTF-8 #${i} in the JSON structure`,
      Buffer.concat([
        Buffer.from('{"redirect_uris":["http://127.0.0.1:9/cb"]'),
        bytes,
        Buffer.from('}'),
      ]),
    );
  }
  for (const text of [
    '',
    '{',
    '{"redirect_uris":["http://127.0.0.1/cb"],}',
    "{'redirect_uris':['http://127.0.0.1/cb']}",
    '{"redirect_uris":NaN}',
    'null',
    '[]',
    '"string"',
    '42',
    '\ufeff{}',
    '{"redirect_uris":["http://127.0.0.1/cb"]}{"x":1}',
    '{"__proto__":{"admin":true},"redirect_uris":"x"}',
    '{"redirect_uris":"\\ud800"}',
  ]) {
    register(`bad JSON ${JSON.stringify(text).slice(0, 40)}`, text);
  }
  const validBody = JSON.stringify(validMetadata);
  for (const type of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    'application/jsonx',
    '',
  ]) {
    register(`content-type ${JSON.stringify(type)}`, validBody, [['Content-Type', type]]);
  }
  register('UTF-16 body', Buffer.from(`\ufeff${validBody}`, 'utf16le'), [
    ['Content-Type', 'application/json; charset=utf-16'],
  ]);
  register('no content-type', validBody, []);
  for (let i = 0; i < 20; i += 1) {
    register(
      `fuzz #${i}`,
      mutate(random, Buffer.from(JSON.stringify({ ...validMetadata, redirect_uris: 42 }))),
    );
  }

  /* ------------------------------- GET /register/:id ---------------------------------- */
  const readClient = (
    id: string,
    target: string,
    headers: [string, HeaderValue][],
    transport = false,
  ) =>
    add('GET /register/:id', id, {
      request: { method: 'GET', target, headers },
      expect: { kind: 'json-error' },
      ...(transport ? { transport } : {}),
    });
  const own = `/register/${ctx.clientId}`;
  readClient('no token', own, []);
  readClient('empty Bearer', own, [['Authorization', 'Bearer ']]);
  readClient('garbage Bearer', own, [['Authorization', `Bearer ${random.string(40)}`]]);
  readClient('8 KB Bearer', own, [['Authorization', `Bearer ${random.string(8192)}`]]);
  readClient('Basic', own, [['Authorization', 'Basic Zm9vOmJhcg==']]);
  readClient('another client token', own, [
    ['Authorization', `Bearer ${ctx.otherRegistrationAccessToken}`],
  ]);
  readClient('access token as registration token', own, [
    ['Authorization', `Bearer ${ctx.accessToken}`],
  ]);
  // Node keeps the first Authorization header and drops the others: a second one cannot win.
  readClient('garbage token, then the right one', own, [
    ['Authorization', `Bearer ${random.string(40)}`],
    ['Authorization', `Bearer ${ctx.registrationAccessToken}`],
  ]);
  readClient('token in the query', `${own}?access_token=${random.string(20)}`, []);
  readClient('invalid UTF-8 bytes in the token', own, [
    ['Authorization', Buffer.concat([Buffer.from('Bearer '), INVALID_UTF8[2]!])],
  ]);
  readClient('unknown client', `/register/dcr_${random.string(22)}`, [
    ['Authorization', `Bearer ${ctx.registrationAccessToken}`],
  ]);
  readClient('5 000-character client id', `/register/${random.string(5000)}`, [
    ['Authorization', `Bearer ${ctx.registrationAccessToken}`],
  ]);
  for (const bad of INVALID_PERCENT) {
    readClient(`client id ${bad}`, `/register/${bad}`, [
      ['Authorization', `Bearer ${ctx.registrationAccessToken}`],
    ]);
  }

  /* ---------------------------------- GET /authorize ---------------------------------- */
  const baseAuthorize = (): [string, string][] => [
    ['response_type', 'code'],
    ['client_id', ctx.clientId],
    ['redirect_uri', ctx.redirectUri],
    ['code_challenge', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'],
    ['code_challenge_method', 'S256'],
    ['state', 'corpus'],
  ];
  const authorize = (id: string, query: string, expect: Expectation, transport = false) =>
    add('GET /authorize', id, {
      request: { method: 'GET', target: `/authorize?${query}` },
      expect,
      ...(transport ? { transport } : {}),
    });
  const withParam = (name: string, value: string) =>
    form([...baseAuthorize().filter(([key]) => key !== name), [name, value]]);
  // The client and its redirect URI are what make an error redirect trustworthy: garbage in
  // them gets the error page; garbage elsewhere goes back to the client as `error=`.
  const untrusted = new Set(['client_id', 'redirect_uri']);
  // `state` is opaque to the server; `%` and `%G0` decode to themselves, which are valid
  // (unknown, hence ignored) scope tokens; everything else decodes to U+FFFD or NUL.
  const expectFor = (name: string, bad: string): Expectation =>
    untrusted.has(name)
      ? { kind: 'page' }
      : name === 'state' || (name === 'scope' && (bad === '%' || bad === '%G0'))
        ? { kind: 'login-redirect' }
        : { kind: 'error-redirect' };
  authorize('no parameters', '', { kind: 'page' });
  authorize('unknown client', withParam('client_id', `dcr_${random.string(22)}`), { kind: 'page' });
  authorize('unregistered redirect_uri', withParam('redirect_uri', 'http://127.0.0.1:1/evil'), {
    kind: 'page',
  });
  authorize('5 000-character client_id', withParam('client_id', random.string(5000)), {
    kind: 'page',
  });
  for (const [name] of baseAuthorize()) {
    authorize(
      `duplicated ${name}`,
      `${form(baseAuthorize())}&${form([[name, 'other']])}`,
      untrusted.has(name) ? { kind: 'page' } : { kind: 'error-redirect', error: 'invalid_request' },
    );
    for (const bad of INVALID_PERCENT) {
      const query = form(baseAuthorize().filter(([key]) => key !== name));
      authorize(`${name}=${bad}`, `${query}&${name}=${bad}`, expectFor(name, bad));
    }
  }
  for (const bad of INVALID_PERCENT) {
    authorize(`scope=${bad}`, `${form(baseAuthorize())}&scope=${bad}`, expectFor('scope', bad));
  }
  authorize(
    '1 000 unknown scopes',
    withParam('scope', Array.from({ length: 1000 }, (_, i) => `s${i}`).join(' ')),
    { kind: 'login-redirect' },
  );
  authorize(
    '1 000 scopes with invalid characters',
    withParam('scope', Array.from({ length: 1000 }, (_, i) => `"s${i}\\`).join(' ')),
    { kind: 'error-redirect', error: 'invalid_scope' },
  );
  authorize(
    '5 000 scopes (over the 16 KB header limit)',
    withParam('scope', Array.from({ length: 5000 }, (_, i) => `s${i}`).join(' ')),
    { kind: 'parser-refusal', status: [431] },
  );
  authorize('8 KB resource', withParam('resource', `http://localhost:3999/${'r'.repeat(8192)}`), {
    kind: 'error-redirect',
    error: 'invalid_target',
  });
  authorize('relative resource', withParam('resource', '/mcp'), {
    kind: 'error-redirect',
    error: 'invalid_target',
  });
  authorize(
    'resource with a fragment',
    withParam('resource', `http://${ctx.resourceHost}${ctx.resourcePath}#x`),
    { kind: 'error-redirect', error: 'invalid_target' },
  );
  authorize('foreign resource', withParam('resource', 'https://evil.example/mcp'), {
    kind: 'error-redirect',
    error: 'invalid_target',
  });
  authorize(
    '100 resources',
    `${form(baseAuthorize())}&${Array.from({ length: 100 }, (_, i) => `resource=${percentEncode(`https://r${i}.example/mcp`)}`).join('&')}`,
    { kind: 'error-redirect', error: 'invalid_target' },
  );
  authorize('code_challenge_method=plain', withParam('code_challenge_method', 'plain'), {
    kind: 'error-redirect',
    error: 'invalid_request',
  });
  authorize('code_challenge too short', withParam('code_challenge', 'abc'), {
    kind: 'error-redirect',
    error: 'invalid_request',
  });
  authorize('response_type=token', withParam('response_type', 'token'), { kind: 'error-redirect' });
  authorize('request object', withParam('request', 'eyJhbGciOiJub25lIn0.e30.'), {
    kind: 'error-redirect',
  });
  authorize('request_uri', withParam('request_uri', 'urn:ietf:params:oauth:request_uri:x'), {
    kind: 'error-redirect',
  });
  authorize('16 KB query', withParam('junk', random.string(16 * 1024)), {
    kind: 'parser-refusal',
    status: [431],
  });
  authorize(
    'raw invalid UTF-8 in the query',
    `${form(baseAuthorize())}&scope=${INVALID_UTF8[0]!.toString('latin1')}`,
    { kind: 'authorize-any' },
    true,
  );
  for (let i = 0; i < 20; i += 1) {
    const params = baseAuthorize().filter(() => random.next() < 0.7);
    const name = random.pick([
      'scope',
      'resource',
      'prompt',
      'max_age',
      'nonce',
      'response_mode',
      'claims',
      'ui_locales',
      'login_hint',
      ...baseAuthorize().map(([key]) => key),
    ]);
    params.push([name, random.pick(NASTY_STRINGS)]);
    authorize(`fuzz #${i} (${name})`, form(params), { kind: 'authorize-any' });
  }

  /* ------------------------------------ POST /token ------------------------------------ */
  const token = (
    id: string,
    body: string | Buffer,
    headers: [string, HeaderValue][] = [FORM],
    transport = false,
  ) =>
    add('POST /token', id, {
      request: { method: 'POST', target: '/token', headers, body },
      expect: { kind: 'json-error' },
      ...(transport ? { transport } : {}),
    });
  const grantTypes = [
    'authorization_code',
    'refresh_token',
    'client_credentials',
    'password',
    'implicit',
    'urn:ietf:params:oauth:grant-type:device_code',
    'urn:ietf:params:oauth:grant-type:jwt-bearer',
    'urn:ietf:params:oauth:grant-type:saml2-bearer',
    'urn:ietf:params:oauth:grant-type:token-exchange',
    'urn:openid:params:grant-type:ciba',
    '',
    'x'.repeat(5000),
  ];
  const garbageParams = (): [string, string][] => [
    ['code', random.pick(NASTY_STRINGS)],
    ['refresh_token', random.string(random.int(1, 200))],
    ['code_verifier', random.pick(NASTY_STRINGS)],
    ['redirect_uri', random.pick(NASTY_STRINGS)],
    ['username', 'alice@example.com'],
    ['password', random.string(12)],
    ['device_code', random.string(30)],
    ['assertion', 'eyJhbGciOiJub25lIn0.e30.'],
    ['subject_token', random.string(30)],
    ['auth_req_id', random.string(30)],
    ['resource', random.pick(NASTY_STRINGS)],
    ['scope', random.pick(NASTY_STRINGS)],
  ];
  for (const grant of grantTypes) {
    token(
      `grant_type=${grant.slice(0, 50)} with garbage`,
      form([['grant_type', grant], ['client_id', ctx.clientId], ...garbageParams()]),
    );
    token(
      `grant_type=${grant.slice(0, 50)} without client`,
      form([['grant_type', grant], ...garbageParams()]),
    );
  }
  for (const name of [
    'grant_type',
    'client_id',
    'code',
    'code_verifier',
    'redirect_uri',
    'resource',
    'refresh_token',
  ]) {
    const params: [string, string][] = [
      ['grant_type', 'authorization_code'],
      ['client_id', ctx.clientId],
      ['code', random.string(43)],
      ['code_verifier', random.string(43)],
      ['redirect_uri', ctx.redirectUri],
    ];
    params.push([name, random.string(10)]);
    token(`duplicated ${name}`, form(params));
  }
  token(
    '2 MB form',
    form([
      ['grant_type', 'refresh_token'],
      ['client_id', ctx.clientId],
      ['refresh_token', 'a'.repeat(2 * MB)],
    ]),
  );
  token(
    '10 000 parameters',
    Array.from({ length: 10_000 }, (_, i) => `p${i}=${i}`).join('&') +
      `&grant_type=refresh_token&client_id=${ctx.clientId}`,
  );
  token(
    'JSON body',
    JSON.stringify({ grant_type: 'refresh_token', refresh_token: 'x', client_id: ctx.clientId }),
    [JSON_TYPE],
  );
  token(
    'no content-type',
    form([
      ['grant_type', 'refresh_token'],
      ['client_id', ctx.clientId],
    ]),
    [],
  );
  token('text/plain', 'grant_type=refresh_token', [['Content-Type', 'text/plain']]);
  token(
    'multipart',
    '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nrefresh_token\r\n--x--\r\n',
    [['Content-Type', 'multipart/form-data; boundary=x']],
  );
  for (const bad of INVALID_PERCENT) {
    token(
      `percent-encoding ${bad} in grant_type`,
      `grant_type=${bad}&client_id=${percentEncode(ctx.clientId)}`,
    );
    token(
      `percent-encoding ${bad} in client_id`,
      `grant_type=refresh_token&refresh_token=x&client_id=${bad}`,
    );
  }
  for (const [i, bytes] of INVALID_UTF8.entries()) {
    token(
      `raw invalid UTF-8 #${i}`,
      Buffer.concat([
        Buffer.from(`grant_type=refresh_token&client_id=${ctx.clientId}&refresh_token=`),
        bytes,
      ]),
    );
  }
  for (const authorization of [
    'Basic',
    'Basic !!!',
    `Basic ${Buffer.from(':').toString('base64')}`,
    `Basic ${Buffer.from([0xc0, 0xaf, 0x3a, 0xff]).toString('base64')}`,
    `Basic ${Buffer.from(`${ctx.clientId}:${'s'.repeat(8000)}`).toString('base64')}`,
    `Bearer ${ctx.accessToken}`,
    'Digest username="x"',
  ]) {
    token(
      `Authorization ${authorization.slice(0, 30)}`,
      form([
        ['grant_type', 'refresh_token'],
        ['refresh_token', 'x'],
      ]),
      [FORM, ['Authorization', authorization]],
    );
  }
  token(
    'client_assertion garbage',
    form([
      ['grant_type', 'refresh_token'],
      ['refresh_token', 'x'],
      ['client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
      ['client_assertion', 'eyJhbGciOiJub25lIn0.e30.'],
    ]),
  );
  for (let i = 0; i < 20; i += 1) {
    token(
      `fuzz #${i}`,
      mutate(
        random,
        Buffer.from(
          form([
            ['grant_type', 'authorization_code'],
            ['client_id', ctx.clientId],
            ['code', random.string(43)],
            ['code_verifier', random.string(43)],
            ['redirect_uri', ctx.redirectUri],
          ]),
        ),
      ),
    );
  }
  add('GET /token', 'wrong method', {
    request: { method: 'GET', target: '/token' },
    expect: { kind: 'not-found' },
  });

  /* ------------------------------ POST /revoke, /introspect ----------------------------- */
  for (const endpoint of ['/revoke', '/introspect']) {
    const label = `POST ${endpoint}`;
    const post = (
      id: string,
      body: string | Buffer,
      expect: Expectation = { kind: 'json-error' },
      headers: [string, HeaderValue][] = [FORM],
    ) => add(label, id, { request: { method: 'POST', target: endpoint, headers, body }, expect });
    post('no client', form([['token', random.string(40)]]));
    post('no token', form([['client_id', ctx.clientId]]));
    post(
      'unknown client',
      form([
        ['token', 'x'],
        ['client_id', `dcr_${random.string(22)}`],
      ]),
    );
    post(
      'duplicated token',
      form([
        ['token', 'a'],
        ['token', 'b'],
        ['client_id', ctx.clientId],
      ]),
    );
    post(
      'JSON body',
      JSON.stringify({ token: 'x', client_id: ctx.clientId }),
      { kind: 'json-error' },
      [JSON_TYPE],
    );
    post(
      '2 MB form',
      form([
        ['token', 'a'.repeat(2 * MB)],
        ['client_id', ctx.clientId],
      ]),
    );
    post('Basic garbage', form([['token', 'x']]), { kind: 'json-error' }, [
      FORM,
      ['Authorization', 'Basic %%%'],
    ]);
    // An authenticated client asking about a token that is not one: 200 by the RFCs.
    const unknownToken =
      endpoint === '/revoke' ? ({ kind: 'ok' } as const) : ({ kind: 'ok', active: false } as const);
    post(
      'unknown token',
      form([
        ['token', random.string(43)],
        ['client_id', ctx.clientId],
      ]),
      unknownToken,
    );
    post(
      "another client's access token",
      form([
        ['token', ctx.accessToken],
        ['client_id', `dcr_${random.string(22)}`],
      ]),
    );
    post(
      'invalid UTF-8 token',
      Buffer.concat([Buffer.from(`client_id=${ctx.clientId}&token=`), INVALID_UTF8[0]!]),
      unknownToken,
    );
    post(
      'percent-encoded invalid UTF-8 token',
      `client_id=${ctx.clientId}&token=%C0%AF`,
      unknownToken,
    );
    for (let i = 0; i < 6; i += 1) {
      post(
        `fuzz #${i}`,
        mutate(
          random,
          Buffer.from(
            form([
              ['token', random.string(43)],
              ['token_type_hint', 'refresh_token'],
            ]),
          ),
        ),
      );
    }
  }

  /* ---------------------------------- /.well-known/* ---------------------------------- */
  const suffixes = [
    '/x',
    '/mcp/extra',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/..%2f..%2fetc',
    '/%00',
    ';x=1',
    `/${random.string(8000)}`,
    '/%252e%252e',
    ...INVALID_PERCENT.slice(0, 4).map((bad) => `/${bad}`),
  ];
  for (const suffix of suffixes) {
    // Below the RFC 9728 prefix: a JSON 404 for every URL without a protected resource (a
    // suffix that is not a path segment names another, unknown, path).
    add('GET /.well-known/oauth-protected-resource', suffix.slice(0, 30), {
      request: { method: 'GET', target: `/.well-known/oauth-protected-resource${suffix}` },
      expect: suffix.startsWith('/')
        ? { kind: 'json-error', status: [400, 404] }
        : { kind: 'not-found' },
    });
    for (const doc of ['oauth-authorization-server', 'openid-configuration']) {
      add(`GET /.well-known/${doc}`, suffix.slice(0, 30), {
        request: { method: 'GET', target: `/.well-known/${doc}${suffix}` },
        expect: { kind: 'not-found' },
      });
    }
  }
  add('GET /.well-known/oauth-protected-resource', 'raw invalid UTF-8', {
    request: {
      method: 'GET',
      target: Buffer.concat([
        Buffer.from('/.well-known/oauth-protected-resource/'),
        INVALID_UTF8[0]!,
      ]),
    },
    expect: { kind: 'json-error', status: [400, 404] },
    transport: true,
  });
  add('GET /jwks', 'with a suffix', {
    request: { method: 'GET', target: '/jwks/x' },
    expect: { kind: 'not-found' },
  });

  /* ------------------------- /interaction/* and /login/callback/* ------------------------- */
  const uids = [
    random.string(43),
    random.string(4000),
    '%C0%AF',
    '..%2F..%2Fhealthz',
    '%00',
    random.string(1),
  ];
  const page = (id: string, request: RawRequest, status?: number[]) =>
    add(
      request.target.toString().startsWith('/login')
        ? 'GET /login/callback'
        : `${request.method} /interaction`,
      id,
      {
        request,
        expect: { kind: 'page', ...(status ? { status } : {}) },
      },
    );
  for (const uid of uids) {
    const short = uid.slice(0, 12);
    page(`/interaction/${short}`, { method: 'GET', target: `/interaction/${uid}` });
    page(`/interaction/${short}/login/dev`, {
      method: 'GET',
      target: `/interaction/${uid}/login/dev`,
    });
    page(`/interaction/${short}/callback/x`, {
      method: 'GET',
      target: `/interaction/${uid}/callback/x?state=${random.string(20)}&code=x`,
    });
    page(`POST /interaction/${short}/confirm`, {
      method: 'POST',
      target: `/interaction/${uid}/confirm`,
      headers: [FORM],
      body: 'decision=approve&csrf=x',
    });
  }
  const cookie = `mcpgw_interaction=${random.string(30)}; mcpgw_interaction.sig=${random.string(27)}; mcpgw_session=${'%C0%AF'}`;
  page('garbage cookies', {
    method: 'GET',
    target: `/interaction/${random.string(43)}`,
    headers: [['Cookie', cookie]],
  });
  page('8 KB cookie', {
    method: 'GET',
    target: `/interaction/${random.string(43)}`,
    headers: [['Cookie', `mcpgw_interaction=${random.string(8192)}`]],
  });
  page('login POST with JSON', {
    method: 'POST',
    target: `/interaction/${random.string(43)}/login/dev`,
    headers: [JSON_TYPE],
    body: '{"email":"alice@example.com"}',
  });
  page(
    'login POST, 10 KB form',
    {
      method: 'POST',
      target: `/interaction/${random.string(43)}/login/dev`,
      headers: [FORM],
      body: `email=${'a'.repeat(10_000)}`,
    },
    [413],
  );
  page(
    'confirm POST, 11 parameters',
    {
      method: 'POST',
      target: `/interaction/${random.string(43)}/confirm`,
      headers: [FORM],
      body: Array.from({ length: 11 }, (_, i) => `p${i}=1`).join('&'),
    },
    [400, 413],
  );
  page('confirm POST, invalid UTF-8 form', {
    method: 'POST',
    target: `/interaction/${random.string(43)}/confirm`,
    headers: [FORM],
    body: Buffer.concat([Buffer.from('decision=approve&csrf='), INVALID_UTF8[2]!]),
  });
  page('confirm POST, percent garbage', {
    method: 'POST',
    target: `/interaction/${random.string(43)}/confirm`,
    headers: [FORM],
    body: 'decision=%C0%AF&csrf=%',
  });
  page('unknown provider', {
    method: 'GET',
    target: `/interaction/${random.string(43)}/login/${random.string(10)}`,
  });
  for (const query of [
    '',
    `?state=${random.string(30)}&code=x`,
    '?state=%ff%fe',
    `?state=${random.string(6000)}`,
    '?state=a&state=b',
    '?error=access_denied&state=x',
  ]) {
    for (const providerId of ['corp', 'github', random.string(8), '%C0%AF']) {
      page(`/login/callback/${providerId}${query.slice(0, 20)}`, {
        method: 'GET',
        target: `/login/callback/${providerId}${query}`,
      });
    }
  }

  /* ----------------------------------- GET /verify ----------------------------------- */
  const forwarded = (
    over: Record<string, HeaderValue | undefined> = {},
  ): [string, HeaderValue][] => {
    const base: Record<string, HeaderValue | undefined> = {
      'X-Forwarded-Proto': 'http',
      'X-Forwarded-Host': ctx.resourceHost,
      'X-Forwarded-Uri': ctx.resourcePath,
      'X-Forwarded-Method': 'POST',
      ...over,
    };
    return Object.entries(base).filter(
      (entry): entry is [string, HeaderValue] => entry[1] !== undefined,
    );
  };
  const verify = (
    id: string,
    headers: [string, HeaderValue][],
    options: {
      status?: number[];
      transport?: boolean;
      method?: string;
      target?: string;
      noHost?: boolean;
      body?: string | Buffer;
    } = {},
  ) =>
    add(`${options.method ?? 'GET'} /verify`, id, {
      request: {
        method: options.method ?? 'GET',
        target: options.target ?? '/verify',
        headers,
        ...(options.noHost ? { noHost: true } : {}),
        ...(options.body !== undefined ? { body: options.body } : {}),
      },
      expect: { kind: 'verify-denial', ...(options.status ? { status: options.status } : {}) },
      ...(options.transport ? { transport: true } : {}),
    });
  verify('no token', forwarded(), { status: [401] });
  for (const name of [
    'X-Forwarded-Proto',
    'X-Forwarded-Host',
    'X-Forwarded-Uri',
    'X-Forwarded-Method',
  ]) {
    verify(`without ${name}`, forwarded({ [name]: undefined }), { status: [400] });
    verify(`empty ${name}`, forwarded({ [name]: '' }), { status: [400] });
    verify(`CRLF in ${name}`, forwarded({ [name]: `x\r\nX-Injected: 1` }), { transport: true });
    verify(`bare LF in ${name}`, forwarded({ [name]: `x\nX-Injected: 1` }), { transport: true });
    verify(`NUL in ${name}`, forwarded({ [name]: Buffer.from([0x2f, 0x00, 0x61]) }), {
      transport: true,
    });
    for (const [i, bytes] of INVALID_UTF8.slice(0, 3).entries()) {
      verify(
        `invalid UTF-8 #${i} in ${name}`,
        forwarded({
          [name]: Buffer.concat([Buffer.from(name === 'X-Forwarded-Uri' ? '/mcp/' : 'x'), bytes]),
        }),
      );
    }
    verify(`${name} twice`, [...forwarded(), [name, 'https://evil.example']]);
  }
  verify(
    '8 KB URI under the resource',
    forwarded({ 'X-Forwarded-Uri': `${ctx.resourcePath}/${'a'.repeat(8192)}` }),
    { status: [401] },
  );
  verify('8 KB URI elsewhere', forwarded({ 'X-Forwarded-Uri': `/${'a'.repeat(8192)}` }), {
    status: [403],
  });
  verify('20 KB URI', forwarded({ 'X-Forwarded-Uri': `/${'a'.repeat(20_000)}` }), {
    transport: true,
  });
  for (const host of [
    'evil.example@localhost:3999',
    'localhost:3999/evil',
    'localhost:3999\\x',
    'local host',
    ':',
    '[::1',
    'localhost:99999',
    'xn--',
    'LOCALHOST:3999.',
    `${'a'.repeat(300)}.example`,
  ]) {
    verify(`X-Forwarded-Host ${host.slice(0, 30)}`, forwarded({ 'X-Forwarded-Host': host }), {
      status: [400, 403],
    });
  }
  verify(
    'X-Forwarded-Host with a Cyrillic o (raw UTF-8)',
    forwarded({ 'X-Forwarded-Host': Buffer.from('l\u043ecalhost:3999', 'utf8') }),
    { status: [400, 403] },
  );
  for (const proto of ['javascript', 'HTTPS', 'https,http', 'ftp', 'http\t']) {
    verify(`X-Forwarded-Proto ${proto}`, forwarded({ 'X-Forwarded-Proto': proto }), {
      status: [400, 401, 403],
    });
  }
  for (const method of ['get', 'G E T', 'A'.repeat(20), 'POST\u0000']) {
    verify(
      `X-Forwarded-Method ${JSON.stringify(method)}`,
      forwarded({ 'X-Forwarded-Method': method }),
      { status: [400], transport: method.includes('\u0000') },
    );
  }
  for (const uri of [
    'mcp',
    '//evil.example/mcp',
    '/mcp/../admin',
    '/%2e%2e/mcp',
    '/mcp%00',
    '/MCP',
    `${ctx.resourcePath}?access_token=${random.string(20)}`,
    '/mcp#frag',
    '\\\\evil\\mcp',
  ]) {
    verify(`X-Forwarded-Uri ${uri.slice(0, 30)}`, forwarded({ 'X-Forwarded-Uri': uri }), {
      status: [400, 401, 403],
    });
  }
  const forgedJwt = (header: object, payload: object) =>
    `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${random.string(43)}`;
  for (const authorization of [
    'Bearer',
    'Bearer ',
    'Bearer a b',
    `bearer ${random.string(8192)}`,
    'Basic Zm9vOmJhcg==',
    `Bearer ${forgedJwt({ alg: 'none', typ: 'at+jwt' }, { sub: 'x' })}`,
    `Bearer ${forgedJwt({ alg: 'RS256', typ: 'at+jwt', kid: random.string(43) }, { sub: 'x' })}`,
    `Bearer ${forgedJwt({ alg: 'HS256', typ: 'at+jwt' }, { sub: 'x' })}`,
    `Bearer ${forgedJwt({ alg: 'RS256', kid: 'x'.repeat(4000) }, {})}`,
    `Bearer ${ctx.accessToken.slice(0, -5)}AAAAA`,
    `Bearer ${ctx.accessToken}x`,
    `Bearer ${'%C0%AF'.repeat(10)}`,
    'Bearer ....',
    `Bearer ${'a.'.repeat(2000)}`,
  ]) {
    verify(
      `Authorization ${authorization.slice(0, 30)}`,
      [...forwarded(), ['Authorization', authorization]],
      { status: [401] },
    );
  }
  verify(
    'Authorization with raw invalid UTF-8',
    [...forwarded(), ['Authorization', Buffer.concat([Buffer.from('Bearer '), INVALID_UTF8[0]!])]],
    { status: [401] },
  );
  for (const origin of [
    'null',
    'https://evil.example',
    `https://${random.string(4000)}.example`,
    'http://localhost:3999',
  ]) {
    verify(
      `Origin ${origin.slice(0, 30)}`,
      [...forwarded(), ['Origin', origin], ['Authorization', `Bearer ${ctx.accessToken}`]],
      { status: [403] },
    );
  }
  verify('no Host header', forwarded(), { noHost: true, transport: true });
  verify('query on /verify', forwarded(), { target: '/verify?x=%C0%AF&y=%', status: [401] });
  verify('2 MB body, no token', forwarded(), {
    method: 'POST',
    body: 'x'.repeat(2 * MB),
    status: [401],
  });

  /* --------------------------- POST /verify with JSON-RPC bodies --------------------------- */
  const call = (name: unknown, id: unknown = 1) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: {} },
  });
  const withToken = forwarded({ 'X-Forwarded-Method': 'POST' });
  withToken.push(
    ['Authorization', `Bearer ${ctx.accessToken}`],
    ['Content-Type', 'application/json'],
  );
  const rpc = (
    id: string,
    body: string | Buffer,
    status: number[],
    extra: [string, HeaderValue][] = [],
    transport = false,
  ) => verify(id, [...withToken, ...extra], { method: 'POST', body, status, transport });
  rpc(
    'batch nested 1 000 deep',
    `${'['.repeat(1000)}${JSON.stringify(call(ctx.allowedTool))}${']'.repeat(1000)}`,
    [400],
  );
  rpc('batch nested 100 000 deep', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, [400]);
  rpc(
    'params nested 100 000 deep',
    `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`,
    [400, 403],
  );
  rpc(
    'batch of 10 000 with a refused tool last',
    JSON.stringify([
      ...Array.from({ length: 9999 }, (_, i) => call(ctx.allowedTool, i)),
      call(ctx.deniedTool, 9999),
    ]),
    [403],
  );
  rpc(
    'batch of 10 000 with a non-object last',
    JSON.stringify([...Array.from({ length: 9999 }, (_, i) => call(ctx.allowedTool, i)), 42]),
    [400],
  );
  rpc(
    'batch of 10 000 refused calls',
    JSON.stringify(Array.from({ length: 10_000 }, (_, i) => call(ctx.deniedTool, i))),
    [403],
  );
  for (const member of [
    '1',
    '"x"',
    'null',
    'true',
    '[]',
    '{}',
    `[${JSON.stringify(call(ctx.allowedTool))}]`,
  ]) {
    rpc(
      `batch member ${member.slice(0, 20)}`,
      `[${JSON.stringify(call(ctx.allowedTool))},${member}]`,
      [400],
    );
  }
  rpc('empty batch', '[]', [400]);
  for (const message of [
    { ...call(ctx.allowedTool), jsonrpc: '1.0' },
    { ...call(ctx.allowedTool), id: { x: 1 } },
    { ...call(ctx.allowedTool), method: 42 },
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: 'x' },
    call(42),
    call(ctx.deniedTool),
    call(`${ctx.allowedTool}\u0000`),
    call(ctx.allowedTool.toUpperCase()),
  ]) {
    rpc(`message ${JSON.stringify(message).slice(0, 60)}`, JSON.stringify(message), [400, 403]);
  }
  for (const text of [
    '',
    '{',
    'null',
    '42',
    '"x"',
    '\ufeff{}',
    '{"jsonrpc":"2.0","method":"tools/call"}{"x":1}',
    'NaN',
  ]) {
    rpc(`body ${JSON.stringify(text)}`, text, text === '' ? [403] : [400]);
  }
  // Tool names are JSON strings: any Unicode. A refused one is named in the answer.
  rpc('non-Latin-1 tool name (refused)', JSON.stringify(call('工具_删除')), [403]);
  rpc('Latin-1 tool name (refused)', JSON.stringify(call('outil_supprimé')), [403]);
  for (const [i, bytes] of INVALID_UTF8.entries()) {
    rpc(
      `invalid UTF-8 #${i} in the tool name`,
      Buffer.concat([
        Buffer.from(
          `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"${ctx.allowedTool}`,
        ),
        bytes,
        Buffer.from('"}}'),
      ]),
      [403],
    );
    rpc(
      `invalid UTF-8 #${i} in the structure`,
      Buffer.concat([Buffer.from('{"jsonrpc":"2.0",'), bytes, Buffer.from('}')]),
      [400],
    );
  }
  rpc(
    'header says allowed tool, body calls another',
    JSON.stringify(call(ctx.deniedTool)),
    [400],
    [
      ['Mcp-Method', 'tools/call'],
      ['Mcp-Name', ctx.allowedTool],
    ],
  );
  rpc('body over maxBodySize (Content-Length)', JSON.stringify(call('x'.repeat(2 * MB))), [413]);
  const chunked = Buffer.from(`${(3 * MB).toString(16)}\r\n${'x'.repeat(3 * MB)}\r\n0\r\n\r\n`);
  verify('body over maxBodySize (chunked)', [...withToken, ['Transfer-Encoding', 'chunked']], {
    method: 'POST',
    status: [413],
  });
  cases[cases.length - 1]!.request.body = chunked;
  cases[cases.length - 1]!.request.noContentLength = true;
  rpc(
    'bad chunk size',
    Buffer.from('zz\r\nxx\r\n0\r\n\r\n'),
    [400],
    [['Transfer-Encoding', 'chunked']],
    true,
  );
  cases[cases.length - 1]!.request.noContentLength = true;
  rpc(
    'Content-Length and Transfer-Encoding',
    Buffer.from('0\r\n\r\n'),
    [400],
    [
      ['Transfer-Encoding', 'chunked'],
      ['Content-Length', '5'],
    ],
    true,
  );
  // ASCII-only mutations of a batch that stays invalid (its middle member is a number); the
  // non-ASCII cases are the explicit ones above.
  for (let i = 0; i < 20; i += 1) {
    rpc(
      `fuzz #${i}`,
      mutate(
        random,
        Buffer.from(JSON.stringify([call(ctx.allowedTool, 1), 42, call(ctx.deniedTool, 2)])),
        true,
      ),
      [400, 403],
    );
  }

  /* --------------------------- Huge headers, against every endpoint -------------------------- */
  const endpoints: [string, string][] = [
    ['POST', '/register'],
    ['GET', `/register/${ctx.clientId}`],
    ['GET', '/authorize'],
    ['POST', '/token'],
    ['POST', '/revoke'],
    ['POST', '/introspect'],
    ['GET', '/.well-known/oauth-authorization-server'],
    ['GET', '/.well-known/oauth-protected-resource/mcp'],
    ['GET', '/jwks'],
    ['GET', `/interaction/${random.string(43)}`],
    ['GET', '/login/callback/corp'],
    ['GET', '/verify'],
    ['GET', '/healthz'],
  ];
  for (const [method, target] of endpoints) {
    // Over Node's 16 KB maxHeaderSize: Node answers 431 before any handler runs.
    add('huge headers', `${method} ${target.slice(0, 30)}: one 20 KB header`, {
      request: { method, target, headers: [['X-Big', random.string(20_000)]] },
      expect: { kind: 'parser-refusal', status: [431] },
    });
    add('huge headers', `${method} ${target.slice(0, 30)}: 400 headers of 60 bytes`, {
      request: {
        method,
        target,
        headers: Array.from({ length: 400 }, (_, i): [string, string] => [
          `X-H${i}`,
          random.string(50),
        ]),
      },
      expect: { kind: 'parser-refusal', status: [431] },
    });
  }
  // A request line the parser cannot read: an unknown method, an HTTP/2 preface, a space.
  for (const [method, target] of [
    ['FOO', '/token'],
    ['GET', '/a b'],
    ['PRI', '*'],
  ] as const) {
    add('request line', `${method} ${target}`, {
      request: { method, target },
      expect: { kind: 'parser-refusal', status: [400] },
    });
  }
  return cases;
}

/** Whether two JSON texts parse to the same value (`false` when either does not parse). */
function sameJson(a: unknown, b: string): boolean {
  if (typeof a !== 'string') return false;
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}
