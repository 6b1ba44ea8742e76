/**
 * Which MCP session a request names to the MCP server, in every way a server may read one.
 *
 * The session binding (session-binding.ts) protects a session only if the gateway sees every
 * name the MCP server acts on. Servers read it from different places:
 *
 * - Streamable HTTP: the `Mcp-Session-Id` header;
 * - legacy HTTP+SSE, TypeScript SDK: `?sessionId=` (Express's `qs` also reads
 *   `sessionId[]=` and `sessionId[0]=` as an array, which a lookup turns back into the id);
 * - legacy HTTP+SSE, Python SDK: `?session_id=`; Go SDK: `?sessionid=`;
 * - and any of these with the name percent-encoded (`session%49d`), since every query parser
 *   decodes names before looking them up.
 *
 * So a query parameter names a session when its decoded name, lower-cased and stripped of
 * everything but letters and digits (brackets and what is inside them included), ends in
 * `sessionid`. Parameters are split at `&` and at `;` (older Python parsers split there
 * too). A request that names a session more than once, even twice the same one, or names one
 * whose value is not a well-formed id, is refused: a server could act on either name, so no
 * single binding check could cover it.
 */

/** What a session id may look like (MCP: visible ASCII only); longer ones are refused. */
export const SESSION_ID = /^[\x21-\x7e]{1,256}$/;

export type SessionNaming =
  | { kind: 'none' }
  | { kind: 'one'; id: string }
  | { kind: 'refused'; reason: 'several_sessions' | 'malformed_session_id' };

const NONE: SessionNaming = { kind: 'none' };

/** `application/x-www-form-urlencoded` decoding, as every query parser does it. */
function formDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

function namesSession(rawName: string): boolean | undefined {
  const name = formDecode(rawName);
  if (name === undefined) return undefined;
  return name
    .toLowerCase()
    .replace(/\[[^\]]*\]/g, '')
    .replace(/[^a-z0-9]/g, '')
    .endsWith('sessionid');
}

/**
 * The session named by `header` (the `Mcp-Session-Id` header, as Node gives it: repeated
 * headers joined by `, `) and the query `search` (with its `?`, or '').
 */
export function sessionNamed(header: string | undefined, search: string): SessionNaming {
  const names: string[] = [];
  if (header !== undefined) names.push(header);
  if (search.length > 1 && (search.includes('%') || /session/i.test(search))) {
    for (const part of search.slice(1).split(/[&;]/)) {
      const equals = part.indexOf('=');
      const named = namesSession(equals === -1 ? part : part.slice(0, equals));
      // A name that cannot be decoded could decode to anything in a lenient parser.
      if (named === undefined) return { kind: 'refused', reason: 'malformed_session_id' };
      if (!named) continue;
      const value = equals === -1 ? '' : formDecode(part.slice(equals + 1));
      names.push(value ?? '');
    }
  }
  if (names.length === 0) return NONE;
  if (names.length > 1) return { kind: 'refused', reason: 'several_sessions' };
  const id = names[0]!;
  return SESSION_ID.test(id)
    ? { kind: 'one', id }
    : { kind: 'refused', reason: 'malformed_session_id' };
}
