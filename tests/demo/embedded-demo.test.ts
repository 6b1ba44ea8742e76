/**
 * `npm start` without a configuration file, as a newcomer runs it: the service as a process on
 * its embedded default, which also serves the demo MCP server behind the demo front at the URL
 * its banner prints (src/demo/). Through that URL, with the MCP SDK client and nothing else:
 *
 * - the 401 challenge, discovery, registration, login and consent, tools/list and tools/call;
 * - the tool rule: `team_report` for `dev:admins` (the development user), refused to the guest,
 *   decided on the body the front forwards (the SDK client sends no Mcp-* headers), and a forged
 *   `Mcp-Name` header refused;
 * - identity headers the client writes never reach the demo server;
 * - the banner lists the admin console and connected apps, and the development user is an
 *   administrator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { openSignedIn } from '../helpers/admin-console.js';
import { waitFor } from '../helpers/poll.js';
import { getFreePort, onFreePort } from '../helpers/ports.js';
import { TestOAuthProvider, userApproves, whoamiOf } from '../helpers/sdk-client.js';
import { TestUserAgent } from '../helpers/user-agent.js';

describe('the embedded default serves a protected demo MCP server', () => {
  let child: ChildProcess;
  let output = '';
  let dir: string;
  let issuer: string;
  let demoUrl: string;

  beforeAll(async () => {
    // tsx by path: the service runs in a fresh directory of its own (its ./data), as a clone.
    const tsx = pathToFileURL(path.resolve('node_modules/tsx/dist/loader.mjs')).href;
    // The service binds both ports itself: it starts again on new ones when one was taken.
    await onFreePort(async (port) => {
      const demoPort = await getFreePort();
      issuer = `http://localhost:${port}`;
      demoUrl = `http://localhost:${demoPort}/mcp`;
      dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-demo-'));
      output = '';
      const started = spawn(process.execPath, ['--import', tsx, path.resolve('src/main.ts')], {
        cwd: dir,
        env: { ...process.env, PORT: String(port), DEMO_PORT: String(demoPort) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = started;
      started.stdout!.on('data', (chunk) => (output += String(chunk)));
      started.stderr!.on('data', (chunk) => (output += String(chunk)));
      try {
        await waitFor(
          async () => {
            if (started.exitCode !== null) {
              throw new Error(`the service exited (${started.exitCode}):\n${output}`);
            }
            return output.includes('Stop with Ctrl+C');
          },
          { what: 'the service to start', timeoutMs: 30_000, detail: () => output },
        );
      } catch (error) {
        if (started.exitCode === null) {
          const exited = new Promise((resolve) => started.once('exit', resolve));
          started.kill('SIGKILL');
          await exited;
        }
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    });
  });

  afterAll(async () => {
    if (child?.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the demo URL, the admin console and connected apps', () => {
    expect(output).toContain(`Protected MCP server (demo)     ${demoUrl}`);
    expect(output).toContain(`${issuer}/admin`);
    expect(output).toContain(`${issuer}/account`);
  });

  /** The SDK client through the demo front, logged in as `user` (fresh registration). */
  async function connect(user: string, fetchFn: FetchLike = fetch): Promise<Client> {
    const provider = new TestOAuthProvider();
    const transport = () =>
      new StreamableHTTPClientTransport(new URL(demoUrl), {
        authProvider: provider,
        fetch: fetchFn,
      });
    const first = new Client({ name: 'demo-test', version: '1.0.0' });
    await expect(first.connect(transport())).rejects.toBeInstanceOf(UnauthorizedError);
    const approved = await userApproves(new TestUserAgent(), provider.authorizationUrl!, user);
    await transport().finishAuth(approved.url.searchParams.get('code')!);
    const client = new Client({ name: 'demo-test', version: '1.0.0' });
    await client.connect(transport());
    return client;
  }

  it('answers a tokenless request with the 401 challenge, as Traefik relays it', async () => {
    const response = await fetch(demoUrl, { method: 'POST', body: '{}' });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${new URL(demoUrl).origin}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"`,
    );
  });

  it('lets the development user in and runs every tool, the restricted one included', async () => {
    // Identity headers the client writes itself are replaced by the gateway's.
    const forging: FetchLike = (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set('x-auth-user-id', 'forged');
      return fetch(url, { ...init, headers });
    };
    const client = await connect('dev@example.com', forging);
    try {
      const tools = await client.listTools();
      expect(tools.tools.map((tool) => tool.name).sort()).toEqual([
        'add',
        'echo',
        'team_report',
        'whoami',
      ]);
      expect(await whoamiOf(client)).toMatchObject({
        user: 'dev:dev@example.com',
        groups: 'dev:admins',
        scopes: 'mcp:tools',
      });
      const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
      expect(sum.content).toEqual([{ type: 'text', text: '5' }]);
      const report = await client.callTool({ name: 'team_report', arguments: {} });
      expect(JSON.stringify(report.content)).toContain('nominal');
    } finally {
      await client.close();
    }
  });

  it('refuses the restricted tool to the guest, deciding on the forwarded body', async () => {
    const client = await connect('guest@example.com');
    try {
      expect(await whoamiOf(client)).toMatchObject({ user: 'dev:guest@example.com' });
      await expect(client.callTool({ name: 'team_report', arguments: {} })).rejects.toThrow(
        /you may not call the tool/,
      );
    } finally {
      await client.close();
    }
  });

  it('refuses a forged Mcp-Name that disagrees with the body', async () => {
    const smuggling: FetchLike = (url, init) => {
      const headers = new Headers(init?.headers);
      if (typeof init?.body === 'string' && init.body.includes('team_report')) {
        headers.set('mcp-method', 'tools/call');
        headers.set('mcp-name', 'echo');
      }
      return fetch(url, { ...init, headers });
    };
    const client = await connect('guest@example.com', smuggling);
    try {
      await expect(client.callTool({ name: 'team_report', arguments: {} })).rejects.toThrow(
        /do not match the request body/,
      );
    } finally {
      await client.close();
    }
  });

  it('makes the development user an administrator', async () => {
    const agent = new TestUserAgent();
    const page = await openSignedIn(agent, new URL('/admin', issuer), 'dev@example.com', {
      reopen: true,
    });
    expect(page.status).toBe(200);
    expect(page.body).toContain('Signed in as');
  });
});
