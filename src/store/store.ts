/**
 * The state store every replica of the auth service shares.
 *
 * Two implementations exist: {@link MemoryStore} (embedded default, one process, bounded) and
 * {@link RedisStore} (production, several replicas). Both pass the same contract suite
 * (`tests/store/contract.ts`). Values are JSON-serialisable objects; keys are plain strings
 * chosen by callers (the implementation adds its own prefix where it needs one).
 *
 * Every write takes a time-to-live in seconds; `undefined` means "keep until deleted".
 * Expired entries are never returned. A TTL must be a positive integer (what Redis's
 * `EX` accepts); anything else rejects with a `RangeError` rather than silently storing forever.
 *
 * Values have JSON semantics in both implementations (a `Date` comes back as its ISO string,
 * `undefined` fields disappear) and are copies: mutating an object passed to or returned by the
 * store never changes what is stored. A key holds one kind of data (value, set, counter,
 * chain or list); using it as another kind rejects, as Redis's WRONGTYPE does.
 *
 * A full store never makes room by evicting: what denies access (revocations, disabled
 * clients, session bindings) must not be pushed out by traffic an attacker drives. It refuses
 * instead, with a {@link StoreFullError} and nothing written: the memory store refuses a write
 * that would create a key once it holds `maxEntries` live ones (writes to existing keys, reads
 * and deletes go on; expired entries are swept before it refuses); Redis, which must run with
 * `maxmemory-policy noeviction`, refuses every write that could use more memory once over
 * `maxmemory` (reads and deletes go on). Callers fail closed on it, as on any store error.
 */
export type JsonObject = { [key: string]: unknown };

/**
 * A write refused because the store is full (see {@link Store}). Nothing was written. The
 * message names no key: keys can embed token ids, and errors reach logs.
 */
export class StoreFullError extends Error {
  override readonly name = 'StoreFullError';
}

/** One record of a hash chain, with the id the store gave it (increasing along the chain). */
export interface ChainEntry {
  id: string;
  record: JsonObject;
}

export interface ReadChainedOptions {
  /** Only entries after this id (exclusive): the id of the last entry of the previous page. */
  after?: string;
  /** At most this many entries (a positive integer); default all. */
  count?: number;
}

/**
 * The port every module reaches shared state through. A write that needs room (every one that
 * can create a key: `set`, `setIfAbsent`, `addToSet`, `increment`, `appendChained`,
 * `pushRecent`; on Redis, any write) rejects with {@link StoreFullError} when the store is full.
 */
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

  /**
   * Replaces the object at `key` with `value` (no TTL, as `set` without one) only when the
   * stored object's `field` is the string `expected`; `false`, writing nothing, when the key is
   * absent or the field differs. Atomic: of several callers expecting the same value, one
   * wins. Used for edits that must not silently undo another one (a version field).
   */
  replaceIf(key: string, field: string, expected: string, value: JsonObject): Promise<boolean>;

  /** Deletes keys; absent keys are ignored. */
  delete(...keys: string[]): Promise<void>;

  /**
   * Atomically reads and deletes a value: of any number of concurrent callers (on any replica)
   * exactly one gets the value, the others get `undefined`. Used for single-use records such as
   * the upstream login `state`; a read followed by a delete would let two callers both win.
   */
  take<T extends JsonObject = JsonObject>(key: string): Promise<T | undefined>;

  /**
   * Atomically marks a stored value as consumed by setting `value[field] = now` (epoch
   * seconds) when the field is not yet set, keeping the remaining TTL. Returns `true` when
   * this call marked it, `false` when it was already marked or the key is absent. This is
   * what makes authorization codes (RFC 6749 §4.1.2) and rotated refresh tokens (RFC 9700
   * §4.14) single-use across replicas: of concurrent callers exactly one gets `true`.
   * A field holding `null` counts as not set. `now` must be finite: NaN would be stored as
   * `null` and the record could be consumed again. The rest of the value is kept byte-exact.
   */
  markConsumed(key: string, field: string, now: number): Promise<boolean>;

  /**
   * Adds members to a set. With `ttlSeconds`, a set this call creates gets that TTL and an
   * existing set's TTL is only ever extended (never shortened; a set without TTL stays without).
   * Adding no members is a no-op.
   */
  addToSet(key: string, members: string[], ttlSeconds?: number): Promise<void>;

  /** Lists a set's members (empty when absent). */
  setMembers(key: string): Promise<string[]>;

  /** Removes members from a set; a set left empty ceases to exist, as in Redis. */
  removeFromSet(key: string, members: string[]): Promise<void>;

  /** Number of members in a set (0 when absent). */
  setSize(key: string): Promise<number>;

  /**
   * Increments an integer counter and returns the new value; the TTL is set when the
   * counter is created and not extended afterwards (fixed windows).
   */
  increment(key: string, ttlSeconds?: number): Promise<number>;

  /**
   * Sends a message to every current subscriber of `channel`, in this process and (with
   * Redis) in every replica. Delivery is best effort: a replica that is disconnected misses
   * it, so subscribers that must not miss anything also re-read the state they follow.
   */
  publish(channel: string, message: string): Promise<void>;

  /** Calls `listener` for every message published on `channel`; returns the unsubscribe. */
  subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>>;

  /**
   * Appends `record` to the hash chain (an append-only log) at `key`, atomically, only when the
   * chain's current head is `expectedPrevHash` (`null`: the chain has no head yet). Returns
   * `false` and writes nothing otherwise, so that the caller can read the new head, recompute
   * its record and try again: of concurrent appends made against the same head (on any
   * replica) exactly one succeeds, which keeps one linear chain however many replicas write.
   *
   * The record already holds its own link and digest, computed by the caller; the store only
   * reads `record.hash` (a non-empty string, else a `TypeError`), which becomes the new head.
   * At most `maxLength` records are kept (a positive integer, else a `RangeError`): the oldest
   * are dropped, the head is not. The head lives next to the records (`<key>:head` in Redis);
   * a chain is never deleted through this interface. Used by the audit trail (src/audit/).
   */
  appendChained(
    key: string,
    record: JsonObject,
    expectedPrevHash: string | null,
    maxLength: number,
  ): Promise<boolean>;

  /**
   * Reads a chain's records, oldest first, each with its id; page with `after` set to the
   * last id read. Ids are opaque strings, increasing along the chain. Empty when absent.
   */
  readChained(key: string, options?: ReadChainedOptions): Promise<ChainEntry[]>;

  /** The newest record of a chain, or `undefined` when it has none. */
  lastChained(key: string): Promise<ChainEntry | undefined>;

  /**
   * The chain's head: the `hash` of the last record appended, or `null` for a chain never
   * appended to. It equals the newest record's hash unless records were removed behind the
   * store's back, which is what lets a verifier notice a truncated tail.
   */
  chainHead(key: string): Promise<string | null>;

  /**
   * Adds `records` (given oldest first) at the newest end of the bounded list at `key` and
   * keeps only its newest `maxLength` records (a positive integer, else a `RangeError`), in one
   * atomic step: however many replicas push at once, the list never exceeds `maxLength`.
   * Pushing no records is a no-op. The list has no TTL; its length is its bound. Used for the
   * admin console's recent activity (src/activity/), written in batches.
   */
  pushRecent(key: string, records: JsonObject[], maxLength: number): Promise<void>;

  /**
   * The newest `count` records (a positive integer, else a `RangeError`) of the list at `key`,
   * newest first; empty when absent.
   */
  readRecent(key: string, count: number): Promise<JsonObject[]>;

  /** Resolves when the store answers; rejects otherwise. Used by `/readyz`. */
  ping(): Promise<void>;

  /** Releases connections and timers. */
  close(): Promise<void>;
}

/**
 * The argument checks both stores make before `appendChained`; returns the record's `hash`.
 * Rejecting here (rather than storing) keeps a malformed record out of the chain for good.
 */
export function chainedAppendHash(
  record: JsonObject,
  expectedPrevHash: string | null,
  maxLength: number,
): string {
  if (!Number.isSafeInteger(maxLength) || maxLength < 1) {
    throw new RangeError(`maxLength must be a positive integer, got ${maxLength}`);
  }
  if (expectedPrevHash !== null && (typeof expectedPrevHash !== 'string' || !expectedPrevHash)) {
    throw new TypeError('expectedPrevHash must be a non-empty string or null');
  }
  const hash = record.hash;
  if (typeof hash !== 'string' || hash === '') {
    throw new TypeError('A chained record needs a non-empty string `hash`');
  }
  return hash;
}

/** The argument check both stores make for `pushRecent`'s `maxLength` and `readRecent`'s `count`. */
export function assertListBound(name: 'maxLength' | 'count', value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}
