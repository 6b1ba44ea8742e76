/**
 * The running service's HTTP servers: the main one, which answers `/verify` (and `/metrics`,
 * unless it has a listener of its own) before Express sees the request, and the optional
 * metrics listener; and the order in which the service stops.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayConfig } from '../config/schema.js';
import { VERIFY_PATH } from '../forward-auth/decision-point.js';
import { compileTrustedProxies } from '../http/trusted-proxies.js';
import type { Logger } from '../logging/logger.js';
import {
  METRICS_PATH,
  metricsHandler,
  startMetricsListener,
} from '../observability/metrics-endpoint.js';
import type { GatewayMetrics } from '../observability/metrics.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface ServeOptions {
  config: Pick<GatewayConfig, 'listen' | 'metrics'>;
  logger: Logger;
  metrics: GatewayMetrics | undefined;
  /** The Express application: everything but `/verify` and `/metrics`. */
  app: Handler;
  /** The `/verify` decision point (a lean node:http handler, see decision-point.ts). */
  verify: { handle: Handler };
  /** What to stop once no request can arrive any more, in this order. */
  stops: (() => Promise<void> | undefined)[];
}

export interface Serving {
  /** The `/metrics` listener's address, when `metrics.listen` is set (after `listen()`). */
  metricsAddress(): AddressInfo | undefined;
  /** Starts listening on `config.listen`; resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /** Closes the servers and their connections, then runs `stops`. */
  close(): Promise<void>;
}

export function serve({ config, logger, metrics, app, verify, stops }: ServeOptions): Serving {
  const metricsOnMain =
    metrics && !config.metrics.listen
      ? metricsHandler(metrics, compileTrustedProxies(config.metrics.allowFrom), logger)
      : undefined;
  let server: Server | undefined;
  let metricsServer: { server: Server; address: AddressInfo } | undefined;
  return {
    metricsAddress: () => metricsServer?.address,
    listen: async () => {
      if (metrics && config.metrics.listen) {
        metricsServer = await startMetricsListener(metrics, config.metrics.listen, logger);
      }
      return new Promise((resolve, reject) => {
        // `/verify` is answered before Express sees the request (see decision-point.ts).
        server = createServer((req, res) => {
          if (isPath(req.url, VERIFY_PATH)) verify.handle(req, res);
          else if (metricsOnMain && isPath(req.url, METRICS_PATH)) metricsOnMain(req, res);
          else app(req, res);
        });
        // Slow or idle clients must not hold sockets forever.
        server.headersTimeout = 20_000;
        server.requestTimeout = 30_000;
        server.keepAliveTimeout = 5_000;
        server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () =>
          resolve(server!.address() as AddressInfo),
        );
      });
    },
    close: async () => {
      if (metricsServer) await closeServer(metricsServer.server);
      if (server) await closeServer(server);
      for (const stop of stops) await stop();
    },
  };
}

/** `path` itself, with or without a query (Caddy keeps the original request's query on it). */
function isPath(url: string | undefined, path: string): boolean {
  return url === path || (url?.startsWith(`${path}?`) ?? false);
}

/** Stops accepting and ends every open connection, keep-alive ones included. */
function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
