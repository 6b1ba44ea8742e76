/**
 * Linux network namespaces as test hosts (`ip netns`): separate network stacks joined by veth
 * pairs, with programs started inside them by `ip netns exec` (which execs the program, so the
 * child's pid is the program's own and signals reach it).
 *
 * Everything a lab makes is named with its prefix, so a run that crashed half-way can be
 * cleaned up by the next one: its namespaces (and the processes still in them), the links it
 * left in the root namespace, and wireguard-go's UAPI sockets, which live in the one global
 * /var/run/wireguard rather than per namespace (hence a unique interface name per host).
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { describe, it } from '@jest/globals';
import { findBinary } from './binaries.js';
import { waitFor as poll } from './poll.js';
import { spawnWatched, type WatchedProcess } from './watched-process.js';

export const WIREGUARD_RUN_DIR = '/var/run/wireguard';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (never throws for a non-zero exit). */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        encoding: 'utf8',
        timeout: options.timeoutMs ?? 15_000,
        env: { ...process.env, ...options.env },
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr: stderr || (error?.message ?? '') });
      },
    );
  });
}

/** Runs a command and returns its stdout; throws with the command line and stderr otherwise. */
export async function must(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  }
  return result.stdout;
}

/**
 * Why namespace tests cannot run here, or `undefined` when they can: Linux, root, the binaries,
 * /dev/net/tun, and `ip netns add` actually working (a container may refuse it even to root).
 */
export function netnsUnavailable(binaries: string[]): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'not root: network namespaces and WireGuard need root';
  for (const binary of ['ip', ...binaries]) {
    if (findBinary(binary) === undefined) {
      return (
        `${binary} was not found. Install (Debian): apt-get install -y --no-install-recommends ` +
        'iproute2 wireguard-tools wireguard-go tcpdump nftables caddy'
      );
    }
  }
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (wireguard-go needs it)';
  const probe = `mcpprobe-${process.pid}`;
  try {
    execFileSync(findBinary('ip')!, ['netns', 'add', probe], { stdio: 'pipe' });
    execFileSync(findBinary('ip')!, ['netns', 'delete', probe], { stdio: 'pipe' });
  } catch (error) {
    return `ip netns add fails here: ${(error as Error).message.split('\n')[0]}`;
  }
  return undefined;
}

/**
 * A describe block that needs network namespaces and the given binaries: skipped with the
 * reason printed where they are unavailable, failed under CI=true (as describeWithBinary).
 */
export function describeWithNetns(name: string, binaries: string[], fn: () => void): void {
  const reason = netnsUnavailable(binaries);
  if (reason === undefined) {
    describe(name, fn);
    return;
  }
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('requires network namespaces', () => {
        throw new Error(reason);
      });
    });
    return;
  }
  console.warn(`Skipping "${name}": ${reason}`);
  describe.skip(name, fn);
}

/** Polls `check` every 50 ms until it returns true; throws `what` after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  return poll(check, { what, timeoutMs });
}

export class NetnsLab {
  private readonly namespaces: string[] = [];
  private readonly rootLinks: string[] = [];
  private readonly processes: WatchedProcess[] = [];

  /** `prefix` names everything the lab makes; it must not be used by anything else. */
  constructor(readonly prefix: string) {
    if (!/^[a-z][a-z0-9]{1,7}$/.test(prefix)) throw new Error(`bad lab prefix ${prefix}`);
  }

  /** Removes what an earlier lab with this prefix left behind (a crashed run). */
  static async cleanLeftovers(prefix: string): Promise<void> {
    for (const ns of await listNamespaces(prefix)) {
      const pids = (await run('ip', ['netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await run('ip', ['netns', 'delete', ns]);
    }
    for (const link of await listRootLinks(prefix)) await run('ip', ['link', 'delete', link]);
    for (const socket of wireguardSockets(prefix)) rmSync(socket, { force: true });
  }

  /** Creates `<prefix>-<name>` with loopback up and IPv6 off (a quiet underlay). */
  async addNamespace(name: string): Promise<string> {
    const ns = `${this.prefix}-${name}`;
    await must('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.exec(ns, 'sysctl', [
      '-q',
      '-w',
      'net.ipv6.conf.all.disable_ipv6=1',
      'net.ipv6.conf.default.disable_ipv6=1',
    ]);
    await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A link this lab created in the root namespace, removed at cleanup. */
  trackRootLink(name: string): void {
    if (!name.startsWith(this.prefix)) throw new Error(`root link ${name} lacks the lab prefix`);
    this.rootLinks.push(name);
  }

  /** Runs a command inside `ns`; throws on a non-zero exit. */
  exec(ns: string, command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
    return must('ip', ['netns', 'exec', ns, command, ...args], env ? { env } : {});
  }

  /** Runs a command inside `ns`, whatever its exit code. */
  tryExec(
    ns: string,
    command: string,
    args: string[],
    env?: NodeJS.ProcessEnv,
  ): Promise<CommandResult> {
    return run('ip', ['netns', 'exec', ns, command, ...args], env ? { env } : {});
  }

  /** Starts a long-running program inside `ns`; stopped at cleanup if still running. */
  spawn(ns: string, command: string, args: string[], env?: NodeJS.ProcessEnv): WatchedProcess {
    const watched = spawnWatched(findBinary('ip')!, ['netns', 'exec', ns, command, ...args], env);
    this.processes.push(watched);
    return watched;
  }

  /**
   * Stops every process (SIGTERM, SIGKILL after 5 s), deletes the namespaces and root links and
   * any UAPI socket left with the prefix. Idempotent.
   */
  async cleanup(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop(5_000)));
    for (const ns of this.namespaces.splice(0)) await run('ip', ['netns', 'delete', ns]);
    for (const link of this.rootLinks.splice(0)) await run('ip', ['link', 'delete', link]);
    await NetnsLab.cleanLeftovers(this.prefix);
  }

  /** What still exists with the prefix (empty after a clean cleanup). */
  async leftovers(): Promise<string[]> {
    const running = this.processes.filter((p) => p.exitInfo() === undefined);
    return [
      ...(await listNamespaces(this.prefix)).map((ns) => `namespace ${ns}`),
      ...(await listRootLinks(this.prefix)).map((link) => `root link ${link}`),
      ...wireguardSockets(this.prefix).map((socket) => `socket ${socket}`),
      ...running.map((p) => `process ${p.child.pid ?? '?'} (${p.child.spawnargs.join(' ')})`),
    ];
  }
}

async function listNamespaces(prefix: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(`${prefix}-`));
}

async function listRootLinks(prefix: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show']);
  return stdout
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '')
    .filter((name) => name.startsWith(`${prefix}-`));
}

function wireguardSockets(prefix: string): string[] {
  if (!existsSync(WIREGUARD_RUN_DIR)) return [];
  return readdirSync(WIREGUARD_RUN_DIR)
    .filter((name) => name.startsWith(`${prefix}-`))
    .map((name) => path.join(WIREGUARD_RUN_DIR, name));
}

/**
 * A TCP relay in the root namespace: `127.0.0.1:listenPort` → `host:port` (a namespace's
 * address on a veth pair), so that loopback URLs in the test process reach a host inside a
 * namespace.
 */
export async function forwardPort(
  listenPort: number,
  host: string,
  port: number,
): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, host);
    sockets.add(client);
    sockets.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export type TcpProbe = 'connected' | 'refused' | 'timeout' | `error ${string}`;

/**
 * Tries a TCP connection from inside `ns` (a short Node program there), optionally from a given
 * local address; says how it ended within `timeoutMs`.
 */
export async function tcpProbe(
  lab: NetnsLab,
  ns: string,
  target: { host: string; port: number; localAddress?: string },
  timeoutMs: number,
): Promise<TcpProbe> {
  const program = `
    const net = require('node:net');
    const [host, port, local, ms] = process.argv.slice(1);
    const socket = net.connect({ host, port: Number(port), ...(local ? { localAddress: local } : {}) });
    const end = (what) => { console.log(what); socket.destroy(); process.exit(0); };
    socket.setTimeout(Number(ms), () => end('timeout'));
    socket.on('connect', () => end('connected'));
    socket.on('error', (e) => end(e.code === 'ECONNREFUSED' ? 'refused' : 'error ' + e.code));
  `;
  const result = await lab.tryExec(ns, process.execPath, [
    '-e',
    program,
    target.host,
    String(target.port),
    target.localAddress ?? '',
    String(timeoutMs),
  ]);
  return (result.stdout.trim() || `error ${result.stderr.trim()}`) as TcpProbe;
}
