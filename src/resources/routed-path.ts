/**
 * The path a proxy routes a request on, read from the raw path of `X-Forwarded-Uri`.
 *
 * The decision must be made on the path the proxy uses to pick the MCP server, not on another
 * reading of the same bytes: otherwise a token for one server is judged for that server while
 * the proxy delivers the request to another one (path confusion, RFC 3986 §6 and §7.3). The
 * proxies this project supports route on a decoded, normalised path, each in its own way,
 * while they pass the raw path to `/verify` and to the MCP server (read from the real proxies
 * by `tests/forward-auth/routed-path.proxies.test.ts`):
 *
 * - nginx decodes every `%XX` (an encoded `/` becomes a separator), resolves `.`/`..` and
 *   merges `//` before matching a `location`;
 * - Caddy decodes and cleans the path the same way and matches paths case-insensitively;
 * - Traefik decodes unreserved characters, removes dot segments and `//`, and by default lets
 *   `%2F`, `%5C`, `%00`, `%25`, `%3B`, `%3F`, `%23` through (the shipped `traefik.yml` refuses
 *   them at the entry point).
 *
 * Rather than imitate each of them, this module accepts only paths that every one of them
 * routes alike: plain visible ASCII, percent-escapes that decode to characters with no routing
 * meaning, no dot segments and no empty segments. Anything else is refused (400 and a security
 * event): no MCP client writes such a path, so a refusal costs a legitimate client nothing.
 * The accepted path comes back fully decoded, which is what all three match on.
 */

/** Why a forwarded path was refused. */
export type PathAmbiguity =
  /** A character outside visible ASCII written raw, or an encoded space. */
  | 'invalid_character'
  /** `\`: a separator for some servers (and WHATWG URL parsing), a name character for others. */
  | 'backslash'
  /** `;`: path parameters, which servers such as Tomcat strip before routing (`..;/`). */
  | 'path_parameter'
  /** `%` not followed by two hex digits, or escapes that are not UTF-8. */
  | 'bad_encoding'
  /** An encoded `/ \ % ? # ;`, control character or DEL: a delimiter to some readers only. */
  | 'encoded_delimiter'
  /** A decoded character beyond ASCII (full-width solidus and its kind). */
  | 'non_ascii'
  /** `.` or `..` as a segment, in any encoding: resolved by some readers only. */
  | 'dot_segment'
  /** `//`: merged by nginx and Traefik, kept by Caddy and most servers. */
  | 'empty_segment';

export type RoutedPath = { ok: true; path: string } | { ok: false; reason: PathAmbiguity };

/** Visible ASCII that needs no decoding and holds nothing ambiguous: the common case. */
const PLAIN = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]*$/;
/** Any `//`, or a `.`/`..` segment. */
const EMPTY_OR_DOT = /\/\/|\/\.\.?(?:\/|$)/;
/** Decoded bytes that must stay encoded to mean what they mean: `/ \ % ? # ;`, C0, DEL. */
const DELIMITER_ESCAPE = /%(?:2[fF]|5[cC]|25|3[fF]|23|3[bB]|[01][0-9a-fA-F]|7[fF])/;
const ESCAPES = /(?:%[0-9a-fA-F]{2})+/g;

/**
 * The decoded path `rawPath` routes on, or why it is ambiguous. `rawPath` starts with `/` and
 * holds no query (the caller split it at the first `?`).
 */
export function routedPath(rawPath: string): RoutedPath {
  if (PLAIN.test(rawPath)) {
    return EMPTY_OR_DOT.test(rawPath) ? refuseSegments(rawPath) : { ok: true, path: rawPath };
  }
  for (let i = 0; i < rawPath.length; i += 1) {
    const code = rawPath.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) return { ok: false, reason: 'invalid_character' };
  }
  if (rawPath.includes('\\')) return { ok: false, reason: 'backslash' };
  if (rawPath.includes(';')) return { ok: false, reason: 'path_parameter' };
  if (/%(?![0-9a-fA-F]{2})/.test(rawPath)) return { ok: false, reason: 'bad_encoding' };
  if (DELIMITER_ESCAPE.test(rawPath)) return { ok: false, reason: 'encoded_delimiter' };
  let decoded: string;
  try {
    decoded = rawPath.replace(ESCAPES, (run) => decodeURIComponent(run));
  } catch {
    // decodeURIComponent refuses overlong forms (`%C0%AF`) and broken UTF-8 sequences.
    return { ok: false, reason: 'bad_encoding' };
  }
  if (/[^\x20-\x7e]/.test(decoded)) return { ok: false, reason: 'non_ascii' };
  if (decoded.includes(' ')) return { ok: false, reason: 'invalid_character' };
  // Raw characters that were checked above can also arrive encoded (`%5C` is refused as a
  // delimiter; `%7E` decodes to `~`), so only the segment rules remain for the decoded path.
  return EMPTY_OR_DOT.test(decoded) ? refuseSegments(decoded) : { ok: true, path: decoded };
}

function refuseSegments(path: string): RoutedPath {
  return { ok: false, reason: /\/\//.test(path) ? 'empty_segment' : 'dot_segment' };
}
