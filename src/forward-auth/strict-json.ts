/**
 * JSON read the way every decoder behind the gateway must read it too, or refused.
 *
 * The gateway decides on the JSON-RPC body (which method, which tool) and forwards the same
 * bytes to the MCP server, whose decoder may read them differently. `JSON.parse` keeps the
 * last of two equal keys; Go's `encoding/json` matches keys without case and keeps the last
 * match (`{"name":"read","Name":"delete_all"}` is `read` here and `delete_all` there: the Go
 * MCP SDK's CVE-2026-27896); decoders written in C stop a key at a NUL character. A body that
 * any of these would read differently is refused: a legitimate JSON-RPC message never has
 * duplicate keys, keys equal under case folding, or a NUL in a key.
 *
 * Nesting is bounded before anything recursive touches the value (hashing the arguments for
 * the audit trail used to overflow the stack on a deeply nested body). The structure is
 * walked with jsonc-parser's visitor (the parser VS Code uses), with comments and trailing
 * commas refused; the value itself comes from `JSON.parse`, strict by definition.
 */
import { visit, type JSONVisitor } from 'jsonc-parser';

/** Deepest nesting of objects and arrays accepted (MCP messages use a handful of levels). */
export const MAX_JSON_DEPTH = 64;

export type StrictJsonRefusal =
  'parse_error' | 'too_deep' | 'duplicate_key' | 'case_folded_key' | 'nul_in_key';

export type StrictJsonResult =
  { ok: true; value: unknown } | { ok: false; reason: StrictJsonRefusal };

/** Thrown from inside the visitor to stop the walk at the first refusal. */
class Stop extends Error {
  constructor(readonly reason: StrictJsonRefusal) {
    super(reason);
  }
}

/**
 * Case folding as Go's `encoding/json` applies it to keys: Unicode simple folding, under which
 * `ſ` (U+017F) is `s` and `K` (U+212A, Kelvin) is `k`. Lower, upper, lower again gets both.
 */
function fold(key: string): string {
  return key.toLowerCase().toUpperCase().toLowerCase();
}

export function parseStrictJson(text: string): StrictJsonResult {
  // One set of folded keys per open object; `null` for an open array.
  const open: (Set<string> | null)[] = [];
  const enter = (frame: Set<string> | null) => {
    if (open.length >= MAX_JSON_DEPTH) throw new Stop('too_deep');
    open.push(frame);
  };
  const leave = () => {
    open.pop();
  };
  const visitor: JSONVisitor = {
    onObjectBegin: () => enter(new Set()),
    onObjectEnd: leave,
    onArrayBegin: () => enter(null),
    onArrayEnd: leave,
    onObjectProperty: (key) => {
      if (key.includes('\u0000')) throw new Stop('nul_in_key');
      const keys = open.at(-1);
      if (!keys) return;
      const folded = fold(key);
      if (keys.has(folded)) {
        // Told apart for the log: the exact duplicate is the classic, the folded one the Go bug.
        throw new Stop(keys.has(`\u0000${key}`) ? 'duplicate_key' : 'case_folded_key');
      }
      keys.add(folded);
      keys.add(`\u0000${key}`);
    },
    onError: () => {
      throw new Stop('parse_error');
    },
  };
  try {
    visit(text, visitor, { disallowComments: true, allowTrailingComma: false });
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    if (error instanceof Stop) return { ok: false, reason: error.reason };
    if (error instanceof SyntaxError) return { ok: false, reason: 'parse_error' };
    throw error;
  }
}
