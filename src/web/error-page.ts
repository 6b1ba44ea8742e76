import { html, page, type SafeHtml } from './layout.js';
import { returnToClient, type ReturnLink } from './login-pages.js';

export interface ErrorPageOptions {
  title: string;
  error: string;
  description?: string | undefined;
  /** Offered instead of "close this window" when the application can be told of the failure. */
  returnTo?: ReturnLink | undefined;
  /** What the person and an administrator can do about it (e.g. client-document-help.ts). */
  help?: SafeHtml | undefined;
}

/**
 * The page shown instead of a redirect when an authorization request cannot be answered
 * safely (unknown client, unregistered redirect URI, …): never redirect to an untrusted URI
 * (checklist AS-07).
 */
export function renderErrorPage({
  title,
  error,
  description,
  returnTo,
  help,
}: ErrorPageOptions): string {
  return page(
    title,
    html`<h1>${title}</h1>
      <div class="error"><strong>${error}</strong>${description ? html`: ${description}` : ''}</div>
      ${help}
      ${
        returnTo
          ? html`<p>The application is told that access was denied.</p>
              ${returnToClient(returnTo)}`
          : html`<p>You can close this window and try connecting again from your application.</p>`
      }`,
  );
}
