/**
 * What the Caddy, nginx and Traefik helpers share: a real proxy binary started on a free
 * loopback port from the project's shipped configuration (deploy/caddy, deploy/nginx, traefik/)
 * with only addresses changed, in its own temp directory; ready once it answers HTTP (or a
 * helper's own readiness check passes), stopped by SIGTERM (SIGKILL if it hangs), temp
 * directory removed.
 *
 * Every harness serves two hosts on its port, as a deployment does: `127.0.0.1` is the MCP host
 * (discovery, the routes given, 404 for anything else) and `localhost` the auth host (the auth
 * service, with `/verify` and `/metrics` closed to outside callers).
 */
import { spawnWatched, waitUntilReady } from './watched-process.js';
import { request, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onFreePort } from './ports.js';

/** One MCP server behind the proxy. */
export interface ProxyRoute {
  /**
   * The public path, in Caddy's path-matcher syntax: exact (`/mcp`) or a prefix ending in `/*`
   * (`/servers/legacy/*`). The path is passed on unchanged (no prefix stripping).
   */
  path: string;
  /** `http://127.0.0.1:PORT` (scheme, host and port only). */
  upstream: string;
}

export interface ProxyOptions {
  /** The auth service (or a stand-in), `http://127.0.0.1:PORT`; `/verify` is called on it. */
  authUrl: string;
  routes: ProxyRoute[];
}

export interface RunningProxy {
  /** `http://127.0.0.1:PORT`: the MCP host. */
  url: string;
  /** `http://localhost:PORT`: the auth host. */
  authHostUrl: string;
  port: number;
  /** What the proxy printed so far (the last 16 KiB). */
  output(): string;
  /** SIGTERM, waits for the exit (SIGKILL after a bound), removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface ProxyLaunch {
  /** Human name for messages, e.g. `caddy`. */
  name: string;
  binary: string;
  /** Writes the configuration for `port` into `dir`; returns the command line and env. */
  prepare(
    port: number,
    dir: string,
  ): Promise<{ args: string[]; env?: NodeJS.ProcessEnv; cwd?: string }>;
  /** Ready once this holds (default: anything answers HTTP on the port). */
  ready?: (port: number) => Promise<boolean>;
}

const READY_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 25;
const STOP_TIMEOUT_MS = 10_000;
const LAUNCH_ATTEMPTS = 3;

/** `http://127.0.0.1:PORT` → `127.0.0.1:PORT`; refuses paths, queries and other schemes. */
export function hostPort(url: string, what: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' || parsed.pathname !== '/' || parsed.search !== '') {
    throw new Error(`${what} must be http://HOST:PORT with no path, got ${url}`);
  }
  return parsed.host;
}

/** Splits a route path into its kind: `{ prefix: '/servers/legacy/' }` or `{ exact: '/mcp' }`. */
export function routePath(path: string): { exact: string } | { prefix: string } {
  if (!path.startsWith('/') || /[\s;{}"']/.test(path)) throw new Error(`bad route path ${path}`);
  if (path.endsWith('/*')) return { prefix: path.slice(0, -1) };
  if (path.includes('*')) throw new Error(`only a trailing /* is supported: ${path}`);
  return { exact: path };
}

/** Starts the proxy; retries on a new port when the one picked was taken meanwhile. */
export async function startProxyProcess(launch: ProxyLaunch): Promise<RunningProxy> {
  const dir = await mkdtemp(join(tmpdir(), `mcp-gateway-${launch.name}-`));
  try {
    return await onFreePort((port) => run(launch, port, dir), LAUNCH_ATTEMPTS);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function run(launch: ProxyLaunch, port: number, dir: string): Promise<RunningProxy> {
  const { args, env, cwd } = await launch.prepare(port, dir);
  const watched = spawnWatched(launch.binary, args, env, cwd);

  await waitUntilReady(watched, () => (launch.ready ?? answersHttp)(port), {
    what: `${launch.name} on port ${port} to answer`,
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: POLL_INTERVAL_MS,
  });

  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    authHostUrl: `http://localhost:${port}`,
    port,
    output: () => watched.output(),
    stop() {
      stopped ??= (async () => {
        await watched.stop(STOP_TIMEOUT_MS);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/** True once anything answers HTTP on the port (any status). */
export function answersHttp(port: number): Promise<boolean> {
  return statusAt(port, '/.proxy-ready').then((status) => status !== undefined);
}

/**
 * The status a GET of `path` on the port answers, or `undefined` when nothing answers. With
 * `tls`, over https to `host` (any certificate: this asks whether the proxy is up, not whom
 * to trust).
 */
export function statusAt(
  port: number,
  path: string,
  tls?: { host: string },
): Promise<number | undefined> {
  return new Promise((resolve) => {
    const options = { host: '127.0.0.1', port, path, timeout: 500, agent: false };
    const answered = (res: IncomingMessage) => {
      res.resume();
      resolve(res.statusCode);
    };
    const req = tls
      ? httpsRequest(
          {
            ...options,
            servername: tls.host,
            headers: { host: `${tls.host}:${port}` },
            rejectUnauthorized: false,
          },
          answered,
        )
      : request(options, answered);
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(undefined));
    req.end();
  });
}
