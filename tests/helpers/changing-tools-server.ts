/**
 * An MCP server whose tool definitions a test changes while clients are connected: the shipped
 * example's stateless Streamable HTTP app (examples/mcp-servers), whose server lists, at each
 * request, the tools `tools` holds now. Each tool answers `<name>: <text>`.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { createStreamableHttpApp } from '../../examples/mcp-servers/src/streamable-http-app.js';
import { serveOnFreePort } from './ports.js';
import { recordingApp, type StreamableServer } from './streamable-server.js';

export interface ToolSpec {
  name: string;
  description: string;
}

export interface ChangingToolsServer extends StreamableServer {
  /** What the server lists from the next request on: edit it in place. */
  tools: ToolSpec[];
  /** `${url}${path}`: the MCP endpoint, as the gateway's `upstream`. */
  endpoint: string;
}

export async function startChangingToolsServer(
  tools: ToolSpec[],
  path = '/mcp',
): Promise<ChangingToolsServer> {
  const { app, seenRequests } = recordingApp();
  const createServer = (name: string) => {
    const server = new McpServer({ name, version: '1.0.0' });
    for (const tool of tools) {
      server.registerTool(
        tool.name,
        { description: tool.description, inputSchema: { text: z.string() } },
        async ({ text }) => ({ content: [{ type: 'text', text: `${tool.name}: ${text}` }] }),
      );
    }
    return server;
  };
  app.use(createStreamableHttpApp({ path, createServer, bodyLimit: '4mb' }));
  const served = await serveOnFreePort(app);
  return { ...served, seenRequests, tools, endpoint: `${served.url}${path}` };
}
