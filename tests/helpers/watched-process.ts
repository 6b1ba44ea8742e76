/**
 * A system program started for a test (redis-server, Caddy, nginx), watched: its recent output
 * is kept for error messages, its exit is known, and it is killed if the test worker exits
 * without stopping it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor, type PollOptions } from './poll.js';

const OUTPUT_LIMIT = 16_384;

export interface WatchedProcess {
  child: ChildProcess;
  /** The last 16 KiB of stdout and stderr. */
  output(): string;
  /** How it ended (`exited with code 1`, `failed to start: …`), or `undefined` while running. */
  exitInfo(): string | undefined;
  /** Resolves when it has ended. */
  exited: Promise<void>;
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves when it has ended. */
  stop(timeoutMs: number): Promise<void>;
}

export function spawnWatched(
  binary: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
  cwd?: string,
): WatchedProcess {
  const child = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    ...(cwd ? { cwd } : {}),
  });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);

  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      exitInfo = `failed to start: ${error.message}`;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exitInfo = `exited with ${signal ?? `code ${code}`}`;
      resolve();
    });
  });
  // A worker that dies without stopping its servers must not leave them running.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  void exited.then(() => process.removeListener('exit', killOnExit));

  return {
    child,
    output: () => output,
    exitInfo: () => exitInfo,
    exited,
    stop: async (timeoutMs) => {
      if (exitInfo !== undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Polls `ready` until the program answers. Fails at once, with its output, when it exits first
 * (the message then carries e.g. "address already in use" for `isPortTaken` in ports.ts); kills it
 * and fails with its output when it never answers within the bound.
 */
export async function waitUntilReady(
  watched: WatchedProcess,
  ready: () => Promise<boolean>,
  options: PollOptions,
): Promise<void> {
  const started = (): boolean => {
    const ended = watched.exitInfo();
    if (ended !== undefined) {
      throw new Error(`${options.what}: it ${ended}:\n${watched.output()}`);
    }
    return true;
  };
  try {
    await waitFor(async () => started() && (await ready()), options);
  } catch (error) {
    if (watched.exitInfo() === undefined) {
      watched.child.kill('SIGKILL');
      await watched.exited;
      throw new Error(`${(error as Error).message}:\n${watched.output()}`);
    }
    throw error;
  }
}
