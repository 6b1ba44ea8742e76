/**
 * The error pages every browser-facing part shares: the login steps, oidc-provider's own
 * errors (src/oauth/provider.ts) and the service's error handler (src/app/error-handler.ts).
 */
import type { Response } from 'express';
import { html, type SafeHtml } from './html.js';
import { page } from './layout.js';
import { sendPage } from './send-page.js';

/** Where the user can go from a refusal: back to the application, which gets `access_denied`. */
export interface ReturnLink {
  url: string;
  clientName: string;
}

/** The button back to the application, or nothing without a link. */
export function returnToClient(link: ReturnLink | undefined): SafeHtml | string {
  if (!link) return '';
  return html`<div class="actions">
    <a class="button" href="${link.url}">Return to ${link.clientName}</a>
  </div>`;
}

export interface ErrorPageOptions {
  title: string;
  error: string;
  description?: string | undefined;
  /** Offered instead of "close this window" when the application can be told of the failure. */
  returnTo?: ReturnLink | undefined;
  /** What the person and an administrator can do about it (src/oauth/client-document-help.ts). */
  help?: SafeHtml | undefined;
}

/**
 * The page shown instead of a redirect when an authorization request cannot be answered
 * safely (unknown client, unregistered redirect URI, …): never redirect to an untrusted URI
 * (checklist AS-07 in docs/security.md).
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

/** The page for a sign-in that cannot continue: expired, replayed, or another browser's. */
export function sendSignInExpired(res: Response, description: string): void {
  sendPage(
    res,
    400,
    renderErrorPage({ title: 'Sign-in expired', error: 'invalid_request', description }),
  );
}
