import { html, page } from './layout.js';

export interface ErrorPageOptions {
  title: string;
  error: string;
  description?: string | undefined;
}

/**
 * The page shown instead of a redirect when an authorization request cannot be answered
 * safely (unknown client, unregistered redirect URI, …): never redirect to an untrusted URI
 * (checklist AS-07).
 */
export function renderErrorPage({ title, error, description }: ErrorPageOptions): string {
  return page(
    title,
    html`<h1>${title}</h1>
      <div class="error"><strong>${error}</strong>${description ? html`: ${description}` : ''}</div>
      <p>You can close this window and try connecting again from your application.</p>`,
  );
}
