import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import {
  assertListBound,
  chainedAppendHash,
  type ChainEntry,
  type JsonObject,
  type ReadChainedOptions,
  type Store,
} from './store.js';

/**
 * What one cache slot holds. Values are kept as their JSON text, exactly as {@link RedisStore}
 * keeps them, so that the embedded store behaves like the production one: every read returns a
 * fresh object (callers cannot mutate stored state through a reference they kept), and anything
 * that does not survive JSON (a `Date`, `undefined` fields, a `Map`) comes back the same way it
 * would from Redis instead of working in development and breaking after deployment.
 *
 * A set, a counter, a chain or a list is one slot, whatever its size, so `maxEntries` bounds
 * keys, not members. Chain ids are `<n>-0` with `n` counting from 1 per chain, shaped like Redis
 * stream ids. A list keeps its records oldest first (appending is then a push, not a shift).
 */
type Entry =
  | { kind: 'value'; json: string }
  | { kind: 'set'; members: Set<string> }
  | { kind: 'counter'; count: number }
  | { kind: 'chain'; records: { id: number; json: string }[]; head: string; lastId: number }
  | { kind: 'list'; records: string[] };

export interface MemoryStoreOptions {
  /**
   * Upper bound on the number of keys. When full, the least recently used key is evicted, so
   * memory stays bounded however many (possibly hostile) clients register or log in. Eviction
   * loses data: callers must store what grants access (a code, a session), never only what
   * denies it, so that a lost entry fails closed.
   */
  maxEntries: number;
}

/** How often expired entries are swept so they do not take slots away from live ones. */
const PURGE_INTERVAL_MS = 60_000;

/**
 * The embedded {@link Store}: one process, bounded by `maxEntries`, built on `lru-cache`.
 *
 * Every operation runs synchronously on the single JavaScript thread, so each one is atomic
 * with respect to every other: of concurrent `take`/`markConsumed` callers exactly one wins,
 * which is what keeps authorization codes (RFC 6749 §4.1.2) and rotated refresh tokens
 * (RFC 9700 §4.14) single-use. That guarantee covers one process only: several replicas need
 * {@link RedisStore}.
 */
export class MemoryStore implements Store {
  readonly #cache: LRUCache<string, Entry>;
  readonly #purgeTimer: NodeJS.Timeout;
  readonly #channels = new EventEmitter().setMaxListeners(0);
  #closed = false;

  constructor(options: MemoryStoreOptions) {
    if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${options.maxEntries}`);
    }
    this.#cache = new LRUCache<string, Entry>({ max: options.maxEntries });
    // lru-cache drops an expired entry only when it is read or evicted; without a sweep, dead
    // entries would keep their slots while live (more recently unused) ones get evicted.
    this.#purgeTimer = setInterval(() => this.#cache.purgeStale(), PURGE_INTERVAL_MS);
    this.#purgeTimer.unref();
  }

  async get<T extends JsonObject = JsonObject>(key: string): Promise<T | undefined> {
    this.#assertOpen();
    const entry = this.#cache.get(key);
    return entry === undefined ? undefined : parseValue<T>(expectValue(entry, key).json);
  }

  async set(key: string, value: JsonObject, ttlSeconds?: number): Promise<void> {
    this.#assertOpen();
    const json = serializeValue(value);
    // A set without TTL clears any previous TTL, like Redis SET.
    this.#cache.set(key, { kind: 'value', json }, ttlOption(ttlSeconds));
  }

  async setIfAbsent(key: string, value: JsonObject, ttlSeconds?: number): Promise<boolean> {
    this.#assertOpen();
    const json = serializeValue(value);
    const options = ttlOption(ttlSeconds);
    // `has` ignores expired entries, so an expired record can be replaced.
    if (this.#cache.has(key)) return false;
    this.#cache.set(key, { kind: 'value', json }, options);
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
    const entry = this.#cache.get(key);
    if (entry === undefined) return false;
    const current = parseValue(expectKind(entry, 'value', key).json);
    if (current[field] !== expected) return false;
    this.#cache.set(key, { kind: 'value', json });
    return true;
  }

  async delete(...keys: string[]): Promise<void> {
    this.#assertOpen();
    for (const key of keys) this.#cache.delete(key);
  }

  async take<T extends JsonObject = JsonObject>(key: string): Promise<T | undefined> {
    this.#assertOpen();
    const entry = this.#cache.get(key);
    if (entry === undefined) return undefined;
    const { json } = expectValue(entry, key);
    this.#cache.delete(key);
    return parseValue<T>(json);
  }

  async markConsumed(key: string, field: string, now: number): Promise<boolean> {
    this.#assertOpen();
    assertTimestamp(now);
    const entry = this.#cache.get(key);
    if (entry === undefined) return false;
    const stored = expectValue(entry, key);
    const value = parseValue(stored.json);
    const current = Object.hasOwn(value, field) ? value[field] : undefined;
    if (current !== undefined && current !== null) return false;
    value[field] = now;
    // Updating the slot in place leaves its TTL (and its start time) untouched.
    stored.json = JSON.stringify(value);
    return true;
  }

  async addToSet(key: string, members: string[], ttlSeconds?: number): Promise<void> {
    this.#assertOpen();
    const options = ttlOption(ttlSeconds);
    if (members.length === 0) return;
    const entry = this.#cache.get(key);
    if (entry === undefined) {
      this.#cache.set(key, { kind: 'set', members: new Set(members) }, options);
      return;
    }
    const set = expectKind(entry, 'set', key);
    for (const member of members) set.members.add(member);
    if (options.ttl !== undefined) {
      // Only ever extend: a set without TTL stays permanent, a longer TTL is kept.
      const remaining = this.#cache.getRemainingTTL(key);
      if (remaining !== Infinity && remaining < options.ttl) this.#cache.set(key, set, options);
    }
  }

  async setMembers(key: string): Promise<string[]> {
    this.#assertOpen();
    const entry = this.#cache.get(key);
    return entry === undefined ? [] : [...expectKind(entry, 'set', key).members];
  }

  async removeFromSet(key: string, members: string[]): Promise<void> {
    this.#assertOpen();
    const entry = this.#cache.get(key);
    if (entry === undefined) return;
    const set = expectKind(entry, 'set', key);
    for (const member of members) set.members.delete(member);
    // Like Redis, an empty set does not exist (and frees its slot).
    if (set.members.size === 0) this.#cache.delete(key);
  }

  async setSize(key: string): Promise<number> {
    this.#assertOpen();
    const entry = this.#cache.get(key);
    return entry === undefined ? 0 : expectKind(entry, 'set', key).members.size;
  }

  async increment(key: string, ttlSeconds?: number): Promise<number> {
    this.#assertOpen();
    const options = ttlOption(ttlSeconds);
    const entry = this.#cache.get(key);
    if (entry === undefined) {
      this.#cache.set(key, { kind: 'counter', count: 1 }, options);
      return 1;
    }
    const counter = expectKind(entry, 'counter', key);
    counter.count += 1;
    // Like EXPIRE NX: a counter that has a TTL keeps it (fixed window, never extended).
    if (options.ttl !== undefined && this.#cache.getRemainingTTL(key) === Infinity) {
      this.#cache.set(key, counter, options);
    }
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
    const entry = this.#cache.get(key);
    const chain = entry === undefined ? undefined : expectKind(entry, 'chain', key);
    if ((chain?.head ?? null) !== expectedPrevHash) return false;
    if (chain === undefined) {
      this.#cache.set(key, { kind: 'chain', records: [{ id: 1, json }], head: hash, lastId: 1 });
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
    const entry = this.#cache.get(key);
    if (entry === undefined) return [];
    const { records } = expectKind(entry, 'chain', key);
    // Ids increase along the array: skip to the first one after `after`.
    let start = 0;
    while (start < records.length && records[start]!.id <= after) start += 1;
    return records
      .slice(start, count === undefined ? undefined : start + count)
      .map(({ id, json }) => ({ id: `${id}-0`, record: parseValue(json) }));
  }

  async lastChained(key: string): Promise<ChainEntry | undefined> {
    this.#assertOpen();
    const entry = this.#cache.get(key);
    if (entry === undefined) return undefined;
    const last = expectKind(entry, 'chain', key).records.at(-1);
    return last === undefined ? undefined : { id: `${last.id}-0`, record: parseValue(last.json) };
  }

  async chainHead(key: string): Promise<string | null> {
    this.#assertOpen();
    const entry = this.#cache.get(key);
    return entry === undefined ? null : expectKind(entry, 'chain', key).head;
  }

  async pushRecent(key: string, records: JsonObject[], maxLength: number): Promise<void> {
    this.#assertOpen();
    assertListBound('maxLength', maxLength);
    // Every record is checked before anything is written, as Redis's MULTI fails as a whole.
    const texts = records.map(serializeValue);
    if (texts.length === 0) return;
    const entry = this.#cache.get(key);
    const list = entry === undefined ? undefined : expectKind(entry, 'list', key);
    if (list === undefined) {
      this.#cache.set(key, { kind: 'list', records: texts.slice(-maxLength) });
      return;
    }
    list.records.push(...texts);
    if (list.records.length > maxLength) list.records.splice(0, list.records.length - maxLength);
  }

  async readRecent(key: string, count: number): Promise<JsonObject[]> {
    this.#assertOpen();
    assertListBound('count', count);
    const entry = this.#cache.get(key);
    if (entry === undefined) return [];
    const { records } = expectKind(entry, 'list', key);
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
    this.#cache.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('MemoryStore is closed');
  }
}

/** Rejects TTLs Redis would reject too (`SET ... EX` takes a positive integer). */
function ttlOption(ttlSeconds: number | undefined): { ttl?: number } {
  if (ttlSeconds === undefined) return {};
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
  }
  return { ttl: ttlSeconds * 1000 };
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
