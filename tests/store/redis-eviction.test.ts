/**
 * The start-up check of Redis's eviction policy (src/store/redis-eviction.ts), on real
 * redis-servers started with each setting, through the service's own start-up.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { configSchema } from '../../src/config/schema.js';
import { createGateway, StartupRefused, type Gateway } from '../../src/gateway.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { captureLogger } from '../helpers/captured-logger.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { waitFor } from './contract.js';

describeWithBinary('redis-server', 'the start-up check of Redis eviction', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function redisWith(args: string[]): Promise<RedisServer> {
    const server = await startRedis({ extraArgs: args });
    cleanups.push(() => server.stop());
    return server;
  }

  /** Builds the service on `redis` as `main.ts` does; resolves with its log and outcome. */
  async function start(redis: RedisServer) {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-eviction-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const config = configSchema.parse({
      issuer: 'http://localhost:1',
      listen: { host: '127.0.0.1', port: 0 },
      dataDir,
      login: { dev: { users: ['alice@example.com'] } },
      resources: [{ url: 'http://localhost:3999/mcp', name: 'Test MCP', scopes: ['mcp:tools'] }],
      store: { redis: { url: redis.url, keyPrefix: 'eviction:' } },
    });
    const captured = captureLogger();
    let gateway: Gateway | undefined;
    let refusal: unknown;
    try {
      gateway = await createGateway(config, { logger: captured.logger });
      const started = gateway;
      cleanups.push(() => started.close());
    } catch (error) {
      refusal = error;
    }
    const warnings = captured
      .records()
      .filter((record) => record.event === 'startup_warning')
      .map((record) => String(record.message));
    return { gateway, refusal, warnings };
  }

  it('refuses to start on a Redis that evicts when full, and lets go of it', async () => {
    for (const policy of ['allkeys-lru', 'volatile-ttl']) {
      const redis = await redisWith(['--maxmemory', '64mb', '--maxmemory-policy', policy]);
      const { gateway, refusal } = await start(redis);
      expect(gateway).toBeUndefined();
      expect(refusal).toBeInstanceOf(StartupRefused);
      expect((refusal as Error).message).toMatch(`maxmemory-policy ${policy}`);
      expect((refusal as Error).message).toMatch(/revocations.*noeviction/s);

      // The refused service closed its connection: only ours is left.
      const admin = new Redis(redis.url);
      try {
        await waitFor(
          async () =>
            String(await admin.client('LIST'))
              .trim()
              .split('\n').length === 1,
          'the refused service disconnects',
        );
      } finally {
        await admin.quit();
      }
    }
  });

  it('starts on a noeviction Redis, without a warning', async () => {
    const redis = await redisWith(['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction']);
    const { gateway, refusal, warnings } = await start(redis);
    // Started: no refusal (shown here if there was one) and a gateway to close.
    expect({ refusal, started: gateway !== undefined }).toEqual({
      refusal: undefined,
      started: true,
    });
    expect(warnings).toStrictEqual([]);
  });

  it('starts with a warning on an evicting policy without maxmemory (nothing is evicted yet)', async () => {
    const redis = await redisWith(['--maxmemory-policy', 'allkeys-lru']);
    const { gateway, refusal, warnings } = await start(redis);
    // Started: no refusal (shown here if there was one) and a gateway to close.
    expect({ refusal, started: gateway !== undefined }).toEqual({
      refusal: undefined,
      started: true,
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/allkeys-lru and no maxmemory.*noeviction/);
  });

  it('starts with a warning saying what to verify when CONFIG is refused (managed Redis)', async () => {
    const redis = await redisWith(['--rename-command', 'CONFIG', '']);
    const { gateway, refusal, warnings } = await start(redis);
    // Started: no refusal (shown here if there was one) and a gateway to close.
    expect({ refusal, started: gateway !== undefined }).toEqual({
      refusal: undefined,
      started: true,
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/cannot read Redis's maxmemory-policy.*verify.*noeviction/);
  });
});
