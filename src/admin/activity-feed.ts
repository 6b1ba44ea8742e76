/**
 * `/admin/activity` (the default view): the recent `/verify` decisions and security events of
 * every replica (src/activity/activity-feed.ts), newest first, filterable by resource, user
 * (subject or email), client id and result. The audit records are the other view
 * (`?view=audit`, src/activity/audit-records.ts).
 *
 * Filters are query parameters, each an exact match (the user's email case-insensitively);
 * a value longer than {@link MAX_FILTER}, given twice, or an unknown result is refused (400)
 * rather than ignored, so that a page never looks filtered when it is not.
 *
 * The feed keeps subjects, not emails; the page looks up each distinct subject's account
 * record (what its identity provider said at the last login) once per view, at most
 * {@link MAX_LOOKUPS} of them.
 */
import type { Request, Response } from 'express';
import type { ActivityFeed } from '../activity/activity-feed.js';
import {
  ACTIVITY_RESULTS,
  type ActivityEntry,
  type ActivityResult,
} from '../activity/activity-entries.js';
import type { AccountStore } from '../login/accounts.js';
import { sendPage } from '../web/send-page.js';
import { renderActivityFeed, type ShownEntry } from './activity-feed-view.js';
import type { AdminGuard, SignedInAdmin } from './guard.js';
import { pageOf, parsePage } from './paging.js';

/** Longest accepted filter value (a CIMD client id is a URL). */
export const MAX_FILTER = 2000;
/** Entries shown per page, newest first, of those that match. */
export const FEED_LIMIT = 200;
/** Distinct subjects whose email is looked up per view. */
export const MAX_LOOKUPS = 500;

export interface FeedFilter {
  resource?: string;
  /** A subject, or an email address. */
  user?: string;
  client?: string;
  result?: ActivityResult;
}

const TEXT_FILTERS = ['resource', 'user', 'client'] as const;

/** The filter of a request's query, or why it is refused. */
export function parseFeedFilter(
  query: Request['query'],
): { ok: true; filter: FeedFilter } | { ok: false; problem: string } {
  const filter: FeedFilter = {};
  for (const name of [...TEXT_FILTERS, 'result'] as const) {
    const value = query[name];
    if (value === undefined || value === '') continue;
    if (typeof value !== 'string') return { ok: false, problem: `Give the ${name} filter once.` };
    if (value.length > MAX_FILTER) {
      return { ok: false, problem: `The ${name} filter is longer than ${MAX_FILTER} characters.` };
    }
    if (name === 'result') {
      if (!ACTIVITY_RESULTS.includes(value as ActivityResult)) {
        return {
          ok: false,
          problem: `The result filter must be one of ${ACTIVITY_RESULTS.join(', ')}.`,
        };
      }
      filter.result = value as ActivityResult;
    } else {
      filter[name] = value;
    }
  }
  return { ok: true, filter };
}

/** Whether an entry (with its user's email, when known) matches every given filter. */
export function matchesFeed(entry: ShownEntry, filter: FeedFilter): boolean {
  if (filter.result !== undefined && entry.result !== filter.result) return false;
  if (filter.resource !== undefined && entry.resource !== filter.resource) return false;
  if (filter.client !== undefined && entry.clientId !== filter.client) return false;
  if (filter.user !== undefined && entry.subject !== filter.user) {
    if (entry.email === undefined || entry.email.toLowerCase() !== filter.user.toLowerCase()) {
      return false;
    }
  }
  return true;
}

/** The email of each distinct subject (the first {@link MAX_LOOKUPS}), from its account. */
async function emailsOf(
  accounts: AccountStore,
  entries: ActivityEntry[],
): Promise<Map<string, string>> {
  const subjects = [
    ...new Set(entries.flatMap((entry) => (entry.subject === undefined ? [] : [entry.subject]))),
  ].slice(0, MAX_LOOKUPS);
  const found = await Promise.all(
    subjects.map(async (subject) => [subject, (await accounts.find(subject))?.email] as const),
  );
  const emails = new Map<string, string>();
  for (const [subject, email] of found) if (email) emails.set(subject, email);
  return emails;
}

export interface ActivityFeedPageDependencies {
  /** Absent with `activity.enabled: false`. */
  activity: ActivityFeed | undefined;
  accounts: AccountStore;
  guard: Pick<AdminGuard, 'refuse'>;
}

/** Answers the feed view for a signed-in administrator. */
export async function sendActivityFeed(
  req: Request,
  res: Response,
  who: SignedInAdmin,
  deps: ActivityFeedPageDependencies,
): Promise<void> {
  const parsed = parseFeedFilter(req.query);
  if (!parsed.ok) return deps.guard.refuse(res, 400, 'Bad filter', parsed.problem);
  const paged = parsePage(req.query);
  if (!paged.ok) return deps.guard.refuse(res, 400, 'Bad page', paged.problem);
  const { filter } = parsed;
  const entries = deps.activity ? await deps.activity.recent() : [];
  const emails = await emailsOf(deps.accounts, entries);
  function* matching(): Generator<ShownEntry> {
    for (const entry of entries) {
      const email = entry.subject === undefined ? undefined : emails.get(entry.subject);
      const candidate: ShownEntry = email === undefined ? entry : { ...entry, email };
      if (matchesFeed(candidate, filter)) yield candidate;
    }
  }
  const { items, hasOlder } = pageOf(matching(), paged.page, FEED_LIMIT);
  return sendPage(
    res,
    200,
    renderActivityFeed({
      user: who.user,
      filter,
      entries: items,
      page: paged.page,
      hasOlder,
      enabled: deps.activity !== undefined,
      limit: FEED_LIMIT,
      kept: deps.activity?.maxEntries ?? 0,
    }),
  );
}
