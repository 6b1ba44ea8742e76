/**
 * Runs the real auth service in-process on a free loopback port, with its log captured so
 * tests can assert on it (and grep it for secrets).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configSchema, type GatewayConfig } from '../../src/config/schema.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import type { Store } from '../../src/store/store.js';
import { captureLogger } from './captured-logger.js';
import { onFreePort } from './ports.js';

export interface RunningGateway {
  url: string;
  config: GatewayConfig;
  gateway: Gateway;
  /** Every log line written so far (JSON strings). */
  logs: string[];
  /** Log lines parsed. */
  logRecords(): Record<string, unknown>[];
  stop(): Promise<void>;
}

export const DEFAULT_RESOURCE_PATH = '/mcp';

type Overrides = (issuer: string, port: number) => Record<string, unknown>;
interface StartOptions {
  store?: Store;
  port?: number;
}

/**
 * Starts a gateway. `overrides` is raw configuration (as in the YAML file) merged over a
 * minimal default: issuer on the chosen port, one dev user, one resource. Without `port`, on a
 * free port, started again on another one when it was taken before the gateway bound it.
 */
export async function startGateway(
  overrides: Overrides = () => ({}),
  options: StartOptions = {},
): Promise<RunningGateway> {
  if (options.port !== undefined) return launch(overrides, options, options.port);
  return onFreePort((port) => launch(overrides, options, port));
}

async function launch(
  overrides: Overrides,
  options: StartOptions,
  port: number,
): Promise<RunningGateway> {
  const issuer = `http://localhost:${port}`;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-data-'));
  const raw = {
    issuer,
    listen: { host: '127.0.0.1', port },
    dataDir,
    login: { dev: { users: ['alice@example.com', 'bob@example.com'] } },
    resources: [{ url: 'http://localhost:3999/mcp', name: 'Test MCP', scopes: ['mcp:tools'] }],
    log: { level: 'debug' },
    ...overrides(issuer, port),
  };
  const config = configSchema.parse(raw);
  const { logger, lines: logs } = captureLogger();
  const gateway = await createGateway(config, {
    logger,
    ...(options.store ? { store: options.store } : {}),
  });
  try {
    await gateway.listen();
  } catch (error) {
    await gateway.close();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: issuer,
    config,
    gateway,
    logs,
    logRecords: () => logs.map((line) => JSON.parse(line) as Record<string, unknown>),
    stop: async () => {
      await gateway.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a proxy that must name the gateway's address before the gateway binds it (its
 * forwardAuth / auth_request URL; or an upstream IdP given the gateway's callback on `port`),
 * then the gateway on that port with `overridesFor(proxy)`.
 * When another process took the port meanwhile, the proxy is stopped and both start again on a
 * new one.
 */
export async function startGatewayBehind<P extends { stop(): Promise<void> }>(
  startProxy: (authUrl: string, port: number) => Promise<P>,
  overridesFor: (proxy: P) => Overrides,
  options: Omit<StartOptions, 'port'> = {},
): Promise<{ proxy: P; gw: RunningGateway }> {
  return onFreePort(async (port) => {
    const proxy = await startProxy(`http://127.0.0.1:${port}`, port);
    try {
      return { proxy, gw: await startGateway(overridesFor(proxy), { ...options, port }) };
    } catch (error) {
      await proxy.stop();
      throw error;
    }
  });
}
