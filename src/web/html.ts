/**
 * Server-rendered pages are plain HTML strings: no build step, no client-side script. Every
 * interpolated value goes through {@link html}'s escaping; only a {@link SafeHtml} (markup
 * this code built) is inserted as it is.
 */
import escapeHtml from 'escape-html';

/** Markup that is inserted as it is: built by {@link html} or by code that escaped it. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** What {@link html} accepts between its markup: escaped unless it is {@link SafeHtml}. */
export type HtmlValue = string | number | undefined | null | SafeHtml | HtmlValue[];

function render(value: HtmlValue): string {
  if (value === undefined || value === null) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** Tagged template that escapes every interpolation. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, index) => {
    out += render(value) + (strings[index + 1] ?? '');
  });
  return new SafeHtml(out);
}
