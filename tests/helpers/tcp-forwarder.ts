/**
 * A TCP forwarder on a free loopback port whose target is set later: for a server that must be
 * told where to connect (Pebble's validation port) before the process it connects to has a
 * port. Connections that arrive before a target is set are closed.
 */
import { connect, createServer, type Socket } from 'node:net';
import { closeServer, onFreePort, listenOn } from './ports.js';

export interface TcpForwarder {
  port: number;
  /** Where connections go from now on: `127.0.0.1:port`. */
  forwardTo(port: number): void;
  /** Connections forwarded so far. */
  forwarded(): number;
  /** Stops listening and closes every open connection. Idempotent. */
  close(): Promise<void>;
}

export async function startTcpForwarder(): Promise<TcpForwarder> {
  let target: number | undefined;
  let count = 0;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    if (target === undefined) return void client.destroy();
    count += 1;
    const upstream = connect(target, '127.0.0.1');
    open.add(upstream);
    upstream.once('close', () => open.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  const port = await onFreePort(async (free) => {
    await listenOn(server, free);
    return free;
  });
  let closed: Promise<void> | undefined;
  return {
    port,
    forwardTo: (next) => void (target = next),
    forwarded: () => count,
    close() {
      closed ??= (async () => {
        for (const socket of open) socket.destroy();
        await closeServer(server);
      })();
      return closed;
    },
  };
}
