/**
 * The protected MCP servers (`resources` in the configuration), looked up by any spelling
 * of their canonical URL (see {@link canonicalResourceUrl}).
 */
import type { ResourceConfig } from '../config/schema.js';
import { tryCanonicalResourceUrl } from './resource-url.js';

export class ResourceRegistry {
  private readonly byUrl: Map<string, ResourceConfig>;

  constructor(resources: ResourceConfig[]) {
    this.byUrl = new Map(resources.map((resource) => [resource.url, resource]));
  }

  /** The resource a `resource` parameter names, or `undefined` when it names none of ours. */
  find(indicator: string): ResourceConfig | undefined {
    const canonical = tryCanonicalResourceUrl(indicator);
    return canonical === undefined ? undefined : this.byUrl.get(canonical);
  }

  list(): ResourceConfig[] {
    return [...this.byUrl.values()];
  }

  /** Every scope of every resource, step-up scopes included. */
  allScopes(): string[] {
    return [...new Set(this.list().flatMap((resource) => grantableScopes(resource)))];
  }

  /** The only resource, when exactly one is configured (used when a client sends none). */
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
