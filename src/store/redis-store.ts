import { Redis } from 'ioredis';
import {
  assertListBound,
  chainedAppendHash,
  StoreFullError,
  type ChainEntry,
  type JsonObject,
  type ReadChainedOptions,
  type Store,
} from './store.js';

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /**
   * Prepended to every key, so that the gateway can share a Redis database with other software
   * (and tests can isolate themselves). Default `mcp-gateway:`.
   */
  keyPrefix?: string;
  /**
   * Receives connection errors (refused, reset, timed out). They are reported once per failed
   * (re)connection attempt; the client keeps reconnecting on its own. Without a listener an
   * EventEmitter 'error' could take the process down, so one is always attached.
   */
  onError?: (error: Error) => void;
  /** Bound on any single command, queued time included. Default 5000 ms. */
  commandTimeoutMs?: number;
  /** Bound on {@link RedisStore.ping}, which `/readyz` awaits. Default 2000 ms. */
  pingTimeoutMs?: number;
}

/**
 * Marks a JSON value consumed. KEYS[1] the value, ARGV[1] the field, ARGV[2] the JSON member
 * `"field":now` to append.
 *
 * It runs as one script because GET-then-SET from the client would let two replicas both read
 * "not consumed" and both redeem the same authorization code (RFC 6749 §4.1.2: a code is used
 * once) or the same rotated refresh token (RFC 9700 §4.14: reuse must be detected); Redis runs a
 * script with no other command in between.
 *
 * cjson only inspects the value. Re-encoding it with cjson would damage it: an empty array comes
 * back as `{}` and integers above 14 digits lose precision. The member is therefore appended to
 * the JSON text (`{...}` -> `{...,"field":now}`). When the field exists with `null`, the appended
 * member duplicates it; JSON.parse keeps the last one (ECMA-262), so it reads as `now`.
 * KEEPTTL keeps the remaining lifetime: consuming a code must not make it live longer.
 */
const MARK_CONSUMED_LUA = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
if string.sub(raw, 1, 1) ~= '{' or string.sub(raw, -1) ~= '}' then
  return redis.error_reply('ERR markConsumed: the stored value is not a JSON object')
end
local ok, value = pcall(cjson.decode, raw)
if not ok or type(value) ~= 'table' then
  return redis.error_reply('ERR markConsumed: the stored value is not a JSON object')
end
local current = value[ARGV[1]]
if current ~= nil and current ~= cjson.null then return 0 end
local body = string.sub(raw, 1, -2)
if body == '{' then
  body = body .. ARGV[2] .. '}'
else
  body = body .. ',' .. ARGV[2] .. '}'
end
redis.call('SET', KEYS[1], body, 'KEEPTTL')
return 1
`;

/**
 * Adds members to a set and extends its TTL. KEYS[1] the set, ARGV[1] the TTL in seconds (0:
 * none), ARGV[2..] the members.
 *
 * `EXPIRE key ttl GT` alone never gives a TTL to a set that has none (Redis treats "no TTL" as
 * infinite), so a set this call creates would live forever; a plain EXPIRE (or `NX`) would also
 * give one to a set someone made permanent, or shorten a longer one. Whether the key existed
 * decides, and that check, SADD and EXPIRE must see the same state, hence one script.
 * SADD goes in slices because Lua's `unpack` is limited by the C stack (~8000 values).
 */
const ADD_TO_SET_LUA = `
local existed = redis.call('EXISTS', KEYS[1])
local n = #ARGV
local i = 2
while i <= n do
  local j = math.min(i + 999, n)
  redis.call('SADD', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  if existed == 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
  else
    redis.call('EXPIRE', KEYS[1], ttl, 'GT')
  end
end
return 0
`;

/**
 * Increments a counter and gives it a TTL only if it has none (fixed windows: later hits must not
 * push the window's end). KEYS[1] the counter, ARGV[1] the TTL in seconds (0: none).
 * One script rather than MULTI so that a failing INCR (wrong type) writes nothing, and so that
 * a counter can never be left without its TTL between the two commands.
 */
const INCREMENT_LUA = `
local n = redis.call('INCR', KEYS[1])
local ttl = tonumber(ARGV[1])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl, 'NX') end
return n
`;

/**
 * Replaces a JSON object when one of its fields has the expected string value. KEYS[1] the key,
 * ARGV[1] the field, ARGV[2] the expected value, ARGV[3] the new JSON text. Returns 1 when
 * written. cjson only inspects the stored value; the new text is written as given. Comparing
 * and writing in one script is what makes it a compare-and-set across replicas.
 */
const REPLACE_IF_LUA = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, value = pcall(cjson.decode, raw)
if not ok or type(value) ~= 'table' then
  return redis.error_reply('ERR replaceIf: the stored value is not a JSON object')
end
if value[ARGV[1]] ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
return 1
`;

/**
 * Appends to a hash chain. KEYS[1] the stream, KEYS[2] its head (a string); ARGV[1] the
 * expected head ('' for none), ARGV[2] the maximum length, ARGV[3] the record's JSON text,
 * ARGV[4] its hash (the new head).
 *
 * Compare-and-append in one script: two replicas reading the same head and both appending
 * would fork the chain. The head is a key of its own (rather than the stream's last entry)
 * so that the comparison is a plain string equality and survives the stream being trimmed.
 * Trimming is exact (`MAXLEN n`, not `~`): the contract promises at most `maxLength` records
 * in both stores; at audit rates the cost of exact trimming (one entry per append) is nil.
 * A wrong-type key fails at XADD, before the head is written, so nothing changes.
 */
const APPEND_CHAINED_LUA = `
local head = redis.call('GET', KEYS[2])
if not head then head = '' end
if head ~= ARGV[1] then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], '*', 'data', ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
return 1
`;

interface StoreScripts {
  storeAppendChained(
    streamKey: string,
    headKey: string,
    expectedHead: string,
    maxLength: number,
    json: string,
    hash: string,
  ): Promise<number>;
  storeMarkConsumed(key: string, field: string, member: string): Promise<number>;
  storeAddToSet(key: string, ttlSeconds: number, ...members: string[]): Promise<number>;
  storeIncrement(key: string, ttlSeconds: number): Promise<number>;
  storeReplaceIf(key: string, field: string, expected: string, json: string): Promise<number>;
}

/** What decides whether Redis evicts keys when it is full. */
export interface RedisMemorySettings {
  /** `maxmemory-policy`: only `noeviction` never evicts. */
  policy: string;
  /** `maxmemory` in bytes; 0 is no limit (nothing is ever evicted then). */
  maxmemory: number;
}

/**
 * The shared {@link Store} for several replicas, on Redis ≥ 7.0 (`GETDEL`, `EXPIRE GT/NX`,
 * `SET KEEPTTL`).
 *
 * Values are JSON text; single-use operations are single Redis commands (`GETDEL`,
 * `SET NX`) or Lua scripts, which Redis runs atomically, so "exactly one caller wins" holds
 * across processes, not only within one.
 *
 * Failure behaviour: during an outage commands wait in ioredis's offline queue for at most
 * three reconnection attempts (`maxRetriesPerRequest: 2`, attempts at most 1 s apart) and at
 * most `commandTimeoutMs`, then reject; the service answers errors instead of hanging, and
 * recovers by itself when Redis comes back. A command that times out may still have run on the
 * server: for `take` and `markConsumed` that means a code is burnt without being redeemed,
 * which fails closed.
 *
 * Full: Redis must run with `maxmemory-policy noeviction` (checked at start-up, see
 * `redis-eviction.ts`): any other policy lets it evict a revocation or a disabled client to make
 * room for traffic anyone can drive. Over `maxmemory` it then refuses writes ("OOM command not
 * allowed"), which every write here turns into a {@link StoreFullError}.
 */
export class RedisStore implements Store {
  readonly #redis: Redis & StoreScripts;
  readonly #prefix: string;
  readonly #pingTimeoutMs: number;
  /** A second connection, opened on first subscribe: a subscribed connection can do nothing else. */
  #subscriber: Redis | undefined;
  readonly #listeners = new Map<string, Set<(message: string) => void>>();
  #closed = false;

  constructor(options: RedisStoreOptions) {
    this.#prefix = options.keyPrefix ?? 'mcp-gateway:';
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 2000;
    const redis = new Redis(options.url, {
      lazyConnect: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 2,
      // The default backoff grows to 5 s, so a queued command could wait ~15 s for its three
      // attempts; 1 s apart keeps requests failing fast and reconnection prompt.
      retryStrategy: (times) => Math.min(times * 100, 1000),
      connectTimeout: 2000,
      // disconnect() ends the socket and destroys it after this delay; when the socket is
      // already closed (server down) the timer is never cleared and holds the process open
      // at shutdown for the whole delay (default 2 s).
      disconnectTimeout: 100,
      commandTimeout: options.commandTimeoutMs ?? 5000,
    }) as Redis & StoreScripts;
    const onError = options.onError;
    redis.on('error', (error: Error) => {
      try {
        onError?.(error);
      } catch {
        // A throwing callback must not escape into ioredis's event loop and crash the process.
      }
    });
    redis.defineCommand('storeMarkConsumed', {
      numberOfKeys: 1,
      lua: MARK_CONSUMED_LUA,
    });
    redis.defineCommand('storeAddToSet', {
      numberOfKeys: 1,
      lua: ADD_TO_SET_LUA,
    });
    redis.defineCommand('storeIncrement', {
      numberOfKeys: 1,
      lua: INCREMENT_LUA,
    });
    redis.defineCommand('storeReplaceIf', {
      numberOfKeys: 1,
      lua: REPLACE_IF_LUA,
    });
    redis.defineCommand('storeAppendChained', {
      numberOfKeys: 2,
      lua: APPEND_CHAINED_LUA,
    });
    this.#redis = redis;
  }

  /**
   * The connection and the key prefix, for libraries that keep their own keys beside the
   * store's (the rate limiters, see `src/limits/rate-limits.ts`). Callers must put their keys
   * under {@link keyPrefix} and must not close the connection: the store owns it.
   */
  get client(): Redis {
    return this.#redis;
  }

  get keyPrefix(): string {
    return this.#prefix;
  }

  async get<T extends JsonObject = JsonObject>(key: string): Promise<T | undefined> {
    const raw = await this.#redis.get(this.#key(key));
    return raw === null ? undefined : parseValue<T>(raw, key);
  }

  async set(key: string, value: JsonObject, ttlSeconds?: number): Promise<void> {
    const json = serializeValue(value);
    const ttl = ttlArgument(ttlSeconds);
    await refusedWhenFull(
      ttl === 0
        ? this.#redis.set(this.#key(key), json)
        : this.#redis.set(this.#key(key), json, 'EX', ttl),
    );
  }

  async setIfAbsent(key: string, value: JsonObject, ttlSeconds?: number): Promise<boolean> {
    const json = serializeValue(value);
    const ttl = ttlArgument(ttlSeconds);
    const result = await refusedWhenFull(
      ttl === 0
        ? this.#redis.set(this.#key(key), json, 'NX')
        : this.#redis.set(this.#key(key), json, 'EX', ttl, 'NX'),
    );
    return result === 'OK';
  }

  async replaceIf(
    key: string,
    field: string,
    expected: string,
    value: JsonObject,
  ): Promise<boolean> {
    const json = serializeValue(value);
    const written = this.#redis.storeReplaceIf(this.#key(key), field, expected, json);
    return (await refusedWhenFull(written)) === 1;
  }

  async delete(...keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#redis.del(...keys.map((key) => this.#key(key)));
  }

  async take<T extends JsonObject = JsonObject>(key: string): Promise<T | undefined> {
    // GETDEL is one command, so of concurrent callers on any replicas only one gets the value.
    const raw = await this.#redis.getdel(this.#key(key));
    return raw === null ? undefined : parseValue<T>(raw, key);
  }

  async markConsumed(key: string, field: string, now: number): Promise<boolean> {
    if (!Number.isFinite(now)) {
      // NaN would be stored as `null`, which reads as "not consumed": the code could be reused.
      throw new RangeError(`now must be a finite number, got ${now}`);
    }
    const member = `${JSON.stringify(field)}:${JSON.stringify(now)}`;
    const marked = this.#redis.storeMarkConsumed(this.#key(key), field, member);
    return (await refusedWhenFull(marked)) === 1;
  }

  async addToSet(key: string, members: string[], ttlSeconds?: number): Promise<void> {
    const ttl = ttlArgument(ttlSeconds);
    if (members.length === 0) return;
    await refusedWhenFull(this.#redis.storeAddToSet(this.#key(key), ttl, ...members));
  }

  async setMembers(key: string): Promise<string[]> {
    return this.#redis.smembers(this.#key(key));
  }

  async removeFromSet(key: string, members: string[]): Promise<void> {
    if (members.length === 0) return;
    await this.#redis.srem(this.#key(key), ...members);
  }

  async setSize(key: string): Promise<number> {
    return this.#redis.scard(this.#key(key));
  }

  async increment(key: string, ttlSeconds?: number): Promise<number> {
    const ttl = ttlArgument(ttlSeconds);
    return refusedWhenFull(this.#redis.storeIncrement(this.#key(key), ttl));
  }

  async appendChained(
    key: string,
    record: JsonObject,
    expectedPrevHash: string | null,
    maxLength: number,
  ): Promise<boolean> {
    const hash = chainedAppendHash(record, expectedPrevHash, maxLength);
    const json = serializeValue(record);
    const appended = await refusedWhenFull(
      this.#redis.storeAppendChained(
        this.#key(key),
        this.#key(`${key}:head`),
        expectedPrevHash ?? '',
        maxLength,
        json,
        hash,
      ),
    );
    return appended === 1;
  }

  async readChained(key: string, options: ReadChainedOptions = {}): Promise<ChainEntry[]> {
    const count = options.count;
    if (count !== undefined && (!Number.isSafeInteger(count) || count < 1)) {
      throw new RangeError(`count must be a positive integer, got ${count}`);
    }
    // `(id` is an exclusive start (Redis ≥ 6.2).
    const start = options.after === undefined ? '-' : `(${options.after}`;
    const entries =
      count === undefined
        ? await this.#redis.xrange(this.#key(key), start, '+')
        : await this.#redis.xrange(this.#key(key), start, '+', 'COUNT', count);
    return entries.map((entry) => chainEntry(entry, key));
  }

  async lastChained(key: string): Promise<ChainEntry | undefined> {
    const [last] = await this.#redis.xrevrange(this.#key(key), '+', '-', 'COUNT', 1);
    return last === undefined ? undefined : chainEntry(last, key);
  }

  async chainHead(key: string): Promise<string | null> {
    return this.#redis.get(this.#key(`${key}:head`));
  }

  async pushRecent(key: string, records: JsonObject[], maxLength: number): Promise<void> {
    assertListBound('maxLength', maxLength);
    const texts = records.map(serializeValue);
    if (texts.length === 0) return;
    // LPUSH of records given oldest first leaves the newest at index 0. MULTI makes the push
    // and the trim one step: no reader, and no other replica's push, sees the list over its
    // bound. On a key of another kind both commands fail (WRONGTYPE) and nothing is written.
    const name = this.#key(key);
    const results = await refusedWhenFull(
      this.#redis
        .multi()
        .lpush(name, ...texts)
        .ltrim(name, 0, maxLength - 1)
        .exec(),
    );
    const failed = results?.find(([error]) => error)?.[0];
    if (failed) throw failed;
    if (!results)
      throw new Error(`pushRecent on ${JSON.stringify(key)}: the transaction was aborted`);
  }

  async readRecent(key: string, count: number): Promise<JsonObject[]> {
    assertListBound('count', count);
    const texts = await this.#redis.lrange(this.#key(key), 0, count - 1);
    return texts.map((raw) => parseValue(raw, key));
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#redis.publish(this.#key(channel), message);
  }

  async subscribe(
    channel: string,
    listener: (message: string) => void,
  ): Promise<() => Promise<void>> {
    const subscriber = this.#connectSubscriber();
    const name = this.#key(channel);
    let listeners = this.#listeners.get(name);
    if (!listeners) {
      listeners = new Set();
      this.#listeners.set(name, listeners);
      await subscriber.subscribe(name);
    }
    listeners.add(listener);
    return async () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#listeners.get(name) === listeners) {
        this.#listeners.delete(name);
        if (!this.#closed) await subscriber.unsubscribe(name).catch(() => undefined);
      }
    };
  }

  #connectSubscriber(): Redis {
    if (!this.#subscriber) {
      // ioredis re-subscribes by itself after a reconnection (autoResubscribe).
      const subscriber = this.#redis.duplicate({
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
      });
      subscriber.on('error', () => undefined);
      subscriber.on('message', (channel: string, message: string) => {
        for (const listener of this.#listeners.get(channel) ?? []) {
          try {
            listener(message);
          } catch {
            // A failing listener must not stop delivery to the others.
          }
        }
      });
      this.#subscriber = subscriber;
    }
    return this.#subscriber;
  }

  /**
   * Redis's eviction settings (`CONFIG GET`), for the start-up check. Rejects when Redis
   * cannot be reached or refuses `CONFIG` (managed services often rename or forbid it).
   */
  async memorySettings(): Promise<RedisMemorySettings> {
    const reply = (await this.#redis.config('GET', 'maxmemory', 'maxmemory-policy')) as unknown;
    const values = new Map<string, string>();
    if (Array.isArray(reply)) {
      for (let i = 0; i + 1 < reply.length; i += 2)
        values.set(String(reply[i]), String(reply[i + 1]));
    }
    const policy = values.get('maxmemory-policy');
    const maxmemory = Number(values.get('maxmemory'));
    if (policy === undefined || !Number.isSafeInteger(maxmemory)) {
      throw new Error('CONFIG GET did not return maxmemory and maxmemory-policy');
    }
    return { policy, maxmemory };
  }

  async ping(): Promise<void> {
    await withTimeout(this.#redis.ping(), this.#pingTimeoutMs, 'Redis did not answer PING');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscriber?.disconnect();
    if (this.#redis.status === 'ready') {
      try {
        // QUIT lets in-flight replies arrive; bounded, as a dying server may never answer.
        await withTimeout(this.#redis.quit(), 1000, 'Redis did not answer QUIT');
        return;
      } catch {
        // Fall through: drop the connection.
      }
    }
    this.#redis.disconnect();
  }

  #key(key: string): string {
    return this.#prefix + key;
  }
}

/**
 * Whether Redis refused a command for want of memory: directly, from inside a script (the
 * message then names the script), or queued in a MULTI (EXECABORT, the refusal among
 * ioredis's `previousErrors`).
 */
function isOutOfMemory(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.message.startsWith('OOM ')) return true;
  const previous = (error as { previousErrors?: unknown }).previousErrors;
  return Array.isArray(previous) && previous.some(isOutOfMemory);
}

/** Awaits a write, turning Redis's out-of-memory refusal into a {@link StoreFullError}. */
async function refusedWhenFull<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (!isOutOfMemory(error)) throw error;
    throw new StoreFullError(
      'Redis is full (maxmemory reached; maxmemory-policy noeviction): writes are refused until keys expire or are deleted',
      { cause: error },
    );
  }
}

/** The TTL as Redis wants it (0 for "none"); rejects what `SET ... EX` would reject. */
function ttlArgument(ttlSeconds: number | undefined): number {
  if (ttlSeconds === undefined) return 0;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new RangeError(`ttlSeconds must be a positive integer, got ${ttlSeconds}`);
  }
  return ttlSeconds;
}

function serializeValue(value: JsonObject): string {
  const json: unknown = JSON.stringify(value);
  if (typeof json !== 'string' || !json.startsWith('{')) {
    throw new TypeError('Store values must be JSON objects');
  }
  return json;
}

function parseValue<T extends JsonObject>(raw: string, key: string): T {
  const value: unknown = JSON.parse(raw);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    // A counter (`INCR`) read as a value: mixing kinds on one key is a caller bug.
    throw new Error(`WRONGTYPE key ${JSON.stringify(key)} does not hold a JSON object`);
  }
  return value as T;
}

/** A stream entry `[id, [field, value, …]]` written by `appendChained` (field `data`). */
function chainEntry([id, fields]: [string, string[]], key: string): ChainEntry {
  const index = fields.indexOf('data');
  const raw = index >= 0 && index % 2 === 0 ? fields[index + 1] : undefined;
  if (raw === undefined) {
    throw new Error(`Stream ${JSON.stringify(key)} holds an entry without data (${id})`);
  }
  return { id, record: parseValue(raw, key) };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  try {
    // race() also handles a late rejection of `promise`, so it never becomes unhandled.
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
