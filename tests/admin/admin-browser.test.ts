/**
 * The admin console in real Chromium (playwright-core), end to end with real parts: the MCP SDK's
 * own client, a real Caddy `forward_auth` in front of a real Streamable HTTP MCP server made with
 * the SDK (no auth code), and the gateway's `/verify` deciding.
 *
 * Caddy routes `/mcp` to the MCP server from the start; until an administrator adds the
 * server in the browser, `/verify` knows no resource there and the proxy answers 403. Then:
 *
 * 1. the administrator (dev login, `admins.emails`) opens /admin/servers, clicks "Add an MCP
 *    server", fills the form and saves; the SDK client, given only the public URL, is challenged
 *    (401), registers, the user consents in the same browser, and tools/list and tools/call work;
 * 2. the administrator edits the server's tool rules in the browser ("other tools denied", one
 *    tool allowed) and, without a restart, the same connected client's next call of the other
 *    tool is refused with the JSON-RPC error (403) while the allowed one still works;
 * 3. bad values are refused with the problem shown on the page, and neither the Traefik
 *    directory nor the catalog in the store changes;
 * 4. a signed-in user who is not an administrator gets the 403 "Not an administrator" page;
 * 5. the user revokes the SDK client at /account (tests/account/account-browser.test.ts does the
 *    same for a configured resource with a scripted client): the client's next call through the
 *    proxy is refused by /verify and its refresh fails.
 *
 * It also takes the screenshots of docs/admin.md: into docs/screenshots/admin-*.png with
 * UPDATE_SCREENSHOTS=1, otherwise into a temporary directory (so that running the tests does
 * not change tracked files at every run).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InvalidGrantError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { parse } from 'yaml';
import { describeWithBinary } from '../helpers/binaries.js';
import { launchChromium, wordsSplitAcrossLines } from '../helpers/chromium.js';
import { startCaddy, type RunningProxy } from '../helpers/caddy.js';
import { compileSharedSchema, SHARED_SCHEMA_DIR } from '../helpers/config-files.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/netns.js';
import { tokenRequest } from '../helpers/oauth-flow.js';
import { SDK_REDIRECT_URI, TestOAuthProvider, whoamiOf } from '../helpers/sdk-client.js';
import { startStreamableServer, type StreamableServer } from '../helpers/streamable-server.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const SERVER_NAME = 'CRM tools';
const SDK_CLIENT_NAME = 'SDK end-to-end client';
const SCHEMA_FILE = path.join(SHARED_SCHEMA_DIR, 'traefik-v3-file-provider.json');
const UPDATE_SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1';
const VIEWPORT = { width: 1280, height: 900 };

/** One request the SDK client sent, and the status it got. */
interface SentRequest {
  url: string;
  method: string | undefined;
  mcpMethod: string | undefined;
  mcpName: string | undefined;
  status: number;
  wwwAuthenticate: string | null;
}

/**
 * The SDK client's fetch: names the operation in `Mcp-Method`/`Mcp-Name` (MCP 2026-07-28; SDK
 * 1.32 does not yet, and Caddy does not forward the body to /verify, so tool rules need them),
 * and records what was sent and answered.
 */
function recordingFetch(sent: SentRequest[]): FetchLike {
  return async (url, init) => {
    const headers = new Headers(init?.headers);
    let mcpMethod: string | undefined;
    let mcpName: string | undefined;
    if (typeof init?.body === 'string') {
      const message = JSON.parse(init.body) as { method?: string; params?: { name?: string } };
      mcpMethod = message.method;
      mcpName = message.params?.name;
      if (mcpMethod) headers.set('mcp-method', mcpMethod);
      if (mcpName) headers.set('mcp-name', mcpName);
    }
    const response = await fetch(url, { ...init, headers });
    sent.push({
      url: String(url),
      method: init?.method,
      mcpMethod,
      mcpName,
      status: response.status,
      wwwAuthenticate: response.headers.get('www-authenticate'),
    });
    return response;
  };
}

/** The catalog as stored (ids and records), to show a refused change left it as it was. */
async function storedCatalog(gw: RunningGateway): Promise<Record<string, unknown>> {
  const ids = (await gw.gateway.store.setMembers('servers:ids')).sort();
  const servers: Record<string, unknown> = {};
  for (const id of ids) servers[id] = await gw.gateway.store.get(`servers:server:${id}`);
  return servers;
}

/** Every file of a directory with its contents. */
async function directoryContents(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    files[name] = await readFile(path.join(dir, name), 'utf8');
  }
  return files;
}

/** Signs `page`'s browser in with the dev login from /admin; the sign-in returns to /admin. */
async function signInAt(page: Page, gwUrl: string, user: string): Promise<void> {
  await page.goto(`${gwUrl}/admin`);
  expect(await page.locator('h1').innerText()).toBe('Development sign-in');
  await Promise.all([
    page.waitForURL((url) => url.pathname === '/admin'),
    page.getByRole('button', { name: `Continue as ${user}`, exact: true }).click(),
  ]);
}

/**
 * Submits the form of `page` with the button named `button`; resolves with the status of the
 * POST's answer (303 when saved, 400/409 with the form shown again) once the page has loaded.
 */
async function submitForm(page: Page, button: string): Promise<number> {
  const [response] = await Promise.all([
    page.waitForResponse(
      (candidate) =>
        candidate.request().isNavigationRequest() && candidate.request().method() === 'POST',
    ),
    page.getByRole('button', { name: button, exact: true }).click(),
  ]);
  await page.waitForLoadState('domcontentloaded');
  return response.status();
}

describeWithBinary('chromium', 'the admin console in headless Chromium', () => {
  describeWithBinary('caddy', 'adding and editing an MCP server for the SDK client', () => {
    let gw: RunningGateway;
    let caddy: RunningProxy;
    let mcpServer: StreamableServer;
    let traefikDir: string;
    let screenshotDir: string;
    let browser: Browser;
    let aliceContext: BrowserContext;
    let page: Page;
    /** The public URL: through Caddy, as MCP clients see it. */
    let publicUrl: string;
    /** Filled by the first test, used by the next ones. */
    let serverId: string;
    const provider = new TestOAuthProvider();
    const sent: SentRequest[] = [];
    let mcpClient: Client | undefined;

    async function screenshot(name: string): Promise<void> {
      const file = path.join(screenshotDir, `admin-${name}.png`);
      await rm(file, { force: true });
      // No focus ring on the field typed in last.
      if ((await page.locator(':focus').count()) > 0) await page.locator(':focus').blur();
      await page.screenshot({ path: file, fullPage: true });
      expect((await stat(file)).size).toBeGreaterThan(1000);
      expect((await readFile(file)).subarray(1, 4).toString('latin1')).toBe('PNG');
    }

    /** The run-time server's row on /admin/servers. */
    const serverRow = () => page.locator(`tr.server.managed[data-server="${serverId}"]`);

    beforeAll(async () => {
      traefikDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-traefik-'));
      if (UPDATE_SCREENSHOTS) {
        screenshotDir = path.resolve('docs/screenshots');
        await mkdir(screenshotDir, { recursive: true });
      } else {
        screenshotDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-admin-screenshots-'));
      }
      mcpServer = await startStreamableServer();
      // The route exists before the server is added: the proxy asks /verify, which refuses.
      ({ proxy: caddy, gw } = await startGatewayBehind(
        (authUrl) => startCaddy({ authUrl, routes: [{ path: '/mcp', upstream: mcpServer.url }] }),
        () => () => ({
          admins: { emails: [ALICE] },
          managedServers: {
            traefik: {
              directory: traefikDir,
              ...(existsSync(SCHEMA_FILE) ? { schemaFile: SCHEMA_FILE } : {}),
            },
          },
        }),
      ));
      publicUrl = `${caddy.url}/mcp`;
      browser = await launchChromium();
      aliceContext = await browser.newContext({ viewport: VIEWPORT });
      aliceContext.setDefaultTimeout(10_000);
      page = await aliceContext.newPage();
    });
    afterAll(async () => {
      await mcpClient?.close().catch(() => undefined);
      await aliceContext?.close();
      await browser?.close();
      await caddy?.stop();
      await gw?.stop();
      await mcpServer?.stop();
      await rm(traefikDir, { recursive: true, force: true });
      if (!UPDATE_SCREENSHOTS && screenshotDir) {
        await rm(screenshotDir, { recursive: true, force: true });
      }
    });

    it('an administrator adds a server in the browser; the SDK client then gets in from its URL alone', async () => {
      // Before: no resource at this URL, so the proxy's forward_auth gets 403 from /verify.
      const before = await fetch(publicUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(before.status).toBe(403);
      expect(mcpServer.seenRequests).toHaveLength(0);

      await signInAt(page, gw.url, ALICE);
      expect(await page.locator('h1').innerText()).toBe('Admin console');
      await Promise.all([
        page.waitForURL((url) => url.pathname === '/admin/servers'),
        page.locator('nav.admin').getByRole('link', { name: 'MCP servers' }).click(),
      ]);
      expect(await page.locator('tr.server.managed').count()).toBe(0);
      await Promise.all([
        page.waitForURL((url) => url.pathname === '/admin/servers/new'),
        page.getByRole('link', { name: 'Add an MCP server' }).click(),
      ]);
      expect(await page.locator('h1').innerText()).toBe('Add an MCP server');
      await page.locator('#name').fill(SERVER_NAME);
      await page.locator('#url').fill(publicUrl);
      await page.locator('#upstream').fill(mcpServer.url);
      await page.locator('#scopes').fill('crm:read');
      await page.locator('#upstreamAuthorization').selectOption('none');
      await page.locator('#toolsDefault').selectOption('none');
      await page.locator('#rateLimitAverage').fill('50');
      await page.locator('#rateLimitBurst').fill('100');
      await page.locator('#inFlight').fill('20');
      expect(await page.locator('#crowdsec').isChecked()).toBe(true);
      await screenshot('server-add');
      await Promise.all([
        page.waitForURL((url) => url.pathname === '/admin/servers' && url.search === '?done=added'),
        page.getByRole('button', { name: 'Add server', exact: true }).click(),
      ]);
      expect(await page.locator('[role=status]').innerText()).toContain('Server added');
      const row = page.locator('tr.server.managed', { hasText: SERVER_NAME });
      expect(await row.count()).toBe(1);
      serverId = (await row.getAttribute('data-server'))!;
      expect(serverId).toMatch(/^s[0-9a-f]{10}$/);
      expect(await serverRow().locator('td.name').innerText()).toBe(SERVER_NAME);

      // Its Traefik file, valid against Traefik's published schema where a copy is available.
      const document = parse(
        await readFile(path.join(traefikDir, `mcpgw-${serverId}.yaml`), 'utf8'),
      ) as { http: { services: Record<string, unknown> } };
      expect(document.http.services[`mcpgw-${serverId}`]).toEqual({
        loadBalancer: { servers: [{ url: mcpServer.url }], passHostHeader: true },
      });
      if (existsSync(SCHEMA_FILE)) {
        const validate = compileSharedSchema('traefik-v3-file-provider.json');
        expect([validate(document), validate.errors ?? []]).toEqual([true, []]);
      } else {
        console.warn(`Schema check of the written file skipped: ${SCHEMA_FILE} not found`);
      }

      // The SDK client, from the public URL alone: challenged, it discovers and registers.
      const transport = new StreamableHTTPClientTransport(new URL(publicUrl), {
        authProvider: provider,
        fetch: recordingFetch(sent),
      });
      await expect(
        new Client({ name: 'e2e', version: '1.0.0' }).connect(transport),
      ).rejects.toThrow(UnauthorizedError);
      const challenged = sent.find((request) => request.url === publicUrl)!;
      expect(challenged.status).toBe(401);
      expect(challenged.wwwAuthenticate).toBe(
        `Bearer resource_metadata="${caddy.url}/.well-known/oauth-protected-resource/mcp", scope="crm:read"`,
      );
      const authorization = provider.authorizationUrl!;
      expect(authorization.origin).toBe(gw.url);
      expect(authorization.searchParams.get('resource')).toBe(publicUrl);

      // The user (the same browser, already signed in) consents, in a new tab; the SDK's
      // redirect URI is on loopback where nothing listens: the code is read from the browser's
      // request there (the tab, left on the browser's error page, is closed).
      const consent = await aliceContext.newPage();
      await consent.goto(authorization.href);
      expect(await consent.title()).toBe('Authorize application · MCP Gateway');
      expect(await consent.locator('main').innerText()).toContain(SERVER_NAME);
      const [redirect] = await Promise.all([
        consent.waitForRequest((request) => request.url().startsWith(`${SDK_REDIRECT_URI}?`)),
        consent.getByRole('button', { name: 'Allow', exact: true }).click(),
      ]);
      await consent.close();
      const code = new URL(redirect.url()).searchParams.get('code');
      expect(code).toEqual(expect.any(String));
      await transport.finishAuth(code!);

      mcpClient = new Client({ name: 'e2e', version: '1.0.0' });
      await mcpClient.connect(
        new StreamableHTTPClientTransport(new URL(publicUrl), {
          authProvider: provider,
          fetch: recordingFetch(sent),
        }),
      );
      const tools = await mcpClient.listTools();
      expect(tools.tools.map((tool) => tool.name).sort()).toEqual(['echo', 'whoami']);
      const identity = await whoamiOf(mcpClient);
      expect(identity).toMatchObject({
        'x-auth-user-email': ALICE,
        'x-auth-client-id': provider.clientId(),
        'x-auth-scopes': 'crm:read',
      });
      // Never the client's token: the gateway's answer blanks Authorization.
      expect(identity.authorization ?? '').toBe('');
      const echoed = await mcpClient.callTool({ name: 'echo', arguments: { text: 'hello' } });
      expect(echoed.content).toEqual([{ type: 'text', text: 'hello' }]);
    });

    it('applies a tool-rule edit made in the browser to the connected client, without restart', async () => {
      expect(mcpClient).toBeDefined();
      await page.goto(`${gw.url}/admin/servers`);
      await Promise.all([
        page.waitForURL((url) => url.pathname === `/admin/servers/${serverId}/edit`),
        serverRow().getByRole('link', { name: 'Edit' }).click(),
      ]);
      expect(await page.locator('h1').innerText()).toBe(`Edit ${SERVER_NAME}`);
      expect(await page.locator('#url').inputValue()).toBe(publicUrl);
      await page
        .locator('#toolsDefault')
        .selectOption({ label: 'Rules below; other tools denied' });
      // Caddy forwards no body to /verify: rules decided on the Mcp-* headers this client sends.
      await page.locator('#toolsFrom').selectOption('headers');
      await page.locator('#toolRules').fill('echo: {}\n');
      await screenshot('server-edit');
      await Promise.all([
        page.waitForURL((url) => url.pathname === '/admin/servers' && url.search === '?done=saved'),
        page.getByRole('button', { name: 'Save', exact: true }).click(),
      ]);
      expect(await page.locator('[role=status]').innerText()).toContain('Server saved');
      const rules = await serverRow().locator('td').nth(4).innerText();
      expect(rules).toMatch(/^default deny/);
      expect(rules).toContain('echo');
      expect(await wordsSplitAcrossLines(page, 'th, td button')).toEqual([]);
      // The actions are a cell of the row like the others (same top and height).
      const nameBox = await serverRow().locator('td.name').boundingBox();
      const actionsBox = await serverRow().locator('td.actions').boundingBox();
      expect([actionsBox?.y, actionsBox?.height]).toEqual([nameBox?.y, nameBox?.height]);
      await screenshot('servers');

      // The same client, same transport and token: whoami is now refused, echo still allowed.
      await expect(mcpClient!.callTool({ name: 'whoami', arguments: {} })).rejects.toThrow(
        /"code":-32001,"message":"Forbidden: you may not call the tool \\"whoami\\""/,
      );
      expect(sent.filter((request) => request.mcpName === 'whoami').at(-1)!.status).toBe(403);
      const echoed = await mcpClient!.callTool({ name: 'echo', arguments: { text: 'still' } });
      expect(echoed.content).toEqual([{ type: 'text', text: 'still' }]);

      // Activity: the refusal shows (each replica writes its entries in batches).
      await page.goto(`${gw.url}/admin/activity`);
      const refusal = page.locator('tr.event[data-result="refused"]', {
        has: page.locator('td.tool', { hasText: 'whoami' }),
      });
      await waitFor(
        async () => {
          if ((await refusal.count()) > 0) return true;
          await page.reload();
          return false;
        },
        10_000,
        'the refused tools/call on the activity page',
      );
      expect(await refusal.first().locator('td.resource').innerText()).toBe(publicUrl);
      expect(await refusal.first().locator('td.email').innerText()).toBe(ALICE);
      expect(await wordsSplitAcrossLines(page, 'th')).toEqual([]);
      await screenshot('activity');

      // Clients: the SDK client is listed.
      await page.goto(`${gw.url}/admin/clients`);
      const clientRow = page.locator(`tr[data-client="${provider.clientId()}"]`);
      expect(await clientRow.locator('td.name').innerText()).toBe(SDK_CLIENT_NAME);
      expect(await wordsSplitAcrossLines(page, 'th, td button, td.active')).toEqual([]);
      await screenshot('clients');

      await page.goto(`${gw.url}/admin`);
      expect(await page.locator('main').innerText()).toContain('2 configured');
      await screenshot('overview');

      // Diagnostics of the added server, through the proxy: every step passes.
      await page.goto(`${gw.url}/admin/servers`);
      await Promise.all([
        page.waitForURL((url) => url.pathname === '/admin/servers/diagnostics'),
        serverRow().getByRole('link', { name: 'Diagnose' }).click(),
      ]);
      expect(await page.locator('h1').innerText()).toBe(`Diagnostics: ${SERVER_NAME}`);
      expect(await page.locator('dd.summary').getAttribute('data-verdict')).toBe('ok');
      expect(await page.locator('section.step').count()).toBe(3);
      expect(await page.locator('section.step[data-verdict="ok"]').count()).toBe(3);
      await screenshot('diagnostics');
    });

    it('refuses bad values with the problem on the page, changing no Traefik file and not the catalog', async () => {
      const filesBefore = await directoryContents(traefikDir);
      const catalogBefore = await storedCatalog(gw);
      expect(Object.keys(catalogBefore)).toEqual([serverId]);

      // A URL the browser and the gateway accept, but Traefik's Host() rule cannot express.
      await page.goto(`${gw.url}/admin/servers/new`);
      await page.locator('#name').fill('IPv6 server');
      await page.locator('#url').fill('http://[::1]:4003/mcp');
      await page.locator('#upstream').fill(mcpServer.url);
      expect(await submitForm(page, 'Add server')).toBe(400);
      const alert = page.locator('[role=alert]');
      expect(await alert.innerText()).toContain('Not saved.');
      expect(await alert.innerText()).toMatch(/Traefik: .*rule/);
      // What was typed is shown again.
      expect(await page.locator('#url').inputValue()).toBe('http://[::1]:4003/mcp');
      await screenshot('server-refused');

      // On the edit form: a burst smaller than the average (numbers the browser accepts).
      await page.goto(`${gw.url}/admin/servers/${serverId}/edit`);
      await page.locator('#rateLimitAverage').fill('200');
      await page.locator('#rateLimitBurst').fill('100');
      expect(await submitForm(page, 'Save')).toBe(400);
      expect(await alert.innerText()).toContain('rateLimitBurst: must be at least the average');

      // A rate limit "lots": the number input cannot hold it, so the page is changed to send it.
      await page.goto(`${gw.url}/admin/servers/${serverId}/edit`);
      await page.locator('#rateLimitAverage').evaluate((input) => {
        input.setAttribute('type', 'text');
      });
      await page.locator('#rateLimitAverage').fill('lots');
      expect(await submitForm(page, 'Save')).toBe(400);
      expect(await alert.innerText()).toMatch(/rateLimitAverage: .*number/i);
      // Sent back as typed (a number input then shows it empty: the problem above says why).
      expect(await page.locator('#rateLimitAverage').getAttribute('value')).toBe('lots');

      expect(await directoryContents(traefikDir)).toEqual(filesBefore);
      expect(await storedCatalog(gw)).toEqual(catalogBefore);
      // And in effect as before: echo allowed, other tools denied.
      const echoed = await mcpClient!.callTool({ name: 'echo', arguments: { text: 'unchanged' } });
      expect(echoed.content).toEqual([{ type: 'text', text: 'unchanged' }]);
    });

    it('refuses the console to a signed-in user who is not an administrator (403)', async () => {
      const bobContext = await browser.newContext({ viewport: VIEWPORT });
      try {
        const bobsPage = await bobContext.newPage();
        await bobsPage.goto(`${gw.url}/admin`);
        const [refused] = await Promise.all([
          bobsPage.waitForResponse(
            (response) =>
              new URL(response.url()).pathname === '/admin' &&
              response.request().isNavigationRequest() &&
              response.status() !== 303,
          ),
          bobsPage.getByRole('button', { name: `Continue as ${BOB}`, exact: true }).click(),
        ]);
        expect(refused.status()).toBe(403);
        await bobsPage.waitForLoadState('domcontentloaded');
        expect(await bobsPage.locator('h1').innerText()).toBe('Not an administrator');
        expect(await bobsPage.locator('.error').innerText()).toContain(
          'you are not an administrator of this MCP Gateway',
        );
        for (const pathname of ['/admin/servers', '/admin/servers/new', `/admin/clients`]) {
          const response = await bobsPage.goto(`${gw.url}${pathname}`);
          expect([pathname, response?.status()]).toEqual([pathname, 403]);
        }
        const response = await bobsPage.goto(`${gw.url}/admin/servers/${serverId}/edit`);
        expect(response?.status()).toBe(403);
        expect(await bobsPage.content()).not.toContain(publicUrl);
      } finally {
        await bobContext.close();
      }
    });

    it('a user revokes the SDK client at /account: /verify refuses its next call and its refresh fails', async () => {
      const tokens = { ...provider.savedTokens! };
      expect(tokens.refresh_token).toEqual(expect.any(String));
      await page.goto(`${gw.url}/account`);
      const section = page.locator('section.app', { hasText: SDK_CLIENT_NAME });
      expect(await section.locator('h2').innerText()).toBe(SDK_CLIENT_NAME);
      expect(await section.innerText()).toContain(publicUrl);
      await Promise.all([
        page.waitForURL((url) => url.pathname === '/account' && url.search === '?done=revoked'),
        section.getByRole('button', { name: `Revoke ${SDK_CLIENT_NAME}` }).click(),
      ]);
      expect(await page.locator('[role=status]').innerText()).toContain('Access revoked');
      expect(await page.locator('section.app', { hasText: SDK_CLIENT_NAME }).count()).toBe(0);

      // Its access token, through the proxy: /verify refuses it, the MCP server never sees it.
      const seen = mcpServer.seenRequests.length;
      const call = await fetch(publicUrl, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${tokens.access_token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-method': 'tools/call',
          'mcp-name': 'echo',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 9,
          method: 'tools/call',
          params: { name: 'echo', arguments: { text: 'after revoke' } },
        }),
      });
      expect(call.status).toBe(401);
      expect(call.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
      expect(mcpServer.seenRequests).toHaveLength(seen);
      // Its refresh token: refused.
      const refreshed = await tokenRequest(gw.url, {
        grant_type: 'refresh_token',
        refresh_token: tokens.refresh_token!,
        client_id: provider.clientId(),
      });
      expect(refreshed.body.error).toBe('invalid_grant');
      // The SDK client itself: its call is refused (401), and its own refresh fails.
      const mark = sent.length;
      await expect(
        mcpClient!.callTool({ name: 'echo', arguments: { text: 'after revoke' } }),
      ).rejects.toThrow(InvalidGrantError);
      // (between the two, the SDK reads the metadata again)
      const after = sent.slice(mark);
      expect(after[0]).toMatchObject({ url: publicUrl, mcpName: 'echo', status: 401 });
      expect(after.at(-1)).toMatchObject({ url: `${gw.url}/token`, status: 400 });
      expect(mcpServer.seenRequests).toHaveLength(seen);
    });
  });
});
