/**
 * The JWT an MCP server receives in `Authorization` when its resource says
 * `upstreamAuthorization: jwt`: the gateway's statement of who is calling, signed with the
 * gateway's keys (verifiable at `<issuer>/jwks`), addressed to that server only (`aud`), and
 * short-lived. It replaces the client's token, which never reaches the MCP server (RS-10).
 *
 * Signing costs far more than a cache lookup, so one JWT per (token, resource) is kept, keyed
 * weakly by the verified token (it goes when the verified-token cache lets the token go), and
 * reused until a quarter of its lifetime is left.
 */
import { importJWK, SignJWT, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { SIGNING_ALG } from '../keys/key-material.js';
import type { VerifiedToken } from './token-verifier.js';

export const BACKEND_TOKEN_TYPE = 'mcp-gateway+jwt';

export class BackendTokenSigner {
  /**
   * The JWTs already signed per verified token and resource. Created on first use: most tokens
   * never need one, and the verified-token cache holds up to 100 000 tokens.
   */
  private readonly signed = new WeakMap<VerifiedToken, Map<string, { jwt: string; exp: number }>>();
  private key: Promise<CryptoKey | KeyObject | Uint8Array> | undefined;

  constructor(
    private readonly issuer: string,
    private readonly signingKey: JWK,
    private readonly ttl: number,
  ) {}

  async tokenFor(token: VerifiedToken, resourceUrl: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const cached = this.signed.get(token)?.get(resourceUrl);
    if (cached && cached.exp - now > this.ttl / 4) return cached.jwt;
    const exp = Math.min(now + this.ttl, token.exp);
    this.key ??= importJWK(this.signingKey, SIGNING_ALG);
    const jwt = await new SignJWT({
      client_id: token.clientId,
      scope: token.scopes.join(' '),
      email: token.email,
      name: token.name,
      groups: token.groups,
    })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: this.signingKey.kid, typ: BACKEND_TOKEN_TYPE })
      .setIssuer(this.issuer)
      .setSubject(token.sub)
      .setAudience(resourceUrl)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(await this.key);
    const kept = this.signed.get(token);
    if (kept) kept.set(resourceUrl, { jwt, exp });
    else this.signed.set(token, new Map([[resourceUrl, { jwt, exp }]]));
    return jwt;
  }
}
