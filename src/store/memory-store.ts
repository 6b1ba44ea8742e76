import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import {
  assertListBound,
  chainedAppendHash,
  StoreFullError,
  type ChainEntry,
  type JsonObject,
  type ReadChainedOptions,
  type Store,
} from './store.js';

/**
 * What one key holds. Values are kept as their JSON text, exactly as {@link RedisStore} keeps
 * them, so that the embedded store behaves like the production one: every read returns a fresh
 * object (callers cannot mutate stored state through a reference they kept), and anything that
 * does not survive JSON (a `Date`, `undefined` fields, a `Map`) comes back the same way it
 * would from Redis instead of working in development and breaking after deployment.
 *
 * A set, a counter, a chain or a list is one key, whatever its size, so `maxEntries` bounds
 * keys, not members. Chain ids are `<n>-0` with `n` counting from 1 per chain, shaped like Redis
 * stream ids. A list keeps its records oldest first (appending is then a push, not a shift).
 */
type Entry =
  | { kind: 'value'; json: string }
  | { kind: 'set'; members: Set<string> }
  | { kind: 'counter'; count: number }
  | { kind: 'chain'; records: { id: number; json: string }[]; head: string; lastId: number }
  | { kind: 'list'; records: string[] };

/** A key's entry and when it expires (`performance.now()` milliseconds; `Infinity`: never). */
interface Slot {
  entry: Entry;
  expiresAt: number;
}

export interface MemoryStoreOptions {
  /**
   * Upper bound on the number of keys. When it is reached, a write that would create a key
   * rejects with {@link StoreFullError} (once expired entries are swept); nothing is evicted,
   * as with Redis's `noeviction`. Evicting would let traffic anyone can drive (one key per
   * session id, login attempt or registration) push out what denies access: a session's
   * binding, a disabled client, a revocation.
   */
  maxEntries: number;
  /**
   * Keys admitted even when the store is full: the few fixed keys that hold what denies access
   * (the disabled clients, the revocation list), so that an administrator can still disable a
   * client or revoke a grant while other traffic keeps the store full. A fixed list: the store
   * then holds at most `maxEntries` plus its length.
   */
  reservedKeys?: readonly string[];
}

/** How often expired entries are swept (they are also swept whenever the store is full). */
const PURGE_INTERVAL_MS = 60_000;

/**
 * The embedded {@link Store}: one process, bounded by `maxEntries`.
 *
 * Every operation runs synchronously on the single JavaScript thread, so each one is atomic
 * with respect to every other: of concurrent `take`/`markConsumed` callers exactly one wins,
 * which is what keeps authorization codes (RFC 6749 §4.1.2) and rotated refresh tokens
 * (RFC 9700 §4.14) single-use. That guarantee covers one process only: several replicas need
 * {@link RedisStore}.
 *
 * Expiry: a read never returns an expired entry (it is dropped then, as Redis does lazily).
 * Keys with a TTL are also filed by the second their TTL ends in, so that a sweep visits only
 * what has expired: the store can be full under a flood, and each refused write sweeps first.
 * An entry is swept within a second of its expiry.
 */
export class MemoryStore implements Store {
  readonly #slots = new Map<string, Slot>();
  /** Second of `performance.now()` → the keys whose TTL ends within the second before it. */
  readonly #expiring = new Map<number, Set<string>>();
  /** Every second before this one has been swept. */
  #sweptBefore = 0;
  readonly #maxEntries: number;
  readonly #reserved: ReadonlySet<string>;
  readonly #purgeTimer: NodeJS.Timeout;
  readonly #channels = new EventEmitter().setMaxListeners(0);
  #closed = false;

  constructor(options: MemoryStoreOptions) {
    if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${options.maxEntries}`);
    }
    this.#maxEntries = options.maxEntries;
    this.#reserved = new Set(options.reservedKeys ?? []);
    // Without a sweep, entries that expire unread would hold their memory until the store fills.
    this.#purgeTimer = setInterval(() => this.#sweep(), PURGE_INTERVAL_MS);
    this.#purgeTimer.unref();
  }

  async get<T extends JsonObject = JsonObject>(key: string): Promise<T | undefined> {
    this.#assertOpen();
    const slot = this.#live(key);
    return slot === undefined ? undefined : parseValue<T>(expectValue(slot.entry, key).json);
  }

  async set(key: string, value: JsonObject, ttlSeconds?: number): Promise<void> {
    this.#assertOpen();
    const json = serializeValue(value);
    // A set without TTL clears any previous TTL, like Redis SET.
    const expiresAt = expiryOf(ttlSeconds);
    const slot = this.#live(key);
    if (slot === undefined) {
      this.#create(key, { kind: 'value', json }, expiresAt);
      return;
    }
    slot.entry = { kind: 'value', json };
    this.#expireAt(key, slot, expiresAt);
  }

  async setIfAbsent(key: string, value: JsonObject, ttlSeconds?: number): Promise<boolean> {
    this.#assertOpen();
    const json = serializeValue(value);
    const expiresAt = expiryOf(ttlSeconds);
    // An expired record is absent, so it can be replaced.
    if (this.#live(key) !== undefined) return false;
    this.#create(key, { kind: 'value', json }, expiresAt);
    return true;
  }

  async replaceIf(
    key: string,
    field: string,
    expected: string,
    value: JsonObject,
  ): Promise<boolean> {
    this.#assertOpen();
    const json = serializeValue(value);
    const slot = this.#live(key);
    if (slot === undefined) return false;
    const current = parseValue(expectKind(slot.entry, 'value', key).json);
    if (current[field] !== expected) return false;
    slot.entry = { kind: 'value', json };
    this.#expireAt(key, slot, Infinity);
    return true;
  }

  async delete(...keys: string[]): Promise<void> {
    this.#assertOpen();
    for (const key of keys) this.#remove(key);
  }

  async take<T extends JsonObject = JsonObject>(key: string): Promise<T | undefined> {
    this.#assertOpen();
    const slot = this.#live(key);
    if (slot === undefined) return undefined;
    const { json } = expectValue(slot.entry, key);
    this.#remove(key);
    return parseValue<T>(json);
  }

  async markConsumed(key: string, field: string, now: number): Promise<boolean> {
    this.#assertOpen();
    assertTimestamp(now);
    const slot = this.#live(key);
    if (slot === undefined) return false;
    const stored = expectValue(slot.entry, key);
    const value = parseValue(stored.json);
    const current = Object.hasOwn(value, field) ? value[field] : undefined;
    if (current !== undefined && current !== null) return false;
    value[field] = now;
    // Updating the entry in place leaves its expiry untouched.
    stored.json = JSON.stringify(value);
    return true;
  }

  async addToSet(key: string, members: string[], ttlSeconds?: number): Promise<void> {
    this.#assertOpen();
    const expiresAt = expiryOf(ttlSeconds);
    if (members.length === 0) return;
    const slot = this.#live(key);
    if (slot === undefined) {
      this.#create(key, { kind: 'set', members: new Set(members) }, expiresAt);
      return;
    }
    const set = expectKind(slot.entry, 'set', key);
    for (const member of members) set.members.add(member);
    // Only ever extend: a set without TTL stays permanent, a longer TTL is kept.
    if (ttlSeconds !== undefined && expiresAt > slot.expiresAt) {
      this.#expireAt(key, slot, expiresAt);
    }
  }

  async setMembers(key: string): Promise<string[]> {
    this.#assertOpen();
    const slot = this.#live(key);
    return slot === undefined ? [] : [...expectKind(slot.entry, 'set', key).members];
  }

  async removeFromSet(key: string, members: string[]): Promise<void> {
    this.#assertOpen();
    const slot = this.#live(key);
    if (slot === undefined) return;
    const set = expectKind(slot.entry, 'set', key);
    for (const member of members) set.members.delete(member);
    // Like Redis, an empty set does not exist (and frees its room).
    if (set.members.size === 0) this.#remove(key);
  }

  async setSize(key: string): Promise<number> {
    this.#assertOpen();
    const slot = this.#live(key);
    return slot === undefined ? 0 : expectKind(slot.entry, 'set', key).members.size;
  }

  async increment(key: string, ttlSeconds?: number): Promise<number> {
    this.#assertOpen();
    const expiresAt = expiryOf(ttlSeconds);
    const slot = this.#live(key);
    if (slot === undefined) {
      this.#create(key, { kind: 'counter', count: 1 }, expiresAt);
      return 1;
    }
    const counter = expectKind(slot.entry, 'counter', key);
    counter.count += 1;
    // Like EXPIRE NX: a counter that has a TTL keeps it (fixed window, never extended).
    if (slot.expiresAt === Infinity) this.#expireAt(key, slot, expiresAt);
    return counter.count;
  }

  async appendChained(
    key: string,
    record: JsonObject,
    expectedPrevHash: string | null,
    maxLength: number,
  ): Promise<boolean> {
    this.#assertOpen();
    const { json, hash } = chainRecord(record, expectedPrevHash, maxLength);
    const slot = this.#live(key);
    const chain = slot === undefined ? undefined : expectKind(slot.entry, 'chain', key);
    if ((chain?.head ?? null) !== expectedPrevHash) return false;
    if (chain === undefined) {
      this.#create(
        key,
        { kind: 'chain', records: [{ id: 1, json }], head: hash, lastId: 1 },
        Infinity,
      );
      return true;
    }
    chain.lastId += 1;
    chain.records.push({ id: chain.lastId, json });
    chain.head = hash;
    if (chain.records.length > maxLength) chain.records.splice(0, chain.records.length - maxLength);
    return true;
  }

  async readChained(key: string, options: ReadChainedOptions = {}): Promise<ChainEntry[]> {
    this.#assertOpen();
    const after = options.after === undefined ? 0 : parseChainId(options.after);
    const count = chainCount(options.count);
    const slot = this.#live(key);
    if (slot === undefined) return [];
    const { records } = expectKind(slot.entry, 'chain', key);
    // Ids increase along the array: skip to the first one after `after`.
    let start = 0;
    while (start < records.length && records[start]!.id <= after) start += 1;
    return records
      .slice(start, count === undefined ? undefined : start + count)
      .map(({ id, json }) => ({ id: `${id}-0`, record: parseValue(json) }));
  }

  async lastChained(key: string): Promise<ChainEntry | undefined> {
    this.#assertOpen();
    const slot = this.#live(key);
    if (slot === undefined) return undefined;
    const last = expectKind(slot.entry, 'chain', key).records.at(-1);
    return last === undefined ? undefined : { id: `${last.id}-0`, record: parseValue(last.json) };
  }

  async chainHead(key: string): Promise<string | null> {
    this.#assertOpen();
    const slot = this.#live(key);
    return slot === undefined ? null : expectKind(slot.entry, 'chain', key).head;
  }

  async pushRecent(key: string, records: JsonObject[], maxLength: number): Promise<void> {
    this.#assertOpen();
    assertListBound('maxLength', maxLength);
    // Every record is checked before anything is written, as Redis's MULTI fails as a whole.
    const texts = records.map(serializeValue);
    if (texts.length === 0) return;
    const slot = this.#live(key);
    const list = slot === undefined ? undefined : expectKind(slot.entry, 'list', key);
    if (list === undefined) {
      this.#create(key, { kind: 'list', records: texts.slice(-maxLength) }, Infinity);
      return;
    }
    list.records.push(...texts);
    if (list.records.length > maxLength) list.records.splice(0, list.records.length - maxLength);
  }

  async readRecent(key: string, count: number): Promise<JsonObject[]> {
    this.#assertOpen();
    assertListBound('count', count);
    const slot = this.#live(key);
    if (slot === undefined) return [];
    const { records } = expectKind(slot.entry, 'list', key);
    return records
      .slice(-count)
      .reverse()
      .map((json) => parseValue(json));
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#assertOpen();
    this.#channels.emit(channel, message);
  }

  async subscribe(
    channel: string,
    listener: (message: string) => void,
  ): Promise<() => Promise<void>> {
    this.#assertOpen();
    this.#channels.on(channel, listener);
    return async () => {
      this.#channels.off(channel, listener);
    };
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#purgeTimer);
    this.#channels.removeAllListeners();
    this.#slots.clear();
    this.#expiring.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('MemoryStore is closed');
  }

  /** The key's slot, or `undefined` when absent or expired (an expired one is dropped now). */
  #live(key: string): Slot | undefined {
    const slot = this.#slots.get(key);
    if (slot !== undefined && slot.expiresAt !== Infinity && slot.expiresAt <= performance.now()) {
      this.#remove(key);
      return undefined;
    }
    return slot;
  }

  /**
   * Adds a key that is absent. When the store is full, expired entries are swept first; if
   * that frees nothing, the write is refused: nothing live is ever evicted to make room.
   */
  #create(key: string, entry: Entry, expiresAt: number): void {
    if (this.#slots.size >= this.#maxEntries && !this.#reserved.has(key)) {
      this.#sweep();
      if (this.#slots.size >= this.#maxEntries) {
        throw new StoreFullError(
          `The memory store is full (${this.#maxEntries} keys, store.memory.maxEntries): new keys are refused until entries expire or are deleted`,
        );
      }
    }
    const slot: Slot = { entry, expiresAt: Infinity };
    this.#slots.set(key, slot);
    this.#expireAt(key, slot, expiresAt);
  }

  /** Sets when a slot expires, keeping the index of expiring keys in step. */
  #expireAt(key: string, slot: Slot, expiresAt: number): void {
    const before = slot.expiresAt;
    slot.expiresAt = expiresAt;
    const second = Math.ceil(expiresAt / 1000);
    // Filed under the same second already (both `Infinity`, or a rewrite within the second).
    if (Math.ceil(before / 1000) === second) return;
    if (before !== Infinity) this.#unfile(key, before);
    if (expiresAt === Infinity) return;
    let keys = this.#expiring.get(second);
    if (keys === undefined) {
      keys = new Set();
      this.#expiring.set(second, keys);
    }
    keys.add(key);
  }

  #unfile(key: string, expiresAt: number): void {
    const second = Math.ceil(expiresAt / 1000);
    const keys = this.#expiring.get(second);
    keys?.delete(key);
    if (keys?.size === 0) this.#expiring.delete(second);
  }

  #remove(key: string): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    this.#slots.delete(key);
    if (slot.expiresAt !== Infinity) this.#unfile(key, slot.expiresAt);
  }

  /**
   * Drops every key filed under a second that has fully passed. Costs the number of keys
   * dropped plus the seconds since the last sweep (or the number of filed seconds, if fewer).
   */
  #sweep(): void {
    const current = Math.floor(performance.now() / 1000);
    const drop = (second: number): void => {
      const keys = this.#expiring.get(second);
      if (keys === undefined) return;
      this.#expiring.delete(second);
      for (const key of keys) this.#slots.delete(key);
    };
    if (current - this.#sweptBefore > this.#expiring.size) {
      for (const second of this.#expiring.keys()) if (second <= current) drop(second);
    } else {
      for (let second = this.#sweptBefore; second <= current; second += 1) drop(second);
    }
    this.#sweptBefore = current + 1;
  }
}

/**
 * When an entry written now with `ttlSeconds` expires (`Infinity` without one). Rejects TTLs
 * Redis would reject too (`SET ... EX` takes a positive integer).
 */
function expiryOf(ttlSeconds: number | undefined): number {
  if (ttlSeconds === undefined) return Infinity;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
  }
  return performance.now() + ttlSeconds * 1000;
}

/**
 * `markConsumed` stores `now` as a number; NaN or Infinity would serialise as `null`, which reads
 * as "not consumed" and would let the same code be redeemed again.
 */
function assertTimestamp(now: number): void {
  if (!Number.isFinite(now)) throw new RangeError(`now must be a finite number, got ${now}`);
}

function serializeValue(value: JsonObject): string {
  const json: unknown = JSON.stringify(value);
  if (typeof json !== 'string' || !json.startsWith('{')) {
    throw new TypeError('Store values must be JSON objects');
  }
  return json;
}

/** Checks an `appendChained` call as {@link RedisStore} does; returns the text and its head. */
function chainRecord(
  record: JsonObject,
  expectedPrevHash: string | null,
  maxLength: number,
): { json: string; hash: string } {
  const hash = chainedAppendHash(record, expectedPrevHash, maxLength);
  return { json: serializeValue(record), hash };
}

/** The `n` of an id `<n>-<m>` (or `<n>`), as an exclusive lower bound. */
function parseChainId(id: string): number {
  const match = /^(\d+)(?:-(\d+))?$/.exec(id);
  if (!match) throw new TypeError(`Invalid chain id ${JSON.stringify(id)}`);
  // `<n>-<m>` with m > 0 lies after `<n>-0`, the only id this store gives out for `n`.
  return Number(match[1]) + (match[2] !== undefined && Number(match[2]) > 0 ? 0.5 : 0);
}

function chainCount(count: number | undefined): number | undefined {
  if (count === undefined) return undefined;
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new RangeError(`count must be a positive integer, got ${count}`);
  }
  return count;
}

function parseValue<T extends JsonObject = JsonObject>(json: string): T {
  return JSON.parse(json) as T;
}

function expectKind<K extends Entry['kind']>(
  entry: Entry,
  kind: K,
  key: string,
): Extract<Entry, { kind: K }> {
  if (entry.kind !== kind) {
    // Same failure as Redis gives for mixing types on one key: a caller bug, not data.
    throw new Error(`WRONGTYPE key ${JSON.stringify(key)} holds a ${entry.kind}, not a ${kind}`);
  }
  return entry as Extract<Entry, { kind: K }>;
}

function expectValue(entry: Entry, key: string): { kind: 'value'; json: string } {
  return expectKind(entry, 'value', key);
}
