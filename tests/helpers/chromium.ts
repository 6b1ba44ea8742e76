/**
 * A person in real Chromium (playwright-core, Debian's /usr/bin/chromium), for tests where a
 * real MCP client prints an authorization URL and waits on its loopback callback: opens the
 * URL, signs in with the gateway's development login, reads and answers the consent page, and
 * reports the browser's navigation to the client's callback (which a client listening there
 * then serves; where nothing listens the navigation fails, and its URL is still reported).
 * Also revokes an application as the user would (`/account`) or an administrator would
 * (`/admin/clients`).
 *
 * The gateway's pages have no script, so the same steps work in tests/helpers/user-agent.ts;
 * this is for the tests whose point is the real browser between a real client and the gateway.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Headless, no sandbox (containers), nothing that reaches the internet on its own. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/** What the consent page showed. */
export interface ConsentShown {
  /** The `<h1>`: `Allow <client name> to access MCP servers as you?`. */
  heading: string;
  /** Its `<dl>`: Application, Client ID, Redirects to, Signed in as (Published by for CIMD). */
  details: Record<string, string>;
  /** The warnings (`.warn`): loopback redirect, approved before. */
  warnings: string[];
  /** Each MCP server listed, as shown (name, URL, scopes). */
  resources: string[];
}

export interface BrowserAuthorization {
  /** The URL the browser was sent to at the client's callback (with `code` or `error`). */
  callback: URL;
  /** Whether the login page was shown (false: the browser's session was reused). */
  signedIn: boolean;
  /** The consent page, if one was shown. */
  consent: ConsentShown | undefined;
}

export interface AuthorizeOptions {
  /** Whether a URL is the client's callback (its redirect URI, with any query). */
  isCallback: (url: URL) => boolean;
  /** Who signs in on the development login page (default alice@example.com). */
  user?: string;
  /** The answer on the consent page (default Allow). */
  decision?: 'Allow' | 'Deny';
  /** Longest wait for each step, ms (default 15 s). */
  timeout?: number;
}

const isLoginPage = (url: URL) => /^\/interaction\/[^/]+\/login(\/[^/]+)?$/.test(url.pathname);
const isConsentPage = (url: URL) => /^\/interaction\/[^/]+$/.test(url.pathname);

/**
 * Closes a tab once its page has loaded. Closing it while a client's callback page was still
 * loading (mcp-remote's closes itself with `window.close()`) made Playwright's `close()` wait
 * for up to a minute; whichever of the two closes comes first ends the wait.
 */
async function closeTab(page: Page): Promise<void> {
  await page.waitForLoadState('load', { timeout: 5_000 }).catch(() => undefined);
  if (page.isClosed()) return;
  const closed = new Promise<void>((resolve) => page.once('close', () => resolve()));
  await Promise.race([page.close().catch(() => undefined), closed]);
}

async function readConsent(page: Page): Promise<ConsentShown> {
  const terms = await page.locator('dl > dt').allInnerTexts();
  const values = await page.locator('dl > dd').allInnerTexts();
  return {
    heading: await page.locator('h1').innerText(),
    details: Object.fromEntries(terms.map((term, index) => [term, values[index] ?? ''])),
    warnings: await page.locator('.warn').allInnerTexts(),
    resources: (await page.locator('main ul > li').allInnerTexts()).map((text) =>
      text.replace(/\s+/g, ' ').trim(),
    ),
  };
}

/**
 * The person's part of an authorization: opens `authorizationUrl` in a new tab of `context`,
 * signs in (when the gateway asks), answers the consent page (when shown), and resolves with
 * the navigation to the client's callback. Throws, naming the page, when the browser lands
 * anywhere else (an error page, an unexpected prompt).
 */
export async function authorizeInBrowser(
  context: BrowserContext,
  authorizationUrl: string | URL,
  options: AuthorizeOptions,
): Promise<BrowserAuthorization> {
  const user = options.user ?? 'alice@example.com';
  const timeout = options.timeout ?? 15_000;
  const page = await context.newPage();
  let callback: URL | undefined;
  const arrived = page
    .waitForRequest(
      (request) => request.isNavigationRequest() && options.isCallback(new URL(request.url())),
      { timeout: 4 * timeout },
    )
    .then(
      (request) => {
        callback = new URL(request.url());
        return 'callback' as const;
      },
      () => 'gone' as const,
    );
  /**
   * Runs a step; resolves once the browser is at the callback, on a page `expected` accepts,
   * or after `timeout` (then the page it is on is reported below).
   */
  const step = async (action: () => Promise<unknown>, expected: (url: URL) => boolean) => {
    const landed = page.waitForURL(expected, { waitUntil: 'domcontentloaded', timeout }).then(
      () => 'page' as const,
      () => 'stuck' as const,
    );
    // The navigation to a callback nothing listens on fails: that is not the step failing.
    await action().catch((error: unknown) => {
      if (callback === undefined) throw error;
    });
    return Promise.race([arrived, landed]);
  };

  const atGatewayPage = (url: URL) => isLoginPage(url) || isConsentPage(url);
  let signedIn = false;
  let consent: ConsentShown | undefined;
  try {
    let where = await step(() => page.goto(String(authorizationUrl)), atGatewayPage);
    for (let hops = 0; where === 'page' && hops < 4; hops += 1) {
      const url = new URL(page.url());
      if (isLoginPage(url) && !signedIn) {
        const button = page.getByRole('button', { name: `Continue as ${user}`, exact: true });
        if ((await button.count()) === 0) {
          throw new Error(`no development sign-in for ${user} at ${url.pathname}`);
        }
        signedIn = true;
        where = await step(() => button.click(), isConsentPage);
      } else if (isConsentPage(url) && consent === undefined) {
        if ((await page.locator('button[name=decision]').count()) === 0) break;
        consent = await readConsent(page);
        const decision = options.decision ?? 'Allow';
        where = await step(
          () => page.getByRole('button', { name: decision, exact: true }).click(),
          () => false,
        );
      } else {
        break;
      }
    }
    if (callback === undefined) {
      const title = await page.title().catch(() => '?');
      const text = await page
        .locator('main')
        .innerText()
        .catch(() => '');
      throw new Error(
        `the browser did not reach the client's callback: at ${page.url()} ("${title}": ${text.slice(0, 300)})`,
      );
    }
    return { callback, signedIn, consent };
  } finally {
    await closeTab(page);
  }
}

/**
 * Revokes an application on the user's `/account` page (the browser's session signs in; the
 * application is found by its client id). Resolves once the page confirms.
 */
export async function revokeOnAccountPage(
  context: BrowserContext,
  issuer: string,
  clientId: string,
): Promise<void> {
  const page = await context.newPage();
  try {
    const response = await page.goto(`${issuer}/account`);
    if (response?.status() !== 200 || (await page.title()) !== 'Connected apps · MCP Gateway') {
      throw new Error(`/account answered ${response?.status()}: ${await page.title()}`);
    }
    const section = page.locator('section.app', {
      has: page.locator('dd > code', { hasText: clientId }),
    });
    if ((await section.count()) !== 1) {
      throw new Error(`/account lists ${await section.count()} applications with ${clientId}`);
    }
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/account' && url.search === '?done=revoked'),
      section.getByRole('button', { name: /^Revoke / }).click(),
    ]);
  } finally {
    await page.close().catch(() => undefined);
  }
}

/**
 * Revokes a client in the admin console (`/admin/clients`; the browser's session must be an
 * administrator's): every grant of it ends, and a dynamically registered client is deleted.
 */
export async function revokeInAdminConsole(
  context: BrowserContext,
  issuer: string,
  clientId: string,
): Promise<void> {
  const page = await context.newPage();
  try {
    const response = await page.goto(`${issuer}/admin/clients`);
    if (response?.status() !== 200) {
      throw new Error(`/admin/clients answered ${response?.status()}: ${await page.title()}`);
    }
    const row = page.locator(`tr[data-client="${clientId}"]`);
    if ((await row.count()) !== 1) throw new Error(`/admin/clients does not list ${clientId}`);
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/admin/clients' && url.search === '?done=revoked'),
      row.getByRole('button', { name: /^Revoke / }).click(),
    ]);
  } finally {
    await page.close().catch(() => undefined);
  }
}

/** The DOM members the in-page code uses (this project's lib is Node's, without the DOM). */
interface PageText {
  textContent: string | null;
  parentElement: { closest(selector: string): unknown } | null;
}
interface PageDocument {
  createTreeWalker(root: unknown, whatToShow: number): { nextNode(): PageText | null };
  createRange(): {
    setStart(node: PageText, offset: number): void;
    setEnd(node: PageText, offset: number): void;
    getClientRects(): Iterable<{ top: number; width: number }>;
  };
}

export interface SplitWordsOptions {
  /** What a word is (a global regular expression); default: up to whitespace. */
  words?: RegExp;
  /** Text inside an element matching this selector is not read (opaque identifiers). */
  skipWithin?: string;
  /** Count only line boxes with a width (a zero-width box at a line's end is no line). */
  ignoreEmptyRects?: boolean;
}

/**
 * The words of the elements matching `selector` that the page shows broken across two lines
 * (a column heading or a button cut mid-word reads as two words).
 */
export function wordsSplitAcrossLines(
  page: Page,
  selector: string,
  options: SplitWordsOptions = {},
): Promise<string[]> {
  const words = options.words ?? /\S+/g;
  return page.locator(selector).evaluateAll(
    (elements, { source, flags, skipWithin, ignoreEmptyRects }) => {
      // Runs in the page (serialized: nothing from this module is in scope there).
      const { document } = globalThis as unknown as { document: PageDocument };
      const pattern = new RegExp(source, flags);
      const split: string[] = [];
      for (const element of elements) {
        const walker = document.createTreeWalker(element, 4 /* NodeFilter.SHOW_TEXT */);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          if (skipWithin && node.parentElement?.closest(skipWithin)) continue;
          for (const match of (node.textContent ?? '').matchAll(pattern)) {
            const range = document.createRange();
            range.setStart(node, match.index);
            range.setEnd(node, match.index + match[0].length);
            const tops = new Set(
              [...range.getClientRects()]
                .filter((rect) => !ignoreEmptyRects || rect.width > 0)
                .map((rect) => Math.round(rect.top)),
            );
            if (tops.size > 1) split.push(match[0]);
          }
        }
      }
      return split;
    },
    {
      source: words.source,
      flags: words.flags,
      skipWithin: options.skipWithin,
      ignoreEmptyRects: options.ignoreEmptyRects ?? false,
    },
  );
}
