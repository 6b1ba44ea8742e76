/**
 * The newest audit records, optionally filtered: the data of `/admin/activity?view=audit`
 * (the admin console's pages render it; the feed beside it is activity-feed.ts).
 *
 * The store reads a chain oldest first only (`readChained`), so the chain is read in pages and
 * only the newest `limit` matching records are kept (memory stays bounded; the time grows with
 * the chain's length, which `audit.maxRecords` bounds).
 */
import { AUDIT_KEY } from '../store/keys.js';
import type { ChainEntry, JsonObject, Store } from '../store/store.js';

export const ACTIVITY_FILTERS = ['resource', 'subject', 'client', 'kind'] as const;
export type ActivityFilter = Partial<Record<(typeof ACTIVITY_FILTERS)[number], string>>;

const PAGE = 1000;

/** Whether a record matches every given filter (exact match). */
export function matchesActivity(record: JsonObject, filter: ActivityFilter): boolean {
  if (filter.kind !== undefined && record.kind !== filter.kind) return false;
  if (filter.subject !== undefined && record.subject !== filter.subject) return false;
  if (filter.client !== undefined && record.clientId !== filter.client) return false;
  if (filter.resource !== undefined) {
    const wanted = filter.resource;
    const listed = Array.isArray(record.resources)
      ? record.resources.some(
          (entry) =>
            entry === wanted ||
            (entry !== null &&
              typeof entry === 'object' &&
              (entry as JsonObject).resource === wanted),
        )
      : false;
    if (record.resource !== wanted && !listed) return false;
  }
  return true;
}

/** The newest `limit` records of the chain at `key` that match `filter`, newest first. */
export async function recentActivity(
  store: Store,
  filter: ActivityFilter,
  options: { key?: string; limit?: number } = {},
): Promise<JsonObject[]> {
  const key = options.key ?? AUDIT_KEY;
  const limit = options.limit ?? 200;
  const kept: JsonObject[] = [];
  let after: string | undefined;
  for (;;) {
    const page: ChainEntry[] = await store.readChained(key, {
      count: PAGE,
      ...(after === undefined ? {} : { after }),
    });
    for (const { record } of page) {
      if (!matchesActivity(record, filter)) continue;
      kept.push(record);
      if (kept.length > limit) kept.shift();
    }
    if (page.length < PAGE) break;
    after = page.at(-1)!.id;
  }
  return kept.reverse();
}
