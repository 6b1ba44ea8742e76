/** The login step's own pages: the choice of sign-in method, the dev login, a refusal. */
import { returnToClient, type ReturnLink } from '../../web/error-page.js';
import { html } from '../../web/html.js';
import { page } from '../../web/layout.js';

export interface ProviderChoice {
  id: string;
  name: string;
}

/** With several login providers: one button each. */
export function renderProviderChoice(uid: string, providers: ProviderChoice[]): string {
  return page(
    'Sign in',
    html`<h1>Sign in to continue</h1>
      <p>Choose how you sign in:</p>
      <ul class="choices">
        ${providers.map(
          (provider) =>
            html`<li>
              <a
                class="button"
                href="/interaction/${encodeURIComponent(uid)}/login/${encodeURIComponent(provider.id)}"
                >Sign in with ${provider.name}</a
              >
            </li>`,
        )}
      </ul>`,
  );
}

/** The development login: pick one of the configured users, no password. */
export function renderDevLogin(uid: string, csrfToken: string, users: string[]): string {
  return page(
    'Development sign-in',
    html`<h1>Development sign-in</h1>
      <div class="warn">
        This login has no password. It is meant for trying the gateway on this machine only.
      </div>
      <form method="post" action="/interaction/${encodeURIComponent(uid)}/login/dev">
        <input type="hidden" name="csrf" value="${csrfToken}" />
        <ul class="choices">
          ${users.map(
            (email) =>
              html`<li>
                <button type="submit" name="email" value="${email}">Continue as ${email}</button>
              </li>`,
          )}
        </ul>
      </form>`,
  );
}

/** A user the access rules do not admit. */
export function renderAccessDenied(reason: string, link?: ReturnLink): string {
  return page(
    'Access denied',
    html`<h1>Access denied</h1>
      <div class="error">${reason}</div>
      <p>
        Ask your administrator to grant you access to this gateway. No authorization was given to
        the application: it is told that access was denied.
      </p>
      ${returnToClient(link)}`,
  );
}
