import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import winston from 'winston';
import { createLogger, redact, scrubString, withRequestId } from '../../src/logging/logger.js';

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
