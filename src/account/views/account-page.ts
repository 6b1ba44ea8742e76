/**
 * The "connected apps" page (`/account`) and its small companions. Server-rendered like the
 * login pages, on the shared page layer (src/web/): every value goes through `html`'s escaping (client names
 * are whatever the client registered), no script; forms carry the session's CSRF token.
 */
import { breakable, wholeDates } from '../../web/breakable.js';
import { html, SafeHtml } from '../../web/html.js';
import { page } from '../../web/layout.js';
import type { ClientKind } from '../../clients/directory.js';

/** One application (client) and everything the user granted it. */
export interface ConnectedAppView {
  clientId: string;
  clientName: string;
  kind: ClientKind;
  /** The host that vouches for the client (CIMD: the client id's host; else redirect host). */
  host: string | undefined;
  /** False when the client itself is gone (an expired DCR registration). */
  clientKnown: boolean;
  resources: { name: string; url: string; scopes: string[] }[];
  /** Identity scopes it was given (`email`, `profile`). */
  identityScopes: string[];
  firstUse: number | undefined;
  lastUse: number | undefined;
  /** Its grants: one per browser session the user authorized it in. */
  authorizations: number;
}

export interface AccountView {
  user: string;
  csrfToken: string;
  apps: ConnectedAppView[];
  /** A notice after an action (e.g. "revoked"). */
  notice?: string | undefined;
}

const KIND_LABEL: Record<ClientKind, string> = {
  dcr: 'Registered itself (dynamic client registration)',
  cimd: 'Client ID metadata document',
  'pre-registered': 'Pre-registered by the administrator',
  'built-in': 'Built in',
};

/** Where an application's Revoke form posts (its `client_id` in the form). */
export const ACCOUNT_REVOKE_PATH = '/account/apps/revoke';

/** Extra styles for this page (the layout's are shared with the login pages). */
const STYLE = new SafeHtml(
  `<style>
main{max-width:46rem}
section.app{border:1px solid #dde1e8;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
section.app h2{font-size:1.1rem;margin:0 0 .5rem}
section.app ul{margin:0;padding-left:1.1rem}
section.app form{margin-top:.75rem}
section.app button{border-color:#d33;color:#b32020}
.notice{background:#eaf6ec;border-left:4px solid #2e9b47;padding:.6rem .9rem;margin:1rem 0}
.signout{display:flex;justify-content:space-between;align-items:center;gap:1rem}
.signout form{margin:0}.signout button{white-space:nowrap}
</style>`,
);

/** `2026-05-04 13:07 UTC`: one unambiguous form, whatever the browser's locale. */
export function formatTime(epochSeconds: number | undefined): string {
  if (epochSeconds === undefined) return 'never';
  return `${new Date(epochSeconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function appSection(app: ConnectedAppView, csrfToken: string): SafeHtml {
  return html`<section class="app" data-client="${app.clientId}">
    <h2>${app.clientName}</h2>
    <dl>
      <dt>Host</dt>
      <dd>${breakable(app.host ?? 'unknown')}</dd>
      <dt>Kind</dt>
      <dd>${KIND_LABEL[app.kind]}${app.clientKnown ? '' : ' (registration expired)'}</dd>
      <dt>Client ID</dt>
      <dd><code>${breakable(app.clientId)}</code></dd>
      <dt>Access</dt>
      <dd>
        <ul>
          ${app.resources.map(
            (resource) =>
              html`<li>
                <strong>${resource.name}</strong> <code>${breakable(resource.url)}</code>${
                  resource.scopes.length
                    ? html` with scopes
                      ${resource.scopes.map((scope) => html`<code>${scope}</code> `)}`
                    : ''
                }
              </li>`,
          )}${
            app.identityScopes.length
              ? html`<li>Your identity: ${app.identityScopes.join(', ')}</li>`
              : ''
          }${
            app.resources.length === 0 && app.identityScopes.length === 0
              ? html`<li>No MCP server</li>`
              : ''
          }
        </ul>
      </dd>
      <dt>First use</dt>
      <dd>${wholeDates(formatTime(app.firstUse))}</dd>
      <dt>Last use</dt>
      <dd>${wholeDates(formatTime(app.lastUse))}</dd>
      ${
        app.authorizations > 1
          ? html`<dt>Authorizations</dt>
              <dd>${app.authorizations}, from different browser sessions</dd>`
          : ''
      }
    </dl>
    <form method="post" action="${ACCOUNT_REVOKE_PATH}">
      <input type="hidden" name="csrf" value="${csrfToken}" />
      <input type="hidden" name="client_id" value="${app.clientId}" />
      <button type="submit" aria-label="Revoke ${app.clientName}">Revoke</button>
    </form>
  </section>`;
}

export function renderAccountPage(view: AccountView): string {
  return page(
    'Connected apps',
    html`${STYLE}
      <div class="signout">
        <span>Signed in as <strong>${view.user}</strong></span>
        <form method="post" action="/account/signout">
          <input type="hidden" name="csrf" value="${view.csrfToken}" />
          <button type="submit">Sign out</button>
        </form>
      </div>
      <h1>Connected apps</h1>
      ${view.notice ? html`<div class="notice" role="status">${view.notice}</div>` : ''}
      <p>
        These applications can use MCP servers as you. Revoking one ends all of its access at once:
        it can no longer refresh its tokens, and the gateway refuses the ones it holds.
      </p>
      ${
        view.apps.length
          ? view.apps.map((app) => appSection(app, view.csrfToken))
          : html`<p class="empty">No application holds access to your MCP servers.</p>`
      }`,
  );
}

/** After signing out. */
export function renderSignedOut(): string {
  return page(
    'Signed out',
    html`<h1>Signed out</h1>
      <p>You are signed out of the MCP Gateway in this browser.</p>
      <div class="actions"><a class="button" href="/account">Sign in again</a></div>`,
  );
}

/** A refusal on the account pages, with the way back to them. */
export function renderAccountProblem(title: string, description: string): string {
  return page(
    title,
    html`<h1>${title}</h1>
      <div class="error">${description}</div>
      <div class="actions"><a class="button" href="/account">Back to connected apps</a></div>`,
  );
}
