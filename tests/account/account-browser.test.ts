/**
 * "Connected apps" in real Chromium (playwright-core): a user authorizes an MCP client (dev
 * login and consent), the client gets tokens (the code is read from the browser's request to
 * the client's loopback redirect URI, where nothing listens, as in tests/e2e/browser.test.ts),
 * then the same browser opens `/account` without a second login (oidc-provider's session
 * cookie is shared), finds the client by name, and clicks Revoke: the page no longer lists it,
 * the client's next `/verify` is refused and its refresh fails. (A real browser matters here:
 * under the pages' `Referrer-Policy: no-referrer` Chromium sends `Origin: null` with the
 * form, which the account page's origin check must accept with `Sec-Fetch-Site: same-origin`.)
 *
 * It also takes the screenshot of the page shown in docs/account.md: into
 * docs/screenshots/account.png with UPDATE_SCREENSHOTS=1, otherwise into the temporary
 * directory (so that running the tests does not change a tracked file at every run).
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { describeWithBinary } from '../helpers/binaries.js';
import { launchChromium } from '../helpers/chromium.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  LOOPBACK_REDIRECT,
  pkcePair,
  redeemCode,
  registerClient,
  tokenRequest,
} from '../helpers/oauth-flow.js';
import { verifyStatus } from '../helpers/provider-login.js';

const RESOURCE = 'http://localhost:3999/mcp';
const CLIENT_NAME = 'Research agent (example)';
const USER = 'alice@example.com';
const REDIRECT_ORIGIN = new URL(LOOPBACK_REDIRECT).origin;
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? path.resolve('docs/screenshots/account.png')
    : path.join(tmpdir(), 'mcpgw-account.png');

describeWithBinary('chromium', 'connected apps in headless Chromium', () => {
  let gw: RunningGateway;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    gw = await startGateway();
    browser = await launchChromium();
    context = await browser.newContext();
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await gw?.stop();
  });

  const verify = (accessToken: string) =>
    verifyStatus(gw.url, 'http://localhost:3999/mcp', accessToken);

  /** The user authorizes a new client in the browser; the client redeems the code. */
  async function authorizeClient(page: Page) {
    const client = await registerClient(gw.url, { client_name: CLIENT_NAME });
    const { verifier, challenge } = pkcePair();
    await page.goto(
      authorizeUrl(gw.url, {
        clientId: client.client_id,
        resource: RESOURCE,
        codeChallenge: challenge,
      }).href,
    );
    expect(await page.locator('h1').innerText()).toBe('Development sign-in');
    await Promise.all([
      page.waitForURL((url) => /^\/interaction\/[^/]+$/.test(url.pathname)),
      page.getByRole('button', { name: `Continue as ${USER}`, exact: true }).click(),
    ]);
    expect(await page.title()).toBe('Authorize application · MCP Gateway');
    const [redirect] = await Promise.all([
      page.waitForRequest((request) => request.url().startsWith(`${REDIRECT_ORIGIN}/`)),
      page.getByRole('button', { name: 'Allow', exact: true }).click(),
    ]);
    const code = new URL(redirect.url()).searchParams.get('code');
    expect(code).toEqual(expect.any(String));
    const token = await redeemCode(gw.url, {
      code: code!,
      verifier,
      clientId: client.client_id,
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    return {
      client,
      accessToken: String(token.body.access_token),
      refreshToken: String(token.body.refresh_token),
    };
  }

  it('lists the authorized client at /account without a second login, and revokes it', async () => {
    // The authorization in its own tab: left on the browser's error page for the redirect (where
    // nothing listens), whose late commit would otherwise interrupt the next navigation.
    const authorizing = await context.newPage();
    const app = await authorizeClient(authorizing);
    await authorizing.close();
    expect(await verify(app.accessToken)).toBe(200);

    const page = await context.newPage();
    await page.setViewportSize({ width: 1000, height: 800 });

    // Same browser: the session from the MCP client's login is the account page's too.
    const visited: string[] = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest()) visited.push(new URL(request.url()).pathname);
    });
    const response = await page.goto(`${gw.url}/account`);
    expect(response?.status()).toBe(200);
    expect(visited).toEqual(['/account']);
    expect(await page.title()).toBe('Connected apps · MCP Gateway');

    // The last use is recorded just after the token answer; reload until it shows.
    const section = page.locator('section.app', { hasText: CLIENT_NAME });
    const lastUse = section.locator('dt:text-is("Last use") + dd');
    for (let attempt = 0; attempt < 50 && (await lastUse.innerText()) === 'never'; attempt += 1) {
      await page.reload();
    }
    expect(await page.locator('section.app').count()).toBe(1);
    expect(await section.locator('h2').innerText()).toBe(CLIENT_NAME);
    const terms = await section.locator('dl > dt').allInnerTexts();
    const values = await section.locator('dl > dd').allInnerTexts();
    const shown = Object.fromEntries(terms.map((term, index) => [term, values[index]]));
    expect(shown).toEqual({
      Host: '127.0.0.1:8976',
      Kind: 'Registered itself (dynamic client registration)',
      'Client ID': app.client.client_id,
      Access: `Test MCP ${RESOURCE} with scopes mcp:tools`,
      'First use': expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/),
      'Last use': expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/),
    });
    expect(await page.locator('.signout').innerText()).toContain(`Signed in as ${USER}`);

    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await rm(SCREENSHOT, { force: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect((await stat(SCREENSHOT)).size).toBeGreaterThan(1000);
    expect((await readFile(SCREENSHOT)).subarray(1, 4).toString('latin1')).toBe('PNG');

    await Promise.all([
      page.waitForURL((url) => url.pathname === '/account' && url.search === '?done=revoked'),
      section.getByRole('button', { name: `Revoke ${CLIENT_NAME}` }).click(),
    ]);
    expect(await page.locator('[role=status]').innerText()).toContain('Access revoked');
    expect(await page.locator('section.app').count()).toBe(0);
    expect(await page.locator('p.empty').innerText()).toBe(
      'No application holds access to your MCP servers.',
    );

    // The client: its next call is refused, and so is its refresh.
    expect(await verify(app.accessToken)).toBe(401);
    const refreshed = await tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: app.refreshToken,
      client_id: app.client.client_id,
    });
    expect(refreshed.body.error).toBe('invalid_grant');
  });
});
