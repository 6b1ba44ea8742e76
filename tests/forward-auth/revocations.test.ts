/**
 * The revocation list's outage report on the real embedded store and the real logger: a list
 * that went stale (so `/verify` refused tokens under `fail-closed`) is reported as a
 * `store_outage` once, even when the next read succeeds before the poll timer looks.
 */
import { describe, expect, it } from '@jest/globals';
import { RevocationList } from '../../src/forward-auth/revocations.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { captureLogger } from '../helpers/captured-logger.js';
import { waitFor } from '../store/contract.js';

describe('RevocationList', () => {
  it('reports a stale list as one store_outage when it is read again, not at its first read', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const captured = captureLogger();
    // Polling every 50 ms: usable for 2 × 50 ms after a read. No timer: start() is not called,
    // so only the reads below can see the outage.
    const list = new RevocationList(store, 3600, 0.05, captured.logger);
    const outages = () => captured.records().filter((record) => record.event === 'store_outage');

    await list.refresh();
    expect(list.usable()).toBe(true);
    expect(outages()).toEqual([]);

    await waitFor(async () => !list.usable(), 'the list to go stale', { intervalMs: 10 });
    await list.refresh();
    expect(list.usable()).toBe(true);
    expect(outages()).toHaveLength(1);

    await waitFor(async () => !list.usable(), 'the list to go stale again', { intervalMs: 10 });
    await list.refresh();
    expect(outages()).toHaveLength(1); // once per outage: recovery is the timer's to announce
    await store.close();
  });
});
