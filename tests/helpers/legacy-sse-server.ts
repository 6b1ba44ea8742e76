/**
 * A legacy HTTP+SSE MCP server (protocol 2024-11-05) as it sits behind the gateway: a real
 * `@modelcontextprotocol/sdk` server (`McpServer` over `SSEServerTransport`) with NO auth code,
 * served by express on a free loopback port under a public path prefix:
 *
 * - `GET <prefix>/sse` opens the event stream; its first event is `endpoint`, naming
 *   `<prefix>/messages?sessionId=…`. The transport is given the public path, prefix included,
 *   because the client POSTs to exactly that URL through the proxy (so proxies must not strip
 *   the prefix).
 * - `POST <prefix>/messages?sessionId=…` carries the client's JSON-RPC messages; answers come
 *   back on the stream.
 *
 * Tools: `whoami` (JSON of the `X-Auth-*` headers and the `Authorization` header of the POST
 * that carried the call) and `echo`. Every request's headers are recorded in `seenRequests`.
 */
import { createServer } from 'node:http';
import express from 'express';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { closeServer, getFreePort, listenOn } from './ports.js';
import { createToolServer, type SeenRequest } from './streamable-server.js';

export interface StartLegacySseServerOptions {
  /** The public path prefix, e.g. `/servers/legacy` (a trailing slash is ignored). */
  prefix: string;
}

export interface LegacySseServer {
  /** `http://127.0.0.1:PORT` (the stream is at `${url}${prefix}/sse`). */
  url: string;
  /** Every request that reached the server, in arrival order. */
  seenRequests: SeenRequest[];
  /** Ends the open streams, closes the server and its connections. Safe to call again. */
  stop(): Promise<void>;
}

const LISTEN_ATTEMPTS = 3;

/** Starts the server; resolves once it listens. */
export async function startLegacySseServer(
  options: StartLegacySseServerOptions,
): Promise<LegacySseServer> {
  const prefix = options.prefix.replace(/\/+$/, '');
  if (!prefix.startsWith('/')) throw new Error(`prefix must start with "/": ${options.prefix}`);
  for (let attempt = 1; ; attempt += 1) {
    const port = await getFreePort();
    try {
      return await launch(prefix, port);
    } catch (error) {
      const portTaken = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!portTaken || attempt >= LISTEN_ATTEMPTS) throw error;
    }
  }
}

async function launch(prefix: string, port: number): Promise<LegacySseServer> {
  const seenRequests: SeenRequest[] = [];
  const transports = new Map<string, SSEServerTransport>();

  const app = express();
  app.disable('x-powered-by');
  app.use((req, _res, next) => {
    seenRequests.push({ method: req.method, path: req.originalUrl, headers: { ...req.headers } });
    next();
  });

  app.get(`${prefix}/sse`, async (_req, res) => {
    const transport = new SSEServerTransport(`${prefix}/messages`, res);
    const server = createToolServer('legacy-sse-test-server');
    transports.set(transport.sessionId, transport);
    res.on('close', () => {
      transports.delete(transport.sessionId);
      void server.close();
    });
    // connect() starts the transport: headers, then the `endpoint` event.
    await server.connect(transport);
  });

  // No body parser: the transport reads the raw JSON body itself.
  app.post(`${prefix}/messages`, async (req, res) => {
    const sessionId = typeof req.query.sessionId === 'string' ? req.query.sessionId : '';
    const transport = transports.get(sessionId);
    if (transport === undefined) {
      res.status(404).json({
        jsonrpc: '2.0',
        error: { code: -32001, message: 'Unknown or expired sessionId' },
        id: null,
      });
      return;
    }
    try {
      await transport.handlePostMessage(req, res);
    } catch {
      // handlePostMessage has answered (500) already when the stream is gone.
    }
  });

  const httpServer = createServer(app);
  await listenOn(httpServer, port);
  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    seenRequests,
    stop() {
      stopped ??= (async () => {
        await Promise.all([...transports.values()].map((transport) => transport.close()));
        await closeServer(httpServer);
      })();
      return stopped;
    },
  };
}
