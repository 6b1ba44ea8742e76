/**
 * The processes the benchmark measures: a bare `node:http` server and the auth service, each
 * a separate process started with the same `node` as the benchmark (process.execPath), so that
 * neither shares an event loop with autocannon; and the peer, oauth2-proxy (bench/peer.ts).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

/** The repository root (bench/..). */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export const RESOURCE = 'https://mcp.example.com/mcp';
export const RESOURCE_SCOPES = ['mcp:tools'];
export const DEV_USER = { email: 'bench@example.com', name: 'Bench User' };

/** USER_HZ: /proc reports CPU times in these (100 on every Linux architecture Node runs on). */
const CLOCK_TICKS = 100;

/**
 * Binds every thread of process `pid` (present and future) to one CPU with util-linux
 * `taskset -a -p -c CPU PID` (sched_setaffinity; Node has no API for it). Throws when taskset
 * is missing or refuses, with its message.
 */
export async function pinToCpu(pid: number, cpu: number): Promise<void> {
  await promisify(execFile)('taskset', ['-a', '-p', '-c', String(cpu), String(pid)]);
}

/** A TCP port the kernel considered free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no TCP address'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

export class ManagedProcess {
  private readonly child: ChildProcess;
  private log = '';
  private stopping = false;
  private readonly exited: Promise<void>;
  /** Set when the process ended without being asked to. */
  unexpectedExit: string | undefined;

  /** `command` defaults to the benchmark's own `node`; `env` is added to the benchmark's. */
  constructor(
    readonly name: string,
    args: string[],
    command: string = process.execPath,
    env: Record<string, string> = {},
  ) {
    this.child = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      // Enough to explain a failure; the services log only errors here.
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        if (!this.stopping) {
          this.unexpectedExit = `${this.name} (pid ${this.child.pid}) exited by itself (code ${code}, signal ${signal})`;
        }
        resolve();
      });
      this.child.once('error', (error) => {
        this.unexpectedExit = `${this.name} could not be started: ${error.message}`;
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && !this.unexpectedExit;
  }

  output(): string {
    return this.log;
  }

  /**
   * CPU time the process (all its threads) has used so far, in seconds, from /proc/PID/stat;
   * `NaN` where there is no /proc.
   */
  async cpuTime(): Promise<{ user: number; system: number }> {
    const stat = await readFile(`/proc/${this.child.pid}/stat`, 'utf8').catch(() => '');
    // Fields after "(comm)": state is field 3, utime 14 and stime 15, in clock ticks.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
  }

  /** Throws when the process is gone, with what it printed. */
  assertRunning(): void {
    if (!this.running) {
      throw new Error(
        `${this.unexpectedExit ?? `${this.name} is not running`}\n--- its output ---\n${this.log}`,
      );
    }
  }

  /** Polls `url` until it answers `status`. */
  async waitUntilAnswering(url: string, status: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.assertRunning();
      const response = await fetch(url).catch(() => undefined);
      if (response?.status === status) return;
      if (Date.now() > deadline) {
        throw new Error(`${this.name} did not answer ${url} in time\n${this.log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Waits until the process has printed something matching `pattern`. */
  async waitUntilOutput(pattern: RegExp, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.log)) {
      this.assertRunning();
      if (Date.now() > deadline) {
        throw new Error(`${this.name} did not print ${String(pattern)} in time\n${this.log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.pid === undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * The starters hand the process to `track` before waiting for it to answer, so that the caller
 * stops it even when it never does.
 */
export type Track = (process: ManagedProcess) => void;

export function startBareServer(port: number, track: Track): Promise<ManagedProcess> {
  return startBenchScript('bare server', 'bare-server.ts', port, track);
}

/** The MCP server behind Traefik (bench/backend.ts). */
export function startBackend(port: number, track: Track): Promise<ManagedProcess> {
  return startBenchScript('MCP backend', 'backend.ts', port, track);
}

/** Runs `bench/<script> <port>` under tsx; resolves once it answers 200 on `/`. */
async function startBenchScript(
  name: string,
  script: string,
  port: number,
  track: Track,
): Promise<ManagedProcess> {
  const child = new ManagedProcess(name, [
    '--import',
    'tsx',
    path.join(ROOT, 'bench', script),
    String(port),
  ]);
  track(child);
  await child.waitUntilAnswering(`http://127.0.0.1:${port}/`, 200);
  return child;
}

export interface GatewayFiles {
  configFile: string;
  dataDir: string;
}

/**
 * Writes the benchmark's gateway configuration into `dir`: the resource {@link RESOURCE}, and
 * `extraResources` (the MCP server as Traefik forwards it, http on 127.0.0.1).
 */
export async function writeGatewayConfig(
  dir: string,
  port: number,
  extraResources: string[] = [],
  /** Keys set as given (e.g. `store`, `keys` and the shared `issuer` of two replicas). */
  overrides: Record<string, unknown> = {},
): Promise<GatewayFiles> {
  await mkdir(dir, { recursive: true });
  const dataDir = path.join(dir, 'data');
  const configFile = path.join(dir, 'gateway.yaml');
  const config = {
    issuer: `http://localhost:${port}`,
    listen: { host: '127.0.0.1', port },
    dataDir,
    login: { dev: { users: [DEV_USER] } },
    resources: [RESOURCE, ...extraResources].map((url, index) => ({
      url,
      name: `Benchmark MCP server ${index + 1}`,
      scopes: RESOURCE_SCOPES,
    })),
    log: { level: 'error' },
    ...overrides,
  };
  await writeFile(configFile, stringify(config));
  return { configFile, dataDir };
}

/**
 * The auth service exactly as deployed: `node --import tsx src/main.ts --config FILE`.
 * `nodeOptions` go before `--import` (e.g. `--cpu-prof`).
 */
export async function startGateway(
  port: number,
  configFile: string,
  track: Track,
  nodeOptions: string[] = [],
): Promise<ManagedProcess> {
  const gateway = new ManagedProcess('auth service', [
    // As `npm start` and the container run it (docs/runtime.md).
    '--experimental-async-context-frame',
    ...nodeOptions,
    '--import',
    'tsx',
    path.join(ROOT, 'src', 'main.ts'),
    '--config',
    configFile,
  ]);
  track(gateway);
  await gateway.waitUntilAnswering(`http://127.0.0.1:${port}/healthz`, 200);
  return gateway;
}
