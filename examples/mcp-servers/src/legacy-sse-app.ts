/**
 * The legacy HTTP+SSE example (protocol 2024-11-05) as an Express app: what `legacy-sse.ts`
 * serves, and what the gateway's tests run behind the proxies.
 *
 * - `GET  <basePath>/sse` opens the event stream; its first event, `endpoint`, names
 *   `<basePath>/messages?sessionId=…`;
 * - `POST <basePath>/messages?sessionId=…` carries the client's JSON-RPC messages, whose answers
 *   arrive on the stream.
 *
 * `basePath` is the public path: the server announces the messages URL with it, so the proxy in
 * front must forward the path unchanged. Sessions live in this process's memory: run one
 * replica, or make the proxy keep a client on one replica.
 *
 * Behind the gateway both the stream and every POST are authorized before they arrive; this app
 * contains no auth code.
 */
import express, { type Express } from 'express';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { createExampleServer } from './identity.js';

export interface LegacySseAppOptions {
  /** The public path prefix (default `/servers/legacy`; a trailing slash is ignored). */
  basePath?: string;
  /** The MCP server for one stream (default: the example's, with `whoami`). */
  createServer?: (name: string) => McpServer;
}

export interface LegacySseApp {
  app: Express;
  /** Ends every open stream (a server stopping: open streams never end on their own). */
  closeSessions(): Promise<void>;
}

export function createLegacySseApp(options: LegacySseAppOptions = {}): LegacySseApp {
  const basePath = (options.basePath ?? '/servers/legacy').replace(/\/+$/, '');
  if (!basePath.startsWith('/')) throw new Error(`basePath must start with "/": ${basePath}`);
  const createServer = options.createServer ?? createExampleServer;
  const transports = new Map<string, SSEServerTransport>();

  const app = express();
  app.disable('x-powered-by');

  app.get(`${basePath}/sse`, async (_req, res) => {
    const transport = new SSEServerTransport(`${basePath}/messages`, res);
    const server = createServer('example-legacy-sse');
    transports.set(transport.sessionId, transport);
    res.on('close', () => {
      transports.delete(transport.sessionId);
      void server.close();
    });
    // connect() starts the transport: the SSE headers, then the `endpoint` event.
    await server.connect(transport);
  });

  // No body parser: the transport reads the JSON body itself.
  app.post(`${basePath}/messages`, async (req, res) => {
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
      // handlePostMessage has already answered when the stream is gone.
    }
  });

  return {
    app,
    closeSessions: async () => {
      await Promise.all([...transports.values()].map((transport) => transport.close()));
    },
  };
}
