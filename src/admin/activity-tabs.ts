/**
 * The switch between the two views of `/admin/activity`: the recent decisions and security
 * events (activity-feed-view.ts) and the audit records (views.ts `renderActivity`).
 */
import { html, type SafeHtml } from '../web/html.js';

export type ActivityTab = 'feed' | 'audit';

export function activityTabs(current: ActivityTab): SafeHtml {
  const tab = (name: ActivityTab, href: string, label: string) =>
    name === current
      ? html`<strong aria-current="page">${label}</strong>`
      : html`<a href="${href}">${label}</a>`;
  return html`<p class="tabs">
    ${tab('feed', '/admin/activity', 'Decisions and security events')} ·
    ${tab('audit', '/admin/activity?view=audit', 'Audit records')}
  </p>`;
}
