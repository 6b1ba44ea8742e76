/**
 * The admin console's MCP server pages: the list (configured servers read-only, run-time
 * servers with edit and remove) and the add/edit form. Server-rendered without script like
 * the rest of the console; every value is escaped by `html` (names, URLs and rule text are
 * whatever an administrator typed, and a form sent back with errors repeats them).
 */
import type { ResourceConfig } from '../config/schema.js';
import { breakable, wholeDates } from '../web/breakable.js';
import { html, SafeHtml } from '../web/html.js';
import { dataTable } from '../web/layout.js';
import type { ManagedServer } from '../servers/managed-server.js';
import { adminPage } from './views.js';

const FORM_STYLE = new SafeHtml(
  `<style>
form.server{display:grid;grid-template-columns:max-content 1fr;gap:.6rem 1rem;align-items:start;max-width:52rem}
form.server label{font-weight:600;color:#4a5468;padding-top:.35rem}
form.server input[type=text],form.server input[type=url],form.server input[type=number],form.server textarea,form.server select{width:100%;box-sizing:border-box;font:inherit;padding:.35rem .5rem;border:1px solid #c9ced8;border-radius:6px}
form.server textarea{min-height:7rem;font-family:ui-monospace,monospace;font-size:.85rem}
form.server .hint{grid-column:2;color:#4a5468;font-size:.8rem;margin-top:-.4rem}
form.server .buttons{grid-column:2;display:flex;gap:.75rem}
.problems li{font-family:ui-monospace,monospace;font-size:.85rem}
td.actions{display:table-cell}td.actions a{margin-right:.4rem}td.actions form{margin-top:.3rem}
</style>`,
);

/** The form's fields as text, exactly as shown (and sent back) in the form. */
export interface ServerFormFields {
  name: string;
  url: string;
  upstream: string;
  scopes: string;
  allowedOrigins: string;
  upstreamAuthorization: string;
  toolsDefault: string;
  toolsFrom: string;
  toolRules: string;
  rateLimitAverage: string;
  rateLimitBurst: string;
  inFlight: string;
  crowdsec: boolean;
}

function toolSummary(tools: ResourceConfig['tools']): SafeHtml {
  if (!tools) return html`all tools allowed`;
  const rules = Object.entries(tools.rules);
  return html`default <strong>${tools.default}</strong>, decided on the
    ${tools.operationFrom === 'headers' ? 'Mcp-* headers' : 'body'}${
      rules.length
        ? html`<ul>
            ${rules.map(
              ([tool, rule]) =>
                html`<li>
                  <code>${breakable(tool)}</code>:
                  ${rule.scopes.length ? `scopes ${rule.scopes.join(' ')}` : 'no extra scope'}${
                    rule.groups.length ? `; groups ${rule.groups.join(', ')}` : ''
                  }
                </li>`,
            )}
          </ul>`
        : ''
    }`;
}

function accessSummary(access: ResourceConfig['access']): SafeHtml {
  if (!access) return html`global rules only`;
  const part = (label: string) => (value: string) => html`${label} ${breakable(value)}`;
  const parts = [
    ...access.emails.map(part('email')),
    ...access.domains.map(part('domain')),
    ...access.githubOrgs.map(part('GitHub org')),
    ...access.githubTeams.map(part('GitHub team')),
    ...access.groups.map(part('group')),
  ];
  return parts.length
    ? html`${parts.map((item, index) => html`${index ? '; ' : ''}${item}`)}`
    : html`nobody (empty rules)`;
}

const diagnoseLink = (url: string) =>
  html`<a href="/admin/servers/diagnostics?resource=${encodeURIComponent(url)}">Diagnose</a>`;

export interface ServersView {
  user: string;
  csrfToken: string;
  configured: ResourceConfig[];
  managed: ManagedServer[];
  /** Whether administrators may add servers (`managedServers.enabled`). */
  canManage: boolean;
  /** Where Traefik files are written, when they are. */
  traefikDirectory: string | undefined;
  /** Files of that directory Traefik cannot read, with why. */
  unreadableFiles: ReadonlyMap<string, string>;
  notice?: string | undefined;
}

/**
 * Traefik reads its directory as one configuration: while a file in it cannot be read it
 * keeps the last one it read, so changes made here are not live, and a restarted Traefik
 * routes nothing. Said on the page that makes changes.
 */
function unreadableWarning(files: ReadonlyMap<string, string>): SafeHtml {
  if (files.size === 0) return html``;
  return html`<div class="warn" role="alert">
    Traefik cannot read
    ${[...files].map(([file, problem]) => html`<code>${breakable(file)}</code> (${problem}) `)}.
    Until it is fixed or removed, Traefik keeps the routing it read last: servers added, changed or
    removed since are not live, and a restarted Traefik routes nothing.
  </div>`;
}

export function renderServers(view: ServersView): string {
  const managedRows = view.managed.map(
    (server) =>
      html`<tr class="server managed" data-server="${server.id}">
        <td class="name">${server.name}</td>
        <td><code>${breakable(server.url)}</code></td>
        <td><code>${breakable(server.upstream)}</code></td>
        <td>${server.scopes.join(' ')}</td>
        <td>${toolSummary(server.tools)}</td>
        <td>
          ${server.rateLimitAverage}/s (burst ${server.rateLimitBurst}), ${server.inFlight} in
          flight${server.crowdsec ? ', CrowdSec' : ''}
        </td>
        <td>${server.upstreamAuthorization}</td>
        <td>
          ${wholeDates(server.updatedAt.slice(0, 19).replace('T', ' '))} by
          ${breakable(server.updatedBy)}
        </td>
        <td class="actions">
          <a href="/admin/servers/${server.id}/edit">Edit</a> ${diagnoseLink(server.url)}
          <form method="post" action="/admin/servers/${server.id}/remove">
            <input type="hidden" name="csrf" value="${view.csrfToken}" />
            <button type="submit" aria-label="Remove ${server.name}">Remove</button>
          </form>
        </td>
      </tr>`,
  );
  return adminPage(
    'MCP servers',
    view.user,
    'servers',
    html`${FORM_STYLE}
      <h1>MCP servers</h1>
      ${view.notice ? html`<div class="notice" role="status">${view.notice}</div>` : ''}
      <h2>Added here</h2>
      ${
        view.canManage
          ? html`<p>
                Servers added here are protected by every replica within seconds, without a restart.
                ${
                  view.traefikDirectory
                    ? html`Each has its own Traefik file in
                        <code>${breakable(view.traefikDirectory)}</code>.`
                    : html`No Traefik directory is configured
                      (<code>managedServers.traefik.directory</code>): the proxy must route them
                      itself.`
                }
              </p>
              ${unreadableWarning(view.unreadableFiles)}
              <p><a class="button" href="/admin/servers/new">Add an MCP server</a></p>`
          : html`<div class="warn">
              Adding servers here is turned off (<code>managedServers.enabled: false</code>).
            </div>`
      }
      ${dataTable(['Name', 'URL (resource)', 'Upstream', 'Scopes', 'Tool rules', 'Limits', 'Upstream Authorization', 'Changed', ''], managedRows, 'None yet.')}
      <h2>From the configuration file</h2>
      <p>Read only: these are changed in the configuration file (<code>resources:</code>).</p>
      ${dataTable(
        ['Name', 'URL (resource)', 'Scopes', 'Tool rules', 'Upstream Authorization', 'Access', ''],
        view.configured.map(
          (server) =>
            html`<tr class="server configured">
              <td>${server.name}</td>
              <td><code>${breakable(server.url)}</code></td>
              <td>${server.scopes.join(' ')}</td>
              <td>${toolSummary(server.tools)}</td>
              <td>${server.upstreamAuthorization}</td>
              <td>${accessSummary(server.access)}</td>
              <td>${diagnoseLink(server.url)}</td>
            </tr>`,
        ),
      )}`,
  );
}

export interface ServerFormView {
  user: string;
  csrfToken: string;
  /** Absent when adding. */
  id?: string | undefined;
  /** When editing: the version of the server the form was filled from (its `updatedAt`). */
  version?: string | undefined;
  fields: ServerFormFields;
  problems: string[];
}

export function renderServerForm(view: ServerFormView): string {
  const { fields } = view;
  const title = view.id ? `Edit ${fields.name}` : 'Add an MCP server';
  const action = view.id ? `/admin/servers/${view.id}` : '/admin/servers';
  const option = (value: string, label: string, current: string) =>
    value === current
      ? html`<option value="${value}" selected>${label}</option>`
      : html`<option value="${value}">${label}</option>`;
  return adminPage(
    title,
    view.user,
    'servers',
    html`${FORM_STYLE}
      <h1>${title}</h1>
      ${
        view.problems.length
          ? html`<div class="error" role="alert">
              <strong>Not saved.</strong> Nothing was changed.
              <ul class="problems">
                ${view.problems.map((problem) => html`<li>${problem}</li>`)}
              </ul>
            </div>`
          : ''
      }
      <form class="server" method="post" action="${action}">
        <input type="hidden" name="csrf" value="${view.csrfToken}" />
        ${view.version ? html`<input type="hidden" name="version" value="${view.version}" />` : ''}
        <label for="name">Name</label>
        <input id="name" name="name" type="text" required maxlength="200" value="${fields.name}" />
        <label for="url">Public URL</label>
        <input id="url" name="url" type="url" required value="${fields.url}" />
        <span class="hint"
          >The URL MCP clients use, e.g. https://mcp.example.com/crm/mcp: the resource tokens are
          bound to.</span
        >
        <label for="upstream">Upstream URL</label>
        <input id="upstream" name="upstream" type="url" required value="${fields.upstream}" />
        <span class="hint">Where Traefik forwards allowed requests, e.g. http://crm-mcp:3000.</span>
        <label for="scopes">Scopes</label>
        <input id="scopes" name="scopes" type="text" value="${fields.scopes}" />
        <span class="hint">Space-separated baseline scopes (default: mcp).</span>
        <label for="allowedOrigins">Allowed Origins</label>
        <input
          id="allowedOrigins"
          name="allowedOrigins"
          type="text"
          value="${fields.allowedOrigins}"
        />
        <span class="hint"
          >Space-separated browser origins (empty: browsers refused, other clients
          unaffected).</span
        >
        <label for="upstreamAuthorization">Authorization to the server</label>
        <select id="upstreamAuthorization" name="upstreamAuthorization">
          ${option('none', 'Nothing (removed)', fields.upstreamAuthorization)}
          ${option('jwt', 'A short-lived JWT signed by the gateway', fields.upstreamAuthorization)}
        </select>
        <label for="toolsDefault">Tools</label>
        <select id="toolsDefault" name="toolsDefault">
          ${option('none', 'No tool rules: every tool allowed', fields.toolsDefault)}
          ${option('allow', 'Rules below; other tools allowed', fields.toolsDefault)}
          ${option('deny', 'Rules below; other tools denied', fields.toolsDefault)}
        </select>
        <label for="toolsFrom">Decide tool rules on</label>
        <select id="toolsFrom" name="toolsFrom">
          ${option('body', 'The request body (Traefik forwardBody)', fields.toolsFrom)}
          ${option('headers', 'The Mcp-Method/Mcp-Name headers when no body comes', fields.toolsFrom)}
        </select>
        <span class="hint"
          >The body is what the MCP server acts on. The headers are written by the client: choose
          them only behind a proxy that cannot forward the body (Caddy, nginx) and for an MCP server
          that refuses requests whose headers do not match their body.</span
        >
        <label for="toolRules">Tool rules</label>
        <textarea id="toolRules" name="toolRules" spellcheck="false">${fields.toolRules}</textarea>
        <span class="hint"
          >YAML, as <code>resources[].tools.rules</code> in the configuration file, e.g.
          <code>files_*: { scopes: [files:write], groups: [corp:admins] }</code> (a group is named
          with its login provider: <code>&lt;provider&gt;:&lt;group&gt;</code>)</span
        >
        <label for="rateLimitAverage">Rate limit</label>
        <input
          id="rateLimitAverage"
          name="rateLimitAverage"
          type="number"
          min="1"
          value="${fields.rateLimitAverage}"
        />
        <span class="hint"
          >Average requests per second per client address (Traefik rateLimit).</span
        >
        <label for="rateLimitBurst">Burst</label>
        <input
          id="rateLimitBurst"
          name="rateLimitBurst"
          type="number"
          min="1"
          value="${fields.rateLimitBurst}"
        />
        <label for="inFlight">In flight</label>
        <input id="inFlight" name="inFlight" type="number" min="1" value="${fields.inFlight}" />
        <span class="hint">Concurrent requests per client address; open SSE streams count.</span>
        <label for="crowdsec">CrowdSec</label>
        <span
          ><input
            id="crowdsec"
            name="crowdsec"
            type="checkbox"
            value="on"
            ${fields.crowdsec ? new SafeHtml('checked') : ''}
          />
          Ban listed addresses before they reach the gateway</span
        >
        <div class="buttons">
          <button type="submit">${view.id ? 'Save' : 'Add server'}</button>
          <a href="/admin/servers">Cancel</a>
        </div>
      </form>`,
  );
}
