/**
 * What an MCP server tells a model about itself, as the gateway pins it: each tool, prompt and
 * resource template it lists (`tools/list`, `prompts/list`, `resources/templates/list`),
 * named `kind:name`, with a canonical hash of the whole definition.
 *
 * The hash covers the definition exactly as the server returned it (name, title, description,
 * input and output schemas, annotations, anything else), serialised with the JSON
 * Canonicalization Scheme (RFC 8785), so key order and number spelling never count as a
 * change, and any other difference does. A renamed tool is a removed one and a new one: a new
 * name is a change like any other.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export type DefinitionKind = 'tool' | 'prompt' | 'resourceTemplate';

/** One definition as listed, with its pin. */
export interface PinnedDefinition {
  kind: DefinitionKind;
  name: string;
  /** SHA-256 (hex) of the RFC 8785 serialisation of `definition`. */
  hash: string;
  definition: Record<string, unknown>;
}

/** Everything one server listed at one time, by `kind:name`. */
export interface Snapshot {
  /** Epoch milliseconds. */
  takenAt: number;
  definitions: Record<string, PinnedDefinition>;
}

/** How one definition differs between the approved snapshot and the current one. */
export interface DefinitionChange {
  key: string;
  kind: DefinitionKind;
  name: string;
  change: 'added' | 'removed' | 'changed';
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
}

/** `tool:search`, `prompt:summarise`, `resourceTemplate:file:///{path}`. */
export function definitionKey(kind: DefinitionKind, name: string): string {
  return `${kind}:${name}`;
}

/** The canonical hash of one definition. */
export function definitionHash(definition: Record<string, unknown>): string {
  const text = canonicalize(definition);
  if (text === undefined) throw new TypeError('a definition must be a JSON object');
  return createHash('sha256').update(text).digest('hex');
}

/** The name a definition is listed under: `name` (tools, prompts) or `uriTemplate`. */
function nameOf(kind: DefinitionKind, definition: Record<string, unknown>): string {
  const name = kind === 'resourceTemplate' ? definition.uriTemplate : definition.name;
  return typeof name === 'string' ? name : '';
}

/**
 * A snapshot of the lists one server returned. Two definitions under one name are both
 * kept (the second under `name#2`, …): a server listing a tool twice is itself suspicious,
 * and which one a client uses is the client's choice.
 */
export function snapshotOf(
  lists: Partial<Record<DefinitionKind, readonly Record<string, unknown>[]>>,
  takenAt = Date.now(),
): Snapshot {
  const definitions: Record<string, PinnedDefinition> = {};
  for (const kind of ['tool', 'prompt', 'resourceTemplate'] as const) {
    for (const definition of lists[kind] ?? []) {
      const name = nameOf(kind, definition);
      let key = definitionKey(kind, name);
      for (let n = 2; key in definitions; n += 1) key = definitionKey(kind, `${name}#${n}`);
      definitions[key] = { kind, name, hash: definitionHash(definition), definition };
    }
  }
  return { takenAt, definitions };
}

/** What changed from `approved` to `current`, sorted by key; empty when nothing did. */
export function diffSnapshots(approved: Snapshot, current: Snapshot): DefinitionChange[] {
  const changes: DefinitionChange[] = [];
  const keys = new Set([...Object.keys(approved.definitions), ...Object.keys(current.definitions)]);
  for (const key of [...keys].sort()) {
    const before = approved.definitions[key];
    const after = current.definitions[key];
    if (before && after && before.hash === after.hash) continue;
    const { kind, name } = (after ?? before)!;
    changes.push({
      key,
      kind,
      name,
      change: !before ? 'added' : !after ? 'removed' : 'changed',
      ...(before ? { before: before.definition } : {}),
      ...(after ? { after: after.definition } : {}),
    });
  }
  return changes;
}
