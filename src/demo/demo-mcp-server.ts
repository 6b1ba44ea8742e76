/**
 * The demo MCP server of the embedded default: a small Streamable HTTP server (stateless, at
 * `/mcp`) made with the MCP SDK, with no auth code, listening on a loopback port that only the
 * demo front (forward-auth-front.ts) is meant to reach. It exists so that `npm start` gives a
 * protected MCP server real clients can use at once; production deployments put their own MCP
 * servers behind Traefik instead and never load this module.
 *
 * Its tools are harmless: `whoami` (the identity the gateway attached), `echo`, `add`, and
 * `team_report`, which the embedded default's tool rule gives to the `dev:admins` group only,
 * so the decision point's per-tool authorization can be seen refusing another user.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

/** The tool the embedded default's tool rule restricts (src/config/load.ts). */
export const RESTRICTED_DEMO_TOOL = 'team_report';

const header = (headers: IncomingHttpHeaders | undefined, name: string): string => {
  const value = headers?.[name];
  const text = Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] });

function demoServer(): McpServer {
  const server = new McpServer({ name: 'mcp-gateway-demo', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Who is calling: the identity the gateway attached to this request' },
    async (extra) => {
      const headers = extra.requestInfo?.headers as IncomingHttpHeaders | undefined;
      return text(
        JSON.stringify({
          user: header(headers, 'x-auth-user-id'),
          email: header(headers, 'x-auth-user-email'),
          groups: header(headers, 'x-auth-user-groups'),
          client: header(headers, 'x-auth-client-id'),
          scopes: header(headers, 'x-auth-scopes'),
        }),
      );
    },
  );
  server.registerTool(
    'echo',
    { description: 'Returns the text it was given', inputSchema: { text: z.string().max(1000) } },
    async ({ text: value }) => text(value),
  );
  server.registerTool(
    'add',
    { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => text(String(a + b)),
  );
  server.registerTool(
    RESTRICTED_DEMO_TOOL,
    { description: 'A report only members of dev:admins may read (a tool rule says so)' },
    async () => text('Team report: all systems nominal.'),
  );
  return server;
}

export interface DemoMcpServer {
  /** `http://127.0.0.1:PORT` (the endpoint is `/mcp`). */
  url: string;
  close(): Promise<void>;
}

/** Starts the demo server on a free loopback port. */
export async function startDemoMcpServer(): Promise<DemoMcpServer> {
  const httpServer: Server = createServer((req, res) => {
    if (req.url !== '/mcp' || req.method !== 'POST') {
      // Stateless: no GET stream, no session to end.
      res.writeHead(req.url === '/mcp' ? 405 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: req.url === '/mcp' ? 'method not allowed' : 'not found' }));
      return;
    }
    const server = demoServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', resolve);
  });
  const { port } = httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      }),
  };
}
