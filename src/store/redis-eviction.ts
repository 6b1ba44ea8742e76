/**
 * The start-up check that Redis will never evict the gateway's keys.
 *
 * Redis makes room, when `maxmemory` is reached, according to `maxmemory-policy`; every policy
 * but `noeviction` deletes keys: the least recently used ones, random ones, or those with a TTL
 * (`volatile-*`). The keys that deny access (the revocation list, the disabled clients, session
 * bindings) are then exactly as likely to go as the ones an attacker can create at will, and a
 * revoked grant or a disabled client would work again. With `noeviction` a full Redis refuses
 * writes instead ({@link StoreFullError}), and callers fail closed.
 *
 * So: an evicting policy with a `maxmemory` set refuses start-up (fail closed: the command
 * answered and the answer is unsafe). An evicting policy without `maxmemory` evicts nothing now
 * (Redis grows until the host runs out), but would the moment someone sets one: a warning. When
 * `CONFIG` cannot be read (managed Redis often forbids or renames it) the setting cannot be
 * checked from here: a warning says what to verify. The check runs once, at start-up; a policy
 * changed on a running server afterwards goes unnoticed.
 */
import type { Logger } from '../logging/logger.js';
import type { RedisStore } from './redis-store.js';

const WHY =
  'any other policy lets Redis evict revocations, disabled clients and session bindings when it fills up, so that refused tokens work again';

/**
 * Reads the policy of the store's Redis: resolves with why the service must not start, or with
 * `undefined` when it may (after logging a warning when the policy could not be confirmed).
 */
export async function evictingRedisRefusal(
  store: RedisStore,
  logger: Logger,
): Promise<string | undefined> {
  let settings;
  try {
    settings = await store.memorySettings();
  } catch (error) {
    logger.warn(
      `cannot read Redis's maxmemory-policy (CONFIG GET failed): verify that Redis runs with maxmemory-policy noeviction (on a managed Redis, in its parameter group or settings); ${WHY}`,
      { event: 'startup_warning', error: (error as Error).message },
    );
    return undefined;
  }
  const { policy, maxmemory } = settings;
  if (policy === 'noeviction') return undefined;
  if (maxmemory > 0) {
    return `store.redis: Redis runs with maxmemory-policy ${policy} and maxmemory ${maxmemory}: once full it evicts keys, revocations, disabled clients and session bindings among them, so that refused tokens would work again. Set maxmemory-policy noeviction (redis-server --maxmemory-policy noeviction, or CONFIG SET maxmemory-policy noeviction)`;
  }
  logger.warn(
    `Redis runs with maxmemory-policy ${policy} and no maxmemory: nothing is evicted now, but setting a maxmemory would start evicting; set maxmemory-policy noeviction: ${WHY}`,
    { event: 'startup_warning', policy },
  );
  return undefined;
}
