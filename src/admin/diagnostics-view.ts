/**
 * The diagnostics page of one MCP server (`/admin/servers/diagnostics`): each discovery step
 * with its verdict, what was seen and what to change, and the requests and answers in a
 * `<details>` element (no script). Every value goes through `html`'s escaping: the answers
 * are whatever the servers at those URLs sent.
 */
import type { ResourceConfig } from '../config/schema.js';
import { breakable } from '../web/breakable.js';
import { html, SafeHtml } from '../web/html.js';
import { PROBE_TIMEOUT_MS, type Exchange } from './diagnostics-probe.js';
import type { DiagnosticStep, DiagnosticsReport, Finding, Verdict } from './diagnostics.js';
import { adminPage } from './views.js';

export const DIAGNOSTICS_PATH = '/admin/servers/diagnostics';

/** Characters of a body shown; the rest is summarised. */
const SHOWN_BODY = 2000;

const STYLE = new SafeHtml(
  `<style>
.verdict{display:inline-block;font-size:.8rem;font-weight:600;border-radius:4px;padding:.05rem .45rem;margin-left:.4rem;vertical-align:middle}
.v-ok{background:#eaf6ec;color:#1f6e33}.v-warning{background:#fff4e5;color:#8a5300}.v-failed{background:#fdecec;color:#b32020}
section.step{border:1px solid #e6e8ee;border-radius:8px;padding:.6rem 1rem;margin:1rem 0}
section.step h2{font-size:1.05rem;margin:.3rem 0 .6rem}
ul.findings{list-style:none;padding:0;margin:0}
ul.findings li{margin:.45rem 0;padding-left:.6rem;border-left:3px solid #dde1e8}
ul.findings li.f-warning{border-color:#f0a020}ul.findings li.f-failed{border-color:#d33}ul.findings li.f-ok{border-color:#2e9b47}
.hint{color:#4a5468;font-size:.9rem;margin-top:.15rem}
.ref{color:#6b7385;font-size:.8rem}
pre{background:#f6f7f9;padding:.5rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font-size:.8rem}
details{margin-top:.6rem}
</style>`,
);

const LABEL: Record<Verdict, string> = { ok: 'OK', warning: 'Warning', failed: 'Failed' };

function badge(verdict: Verdict): SafeHtml {
  return html`<span class="verdict v-${verdict}">${LABEL[verdict]}</span>`;
}

function finding(item: Finding): SafeHtml {
  return html`<li class="f-${item.verdict}">
    ${badge(item.verdict)} <span class="message">${item.message}</span>
    ${item.hint ? html`<div class="hint">${item.hint}</div>` : ''}
    ${item.reference ? html`<div class="ref">${item.reference}</div>` : ''}
  </li>`;
}

/** A body for display: JSON indented, cut at {@link SHOWN_BODY} characters. */
function bodyText(body: string, truncated: boolean): string {
  let text = body;
  try {
    text = JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    // not JSON: shown as received
  }
  if (text.length > SHOWN_BODY) {
    return `${text.slice(0, SHOWN_BODY)}\n… (${text.length - SHOWN_BODY} more characters)`;
  }
  return truncated ? `${text}\n… (not read further)` : text;
}

function exchangeBlock(exchange: Exchange): SafeHtml {
  const { request, response, failure } = exchange;
  const sent = [
    `${request.method} ${request.url}`,
    ...Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`),
    ...(request.body === undefined ? [] : ['', request.body]),
  ].join('\n');
  const received = response
    ? [
        `HTTP ${response.status} (${response.durationMs} ms)`,
        ...response.headers.map(([name, value]) => `${name}: ${value}`),
        ...(response.body ? ['', bodyText(response.body, response.truncated)] : []),
      ].join('\n')
    : undefined;
  return html`<div class="exchange">
    <strong>Sent</strong> (no credentials)
    <pre>${sent}</pre>
    ${
      received !== undefined
        ? html`<strong>Received</strong>
            <pre>${received}</pre>`
        : ''
    }
    ${failure ? html`<div class="error">${failure.message}</div>` : ''}
  </div>`;
}

function stepSection(item: DiagnosticStep, index: number): SafeHtml {
  return html`<section class="step" data-step="${item.id}" data-verdict="${item.verdict}">
    <h2>${index + 1}. ${item.title} ${badge(item.verdict)}</h2>
    <ul class="findings">
      ${item.findings.map(finding)}
    </ul>
    <details>
      <summary>Requests and answers (${item.exchanges.length})</summary>
      ${item.exchanges.map(exchangeBlock)}
    </details>
  </section>`;
}

export function diagnosticsLink(url: string): string {
  return `${DIAGNOSTICS_PATH}?${new URLSearchParams({ resource: url }).toString()}`;
}

export function renderDiagnostics(
  user: string,
  server: ResourceConfig,
  report: DiagnosticsReport,
): string {
  const summary: Record<Verdict, string> = {
    ok: 'A client starting from this URL finds the authorization server.',
    warning: 'A client finds the authorization server, but see the warnings.',
    failed: 'A client starting from this URL cannot complete discovery: see the failed step.',
  };
  return adminPage(
    `Diagnostics: ${server.name}`,
    user,
    'servers',
    html`${STYLE}
      <h1>Diagnostics: ${server.name}</h1>
      <dl>
        <dt>Resource</dt>
        <dd><code>${breakable(report.resource)}</code></dd>
        <dt>Issuer</dt>
        <dd><code>${breakable(report.issuer)}</code></dd>
        <dt>Result</dt>
        <dd class="summary" data-verdict="${report.verdict}">
          ${badge(report.verdict)} ${summary[report.verdict]}
        </dd>
      </dl>
      <p>
        The gateway made these requests just now, over the network to the public URLs, as an MCP
        client without a token would: through the proxy, redirects not followed, at most
        ${PROBE_TIMEOUT_MS / 1000} s each.
      </p>
      ${report.steps.map(stepSection)}
      <div class="actions">
        <a class="button" href="${diagnosticsLink(report.resource)}">Run again</a>
        <a class="button" href="/admin/servers">Back to MCP servers</a>
      </div>`,
  );
}

export function renderUnknownServer(user: string): string {
  return adminPage(
    'Unknown MCP server',
    user,
    'servers',
    html`<h1>Unknown MCP server</h1>
      <div class="error">No MCP server is configured with this URL.</div>
      <div class="actions"><a class="button" href="/admin/servers">Back to MCP servers</a></div>`,
  );
}
