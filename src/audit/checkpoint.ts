/**
 * Signed checkpoints of the audit mirror file: what lets `audit verify --file` tell a file
 * cut at either end from an intact one.
 *
 * A hash chain alone proves the order of the records it holds, not that none is missing at
 * its ends: the file legitimately starts mid-chain (the store keeps only the newest
 * `maxRecords`, and a new file starts with what the store still holds), and any prefix of an
 * append-only file is itself a valid chain. So after every batch it appends, the mirror
 * appends one more line, `{"checkpoint":"<JWS>"}`: a statement signed with the gateway's own
 * signing key (jose; the key `<issuer>/jwks` publishes) that this file starts at record
 * `first` (its `seq` and `prev`) and, at this point, ends at record `last` (its `seq` and
 * `hash`). A verifier then knows both ends of the file: a first record that is not `first` is
 * a cut start, a last checkpoint that is not right after `last`, or records after the last
 * checkpoint, a cut end. Only the signer's private key can write a checkpoint, and a verifier
 * needs only the public key.
 *
 * The checkpoint is a JWT with explicit type `mcp-gateway-audit+jwt` (RFC 8725 §3.11) and no
 * `aud`, `sub` or `exp`: the gateway's own token verifier accepts only `at+jwt`, so a
 * checkpoint read from the file is no credential anywhere.
 */
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { SIGNING_ALG } from '../keys/key-material.js';

export const CHECKPOINT_TYPE = 'mcp-gateway-audit+jwt';

/** Where the file starts (its first record) and where it ended when the checkpoint was signed. */
export interface CheckpointClaims {
  /** The audit chain's key in the store (`audit`). */
  chain: string;
  first: { seq: number; prev: string | null };
  last: { seq: number; hash: string };
}

export interface VerifiedCheckpoint extends CheckpointClaims {
  iss: string;
  /** Seconds since the epoch. */
  iat: number;
  kid: string | undefined;
}

/** Signs checkpoints (the gateway) and checks them (the gateway at start-up, the CLI). */
export interface CheckpointKeys {
  sign(claims: CheckpointClaims): Promise<string>;
  /** The claims of a checkpoint signed by one of the keys; rejects otherwise. */
  verify(jws: string): Promise<VerifiedCheckpoint>;
}

/** A checkpoint that does not verify: bad signature, unknown key, wrong type or claims. */
export class CheckpointRefused extends Error {
  constructor(
    message: string,
    /** The key that signed it is not among those given (rotated away, or not ours). */
    readonly unknownKey = false,
  ) {
    super(message);
    this.name = 'CheckpointRefused';
  }
}

/** Checks public keys; with `issuer`, also that the checkpoint names it. */
export function checkpointVerifier(publicKeys: JWK[], issuer?: string): CheckpointKeys['verify'] {
  const keySet = createLocalJWKSet({ keys: publicKeys });
  const algorithms = [...new Set(publicKeys.map((key) => key.alg ?? SIGNING_ALG))];
  return async (jws) => {
    let result;
    try {
      result = await jwtVerify(jws, keySet, {
        typ: CHECKPOINT_TYPE,
        algorithms,
        ...(issuer === undefined ? {} : { issuer }),
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new CheckpointRefused(
        code === 'ERR_JWKS_NO_MATCHING_KEY'
          ? 'it is signed by a key that is not among the keys given'
          : `its signature or header does not verify (${(error as Error).message})`,
        code === 'ERR_JWKS_NO_MATCHING_KEY',
      );
    }
    const claims = checkpointClaims(result.payload);
    if (!claims || typeof result.payload.iss !== 'string' || !result.payload.iat) {
      throw new CheckpointRefused('its claims are not those of an audit checkpoint');
    }
    return {
      ...claims,
      iss: result.payload.iss,
      iat: result.payload.iat,
      kid: result.protectedHeader.kid,
    };
  };
}

/** Signs with the gateway's newest private key; verifies with every key it still publishes. */
export function gatewayCheckpointKeys(options: {
  issuer: string;
  signingKey: JWK;
  publicKeys: JWK[];
}): CheckpointKeys {
  const alg = options.signingKey.alg ?? SIGNING_ALG;
  const key = importJWK(options.signingKey, alg);
  return {
    async sign(claims) {
      return new SignJWT({ ...claims })
        .setProtectedHeader({ alg, kid: options.signingKey.kid, typ: CHECKPOINT_TYPE })
        .setIssuer(options.issuer)
        .setIssuedAt()
        .sign(await key);
    },
    verify: checkpointVerifier(options.publicKeys, options.issuer),
  };
}

/** The JWS of a mirror line `{"checkpoint":"…"}`, or `undefined` for any other line. */
export function checkpointOfLine(parsed: unknown): string | undefined {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const keys = Object.keys(parsed);
  const value = (parsed as { checkpoint?: unknown }).checkpoint;
  return keys.length === 1 && typeof value === 'string' ? value : undefined;
}

const isSeq = (value: unknown): value is number => Number.isSafeInteger(value) && Number(value) > 0;

function checkpointClaims(payload: Record<string, unknown>): CheckpointClaims | undefined {
  const { chain, first, last } = payload as Partial<Record<keyof CheckpointClaims, unknown>>;
  if (typeof chain !== 'string' || !first || !last) return undefined;
  const f = first as { seq?: unknown; prev?: unknown };
  const l = last as { seq?: unknown; hash?: unknown };
  if (!isSeq(f.seq) || !(f.prev === null || typeof f.prev === 'string')) return undefined;
  if (!isSeq(l.seq) || typeof l.hash !== 'string' || l.seq < f.seq) return undefined;
  return { chain, first: { seq: f.seq, prev: f.prev }, last: { seq: l.seq, hash: l.hash } };
}
