/**
 * The admin console's Tools view in real Chromium (playwright-core): an administrator signs in
 * with the dev login, opens Tools from the console's navigation, finds the change a real SDK
 * MCP server made to one of its tools held, reads its diff (the server's markup shown as text,
 * never run), clicks Approve, and the page then shows nothing held.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { PinRecords } from '../../src/tool-pinning/pin-records.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { launchChromium } from '../helpers/chromium.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/poll.js';
import { startToolsServer, type ToolsServer } from '../helpers/tools-server.js';

const ALICE = 'alice@example.com';
const PINNED = 'http://localhost:4555/docs/mcp';
const CHANGED = 'Searches the documents. <script>document.title="pwned"</script>';

describeWithBinary('chromium', 'the Tools view in headless Chromium', () => {
  let gw: RunningGateway;
  let mcp: ToolsServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let screenshotDir: string;

  beforeAll(async () => {
    screenshotDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-tools-screenshots-'));
    mcp = await startToolsServer({ search: 'Searches the documents' });
    gw = await startGateway(() => ({
      admins: { emails: [ALICE] },
      resources: [
        {
          url: PINNED,
          name: 'Docs tools',
          scopes: ['mcp:tools'],
          upstream: mcp.endpoint,
          toolDefinitions: { mode: 'enforce', recheck: 1 },
        },
      ],
    }));
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(10_000);
    page = await context.newPage();
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await gw?.stop();
    await mcp?.stop();
    if (screenshotDir) await rm(screenshotDir, { recursive: true, force: true });
  });

  it('an administrator reviews a held tool change, approves it, and sees it approved', async () => {
    const records = new PinRecords(gw.gateway.store);
    await waitFor(async () => (await records.read(PINNED))?.lastCheck?.ok === true, {
      what: 'the first listing',
      timeoutMs: 15_000,
    });
    mcp.tools.set('search', CHANGED);
    await waitFor(async () => (await records.read(PINNED))?.pending?.status === 'review', {
      what: 'the change held',
      timeoutMs: 15_000,
    });

    await page.goto(`${gw.url}/admin`);
    expect(await page.locator('h1').innerText()).toBe('Development sign-in');
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/admin'),
      page.getByRole('button', { name: `Continue as ${ALICE}`, exact: true }).click(),
    ]);
    await Promise.all([
      page.waitForURL((url) => url.pathname === '/admin/tools'),
      page.locator('nav.admin').getByRole('link', { name: 'Tools', exact: true }).click(),
    ]);
    const row = page.locator(`tr.tools-server[data-resource="${PINNED}"]`);
    expect(await row.locator('td.mode').innerText()).toBe('enforce');
    expect(await row.locator('td.pending').innerText()).toBe('1 held (review)');

    await Promise.all([
      page.waitForURL((url) => url.pathname === '/admin/tools/server'),
      row.getByRole('link').click(),
    ]);
    expect(await page.locator('h1').innerText()).toBe('Tools of Docs tools');
    const change = page.locator('section.change[data-key="tool:search"]');
    expect(await change.locator('h3').innerText()).toBe('changed tool search');
    // The server's markup is text in the diff: shown as written, never a script element.
    expect(await change.locator('pre.diff .del').allInnerTexts()).toContainEqual(
      expect.stringContaining('"description": "Searches the documents"'),
    );
    expect(await change.locator('pre.diff .add').allInnerTexts()).toContainEqual(
      expect.stringContaining('<script>document.title=\\"pwned\\"</script>'),
    );
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.title()).toBe('Tools of Docs tools · MCP Gateway');
    const shot = path.join(screenshotDir, 'admin-tools-review.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect((await stat(shot)).size).toBeGreaterThan(1000);

    const [response] = await Promise.all([
      page.waitForResponse(
        (candidate) =>
          candidate.request().isNavigationRequest() && candidate.request().method() === 'POST',
      ),
      page.getByRole('button', { name: 'Approve', exact: true }).click(),
    ]);
    expect(response.status()).toBe(303);
    await page.waitForURL((url) => url.searchParams.get('done') === 'approved');
    expect(await page.locator('[role=status]').innerText()).toContain('Approved');
    expect(await page.locator('p.nothing-held').innerText()).toContain('Nothing is held');
    expect(await page.locator('tr.definition').innerText()).toContain(CHANGED);
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);

    await page.goto(`${gw.url}/admin/tools`);
    expect(await row.locator('td.pending').innerText()).toBe('none');
    expect((await records.read(PINNED))?.approvedBy).toBe(`admin:dev:${ALICE}`);
  });
});
