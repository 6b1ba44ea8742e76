import { describe, expect, it } from '@jest/globals';
import { MemoryStore } from '../../src/store/memory-store.js';
import { StoreFullError } from '../../src/store/store.js';
import { runStoreContract, waitFor } from './contract.js';

runStoreContract(
  'MemoryStore',
  async () => {
    const store = new MemoryStore({ maxEntries: 10_000 });
    return { store, cleanup: () => store.close() };
  },
  async () => {
    const store = new MemoryStore({ maxEntries: 50 });
    return { store, cleanup: () => store.close() };
  },
);

describe('MemoryStore bounds', () => {
  it('keeps every key once full, refusing new ones, whatever was used recently', async () => {
    const store = new MemoryStore({ maxEntries: 3 });
    try {
      await store.set('k1', { n: 1 });
      await store.set('k2', { n: 2 });
      await store.set('k3', { n: 3 });
      await store.get('k1');
      await expect(store.set('k4', { n: 4 })).rejects.toThrow(StoreFullError);
      await expect(store.set('k4', { n: 4 })).rejects.toThrow(/full \(3 keys/);

      const present = [];
      for (const key of ['k1', 'k2', 'k3', 'k4']) {
        if ((await store.get(key)) !== undefined) present.push(key);
      }
      expect(present).toStrictEqual(['k1', 'k2', 'k3']);
    } finally {
      await store.close();
    }
  });

  it('takes every kind of write to a key it holds while full', async () => {
    const store = new MemoryStore({ maxEntries: 6 });
    try {
      await store.set('value', { v: 1 }, 60);
      await store.addToSet('set', ['a'], 60);
      await store.increment('counter', 60);
      await store.appendChained('chain', { prev: null, hash: 'h1' }, null, 10);
      await store.pushRecent('list', [{ n: 1 }], 10);
      await store.set('code', { sub: 'alice' }, 60);
      await expect(store.set('other', { v: 1 })).rejects.toThrow(StoreFullError);

      await store.set('value', { v: 2 });
      await expect(store.setIfAbsent('value', { v: 3 })).resolves.toBe(false);
      await expect(store.replaceIf('value', 'v', 'x', { v: 4 })).resolves.toBe(false);
      await store.addToSet('set', ['b'], 120);
      await expect(store.increment('counter', 60)).resolves.toBe(2);
      await expect(
        store.appendChained('chain', { prev: 'h1', hash: 'h2' }, 'h1', 10),
      ).resolves.toBe(true);
      await store.pushRecent('list', [{ n: 2 }], 10);
      await expect(store.markConsumed('code', 'usedAt', 1)).resolves.toBe(true);

      await expect(store.get('value')).resolves.toStrictEqual({ v: 2 });
      expect((await store.setMembers('set')).sort()).toStrictEqual(['a', 'b']);
      await expect(store.chainHead('chain')).resolves.toBe('h2');
      await expect(store.readRecent('list', 10)).resolves.toStrictEqual([{ n: 2 }, { n: 1 }]);
      await expect(store.get('code')).resolves.toStrictEqual({ sub: 'alice', usedAt: 1 });
    } finally {
      await store.close();
    }
  });

  it('counts a set or a counter as one entry, whatever its size', async () => {
    const store = new MemoryStore({ maxEntries: 3 });
    try {
      const members = Array.from({ length: 1000 }, (_, i) => `m${i}`);
      await store.addToSet('set', members);
      for (let i = 0; i < 50; i += 1) await store.increment('counter');
      await store.set('value', { v: 1 });
      await expect(store.setSize('set')).resolves.toBe(1000);
      await expect(store.increment('counter')).resolves.toBe(51);
      await expect(store.get('value')).resolves.toStrictEqual({ v: 1 });

      await expect(store.set('extra', { v: 2 })).rejects.toThrow(StoreFullError);
      await expect(store.setSize('set')).resolves.toBe(1000);
    } finally {
      await store.close();
    }
  });

  it('sweeps expired entries before refusing, without waiting for the periodic sweep', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    try {
      for (let i = 0; i < 99; i += 1) await store.set(`short:${i}`, { i }, 1);
      await store.set('permanent', { p: 1 });
      await expect(store.setIfAbsent('late', { l: 1 })).rejects.toThrow(StoreFullError);
      // Within about two seconds (expiry is filed by the second) all 99 slots are free again.
      await waitFor(
        () => store.setIfAbsent('late', { l: 1 }).catch(() => false),
        'expired entries are swept',
      );
      for (let i = 0; i < 98; i += 1) await store.set(`new:${i}`, { i });
      await expect(store.set('one-too-many', { x: 1 })).rejects.toThrow(StoreFullError);
      await expect(store.get('permanent')).resolves.toStrictEqual({ p: 1 });
    } finally {
      await store.close();
    }
  });

  it('admits its reserved keys when full, and only those', async () => {
    const store = new MemoryStore({
      maxEntries: 2,
      reservedKeys: ['clients:disabled', 'revocations:grants'],
    });
    try {
      await store.set('a', { v: 1 });
      await store.set('b', { v: 2 });
      await store.addToSet('clients:disabled', ['mallory-client']);
      await store.addToSet('revocations:grants', ['grant 1'], 60);
      await expect(store.addToSet('other', ['x'])).rejects.toThrow(StoreFullError);
      await expect(store.setMembers('clients:disabled')).resolves.toStrictEqual(['mallory-client']);
      await expect(store.setSize('revocations:grants')).resolves.toBe(1);
    } finally {
      await store.close();
    }
  });

  it('rejects a maxEntries that is not a positive integer', () => {
    expect(() => new MemoryStore({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new MemoryStore({ maxEntries: 1.5 })).toThrow(RangeError);
  });

  it('refuses every operation after close', async () => {
    const store = new MemoryStore({ maxEntries: 10 });
    await store.set('k', { v: 1 });
    await store.close();
    await expect(store.get('k')).rejects.toThrow(/closed/);
    await expect(store.set('k', { v: 2 })).rejects.toThrow(/closed/);
    await expect(store.increment('c')).rejects.toThrow(/closed/);
  });
});
