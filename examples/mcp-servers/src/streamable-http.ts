/**
 * Example MCP server over Streamable HTTP (protocol 2025-03-26 and later), stateless, at `/mcp`.
 *
 * Stateless: every POST gets a new `McpServer` and transport (no `Mcp-Session-Id`), so any
 * replica can answer any request and nothing is kept between requests. There is no standalone
 * GET stream and no session to DELETE: both answer 405.
 *
 * Behind the gateway (Traefik router `mcp-example`, resource `https://mcp.<domain>/mcp`) every
 * request has been authorized before it arrives; this file contains no auth code.
 */
import express, { type Request, type Response } from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createExampleServer } from './identity.js';
import { serve } from './serve.js';

const app = express();
app.disable('x-powered-by');

app.post('/mcp', express.json({ limit: '1mb' }), async (req: Request, res: Response) => {
  const server = createExampleServer('example-streamable-http');
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
});

const methodNotAllowed = (_req: Request, res: Response): void => {
  res
    .status(405)
    .set('Allow', 'POST')
    .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
};
app.get('/mcp', methodNotAllowed);
app.delete('/mcp', methodNotAllowed);

serve(app, 'example Streamable HTTP MCP server', 3001);
