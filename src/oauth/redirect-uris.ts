/**
 * Redirect URI policy for every client, however it was registered (DCR, CIMD, config).
 *
 * MCP Authorization "Communication Security": all redirect URIs MUST be either localhost or
 * use HTTPS (checklist AS-07). oidc-provider on its own lets web clients register `http://`
 * on any host and native clients register custom schemes, so this policy is applied on top.
 *
 * Matching is exact (OAuth 2.1 §4.1.1), except that for `http` loopback redirect URIs the
 * port is ignored (RFC 8252 §7.3): native MCP clients listen on an ephemeral port chosen at
 * login time. oidc-provider relaxes the port only for `application_type: native` clients;
 * MCP clients register without an application type (so "web"), hence
 * {@link allowLoopbackPortVariation}.
 */
import { isLoopbackHostname } from '../net/loopback.js';

/** Returns why `uri` is not an acceptable redirect URI, or `undefined` when it is. */
export function redirectUriProblem(uri: string): string | undefined {
  // A URI is ASCII (RFC 3986 §2: anything else is percent-encoded). A raw non-ASCII character,
  // such as the U+FFFD a decoder put where the request had invalid UTF-8, is not the URI the
  // client meant, and exact matching against it later would be matching garbage.
  if (/[^\x21-\x7e]/.test(uri)) {
    return 'redirect URIs must be printable ASCII (percent-encode anything else)';
  }
  if (uri.includes('#')) return `${uri} must not contain a fragment`;
  const url = URL.parse(uri);
  if (!url) return `${uri} is not an absolute URI`;
  if (url.username || url.password) return `${uri} must not contain credentials`;
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return isLoopbackHostname(url.hostname)
      ? undefined
      : `${uri} must use https (http is allowed only for localhost, 127.0.0.1 and [::1])`;
  }
  return `${uri} must use https or http on a loopback address (${url.protocol} is not allowed)`;
}

/** Every problem with a list of redirect URIs (empty when all are acceptable). */
export function redirectUriProblems(uris: unknown): string[] {
  if (!Array.isArray(uris)) return ['redirect_uris must be an array of URIs'];
  return uris.flatMap((uri) =>
    typeof uri === 'string' ? (redirectUriProblem(uri) ?? []) : ['redirect_uris must be strings'],
  );
}

/**
 * Whether `presented` equals `registered` except for the port, both being `http` loopback
 * URIs with the same host name, path and query (RFC 8252 §7.3).
 */
export function sameLoopbackRedirectIgnoringPort(registered: string, presented: string): boolean {
  const a = URL.parse(registered);
  const b = URL.parse(presented);
  if (!a || !b || a.protocol !== 'http:' || b.protocol !== 'http:') return false;
  if (!isLoopbackHostname(a.hostname) || a.hostname !== b.hostname) return false;
  if (b.username || b.password || presented.includes('#')) return false;
  return a.pathname === b.pathname && a.search === b.search;
}

interface RedirectCheckingClient {
  redirectUris?: string[];
  redirectUriAllowed(value: string): boolean;
}

/**
 * Extends oidc-provider's client redirect check with the loopback port rule for every
 * client. oidc-provider exposes its Client class for exactly this kind of policy change.
 */
export function allowLoopbackPortVariation(clientClass: {
  prototype: RedirectCheckingClient;
}): void {
  const exactOrNative = clientClass.prototype.redirectUriAllowed;
  clientClass.prototype.redirectUriAllowed = function redirectUriAllowed(
    this: RedirectCheckingClient,
    value: string,
  ) {
    if (exactOrNative.call(this, value)) return true;
    return (this.redirectUris ?? []).some((registered) =>
      sameLoopbackRedirectIgnoringPort(registered, value),
    );
  };
}
