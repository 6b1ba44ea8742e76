/**
 * Verifies the access tokens MCP clients present, for `/verify`.
 *
 * With jose, against the auth service's own signing keys (no network): signature, `alg` in an
 * allow-list (RS256), `typ` `at+jwt` (RFC 9068 §2.1: an ID token or any other JWT signed by
 * the same keys is refused), `iss` = our issuer, `exp`/`nbf` with a small clock skew, and `aud`
 * = the matched resource (RFC 8707, checklist RS-09). A token whose grant was revoked is
 * refused (revocations.ts), and so is a token of a client an administrator disabled
 * (src/clients/disabled-clients.ts), for as long as it is disabled.
 *
 * Verified tokens are cached, keyed by a SHA-256 of the token (the token itself is never kept
 * as a key), bounded in number, each entry never kept past the token's `exp`. The cache holds
 * verification results only ({@link VerifiedToken}), never anything of an answer. A cache hit
 * costs a hash and a map read; the audience, revocation and disabled-client checks still run on
 * every request.
 */
import { hash } from 'node:crypto';
import {
  createLocalJWKSet,
  errors as joseErrors,
  decodeProtectedHeader,
  jwtVerify,
  type JWK,
  type JWTPayload,
} from 'jose';
import { LRUCache } from 'lru-cache';

export const ACCEPTED_ALGORITHMS = ['RS256'];

/**
 * What verifying a token established, and all the cache keeps of it: claims only. What an
 * answer is built from them (identity headers, a backend JWT) is kept elsewhere, keyed by this
 * object (identity-headers.ts, backend-token.ts), so the cache never holds response state.
 */
export interface VerifiedToken {
  readonly sub: string;
  readonly clientId: string;
  readonly scopes: string[];
  readonly email: string;
  readonly name: string;
  readonly groups: string[];
  readonly audiences: string[];
  readonly grantId: string | undefined;
  /** Epoch seconds. */
  readonly exp: number;
}

/** Why a token was refused, machine-readable (security events, CrowdSec). */
export type RejectionCode =
  | 'malformed'
  | 'signature'
  | 'unknown_key'
  | 'algorithm'
  | 'expired'
  | 'not_yet_valid'
  | 'issuer'
  | 'audience'
  | 'type'
  | 'claims'
  | 'revoked'
  | 'client_disabled';

export class TokenRejected extends Error {
  constructor(
    message: string,
    readonly code: RejectionCode,
  ) {
    super(message);
    this.name = 'TokenRejected';
  }
}

export interface TokenVerifierOptions {
  issuer: string;
  publicKeys: JWK[];
  clockSkew: number;
  cacheSize: number;
  /** Revoked grants (revocations.ts: this replica's copy, a Map lookup, no round trip). */
  revocations: { isRevoked(grantId: string | undefined): boolean };
  /** Clients an administrator disabled (this replica's copy: a Set lookup, no round trip). */
  disabledClients?: { isDisabled(clientId: string): boolean };
  /** Re-reads the signing keys (another replica may have rotated); throttled here. */
  reloadKeys?: () => Promise<JWK[]>;
}

/**
 * At most one re-read of the keys per 200 ms, whatever key ids tokens name: a flood of made-up
 * ids costs five store reads a second. Any re-read loads every current key, so a genuine token
 * signed with a key rotated in elsewhere is refused only if it comes within 200 ms of both the
 * rotation and another re-read.
 */
const KEY_RELOAD_INTERVAL_MS = 200;
/** A key id still unknown after a re-read does not cause another one for this long. */
const ABSENT_KID_MS = 10_000;

export class TokenVerifier {
  private keySet: ReturnType<typeof createLocalJWKSet>;
  private readonly cache: LRUCache<string, VerifiedToken> | undefined;
  private lastReload = 0;

  constructor(private readonly options: TokenVerifierOptions) {
    this.keySet = createLocalJWKSet({ keys: options.publicKeys });
    this.cache =
      options.cacheSize > 0
        ? new LRUCache<string, VerifiedToken>({ max: options.cacheSize })
        : undefined;
  }

  static cacheKey(token: string): string {
    // One-shot hash (no Hash object per request: this runs on every /verify call).
    return hash('sha256', token, 'base64url');
  }

  /** Looks the token up in the cache; `undefined` when it must be verified. */
  cached(key: string): VerifiedToken | undefined {
    return this.cache?.get(key);
  }

  /** Verifies a token not found in the cache, and caches it. */
  async verify(token: string, key: string): Promise<VerifiedToken> {
    let payload: JWTPayload;
    const keySetBefore = this.keySet;
    try {
      payload = await this.jwtVerify(token);
    } catch (error) {
      if (
        error instanceof joseErrors.JWKSNoMatchingKey &&
        (await this.reloadKeys(keySetBefore, keyIdOf(token)))
      ) {
        payload = await this.jwtVerify(token).catch((retry: unknown) => {
          throw rejection(retry);
        });
      } else {
        throw rejection(error);
      }
    }
    const verified = toVerifiedToken(payload);
    const ttl = verified.exp * 1000 - Date.now();
    if (this.cache && ttl > 0) this.cache.set(key, verified, { ttl });
    return verified;
  }

  /**
   * The checks that depend on the request or on what changed since the token was cached:
   * audience, revocation, disabled client, expiry.
   */
  check(token: VerifiedToken, resourceUrl: string): void {
    if (!token.audiences.includes(resourceUrl)) {
      throw new TokenRejected('the token was issued for another resource', 'audience');
    }
    if (this.options.revocations.isRevoked(token.grantId)) {
      throw new TokenRejected('the token was revoked', 'revoked');
    }
    if (this.options.disabledClients?.isDisabled(token.clientId)) {
      throw new TokenRejected("the token's client is disabled", 'client_disabled');
    }
    if (token.exp + this.options.clockSkew < Date.now() / 1000) {
      throw new TokenRejected('the token expired', 'expired');
    }
  }

  private jwtVerify(token: string): Promise<JWTPayload> {
    return jwtVerify(token, this.keySet, {
      issuer: this.options.issuer,
      typ: 'at+jwt',
      algorithms: ACCEPTED_ALGORITHMS,
      clockTolerance: this.options.clockSkew,
      requiredClaims: ['exp', 'sub', 'aud', 'client_id'],
    }).then((result) => result.payload);
  }

  /**
   * Re-reads the keys for a token whose key was unknown; `true` when the token is worth
   * verifying again: the keys were re-read by this call, by one in flight (awaited), or by
   * another since the token was first tried against `triedWith`.
   */
  private async reloadKeys(
    triedWith: TokenVerifier['keySet'],
    kid: string | undefined,
  ): Promise<boolean> {
    const { reloadKeys } = this.options;
    if (!reloadKeys) return false;
    if (this.reloading) {
      await this.reloading;
      return true;
    }
    if (this.keySet !== triedWith) return true;
    const now = Date.now();
    if (kid !== undefined && (this.absentKids.get(kid) ?? 0) > now) return false;
    if (now - this.lastReload < KEY_RELOAD_INTERVAL_MS) return false;
    this.lastReload = now;
    this.reloading = reloadKeys()
      .then((keys) => {
        this.keySet = createLocalJWKSet({ keys });
        if (kid !== undefined && !keys.some((key) => key.kid === kid)) {
          if (this.absentKids.size >= 1000) this.absentKids.clear();
          this.absentKids.set(kid, Date.now() + ABSENT_KID_MS);
        }
      })
      .finally(() => {
        this.reloading = undefined;
      });
    await this.reloading;
    return true;
  }

  private reloading: Promise<void> | undefined;
  /** Key ids found absent by a re-read → until when they cause no new one. */
  private readonly absentKids = new Map<string, number>();
}

/** The `kid` a token's header names (undefined when none or unreadable). */
function keyIdOf(token: string): string | undefined {
  try {
    const { kid } = decodeProtectedHeader(token);
    return typeof kid === 'string' ? kid.slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

const CLAIM_CODES: Record<string, RejectionCode> = {
  iss: 'issuer',
  aud: 'audience',
  nbf: 'not_yet_valid',
  typ: 'type',
};

function rejection(error: unknown): TokenRejected {
  if (error instanceof joseErrors.JWTExpired)
    return new TokenRejected('the token expired', 'expired');
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return new TokenRejected(
      `the token's ${error.claim} claim is not acceptable`,
      CLAIM_CODES[error.claim] ?? 'claims',
    );
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new TokenRejected('the token signature is not valid', 'signature');
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) {
    return new TokenRejected('the token was not signed by this gateway', 'unknown_key');
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return new TokenRejected('the token algorithm is not accepted', 'algorithm');
  }
  return new TokenRejected('the token is not valid', 'malformed');
}

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];

function toVerifiedToken(payload: JWTPayload): VerifiedToken {
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    sub: text(payload.sub),
    clientId: text(payload.client_id),
    scopes: text(payload.scope).split(' ').filter(Boolean),
    email: text(payload.email),
    name: text(payload.name),
    groups: strings(payload.groups),
    audiences: typeof payload.aud === 'string' ? [payload.aud] : strings(payload.aud),
    grantId: typeof payload.gid === 'string' ? payload.gid : undefined,
    exp: payload.exp!,
  };
}
