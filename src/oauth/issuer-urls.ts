/**
 * The URLs the authorization server publishes come from its configured issuer, never from
 * the request.
 *
 * oidc-provider builds every URL it hands out (the endpoints of the discovery document,
 * `registration_client_uri`, the resume URL after a login page) from the request's own URL:
 * with `proxy` on, from `X-Forwarded-Host`/`-Proto`, otherwise from `Host`. A request naming
 * another host (a proxy passing a client's header through, a direct request with
 * `Host: evil.example`, the RFC 8414 document as served on an MCP server's host) would then
 * get a discovery document sending the client's code and tokens to that host, and a shared
 * cache could keep that answer for everyone. The issuer is the one public URL of the service
 * (RFC 8414 §3.3: the metadata's `issuer` must be it), so every URL is built from it.
 *
 * Except the resume URL (`/authorize/<uid>`), which is published nowhere: it is the redirect
 * that takes the browser back after the login and consent pages, to the host that browser
 * is on and holds the interaction cookies for (a replica reached by its own address, in
 * tests), so it stays relative to the request. `proxy` stays on: it is still what marks
 * cookies `secure` behind a TLS-terminating proxy.
 */
import type Provider from 'oidc-provider';

/** Discovery documents and the JWKS may be cached this long (seconds). */
export const METADATA_MAX_AGE = 300;

const RESUME_ROUTES = new Set(['resume', 'device_resume']);

export function urlsFromIssuer(provider: Provider): void {
  const context = provider.OIDCContext.prototype;
  const fromRequest = context.urlFor;
  context.urlFor = function urlFor(name, options) {
    if (RESUME_ROUTES.has(name)) return fromRequest.call(this, name, options);
    return provider.urlFor(name, options);
  };
}

/**
 * `Cache-Control` for the discovery documents and the JWKS, which oidc-provider sends
 * without one. Short: `scopes_supported` follows the live resource registry (servers added
 * at run time) and a rotated signing key must reach verifiers soon. `public` is safe: the
 * documents depend on nothing in the request (see {@link urlsFromIssuer}); CORS adds
 * `Vary: Origin`.
 */
export function cacheableMetadata(provider: Provider): void {
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if ((route === 'discovery' || route === 'jwks') && ctx.status === 200) {
      ctx.set('Cache-Control', `public, max-age=${METADATA_MAX_AGE}`);
    }
  });
}
