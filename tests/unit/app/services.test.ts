/**
 * The shared parts the service and the CLI both build (src/app/services.ts): which store, where
 * the keys live, and which of the optional parts exist, for a given configuration. Pure: the
 * memory store is the only thing built, and closed.
 */
import { describe, expect, it } from '@jest/globals';
import {
  createAuditLog,
  createRevocationList,
  createStore,
  keyLocation,
} from '../../../src/app/services.js';
import { parseConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/logging/logger.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import { StoreFullError } from '../../../src/store/store.js';
import { RESERVED_KEYS } from '../../../src/store/keys.js';

const minimal = {
  issuer: 'https://auth.example.com',
  resources: [{ url: 'https://mcp.example.com/mcp', name: 'A' }],
  login: { dev: { users: ['a@example.com'] } },
};
const logger = createLogger({ level: 'error' });

describe('the shared parts', () => {
  it('keep the keys in the file, else in a shared store, else in dataDir', () => {
    const store = new MemoryStore({ maxEntries: 10 });
    try {
      const config = parseConfig(minimal);
      expect(keyLocation(config, store)).toEqual({ kind: 'dataDir', dir: config.dataDir });
      const redis = { ...config, store: { redis: { url: 'redis://x', keyPrefix: 'p:' } } };
      expect(keyLocation(redis, store)).toEqual({ kind: 'store', store });
      const file = { ...redis, keys: { ...config.keys, file: '/keys.json' } };
      expect(keyLocation(file, store)).toEqual({ kind: 'file', file: '/keys.json' });
    } finally {
      void store.close();
    }
  });

  it('build a bounded memory store that always admits what denies access', async () => {
    const store = createStore({ store: { memory: { maxEntries: 1 } } }, logger);
    try {
      expect(store).toBeInstanceOf(MemoryStore);
      await store.set('filler', { a: 1 });
      // Full: an ordinary key is refused, a reserved one still written.
      await expect(store.set('other', { a: 2 })).rejects.toThrow(StoreFullError);
      await store.addToSet(RESERVED_KEYS[0]!, ['client']);
      expect(await store.setMembers(RESERVED_KEYS[0]!)).toEqual(['client']);
    } finally {
      await store.close();
    }
  });

  it('build no audit log when it is disabled, and one when enabled', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    try {
      const off = parseConfig({ ...minimal, audit: { enabled: false } });
      expect(createAuditLog(off, store, logger)).toBeUndefined();
      const on = parseConfig({ ...minimal, audit: { enabled: true } });
      const audit = createAuditLog(on, store, logger);
      expect(audit).toBeDefined();
      await audit?.close();
    } finally {
      await store.close();
    }
  });

  it('keep a revoked grant as long as its access tokens can be valid', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    try {
      const config = parseConfig(minimal);
      const revocations = createRevocationList(config, store, logger);
      const before = Math.floor(Date.now() / 1000);
      await revocations.revoke('grant-1');
      const retention = config.tokens.accessTokenTtl + config.verify.clockSkew;
      const [member] = await store.setMembers('revocations:grants');
      const [grant, until] = (member ?? '').split(' ');
      expect(grant).toBe('grant-1');
      expect(Number(until) - before).toBeGreaterThanOrEqual(retention);
      expect(Number(until) - before).toBeLessThanOrEqual(retention + 1);
    } finally {
      await store.close();
    }
  });
});
