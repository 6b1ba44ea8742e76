import { describe, expect, it } from '@jest/globals';
import { MemoryStore } from '../../src/store/memory-store.js';
import { runStoreContract } from './contract.js';

runStoreContract('MemoryStore', async () => {
  const store = new MemoryStore({ maxEntries: 10_000 });
  return { store, cleanup: () => store.close() };
});

describe('MemoryStore bounds', () => {
  it('keeps at most maxEntries keys, evicting the least recently used', async () => {
    const store = new MemoryStore({ maxEntries: 3 });
    try {
      await store.set('k1', { n: 1 });
      await store.set('k2', { n: 2 });
      await store.set('k3', { n: 3 });
      await store.get('k1'); // k1 is now more recently used than k2
      await store.set('k4', { n: 4 });
      await store.set('k5', { n: 5 });

      const present = [];
      for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) {
        if ((await store.get(key)) !== undefined) present.push(key);
      }
      expect(present).toStrictEqual(['k1', 'k4', 'k5']);
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

      await store.set('extra', { v: 2 }); // evicts the least recently used: the set
      await expect(store.setSize('set')).resolves.toBe(0);
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
