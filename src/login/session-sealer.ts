/**
 * Seals the upstream session a provider keeps (a GitHub token, an OIDC refresh token) before
 * it is stored with the account: a store dump (Redis backup, memory inspection of another
 * replica's store) then holds no usable upstream credential.
 *
 * JWE compact serialization with `dir` + `A256GCM` (jose). The 256-bit key is derived with
 * HKDF-SHA-256 from each of the service's cookie secrets (src/keys/key-material.ts), which are
 * generated, kept and rotated with the signing keys: sealing uses the newest, opening tries
 * each, so a rotation does not lose the sessions sealed before it. A session that can no
 * longer be opened counts as none (the user signs in again).
 */
import { hkdfSync } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import type { UpstreamSession } from './providers/provider.js';

const INFO = 'mcp-gateway upstream session v1';

export class SessionSealer {
  private readonly keys: Uint8Array[];

  constructor(secrets: string[]) {
    if (secrets.length === 0) throw new Error('SessionSealer needs at least one secret');
    this.keys = secrets.map(
      (secret) => new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), INFO, 32)),
    );
  }

  seal(session: UpstreamSession): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(session)))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(this.keys[0]!);
  }

  /** The session, or `undefined` when no current key opens it or it is malformed. */
  async open(sealed: string): Promise<UpstreamSession | undefined> {
    for (const key of this.keys) {
      try {
        const { plaintext } = await compactDecrypt(sealed, key, {
          keyManagementAlgorithms: ['dir'],
          contentEncryptionAlgorithms: ['A256GCM'],
        });
        const parsed: unknown = JSON.parse(new TextDecoder().decode(plaintext));
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
          return Object.fromEntries(
            Object.entries(parsed).filter(([, value]) => typeof value === 'string'),
          ) as UpstreamSession;
        }
        return undefined;
      } catch {
        // Not this key (or tampered with): try the next.
      }
    }
    return undefined;
  }
}
