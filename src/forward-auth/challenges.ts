/**
 * The answers of the decision point when a request may not pass, in the forms the MCP
 * specification and RFC 6750 / RFC 9728 prescribe. Proxies relay them to the client verbatim
 * (status, `WWW-Authenticate`, body); nginx cannot relay a body, so the body is also sent in
 * `X-Auth-Error-Body` (docs/proxies.md).
 */

/**
 * On every non-2xx answer: the JSON body again, compacted into one header, because nginx's
 * `auth_request` never relays the auth answer's body (docs/proxies.md).
 */
export const AUTH_ERROR_BODY_HEADER = 'X-Auth-Error-Body';

export interface Denial {
  status: 400 | 401 | 403 | 404 | 413 | 429 | 503;
  headers: Record<string, string>;
  body: unknown;
}

/** `https://mcp.example.com/.well-known/oauth-protected-resource/mcp` (RFC 9728 §3.1). */
export function protectedResourceMetadataUrl(origin: string, resourcePath: string): string {
  return `${origin}/.well-known/oauth-protected-resource${resourcePath}`;
}

/**
 * An auth-param quoted-string (RFC 9110 §5.6.4). Quotes and backslashes become spaces, and
 * every character outside printable ASCII (control characters included) `?`: RFC 6750 §3
 * allows only %x20-21 / %x23-5B / %x5D-7E in `error_description`, and Node refuses most
 * others in a header anyway.
 */
function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, ' ').replace(/[^\x20-\x7e]/g, '?')}"`;
}

function bearer(params: Record<string, string | undefined>): string {
  const parts = Object.entries(params)
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([name, value]) => `${name}=${quoted(value!)}`);
  return parts.length ? `Bearer ${parts.join(', ')}` : 'Bearer';
}

/**
 * JSON in a header: HTTP header values are bytes, and Node refuses characters beyond
 * Latin-1 (a tool named in Chinese would make the answer fail). Every non-ASCII character is
 * written as a JSON `\uXXXX` escape, which any JSON parser reads back to the same text.
 */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function denial(status: Denial['status'], body: unknown, wwwAuthenticate?: string): Denial {
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
    [AUTH_ERROR_BODY_HEADER]: asciiJson(body),
  };
  if (wwwAuthenticate) headers['WWW-Authenticate'] = wwwAuthenticate;
  return { status, headers, body };
}

/**
 * No token: 401 with where to find the authorization server and which scopes to ask for,
 * and no `error` parameter (RFC 6750 §3.1: the request carried no credentials). RS-03, RS-05.
 */
export function missingToken(prmUrl: string, scopes: string[]): Denial {
  return denial(
    401,
    {
      error: 'unauthorized',
      error_description: 'authorization required',
      resource_metadata: prmUrl,
    },
    bearer({ resource_metadata: prmUrl, scope: scopes.join(' ') }),
  );
}

/** Invalid, expired, revoked or foreign token: 401 `invalid_token` (RS-07, RS-09). */
export function invalidToken(prmUrl: string, scopes: string[], description: string): Denial {
  return denial(
    401,
    { error: 'invalid_token', error_description: description, resource_metadata: prmUrl },
    bearer({
      error: 'invalid_token',
      error_description: description,
      resource_metadata: prmUrl,
      scope: scopes.join(' '),
    }),
  );
}

/**
 * More scopes would allow it: 403 `insufficient_scope` with every scope the operation needs
 * (the token's relevant scopes and the missing ones, MCP "Runtime Insufficient Scope
 * Errors"), so the client can step up in one go (RS-08).
 */
export function insufficientScope(prmUrl: string, scopes: string[], description: string): Denial {
  return denial(
    403,
    { error: 'insufficient_scope', error_description: description, scope: scopes.join(' ') },
    bearer({
      error: 'insufficient_scope',
      scope: scopes.join(' '),
      resource_metadata: prmUrl,
      error_description: description,
    }),
  );
}

/** JSON-RPC error codes the gateway answers with (server-defined range, JSON-RPC 2.0 §5.1). */
export const JSONRPC_PARSE_ERROR = -32700;
export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_FORBIDDEN = -32001;
/** What the MCP SDK's Streamable HTTP server answers (with 404) for an unknown session. */
export const JSONRPC_SESSION_NOT_FOUND = -32001;

export function jsonRpcError(
  status: Denial['status'],
  code: number,
  message: string,
  id: string | number | null = null,
): Denial {
  return denial(status, { jsonrpc: '2.0', id, error: { code, message } });
}

/** A plain refusal with an OAuth-style JSON body (no challenge: a token would not help). */
export function refused(status: Denial['status'], error: string, description: string): Denial {
  return denial(status, { error, error_description: description });
}
