/**
 * Paging of the Activity page's two views (decisions and events, audit records): `?page=N`,
 * 1 being the newest entries. Both views keep their filters across pages, and both lists are
 * bounded (`activity.maxEntries`, `audit.maxRecords`), so a page past the end is simply empty.
 */
import type { Request } from 'express';
import { html, type SafeHtml } from '../web/html.js';

/** Highest page number accepted; a larger one is refused rather than read. */
export const MAX_PAGE = 10_000;

/** The page of a request's query (1 when absent), or why it is refused (400). */
export function parsePage(
  query: Request['query'],
): { ok: true; page: number } | { ok: false; problem: string } {
  const value = query.page;
  if (value === undefined || value === '') return { ok: true, page: 1 };
  if (typeof value !== 'string' || !/^[1-9]\d{0,4}$/.test(value) || Number(value) > MAX_PAGE) {
    return { ok: false, problem: `The page must be a whole number from 1 to ${MAX_PAGE}.` };
  }
  return { ok: true, page: Number(value) };
}

/** The items of page `page` (of `size` each) from `matches`, newest first. */
export function pageOf<T>(
  matches: Iterable<T>,
  page: number,
  size: number,
): { items: T[]; hasOlder: boolean } {
  const skip = (page - 1) * size;
  const items: T[] = [];
  let seen = 0;
  for (const match of matches) {
    seen += 1;
    if (seen <= skip) continue;
    if (items.length === size) return { items, hasOlder: true };
    items.push(match);
  }
  return { items, hasOlder: false };
}

/**
 * "Newer" and "Older" links for `/admin/activity`, keeping `params` (the view and its filters;
 * empty ones are left out).
 */
export function pageLinks(
  params: Record<string, string | undefined>,
  page: number,
  hasOlder: boolean,
): SafeHtml {
  const href = (target: number) => {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== '') query.set(name, value);
    }
    if (target > 1) query.set('page', String(target));
    const text = query.toString();
    return `/admin/activity${text ? `?${text}` : ''}`;
  };
  return html`<nav class="pages" aria-label="Pages">
    ${page > 1 ? html`<a rel="prev" href="${href(page - 1)}">Newer</a>` : ''}
    <span>Page ${page}</span>
    ${hasOlder ? html`<a rel="next" href="${href(page + 1)}">Older</a>` : ''}
  </nav>`;
}
