/**
 * The state store every replica of the auth service shares.
 *
 * Two implementations exist: {@link MemoryStore} (embedded default, one process, bounded) and
 * {@link RedisStore} (production, several replicas). Both pass the same contract suite
 * (`tests/store/contract.ts`). Values are JSON-serialisable objects; keys are plain strings
 * chosen by callers (the implementation adds its own prefix where it needs one).
 *
 * Every write takes a time-to-live in seconds; `undefined` means "keep until deleted".
 * Expired entries are never returned.
 */
export type JsonObject = { [key: string]: unknown };

export interface Store {
  /** Reads a value, or `undefined` when absent or expired. */
  get<T extends JsonObject = JsonObject>(key: string): Promise<T | undefined>;

  /** Writes (replaces) a value with an optional TTL in seconds. */
  set(key: string, value: JsonObject, ttlSeconds?: number): Promise<void>;

  /**
   * Writes a value only when the key is absent. Returns `true` when this call wrote it.
   * Used for one-time records (e.g. upstream login `state`) and leader-less initialisation
   * (e.g. the first signing keys when several replicas start together).
   */
  setIfAbsent(key: string, value: JsonObject, ttlSeconds?: number): Promise<boolean>;

  /** Deletes keys; absent keys are ignored. */
  delete(...keys: string[]): Promise<void>;

  /**
   * Atomically reads and deletes a value: of any number of concurrent callers exactly one
   * gets the value, the others get `undefined`. Used for single-use records.
   */
  take<T extends JsonObject = JsonObject>(key: string): Promise<T | undefined>;

  /**
   * Atomically marks a stored value as consumed by setting `value[field] = now` (epoch
   * seconds) when the field is not yet set, keeping the remaining TTL. Returns `true` when
   * this call marked it, `false` when it was already marked or the key is absent. This is
   * what makes authorization codes and refresh tokens single-use across replicas.
   */
  markConsumed(key: string, field: string, now: number): Promise<boolean>;

  /** Adds members to a set, extending the set's TTL to at least `ttlSeconds` if given. */
  addToSet(key: string, members: string[], ttlSeconds?: number): Promise<void>;

  /** Lists a set's members (empty when absent). */
  setMembers(key: string): Promise<string[]>;

  /** Removes members from a set. */
  removeFromSet(key: string, members: string[]): Promise<void>;

  /** Number of members in a set (0 when absent). */
  setSize(key: string): Promise<number>;

  /**
   * Increments an integer counter and returns the new value; the TTL is set when the
   * counter is created and not extended afterwards (fixed windows).
   */
  increment(key: string, ttlSeconds?: number): Promise<number>;

  /** Resolves when the store answers; rejects otherwise. Used by `/readyz`. */
  ping(): Promise<void>;

  /** Releases connections and timers. */
  close(): Promise<void>;
}
