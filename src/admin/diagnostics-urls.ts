/**
 * The well-known URLs the diagnostics read, built as MCP clients build them from the resource
 * URL (RFC 9728 §3.1) and from the issuer (RFC 8414 §3.1, OpenID Connect discovery).
 */
import { protectedResourceMetadataUrl } from '../forward-auth/challenges.js';

/** RFC 9728 §3.1: the well-known suffix between the host and the path (and query). */
export function expectedMetadataUrl(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname;
  return protectedResourceMetadataUrl(url.origin, `${path}${url.search}`);
}

/**
 * Where clients look for the authorization server's metadata, in the order of MCP 2025-11-25
 * (AS-02): RFC 8414 §3.1 (path-inserted), then OpenID Connect discovery, path-inserted and
 * then appended for an issuer with a path.
 */
export function authorizationServerMetadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  const urls = [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
  ];
  if (path) urls.push(`${url.origin}${path}/.well-known/openid-configuration`);
  return urls;
}
