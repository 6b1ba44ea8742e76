/**
 * Identifiers in narrow places (table cells, definition lists): URLs, client ids, subjects,
 * emails, event kinds. CSS alone either never breaks such a token (a URL is one "word") or,
 * with `overflow-wrap: anywhere`, breaks it and every ordinary word anywhere ("Diagnos e",
 * "mcp:tool s"). So the page marks where a line may break instead: a `<wbr>` after each run of
 * separators (`/ : . - _ @ ? & = #`), e.g. `http://` `example.` `com/` `mcp`; nothing is
 * added to the text (copying gets the identifier as it is). Short words (an IPv4 address,
 * `mcp:tools`, `tool_denied`) are kept whole: they fit any column. Dates are kept whole too
 * ({@link wholeDates}).
 */
import escapeHtml from 'escape-html';
import { SafeHtml } from './html.js';

/** Words (between spaces) of at most this many characters are never broken. */
export const KEEP_WHOLE = 16;

/** A run of separators followed by something else: a line may break after it. */
const SEPARATORS = /[/:.\-_@?&=#]+(?=[^/:.\-_@?&=#\s])/g;

/** `value` escaped, with a line break allowed after the separators of its long words. */
export function breakable(value: string | undefined | null): SafeHtml {
  if (value === undefined || value === null) return new SafeHtml('');
  return new SafeHtml(value.split(/(\s+)/).map(hinted).join(''));
}

function hinted(word: string): string {
  if (word.length <= KEEP_WHOLE) return escapeHtml(word);
  let out = '';
  let start = 0;
  for (const match of word.matchAll(SEPARATORS)) {
    // Not after a leading separator: "/" alone on a line says nothing.
    if (match.index === 0) continue;
    const end = match.index + match[0].length;
    out += `${escapeHtml(word.slice(start, end))}<wbr>`;
    start = end;
  }
  return out + escapeHtml(word.slice(start));
}

const DATE = /\d{4}-\d\d-\d\d/g;

/**
 * A time as shown (`2026-05-04 13:07 UTC`) with its date on one line: browsers break after a
 * hyphen even between digits ("2026-" / "05-04"). The layout's `nowrap` class keeps it whole.
 */
export function wholeDates(text: string): SafeHtml {
  let out = '';
  let start = 0;
  for (const match of text.matchAll(DATE)) {
    out += `${escapeHtml(text.slice(start, match.index))}<span class="nowrap">${match[0]}</span>`;
    start = match.index + match[0].length;
  }
  return new SafeHtml(out + escapeHtml(text.slice(start)));
}
