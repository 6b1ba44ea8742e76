/**
 * Session bindings on the real embedded store: the first owner keeps the session, another
 * replica (another instance on the same store) learns the binding from the store, sessions are
 * per resource, and owners whose subject and client would read alike when joined stay apart.
 */
import { describe, expect, it } from '@jest/globals';
import { SessionBindings } from '../../src/forward-auth/session-binding.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const RESOURCE = 'https://mcp.example.com/mcp';

describe('SessionBindings', () => {
  it('keeps a session for its first owner, on every replica, per resource', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const options = { store, ttlSeconds: 60, cacheSize: 10 };
    const [replicaA, replicaB] = [new SessionBindings(options), new SessionBindings(options)];
    const alice = { subject: 'dev:alice@example.com', clientId: 'client-1' };
    const bob = { subject: 'dev:bob@example.com', clientId: 'client-1' };

    await expect(replicaA.claim(RESOURCE, 's-1', alice)).resolves.toBe(true);
    expect(replicaA.claim(RESOURCE, 's-1', alice)).toBe(true); // cached: synchronous
    expect(replicaA.claim(RESOURCE, 's-1', bob)).toBe(false);
    await expect(replicaB.claim(RESOURCE, 's-1', bob)).resolves.toBe(false); // from the store
    expect(replicaB.claim(RESOURCE, 's-1', alice)).toBe(true);
    await expect(replicaB.claim(`${RESOURCE}/other`, 's-1', bob)).resolves.toBe(true);
    await store.close();
  });

  it('tells apart owners whose subject and client would read alike when joined', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const options = { store, ttlSeconds: 60, cacheSize: 10 };
    const first = { subject: 'oidc:a\nb', clientId: 'c' };
    const second = { subject: 'oidc:a', clientId: 'b\nc' };
    await expect(new SessionBindings(options).claim(RESOURCE, 's-2', first)).resolves.toBe(true);
    const other = new SessionBindings(options);
    await expect(other.claim(RESOURCE, 's-2', second)).resolves.toBe(false);
    expect(other.claim(RESOURCE, 's-2', first)).toBe(true);
    await store.close();
  });
});
