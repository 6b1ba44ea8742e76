/**
 * What the forward-auth unit tests share: a signing key pair made with jose, access tokens
 * signed the way the authorization server signs them (RFC 9068 `at+jwt`), and the resources
 * the decisions are asked about. Nothing here listens or starts a process.
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { resourceSchema, type ResourceConfig } from '../../../src/config/schema.js';
import { BackendTokenSigner } from '../../../src/forward-auth/backend-token.js';
import {
  TokenVerifier,
  type TokenVerifierOptions,
} from '../../../src/forward-auth/token-verifier.js';
import { ResourceMatcher } from '../../../src/resources/resource-matcher.js';

export const ISSUER = 'https://auth.example.com';
export const ORIGIN = 'https://mcp.example.com';
/** A plain resource. */
export const PLAIN = `${ORIGIN}/mcp`;
/** A resource with tool rules, decided on the forwarded body. */
export const TOOLS = `${ORIGIN}/tools`;
/** A resource whose MCP server receives a gateway-signed JWT. */
export const BACKEND_JWT = `${ORIGIN}/backend`;
/** A resource whose tokens need a second baseline scope. */
export const STRICT = `${ORIGIN}/strict`;
export const ALLOWED_ORIGIN = 'https://app.example.com';
/** The reverse proxy `/verify` trusts. */
export const PROXY = '10.0.0.2';
/** The MCP client, as the proxy forwards its address. */
export const CLIENT = '203.0.113.7';

/** The `X-Forwarded-*` headers of a client's `POST /mcp` as the proxy relays it. */
export function forwardedHeaders(): Record<string, string> {
  return {
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'mcp.example.com',
    'x-forwarded-uri': '/mcp',
    'x-forwarded-method': 'POST',
    'x-forwarded-for': CLIENT,
  };
}

export const RESOURCES: ResourceConfig[] = [
  { url: PLAIN, name: 'Plain', allowedOrigins: [ALLOWED_ORIGIN] },
  {
    url: TOOLS,
    name: 'Tools',
    tools: {
      rules: {
        delete_all: { groups: ['corp:admins'] },
        write_file: { scopes: ['files:write'] },
      },
    },
  },
  { url: BACKEND_JWT, name: 'Backend JWT', upstreamAuthorization: 'jwt' },
  { url: STRICT, name: 'Strict', scopes: ['mcp', 'strict'] },
].map((resource) => resourceSchema.parse(resource));

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  /** The private key as a JWK (the backend JWT signer takes one). */
  privateJwk: JWK;
  publicJwk: JWK;
}

export async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return {
    kid,
    privateKey,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
  };
}

export interface TokenOptions {
  sub?: string;
  aud?: string;
  scope?: string;
  clientId?: string;
  grantId?: string;
  groups?: string[];
  /** Seconds from now; negative for a token already expired. */
  expiresIn?: number;
  typ?: string;
  issuer?: string;
}

/** An access token as the authorization server issues it, for `aud` (default {@link PLAIN}). */
export function accessToken(key: SigningKey, options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    client_id: options.clientId ?? 'client-1',
    scope: options.scope ?? 'mcp',
    email: `${options.sub ?? 'alice'}@example.com`,
    name: 'Zoë Example',
    groups: options.groups ?? ['corp:staff'],
    gid: options.grantId ?? 'grant-1',
  })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: options.typ ?? 'at+jwt' })
    .setIssuer(options.issuer ?? ISSUER)
    .setSubject(options.sub ?? 'alice')
    .setAudience(options.aud ?? PLAIN)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + (options.expiresIn ?? 3600))
    .sign(key.privateKey);
}

/** A token verifier of {@link ISSUER} trusting `key`, and the revocations it reads. */
export interface TestVerifier {
  tokens: TokenVerifier;
  /** Grant ids to treat as revoked. */
  revoked: Set<string>;
  /** Client ids to treat as disabled. */
  disabled: Set<string>;
}

export function testVerifier(
  key: SigningKey,
  options: Partial<TokenVerifierOptions> = {},
): TestVerifier {
  const revoked = new Set<string>();
  const disabled = new Set<string>();
  const tokens = new TokenVerifier({
    issuer: ISSUER,
    publicKeys: [key.publicJwk],
    clockSkew: 5,
    cacheSize: 100,
    revocations: { isRevoked: (grantId) => grantId !== undefined && revoked.has(grantId) },
    disabledClients: { isDisabled: (clientId) => disabled.has(clientId) },
    ...options,
  });
  return { tokens, revoked, disabled };
}

/**
 * What both the decision core and its `node:http` adapter are built with: {@link RESOURCES},
 * trust in {@link PROXY} only, `verifier`, and a backend JWT signer with `key`.
 */
export function decisionParts(key: SigningKey, verifier: TokenVerifier) {
  return {
    resources: { matcher: new ResourceMatcher(RESOURCES) },
    trust: (address: string) => address === PROXY,
    verifier,
    backendSigner: new BackendTokenSigner(ISSUER, key.privateJwk, 300),
  };
}
