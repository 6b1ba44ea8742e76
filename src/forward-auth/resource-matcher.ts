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

export interface ResourceMatch {
  resource: ResourceConfig;
  /** The resource URL's path ('' for a resource at the origin root). */
  resourcePath: string;
  /** Per-tool rules (`tools`), when the resource has any. */
  toolPolicy: ToolPolicy | undefined;
  /** Browser origins allowed to call it, lower-case. */
  allowedOrigins: ReadonlySet<string>;
}

export class ResourceMatcher {
  /** Per origin, the resources on it, longest path first. */
  private readonly byOrigin = new Map<string, ResourceMatch[]>();

  constructor(resources: readonly ResourceConfig[]) {
    for (const resource of resources) {
      const url = new URL(resource.url);
      const entry: ResourceMatch = {
        resource,
        resourcePath: url.pathname === '/' ? '' : url.pathname,
        toolPolicy: resource.tools ? new ToolPolicy(resource.tools) : undefined,
        allowedOrigins: new Set(resource.allowedOrigins),
      };
      const list = this.byOrigin.get(url.origin) ?? [];
      list.push(entry);
      list.sort((a, b) => b.resourcePath.length - a.resourcePath.length);
      this.byOrigin.set(url.origin, list);
    }
  }

  match(origin: string, path: string): ResourceMatch | undefined {
    const candidates = this.byOrigin.get(origin);
    if (!candidates) return undefined;
    return candidates.find(
      ({ resourcePath }) =>
        resourcePath === '' || path === resourcePath || path.startsWith(`${resourcePath}/`),
    );
  }

  /** The resource whose URL is exactly `origin + path` (for protected resource metadata). */
  exact(origin: string, path: string): ResourceMatch | undefined {
    const wanted = path === '/' ? '' : path.replace(/\/+$/, '');
    return this.byOrigin.get(origin)?.find(({ resourcePath }) => resourcePath === wanted);
  }
}
