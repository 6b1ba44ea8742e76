/**
 * Which protected resource a public URL belongs to: the resource whose canonical URL is the
 * longest path prefix of it (on segment boundaries), on the same origin. A legacy SSE server
 * is one resource (e.g. `https://gw/servers/a`) covering both `/servers/a/sse` and
 * `/servers/a/messages`. A URL under no resource belongs to none: deny by default.
 *
 * A match carries what the decision needs about its resource, compiled once when the matcher
 * is built (the tool policy, the allowed Origins), so that a decision reads one immutable
 * object: when MCP servers are added or edited at run time a new matcher replaces this one,
 * and a decision in flight keeps the consistent view it started with.
 */
import type { ResourceConfig } from '../config/schema.js';
import { ToolPolicy } from '../policy/tools.js';
import { routedPath } from './routed-path.js';

export interface ResourceMatch {
  resource: ResourceConfig;
  /** The resource URL's path ('' for a resource at the origin root), as written in its URL. */
  resourcePath: string;
  /** Per-tool rules (`tools`), when the resource has any. */
  toolPolicy: ToolPolicy | undefined;
  /** Browser origins allowed to call it, lower-case. */
  allowedOrigins: ReadonlySet<string>;
}

/** A path that would belong to another resource for a proxy matching without case (Caddy). */
export const AMBIGUOUS_CASE = 'ambiguous_case';

interface Entry extends ResourceMatch {
  /** The decoded path compared with a request's routed path (routed-path.ts). */
  routedPath: string;
  /** The same, lower-case. */
  foldedPath: string;
}

export class ResourceMatcher {
  /** Per origin, the resources on it, longest path first. */
  private readonly byOrigin = new Map<string, Entry[]>();

  /** Throws for a resource URL whose path a proxy could route ambiguously (config error). */
  constructor(resources: readonly ResourceConfig[]) {
    for (const resource of resources) {
      const url = new URL(resource.url);
      const resourcePath = url.pathname === '/' ? '' : url.pathname;
      const routed = routedPath(resourcePath || '/');
      if (!routed.ok) {
        throw new Error(`resource ${resource.url}: its path is ambiguous (${routed.reason})`);
      }
      const decoded = resourcePath === '' ? '' : routed.path;
      const entry: Entry = {
        resource,
        resourcePath,
        routedPath: decoded,
        foldedPath: decoded.toLowerCase(),
        toolPolicy: resource.tools ? new ToolPolicy(resource.tools) : undefined,
        allowedOrigins: new Set(resource.allowedOrigins),
      };
      const list = this.byOrigin.get(url.origin) ?? [];
      list.push(entry);
      list.sort((a, b) => b.routedPath.length - a.routedPath.length);
      this.byOrigin.set(url.origin, list);
    }
  }

  /**
   * The resource a routed path belongs to; {@link AMBIGUOUS_CASE} when matching without case
   * would pick another resource (Caddy's path matchers ignore case, nginx's and Traefik's do
   * not: the same request could reach either server).
   */
  match(origin: string, path: string): ResourceMatch | undefined | typeof AMBIGUOUS_CASE {
    const candidates = this.byOrigin.get(origin);
    if (!candidates) return undefined;
    const exact = candidates.find(({ routedPath: p }) => under(path, p));
    const folded = path.toLowerCase();
    const caseless = candidates.find(({ foldedPath }) => under(folded, foldedPath));
    return exact === caseless ? exact : AMBIGUOUS_CASE;
  }

  /** The resource whose URL is exactly `origin + path` (for protected resource metadata). */
  exact(origin: string, path: string): ResourceMatch | undefined {
    const routed = routedPath(path);
    if (!routed.ok) return undefined;
    const wanted = routed.path === '/' ? '' : routed.path.replace(/\/+$/, '');
    return this.byOrigin.get(origin)?.find(({ routedPath: p }) => p === wanted);
  }
}

/** Whether `path` is `resourcePath` or below it, on a segment boundary. */
function under(path: string, resourcePath: string): boolean {
  return resourcePath === '' || path === resourcePath || path.startsWith(`${resourcePath}/`);
}
