/**
 * Example MCP server over the legacy HTTP+SSE transport (protocol 2024-11-05), for clients that
 * have not moved to Streamable HTTP:
 *
 * - `GET  <BASE_PATH>/sse` opens the event stream; its first event, `endpoint`, names
 *   `<BASE_PATH>/messages?sessionId=…`;
 * - `POST <BASE_PATH>/messages?sessionId=…` carries the client's JSON-RPC messages, whose answers
 *   arrive on the stream.
 *
 * `BASE_PATH` (default `/servers/legacy`) is the public path: the server announces the messages
 * URL with it, so the proxy in front must forward the path unchanged (the Traefik router
 * `mcp-legacy-sse` does not strip it). Sessions live in this process's memory: run one replica,
 * or make the proxy keep a client on one replica.
 *
 * Behind the gateway (resource `https://mcp.<domain>/servers/legacy`) both the stream and every
 * POST are authorized before they arrive; this file contains no auth code.
 */
import express from 'express';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { createExampleServer } from './identity.js';
import { serve } from './serve.js';

const basePath = (process.env.BASE_PATH || '/servers/legacy').replace(/\/+$/, '');
const transports = new Map<string, SSEServerTransport>();

const app = express();
app.disable('x-powered-by');

app.get(`${basePath}/sse`, async (_req, res) => {
  const transport = new SSEServerTransport(`${basePath}/messages`, res);
  const server = createExampleServer('example-legacy-sse');
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

serve(app, 'example legacy HTTP+SSE MCP server', 3002);
