/**
 * The login and consent pages in a real browser: headless Chromium (driven by playwright-core)
 * opens an authorization URL, signs in with the development login, reads the consent page and
 * answers it, and is sent to the client's loopback redirect URI, where nothing listens: the
 * test reads the URL of the browser's request there. (A Playwright route cannot answer it:
 * routes are not called for the targets of redirects.) The pages have no script, so
 * tests/helpers/user-agent.ts walks the same flow without a browser; this suite checks what
 * only a browser does: rendering, form submission, following redirects, and obeying
 * `frame-ancestors`.
 */
import { readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from '@jest/globals';
import escapeHtml from 'escape-html';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext, Frame, Page, Response } from 'playwright-core';
import { describeWithBinary } from '../helpers/binaries.js';
import { launchChromium } from '../helpers/chromium.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  LOOPBACK_REDIRECT,
  pkcePair,
  registerClient,
  tokenRequest,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';

const RESOURCE = 'http://localhost:3999/mcp';
/** Markup characters in the name: the page must show them as text. */
const CLIENT_NAME = 'Browser <E2E> & Co client';
const USER = 'alice@example.com';
const REDIRECT_ORIGIN = new URL(LOOPBACK_REDIRECT).origin;
const SCREENSHOT = '/tmp/mcpgw-consent.png';

/** `/interaction/<uid>`: where oidc-provider sends the browser for a prompt (here: consent). */
const isInteractionPage = (url: URL) => /^\/interaction\/[^/]+$/.test(url.pathname);

interface ConsentFlow {
  page: Page;
  client: RegisteredClient;
  verifier: string;
  state: string;
  /** The consent page's URL and the response that delivered it. */
  consentUrl: string;
  consentResponse: Response;
}

describeWithBinary('chromium', 'login and consent pages in headless Chromium', () => {
  let gw: RunningGateway;
  let browser: Browser;
  let context: BrowserContext;
  /**
   * A real server on loopback for the framing test's attacker page. Chromium's Local Network
   * Access checks block a page served from a Playwright route (it has no address, so counts
   * as public) from framing localhost at all, before the gateway is even asked.
   */
  let attacker: Server;
  let attackerPort: number;

  beforeAll(async () => {
    gw = await startGateway();
    attacker = createServer((req, res) => {
      const target = new URL(req.url ?? '/', 'http://placeholder').searchParams.get('frame') ?? '';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(
        `<!doctype html><title>Win a prize</title><h1>Click the blue button</h1>` +
          `<iframe src="${escapeHtml(target)}" width="800" height="600"></iframe>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerPort = (attacker.address() as AddressInfo).port;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (attacker ? attacker.close(resolve) : resolve(undefined)));
    await gw?.stop();
  });

  beforeEach(async () => {
    context = await browser.newContext();
  });
  afterEach(async () => {
    await context?.close();
  });

  /** Opens a fresh authorization request and signs in as alice: ends on the consent page. */
  async function reachConsent(): Promise<ConsentFlow> {
    const client = await registerClient(gw.url, { client_name: CLIENT_NAME });
    const { verifier, challenge } = pkcePair();
    const state = `state-${Math.random().toString(36).slice(2)}`;
    const page = await context.newPage();

    const login = await page.goto(
      authorizeUrl(gw.url, {
        clientId: client.client_id,
        resource: RESOURCE,
        codeChallenge: challenge,
        state,
      }).href,
    );
    expect(login?.status()).toBe(200);
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[^/]+\/login\/dev$/);
    expect(await page.title()).toBe('Development sign-in · MCP Gateway');
    expect(await page.locator('h1').innerText()).toBe('Development sign-in');
    const userButtons = page.getByRole('button', { name: /^Continue as / });
    expect(await userButtons.allInnerTexts()).toEqual([
      'Continue as alice@example.com',
      'Continue as bob@example.com',
    ]);

    const [consentResponse] = await Promise.all([
      page.waitForResponse(
        (response) =>
          response.request().method() === 'GET' && isInteractionPage(new URL(response.url())),
      ),
      page.waitForURL(isInteractionPage),
      page.getByRole('button', { name: `Continue as ${USER}`, exact: true }).click(),
    ]);
    expect(consentResponse.status()).toBe(200);
    expect(await page.title()).toBe('Authorize application · MCP Gateway');
    return { page, client, verifier, state, consentUrl: page.url(), consentResponse };
  }

  /**
   * Clicks a consent button and returns the URL of the browser's navigation to the client's
   * redirect URI (which then fails: nothing listens there).
   */
  async function answerConsent(page: Page, button: 'Allow' | 'Deny'): Promise<URL> {
    const [request] = await Promise.all([
      page.waitForRequest((request) => request.url().startsWith(`${REDIRECT_ORIGIN}/`)),
      page.getByRole('button', { name: button, exact: true }).click(),
    ]);
    expect(request.isNavigationRequest()).toBe(true);
    expect(request.frame()).toBe(page.mainFrame());
    // It is the gateway's redirect, answering the form the button submitted.
    const hops: string[] = [];
    for (let hop = request.redirectedFrom(); hop; hop = hop.redirectedFrom()) {
      hops.unshift(`${hop.method()} ${new URL(hop.url()).pathname.replace(/[^/]{16,}/g, ':id')}`);
    }
    expect(hops).toEqual(['POST /interaction/:id/confirm', 'GET /authorize/:id']);
    expect(request.redirectedFrom()?.url().startsWith(`${gw.url}/`)).toBe(true);
    return new URL(request.url());
  }

  it('logs in, shows the consent page, and redirects with a code the client can redeem', async () => {
    const { page, client, verifier, state } = await reachConsent();

    expect(await page.locator('h1').innerText()).toBe(
      `Allow ${CLIENT_NAME} to access MCP servers as you?`,
    );
    const terms = await page.locator('dl > dt').allInnerTexts();
    const values = await page.locator('dl > dd').allInnerTexts();
    expect(Object.fromEntries(terms.map((term, index) => [term, values[index]]))).toEqual({
      Application: CLIENT_NAME,
      'Client ID': client.client_id,
      'Redirects to': '127.0.0.1:8976',
      'Signed in as': USER,
    });
    const warning = await page.locator('.warn').innerText();
    expect(warning).toContain('receives the authorization on your own computer (127.0.0.1:8976)');
    expect(warning).toContain('Any program on this computer could pose as it');
    const resources = page.locator('main ul > li');
    expect(await resources.count()).toBe(1);
    expect(await resources.locator('strong').innerText()).toBe('Test MCP');
    expect(await resources.locator('code').allInnerTexts()).toEqual([RESOURCE, 'mcp:tools']);

    const redirect = await answerConsent(page, 'Allow');
    expect(`${redirect.origin}${redirect.pathname}`).toBe(LOOPBACK_REDIRECT);
    expect(redirect.searchParams.get('state')).toBe(state);
    expect(redirect.searchParams.get('iss')).toBe(gw.url);
    expect(redirect.searchParams.get('error')).toBeNull();
    const code = redirect.searchParams.get('code');
    expect(code).toEqual(expect.any(String));

    const token = await tokenRequest(gw.url, {
      grant_type: 'authorization_code',
      code: code!,
      code_verifier: verifier,
      redirect_uri: LOOPBACK_REDIRECT,
      client_id: client.client_id,
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    const claims = decodeJwt(String(token.body.access_token));
    expect(claims.aud).toBe(RESOURCE);
    expect(claims.sub).toBe(`dev:${USER}`);
    expect(claims.scope).toBe('mcp:tools');
  });

  it('sends access_denied to the redirect URI when the user clicks Deny', async () => {
    const { page, state } = await reachConsent();

    const redirect = await answerConsent(page, 'Deny');
    expect(`${redirect.origin}${redirect.pathname}`).toBe(LOOPBACK_REDIRECT);
    expect(redirect.searchParams.get('error')).toBe('access_denied');
    expect(redirect.searchParams.get('iss')).toBe(gw.url);
    expect(redirect.searchParams.get('state')).toBe(state);
    expect(redirect.searchParams.get('code')).toBeNull();
  });

  it('refuses to show the consent page inside another origin’s frame', async () => {
    const { page, consentUrl, consentResponse } = await reachConsent();
    const headers = consentResponse.headers();
    const csp = (headers['content-security-policy'] ?? '').split(';').map((part) => part.trim());
    expect(csp).toContain("frame-ancestors 'none'");
    expect(headers['x-frame-options']).toBe('DENY');

    // The attacker is on another port of localhost: a different origin but the same site, so
    // the browser sends the gateway's SameSite=Lax cookies with the frame's request and the
    // gateway answers with the consent form itself (from attacker.test it would not: no
    // cookies, and Local Network Access would block the request first).
    const attackerUrl = `http://localhost:${attackerPort}/prize?frame=${encodeURIComponent(consentUrl)}`;
    async function frameConsent() {
      const framing = await context.newPage();
      const blocked: string[] = [];
      framing.on('console', (message) => {
        if (message.type() === 'error' && message.text().includes('frame-ancestors')) {
          blocked.push(message.text());
        }
      });
      const [framedResponse] = await Promise.all([
        framing.waitForResponse((response) => response.url() === consentUrl),
        framing.goto(attackerUrl),
      ]);
      const frame = framing.frames().find((candidate) => candidate !== framing.mainFrame());
      if (!frame) throw new Error('the attacker page has no frame');
      await frame.waitForLoadState('load');
      return { frame, framedResponse, blocked };
    }
    const approveButtons = (frame: Frame) => frame.locator('button[value=approve]').count();

    const attempt = await frameConsent();
    expect(attempt.framedResponse.status()).toBe(200);
    expect(await approveButtons(attempt.frame)).toBe(0);
    expect(attempt.frame.url()).not.toBe(consentUrl);
    expect(attempt.blocked).toEqual([
      expect.stringContaining(
        `violates the following Content Security Policy directive: "frame-ancestors 'none'"`,
      ),
    ]);

    // Control: with its anti-framing headers removed, the same response does show the form in
    // the frame, so the checks above would notice a consent page that can be framed.
    await context.route(consentUrl, async (route) => {
      const response = await route.fetch();
      const stripped = { ...response.headers() };
      delete stripped['content-security-policy'];
      delete stripped['x-frame-options'];
      await route.fulfill({ response, headers: stripped });
    });
    const control = await frameConsent();
    expect(control.blocked).toEqual([]);
    expect(control.frame.url()).toBe(consentUrl);
    expect(await approveButtons(control.frame)).toBe(1);

    // The top-level consent page was never affected.
    expect(await page.locator('button[value=approve]').count()).toBe(1);
  });

  it(`saves a screenshot of the consent page to ${SCREENSHOT}`, async () => {
    await rm(SCREENSHOT, { force: true });
    const { page } = await reachConsent();
    await page.setViewportSize({ width: 900, height: 800 });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect((await stat(SCREENSHOT)).size).toBeGreaterThan(1000);
    const png = await readFile(SCREENSHOT);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  });
});
