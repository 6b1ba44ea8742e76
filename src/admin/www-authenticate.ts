/**
 * A strict parser for the `WWW-Authenticate` response header (RFC 9110 §11.6.1), used by the
 * diagnostics page to read the 401 challenge as an MCP client would (RS-03, RS-05).
 *
 * Written here rather than taken from a package: the npm ones either parse one challenge only
 * with a permissive regular expression and merge duplicate parameters (`auth-header`, no
 * release since 2017) or keep their parser private (`oauth4webapi`, reachable only through
 * the errors of its token endpoint helpers). A diagnostic must say *why* a header is wrong,
 * so this one follows the grammar and reports the first deviation with its position:
 *
 *     WWW-Authenticate = #challenge                                   (§11.6.1, §5.6.1 list)
 *     challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]       (§11.3)
 *     auth-param       = token BWS "=" BWS ( token / quoted-string )         (§11.2)
 *     token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
 *     quoted-string    = DQUOTE *( qdtext / quoted-pair ) DQUOTE               (§5.6.4)
 *
 * - Scheme and parameter names are case-insensitive and returned in lower case; values as
 *   sent, with quoted-pairs unescaped.
 * - A parameter named twice in one challenge is an error (§11.2: "Each parameter name MUST
 *   only occur once per challenge"): two `resource_metadata` values would be ambiguous.
 * - Empty list elements (`, ,`) are skipped, as §5.6.1 asks recipients to.
 * - Parameters are kept in a `Map`, so a name like `__proto__` is just a name.
 */

export interface Challenge {
  /** The auth-scheme, lower case (`bearer`). */
  scheme: string;
  /** auth-params by lower-case name. Empty when the challenge has none or a token68. */
  params: Map<string, string>;
  token68?: string;
}

export type ParseResult =
  { ok: true; challenges: Challenge[] } | { ok: false; error: string; position: number };

/** tchar (RFC 9110 §5.6.2). */
const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;
/** OWS: optional spaces and horizontal tabs (RFC 9110 §5.6.3). */
const OWS = /[ \t]*/y;
/** qdtext / quoted-pair, up to the closing quote (RFC 9110 §5.6.4; obs-text allowed). */
const QUOTED_CONTENT = /(?:[\t !#-[\]-~\x80-\xff]|\\[\t !-~\x80-\xff])*/y;

class Cursor {
  position = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.position >= this.text.length;
  }

  peek(): string | undefined {
    return this.text[this.position];
  }

  /** Matches a sticky regular expression here; advances past it on success. */
  take(pattern: RegExp): string | undefined {
    pattern.lastIndex = this.position;
    const match = pattern.exec(this.text);
    if (!match || match[0].length === 0) return undefined;
    this.position += match[0].length;
    return match[0];
  }

  skipSpace(): void {
    this.take(OWS);
  }

  /** Skips OWS and empty list elements. */
  skipSeparators(): void {
    for (;;) {
      this.skipSpace();
      if (this.peek() !== ',') return;
      this.position += 1;
    }
  }

  /** Whether a `token BWS "="` starts here, i.e. the next list element is an auth-param. */
  paramAhead(): boolean {
    const start = this.position;
    const isParam = this.take(TOKEN) !== undefined && (this.skipSpace(), this.peek() === '=');
    this.position = start;
    return isParam;
  }

  /** Whether a list element ends here: end of input or a comma, after OWS. */
  elementEnds(): boolean {
    const start = this.position;
    this.skipSpace();
    const ends = this.done || this.peek() === ',';
    this.position = start;
    return ends;
  }
}

class ParseError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

function quotedString(cursor: Cursor): string {
  const start = cursor.position;
  cursor.position += 1; // the opening DQUOTE
  const content = cursor.take(QUOTED_CONTENT) ?? '';
  if (cursor.peek() !== '"') {
    throw new ParseError(
      cursor.done
        ? 'a quoted string is not closed'
        : 'a quoted string holds a character not allowed there (a control character?)',
      cursor.done ? start : cursor.position,
    );
  }
  cursor.position += 1;
  return content.replace(/\\([\s\S])/g, '$1');
}

function authParams(cursor: Cursor, challenge: Challenge): void {
  for (;;) {
    const nameAt = cursor.position;
    const name = cursor.take(TOKEN);
    if (name === undefined) throw new ParseError('expected a parameter name', cursor.position);
    cursor.skipSpace();
    if (cursor.peek() !== '=') {
      throw new ParseError(`expected "=" after the parameter name "${name}"`, cursor.position);
    }
    cursor.position += 1;
    cursor.skipSpace();
    const value = cursor.peek() === '"' ? quotedString(cursor) : cursor.take(TOKEN);
    if (value === undefined) {
      throw new ParseError(`the parameter "${name}" has no value`, cursor.position);
    }
    const key = name.toLowerCase();
    if (challenge.params.has(key)) {
      throw new ParseError(`the parameter "${key}" appears twice in one challenge`, nameAt);
    }
    challenge.params.set(key, value);
    if (!cursor.elementEnds()) {
      throw new ParseError(`expected "," after the parameter "${name}"`, cursor.position);
    }
    cursor.skipSeparators();
    if (cursor.done || !cursor.paramAhead()) return; // the next element is a new challenge
  }
}

function challenge(cursor: Cursor): Challenge {
  if (cursor.paramAhead()) {
    throw new ParseError('a parameter comes before any auth-scheme', cursor.position);
  }
  const scheme = cursor.take(TOKEN);
  if (scheme === undefined) throw new ParseError('expected an auth-scheme', cursor.position);
  const result: Challenge = { scheme: scheme.toLowerCase(), params: new Map() };
  if (cursor.elementEnds()) {
    cursor.skipSeparators();
    return result;
  }
  if (cursor.peek() !== ' ') {
    throw new ParseError(`expected a space after the auth-scheme "${scheme}"`, cursor.position);
  }
  cursor.skipSpace();
  const start = cursor.position;
  const token68 = cursor.take(TOKEN68);
  if (token68 !== undefined && cursor.elementEnds()) {
    result.token68 = token68;
    cursor.skipSeparators();
    return result;
  }
  cursor.position = start;
  authParams(cursor, result);
  return result;
}

/** Parses a `WWW-Authenticate` value (several header lines joined with ", " are one list). */
export function parseWwwAuthenticate(header: string): ParseResult {
  const cursor = new Cursor(header);
  const challenges: Challenge[] = [];
  try {
    cursor.skipSeparators();
    while (!cursor.done) challenges.push(challenge(cursor));
  } catch (error) {
    if (error instanceof ParseError) {
      return { ok: false, error: error.message, position: error.position };
    }
    throw error;
  }
  if (challenges.length === 0) return { ok: false, error: 'no challenge', position: 0 };
  return { ok: true, challenges };
}
