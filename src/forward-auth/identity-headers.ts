/**
 * The headers an allowed request carries to the MCP server. The proxy copies exactly these
 * from the decision's 2xx answer (Traefik `authResponseHeaders`, Caddy `copy_headers`, nginx
 * `auth_request_set`), deleting any the client sent, so clients cannot spoof them. Every one is
 * sent on every 2xx, empty when unknown (Caddy 2.6 would otherwise forward its placeholder
 * text). `Authorization` is replaced too: empty, or a JWT the gateway signs for the backend;
 * never the client's own token (MCP "Token Passthrough", RS-10).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { VerifiedToken } from './token-verifier.js';

export const IDENTITY_RESPONSE_HEADERS = [
  'X-Auth-User-Id',
  'X-Auth-User-Email',
  'X-Auth-User-Name',
  'X-Auth-User-Groups',
  'X-Auth-Client-Id',
  'X-Auth-Scopes',
  'Authorization',
] as const;

export type IdentityResponseHeader = (typeof IDENTITY_RESPONSE_HEADERS)[number];

const IDENTITY_NAMES = new Set(IDENTITY_RESPONSE_HEADERS.map((name) => name.toLowerCase()));

/**
 * A request header that aliases an identity header: `X_Auth_User_Id`, `X.Auth.User.Id`. The
 * proxy replaces the identity headers by their exact names only and passes such a header on,
 * and servers that turn header names into variables (CGI, WSGI, PHP, nginx's `$http_`) read it
 * as the identity header itself: a client would name its own user. `undefined` when none.
 */
export function identityHeaderAlias(headers: IncomingHttpHeaders): string | undefined {
  for (const name in headers) {
    if (!name.includes('_') && !name.includes('.')) continue;
    if (IDENTITY_NAMES.has(name.replace(/[_.]/g, '-'))) return name;
  }
  return undefined;
}

export interface Identity {
  sub: string;
  email: string;
  name: string;
  groups: readonly string[];
  clientId: string;
  scopes: readonly string[];
}

/**
 * HTTP header values are visible ASCII: any other character (a name in another script, a
 * control character) is sent percent-encoded as UTF-8, and so is `%` itself, so `Zoë` arrives
 * as `Zo%C3%AB`, every value decodes unambiguously with `decodeURIComponent`, and no value
 * can smuggle a line break into the request.
 */
function headerValue(value: string): string {
  return value.replace(/[^\x20-\x24\x26-\x7e]+/gu, (run) => encodeURIComponent(run));
}

export function identityHeaders(identity: Identity, authorization: string): Record<string, string> {
  return {
    'X-Auth-User-Id': headerValue(identity.sub),
    'X-Auth-User-Email': headerValue(identity.email),
    'X-Auth-User-Name': headerValue(identity.name),
    'X-Auth-User-Groups': headerValue(identity.groups.join(',')),
    'X-Auth-Client-Id': headerValue(identity.clientId),
    'X-Auth-Scopes': headerValue(identity.scopes.join(' ')),
    Authorization: authorization,
  };
}

/** The headers of one allowed answer, and what they were built for. */
interface BuiltAnswer {
  resourceUrl: string;
  headers: Readonly<Record<string, string>>;
}

/**
 * The allowed answers' headers already built, per verified token. A memo of this module, not
 * part of the verified-token cache (which holds claims only): keyed weakly, an entry goes when
 * the cache lets its token go. A token is for one resource (its audience), so one entry each.
 */
const built = new WeakMap<VerifiedToken, BuiltAnswer>();

/**
 * The headers of the 2xx answer for `token` at `resourceUrl`: the identity headers, with
 * `authorization` (empty, or `Bearer <backend JWT>`). Built once per token and resource on the
 * hot path, and again when the backend JWT changes. The result is shared: never modify it.
 */
export function allowedAnswerHeaders(
  token: VerifiedToken,
  resourceUrl: string,
  authorization: string,
): Readonly<Record<string, string>> {
  const kept = built.get(token);
  if (kept?.resourceUrl === resourceUrl && kept.headers.Authorization === authorization) {
    return kept.headers;
  }
  const headers = {
    ...identityHeaders(token, authorization),
    'Cache-Control': 'no-store',
    'Content-Length': '0',
  };
  built.set(token, { resourceUrl, headers });
  return headers;
}
