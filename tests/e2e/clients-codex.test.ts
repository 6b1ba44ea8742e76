/**
 * The Codex CLI (`@openai/codex` 0.171.0) against the gateway behind the real Traefik (issuer:
 * the auth host through Traefik; an MCP server made with the SDK behind it), as a person uses
 * it: `codex mcp add` / `codex mcp login` print the authorization URL, the person signs in and
 * consents in real Chromium, and `codex app-server` lists and calls the tools (no model: the
 * app server's `mcpServerStatus/list` and `mcpServer/tool/call`). Codex is isolated
 * (tests/helpers/codex-cli.ts): its own home, no account, and every way out trapped.
 *
 * - CIMD by default: Codex names its vendor's document (`https://chatgpt.com/oauth/codex/
 *   client.json`), which a gateway without egress cannot fetch. The person sees what an
 *   administrator must do and what to run meanwhile; Codex is never told (the gateway may not
 *   redirect to a client it does not know) and only times out.
 * - CIMD with a document the company serves: `--oauth-client-id` names a copy on a host in
 *   `registration.cimd.allowHosts`. `codex mcp logout` only forgets the tokens.
 * - DCR: `--oauth-client-registration dcr`; tools listed and called through Traefik; the token
 *   refreshed by Codex itself before it expires (`tokens.accessTokenTtl` 45 s: Codex refreshes
 *   within 30 s of expiry, sending `scope=… offline_access`, src/oauth/refresh-scope.ts), with
 *   two sessions sharing the credentials;
 *   revoked by the person on /account: the next call is refused, Codex's refresh fails, it
 *   drops its refresh token and asks for `codex mcp login`; a new login works.
 * - A gateway that does not offer CIMD: Codex registers with DCR by itself.
 */
import { createServer, type Server } from 'node:https';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { BrowserContext } from 'playwright-core';
import { describeWithBinary } from '../helpers/binaries.js';
import { authorizeInBrowser, revokeOnAccountPage } from '../helpers/chromium.js';
import {
  CODEX_AUTHORIZE_PROMPT,
  CODEX_BIN,
  CodexHome,
  textOf,
  type CodexAppServer,
} from '../helpers/codex-cli.js';
import { startEgressTrap, type EgressTrap } from '../helpers/egress-trap.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { eventually } from '../helpers/poll.js';
import { getFreePort, listenOn } from '../helpers/ports.js';
import type { StreamableServer } from '../helpers/streamable-server.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { grantTypesOf, type TokenGrant } from '../helpers/token-grants.js';
import { startTraefik } from '../helpers/traefik.js';
import { startClientStack, type ClientStack } from '../helpers/client-stack.js';

/** Codex's own Client ID Metadata Document: where 0.171.0 points by default. */
const VENDOR_DOCUMENT = 'https://chatgpt.com/oauth/codex/client.json';
/** The name the person gives the gateway's MCP server in Codex. */
const SERVER = 'gateway';
const USER = 'alice@example.com';

/** Whether a URL is Codex's loopback callback `redirectUri` (any query). */
const atCallback = (redirectUri: string) => (url: URL) =>
  `${url.origin}${url.pathname}` === redirectUri;

/** Whether this machine can fetch Codex's document itself (then the gateway could too). */
async function vendorReachable(): Promise<boolean> {
  try {
    const response = await fetch(VENDOR_DOCUMENT, { signal: AbortSignal.timeout(3_000) });
    return response.status === 200;
  } catch {
    return false;
  }
}

/**
 * A company's copy of Codex's document, over https (test CA), shaped as Codex's vendor publishes
 * it (native public client, port-less loopback redirect URIs), its id being its own URL.
 */
async function startDocumentHost(ca: TestCa) {
  const port = await getFreePort();
  const clientId = `https://localhost:${port}/oauth/codex/client.json`;
  const requests: string[] = [];
  const server: Server = createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
    requests.push(String(req.url));
    if (req.url !== '/oauth/codex/client.json') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        client_id: clientId,
        client_name: 'Codex (company copy)',
        application_type: 'native',
        redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    );
  });
  await listenOn(server as never, port);
  return {
    host: `localhost:${port}`,
    clientId,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describeWithBinary(CODEX_BIN, 'Codex CLI 0.171.0 against the gateway', () =>
  describeWithBinary('traefik', 'behind the real Traefik', () =>
    describeWithBinary('chromium', 'with the person in Chromium', () => {
      let ca: TestCa;
      let documentHost: Awaited<ReturnType<typeof startDocumentHost>>;
      let mcp: StreamableServer;
      let stack: ClientStack;
      let gw: RunningGateway;
      let mcpUrl: string;
      let grants: TokenGrant[];
      let trap: EgressTrap;
      let context: BrowserContext;
      const homes: CodexHome[] = [];
      const appServers: CodexAppServer[] = [];

      /** A fresh, isolated Codex. */
      const newCodex = async () => {
        const home = await CodexHome.create(trap);
        homes.push(home);
        return home;
      };
      const startAppServer = async (home: CodexHome) => {
        const server = await home.startAppServer();
        appServers.push(server);
        return server;
      };

      // State the DCR steps hand on, in order.
      let dcrHome: CodexHome;
      let clientId: string;
      let app: CodexAppServer;
      let threadId: string;

      beforeAll(async () => {
        ca = await createTestCa();
        documentHost = await startDocumentHost(ca);
        trap = await startEgressTrap();
        stack = await startClientStack(() => ({
          login: { dev: { users: [USER] } },
          // Codex refreshes within 30 s of expiry: a 45 s token is refreshed 15 s after it
          // was issued, and a fresh one is used as it is for 15 s.
          tokens: { accessTokenTtl: 45 },
          tls: { caFiles: [ca.caFile] },
          registration: { cimd: { allowHosts: [documentHost.host] } },
        }));
        ({ gw, mcp, mcpUrl, grants, context } = stack);
      }, 60_000);

      afterAll(async () => {
        await Promise.all(appServers.map((server) => server.stop()));
        await stack?.stop();
        await documentHost?.stop();
        await trap?.stop();
        await ca?.cleanup();
        await Promise.all(homes.map((home) => home.cleanup()));
      });

      it("chooses CIMD with its vendor's document by default; without egress the page says what to do, and Codex only times out", async () => {
        const home = await newCodex();
        dcrHome = home;
        const add = home.run(['mcp', 'add', SERVER, '--url', mcpUrl]);
        try {
          const prompt = await add.output.waitFor(CODEX_AUTHORIZE_PROMPT, 30_000);
          expect(add.output.text).toContain('Detected OAuth support. Starting OAuth flow');
          const url = new URL(prompt[1]!);
          // Discovery from the MCP URL alone: the 401 challenge, the protected resource
          // metadata and the authorization server metadata, all through Traefik.
          expect(`${url.origin}${url.pathname}`).toBe(`${gw.config.issuer}/authorize`);
          expect(Object.fromEntries(url.searchParams)).toMatchObject({
            response_type: 'code',
            client_id: VENDOR_DOCUMENT,
            code_challenge_method: 'S256',
            scope: 'mcp:tools offline_access',
            resource: mcpUrl,
          });
          expect(url.searchParams.get('redirect_uri')).toMatch(
            /^http:\/\/127\.0\.0\.1:\d+\/callback$/,
          );
          // It read both metadata documents (through Traefik, unauthenticated).
          const served = gw.logRecords().filter((line) => line.message === 'request');
          for (const path of [
            '/.well-known/oauth-protected-resource/mcp',
            '/.well-known/oauth-authorization-server',
          ]) {
            expect(served).toContainEqual(expect.objectContaining({ path, status: 200 }));
          }
          // Codex asked BROWSER to open exactly that URL.
          expect(
            await eventually(async () => (await home.browserRequests()).includes(url.href), 5_000),
          ).toBe(true);

          // The person opens it.
          const page = await context.newPage();
          try {
            const answer = await page.goto(url.href);
            const text = (await page.locator('main').innerText()).replace(/\s+/g, ' ');
            if (await vendorReachable()) {
              console.warn(
                `${VENDOR_DOCUMENT} can be fetched from this machine: the no-egress page is not checked here`,
              );
            } else {
              expect(answer?.status()).toBe(400);
              expect(await page.title()).toBe('Sign-in cannot continue · MCP Gateway');
              expect(text).toContain('invalid_client: client_id metadata document fetch failed');
              expect(text).toContain(
                `This application identifies itself with a client metadata document at ${VENDOR_DOCUMENT}, which the gateway could not fetch:`,
              );
              expect(text).toContain(
                'For an administrator: The gateway must be able to reach chatgpt.com over HTTPS (outbound port 443, with DNS).',
              );
              expect(text).toContain('registration.cimd.allowHosts');
              expect(text).toContain(
                'Meanwhile, the application can register itself with the gateway instead (dynamic client registration), if it offers that. Codex CLI: codex mcp login <server name> --oauth-client-registration dcr',
              );
              expect(
                gw
                  .logRecords()
                  .some(
                    (line) =>
                      line.security_event === 'cimd_refused' && line.error === 'invalid_client',
                  ),
              ).toBe(true);
            }
          } finally {
            await page.close();
          }
          // Nothing reaches Codex: it is still waiting for its callback.
          expect(add.output.text).not.toContain('Successfully logged in');
        } finally {
          await add.stop();
        }
        // `add` saved the server before it started the login; no credentials.
        expect(await home.config()).toContain(`[mcp_servers.${SERVER}]\nurl = "${mcpUrl}"`);
        expect(await home.credentials(SERVER)).toBeUndefined();

        // What Codex itself ends with: the app server's login, with a short timeout.
        const server = await startAppServer(home);
        const login = await server.request<{ authorizationUrl: string; loginId: string }>(
          'mcpServer/oauth/login',
          { name: SERVER, timeoutSecs: 3 },
        );
        expect(new URL(login.authorizationUrl).searchParams.get('client_id')).toBe(VENDOR_DOCUMENT);
        const completed = await server.notification(
          'mcpServer/oauthLogin/completed',
          (params) => params.loginId === login.loginId,
          20_000,
        );
        expect(completed).toMatchObject({
          name: SERVER,
          success: false,
          error: 'timed out waiting for OAuth callback',
        });
        await server.stop();
      }, 90_000);

      it('logs in with a company copy of its document (--oauth-client-id, host in registration.cimd.allowHosts), lists and calls tools; `codex mcp logout` revokes nothing', async () => {
        const home = await newCodex();
        const add = home.run([
          'mcp',
          'add',
          SERVER,
          '--url',
          mcpUrl,
          '--oauth-client-id',
          documentHost.clientId,
        ]);
        try {
          // The gateway advertises `iss` in authorization responses: the shared, port-less
          // callback (the listener's port is put in at login).
          await add.output.waitFor(/OAuth callback URL: http:\/\/127\.0\.0\.1\/callback\n/, 30_000);
          const prompt = await add.output.waitFor(CODEX_AUTHORIZE_PROMPT, 30_000);
          const url = new URL(prompt[1]!);
          expect(url.searchParams.get('client_id')).toBe(documentHost.clientId);
          const redirectUri = url.searchParams.get('redirect_uri')!;
          expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);

          const authorization = await authorizeInBrowser(context, url, {
            isCallback: atCallback(redirectUri),
          });
          expect(authorization.signedIn).toBe(true);
          expect(authorization.consent?.heading).toBe(
            'Allow Codex (company copy) to access MCP servers as you?',
          );
          expect(authorization.consent?.details).toMatchObject({
            'Client ID': documentHost.clientId,
            'Published by': `${documentHost.host} (verified client metadata document)`,
            'Signed in as': USER,
          });
          expect(authorization.callback.searchParams.get('iss')).toBe(gw.config.issuer);
          await add.output.waitFor(/Successfully logged in/, 20_000);
          expect(await add.exited).toBe(0);
        } finally {
          await add.stop();
        }
        expect(documentHost.requests).toContain('/oauth/codex/client.json');
        expect(await home.config()).toContain(
          `[mcp_servers.${SERVER}.oauth]\nclient_id = "${documentHost.clientId}"\ncallback_url = "http://127.0.0.1/callback"`,
        );
        const stored = await home.credentials(SERVER);
        expect(stored).toMatchObject({
          client_id: documentHost.clientId,
          issuer: gw.config.issuer,
          server_url: mcpUrl,
          scopes: ['mcp:tools'],
        });
        expect(stored?.refresh_token).toBeTruthy();

        const server = await startAppServer(home);
        const thread = await server.startThread();
        const status = await server.serverStatus(SERVER, thread);
        expect(status).toMatchObject({ runtimeStatus: 'connected', authStatus: 'oAuth' });
        expect(Object.keys(status.tools).sort()).toEqual(['echo', 'whoami']);
        const whoami = JSON.parse(textOf(await server.callTool(thread, SERVER, 'whoami', {})));
        expect(whoami).toMatchObject({
          'x-auth-client-id': documentHost.clientId,
          'x-auth-user-email': USER,
          'x-auth-scopes': 'mcp:tools',
        });
        await server.stop();

        // `codex mcp logout` forgets the tokens and tells the gateway nothing: the grant stays
        // until it expires or the person revokes it on /account.
        const logout = home.run(['mcp', 'logout', SERVER]);
        await logout.output.waitFor(/Removed OAuth credentials for 'gateway'\./, 20_000);
        expect(await logout.exited).toBe(0);
        expect(await home.credentials(SERVER)).toBeUndefined();
        const forgotten = await fetch(mcpUrl, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${stored!.access_token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: {
              protocolVersion: '2025-06-18',
              capabilities: {},
              clientInfo: { name: 'after-logout', version: '1' },
            },
          }),
        });
        expect(forgotten.status).toBe(200);
        await forgotten.body?.cancel();
        expect(gw.logRecords().some((line) => line.path === '/revoke')).toBe(false);
      }, 90_000);

      it("registers with DCR when told (the page's advice), then lists and calls tools through Traefik", async () => {
        const home = dcrHome;
        const login = home.run(['mcp', 'login', SERVER, '--oauth-client-registration', 'dcr']);
        let redirectUri: string;
        try {
          const prompt = await login.output.waitFor(CODEX_AUTHORIZE_PROMPT, 30_000);
          const url = new URL(prompt[1]!);
          clientId = url.searchParams.get('client_id')!;
          expect(clientId).toMatch(/^dcr_/);
          redirectUri = url.searchParams.get('redirect_uri')!;
          // What Codex registered: a native public client, its callback with this login's port.
          const registered = await gw.gateway.provider.Client.find(clientId);
          expect(registered?.metadata()).toMatchObject({
            client_name: 'Codex',
            application_type: 'native',
            redirect_uris: [redirectUri],
            token_endpoint_auth_method: 'none',
            grant_types: ['authorization_code', 'refresh_token'],
          });

          const authorization = await authorizeInBrowser(context, url, {
            isCallback: atCallback(redirectUri),
          });
          // The browser's gateway session from the previous login: consent only.
          expect(authorization.signedIn).toBe(false);
          expect(authorization.consent?.details).toMatchObject({
            Application: 'Codex',
            'Client ID': clientId,
            'Signed in as': USER,
          });
          expect(authorization.consent?.warnings.join(' ')).toContain(
            'This application receives the authorization on your own computer',
          );
          await login.output.waitFor(/Successfully logged in to MCP server 'gateway'\./, 20_000);
          expect(await login.exited).toBe(0);
        } finally {
          await login.stop();
        }
        const stored = await home.credentials(SERVER);
        expect(stored).toMatchObject({ client_id: clientId, issuer: gw.config.issuer });
        expect(stored?.refresh_token).toBeTruthy();
        // The token: an RFC 9068 JWT for the MCP server's URL, with the gateway's lifetime.
        expect(decodeProtectedHeader(stored!.access_token!).typ).toBe('at+jwt');
        const claims = decodeJwt(stored!.access_token!);
        expect(claims).toMatchObject({
          iss: gw.config.issuer,
          aud: mcpUrl,
          client_id: clientId,
          scope: 'mcp:tools',
          sub: `dev:${USER}`,
        });
        expect(claims.exp! - claims.iat!).toBe(45);
        expect(grantTypesOf(grants, clientId)).toEqual(['authorization_code']);

        app = await startAppServer(home);
        threadId = await app.startThread();
        const status = await app.serverStatus(SERVER, threadId);
        expect(status).toMatchObject({ runtimeStatus: 'connected', authStatus: 'oAuth' });
        expect(Object.keys(status.tools).sort()).toEqual(['echo', 'whoami']);
        const whoami = JSON.parse(textOf(await app.callTool(threadId, SERVER, 'whoami', {})));
        expect(whoami).toMatchObject({
          'x-auth-client-id': clientId,
          'x-auth-user-id': `dev:${USER}`,
          'x-auth-scopes': 'mcp:tools',
          // Traefik replaced the client's bearer token: the MCP server never sees it.
          authorization: '',
        });
        const echoed = await app.callTool(threadId, SERVER, 'echo', { text: 'hello from Codex' });
        expect(echoed.isError ?? false).toBe(false);
        expect(textOf(echoed)).toBe('hello from Codex');
      }, 90_000);

      it('refreshes by itself before the token expires, in two sessions at once, rotating the refresh token, without a failed call', async () => {
        const refreshes = () =>
          grantTypesOf(grants, clientId).filter((type) => type === 'refresh_token').length;
        const refreshedBefore = refreshes();
        const before = await dcrHome.credentials(SERVER);
        // A second session on the same credentials (another terminal): both reach the refresh
        // window together. Codex coordinates them, so the gateway never sees a refresh token
        // used twice (which would revoke the grant).
        const other = await startAppServer(dcrHome);
        const otherThread = await other.startThread();
        const failures: string[] = [];
        const call = async (server: CodexAppServer, thread: string) => {
          const result = await server.callTool(thread, SERVER, 'echo', { text: 'still here' });
          if (result.isError || textOf(result) !== 'still here') {
            failures.push(JSON.stringify(result));
          }
        };
        const refreshed = await eventually(
          async () => {
            await Promise.all([call(app, threadId), call(other, otherThread)]);
            return refreshes() > refreshedBefore;
          },
          60_000,
          1_000,
        );
        expect(refreshed).toBe(true);
        // Both sessions go on past the refresh.
        await Promise.all([call(app, threadId), call(other, otherThread)]);
        expect(failures).toEqual([]);
        expect(
          gw.logRecords().filter((line) => line.clientId === clientId && line.endpoint),
        ).toEqual([]);
        const after = await dcrHome.credentials(SERVER);
        expect(after?.refresh_token).toBeTruthy();
        expect(after?.refresh_token).not.toBe(before?.refresh_token);
        expect(after?.access_token).not.toBe(before?.access_token);
        expect(after?.expires_at).toBeGreaterThan(before?.expires_at ?? Infinity);
        await other.stop();
      }, 90_000);

      it('after the person revokes it on /account: refused at the next call, its refresh fails, it asks for a new login, which works', async () => {
        await revokeOnAccountPage(context, gw.config.issuer, clientId);

        // Its access token is fresh (just refreshed): /verify refuses it through Traefik, Codex
        // tries its refresh token, the gateway refuses that too, and the call ends as an error.
        const refused = await app.callTool(threadId, SERVER, 'echo', { text: 'after revoke' });
        expect(refused.isError).toBe(true);
        expect(textOf(refused)).toBe('Authentication required');
        expect(String(refused._meta?.['mcp/www_authenticate'])).toContain(
          'Bearer error="invalid_token", error_description="the token was revoked"',
        );
        const events = gw.logRecords().filter((line) => line.security_event);
        expect(events).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ security_event: 'invalid_token', reasonCode: 'revoked' }),
            expect.objectContaining({
              endpoint: 'grant.error',
              clientId,
              error: 'invalid_grant',
              grantType: 'refresh_token',
            }),
          ]),
        );
        // Codex dropped the refresh token it was refused.
        expect((await dcrHome.credentials(SERVER))?.refresh_token).toBeNull();
        expect(textOf(await app.callTool(threadId, SERVER, 'echo', { text: 'again' }))).toBe(
          'Authentication required',
        );
        await app.stop();

        // A new session: Codex says what to run.
        const fresh = await startAppServer(dcrHome);
        const thread = await fresh.startThread();
        const failed = await fresh.notification(
          'mcpServer/startupStatus/updated',
          (params) => params.threadId === thread && params.status === 'failed',
          20_000,
        );
        expect(failed).toMatchObject({ name: SERVER });
        expect(String(failed.error)).toContain(`Run \`codex mcp login ${SERVER}\``);
        await expect(fresh.callTool(thread, SERVER, 'echo', { text: 'x' })).rejects.toThrow(
          /mcpServer\/tool\/call: failed to get client/,
        );
        await fresh.stop();

        // The new login (DCR again: Codex never stores the choice) registers a new client.
        const login = dcrHome.run(['mcp', 'login', SERVER, '--oauth-client-registration', 'dcr']);
        let second: string;
        try {
          const url = new URL((await login.output.waitFor(CODEX_AUTHORIZE_PROMPT, 30_000))[1]!);
          second = url.searchParams.get('client_id')!;
          expect(second).toMatch(/^dcr_/);
          expect(second).not.toBe(clientId);
          await authorizeInBrowser(context, url, {
            isCallback: atCallback(url.searchParams.get('redirect_uri')!),
          });
          await login.output.waitFor(/Successfully logged in/, 20_000);
        } finally {
          await login.stop();
        }
        const again = await startAppServer(dcrHome);
        const whoami = JSON.parse(
          textOf(await again.callTool(await again.startThread(), SERVER, 'whoami', {})),
        );
        expect(whoami['x-auth-client-id']).toBe(second);
        await again.stop();
      }, 120_000);

      it('registers with DCR by itself where the gateway does not offer CIMD', async () => {
        const port = await getFreePort();
        const proxy = await startTraefik({
          authUrl: `http://127.0.0.1:${port}`,
          routes: [{ path: '/mcp', upstream: mcp.url }],
        });
        const url = `${proxy.url}/mcp`;
        const noCimd = await startGateway(
          () => ({
            issuer: proxy.authHostUrl,
            login: { dev: { users: [USER] } },
            resources: [{ url, name: 'Tools', scopes: ['mcp:tools'] }],
            registration: { cimd: { enabled: false } },
          }),
          { port },
        );
        const home = await newCodex();
        const add = home.run(['mcp', 'add', SERVER, '--url', url]);
        try {
          const metadata = (await (
            await fetch(`${noCimd.config.issuer}/.well-known/oauth-authorization-server`)
          ).json()) as Record<string, unknown>;
          expect(metadata.client_id_metadata_document_supported).toBeUndefined();
          const prompt = new URL((await add.output.waitFor(CODEX_AUTHORIZE_PROMPT, 30_000))[1]!);
          expect(prompt.searchParams.get('client_id')).toMatch(/^dcr_/);
          const authorization = await authorizeInBrowser(context, prompt, {
            isCallback: atCallback(prompt.searchParams.get('redirect_uri')!),
          });
          expect(authorization.consent?.details.Application).toBe('Codex');
          await add.output.waitFor(/Successfully logged in/, 20_000);
          expect(await add.exited).toBe(0);
        } finally {
          await add.stop();
          await proxy.stop();
          await noCimd.stop();
        }
      }, 90_000);

      it('tried to reach nothing but the test servers', () => {
        expect(trap.attempts).toEqual([]);
      });
    }),
  ),
);
