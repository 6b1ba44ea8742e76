/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) for every protected MCP server, served by
 * the auth service. Traefik routes `/.well-known/oauth-protected-resource…` on every MCP host
 * here, without the forwardAuth middleware (a client must read it before it has a token).
 *
 * The document is chosen by the public URL the client asked for: the host (X-Forwarded-Host
 * from a trusted proxy, else Host) and the path after the well-known prefix (RFC 9728 §3.1
 * path insertion; the root form for a resource at the origin root). `resource` is the
 * resource's canonical URL exactly, which the MCP SDK requires to be a prefix of the URL it
 * connects to and sends back as the RFC 8707 `resource` (RS-04).
 *
 * The forwarded host only selects which configured resource is meant: every URL in the
 * document (`resource`, `authorization_servers`) is configuration, and a host that is no
 * resource's gets 404. Cached 5 minutes (`scopes_supported` follows the live registry).
 */
import { Router } from 'express';
import type { GatewayConfig } from '../config/schema.js';
import { NotFound, sendOAuthError } from '../http/errors.js';
import type { ResourceMatcher } from '../resources/resource-matcher.js';

export const PRM_PREFIX = '/.well-known/oauth-protected-resource';

/**
 * `resources` is the live registry (src/resources/registry.ts): an MCP server added at run time
 * has its metadata at once.
 */
export function protectedResourceMetadataRouter(
  config: Pick<GatewayConfig, 'issuer'>,
  resources: { readonly matcher: ResourceMatcher },
): Router {
  const router = Router();
  router.options(`${PRM_PREFIX}{/*path}`, (_req, res) => {
    res
      .set({
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Methods': 'GET',
        'Access-Control-Allow-Headers': 'MCP-Protocol-Version',
        'Access-Control-Max-Age': '600',
      })
      .status(204)
      .end();
  });
  router.get(`${PRM_PREFIX}{/*path}`, (req, res) => {
    res.set({
      'Access-Control-Allow-Origin': '*',
      Vary: 'Host, X-Forwarded-Host, X-Forwarded-Proto',
    });
    const host = req.get('x-forwarded-host')?.split(',')[0]?.trim() ?? req.get('host');
    const origin = URL.parse(`${req.protocol}://${host ?? ''}`)?.origin;
    const path = req.path.slice(PRM_PREFIX.length) || '/';
    const match = origin ? resources.matcher.exact(origin, path) : undefined;
    if (!match) {
      // Not cached: a server added at run time must have its document at once.
      return sendOAuthError(res, new NotFound('no protected resource at this URL'));
    }
    const { resource } = match;
    res.set('Cache-Control', 'public, max-age=300').json({
      resource: resource.url,
      authorization_servers: [config.issuer],
      // The baseline only (MCP "Scope Minimization"); never offline_access (2026-07-28).
      scopes_supported: resource.scopes.filter((scope) => scope !== 'offline_access'),
      bearer_methods_supported: ['header'],
      resource_name: resource.name,
    });
  });
  return router;
}
