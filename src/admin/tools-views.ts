/**
 * The admin console's Tools view: each protected MCP server's pinned tool definitions, and a
 * held change reviewed as a diff with the scanner's findings beside it. Definitions are
 * written by the MCP server (attacker-controlled when it is compromised): every value goes
 * through `html`'s escaping, and invisible characters are shown as `<U+XXXX>` (`visible`), so
 * what the administrator reads is what the model would read.
 */
import type { ResourceConfig } from '../config/schema.js';
import { changeDiff } from '../tool-pinning/review.js';
import type { PinnedDefinition } from '../tool-pinning/definitions.js';
import type { PinRecord } from '../tool-pinning/pin-records.js';
import { STRUCTURE_RULES, TEXT_RULES, visible, type Finding } from '../tool-pinning/scanner.js';
import { breakable, wholeDates } from '../web/breakable.js';
import { html, SafeHtml } from '../web/html.js';
import { dataTable } from '../web/layout.js';
import { adminPage } from './views.js';

export const TOOLS_PATH = '/admin/tools';

const STYLE = new SafeHtml(
  `<style>
pre.diff{background:#f7f8fa;border:1px solid #e6e8ee;border-radius:6px;padding:.6rem .8rem;overflow-x:auto;font-size:.8rem;line-height:1.4;white-space:pre-wrap;overflow-wrap:anywhere}
pre.diff .add{background:#e6f6ea;color:#185c2b}
pre.diff .del{background:#fdecec;color:#8a1f1f}
pre.diff .hunk{color:#6b7385}
details.definition{margin:.4rem 0}details.definition pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.8rem}
ul.findings li{margin:.3rem 0}ul.findings .reason{color:#4a5468;font-size:.85rem}
form.decide{display:inline-block;margin-right:.75rem}
.held{color:#8a4b00;font-weight:600}
</style>`,
);

/** Unbounded: `visible` shortens by default, a diff must be shown whole. */
const WHOLE = Number.MAX_SAFE_INTEGER;
const shown = (text: string) => visible(text, WHOLE);

/** The reason of a scanner rule by id, for the findings' explanations. */
const RULE_REASONS: ReadonlyMap<string, string> = new Map<string, string>([
  ...TEXT_RULES.map((rule) => [rule.id, rule.reason] as [string, string]),
  ...Object.entries(STRUCTURE_RULES).map(([id, rule]) => [id, rule.reason] as [string, string]),
]);

const time = (epochMs: number | undefined) =>
  epochMs === undefined
    ? 'never'
    : `${new Date(epochMs).toISOString().slice(0, 19).replace('T', ' ')} UTC`;

export const serverLink = (url: string) => `${TOOLS_PATH}/server?url=${encodeURIComponent(url)}`;

/** One protected server as the list shows it. */
export interface ToolsServerRow {
  resource: ResourceConfig;
  /** Whether it is pinned at all (`upstream` and a mode other than `off`). */
  pinned: boolean;
  record: PinRecord | undefined;
}

function modeCell(row: ToolsServerRow): SafeHtml {
  if (row.resource.upstream === undefined) return html`not pinned: no upstream`;
  return html`${row.resource.toolDefinitions.mode}`;
}

function heldCell(record: PinRecord | undefined): SafeHtml {
  const pending = record?.pending;
  if (!pending) return html`none`;
  return html`<span class="held"
    >${pending.changes.length} held (${pending.status === 'review' ? 'review' : 'rejected'})</span
  >`;
}

function lastCheckCell(record: PinRecord | undefined): SafeHtml {
  const check = record?.lastCheck;
  if (!check) return html`not yet`;
  return html`${wholeDates(time(check.at))}:
  ${check.ok ? html`ok` : html`<span class="held">failed</span> ${shown(check.error ?? '')}`}`;
}

export interface ToolsView {
  user: string;
  rows: ToolsServerRow[];
}

export function renderTools(view: ToolsView): string {
  const rows = view.rows.map(
    (row) =>
      html`<tr class="tools-server" data-resource="${row.resource.url}">
        <td>${row.resource.name}</td>
        <td>
          ${
            row.pinned
              ? html`<a href="${serverLink(row.resource.url)}"
                  ><code>${breakable(row.resource.url)}</code></a
                >`
              : html`<code>${breakable(row.resource.url)}</code>`
          }
        </td>
        <td class="mode">${modeCell(row)}</td>
        <td class="approved">
          ${row.record?.approved ? Object.keys(row.record.approved.definitions).length : 0}
        </td>
        <td class="pending">${heldCell(row.record)}</td>
        <td class="last-check">${lastCheckCell(row.record)}</td>
      </tr>`,
  );
  return adminPage(
    'Tools',
    view.user,
    'tools',
    html`${STYLE}
      <h1>Tool definitions</h1>
      <p>
        The tools, prompts and resource templates each MCP server lists, as approved. A new, changed
        or flagged definition is held until an administrator approves it; in
        <code>enforce</code> mode calls of held tools are refused meanwhile.
      </p>
      ${dataTable(['Name', 'URL (resource)', 'Mode', 'Approved', 'Held', 'Last listing'], rows, 'No MCP server is protected.')}`,
  );
}

/** A unified diff with added and removed lines marked; every line escaped. */
function diffBlock(diff: string): SafeHtml {
  const lines = diff.split('\n').map((line) => {
    const text = shown(line);
    if (/^(\+\+\+|---|===|@@)/.test(line)) return html`<span class="hunk">${text}</span>`;
    if (line.startsWith('+')) return html`<span class="add">${text}</span>`;
    if (line.startsWith('-')) return html`<span class="del">${text}</span>`;
    return html`${text}`;
  });
  // Joined here, not in a template: the line breaks are the diff's, and must stay as they are.
  return html`<pre class="diff">${new SafeHtml(lines.map((line) => line.value).join('\n'))}</pre>`;
}

function findingsList(findings: Finding[] | undefined): SafeHtml | string {
  if (!findings?.length) return '';
  return html`<ul class="findings">
    ${findings.map(
      (finding) =>
        html`<li>
          <strong>${finding.rule}</strong> at <code>${shown(finding.where)}</code>:
          <code>${shown(finding.excerpt)}</code>
          <div class="reason">${RULE_REASONS.get(finding.rule) ?? ''}</div>
        </li>`,
    )}
  </ul>`;
}

function definitionRow(definition: PinnedDefinition): SafeHtml {
  const description = definition.definition.description;
  return html`<tr class="definition">
    <td>${definition.kind}</td>
    <td><code>${shown(definition.name)}</code></td>
    <td>${typeof description === 'string' ? shown(description) : ''}</td>
    <td>
      <details class="definition">
        <summary>JSON</summary>
        <pre>${shown(JSON.stringify(definition.definition, null, 2))}</pre>
      </details>
    </td>
  </tr>`;
}

export interface ToolsServerView {
  user: string;
  csrfToken: string;
  resource: ResourceConfig;
  record: PinRecord | undefined;
  /** A refused decision's message (409). */
  problem?: string | undefined;
  notice?: string | undefined;
}

function pendingSection(view: ToolsServerView): SafeHtml {
  const pending = view.record?.pending;
  if (!pending) {
    return html`<h2>Held changes</h2>
      <p class="nothing-held">Nothing is held: the definitions listed are the approved ones.</p>`;
  }
  const decide = (action: 'approve' | 'reject', label: string, primary: boolean) =>
    html`<form class="decide" method="post" action="${TOOLS_PATH}/${action}">
      <input type="hidden" name="csrf" value="${view.csrfToken}" />
      <input type="hidden" name="url" value="${view.resource.url}" />
      <input type="hidden" name="fingerprint" value="${pending.fingerprint}" />
      <button type="submit" ${primary ? new SafeHtml('class="primary"') : ''}>${label}</button>
    </form>`;
  return html`<h2>Held changes</h2>
    <p>
      Detected ${wholeDates(time(pending.detectedAt))};
      ${
        pending.status === 'review'
          ? html`<span class="held">waiting for review</span>`
          : html`<span class="held">rejected</span> by ${breakable(pending.decidedBy ?? '')}: held
              until the server lists the approved definitions again`
      }.
    </p>
    ${pending.changes.map(
      (change) =>
        html`<section class="change" data-key="${change.key}">
          <h3>${change.change} ${change.kind} <code>${shown(change.name)}</code></h3>
          ${findingsList(pending.findings[change.key])} ${diffBlock(changeDiff(change))}
        </section>`,
    )}
    <div class="actions">
      ${decide('approve', 'Approve', true)}
      ${pending.status === 'review' ? decide('reject', 'Reject', false) : ''}
    </div>`;
}

export function renderToolsServer(view: ToolsServerView): string {
  const { resource, record } = view;
  const approved = Object.values(record?.approved?.definitions ?? {});
  return adminPage(
    `Tools of ${resource.name}`,
    view.user,
    'tools',
    html`${STYLE}
      <h1>Tools of ${resource.name}</h1>
      ${view.notice ? html`<div class="notice" role="status">${view.notice}</div>` : ''}
      ${
        view.problem
          ? html`<div class="error" role="alert">
              <strong>Nothing was changed:</strong> ${view.problem}
            </div>`
          : ''
      }
      <dl>
        <dt>URL (resource)</dt>
        <dd><code>${breakable(resource.url)}</code></dd>
        <dt>Mode</dt>
        <dd>${resource.toolDefinitions.mode}</dd>
        <dt>Last listing</dt>
        <dd>${lastCheckCell(record)}</dd>
        <dt>Approved</dt>
        <dd>
          ${
            !record?.approved
              ? 'nothing yet'
              : record.approvedAt === undefined
                ? 'as first listed'
                : html`${wholeDates(time(record.approvedAt))} by
                  ${breakable(record.approvedBy ?? '')}`
          }
        </dd>
      </dl>
      ${pendingSection(view)}
      <h2>Approved definitions</h2>
      ${dataTable(['Kind', 'Name', 'Description', 'Definition'], approved.map(definitionRow), 'None.')}
      <p><a href="${TOOLS_PATH}">All servers</a></p>`,
  );
}
