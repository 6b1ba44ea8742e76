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
import { getFreePort } from './ports.js';

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

/**
 * Starts a gateway. `overrides` is raw configuration (as in the YAML file) merged over a
 * minimal default: issuer on the chosen port, one dev user, one resource.
 */
export async function startGateway(
  overrides: (issuer: string, port: number) => Record<string, unknown> = () => ({}),
  options: { store?: Store; port?: number } = {},
): Promise<RunningGateway> {
  const port = options.port ?? (await getFreePort());
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
  await gateway.listen();
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
