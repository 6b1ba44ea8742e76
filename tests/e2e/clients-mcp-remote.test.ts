/**
 * mcp-remote 0.15.1 (npm), the stdio bridge a desktop MCP client runs for a remote server,
 * against the product as deployed: the real Traefik from the shipped files in front of an SDK
 * MCP server, the gateway behind it on both hosts (the issuer is the auth host through
 * Traefik). The desktop client is the SDK's `Client` over `StdioClientTransport`, running
 * `mcp-remote <MCP URL> <callback port>` with only the MCP URL to go on; the person's steps
 * (development login, consent) are done in real Chromium, from the URL mcp-remote prints on
 * stderr to its `http://localhost:PORT/oauth/callback`.
 *
 * - Discovery and registration from the MCP URL alone (DCR; CIMD with `--client-metadata-url`,
 *   the document served locally under `registration.cimd.allowHosts`), login, consent (shown
 *   at every authorization of a loopback client), code exchange, tools/list and tools/call.
 * - Refresh without the person: mcp-remote renews an access token 60 s before it expires, so
 *   with `tokens.accessTokenTtl: 65` it refreshes 5 s after signing in.
 * - The user revokes it on /account: the next call's refresh is refused, mcp-remote prints a
 *   new sign-in URL for the same client and holds the call; once the person consents again in
 *   the browser, the call completes. An administrator revokes it (its registration deleted):
 *   it registers again by itself and asks the person to consent to the new client.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { BrowserContext } from 'playwright-core';
import { describeWithBinary } from '../helpers/binaries.js';
import {
  authorizeInBrowser,
  revokeInAdminConsole,
  revokeOnAccountPage,
} from '../helpers/chromium.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import type { RunningGateway } from '../helpers/gateway.js';
import { OutputWatch } from '../helpers/output-watch.js';
import { eventually } from '../helpers/poll.js';
import { getFreePort } from '../helpers/ports.js';
import { whoamiOf } from '../helpers/sdk-client.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { grantCount, type TokenGrant } from '../helpers/token-grants.js';
import { startClientStack, type ClientStack } from '../helpers/client-stack.js';

const MCP_REMOTE = 'node_modules/.bin/mcp-remote';
/** What mcp-remote prints on stderr when the person has to sign in. */
const SIGN_IN_PROMPT = /Please authorize this client by visiting:\n(\S+)\n/;
/** What it prints once its callback listener for a sign-in is up. */
const LISTENING = /This instance is running the sign-in for this server \(callback port \d+\)/;
const USER = 'alice@example.com';
/** mcp-remote renews an access token this long before it expires (TOKEN_EXPIRY_MARGIN_MS). */
const RENEWAL_MARGIN_MS = 60_000;
const LOOPBACK_WARNING = /receives the authorization on your own computer/;

/** One mcp-remote process under a desktop client, with its config dir and its stderr. */
interface Bridge {
  client: Client;
  stderr: OutputWatch;
  configDir: string;
  callbackPort: number;
  /** Resolves once the client's `initialize` went through mcp-remote (after the sign-in). */
  connected: Promise<void>;
}

/**
 * Starts `mcp-remote <mcpUrl> <port> [...extra]` as the SDK's stdio client does. `BROWSER`
 * is `/bin/true`: its opener (xdg-open) "succeeds" without a browser, so mcp-remote does not
 * go on to its fallbacks (x-www-browser is Chromium on Debian); the person opens the printed
 * URL instead. Its tokens and registration go to `MCP_REMOTE_CONFIG_DIR`.
 */
async function startBridge(
  mcpUrl: string,
  options: { callbackPort?: number; extra?: string[] } = {},
): Promise<Bridge> {
  const configDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-mcp-remote-'));
  const callbackPort = options.callbackPort ?? (await getFreePort());
  const extra = options.extra ?? [];
  const transport = new StdioClientTransport({
    command: MCP_REMOTE,
    args: [mcpUrl, String(callbackPort), ...extra],
    env: { MCP_REMOTE_CONFIG_DIR: configDir, HOME: configDir, BROWSER: '/bin/true' },
    stderr: 'pipe',
  });
  const stderr = new OutputWatch(transport.stderr as Readable | null);
  const client = new Client({ name: 'desktop-app', version: '1.0.0' });
  const connected = client.connect(transport);
  connected.catch(() => undefined);
  return { client, stderr, configDir, callbackPort, connected };
}

/**
 * The sign-in URL mcp-remote printed after `from`, once its callback listener is up. In the
 * middle of a session it prints the URL (and opens the browser) first and starts the listener
 * after: a browser quicker than that would find nothing on the callback port.
 */
async function signInUrl(bridge: Bridge, from = 0): Promise<URL> {
  const prompt = await bridge.stderr.waitFor(SIGN_IN_PROMPT, 30_000, from);
  await bridge.stderr.waitFor(LISTENING, 10_000, from);
  return new URL(prompt[1]!);
}

/** The browser's arrival at this bridge's callback. */
const atCallbackOf = (bridge: Bridge) => (url: URL) =>
  url.origin === `http://localhost:${bridge.callbackPort}` && url.pathname === '/oauth/callback';

/** mcp-remote's files: `mcp-remote-v1/<hash of the server URL and options>_<name>.json`. */
async function storedFile(bridge: Bridge, name: string): Promise<Record<string, unknown>> {
  const dir = path.join(bridge.configDir, 'mcp-remote-v1');
  const file = (await readdir(dir)).find((entry) => entry.endsWith(`_${name}`));
  if (!file) throw new Error(`mcp-remote wrote no ${name} in ${dir}`);
  return JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Record<string, unknown>;
}

async function stopBridge(bridge: Bridge | undefined): Promise<void> {
  if (!bridge) return;
  await bridge.client.close();
  await rm(bridge.configDir, { recursive: true, force: true });
}

describeWithBinary(MCP_REMOTE, 'mcp-remote 0.15.1', () =>
  describeWithBinary('traefik', 'against the gateway behind the real Traefik', () =>
    describeWithBinary('chromium', 'with the person in Chromium', () => {
      let ca: TestCa;
      let cimd: CimdServer;
      let cimdCallbackPort: number;
      let stack: ClientStack;
      let gw: RunningGateway;
      let mcpUrl: string;
      let issuer: string;
      let context: BrowserContext;
      let grants: TokenGrant[];
      let bridge: Bridge;
      let clientId: string;

      beforeAll(async () => {
        ca = await createTestCa();
        // The CIMD client's callback port is fixed by its document.
        cimdCallbackPort = await getFreePort();
        cimd = await startCimdServer(ca, 'Desktop app (published)', [
          `http://localhost:${cimdCallbackPort}/oauth/callback`,
        ]);
        stack = await startClientStack(() => ({
          login: { dev: { users: [USER] } },
          // mcp-remote renews 60 s before expiry: 5 s after it signed in.
          tokens: { accessTokenTtl: 65 },
          admins: { emails: [USER] },
          tls: { caFiles: [ca.caFile] },
          registration: { cimd: { allowHosts: [cimd.host] } },
        }));
        ({ gw, mcpUrl, grants, context } = stack);
        issuer = gw.config.issuer;
      });

      afterAll(async () => {
        await stopBridge(bridge);
        await stack?.stop();
        await cimd?.stop();
        await ca?.cleanup();
      });

      const securityEvents = (kind: string) =>
        gw.logRecords().filter((record) => record.security_event === kind);

      it('signs in from the MCP URL alone (discovery, DCR, login and consent in the browser), then lists and calls tools', async () => {
        bridge = await startBridge(mcpUrl);
        const request = await signInUrl(bridge);
        expect(bridge.stderr.text).toContain(`Discovered authorization server: ${issuer}`);

        // The authorization request it built from the PRM and the auth host's metadata.
        expect(`${request.origin}${request.pathname}`).toBe(`${issuer}/authorize`);
        clientId = request.searchParams.get('client_id')!;
        expect(clientId).toMatch(/^dcr_/);
        expect(Object.fromEntries(request.searchParams)).toMatchObject({
          response_type: 'code',
          redirect_uri: `http://localhost:${bridge.callbackPort}/oauth/callback`,
          code_challenge_method: 'S256',
          resource: mcpUrl,
          // The challenge's scope plus offline_access (the metadata lists it), hence prompt=consent.
          scope: 'mcp:tools offline_access',
          prompt: 'consent',
        });
        expect(securityEvents('client_registered')).toEqual([
          expect.objectContaining({ clientId, clientName: 'MCP CLI Proxy' }),
        ]);

        const person = await authorizeInBrowser(context, request, {
          isCallback: atCallbackOf(bridge),
        });
        expect(person.signedIn).toBe(true);
        expect(person.consent?.details).toEqual({
          Application: 'MCP CLI Proxy',
          'Client ID': clientId,
          'Redirects to': `localhost:${bridge.callbackPort}`,
          'Signed in as': USER,
        });
        expect(person.consent?.warnings).toEqual([expect.stringMatching(LOOPBACK_WARNING)]);
        expect(person.consent?.resources).toEqual([`Tools ${mcpUrl} with scopes mcp:tools`]);
        expect(person.callback.searchParams.get('iss')).toBe(issuer);
        expect(person.callback.searchParams.get('state')).toBe(request.searchParams.get('state'));
        expect(person.callback.searchParams.get('code')).toEqual(expect.any(String));

        await bridge.connected;
        const tools = await bridge.client.listTools();
        expect(tools.tools.map((tool) => tool.name).sort()).toEqual(['echo', 'whoami']);
        // The MCP server learns who calls, through Traefik; never the token.
        expect(await whoamiOf(bridge.client)).toMatchObject({
          'x-auth-client-id': clientId,
          'x-auth-user-id': `dev:${USER}`,
          'x-auth-scopes': 'mcp:tools',
          authorization: '',
        });
        expect(grantCount(grants, clientId, 'authorization_code')).toBe(1);
        // What it keeps on disk: the registration and the tokens.
        expect((await storedFile(bridge, 'client_info.json')).client_id).toBe(clientId);
        expect((await storedFile(bridge, 'tokens.json')).refresh_token).toEqual(expect.any(String));
      });

      it('refreshes by itself once the access token is within 60 s of expiring, without the person', async () => {
        const before = await storedFile(bridge, 'tokens.json');
        const renewAt = Number(before.expires_at) - RENEWAL_MARGIN_MS;
        expect(await eventually(async () => Date.now() >= renewAt, 20_000, 100)).toBe(true);
        const refreshes = grantCount(grants, clientId, 'refresh_token');
        const mark = bridge.stderr.mark();

        const echoed = await bridge.client.callTool({
          name: 'echo',
          arguments: { text: 'after refresh' },
        });
        expect(echoed.content).toEqual([{ type: 'text', text: 'after refresh' }]);
        expect(grantCount(grants, clientId, 'refresh_token')).toBe(refreshes + 1);
        expect(bridge.stderr.text.slice(mark)).not.toMatch(SIGN_IN_PROMPT);
        const after = await storedFile(bridge, 'tokens.json');
        expect(after.access_token).not.toBe(before.access_token);
        // Rotated: the old refresh token is spent.
        expect(after.refresh_token).not.toBe(before.refresh_token);
      });

      it('after the user revokes it on /account: its refresh is refused, it asks the person again for the same client, and the held call completes', async () => {
        await revokeOnAccountPage(context, issuer, clientId);
        const mark = bridge.stderr.mark();
        const call = bridge.client.callTool({ name: 'echo', arguments: { text: 'after revoke' } });

        const request = await signInUrl(bridge, mark);
        expect(request.searchParams.get('client_id')).toBe(clientId);
        expect(securityEvents('oauth_error')).toContainEqual(
          expect.objectContaining({
            clientId,
            grantType: 'refresh_token',
            error: 'invalid_grant',
          }),
        );
        expect(bridge.stderr.text.slice(mark)).toContain(
          'Remote server requires authorization, completing sign-in',
        );

        // The browser's session is still there: no login, but the consent page again.
        const person = await authorizeInBrowser(context, request, {
          isCallback: atCallbackOf(bridge),
        });
        expect(person.signedIn).toBe(false);
        expect(person.consent?.details['Client ID']).toBe(clientId);
        expect((await call).content).toEqual([{ type: 'text', text: 'after revoke' }]);
        expect(bridge.stderr.text.slice(mark)).toContain('Re-authorized with the remote server');
        expect(grantCount(grants, clientId, 'authorization_code')).toBe(2);
      });

      it('after an administrator revokes the client (registration deleted): it registers again by itself and the person consents to the new client', async () => {
        await revokeInAdminConsole(context, issuer, clientId);
        const mark = bridge.stderr.mark();
        const call = bridge.client.callTool({ name: 'echo', arguments: { text: 'new client' } });

        const request = await signInUrl(bridge, mark);
        const newClientId = request.searchParams.get('client_id')!;
        expect(newClientId).toMatch(/^dcr_/);
        expect(newClientId).not.toBe(clientId);
        expect(securityEvents('oauth_error')).toContainEqual(
          expect.objectContaining({ grantType: 'refresh_token', error: 'invalid_client' }),
        );
        expect(securityEvents('client_registered').at(-1)).toMatchObject({
          clientId: newClientId,
          clientName: 'MCP CLI Proxy',
        });

        const person = await authorizeInBrowser(context, request, {
          isCallback: atCallbackOf(bridge),
        });
        expect(person.consent?.details['Client ID']).toBe(newClientId);
        expect((await call).content).toEqual([{ type: 'text', text: 'new client' }]);
        expect((await storedFile(bridge, 'client_info.json')).client_id).toBe(newClientId);
        expect(await whoamiOf(bridge.client)).toMatchObject({ 'x-auth-client-id': newClientId });
      });

      it('uses a Client ID Metadata Document with --client-metadata-url: no registration, the gateway fetches the document from an allowed host', async () => {
        const registered = securityEvents('client_registered').length;
        // The document lists the callback, so mcp-remote must listen on the port it names.
        const cimdBridge = await startBridge(mcpUrl, {
          callbackPort: cimdCallbackPort,
          extra: ['--client-metadata-url', cimd.clientId],
        });
        try {
          const request = await signInUrl(cimdBridge);
          expect(request.searchParams.get('client_id')).toBe(cimd.clientId);
          const person = await authorizeInBrowser(context, request, {
            isCallback: atCallbackOf(cimdBridge),
          });
          expect(person.consent?.details).toMatchObject({
            Application: 'Desktop app (published)',
            'Client ID': cimd.clientId,
            'Published by': `${cimd.host} (verified client metadata document)`,
          });
          await cimdBridge.connected;
          expect(await whoamiOf(cimdBridge.client)).toMatchObject({
            'x-auth-client-id': cimd.clientId,
            'x-auth-user-id': `dev:${USER}`,
          });
          expect(securityEvents('client_registered')).toHaveLength(registered);
        } finally {
          await stopBridge(cimdBridge);
        }
      });
    }),
  ),
);
