import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import winston from 'winston';
import { createLogger, redact, scrubString, withRequestId } from '../../src/logging/logger.js';
import { captureLogger } from '../helpers/captured-logger.js';

const JWT =
  'eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSIsImF1ZCI6Imh0dHBzOi8vbWNwIn0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU';
const OPAQUE = 'Kq3v0bH1x9Zt8Yp2Lm4Nw7Qr5Ts6Uv1Xy2Za3Bc4De5Fg';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk).trim());
      callback();
    },
  });
  const logger = createLogger({
    level: 'debug',
    console: false,
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, lines };
}

describe('log redaction', () => {
  it('replaces fields named like secrets at any depth', () => {
    const cleaned = redact({
      access_token: 'a',
      nested: {
        refreshToken: 'b',
        client_secret: 'c',
        headers: { authorization: 'Bearer x', cookie: 'sid=1' },
      },
      code: 'd',
      code_verifier: 'e',
      state: 'f',
      ok: 'visible',
    }) as Record<string, unknown>;
    const text = JSON.stringify(cleaned);
    for (const secret of ['"a"', '"b"', '"c"', 'Bearer x', 'sid=1', '"d"', '"e"', '"f"']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('visible');
  });

  it('scrubs token-shaped strings wherever they appear', () => {
    const scrubbed = scrubString(
      `failed for ${JWT} with header Bearer ${OPAQUE} at /cb?code=${OPAQUE}&state=xyz and raw ${OPAQUE}`,
    );
    expect(scrubbed).not.toContain(JWT);
    expect(scrubbed).not.toContain(OPAQUE);
    expect(scrubbed).not.toContain('state=xyz');
    expect(scrubbed).toContain('failed for [jwt]');
  });

  it('redacts error messages and adds the request id to every line', () => {
    const { logger, lines } = capture();
    withRequestId('req-123', () => {
      logger.warn('token check failed', { error: new Error(`bad token ${JWT}`), token: OPAQUE });
    });
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0]!);
    expect(record.requestId).toBe('req-123');
    expect(lines[0]).not.toContain(JWT);
    expect(lines[0]).not.toContain(OPAQUE);
    expect(record.level).toBe('warn');
  });
});

/** A base64url value of `length` characters whose edges are `-` or `_` as `edges` says. */
function withEdges(value: string, edges: number): string {
  const edge = () => (randomInt(2) === 0 ? '-' : '_');
  let result = value;
  if (edges & 1) result = edge() + result.slice(1);
  if (edges & 2) result = result.slice(0, -1) + edge();
  return result;
}

/** How a value may sit in a log line: alone, quoted, in a URL, a cookie, JSON, prose. */
const CONTEXTS: ((value: string) => string)[] = [
  (v) => v,
  (v) => `session ${v} expired`,
  (v) => `"${v}"`,
  (v) => `grant=${v};`,
  (v) => `https://gw.example/interaction/${v}/login?x=1`,
  (v) => `(${v})`,
  (v) => `id:${v}.`,
  (v) => `{"sid":"${v}"}`,
  (v) => `mcpgw_session=${v}; path=/`,
  (v) => `a,${v},b`,
];

describe('opaque values whose edges are - or _ (property)', () => {
  it('never lets a random base64url value of 43+ characters through, whatever its edges and context', () => {
    const { logger, lines } = captureLogger();
    const values: string[] = [];
    for (let i = 0; i < 10_000; i += 1) {
      // 43 (32 random bytes: tokens, codes, session and grant ids) to 128 (client secrets: 86).
      const length = 43 + randomInt(86);
      const raw = randomBytes(length).toString('base64url').slice(0, length);
      const value = withEdges(raw, i % 4);
      values.push(value);
      const line = CONTEXTS[i % CONTEXTS.length]!(value);
      expect(scrubString(line)).not.toContain(value);
      logger.info(`lookup failed for ${line}`, { detail: { note: line }, list: [line] });
    }
    // Every edge case was generated: starting and ending with each of - and _.
    for (const edge of ['-', '_']) {
      expect(values.filter((v) => v.startsWith(edge) && v.endsWith(edge)).length).toBeGreaterThan(
        100,
      );
    }
    expect(lines).toHaveLength(values.length);
    const output = lines.join('\n');
    expect(values.filter((value) => output.includes(value))).toEqual([]);
  });

  it('scrubs 192-bit values (32 characters, CSRF tokens and state) with - or _ edges too', () => {
    // Reproducible: a fixed sequence (SHA-256 of a counter), cut to 32..42 characters.
    const leaked: string[] = [];
    for (let i = 0; i < 2000; i += 1) {
      const digest = createHash('sha256').update(`redaction-${i}`).digest('base64url');
      const value = withEdges(digest.slice(0, 32 + (i % 11)), i % 4);
      const line = CONTEXTS[i % CONTEXTS.length]!(value);
      if (scrubString(line).includes(value)) leaked.push(value);
    }
    expect(leaked).toEqual([]);
  });

  it('keeps readable what is not a secret: request ids, names, client ids, short hex', () => {
    const requestId = randomUUID();
    const readable = [
      requestId,
      'dcr_Xb3-k9QmZ2pL0vT7wYc1aA',
      'mcp-gateway-resource-server-finance-eu',
      'REFRESH_TOKEN_REUSE_DETECTED_ON_REPLICA',
      'oidc:corp:00u1abcd2EFGH3ijk4',
      '0123456789abcdef0123456789abcdef01234567',
    ];
    for (const value of readable) expect(scrubString(`saw ${value} here`)).toContain(value);
  });

  it('scrubs field names, nesting deeper than it reads, and JWE compact values', () => {
    const secret = `-${randomBytes(32).toString('base64url').slice(1)}`;
    let deep: Record<string, unknown> = { value: secret };
    for (let i = 0; i < 12; i += 1) deep = { nested: deep };
    const jwe = `eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..${randomBytes(12).toString('base64url')}.${randomBytes(40).toString('base64url')}.${randomBytes(16).toString('base64url')}`;
    const text = JSON.stringify(redact({ byId: { [secret]: 1 }, deep, sealed: `x ${jwe} y` }));
    expect(text).not.toContain(secret);
    expect(text).not.toContain(jwe.split('.')[2]);
    expect(text).toContain('x [jwt] y');
  });
});
