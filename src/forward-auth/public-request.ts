/**
 * The request the proxy is asking about, rebuilt from the forwardAuth subrequest.
 *
 * Traefik (and Caddy `forward_auth`, nginx `auth_request` as configured in docs/proxies.md)
 * describe the original request in `X-Forwarded-Proto`, `-Host`, `-Uri` and `-Method`. Those
 * headers are believed only when the subrequest comes from a trusted proxy: from anywhere
 * else they would let a caller ask about any URL with any identity it likes.
 */
import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { TrustFunction } from '../http/trusted-proxies.js';

export interface PublicRequest {
  method: string;
  /** `https://host[:port]`, lowercase, default port omitted. */
  origin: string;
  /** The path with dot segments resolved, without the query. */
  path: string;
  /** The query with its `?`, or '' (a legacy SSE server's `/messages?sessionId=`). */
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
    };

/** A host[:port] with nothing that would end or redirect the URL's authority. */
const AUTHORITY = /^[^\s/?#@\\]+$/;

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  if (Array.isArray(value)) return value[0];
  return value === undefined || value === '' ? undefined : value;
}

export function readPublicRequest(req: IncomingMessage, trust: TrustFunction): PublicRequestResult {
  if (!trust(req.socket.remoteAddress ?? '', 0)) return { ok: false, reason: 'untrusted_proxy' };
  const proto = header(req, 'x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  const host = header(req, 'x-forwarded-host')?.split(',')[0]?.trim();
  const uri = header(req, 'x-forwarded-uri');
  const method = header(req, 'x-forwarded-method');
  if (!proto || !host || !uri || !method) return { ok: false, reason: 'missing_forwarded_headers' };
  if (
    (proto !== 'https' && proto !== 'http') ||
    !uri.startsWith('/') ||
    !/^[A-Z]{3,10}$/.test(method)
  ) {
    return { ok: false, reason: 'malformed_forwarded_headers' };
  }
  // WHATWG URL parsing lowercases the host, drops a default port and resolves `.`/`..`
  // (also percent-encoded ones), so the path matched is the path the proxy routed. The URI is
  // appended to the origin rather than resolved against it: resolved, `//other-host/mcp`
  // would change the host, and a request routed to one host could be judged as another's.
  // Appended after a host that cannot end the authority early (no `/ ? # @ \`), a URI that
  // starts with `/` can only be a path, so one parse suffices.
  if (!AUTHORITY.test(host)) return { ok: false, reason: 'malformed_forwarded_headers' };
  const url = URL.parse(`${proto}://${host}${uri}`);
  if (!url || url.host === '') {
    return { ok: false, reason: 'malformed_forwarded_headers' };
  }
  return {
    ok: true,
    request: {
      method,
      origin: url.origin,
      path: url.pathname,
      search: url.search,
      clientIp: () => proxyAddr(req as never, trust),
    },
  };
}
