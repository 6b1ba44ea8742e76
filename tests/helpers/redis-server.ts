import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from './binaries.js';
import { onFreePort } from './ports.js';
import { spawnWatched, waitUntilReady } from './watched-process.js';

export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  url: string;
  port: number;
  /** The working directory (AOF files live here when `appendOnly` is set). */
  dir: string;
  /**
   * SIGTERM, then waits for the exit (SIGKILL after 10 s). Removes `dir` when this helper created
   * it. Safe to call more than once, and after {@link RedisServer.kill}.
   */
  stop(): Promise<void>;
  /** SIGKILL without waiting: a crash. Keeps `dir`; call `stop()` afterwards to clean up. */
  kill(): void;
}

export interface StartRedisOptions {
  /** `--appendonly yes`, for persistence tests. */
  appendOnly?: boolean;
  /** Reuse a directory (e.g. restart on the AOF of a killed server); it is never removed. */
  dir?: string;
  /** A fixed port (e.g. to restart a server where clients expect it); default a free one. */
  port?: number;
  /** More `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  extraArgs?: string[];
}

const READY_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 25;
const STOP_TIMEOUT_MS = 10_000;

/**
 * Starts a real `redis-server` on a free loopback port and resolves once it answers PING.
 * Nothing is persisted unless `appendOnly` is set; the server never daemonizes, so it is
 * stopped by its PID.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = findBinary('redis-server');
  if (binary === undefined) throw new Error('redis-server is not installed');
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'mcp-gateway-redis-')));
  try {
    if (options.port !== undefined)
      return await launch(binary, options.port, dir, ownsDir, options);
    // A free port may be taken before redis-server binds it: onFreePort retries on a new one.
    return await onFreePort((port) => launch(binary, port, dir, ownsDir, options));
  } catch (error) {
    if (ownsDir) await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function launch(
  binary: string,
  port: number,
  dir: string,
  ownsDir: boolean,
  options: StartRedisOptions,
): Promise<RedisServer> {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    options.appendOnly ? 'yes' : 'no',
    '--daemonize',
    'no',
    '--dir',
    dir,
    ...(options.extraArgs ?? []),
  ];
  const watched = spawnWatched(binary, args);

  await waitUntilReady(watched, () => answersPing(port), {
    what: `redis-server on port ${port} to answer PING`,
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: POLL_INTERVAL_MS,
  });

  let removedDir = false;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      await watched.stop(STOP_TIMEOUT_MS);
      if (ownsDir && !removedDir) {
        removedDir = true;
        await rm(dir, { recursive: true, force: true });
      }
    },
    kill() {
      if (watched.exitInfo() === undefined) watched.child.kill('SIGKILL');
    },
  };
}

/** One raw `PING`; true on `+PONG` (a server still loading its AOF answers `-LOADING`). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}
