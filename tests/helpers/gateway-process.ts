/**
 * Runs the auth service as a separate process, exactly as `npm start` would (the `mcp-gateway`
 * command on a YAML file), so that tests can measure it (RSS) or kill it without taking the
 * test runner down with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { waitFor } from './poll.js';
import { onFreePort } from './ports.js';

export interface GatewayProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  output: () => string;
  /** Resident set size in bytes, read from /proc. */
  rss(): Promise<number>;
  stop(): Promise<void>;
}

type MakeConfig = (issuer: string, port: number, dataDir: string) => Record<string, unknown>;

/**
 * Starts the service on `port`, or on a free port (again on another one when it was taken
 * before the service bound it), and resolves once `/healthz` answers 200.
 */
export async function startGatewayProcess(
  makeConfig: MakeConfig,
  env: Record<string, string> = {},
  /** A port chosen beforehand (a proxy started first already points at it). */
  port?: number,
): Promise<GatewayProcess> {
  if (port !== undefined) return launch(makeConfig, env, port);
  return onFreePort((free) => launch(makeConfig, env, free));
}

async function launch(
  makeConfig: MakeConfig,
  env: Record<string, string>,
  port: number,
): Promise<GatewayProcess> {
  const issuer = `http://localhost:${port}`;
  const dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-proc-'));
  const configFile = path.join(dir, 'gateway.yaml');
  await writeFile(configFile, stringify(makeConfig(issuer, port, path.join(dir, 'data'))));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.resolve('src/main.ts'), '--config', configFile],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk) => (output += String(chunk)));
  child.stderr!.on('data', (chunk) => (output += String(chunk)));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );

  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) {
          throw new Error(`gateway exited early (${child.exitCode}):\n${output}`);
        }
        const health = await fetch(`${issuer}/healthz`).catch(() => undefined);
        return health?.status === 200;
      },
      {
        what: `the gateway on port ${port} to answer /healthz`,
        timeoutMs: 20_000,
        intervalMs: 100,
      },
    );
  } catch (error) {
    const running = child.exitCode === null;
    if (running) {
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
    throw running ? new Error(`${(error as Error).message}:\n${output}`) : error;
  }

  return {
    url: issuer,
    pid: child.pid!,
    child,
    output: () => output,
    rss: async () => {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      return kb * 1024;
    },
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
