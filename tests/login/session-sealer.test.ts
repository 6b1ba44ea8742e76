import { describe, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import { SessionSealer } from '../../src/login/session-sealer.js';

describe('SessionSealer', () => {
  const session = { accessToken: 'gho_upstream-token-value' };

  it('seals into a JWE that does not contain the token, and opens it again', async () => {
    const sealer = new SessionSealer(['secret-one']);
    const sealed = await sealer.seal(session);
    expect(sealed).not.toContain('gho_');
    expect(Buffer.from(sealed.split('.')[3]!, 'base64url').toString()).not.toContain('gho_');
    expect(decodeProtectedHeader(sealed)).toEqual({ alg: 'dir', enc: 'A256GCM' });
    expect(await sealer.open(sealed)).toEqual(session);
  });

  it('opens sessions sealed before a secret rotation, and not after the secret is dropped', async () => {
    const before = await new SessionSealer(['old']).seal(session);
    expect(await new SessionSealer(['new', 'old']).open(before)).toEqual(session);
    expect(await new SessionSealer(['new']).open(before)).toBeUndefined();
  });

  it('refuses a tampered or malformed value instead of throwing', async () => {
    const sealer = new SessionSealer(['secret']);
    const sealed = await sealer.seal(session);
    const parts = sealed.split('.');
    const ciphertext = Buffer.from(parts[3]!, 'base64url');
    ciphertext[0]! ^= 1;
    parts[3] = ciphertext.toString('base64url');
    expect(await sealer.open(parts.join('.'))).toBeUndefined();
    expect(await sealer.open('not-a-jwe')).toBeUndefined();
  });
});
