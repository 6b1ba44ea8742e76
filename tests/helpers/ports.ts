import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { createServer, type Server } from 'node:net';

/**
 * A TCP port that was free on `host` a moment ago: the kernel picks one for a listener on port
 * 0, which is closed again at once. Another process can take it before the caller binds it, so
 * callers that spawn servers should retry with a new port when the bind fails.
 */
export async function getFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`Unexpected listener address ${String(address)}`));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Starts `server` listening on `host:port`; rejects if the bind fails. */
export function listenOn(server: Server, port: number, host = '127.0.0.1'): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Closes `server` and every connection still open on it (keep-alive included). */
export function closeServer(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/**
 * Whether `error` says the port was taken: `EADDRINUSE` from a listener in this process, or
 * "address already in use" in the message of a spawned server that failed to bind (the
 * harness puts the program's output in the message: redis-server, Caddy, nginx, Traefik, the
 * gateway as a process).
 */
export function isPortTaken(error: unknown): boolean {
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') return true;
  return error instanceof Error && /EADDRINUSE|address already in use/i.test(error.message);
}

/**
 * Runs `launch` on a free port, again on another one when the port was taken meanwhile
 * (another process can grab a port between {@link getFreePort} and the bind). The one way the
 * harness starts anything on a port it picks: in-process listeners and spawned servers alike.
 */
export async function onFreePort<T>(
  launch: (port: number) => Promise<T>,
  attempts = 3,
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    const port = await getFreePort();
    try {
      return await launch(port);
    } catch (error) {
      if (!isPortTaken(error) || attempt >= attempts) throw error;
    }
  }
}

/** Starts `server` listening on a free port of `host`, retrying on a taken one: the port. */
export function listenOnFreePort(server: Server, host = '127.0.0.1'): Promise<number> {
  return onFreePort(async (port) => {
    await listenOn(server, port, host);
    return port;
  });
}

/** An HTTP server of the harness on a loopback port. */
export interface ServedOnLoopback {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Runs `beforeClose`, then closes the server and its connections. Safe to call again. */
  stop(): Promise<void>;
}

/**
 * Serves `handler` (an express app, say) on a free loopback port, retrying on a taken one.
 * `beforeClose` ends what would keep a connection open (event streams) before the close.
 */
export async function serveOnFreePort(
  handler: RequestListener,
  beforeClose?: () => Promise<void>,
): Promise<ServedOnLoopback> {
  const server = createHttpServer(handler);
  const port = await listenOnFreePort(server);
  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    stop() {
      stopped ??= (async () => {
        await beforeClose?.();
        await closeServer(server);
      })();
      return stopped;
    },
  };
}
