/**
 * The admin console through the scripted user agent: its CSRF token, signing in with the dev
 * login, posting its forms, and reading its clients table.
 */
import type { FlowResult, TestUserAgent } from './user-agent.js';

/** Stop nowhere: follow every redirect to the page. */
export const never = () => false;

/** The CSRF token of the page's form. */
export function csrfToken(body: string): string {
  const token = /<input type="hidden" name="csrf" value="([^"]+)"/.exec(body)?.[1];
  if (!token) throw new Error(`no CSRF token on page: ${body.slice(0, 300)}`);
  return token;
}

/**
 * Opens `url` in `agent`'s browser, signing in as `user` with the dev login first when the
 * page asks. The sign-in lands on /admin, not on `url`: `reopen` opens `url` again after it.
 */
export async function openSignedIn(
  agent: TestUserAgent,
  url: string | URL,
  user: string,
  options: { reopen?: boolean } = {},
): Promise<FlowResult> {
  const page = await agent.follow(url, never);
  if (!page.body.includes('Development sign-in')) return page;
  const signedIn = await agent.submit(page, { name: 'email', value: user }, never);
  return options.reopen ? agent.follow(url, never) : signedIn;
}

/** Posts `fields` as a form to `url` from `agent`'s browser, with an Origin header if given. */
export function postFields(
  agent: TestUserAgent,
  url: string | URL,
  fields: Record<string, string>,
  origin?: string,
): Promise<FlowResult> {
  return agent.follow(url, never, {
    method: 'POST',
    body: new URLSearchParams(fields),
    ...(origin === undefined ? {} : { origin }),
  });
}

/** The rows of `/admin/clients`, keyed by client id (as sent, entities decoded for `&amp;`). */
export function clientRows(body: string): Map<string, string> {
  return new Map(
    [...body.matchAll(/<tr data-client="([^"]+)">([\s\S]*?)<\/tr>/g)].map((match) => [
      match[1]!.replace(/&amp;/g, '&'),
      match[2]!,
    ]),
  );
}
