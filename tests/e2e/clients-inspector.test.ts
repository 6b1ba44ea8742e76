/**
 * The MCP Inspector 2.12.0 CLI (`mcp-inspector --cli <MCP URL> --method …`, one process per
 * call, as a script or an agent uses it) against the product as deployed: the real Traefik
 * from the shipped files in front of an SDK MCP server, the gateway behind it on both hosts
 * (the issuer is the auth host through Traefik). The CLI prints `Please navigate to: <URL>` on
 * stderr; the person's steps (development login, consent) are done in real Chromium, whose last
 * redirect goes to the CLI's loopback callback (default `http://127.0.0.1:6276/oauth/callback`).
 *
 * - Without a terminal the CLI refuses to sign in unless `MCP_AUTO_OPEN_ENABLED=true`.
 * - Discovery and registration (DCR; CIMD with `--client-metadata-url`, the document served
 *   locally under `registration.cimd.allowHosts`) from the MCP URL alone, login, consent,
 *   tools/list and tools/call.
 * - With the file secret store (`MCP_INSPECTOR_SECRET_STORE=file`) a later run finds its
 *   tokens; once the gateway refuses the access token (`tokens.accessTokenTtl: 5` here), that
 *   run refreshes by itself. After the user revokes it on /account, the next run's refresh is
 *   refused and it asks the person again for the same client.
 * - With the memory secret store (what the CLI falls back to when there is no OS keychain, e.g.
 *   no D-Bus secret service, and no store was chosen) every run asks the person again, and the
 *   consent page says they approved this application before: asked again because its code goes
 *   to loopback (RFC 8252 §8.6).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BrowserContext } from 'playwright-core';
import { describeWithBinary } from '../helpers/binaries.js';
import {
  authorizeInBrowser,
  revokeOnAccountPage,
  type BrowserAuthorization,
} from '../helpers/chromium.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import type { RunningGateway } from '../helpers/gateway.js';
import { OutputWatch } from '../helpers/output-watch.js';
import { eventually } from '../helpers/poll.js';
import { getFreePort } from '../helpers/ports.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { grantCount, type TokenGrant } from '../helpers/token-grants.js';
import type { RunningTraefik } from '../helpers/traefik.js';
import { startClientStack, type ClientStack } from '../helpers/client-stack.js';

const INSPECTOR = 'node_modules/.bin/mcp-inspector';
/** What the CLI prints on stderr when the person has to sign in. */
const SIGN_IN_PROMPT = /Please navigate to: (\S+)/;
const DEFAULT_CALLBACK = 'http://127.0.0.1:6276/oauth/callback';
const USER = 'alice@example.com';
const LOOPBACK_WARNING = /receives the authorization on your own computer/;
const APPROVED_BEFORE = /^You approved this application before\. It is asked again because/;

/** One finished CLI run. */
interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The sign-in the person did in the browser, if the run asked for one. */
  person: BrowserAuthorization | undefined;
  /** The authorization URL it printed, if any. */
  request: URL | undefined;
}

describeWithBinary(INSPECTOR, 'MCP Inspector 2.12.0 CLI', () =>
  describeWithBinary('traefik', 'against the gateway behind the real Traefik', () =>
    describeWithBinary('chromium', 'with the person in Chromium', () => {
      let stack: ClientStack;
      let gw: RunningGateway;
      let traefik: RunningTraefik;
      let mcpUrl: string;
      let issuer: string;
      let context: BrowserContext;
      let grants: TokenGrant[];
      let ca: TestCa;
      let cimd: CimdServer;
      let cimdCallback: string;
      const homes: string[] = [];

      beforeAll(async () => {
        ca = await createTestCa();
        cimdCallback = `http://127.0.0.1:${await getFreePort()}/oauth/callback`;
        cimd = await startCimdServer(ca, 'Inspector (published)', [cimdCallback]);
        stack = await startClientStack(() => ({
          login: { dev: { users: [USER] } },
          // Expired between two runs of the CLI without a long wait.
          tokens: { accessTokenTtl: 5 },
          verify: { clockSkew: 0 },
          tls: { caFiles: [ca.caFile] },
          registration: { cimd: { allowHosts: [cimd.host] } },
        }));
        ({ gw, traefik, mcpUrl, grants, context } = stack);
        issuer = gw.config.issuer;
      });

      afterAll(async () => {
        await stack?.stop();
        await cimd?.stop();
        await ca?.cleanup();
        for (const home of homes) await rm(home, { recursive: true, force: true });
      });

      const securityEvents = (kind: string) =>
        gw.logRecords().filter((record) => record.security_event === kind);

      /** A home directory of its own: the CLI keeps its registration and tokens under it. */
      async function newHome(): Promise<string> {
        const home = await mkdtemp(path.join(tmpdir(), 'mcpgw-inspector-'));
        homes.push(home);
        return home;
      }

      /**
       * Runs `mcp-inspector --cli <MCP URL> ...args` without a terminal; when it prints a sign-in
       * URL, the person signs in and consents in the browser. `BROWSER=/bin/true`: the CLI's
       * opener (xdg-open) "succeeds" without opening anything.
       */
      async function inspect(
        home: string,
        args: string[],
        env: Record<string, string> = {},
        callback = DEFAULT_CALLBACK,
      ): Promise<Run> {
        const child = spawn(INSPECTOR, ['--cli', mcpUrl, ...args], {
          env: {
            PATH: process.env.PATH,
            HOME: home,
            BROWSER: '/bin/true',
            MCP_AUTO_OPEN_ENABLED: 'true',
            ...env,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const stdout = new OutputWatch(child.stdout);
        const stderr = new OutputWatch(child.stderr);
        const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
        const kill = setTimeout(() => child.kill('SIGKILL'), 45_000);
        try {
          // Undefined when the run ends without asking.
          const printed = await stderr.waitFor(SIGN_IN_PROMPT, 40_000).then(
            (match) => new URL(match[1]!),
            () => undefined,
          );
          const redirect = new URL(callback);
          const person = printed
            ? await authorizeInBrowser(context, printed, {
                isCallback: (url) => url.origin === redirect.origin,
              })
            : undefined;
          const code = await exited;
          return { code, stdout: stdout.text, stderr: stderr.text, person, request: printed };
        } finally {
          clearTimeout(kill);
          // A failed step leaves the CLI waiting for its callback: it must not outlive the test.
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
      }

      describe('with the file secret store (tokens kept between runs)', () => {
        let home: string;
        let callback: string;
        let clientId: string;
        const run = (args: string[]) =>
          inspect(
            home,
            [...args, '--callback-url', callback],
            {
              MCP_INSPECTOR_SECRET_STORE: 'file',
            },
            callback,
          );

        beforeAll(async () => {
          home = await newHome();
          callback = `http://127.0.0.1:${await getFreePort()}/oauth/callback`;
        });

        it('refuses to sign in without a terminal unless MCP_AUTO_OPEN_ENABLED=true', async () => {
          const refused = await inspect(await newHome(), ['--method', 'tools/list'], {
            MCP_AUTO_OPEN_ENABLED: '',
            MCP_INSPECTOR_SECRET_STORE: 'memory',
          });
          expect(refused.code).not.toBe(0);
          expect(refused.request).toBeUndefined();
          expect(refused.stderr).toContain(
            'Interactive OAuth requires a TTY on stdin or stderr (or MCP_AUTO_OPEN_ENABLED=true)',
          );
        });

        it('signs in from the MCP URL alone (discovery, DCR, login and consent in the browser) and lists tools', async () => {
          const first = await run(['--method', 'tools/list']);
          const request = first.request!;
          expect(request).toBeDefined();
          expect(`${request.origin}${request.pathname}`).toBe(`${issuer}/authorize`);
          clientId = request.searchParams.get('client_id')!;
          expect(clientId).toMatch(/^dcr_/);
          expect(Object.fromEntries(request.searchParams)).toMatchObject({
            response_type: 'code',
            redirect_uri: callback,
            code_challenge_method: 'S256',
            resource: mcpUrl,
            scope: 'mcp:tools offline_access',
            prompt: 'consent',
          });
          expect(securityEvents('client_registered')).toEqual([
            expect.objectContaining({ clientId, clientName: 'MCP Inspector' }),
          ]);
          expect(first.person?.signedIn).toBe(true);
          expect(first.person?.consent?.details).toEqual({
            Application: 'MCP Inspector',
            'Client ID': clientId,
            'Redirects to': new URL(callback).host,
            'Signed in as': USER,
          });
          expect(first.person?.consent?.warnings).toEqual([
            expect.stringMatching(LOOPBACK_WARNING),
          ]);
          expect(first.person?.callback.searchParams.get('iss')).toBe(issuer);

          expect(first.code).toBe(0);
          expect(first.stderr).toContain('Authorization complete.');
          const listed = JSON.parse(first.stdout) as { tools: { name: string }[] };
          expect(listed.tools.map((tool) => tool.name).sort()).toEqual(['echo', 'whoami']);
          expect(grantCount(grants, clientId, 'authorization_code')).toBe(1);

          // Where it found the authorization server: the PRM through Traefik.
          const state = JSON.parse(
            await readFile(path.join(home, '.mcp-inspector/storage/oauth.json'), 'utf8'),
          ) as { servers: Record<string, { discoveryState: Record<string, unknown> }> };
          expect(state.servers[mcpUrl]?.discoveryState).toMatchObject({
            authorizationServerUrl: issuer,
            resourceMetadataUrl: `${traefik.url}/.well-known/oauth-protected-resource/mcp`,
          });
        });

        it('refreshes by itself in a later run once the gateway refuses its access token', async () => {
          const token = grants.filter((grant) => grant.clientId === clientId).at(-1)!.accessToken!;
          const refused = async () =>
            (
              await fetch(mcpUrl, {
                method: 'POST',
                headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
                body: '{}',
              })
            ).status === 401;
          expect(await eventually(refused, 10_000, 200)).toBe(true);

          const refreshes = grantCount(grants, clientId, 'refresh_token');
          const later = await run(['--method', 'tools/call', '--tool-name', 'whoami']);
          expect(later.request).toBeUndefined();
          expect(later.code).toBe(0);
          expect(grantCount(grants, clientId, 'refresh_token')).toBeGreaterThan(refreshes);
          expect(grantCount(grants, clientId, 'authorization_code')).toBe(1);
          const result = JSON.parse(later.stdout) as { content: { text: string }[] };
          expect(JSON.parse(result.content[0]!.text)).toMatchObject({
            'x-auth-client-id': clientId,
            'x-auth-user-id': `dev:${USER}`,
            authorization: '',
          });
        });

        it('after the user revokes it on /account: the next run’s refresh is refused and it asks the person again for the same client', async () => {
          await revokeOnAccountPage(context, issuer, clientId);
          const next = await run([
            '--method',
            'tools/call',
            '--tool-name',
            'echo',
            '--tool-arg',
            'text=after revoke',
          ]);
          expect(next.stderr).toContain(
            '[mcp-sdk] OAuth "invalid_grant" — invalidating the stored tokens and retrying authorization.',
          );
          expect(securityEvents('oauth_error')).toContainEqual(
            expect.objectContaining({
              clientId,
              grantType: 'refresh_token',
              error: 'invalid_grant',
            }),
          );
          expect(next.request?.searchParams.get('client_id')).toBe(clientId);
          expect(next.person?.signedIn).toBe(false);
          expect(next.person?.consent?.details['Client ID']).toBe(clientId);
          expect(next.code).toBe(0);
          expect(JSON.parse(next.stdout)).toEqual({
            content: [{ type: 'text', text: 'after revoke' }],
          });
        });
      });

      describe('with the memory secret store (its fallback without an OS keychain)', () => {
        // Chosen explicitly: on a desktop with a keyring the CLI would use (and fill) that.
        const memory = { MCP_INSPECTOR_SECRET_STORE: 'memory' };

        it('keeps no tokens: every run asks the person again, and the consent page says why', async () => {
          const home = await newHome();
          const first = await inspect(home, ['--method', 'tools/list'], memory);
          expect(first.request?.searchParams.get('redirect_uri')).toBe(DEFAULT_CALLBACK);
          expect(first.code).toBe(0);
          const clientId = first.request!.searchParams.get('client_id')!;
          expect(first.person?.consent?.warnings).toEqual([
            expect.stringMatching(LOOPBACK_WARNING),
          ]);

          // Its registration is kept (oauth.json), its tokens are not.
          const second = await inspect(home, ['--method', 'tools/list'], memory);
          expect(second.request?.searchParams.get('client_id')).toBe(clientId);
          expect(second.person?.signedIn).toBe(false);
          // Approved a moment ago, and still asked: the code goes to loopback (RFC 8252 §8.6).
          expect(second.person?.consent?.warnings).toEqual([
            expect.stringMatching(APPROVED_BEFORE),
            expect.stringMatching(LOOPBACK_WARNING),
          ]);
          expect(second.code).toBe(0);
          expect(grantCount(grants, clientId, 'authorization_code')).toBe(2);
        });
      });

      describe('with a Client ID Metadata Document (--client-metadata-url)', () => {
        it('signs in without registering: the gateway fetches the document from an allowed host', async () => {
          const registered = securityEvents('client_registered').length;
          const run = await inspect(
            await newHome(),
            [
              '--method',
              'tools/call',
              '--tool-name',
              'whoami',
              '--client-metadata-url',
              cimd.clientId,
              '--callback-url',
              cimdCallback,
            ],
            { MCP_INSPECTOR_SECRET_STORE: 'memory' },
            cimdCallback,
          );
          expect(run.request?.searchParams.get('client_id')).toBe(cimd.clientId);
          expect(run.person?.consent?.details).toMatchObject({
            Application: 'Inspector (published)',
            'Published by': `${cimd.host} (verified client metadata document)`,
          });
          expect(run.code).toBe(0);
          const result = JSON.parse(run.stdout) as { content: { text: string }[] };
          expect(JSON.parse(result.content[0]!.text)).toMatchObject({
            'x-auth-client-id': cimd.clientId,
          });
          expect(securityEvents('client_registered')).toHaveLength(registered);
        });
      });
    }),
  ),
);
