/**
 * The disabled-clients list as two replicas see it through one store: a change is heard at
 * once, a lost announcement is caught by the next re-read, and an announcement that arrives
 * while a re-read is in flight is not undone by the (older) set that re-read returns.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { DisabledClients } from '../../src/clients/disabled-clients.js';
import { DISABLED_CLIENTS_KEY } from '../../src/store/keys.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Store } from '../../src/store/store.js';
import { captureLogger } from '../helpers/captured-logger.js';

/** A store whose `setMembers` can be held, to put a re-read in flight at a chosen moment. */
function holdableStore(store: MemoryStore) {
  let held: { release: () => void; read: Promise<string[]> } | undefined;
  const wrapped = new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'setMembers') {
        return async (key: string) => {
          const members = await target.setMembers(key);
          if (!held) return members;
          // Answer what the set held when the read reached the store, once released.
          let release!: () => void;
          const gate = new Promise<void>((resolve) => (release = resolve));
          const read = gate.then(() => members);
          held = { release, read };
          return read;
        };
      }
      const value = Reflect.get(target, name, receiver) as unknown;
      return typeof value === 'function'
        ? (value as (...args: unknown[]) => unknown).bind(target)
        : value;
    },
  }) as Store;
  return {
    store: wrapped,
    hold: () => (held = { release: () => undefined, read: Promise.resolve([]) }),
    release: () => {
      const current = held!;
      held = undefined;
      current.release();
    },
  };
}

describe('DisabledClients', () => {
  const started: DisabledClients[] = [];
  afterEach(async () => {
    for (const list of started.splice(0)) await list.stop();
  });

  async function replica(store: Store) {
    const list = new DisabledClients(store, 3600, captureLogger().logger);
    await list.start();
    started.push(list);
    return list;
  }

  it('tells every replica of a change at once; enabling undoes it', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const a = await replica(store);
    const b = await replica(store);
    expect(await a.disable('dcr_one')).toBe(true);
    expect(b.isDisabled('dcr_one')).toBe(true);
    expect(await b.isDisabledInStore('dcr_one')).toBe(true);
    expect(await b.disable('dcr_one')).toBe(false);
    expect(await b.enable('dcr_one')).toBe(true);
    expect(a.isDisabled('dcr_one')).toBe(false);
    expect(await a.enable('dcr_one')).toBe(false);
    expect(await store.setMembers(DISABLED_CLIENTS_KEY)).toEqual([]);
  });

  it('catches a lost announcement at the next re-read', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const b = await replica(store);
    await store.addToSet(DISABLED_CLIENTS_KEY, ['https://app.example/client.json']);
    expect(b.isDisabled('https://app.example/client.json')).toBe(false);
    await b.refresh();
    expect(b.isDisabled('https://app.example/client.json')).toBe(true);
    await store.removeFromSet(DISABLED_CLIENTS_KEY, ['https://app.example/client.json']);
    await b.refresh();
    expect(b.isDisabled('https://app.example/client.json')).toBe(false);
  });

  it('keeps a change announced while a re-read is in flight', async () => {
    const memory = new MemoryStore({ maxEntries: 100 });
    const holdable = holdableStore(memory);
    const a = await replica(memory);
    const b = await replica(holdable.store);

    // B starts re-reading before A disables the client; the read answers the old (empty) set.
    holdable.hold();
    const reading = b.refresh();
    await new Promise((resolve) => setImmediate(resolve));
    await a.disable('dcr_two');
    expect(b.isDisabled('dcr_two')).toBe(true);
    holdable.release();
    await reading;
    expect(b.isDisabled('dcr_two')).toBe(true);

    // And the other way round: enabled while B reads the set that still has it.
    holdable.hold();
    const again = b.refresh();
    await new Promise((resolve) => setImmediate(resolve));
    await a.enable('dcr_two');
    holdable.release();
    await again;
    expect(b.isDisabled('dcr_two')).toBe(false);
  });
});
