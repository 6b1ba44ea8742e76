/**
 * The store with every operation timed and its failures counted (metrics.ts). A Proxy keeps
 * this in step with the Store interface: a method added there is measured here without edits.
 */
import type { Store } from '../store/store.js';
import type { GatewayMetrics } from './metrics.js';

/** Long-lived or control operations that are not "latency" in the sense of the histogram. */
const UNTIMED = new Set(['subscribe', 'close']);

export function instrumentStore(store: Store, metrics: GatewayMetrics): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string' || UNTIMED.has(property)) {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (...args: unknown[]) => {
        const started = performance.now();
        try {
          const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          metrics.storeOperation(property, (performance.now() - started) / 1000, false);
          return result;
        } catch (error) {
          metrics.storeOperation(property, (performance.now() - started) / 1000, true);
          throw error;
        }
      };
    },
  });
}
