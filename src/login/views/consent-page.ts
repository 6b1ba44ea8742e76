/** The consent step's page. */
import { html } from '../../web/html.js';
import { page } from '../../web/layout.js';

export interface ConsentView {
  uid: string;
  csrfToken: string;
  clientName: string;
  clientId: string;
  /** Host of the redirect URI the code will be sent to. */
  redirectHost: string;
  /** For Client ID Metadata Document clients: the host that published the document. */
  verifiedHost?: string | undefined;
  /** Whether every registered redirect URI is on loopback (another local app could claim it). */
  loopbackOnly: boolean;
  /**
   * The user approved this client before and is asked again: its code goes to this computer,
   * where any program can use its name (RFC 8252 §8.6; src/oauth/native-consent.ts).
   */
  approvedBefore?: boolean | undefined;
  user: string;
  resources: { name: string; url: string; scopes: string[] }[];
  oidcScopes: string[];
}

/**
 * The consent page (checklist AS-10 in docs/security.md): names the client, shows where the code goes and what
 * it grants, approve and deny buttons, CSRF token. Sent with `frame-ancestors 'none'`.
 */
export function renderConsent(view: ConsentView): string {
  const action = `/interaction/${encodeURIComponent(view.uid)}/confirm`;
  return page(
    'Authorize application',
    html`<h1>Allow <em>${view.clientName}</em> to access MCP servers as you?</h1>
      <dl>
        <dt>Application</dt>
        <dd>${view.clientName}</dd>
        <dt>Client ID</dt>
        <dd><code>${view.clientId}</code></dd>
        ${
          view.verifiedHost
            ? html`<dt>Published by</dt>
                <dd>${view.verifiedHost} (verified client metadata document)</dd>`
            : ''
        }
        <dt>Redirects to</dt>
        <dd>${view.redirectHost}</dd>
        <dt>Signed in as</dt>
        <dd>${view.user}</dd>
      </dl>
      ${view.approvedBefore ? html`<p class="warn">You approved this application before. It is asked again because its authorization goes to <code>${view.redirectHost}</code> on your computer: check that this is the connection you just started.</p>` : ''}
      ${view.loopbackOnly ? html`<div class="warn">This application receives the authorization on your own computer (<code>${view.redirectHost}</code>). Any program on this computer could pose as it: approve only if you just started this connection yourself.</div>` : ''}
      <p>It will be able to use:</p>
      <ul>
        ${view.resources.map(
          (resource) =>
            html`<li>
              <strong>${resource.name}</strong>
              <code>${resource.url}</code
              >${resource.scopes.length ? html` with scopes ${resource.scopes.map((scope) => html`<code>${scope}</code> `)}` : ''}
            </li>`,
        )}${view.oidcScopes.length ? html`<li>Your identity: ${view.oidcScopes.join(', ')}</li>` : ''}
      </ul>
      <form method="post" action="${action}">
        <input type="hidden" name="csrf" value="${view.csrfToken}" />
        <div class="actions">
          <button type="submit" name="decision" value="approve" class="primary">Allow</button>
          <button type="submit" name="decision" value="deny">Deny</button>
        </div>
      </form>`,
  );
}
