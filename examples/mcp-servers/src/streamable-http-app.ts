/**
 * The Streamable HTTP example (protocol 2025-03-26 and later) as an Express app, stateless, at
 * `/mcp` (or `path`): what `streamable-http.ts` serves, and what the gateway's tests run behind
 * the proxies.
 *
 * Stateless: every POST gets a new `McpServer` and transport (no `Mcp-Session-Id`), so any
 * replica can answer any request and nothing is kept between requests. There is no standalone
 * GET stream and no session to DELETE: both answer 405.
 *
 * Behind the gateway every request has been authorized before it arrives; this app contains no
 * auth code.
 */
import express, { type Express, type Request, type Response } from 'express';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createExampleServer } from './identity.js';

export interface StreamableHttpAppOptions {
  /** Where the MCP endpoint is (default `/mcp`). */
  path?: string;
  /** The MCP server for one request (default: the example's, with `whoami`). */
  createServer?: (name: string) => McpServer;
  /** The largest JSON body accepted (default `1mb`). */
  bodyLimit?: string;
}

export function createStreamableHttpApp(options: StreamableHttpAppOptions = {}): Express {
  const path = options.path ?? '/mcp';
  const createServer = options.createServer ?? createExampleServer;
  const app = express();
  app.disable('x-powered-by');

  app.post(
    path,
    express.json({ limit: options.bodyLimit ?? '1mb' }),
    async (req: Request, res: Response) => {
      const server = createServer('example-streamable-http');
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      try {
        await server.connect(transport);
        await transport.handleRequest(req, res, req.body);
      } catch {
        if (!res.headersSent) {
          res.status(500).json({
            jsonrpc: '2.0',
            error: { code: -32603, message: 'Internal server error' },
            id: null,
          });
        }
      }
    },
  );

  const methodNotAllowed = (_req: Request, res: Response): void => {
    res
      .status(405)
      .set('Allow', 'POST')
      .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
  };
  app.get(path, methodNotAllowed);
  app.delete(path, methodNotAllowed);
  return app;
}
