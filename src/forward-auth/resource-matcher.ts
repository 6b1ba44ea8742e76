/**
 * Which protected resource a public URL belongs to: the resource whose canonical URL is the
 * longest path prefix of it (on segment boundaries), on the same origin. A legacy SSE server
 * is one resource (e.g. `https://gw/servers/a`) covering both `/servers/a/sse` and
 * `/servers/a/messages`. A URL under no resource belongs to none: deny by default.
 */
import type { ResourceConfig } from '../config/schema.js';

export interface ResourceMatch {
  resource: ResourceConfig;
  /** The resource URL's path ('' for a resource at the origin root). */
  resourcePath: string;
}

export class ResourceMatcher {
  /** Per origin, the resources on it, longest path first. */
  private readonly byOrigin = new Map<string, ResourceMatch[]>();

  constructor(resources: ResourceConfig[]) {
    for (const resource of resources) {
      const url = new URL(resource.url);
      const entry = { resource, resourcePath: url.pathname === '/' ? '' : url.pathname };
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
