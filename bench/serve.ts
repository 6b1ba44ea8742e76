/**
 * What the benchmark's own small servers (bench/bare-server.ts, bench/backend.ts) share: the
 * port from the command line, the auth service's socket limits (src/app/server.ts), and a
 * clean stop on SIGTERM or SIGINT.
 */
import type { Server } from 'node:http';

/** The port given as the first argument; exits 2 with the usage line otherwise. */
export function portFromArgs(script: string): number {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0) {
    process.stderr.write(`usage: ${script} PORT\n`);
    process.exit(2);
  }
  return port;
}

/** Listens on 127.0.0.1:`port` until the process is told to stop. */
export function serveUntilSignalled(server: Server, port: number): void {
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.listen(port, '127.0.0.1');
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
