/**
 * An MCP server as it sits behind the gateway: a real `@modelcontextprotocol/sdk` server over
 * Streamable HTTP with NO auth code at all. Stateless by default: the shipped example's app
 * (examples/mcp-servers, a new `McpServer` and transport per POST) with this file's tools; or with
 * `sessions: true` stateful as the SDK's session example (an `Mcp-Session-Id` issued on
 * initialize, its transport reused, 404 for an unknown session), served by express on a free
 * loopback port at `/mcp` (or `path`). Whatever the proxy in front lets through, it
 * answers; what it received is recorded, so tests can check what the gateway attached
 * (`X-Auth-*`) and what it kept away (the client's bearer token).
 *
 * Tools: `whoami` (JSON of the `X-Auth-*` headers and the `Authorization` header of the request
 * that carried the call) and `echo` (`{ text }` back).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import express, { type Request, type Response } from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { createStreamableHttpApp } from '../../examples/mcp-servers/src/streamable-http-app.js';
import { serveOnFreePort } from './ports.js';

/** One request as the MCP server received it (header names in lower case, as Node gives them). */
export interface SeenRequest {
  method: string;
  /** The path with its query string, as the proxy sent it, e.g. `/mcp`. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface StreamableServer {
  /** `http://127.0.0.1:PORT` (the MCP endpoint is `${url}/mcp`, or `${url}${path}`). */
  url: string;
  /** Every request that reached the server, in arrival order. */
  seenRequests: SeenRequest[];
  /** Closes the server and its open connections. Safe to call more than once. */
  stop(): Promise<void>;
}

/** What `whoami` reports: the identity headers and Authorization of the calling request. */
export function identityOf(headers: IncomingHttpHeaders | undefined): Record<string, unknown> {
  const identity: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.startsWith('x-auth-')) identity[name] = value;
  }
  identity.authorization = headers?.authorization ?? null;
  return identity;
}

/** The two tools every test MCP server behind the proxies offers. */
export function createToolServer(name: string): McpServer {
  const server = new McpServer({ name, version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'The X-Auth-* and Authorization headers of the request that called it' },
    // A tool without inputSchema gets only `extra`.
    async (extra) => ({
      content: [
        {
          type: 'text',
          text: JSON.stringify(identityOf(extra.requestInfo?.headers as IncomingHttpHeaders)),
        },
      ],
    }),
  );
  server.registerTool(
    'echo',
    { description: 'Returns the text it was given', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

export interface StreamableServerOptions {
  /** Where the MCP endpoint is (default `/mcp`). */
  path?: string;
  /** Stateful, with `Mcp-Session-Id` (default: stateless). */
  sessions?: boolean;
}

/** Starts the server; resolves once it listens (on a free port, retried when taken). */
export async function startStreamableServer(
  options: StreamableServerOptions = {},
): Promise<StreamableServer> {
  const path = options.path ?? '/mcp';
  const { app, seenRequests } = recordingApp();
  if (options.sessions) {
    serveSessions(app, path);
  } else {
    // The shipped example itself, with the test tools.
    app.use(createStreamableHttpApp({ path, createServer: createToolServer, bodyLimit: '4mb' }));
  }
  return { ...(await serveOnFreePort(app)), seenRequests };
}

/** An express app (no `X-Powered-By`) that records every request it receives, in order. */
export function recordingApp(): { app: express.Express; seenRequests: SeenRequest[] } {
  const seenRequests: SeenRequest[] = [];
  const app = express();
  app.disable('x-powered-by');
  app.use((req, _res, next) => {
    seenRequests.push({ method: req.method, path: req.originalUrl, headers: { ...req.headers } });
    next();
  });
  return { app, seenRequests };
}

/** The SDK's stateful pattern: one transport per session, found by `Mcp-Session-Id`. */
function serveSessions(app: express.Express, path: string): void {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const unknownSession = (res: Response) =>
    res
      .status(404)
      .json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
  app.post(path, express.json({ limit: '4mb' }), async (req: Request, res: Response) => {
    const sessionId = req.header('mcp-session-id');
    let transport = sessionId === undefined ? undefined : transports.get(sessionId);
    if (sessionId !== undefined && !transport) return unknownSession(res);
    if (!transport) {
      if (!isInitializeRequest(req.body)) {
        return res
          .status(400)
          .json({ jsonrpc: '2.0', error: { code: -32000, message: 'No session' }, id: null });
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void transports.set(id, created),
      });
      created.onclose = () => {
        if (created.sessionId) transports.delete(created.sessionId);
      };
      await createToolServer('streamable-session-server').connect(created);
      transport = created;
    }
    return transport.handleRequest(req, res, req.body);
  });
  const existing = async (req: Request, res: Response) => {
    const transport = transports.get(req.header('mcp-session-id') ?? '');
    if (!transport) return unknownSession(res);
    return transport.handleRequest(req, res);
  };
  app.get(path, existing);
  app.delete(path, existing);
}
