/**
 * The request the proxy is asking about, rebuilt from the forwardAuth subrequest.
 *
 * Traefik (and Caddy `forward_auth`, nginx `auth_request` as configured in docs/proxies.md)
 * describe the original request in `X-Forwarded-Proto`, `-Host`, `-Uri` and `-Method`. Those
 * headers are believed only when the subrequest comes from a trusted proxy: from anywhere
 * else they would let a caller ask about any URL with any identity it likes.
 */
import type { IncomingHttpHeaders } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { TrustFunction } from '../http/trusted-proxies.js';
import { routedPath, type PathAmbiguity } from '../resources/routed-path.js';

export interface PublicRequest {
  method: string;
  /** `https://host[:port]`, lowercase, default port omitted. */
  origin: string;
  /** The path the proxy routes on: decoded, and unambiguous (src/resources/routed-path.ts). */
  path: string;
  /** The query as sent, with its `?`, or '' (a legacy SSE server's `/messages?sessionId=`). */
  search: string;
  /**
   * The client's address as the trusted proxies saw it. Computed on demand: only refusals
   * log it, and walking X-Forwarded-For costs on every allowed request otherwise.
   */
  clientIp(): string;
}

export type PublicRequestResult =
  | { ok: true; request: PublicRequest }
  | {
      ok: false;
      reason: 'untrusted_proxy' | 'missing_forwarded_headers' | 'malformed_forwarded_headers';
    }
  | {
      ok: false;
      reason: 'ambiguous_path';
      ambiguity: PathAmbiguity;
      /** The forwarded path as sent (no query), cut to a loggable length. */
      rawPath: string;
      clientIp(): string;
    };

/** A host[:port] with nothing that would end or redirect the URL's authority. */
const AUTHORITY = /^[^\s/?#@\\]+$/;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) return value[0];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Reads the original request from the subrequest's headers, sent from `peerAddress` (the
 * proxy's address, as the socket says).
 */
export function readPublicRequest(
  headers: IncomingHttpHeaders,
  peerAddress: string | undefined,
  trust: TrustFunction,
): PublicRequestResult {
  if (!trust(peerAddress ?? '', 0)) return { ok: false, reason: 'untrusted_proxy' };
  const proto = header(headers, 'x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  const host = header(headers, 'x-forwarded-host')?.split(',')[0]?.trim();
  const uri = header(headers, 'x-forwarded-uri');
  const method = header(headers, 'x-forwarded-method');
  if (!proto || !host || !uri || !method) return { ok: false, reason: 'missing_forwarded_headers' };
  if (
    (proto !== 'https' && proto !== 'http') ||
    !uri.startsWith('/') ||
    uri.includes('#') ||
    !/^[A-Z]{3,10}$/.test(method) ||
    !AUTHORITY.test(host)
  ) {
    return { ok: false, reason: 'malformed_forwarded_headers' };
  }
  // The origin alone goes through WHATWG URL parsing, which lowercases the host and drops a
  // default port; a host that cannot end the authority early (no `/ ? # @ \`) cannot change
  // which origin is parsed. The path is read the way the proxies route it, not as WHATWG
  // would read it (its `\` is a separator, its `%2F` is not: neither matches any proxy).
  const url = URL.parse(`${proto}://${host}`);
  if (!url || url.host === '') return { ok: false, reason: 'malformed_forwarded_headers' };
  const queryAt = uri.indexOf('?');
  const rawPath = queryAt === -1 ? uri : uri.slice(0, queryAt);
  // proxy-addr reads only the X-Forwarded-For header and the socket's address.
  const clientIp = () =>
    proxyAddr({ headers, socket: { remoteAddress: peerAddress } } as never, trust);
  const routed = routedPath(rawPath);
  if (!routed.ok) {
    return {
      ok: false,
      reason: 'ambiguous_path',
      ambiguity: routed.reason,
      rawPath: rawPath.slice(0, 300),
      clientIp,
    };
  }
  return {
    ok: true,
    request: {
      method,
      origin: url.origin,
      path: routed.path,
      search: queryAt === -1 ? '' : uri.slice(queryAt),
      clientIp,
    },
  };
}
