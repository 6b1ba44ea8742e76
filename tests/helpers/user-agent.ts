/**
 * A scripted user agent for the authorization flow: follows redirects one hop at a time with
 * a real cookie jar (tough-cookie), across the gateway and the upstream IdP, and submits the
 * login and consent forms the gateway renders. It does what a browser does with these pages
 * (they have no script); `tests/e2e/browser.test.ts` does the same in real Chromium.
 */
import { CookieJar } from 'tough-cookie';
import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';

export interface Hop {
  url: string;
  status: number;
  location?: string;
}

export interface FlowResult {
  /** The final URL reached: the client's redirect URI (with code) or a page. */
  url: URL;
  status: number;
  body: string;
  hops: Hop[];
}

export class TestUserAgent {
  readonly jar = new CookieJar();
  private readonly dispatcher: Dispatcher;

  /** `ca`: the CA to trust (instead of the system's); `dispatcher`: the test's own instead. */
  constructor(options: { ca?: string; dispatcher?: Dispatcher } = {}) {
    this.dispatcher =
      options.dispatcher ?? new Agent({ connect: options.ca ? { ca: options.ca } : {} });
  }

  private async request(
    url: URL,
    init: { method?: string; body?: URLSearchParams; origin?: string } = {},
  ) {
    const cookie = await this.jar.getCookieString(url.href);
    const headers: Record<string, string> = { accept: 'text/html' };
    if (cookie) headers.cookie = cookie;
    if (init.body) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (init.origin) headers.origin = init.origin;
    const response = await undiciFetch(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.body?.toString(),
      redirect: 'manual',
      dispatcher: this.dispatcher,
    });
    for (const setCookie of response.headers.getSetCookie()) {
      await this.jar.setCookie(setCookie, url.href, { ignoreError: true });
    }
    return response;
  }

  /**
   * Follows redirects from `start` until a page (non-redirect) is reached, or a redirect
   * whose target satisfies `stopAt` (e.g. the client's redirect URI, which no server here
   * serves).
   */
  async follow(
    start: string | URL,
    stopAt: (url: URL) => boolean,
    init: { method?: string; body?: URLSearchParams; origin?: string } = {},
  ): Promise<FlowResult> {
    let url = new URL(start);
    let request = init;
    const hops: Hop[] = [];
    for (let i = 0; i < 25; i += 1) {
      if (stopAt(url)) return { url, status: 0, body: '', hops };
      const response = await this.request(url, request);
      const location = response.headers.get('location') ?? undefined;
      hops.push({ url: url.href, status: response.status, ...(location ? { location } : {}) });
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        url = new URL(location, url);
        request = {};
        continue;
      }
      return { url, status: response.status, body: await response.text(), hops };
    }
    throw new Error(`too many redirects: ${hops.map((hop) => hop.url).join(' -> ')}`);
  }

  /** Follows the page's button link (`<a class="button" href>`: "Return to <application>"). */
  async followLink(page: FlowResult, stopAt: (url: URL) => boolean): Promise<FlowResult> {
    const href = /<a class="button" href="([^"]+)"/.exec(page.body)?.[1];
    if (!href) throw new Error(`no button link on page: ${page.body.slice(0, 500)}`);
    return this.follow(new URL(decodeEntities(href), page.url), stopAt);
  }

  /** Submits the form on `page` with the button whose name/value is given. */
  async submit(
    page: FlowResult,
    button: { name: string; value: string },
    stopAt: (url: URL) => boolean,
    override: Record<string, string> = {},
  ): Promise<FlowResult> {
    const form = parseForm(page.body);
    const body = new URLSearchParams({ ...form.fields, [button.name]: button.value, ...override });
    return this.follow(new URL(form.action, page.url), stopAt, {
      method: 'POST',
      body,
      origin: page.url.origin,
    });
  }
}

/** The action and hidden fields of the first form of a page. */
export function parseForm(body: string): { action: string; fields: Record<string, string> } {
  const action = /<form[^>]*action="([^"]+)"/.exec(body)?.[1];
  if (!action) throw new Error(`no form on page: ${body.slice(0, 500)}`);
  const fields: Record<string, string> = {};
  for (const match of body.matchAll(
    /<input type="hidden" name="([^"]+)" value="([^"]*)"\s*\/?>/g,
  )) {
    fields[match[1]!] = decodeEntities(match[2]!);
  }
  return { action: decodeEntities(action), fields };
}

function decodeEntities(value: string): string {
  return value
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
