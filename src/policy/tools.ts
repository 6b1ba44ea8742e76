/**
 * Per-tool authorization (`resources[].tools`): who may call which tool of an MCP server.
 *
 * A call is allowed when the token has every scope the matching rule lists and the user is
 * in one of its groups (when it lists any). The matching rule is the one naming the tool
 * exactly, else the matching glob with the most literal characters (`files_read_*` before
 * `files_*` before `*`); a tool no rule matches gets `default`.
 *
 * A refusal says whether more scopes would help (then the client can step up with an
 * `insufficient_scope` challenge) or not (wrong group, or denied by default).
 */
import picomatch from 'picomatch';
import type { ToolPolicyConfig } from '../config/schema.js';

export type ToolDecision =
  | { allowed: true }
  | { allowed: false; reason: 'scope'; requiredScopes: string[] }
  | { allowed: false; reason: 'group' | 'default' };

interface CompiledRule {
  pattern: string;
  literalLength: number;
  matches: (name: string) => boolean;
  scopes: string[];
  groups: string[];
}

export class ToolPolicy {
  private readonly exact = new Map<string, CompiledRule>();
  private readonly globs: CompiledRule[] = [];

  constructor(private readonly config: ToolPolicyConfig) {
    for (const [pattern, rule] of Object.entries(config.rules)) {
      const compiled: CompiledRule = {
        pattern,
        literalLength: pattern.replace(/[*?[\]{}!]/g, '').length,
        matches: picomatch(pattern, { dot: true }),
        scopes: rule.scopes,
        groups: rule.groups,
      };
      if (picomatch.scan(pattern).isGlob) this.globs.push(compiled);
      else this.exact.set(pattern, compiled);
    }
    this.globs.sort((a, b) => b.literalLength - a.literalLength);
  }

  /** Where the operation is read: the JSON-RPC body, or (opt-in) the `Mcp-*` headers. */
  get operationFrom(): ToolPolicyConfig['operationFrom'] {
    return this.config.operationFrom;
  }

  /** Whether any rule exists (then the operation must be known to decide). */
  get hasRules(): boolean {
    return this.exact.size > 0 || this.globs.length > 0 || this.config.default === 'deny';
  }

  decide(tool: string, token: { scopes: string[]; groups: string[] }): ToolDecision {
    const rule = this.exact.get(tool) ?? this.globs.find((candidate) => candidate.matches(tool));
    if (!rule)
      return this.config.default === 'allow'
        ? { allowed: true }
        : { allowed: false, reason: 'default' };
    if (rule.groups.length > 0 && !rule.groups.some((group) => token.groups.includes(group))) {
      return { allowed: false, reason: 'group' };
    }
    const missing = rule.scopes.filter((scope) => !token.scopes.includes(scope));
    if (missing.length > 0) return { allowed: false, reason: 'scope', requiredScopes: rule.scopes };
    return { allowed: true };
  }
}
