/**
 * The admin console's pages. Server-rendered like the login and account pages: every value
 * goes through `html`'s escaping (client names, audit fields and query parameters are
 * whatever someone sent), no script; the one form carries the session's CSRF token.
 */
import type { ClientListing } from '../clients/governance.js';
import { formatTime } from '../account/views/account-page.js';
import { breakable, wholeDates } from '../web/breakable.js';
import { html, SafeHtml } from '../web/html.js';
import { dataTable, page } from '../web/layout.js';
import type { JsonObject } from '../store/store.js';
import { pageLinks } from './paging.js';
import type { ActivityFilter } from '../activity/audit-records.js';
import { activityTabs } from './activity-tabs.js';

const STYLE = new SafeHtml(
  `<style>
main{box-sizing:border-box;max-width:min(84.5rem,calc(100% - 2rem))}
nav.admin{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;border-bottom:1px solid #dde1e8;padding-bottom:.75rem;margin-bottom:1rem}
nav.admin .who{margin-left:auto;color:#4a5468}
table{border-collapse:collapse;width:100%;font-size:.875rem}
div.scroll{overflow-x:auto}
th,td{text-align:left;vertical-align:top;border-bottom:1px solid #e6e8ee;padding:.4rem .375rem;line-height:1.45}
th{color:#4a5468}
td form{margin:0}
td button{border-color:#d33;color:#b32020;padding:.3rem .7rem}
td form+form{margin-top:.3rem}
td button.state{border-color:#7a8496;color:#2b3445}
td.disabled{color:#b32020;font-weight:600}
.opaque{word-break:break-all}
.notice{background:#eaf6ec;border-left:4px solid #2e9b47;padding:.6rem .9rem;margin:1rem 0}
form.filter{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:1rem 0}
form.filter label{display:flex;flex-direction:column;font-size:.85rem}
</style>`,
);

export type Section = 'overview' | 'clients' | 'activity' | 'servers' | 'tools';

export function adminPage(title: string, user: string, current: Section, body: SafeHtml): string {
  const link = (section: Section, href: string, label: string) =>
    section === current
      ? html`<strong aria-current="page">${label}</strong>`
      : html`<a href="${href}">${label}</a>`;
  return page(
    title,
    html`${STYLE}
      <nav class="admin">
        ${link('overview', '/admin', 'Overview')} ${link('clients', '/admin/clients', 'Clients')}
        ${link('activity', '/admin/activity', 'Activity')}
        ${link('servers', '/admin/servers', 'MCP servers')}
        ${link('tools', '/admin/tools', 'Tools')}
        <span class="who">Signed in as <strong>${user}</strong></span>
      </nav>
      ${body}`,
  );
}

export interface OverviewView {
  user: string;
  clients: number;
  servers: number;
  auditEnabled: boolean;
}

export function renderOverview(view: OverviewView): string {
  return adminPage(
    'Admin console',
    view.user,
    'overview',
    html`<h1>Admin console</h1>
      <dl>
        <dt><a href="/admin/clients">Clients</a></dt>
        <dd>${view.clients} known (registered, configured or seen obtaining tokens)</dd>
        <dt><a href="/admin/activity">Activity</a></dt>
        <dd>
          The recent decisions and security events, and the
          ${
            view.auditEnabled
              ? 'newest audit records; filterable'
              : 'audit records (the audit trail is off: audit.enabled: false)'
          }
        </dd>
        <dt><a href="/admin/servers">MCP servers</a></dt>
        <dd>${view.servers} configured</dd>
        <dt><a href="/admin/tools">Tools</a></dt>
        <dd>Their pinned tool definitions, and the changes waiting for approval</dd>
      </dl>`,
  );
}

export interface ClientsView {
  user: string;
  csrfToken: string;
  clients: ClientListing[];
  notice?: string | undefined;
}

/** The Disable or Enable form of one client (src/admin/client-state.ts). */
function stateForm(client: ClientListing['client'], disabled: boolean, csrfToken: string) {
  const action = disabled ? 'enable' : 'disable';
  const label = disabled ? 'Enable' : 'Disable';
  return html`<form method="post" action="/admin/clients/${action}">
    <input type="hidden" name="csrf" value="${csrfToken}" />
    <input type="hidden" name="client_id" value="${client.clientId}" />
    <button type="submit" class="state" aria-label="${label} ${client.name ?? client.clientId}">
      ${label}
    </button>
  </form>`;
}

export function renderClients(view: ClientsView): string {
  const rows = view.clients.map(
    ({ client, grants, lastUse, disabled }) =>
      html`<tr data-client="${client.clientId}">
        <td>${client.kind}</td>
        <td class="name">${breakable(client.name ?? '-')}</td>
        <td class="client"><code>${breakable(client.clientId)}</code></td>
        <td>
          ${
            client.redirectHosts.length
              ? client.redirectHosts.map(
                  (host, index) => html`${index ? ', ' : ''}${breakable(host)}`,
                )
              : '-'
          }
        </td>
        <td>${wholeDates(formatTime(client.createdAt))}</td>
        <td>${wholeDates(formatTime(lastUse))}</td>
        <td class="expires">
          ${
            client.kind === 'dcr' && client.expiresAt
              ? wholeDates(formatTime(client.expiresAt))
              : '-'
          }
        </td>
        <td>${grants}</td>
        <td class="${disabled ? 'disabled' : 'active'}">${disabled ? 'Disabled' : 'Active'}</td>
        <td>
          ${
            client.kind === 'built-in'
              ? ''
              : html`${stateForm(client, disabled, view.csrfToken)}
                  <form method="post" action="/admin/clients/revoke">
                    <input type="hidden" name="csrf" value="${view.csrfToken}" />
                    <input type="hidden" name="client_id" value="${client.clientId}" />
                    <button type="submit" aria-label="Revoke ${client.name ?? client.clientId}">
                      Revoke
                    </button>
                  </form>`
          }
        </td>
      </tr>`,
  );
  return adminPage(
    'Clients',
    view.user,
    'clients',
    html`<h1>Clients</h1>
      ${view.notice ? html`<div class="notice" role="status">${view.notice}</div>` : ''}
      <p>
        Revoking a client ends every grant it holds: its refresh tokens stop working and
        <code>/verify</code> refuses its access tokens. A dynamically registered client is also
        deleted; a pre-registered one stays configured; a CIMD client can ask users again.
      </p>
      <p>
        Disabling a client keeps its grants: while it is disabled <code>/verify</code> refuses its
        access tokens and it can neither refresh nor be authorized; enabling it makes them work
        again. A dynamically registered client expires when unused for
        <code>registration.dcr.clientTtl</code> (Expires), disabled or not.
      </p>
      ${dataTable(['Kind', 'Name', 'Client ID', 'Redirect hosts', 'Created', 'Last used', 'Expires', 'Grants', 'State', ''], rows)}`,
  );
}

export interface ActivityView {
  user: string;
  filter: ActivityFilter;
  /** This page's records. */
  records: JsonObject[];
  auditEnabled: boolean;
  /** Records per page. */
  limit: number;
  /** 1 for the newest. */
  page: number;
  /** Whether older matching records follow. */
  hasOlder: boolean;
}

const SHOWN = new Set(['seq', 'time', 'kind', 'actor', 'subject', 'clientId', 'resource']);

/** A grant id, a token id, a hash: no word in it, so it may break anywhere (`.opaque`). */
const OPAQUE = /^[A-Za-z0-9_-]{32,}$/;

/** The record's other fields, as `key=value` each. */
function details(record: JsonObject): SafeHtml[] {
  return Object.entries(record)
    .filter(([key]) => !SHOWN.has(key) && key !== 'v' && key !== 'prev' && key !== 'hash')
    .map(([key, value]) => {
      const shown = typeof value === 'string' ? value : JSON.stringify(value);
      return OPAQUE.test(shown)
        ? html`${key}=<span class="opaque">${shown}</span>`
        : breakable(`${key}=${shown}`);
    });
}

const text = (value: unknown) =>
  value === undefined || value === null ? '' : typeof value === 'string' ? value : String(value);

export function renderActivity(view: ActivityView): string {
  const field = (name: keyof ActivityFilter, label: string) =>
    html`<label
      >${label} <input type="text" name="${name}" value="${view.filter[name] ?? ''}"
    /></label>`;
  const rows = view.records.map(
    (record) =>
      html`<tr class="record">
        <td>${text(record.seq)}</td>
        <td>${wholeDates(text(record.time))}</td>
        <td class="kind">${breakable(text(record.kind))}</td>
        <td>${breakable(text(record.actor))}</td>
        <td class="subject">${breakable(text(record.subject))}</td>
        <td class="client">${breakable(text(record.clientId))}</td>
        <td>${breakable(text(record.resource))}</td>
        <td>${details(record).map((detail, index) => html`${index ? ' ' : ''}${detail}`)}</td>
      </tr>`,
  );
  return adminPage(
    'Activity',
    view.user,
    'activity',
    html`<h1>Activity</h1>
      ${activityTabs('audit')}
      ${
        view.auditEnabled
          ? ''
          : html`<div class="warn">The audit trail is off (audit.enabled: false).</div>`
      }
      <form class="filter" method="get" action="/admin/activity">
        <input type="hidden" name="view" value="audit" />
        ${field('resource', 'Resource')} ${field('subject', 'User (subject)')}
        ${field('client', 'Client ID')} ${field('kind', 'Kind')}
        <button type="submit">Filter</button>
      </form>
      <p>The matching records, newest first, ${view.limit} a page (exact match on each field).</p>
      ${dataTable(['Seq', 'Time', 'Kind', 'Actor', 'Subject', 'Client', 'Resource', 'Details'], rows, 'No matching record.')}
      ${pageLinks({ view: 'audit', ...view.filter }, view.page, view.hasOlder)}`,
  );
}

/** A refusal on the admin pages. */
export function renderAdminProblem(title: string, description: string): string {
  return page(
    title,
    html`<h1>${title}</h1>
      <div class="error">${description}</div>
      <div class="actions"><a class="button" href="/account">Your connected apps</a></div>`,
  );
}
