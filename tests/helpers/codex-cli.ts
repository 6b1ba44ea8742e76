/**
 * The Codex CLI (`@openai/codex`, pinned 0.171.0 in package.json) as a real MCP client in tests,
 * isolated and without a model:
 *
 * - its own `CODEX_HOME` (and `HOME`) in a temporary directory: `config.toml`, and MCP OAuth
 *   credentials in `.credentials.json` (`mcp_oauth_credentials_store = "file"`: never the
 *   system keyring);
 * - nothing of the test's environment but `PATH`: no API key, no account;
 * - no way out: its model provider is a closed loopback port, the apps, plugins, update check
 *   and analytics are off, and every proxy variable points at an {@link EgressTrap} (loopback
 *   exempt), which records any other destination it still tries;
 * - `BROWSER` is a script that only writes the URL down: Codex prints the authorization URL
 *   (`Authorize `NAME` by opening this URL in your browser:`), the test opens it in Chromium.
 *
 * MCP operations go through `codex app-server` (JSON-RPC 2.0 over JSON lines on stdio, without
 * the `"jsonrpc"` member; `codex app-server generate-ts` prints its schema): `initialize`,
 * `thread/start` (creates a conversation, calls no model), `mcpServerStatus/list` (the servers'
 * tools and auth state: `tools/list`), `mcpServer/tool/call` (`tools/call`),
 * `mcpServer/oauth/login`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import type { EgressTrap } from './egress-trap.js';
import { OutputWatch } from './output-watch.js';
import { eventually } from './poll.js';

export const CODEX_BIN = 'node_modules/.bin/codex';

/** What `codex mcp login` / `codex mcp add` print before they wait for the callback. */
export const CODEX_AUTHORIZE_PROMPT =
  /Authorize `[^`]+` by opening this URL in your browser:\r?\n(\S+)/;

/**
 * Everything that would reach OpenAI turned off or pointed at loopback; MCP credentials in a
 * file. (`model_provider` must name a provider: one on a port where nothing listens.)
 */
const ISOLATED_CONFIG = `# Written by tests/helpers/codex-cli.ts
model_provider = "offline"
model = "offline-model"
check_for_update_on_startup = false
mcp_oauth_credentials_store = "file"

[analytics]
enabled = false

[features]
apps = false
plugins = false
remote_plugin = false

[model_providers.offline]
name = "offline"
base_url = "http://127.0.0.1:9/v1"
wire_api = "responses"
`;

/** One MCP server's entry in `.credentials.json` (Codex's own format). */
export interface CodexCredentials {
  server_name: string;
  server_url: string;
  issuer?: string;
  client_id: string;
  access_token: string | null;
  expires_at: number | null;
  refresh_token: string | null;
  scopes: string[];
}

export interface CodexRun {
  /** stdout and stderr together, as printed. */
  output: OutputWatch;
  /** The exit code (`null` when ended by a signal). */
  exited: Promise<number | null>;
  /** SIGTERM (SIGKILL after 5 s); resolves when it has ended. */
  stop(): Promise<void>;
}

/** Kills `child` if the test worker exits first; resolves with its exit code. */
function watch(child: ChildProcess): { exited: Promise<number | null>; stop(): Promise<void> } {
  let ended = false;
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(-1));
    child.once('exit', (code) => resolve(code));
  }).finally(() => {
    ended = true;
  });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  void exited.then(() => process.removeListener('exit', killOnExit));
  return {
    exited,
    async stop() {
      if (ended) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export class CodexHome {
  private constructor(
    readonly dir: string,
    private readonly trap: EgressTrap,
  ) {}

  static async create(trap: EgressTrap): Promise<CodexHome> {
    const dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-codex-'));
    await writeFile(path.join(dir, 'config.toml'), ISOLATED_CONFIG);
    const browser = path.join(dir, 'browser.sh');
    await writeFile(browser, '#!/bin/sh\nprintf "%s\\n" "$1" >> "$CODEX_HOME/browser.log"\n');
    await chmod(browser, 0o755);
    return new CodexHome(dir, trap);
  }

  /** The whole environment Codex runs with. */
  env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: this.dir,
      CODEX_HOME: this.dir,
      BROWSER: path.join(this.dir, 'browser.sh'),
      ...this.trap.env,
    };
  }

  /** Runs `codex ARGS` to its end, or until stopped. */
  run(args: string[]): CodexRun {
    const child = spawn(CODEX_BIN, args, { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
    const merged = new PassThrough();
    child.stdout.pipe(merged, { end: false });
    child.stderr.pipe(merged, { end: false });
    return { output: new OutputWatch(merged), ...watch(child) };
  }

  config(): Promise<string> {
    return readFile(path.join(this.dir, 'config.toml'), 'utf8');
  }

  /** The URLs Codex asked `BROWSER` to open, in order. */
  async browserRequests(): Promise<string[]> {
    const log = await readFile(path.join(this.dir, 'browser.log'), 'utf8').catch(() => '');
    return log.split('\n').filter(Boolean);
  }

  /** The stored OAuth credentials of the server `name` (`undefined` when none). */
  async credentials(name: string): Promise<CodexCredentials | undefined> {
    const file = await readFile(path.join(this.dir, '.credentials.json'), 'utf8').catch(() => '{}');
    const all = JSON.parse(file) as Record<string, CodexCredentials>;
    return Object.values(all).find((entry) => entry.server_name === name);
  }

  startAppServer(): Promise<CodexAppServer> {
    return CodexAppServer.start(this);
  }

  cleanup(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/** A JSON-RPC error answered by the app server. */
export class AppServerError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
  ) {
    super(`${method}: ${message} (${code})`);
  }
}

export interface Notification {
  method: string;
  params: Record<string, unknown>;
}

/** `mcpServerStatus/list` for one server (the fields the tests read). */
export interface McpServerStatus {
  name: string;
  runtimeStatus: string | null;
  tools: Record<string, { name: string; description?: string }>;
  toolsError: string | null;
  authStatus: string;
}

/** `mcpServer/tool/call`'s result: the MCP `CallToolResult`. */
export interface ToolResult {
  content: { type: string; text?: string }[];
  isError?: boolean;
  _meta?: Record<string, unknown>;
}

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

export class CodexAppServer {
  /** Every notification received, in order. */
  readonly notifications: Notification[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private readonly stderr: OutputWatch;

  private constructor(
    private readonly child: ChildProcess,
    private readonly process: { exited: Promise<number | null>; stop(): Promise<void> },
  ) {
    this.stderr = new OutputWatch(child.stderr);
    createInterface({ input: child.stdout! }).on('line', (line) => this.receive(line));
    void process.exited.then(() => {
      for (const [id, pending] of this.pending) {
        pending.reject(new Error(`${pending.method}: the app server exited\n${this.stderr.text}`));
        this.pending.delete(id);
      }
    });
  }

  static async start(home: CodexHome): Promise<CodexAppServer> {
    const child = spawn(CODEX_BIN, ['app-server'], {
      env: home.env(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const server = new CodexAppServer(child, watch(child));
    await server.request('initialize', {
      clientInfo: { name: 'mcp-gateway-tests', title: null, version: '1.0.0' },
      capabilities: { experimentalApi: true, requestAttestation: false },
    });
    server.send({ method: 'initialized' });
    return server;
  }

  private send(message: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(message)}\n`);
  }

  private receive(line: string): void {
    let message: {
      id?: number;
      method?: string;
      params?: Record<string, unknown>;
      result?: unknown;
      error?: { code: number; message: string };
    };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      return;
    }
    const pending = message.id === undefined ? undefined : this.pending.get(message.id);
    if (pending && message.method === undefined) {
      this.pending.delete(message.id!);
      if (message.error) {
        pending.reject(
          new AppServerError(pending.method, message.error.code, message.error.message),
        );
      } else {
        pending.resolve(message.result);
      }
      return;
    }
    if (message.method) {
      this.notifications.push({ method: message.method, params: message.params ?? {} });
    }
  }

  request<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown>,
    timeoutMs = 30_000,
  ): Promise<T> {
    const id = (this.nextId += 1);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer within ${timeoutMs} ms\n${this.stderr.text}`));
      }, timeoutMs);
      this.pending.set(id, {
        method,
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.send({ id, method, params });
    });
  }

  /** Waits (at most `timeoutMs`) for a notification `method` whose params satisfy `matches`. */
  async notification(
    method: string,
    matches: (params: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    let found: Notification | undefined;
    await eventually(async () => {
      found = this.notifications.find((n) => n.method === method && matches(n.params));
      return found !== undefined;
    }, timeoutMs);
    if (!found) {
      const seen = this.notifications.map((n) => `${n.method} ${JSON.stringify(n.params)}`);
      throw new Error(`no ${method} within ${timeoutMs} ms; got:\n${seen.join('\n')}`);
    }
    return found.params;
  }

  /** A conversation to run MCP calls in (`thread/start`, ephemeral: no model is called). */
  async startThread(): Promise<string> {
    const started = await this.request<{ thread: { id: string } }>('thread/start', {
      ephemeral: true,
      cwd: tmpdir(),
    });
    return started.thread.id;
  }

  /** `tools/list` and the auth state of server `name`, through `threadId`'s connection if given. */
  async serverStatus(name: string, threadId?: string): Promise<McpServerStatus> {
    const answer = await this.request<{ data: McpServerStatus[] }>('mcpServerStatus/list', {
      detail: 'toolsAndAuthOnly',
      serverName: name,
      ...(threadId ? { threadId } : {}),
    });
    const status = answer.data.find((entry) => entry.name === name);
    if (!status) throw new Error(`mcpServerStatus/list has no ${name}: ${JSON.stringify(answer)}`);
    return status;
  }

  /** `tools/call` on server `server` in `threadId`. */
  callTool(
    threadId: string,
    server: string,
    tool: string,
    args: Record<string, unknown>,
  ): Promise<ToolResult> {
    return this.request<ToolResult>('mcpServer/tool/call', {
      threadId,
      server,
      tool,
      arguments: args,
    });
  }

  stop(): Promise<void> {
    this.child.stdin?.end();
    return this.process.stop();
  }
}

/** The text of a tool result's first content item. */
export const textOf = (result: ToolResult): string => result.content[0]?.text ?? '';
