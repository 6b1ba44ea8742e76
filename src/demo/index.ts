/**
 * The demo of the embedded default (`npm start` without a configuration file): the demo MCP
 * server behind the demo front, at the URL of the embedded default's one resource. Loaded by
 * src/main.ts with a dynamic import only then, so that a deployment never loads it (and the
 * production image, installed without development dependencies, never needs the MCP SDK).
 */
import type { GatewayConfig } from '../config/schema.js';
import { startDemoMcpServer } from './demo-mcp-server.js';
import { DemoFront } from './forward-auth-front.js';

export { RESTRICTED_DEMO_TOOL } from './demo-mcp-server.js';

export interface RunningDemo {
  /** The protected MCP URL clients use. */
  mcpUrl: string;
  close(): Promise<void>;
}

/**
 * Starts the demo for `config` (the embedded default) with the gateway listening at
 * `gatewayUrl`. Rejects when the demo port is taken, saying which.
 */
export async function startDemo(
  config: Pick<GatewayConfig, 'resources' | 'verify'>,
  gatewayUrl: string,
): Promise<RunningDemo> {
  const resource = config.resources[0];
  if (!resource) throw new Error('the embedded default has no resource for the demo');
  const url = new URL(resource.url);
  const server = await startDemoMcpServer();
  const front = new DemoFront({
    port: Number(url.port),
    publicOrigin: url.origin,
    gatewayUrl,
    upstreamUrl: server.url,
    maxBodySize: config.verify.maxBodySize,
  });
  try {
    await front.listen();
  } catch (error) {
    await server.close();
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'EADDRINUSE'
        ? `the demo MCP server's port ${url.port} is in use (DEMO_PORT chooses another)`
        : `the demo MCP server could not start: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return {
    mcpUrl: resource.url,
    close: async () => {
      await front.close();
      await server.close();
    },
  };
}
