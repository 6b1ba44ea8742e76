/**
 * The product as deployed, for end-to-end tests: the real Traefik from the shipped files
 * (tests/helpers/traefik.ts) in front of the real gateway (in-process) and an SDK MCP server
 * at `/mcp`, the issuer being the auth host through Traefik, as MCP clients see it.
 *
 * `config` is the test's gateway configuration on top of the base (issuer, one resource at the
 * MCP URL): keys it gives replace the base's, as in tests/helpers/gateway.ts.
 */
import { startGateway, type RunningGateway } from './gateway.js';
import { onFreePort } from './ports.js';
import { startStreamableServer, type StreamableServer } from './streamable-server.js';
import { startTraefik, type RunningTraefik } from './traefik.js';

export interface TraefikStack {
  gw: RunningGateway;
  traefik: RunningTraefik;
  mcp: StreamableServer;
  /** `http://127.0.0.1:PORT/mcp`, through Traefik. */
  mcpUrl: string;
  /** Stops Traefik, the gateway and the MCP server; safe when a part never started. */
  stop(): Promise<void>;
}

export async function startTraefikStack(
  config: (mcpUrl: string) => Record<string, unknown> = () => ({}),
): Promise<TraefikStack> {
  const mcp = await startStreamableServer();
  try {
    // Traefik is told the gateway's port before the gateway binds it: when another process took
    // it meanwhile, both start again on a new one.
    return await onFreePort((gatewayPort) => startOnPort(gatewayPort, mcp, config));
  } catch (error) {
    await mcp.stop();
    throw error;
  }
}

async function startOnPort(
  gatewayPort: number,
  mcp: StreamableServer,
  config: (mcpUrl: string) => Record<string, unknown>,
): Promise<TraefikStack> {
  let traefik: RunningTraefik | undefined;
  try {
    traefik = await startTraefik({
      authUrl: `http://127.0.0.1:${gatewayPort}`,
      routes: [{ path: '/mcp', upstream: mcp.url }],
    });
    const mcpUrl = `${traefik.url}/mcp`;
    const running = traefik;
    const gw = await startGateway(
      () => ({
        issuer: running.authHostUrl,
        resources: [{ url: mcpUrl, name: 'Tools', scopes: ['mcp:tools'] }],
        ...config(mcpUrl),
      }),
      { port: gatewayPort },
    );
    return {
      gw,
      traefik: running,
      mcp,
      mcpUrl,
      stop: async () => {
        await running.stop();
        await gw.stop();
        await mcp.stop();
      },
    };
  } catch (error) {
    await traefik?.stop();
    throw error;
  }
}
