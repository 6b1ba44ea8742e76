/**
 * Says in the log that the store is full, once, rather than once per refused write.
 *
 * A full store refuses writes that need room ({@link StoreFullError}); the callers fail closed
 * (an OAuth error, a 5xx, a refused `/verify`). Under a flood that is every request, and a line
 * per request would flood the log too: the first refusal is logged at once, later ones at most
 * once per `intervalMs`, with how many writes were refused since the last line. Every store
 * method passes through, so a method added to {@link Store} is covered without edits here.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logging/logger.js';
import { StoreFullError, type Store } from './store.js';

const REPORT_INTERVAL_MS = 60_000;

export function reportStoreFull(
  store: Store,
  logger: Logger,
  intervalMs = REPORT_INTERVAL_MS,
): Store {
  let lastReport = -Infinity;
  let refused = 0;
  const report = (operation: string, error: StoreFullError): void => {
    refused += 1;
    const now = performance.now();
    if (now - lastReport < intervalMs) return;
    logger.error(
      'the store is full: writes that need room are refused, and what needs them fails closed, until entries expire or are deleted (raise store.memory.maxEntries, or Redis maxmemory)',
      { event: 'store_full', operation, refused, error: error.message },
    );
    lastReport = now;
    refused = 0;
  };
  return new Proxy(store, {
    get(target, property) {
      // The target as receiver: a getter of a class with private fields needs its own `this`.
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (error) {
          if (error instanceof StoreFullError) report(String(property), error);
          throw error;
        }
      };
    },
  });
}
