/**
 * The protected MCP servers: those of the configuration file (`resources`) and those an
 * administrator added at run time (the admin console or `mcp-gateway servers add`, kept in
 * the store: src/servers/catalog.ts). Looked up by any spelling of their canonical URL (see
 * {@link canonicalResourceUrl}).
 *
 * The registry is live: {@link ResourceRegistry.replaceManaged} swaps the run-time servers in
 * one step (a new URL map and a new {@link ResourceMatcher}), so every reader (the `/verify`
 * decision, protected resource metadata, the authorization server's resource indicators)
 * sees the new set at its next lookup, without a restart. Configured servers cannot be
 * changed at run time: the file is the source of truth for them.
 */
import type { ResourceConfig } from '../config/schema.js';
import { ResourceMatcher } from './resource-matcher.js';
import { tryCanonicalResourceUrl } from './resource-url.js';

export type ResourceOrigin = 'config' | 'managed';

export class ResourceRegistry {
  private byUrl: Map<string, ResourceConfig>;
  private managedUrls: Set<string> = new Set();
  private current: ResourceMatcher;

  constructor(
    private readonly configured: readonly ResourceConfig[],
    managed: readonly ResourceConfig[] = [],
  ) {
    this.byUrl = new Map();
    this.current = new ResourceMatcher([]);
    this.replaceManaged(managed);
  }

  /** The matcher of the current set (read once per decision). */
  get matcher(): ResourceMatcher {
    return this.current;
  }

  /**
   * Replaces the servers added at run time. A managed server whose URL is also configured is
   * ignored (the configuration file wins; the catalog refuses such an addition anyway).
   */
  replaceManaged(managed: readonly ResourceConfig[]): void {
    const byUrl = new Map(this.configured.map((resource) => [resource.url, resource]));
    const managedUrls = new Set<string>();
    for (const resource of managed) {
      if (byUrl.has(resource.url)) continue;
      byUrl.set(resource.url, resource);
      managedUrls.add(resource.url);
    }
    this.byUrl = byUrl;
    this.managedUrls = managedUrls;
    this.current = new ResourceMatcher([...byUrl.values()]);
  }

  /** The resource a `resource` parameter names, or `undefined` when it names none of ours. */
  find(indicator: string): ResourceConfig | undefined {
    const canonical = tryCanonicalResourceUrl(indicator);
    return canonical === undefined ? undefined : this.byUrl.get(canonical);
  }

  /** Where a resource comes from: the configuration file or the run-time catalog. */
  originOf(url: string): ResourceOrigin | undefined {
    if (!this.byUrl.has(url)) return undefined;
    return this.managedUrls.has(url) ? 'managed' : 'config';
  }

  list(): ResourceConfig[] {
    return [...this.byUrl.values()];
  }

  /** Every scope of every resource, step-up scopes included. */
  allScopes(): string[] {
    return [...new Set(this.list().flatMap((resource) => grantableScopes(resource)))];
  }

  /** The only resource, when exactly one is known (used when a client sends none). */
  soleResource(): string | undefined {
    return this.byUrl.size === 1 ? [...this.byUrl.keys()][0] : undefined;
  }
}

/**
 * The scopes a token for `resource` may carry: its baseline scopes plus those its tool rules
 * require (obtained by step-up, MCP "Step-Up Authorization Flow").
 */
export function grantableScopes(resource: ResourceConfig): string[] {
  const ruleScopes = Object.values(resource.tools?.rules ?? {}).flatMap((rule) => rule.scopes);
  return [...new Set([...resource.scopes, ...ruleScopes])];
}
