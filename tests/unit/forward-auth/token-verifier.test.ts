/**
 * The token verifier (src/forward-auth/token-verifier.ts): jose verification against the
 * gateway's keys, the verified-token cache (hits, misses, nothing past `exp`, claims only),
 * the checks that run on every request even for a cached token (audience, revocation,
 * disabled client, expiry), and the throttled key re-read for a key rotated in elsewhere.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { JWK } from 'jose';
import {
  TokenRejected,
  TokenVerifier,
  type TokenVerifierOptions,
  type VerifiedToken,
} from '../../../src/forward-auth/token-verifier.js';
import {
  accessToken,
  PLAIN,
  signingKey,
  testVerifier,
  TOOLS,
  type SigningKey,
} from './fixtures.js';

let key: SigningKey;
let rotated: SigningKey;

beforeAll(async () => {
  [key, rotated] = await Promise.all([signingKey('k1'), signingKey('k2')]);
});

function verifier(options: Partial<TokenVerifierOptions> = {}) {
  return testVerifier(key, { cacheSize: 10, ...options });
}

/** The rejection `promise` ends with, or a failure when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<TokenRejected> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (caught: unknown) => caught,
  );
  if (!(error instanceof TokenRejected)) throw error;
  return error;
}

function rejectionOf(check: () => void): TokenRejected {
  try {
    check();
  } catch (error) {
    if (error instanceof TokenRejected) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('TokenVerifier cache', () => {
  it('misses, verifies, then hits with the same verification result', async () => {
    const { tokens } = verifier();
    const token = await accessToken(key, { scope: 'mcp files:read', groups: ['corp:staff'] });
    const cacheKey = TokenVerifier.cacheKey(token);
    expect(cacheKey).not.toContain(token.slice(0, 20));
    expect(tokens.cached(cacheKey)).toBeUndefined();
    const verified = await tokens.verify(token, cacheKey);
    expect(verified).toEqual({
      sub: 'alice',
      clientId: 'client-1',
      scopes: ['mcp', 'files:read'],
      email: 'alice@example.com',
      name: 'Zoë Example',
      groups: ['corp:staff'],
      audiences: [PLAIN],
      grantId: 'grant-1',
      exp: expect.any(Number),
    });
    expect(tokens.cached(cacheKey)).toBe(verified);
  });

  it('keeps verification results only: deciding on a token adds nothing to it', async () => {
    const { tokens } = verifier();
    const token = await accessToken(key);
    const verified = await tokens.verify(token, TokenVerifier.cacheKey(token));
    const keys = Object.keys(verified).sort();
    tokens.check(verified, PLAIN);
    expect(Object.keys(verified).sort()).toEqual(keys);
    expect(keys).toEqual(
      [
        'audiences',
        'clientId',
        'email',
        'exp',
        'grantId',
        'groups',
        'name',
        'scopes',
        'sub',
      ].sort(),
    );
  });

  it('does not cache a token whose exp has passed (accepted within the clock skew)', async () => {
    const { tokens } = verifier();
    const token = await accessToken(key, { expiresIn: -2 });
    const cacheKey = TokenVerifier.cacheKey(token);
    await tokens.verify(token, cacheKey);
    expect(tokens.cached(cacheKey)).toBeUndefined();
  });

  it('caches nothing with cacheSize 0', async () => {
    const { tokens } = verifier({ cacheSize: 0 });
    const token = await accessToken(key);
    const cacheKey = TokenVerifier.cacheKey(token);
    await tokens.verify(token, cacheKey);
    expect(tokens.cached(cacheKey)).toBeUndefined();
  });

  it('refuses expired, foreign-issuer and non-access tokens, none cached', async () => {
    const { tokens } = verifier();
    const cases: [Promise<string>, string][] = [
      [accessToken(key, { expiresIn: -60 }), 'expired'],
      [accessToken(key, { issuer: 'https://other.example.com' }), 'issuer'],
      [accessToken(key, { typ: 'JWT' }), 'type'],
      [Promise.resolve('not.a.jwt'), 'malformed'],
    ];
    for (const [minted, code] of cases) {
      const token = await minted;
      const cacheKey = TokenVerifier.cacheKey(token);
      expect((await rejection(tokens.verify(token, cacheKey))).code).toBe(code);
      expect(tokens.cached(cacheKey)).toBeUndefined();
    }
  });
});

describe('TokenVerifier checks on every request', () => {
  it('refuses a cached token for another resource, revoked, of a disabled client, or expired', async () => {
    const { tokens, revoked, disabled } = verifier();
    const token = await accessToken(key);
    const cacheKey = TokenVerifier.cacheKey(token);
    await tokens.verify(token, cacheKey);
    const cached = tokens.cached(cacheKey)!;
    expect(() => tokens.check(cached, PLAIN)).not.toThrow();
    expect(rejectionOf(() => tokens.check(cached, TOOLS)).code).toBe('audience');

    revoked.add('grant-1');
    expect(rejectionOf(() => tokens.check(tokens.cached(cacheKey)!, PLAIN)).code).toBe('revoked');
    revoked.clear();

    disabled.add('client-1');
    expect(rejectionOf(() => tokens.check(cached, PLAIN)).code).toBe('client_disabled');
    disabled.clear();

    const expired: VerifiedToken = { ...cached, exp: Math.floor(Date.now() / 1000) - 60 };
    expect(rejectionOf(() => tokens.check(expired, PLAIN)).code).toBe('expired');
  });
});

describe('TokenVerifier key re-read', () => {
  it('re-reads the keys for a token signed with a key rotated in elsewhere', async () => {
    let reads = 0;
    const reloadKeys = (): Promise<JWK[]> => {
      reads += 1;
      return Promise.resolve([key.publicJwk, rotated.publicJwk]);
    };
    const { tokens } = verifier({ reloadKeys });
    const token = await accessToken(rotated);
    const verified = await tokens.verify(token, TokenVerifier.cacheKey(token));
    expect(verified.sub).toBe('alice');
    expect(reads).toBe(1);
    // The new key is known now: no further re-read.
    const another = await accessToken(rotated, { sub: 'bob' });
    expect((await tokens.verify(another, TokenVerifier.cacheKey(another))).sub).toBe('bob');
    expect(reads).toBe(1);
  });

  it('throttles re-reads: an unknown key id right after one is refused without another', async () => {
    let reads = 0;
    const reloadKeys = (): Promise<JWK[]> => {
      reads += 1;
      return Promise.resolve([key.publicJwk]);
    };
    const { tokens } = verifier({ reloadKeys });
    const first = await accessToken(rotated);
    expect((await rejection(tokens.verify(first, TokenVerifier.cacheKey(first)))).code).toBe(
      'unknown_key',
    );
    expect(reads).toBe(1);
    const again = await accessToken(rotated, { sub: 'bob' });
    expect((await rejection(tokens.verify(again, TokenVerifier.cacheKey(again)))).code).toBe(
      'unknown_key',
    );
    expect(reads).toBe(1);
  });

  it('refuses a token of an unknown key without reloadKeys', async () => {
    const { tokens } = verifier();
    const token = await accessToken(rotated);
    expect((await rejection(tokens.verify(token, TokenVerifier.cacheKey(token)))).code).toBe(
      'unknown_key',
    );
  });
});
