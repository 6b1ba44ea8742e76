/**
 * A full store is said once in the log (src/store/store-full-report.ts), and the service fails
 * closed on it: checked on the wrapper itself and through the running service.
 */
import { describe, expect, it } from '@jest/globals';
import { MemoryStore } from '../../src/store/memory-store.js';
import { reportStoreFull } from '../../src/store/store-full-report.js';
import { StoreFullError } from '../../src/store/store.js';
import { captureLogger } from '../helpers/captured-logger.js';
import { startGateway } from '../helpers/gateway.js';
import { register, registerClient } from '../helpers/oauth-flow.js';
import { waitFor } from './contract.js';

function storeFullLines(records: Record<string, unknown>[]): Record<string, unknown>[] {
  return records.filter((record) => record.event === 'store_full');
}

describe('reportStoreFull', () => {
  it('logs the first refusal at once and later ones at most once per interval, with a count', async () => {
    const inner = new MemoryStore({ maxEntries: 1 });
    const captured = captureLogger();
    const store = reportStoreFull(inner, captured.logger, 200);
    try {
      await store.set('only', { v: 1 });
      for (let i = 0; i < 5; i += 1) {
        await expect(store.set(`new:${i}`, { v: i })).rejects.toThrow(StoreFullError);
      }
      expect(storeFullLines(captured.records())).toHaveLength(1);
      expect(storeFullLines(captured.records())[0]).toMatchObject({
        level: 'error',
        operation: 'set',
        refused: 1,
      });

      // Once the interval has passed, the next refusal is logged with those refused meanwhile.
      await waitFor(async () => {
        await store.increment('counter').catch(() => undefined);
        return storeFullLines(captured.records()).length === 2;
      }, 'a second report');
      const second = storeFullLines(captured.records())[1]!;
      expect(second.operation).toBe('increment');
      expect(Number(second.refused)).toBeGreaterThan(4);
      // The message names no key.
      expect(captured.lines.join('\n')).not.toMatch(/new:|counter"/);

      // Everything else passes through untouched, results and other errors alike.
      await expect(store.get('only')).resolves.toStrictEqual({ v: 1 });
      await store.set('only', { v: 2 });
      await expect(store.get('only')).resolves.toStrictEqual({ v: 2 });
      await expect(store.set('only', { v: 3 }, 0)).rejects.toThrow(RangeError);
      expect(storeFullLines(captured.records())).toHaveLength(2);
    } finally {
      await store.close();
    }
  });
});

describe('the service on a full store', () => {
  it('fails a registration closed and says so once in its log', async () => {
    const store = new MemoryStore({ maxEntries: 200 });
    const gateway = await startGateway(() => ({}), { store });
    try {
      await registerClient(gateway.url);
      // Other traffic fills the store (an evicting store would never refuse).
      let refusal: unknown;
      for (let n = 0; n < 1000 && refusal === undefined; n += 1) {
        refusal = await store.set(`filler:${n}`, { n }).catch((error: unknown) => error);
      }
      expect(refusal).toBeInstanceOf(StoreFullError);
      const first = await register(gateway.url);
      const second = await register(gateway.url);
      for (const refused of [first, second]) {
        expect(refused.status).toBeGreaterThanOrEqual(500);
        expect(refused.body.client_id).toBeUndefined();
      }
      const lines = storeFullLines(gateway.logRecords());
      expect(lines).toHaveLength(1);
      expect(String(lines[0]!.message)).toMatch(/store is full/);
    } finally {
      await gateway.stop();
      await store.close();
    }
  });
});
