/**
 * WireGuard keys: Curve25519 (X25519) key pairs written as base64 of their 32 raw bytes, the
 * format of `wg genkey` / `wg pubkey`. Generated and derived by Node's crypto (OpenSSL), so the
 * CLI needs no `wg` binary; `wg pubkey` gives the same public key for the private keys made
 * here (tests/tunnel/cli.test.ts checks it when wg is installed).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';

export interface WireGuardKeyPair {
  /** base64, 44 characters. Secret: written to a 0600 file, never printed. */
  privateKey: string;
  /** base64, 44 characters. */
  publicKey: string;
}

/** PKCS#8 DER prefix of an X25519 private key (RFC 8410); the 32 key bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

const KEY_TEXT = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export function generateKeyPair(): WireGuardKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    privateKey: fromBase64Url(privateKey.export({ format: 'jwk' }).d),
    publicKey: fromBase64Url(publicKey.export({ format: 'jwk' }).x),
  };
}

/** The public key of a base64 private key (what `wg pubkey` prints). */
export function publicKeyOf(privateKey: string): string {
  if (!isKeyText(privateKey)) throw new Error('not a WireGuard key (base64 of 32 bytes)');
  const der = Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey, 'base64')]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return fromBase64Url(createPublicKey(key).export({ format: 'jwk' }).x);
}

/**
 * Whether `text` has the form of a WireGuard key: base64 of exactly 32 bytes (44 characters,
 * one `=`), not all zero (wg treats the zero key as "no key").
 */
export function isKeyText(text: string): boolean {
  return KEY_TEXT.test(text) && Buffer.from(text, 'base64').some((byte) => byte !== 0);
}

function fromBase64Url(value: string | undefined): string {
  if (value === undefined) throw new Error('key export returned no key material');
  return Buffer.from(value, 'base64url').toString('base64');
}
