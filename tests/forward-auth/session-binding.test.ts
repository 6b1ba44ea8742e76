/**
 * Session bindings on the real embedded store: the first owner keeps the session, another
 * replica (another instance on the same store) learns the binding from the store, sessions are
 * per resource, owners whose subject and client would read alike when joined stay apart, a
 * binding forgotten by a replica's cache is read back (never lost), and one owner's new
 * sessions are bounded instead of pushing other bindings out.
 */
import { describe, expect, it } from '@jest/globals';
import { SessionBindings } from '../../src/forward-auth/session-binding.js';
import { MemoryStore } from '../../src/store/memory-store.js';

const RESOURCE = 'https://mcp.example.com/mcp';
const alice = { subject: 'dev:alice@example.com', clientId: 'client-1' };
const bob = { subject: 'dev:bob@example.com', clientId: 'client-1' };

describe('SessionBindings', () => {
  it('keeps a session for its first owner, on every replica, per resource', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const options = { store, ttlSeconds: 60, cacheSize: 10, maxPerOwner: 10 };
    const [replicaA, replicaB] = [new SessionBindings(options), new SessionBindings(options)];

    await expect(replicaA.claim(RESOURCE, 's-1', alice)).resolves.toBe('owner');
    expect(replicaA.claim(RESOURCE, 's-1', alice)).toBe('owner'); // cached: synchronous
    expect(replicaA.claim(RESOURCE, 's-1', bob)).toBe('other');
    await expect(replicaB.claim(RESOURCE, 's-1', bob)).resolves.toBe('other'); // from the store
    expect(replicaB.claim(RESOURCE, 's-1', alice)).toBe('owner');
    await expect(replicaB.claim(`${RESOURCE}/other`, 's-1', bob)).resolves.toBe('owner');
    await store.close();
  });

  it('tells apart owners whose subject and client would read alike when joined', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const options = { store, ttlSeconds: 60, cacheSize: 10, maxPerOwner: 10 };
    const first = { subject: 'oidc:a\nb', clientId: 'c' };
    const second = { subject: 'oidc:a', clientId: 'b\nc' };
    await expect(new SessionBindings(options).claim(RESOURCE, 's-2', first)).resolves.toBe('owner');
    const other = new SessionBindings(options);
    await expect(other.claim(RESOURCE, 's-2', second)).resolves.toBe('other');
    expect(other.claim(RESOURCE, 's-2', first)).toBe('owner');
    await store.close();
  });

  it("refuses one owner's new sessions over its quota and never loses another's binding", async () => {
    const store = new MemoryStore({ maxEntries: 10_000 });
    // A cache of one: the victim's binding leaves it as soon as the attacker makes another.
    const bindings = new SessionBindings({ store, ttlSeconds: 60, cacheSize: 1, maxPerOwner: 50 });
    await expect(bindings.claim(RESOURCE, 'victim', alice)).resolves.toBe('owner');
    const outcomes: string[] = [];
    for (let i = 0; i < 1500; i += 1) outcomes.push(await bindings.claim(RESOURCE, `s-${i}`, bob));
    expect(outcomes.filter((outcome) => outcome === 'owner')).toHaveLength(50);
    expect(outcomes.filter((outcome) => outcome === 'quota')).toHaveLength(1450);
    // Sessions already bound stay usable by their owner over the quota.
    // (`await` whether or not the answer came from the cache.)
    expect(await bindings.claim(RESOURCE, 's-0', bob)).toBe('owner');
    expect(await bindings.claim(RESOURCE, 'victim', bob)).toBe('other');
    expect(await bindings.claim(RESOURCE, 'victim', alice)).toBe('owner');
    // The quota is per owner: Alice may still start sessions.
    expect(await bindings.claim(RESOURCE, 'alice-2', alice)).toBe('owner');
    await store.close();
  });
});
