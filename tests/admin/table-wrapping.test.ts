/**
 * How the admin console's tables and the connected apps page wrap, measured in real Chromium
 * at a phone's width and at a desktop's: a long identifier (URL, client id, subject, tool
 * name) breaks only after its separators (`<wbr>`, src/web/breakable.ts), an ordinary
 * word ("Diagnose") or a scope ("mcp:tools") never breaks, and nothing makes the page wider
 * than the window (a table too wide for it scrolls inside its own box).
 *
 * "Split" is measured, not guessed: each word of each text node is wrapped in a DOM Range,
 * and a word whose client rectangles lie on more than one line was broken by the browser.
 * Since a `<wbr>` separates text nodes, breaks at those hints are never counted; breaks after
 * a hyphen followed by a letter ("end-to-end", the browser's own rule) are not counted either,
 * nor are breaks in opaque values (an audit record's grant ids and hashes: 32 or more URL-safe
 * characters, marked `.opaque`), which have no words to keep whole.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ask } from '../helpers/admin-activity.js';
import { launchChromium, wordsSplitAcrossLines } from '../helpers/chromium.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { devLogin, LOOPBACK_REDIRECT, pkcePair, redeemCode } from '../helpers/oauth-flow.js';
import { waitFor } from '../helpers/poll.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const ALICE = 'alice@example.com';
const RESOURCE = 'http://localhost:3999/departments/engineering/quarterly-reports/mcp';
const LONG_CLIENT_ID = 'quarterly-reporting-assistant.internal.example.com';
/**
 * Shaped like a dynamically registered client's id (`dcr_` and 22 random characters), with
 * wide letters: the widest such id the tables must still fit on a desktop. Configured rather
 * than registered, so that the widths measured do not depend on chance.
 */
const DCR_LIKE_ID = 'dcr_MwWmQwMWmWqMwWmQwMWmWq';
const LONG_TOOL = 'summarize_engineering_quarterly_report';
const PAGES = [
  '/admin/clients',
  '/admin/activity',
  '/admin/activity?view=audit',
  '/admin/servers',
  '/account',
];
/** A phone, and a desktop browser window (where every table fits without scrolling). */
const WIDTHS = [390, 1280];
const DESKTOP = 1280;
/** Where text is shown in cells, lists, headings and the navigation. */
const TEXT = 'th, td, dt, dd, h1, h2, nav, label';

/** The words the page shows broken across lines in the elements matching `selector`. */
function splitWords(page: Page, selector: string): Promise<string[]> {
  return wordsSplitAcrossLines(page, selector, {
    // A word: up to whitespace, or up to a hyphen followed by a letter.
    words: /(?:[^\s-]|-(?!\p{L}))+-?/gu,
    skipWithin: '.opaque',
    ignoreEmptyRects: true,
  });
}

/**
 * The tables that do not fit their box (and scroll in it): how many pixels too wide, and their
 * column headings.
 */
function scrollingTables(page: Page): Promise<string[]> {
  return page
    .locator('div.scroll')
    .evaluateAll((boxes) =>
      (boxes as unknown as { scrollWidth: number; clientWidth: number; innerText: string }[])
        .filter((box) => box.scrollWidth > box.clientWidth)
        .map((box) => `${box.scrollWidth - box.clientWidth} ${box.innerText.split('\n')[0] ?? ''}`),
    );
}

/** How much wider than the window the page is (0: it fits). */
function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => {
    const { document, innerWidth } = globalThis as unknown as {
      document: { documentElement: { scrollWidth: number } };
      innerWidth: number;
    };
    return document.documentElement.scrollWidth - innerWidth;
  });
}

describeWithBinary('chromium', 'table and identifier wrapping in headless Chromium', () => {
  let gw: RunningGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let token: string;

  /** Alice authorizes `clientId` (scripted browser) and the client redeems the code. */
  async function authorize(clientId: string): Promise<string> {
    const { verifier, challenge } = pkcePair();
    const flow = await devLogin(gw.url, {
      clientId,
      resource: RESOURCE,
      codeChallenge: challenge,
      agent: new TestUserAgent(),
      user: ALICE,
    });
    const code = flow.url.searchParams.get('code');
    if (!code) throw new Error(`no code: ${flow.url.href}`);
    const answer = await redeemCode(gw.url, { code, verifier, clientId, resource: RESOURCE });
    expect(answer.status).toBe(200);
    return String(answer.body.access_token);
  }

  beforeAll(async () => {
    gw = await startGateway(() => ({
      admins: { emails: [ALICE] },
      clients: [
        {
          client_id: LONG_CLIENT_ID,
          client_name: 'Quarterly reporting assistant',
          redirect_uris: [LOOPBACK_REDIRECT],
        },
        {
          client_id: DCR_LIKE_ID,
          client_name: 'Research agent',
          redirect_uris: [LOOPBACK_REDIRECT],
        },
      ],
      resources: [
        {
          url: RESOURCE,
          name: 'Engineering reports',
          scopes: ['mcp:tools', 'reports:read'],
          tools: { default: 'deny', rules: { [LONG_TOOL]: {} } },
        },
      ],
    }));
    token = await authorize(LONG_CLIENT_ID);
    const research = await authorize(DCR_LIKE_ID);
    // Decisions for the feed: allowed, a tool refused by its rule, a request without a token.
    const call = (name: string) => ({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name, arguments: {} },
    });
    expect(await ask(gw.url, RESOURCE, { token, ip: '198.51.100.7', body: call(LONG_TOOL) })).toBe(
      200,
    );
    expect(
      await ask(gw.url, RESOURCE, {
        token,
        ip: '2001:db8:85a3::8a2e:370:7334',
        body: call('archive_every_quarterly_report'),
      }),
    ).toBe(403);
    expect(await ask(gw.url, RESOURCE, { ip: '198.51.100.8' })).toBe(401);
    expect(
      await ask(gw.url, RESOURCE, { token: research, ip: '198.51.100.9', body: call(LONG_TOOL) }),
    ).toBe(200);

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(10_000);
    page = await context.newPage();
    await page.goto(`${gw.url}/admin`);
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/admin'),
      page.getByRole('button', { name: `Continue as ${ALICE}`, exact: true }).click(),
    ]);
    // The feed is written in batches: wait until the four decisions are listed.
    await waitFor(
      async () => {
        await page.goto(`${gw.url}/admin/activity`);
        return (await page.locator('tr.event:not([data-result="security"])').count()) >= 4;
      },
      { what: 'the four decisions to reach the feed', timeoutMs: 10_000, intervalMs: 100 },
    );
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await gw?.stop();
  });

  it.each(WIDTHS)(
    'at %i px: no word split mid-token, nothing wider than the window',
    async (width) => {
      await page.setViewportSize({ width, height: 900 });
      for (const pathname of PAGES) {
        const response = await page.goto(`${gw.url}${pathname}`);
        expect([pathname, response?.status()]).toEqual([pathname, 200]);
        expect([pathname, await splitWords(page, TEXT)]).toEqual([pathname, []]);
        expect([pathname, await horizontalOverflow(page)]).toEqual([pathname, 0]);
        // A phone scrolls the wide tables in their box; a desktop window fits them.
        const scrolling = width >= DESKTOP ? await scrollingTables(page) : [];
        expect([pathname, scrolling]).toEqual([pathname, []]);
      }
    },
  );

  it('wraps a long identifier at its separators where it does not fit, inside its box', async () => {
    await page.setViewportSize({ width: 390, height: 900 });
    await page.goto(`${gw.url}/account`);
    const section = page.locator('section.app', { hasText: 'Quarterly reporting assistant' });
    for (const [term, shown] of [
      ['Client ID', LONG_CLIENT_ID],
      ['Access', RESOURCE],
    ] as const) {
      const cell = section.locator(`dt:text-is("${term}") + dd`);
      const code = cell.locator('code').first();
      expect(await code.innerText()).toBe(shown);
      // Wrapped: one inline box per line.
      const lines = await code.evaluate(
        (element) =>
          (element as unknown as { getClientRects(): unknown[] }).getClientRects().length,
      );
      expect([term, lines > 1]).toEqual([term, true]);
      const [codeBox, cellBox] = await Promise.all([code.boundingBox(), cell.boundingBox()]);
      expect(codeBox!.x + codeBox!.width).toBeLessThanOrEqual(cellBox!.x + cellBox!.width + 1);
    }
    // And only at its hints: every piece between them is whole.
    expect(await splitWords(page, 'section.app dd')).toEqual([]);
  });
});
