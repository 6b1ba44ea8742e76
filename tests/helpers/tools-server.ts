/**
 * An MCP server whose tools a test changes while it runs: a real `@modelcontextprotocol/sdk`
 * `McpServer` behind the shipped stateless Streamable HTTP app (examples/mcp-servers: a new
 * server per request), so every `tools/list` lists what `tools` holds at that moment. For tool
 * definition pinning: change a description, add a tool, and the gateway's next listing sees
 * it. Each tool takes `{ text }` and answers `<name>: <text>`.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { createStreamableHttpApp } from '../../examples/mcp-servers/src/streamable-http-app.js';
import { serveOnFreePort } from './ports.js';

export interface ToolsServer {
  /** `http://127.0.0.1:PORT`: where a proxy route sends requests. */
  url: string;
  /** The MCP endpoint, `${url}${path}`: the gateway's `upstream`. */
  endpoint: string;
  /** The tools listed, by name: the description of each. Change it at will. */
  tools: Map<string, string>;
  stop(): Promise<void>;
}

/** Starts the server with `tools` (name → description) on a free loopback port, at `path`. */
export async function startToolsServer(
  tools: Record<string, string>,
  path = '/mcp',
): Promise<ToolsServer> {
  const current = new Map(Object.entries(tools));
  const app = createStreamableHttpApp({
    path,
    createServer: (name) => {
      const server = new McpServer({ name, version: '1.0.0' });
      for (const [tool, description] of current) {
        server.registerTool(
          tool,
          { description, inputSchema: { text: z.string().optional() } },
          async ({ text }) => ({ content: [{ type: 'text', text: `${tool}: ${text ?? ''}` }] }),
        );
      }
      return server;
    },
  });
  const served = await serveOnFreePort(app);
  return {
    url: served.url,
    endpoint: `${served.url}${path}`,
    tools: current,
    stop: () => served.stop(),
  };
}
