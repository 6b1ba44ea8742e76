/**
 * Serving `/metrics`: on a listener of its own (`metrics.listen`, for a scraper on the
 * container network), or on the main listener to the peers in `metrics.allowFrom` only.
 * Behind Traefik the peer of a public request is Traefik itself, so the default (loopback)
 * keeps the metrics (resource URLs, client and login counts) off the internet even when the
 * auth service's router sends every path to it. A refused peer gets 404: nothing to probe.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TrustFunction } from '../http/trusted-proxies.js';
import type { Logger } from '../logging/logger.js';
import type { GatewayMetrics } from './metrics.js';

export const METRICS_PATH = '/metrics';

async function answer(metrics: GatewayMetrics, res: ServerResponse, logger: Logger) {
  try {
    const body = await metrics.render();
    res.writeHead(200, {
      'Content-Type': metrics.registry.contentType,
      'Cache-Control': 'no-store',
    });
    res.end(body);
  } catch (error) {
    logger.error('metrics failed', { error });
    res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics unavailable\n');
  }
}

/** The handler for `/metrics` on the main listener; `allowed` decides on the peer address. */
export function metricsHandler(metrics: GatewayMetrics, allowed: TrustFunction, logger: Logger) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const peer = req.socket.remoteAddress ?? '';
    if (req.method !== 'GET' || !allowed(peer, 0)) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    void answer(metrics, res, logger);
  };
}

/** A listener that serves only `/metrics` (every peer: it is meant for a private network). */
export function startMetricsListener(
  metrics: GatewayMetrics,
  listen: { host: string; port: number },
  logger: Logger,
): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((req, res) => {
    if (
      req.method === 'GET' &&
      (req.url === METRICS_PATH || req.url?.startsWith(`${METRICS_PATH}?`))
    ) {
      void answer(metrics, res, logger);
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not_found"}');
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () =>
      resolve({ server, address: server.address() as AddressInfo }),
    );
  });
}
