/**
 * A legacy HTTP+SSE MCP server (protocol 2024-11-05) as it sits behind the gateway: the shipped
 * example's app (examples/mcp-servers: `McpServer` over `SSEServerTransport`, NO auth code) with
 * this harness's tools, served by express on a free loopback port under a public path prefix:
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
import { createLegacySseApp } from '../../examples/mcp-servers/src/legacy-sse-app.js';
import { serveOnFreePort } from './ports.js';
import { createToolServer, recordingApp, type SeenRequest } from './streamable-server.js';

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

/** Starts the server; resolves once it listens (on a free port, retried when taken). */
export async function startLegacySseServer(
  options: StartLegacySseServerOptions,
): Promise<LegacySseServer> {
  const prefix = options.prefix.replace(/\/+$/, '');
  if (!prefix.startsWith('/')) throw new Error(`prefix must start with "/": ${options.prefix}`);
  const { app, seenRequests } = recordingApp();
  // The shipped example itself, with the test tools.
  const example = createLegacySseApp({ basePath: prefix, createServer: createToolServer });
  app.use(example.app);
  return { ...(await serveOnFreePort(app, () => example.closeSessions())), seenRequests };
}
