/**
 * The Activity page's feed view: recent `/verify` decisions and security events (the audit
 * records are views.ts `renderActivity`). Every value goes through `html`'s escaping:
 * subjects, client ids, tool names, reasons and the filter values echoed back are whatever
 * someone sent.
 */
import type { ActivityEntry, ActivityResult } from '../activity/activity-entries.js';
import { breakable, wholeDates } from '../web/breakable.js';
import { html } from '../web/html.js';
import { dataTable } from '../web/layout.js';
import type { FeedFilter } from './activity-feed.js';
import { activityTabs } from './activity-tabs.js';
import { pageLinks } from './paging.js';
import { adminPage } from './views.js';

/** An entry as shown: with the email of its subject's account, when known. */
export type ShownEntry = ActivityEntry & { email?: string | undefined };

const RESULT_LABELS: Record<ActivityResult, string> = {
  allowed: 'allowed',
  refused: 'refused',
  error: 'error',
  security: 'security event',
};

/** `2025-01-31 12:34:56 UTC`. */
function formatInstant(at: number): string {
  return `${new Date(at).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export interface ActivityFeedView {
  user: string;
  filter: FeedFilter;
  /** This page's entries. */
  entries: ShownEntry[];
  /** 1 for the newest. */
  page: number;
  /** Whether older matching entries follow. */
  hasOlder: boolean;
  /** False with `activity.enabled: false`. */
  enabled: boolean;
  /** Entries per page. */
  limit: number;
  /** Entries kept of each list (`activity.maxEntries`). */
  kept: number;
}

export function renderActivityFeed(view: ActivityFeedView): string {
  const field = (name: 'resource' | 'user' | 'client', label: string) =>
    html`<label
      >${label} <input type="text" name="${name}" value="${view.filter[name] ?? ''}"
    /></label>`;
  const option = (value: ActivityResult | '', label: string) =>
    html`<option value="${value}" ${(view.filter.result ?? '') === value ? 'selected' : ''}>
      ${label}
    </option>`;
  const rows = view.entries.map(
    (entry) =>
      html`<tr class="event" data-result="${entry.result}">
        <td class="time">${wholeDates(formatInstant(entry.at))}</td>
        <td class="result">${RESULT_LABELS[entry.result]}</td>
        <td class="count">${entry.count ?? 1}</td>
        <td class="what">${entry.result === 'security' ? breakable(entry.kind) : entry.status}</td>
        <td class="reason">${breakable(entry.reason)}</td>
        <td class="resource">${breakable(entry.resource)}</td>
        <td class="subject">${breakable(entry.subject)}</td>
        <td class="email">${breakable(entry.email)}</td>
        <td class="client">${breakable(entry.clientId)}</td>
        <td class="tool">${breakable(entry.tool)}</td>
        <td class="ip">${breakable(entry.ip)}</td>
      </tr>`,
  );
  return adminPage(
    'Activity',
    view.user,
    'activity',
    html`<h1>Activity</h1>
      ${activityTabs('feed')}
      ${
        view.enabled
          ? ''
          : html`<div class="warn">The activity feed is off (activity.enabled: false).</div>`
      }
      <form class="filter" method="get" action="/admin/activity">
        ${field('resource', 'Resource')} ${field('user', 'User (subject or email)')}
        ${field('client', 'Client ID')}
        <label
          >Result
          <select name="result">
            ${option('', 'any')} ${option('allowed', 'allowed')} ${option('refused', 'refused')}
            ${option('error', 'error')} ${option('security', 'security event')}
          </select></label
        >
        <button type="submit">Filter</button>
      </form>
      <p>
        The matching entries of every replica, newest first, ${view.limit} a page (exact match on
        each field). The gateway keeps the last ${view.kept} decisions and the last ${view.kept}
        security events; an entry reaches this page within about a second. Identical decisions (same
        result, reason, resource, user, client, tool and address) within that second are one entry,
        counted under Times, dated by the last of them.
      </p>
      ${dataTable(['Time', 'Result', { text: 'Times', title: 'Identical decisions within about a second are one entry' }, 'Status / event', 'Reason', 'Resource', 'Subject', 'Email', 'Client', 'Tool', 'Client IP'], rows, 'No matching entry.')}
      ${pageLinks(
        {
          resource: view.filter.resource,
          user: view.filter.user,
          client: view.filter.client,
          result: view.filter.result,
        },
        view.page,
        view.hasOlder,
      )}`,
  );
}
