/**
 * The answers of the decision point when a request may not pass, in the forms the MCP
 * specification and RFC 6750 / RFC 9728 prescribe. Every refusal of `/verify` is a
 * {@link Denial} value, and {@link answerFor} is the one place that turns it into status,
 * headers and body. Proxies relay them to the client verbatim (status, `WWW-Authenticate`,
 * body); nginx cannot relay a body, so the body is also sent in `X-Auth-Error-Body`
 * (docs/proxies.md).
 */
import type { JsonRpcId } from './mcp-operation.js';

/**
 * On every non-2xx answer: the JSON body again, compacted into one header, because nginx's
 * `auth_request` never relays the auth answer's body (docs/proxies.md).
 */
export const AUTH_ERROR_BODY_HEADER = 'X-Auth-Error-Body';

/** The statuses a JSON-RPC refusal is answered with. */
export type JsonRpcStatus = 400 | 403 | 404 | 413 | 429;

/** Why a request may not pass, with what its answer needs; {@link answerFor} writes it. */
export type Denial =
  /** No token: the RFC 9728 challenge, no `error` parameter (RFC 6750 §3.1). */
  | { kind: 'missing_token'; prmUrl: string; scopes: readonly string[] }
  /** Invalid, expired, revoked or foreign token: 401 `invalid_token`. */
  | { kind: 'invalid_token'; prmUrl: string; scopes: readonly string[]; description: string }
  /** More scopes would allow it: 403 `insufficient_scope` with every scope needed. */
  | { kind: 'insufficient_scope'; prmUrl: string; scopes: readonly string[]; description: string }
  /** A plain refusal with an OAuth-style body (a token would not help). */
  | { kind: 'refused'; status: 400 | 403; error: string; description: string }
  /** A JSON-RPC error body, as the MCP server's transport would answer. */
  | {
      kind: 'json_rpc';
      status: JsonRpcStatus;
      code: number;
      message: string;
      id: JsonRpcId;
      retryAfter?: number;
    }
  /** A client IP over `limits.verifyFailures`. */
  | { kind: 'too_many_failures'; retryAfter: number }
  /** Revocations or session bindings cannot be read (`verify.storeOutage`). */
  | { kind: 'store_unavailable' };

/** What is written to the proxy for a denial: the body is serialised once, here. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
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

/** A JSON answer; with its length the answer is one write (node:http would chunk it). */
function json(
  status: number,
  body: unknown,
  extra: Record<string, string> | undefined,
  errorBodyHeader: boolean,
): Answer {
  const text = JSON.stringify(body);
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-store',
  };
  if (errorBodyHeader) headers[AUTH_ERROR_BODY_HEADER] = asciiJson(body);
  Object.assign(headers, extra);
  headers['Content-Length'] = String(Buffer.byteLength(text));
  return { status, headers, body: text };
}

/** The answer to one denial: the only place a `/verify` refusal gets its status and form. */
export function answerFor(denial: Denial): Answer {
  switch (denial.kind) {
    case 'missing_token': {
      const { prmUrl, scopes } = denial;
      const body = {
        error: 'unauthorized',
        error_description: 'authorization required',
        resource_metadata: prmUrl,
      };
      const challenge = bearer({ resource_metadata: prmUrl, scope: scopes.join(' ') });
      return json(401, body, { 'WWW-Authenticate': challenge }, true);
    }
    case 'invalid_token': {
      const { prmUrl, scopes, description } = denial;
      const body = {
        error: 'invalid_token',
        error_description: description,
        resource_metadata: prmUrl,
      };
      const challenge = bearer({
        error: 'invalid_token',
        error_description: description,
        resource_metadata: prmUrl,
        scope: scopes.join(' '),
      });
      return json(401, body, { 'WWW-Authenticate': challenge }, true);
    }
    case 'insufficient_scope': {
      const { prmUrl, description } = denial;
      const scope = denial.scopes.join(' ');
      const body = { error: 'insufficient_scope', error_description: description, scope };
      const challenge = bearer({
        error: 'insufficient_scope',
        scope,
        resource_metadata: prmUrl,
        error_description: description,
      });
      return json(403, body, { 'WWW-Authenticate': challenge }, true);
    }
    case 'refused':
      return json(
        denial.status,
        { error: denial.error, error_description: denial.description },
        undefined,
        true,
      );
    case 'json_rpc': {
      const body = {
        jsonrpc: '2.0',
        id: denial.id,
        error: { code: denial.code, message: denial.message },
      };
      const extra =
        denial.retryAfter === undefined ? undefined : { 'Retry-After': String(denial.retryAfter) };
      return json(denial.status, body, extra, true);
    }
    case 'too_many_failures':
      // The proxy passes it on; Retry-After says when this address is served again.
      return json(
        429,
        { error: 'too_many_requests', error_description: 'too many refused requests' },
        { 'Retry-After': String(denial.retryAfter) },
        false,
      );
    case 'store_unavailable':
      return json(503, STORE_UNAVAILABLE_BODY, { 'Retry-After': '5' }, false);
  }
}

const STORE_UNAVAILABLE_BODY = {
  error: 'temporarily_unavailable',
  error_description: 'the gateway cannot check revocations right now; retry shortly',
};

/**
 * No token: 401 with where to find the authorization server and which scopes to ask for
 * (RS-03, RS-05).
 */
export function missingToken(prmUrl: string, scopes: readonly string[]): Denial {
  return { kind: 'missing_token', prmUrl, scopes };
}

/** Invalid, expired, revoked or foreign token: 401 `invalid_token` (RS-07, RS-09). */
export function invalidToken(
  prmUrl: string,
  scopes: readonly string[],
  description: string,
): Denial {
  return { kind: 'invalid_token', prmUrl, scopes, description };
}

/**
 * More scopes would allow it: 403 `insufficient_scope` with every scope the operation needs
 * (the token's relevant scopes and the missing ones, MCP "Runtime Insufficient Scope
 * Errors"), so the client can step up in one go (RS-08).
 */
export function insufficientScope(
  prmUrl: string,
  scopes: readonly string[],
  description: string,
): Denial {
  return { kind: 'insufficient_scope', prmUrl, scopes, description };
}

/** JSON-RPC error codes the gateway answers with (server-defined range, JSON-RPC 2.0 §5.1). */
export const JSONRPC_PARSE_ERROR = -32700;
export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_FORBIDDEN = -32001;
/** What the MCP SDK's Streamable HTTP server answers (with 404) for an unknown session. */
export const JSONRPC_SESSION_NOT_FOUND = -32001;

export function jsonRpcError(
  status: JsonRpcStatus,
  code: number,
  message: string,
  id: JsonRpcId = null,
): Denial {
  return { kind: 'json_rpc', status, code, message, id };
}

/** A plain refusal with an OAuth-style JSON body (no challenge: a token would not help). */
export function refused(status: 400 | 403, error: string, description: string): Denial {
  return { kind: 'refused', status, error, description };
}

/** 404 for a session bound to someone else: the transport's answer for an unknown session. */
export const SESSION_NOT_FOUND: Denial = jsonRpcError(
  404,
  JSONRPC_SESSION_NOT_FOUND,
  'Session not found',
);

/**
 * 429 for a new MCP session over `verify.sessionBinding.maxPerUser`: bindings are never
 * evicted to make room (they deny access to everyone else), so new ones are refused instead.
 */
export const TOO_MANY_SESSIONS: Denial = {
  kind: 'json_rpc',
  status: 429,
  code: JSONRPC_INVALID_REQUEST,
  message: 'Too many MCP sessions for this user; retry later',
  id: null,
  retryAfter: 60,
};

/** 503 while revocations or session bindings cannot be read; the proxy passes it on. */
export const STORE_UNAVAILABLE: Denial = { kind: 'store_unavailable' };
