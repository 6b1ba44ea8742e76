/**
 * The server catalog's edits on the real embedded store: two edits of one server racing from
 * the same version (both past the version check before either writes) end with one saved and
 * one refused as a conflict, never with the second silently undoing the first.
 */
import { describe, expect, it } from '@jest/globals';
import { ServerCatalog, ServerEditConflict } from '../../src/servers/catalog.js';
import type { ManagedServerInput } from '../../src/servers/managed-server.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { captureLogger } from '../helpers/captured-logger.js';

const input = (inFlight: number): ManagedServerInput => ({
  name: 'Notes',
  url: 'https://mcp.example.com/notes/mcp',
  upstream: 'http://notes:3000',
  scopes: ['notes'],
  allowedOrigins: [],
  upstreamAuthorization: 'none',
  rateLimitAverage: 50,
  rateLimitBurst: 100,
  inFlight,
  crowdsec: true,
});

describe('ServerCatalog edits', () => {
  it('lets one of two edits racing from the same version win; the other is a conflict', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const { logger } = captureLogger();
    const catalog = new ServerCatalog({
      store,
      configuredUrls: [],
      maxServers: 10,
      pollInterval: 3600,
      logger,
    });
    const added = await catalog.add(input(20), 'cli:test');

    const results = await Promise.allSettled([
      catalog.update(added.id, input(4), 'admin:one', added.updatedAt),
      catalog.update(added.id, input(5), 'admin:two', added.updatedAt),
    ]);
    const saved = results.filter((result) => result.status === 'fulfilled');
    const refused = results.filter((result) => result.status === 'rejected');
    expect(saved).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(ServerEditConflict);
    const winner = (saved[0] as PromiseFulfilledResult<{ inFlight: number; updatedBy: string }>)
      .value;
    await expect(store.get(`servers:server:${added.id}`)).resolves.toMatchObject({
      inFlight: winner.inFlight,
      updatedBy: winner.updatedBy,
    });
    await store.close();
  });
});
