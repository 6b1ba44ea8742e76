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
import { getFreePort } from './ports.js';

export interface GatewayProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  output: () => string;
  /** Resident set size in bytes, read from /proc. */
  rss(): Promise<number>;
  stop(): Promise<void>;
}

export async function startGatewayProcess(
  makeConfig: (issuer: string, port: number, dataDir: string) => Record<string, unknown>,
  env: Record<string, string> = {},
  /** A port chosen beforehand (a proxy started first already points at it). */
  port?: number,
): Promise<GatewayProcess> {
  port ??= await getFreePort();
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

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`gateway exited early (${child.exitCode}):\n${output}`);
    const health = await fetch(`${issuer}/healthz`).catch(() => undefined);
    if (health?.status === 200) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway did not start in time:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
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
