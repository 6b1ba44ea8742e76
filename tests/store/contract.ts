import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { StoreFullError, type JsonObject, type Store } from '../../src/store/store.js';
import { waitFor as poll } from '../helpers/poll.js';

export interface StoreFixture {
  store: Store;
  cleanup: () => Promise<void>;
}

export interface SmallStoreFixture extends StoreFixture {
  /**
   * Called once the store has refused a write: makes sure it stays full. Redis's used memory
   * moves by a few hundred bytes between commands (the refused command's own buffer is freed),
   * so a tiny write can pass just after a big one was refused; its fixture lowers `maxmemory`
   * a little below what is used. A memory store needs nothing.
   */
  stayFull?: () => Promise<void>;
}

/**
 * Polls `condition` every `intervalMs` until it holds; fails after `timeoutMs`. TTL tests use it
 * instead of fixed sleeps: they finish as soon as the store has expired the entry.
 */
export async function waitFor(
  condition: () => Promise<boolean>,
  description: string,
  { timeoutMs = 3000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  await poll(condition, { what: description, timeoutMs, intervalMs });
}

/** Runs `count` calls of `fn` concurrently (all started before any settles). */
function concurrently<T>(count: number, fn: (index: number) => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: count }, (_, index) => fn(index)));
}

/** A value with the shapes a naive re-encoding damages (empty arrays, 16-digit integers). */
const RICH_VALUE = {
  clientId: 'client-1',
  scopes: [],
  nested: {
    list: [1, 'two', { three: 3 }],
    empty: {},
    flag: false,
    nothing: null,
  },
  big: Number.MAX_SAFE_INTEGER,
  fraction: 0.1,
  text: 'héllo / "quoted" \\ 🔑',
};

/**
 * The behaviour every {@link Store} must have. Each test gets a fresh store from `makeStore`.
 *
 * The single-use tests matter most: `take` and `markConsumed` are what keeps an authorization
 * code (RFC 6749 §4.1.2) and a rotated refresh token (RFC 9700 §4.14) from being redeemed twice,
 * so they are checked with 20 concurrent callers.
 *
 * `makeSmallStore` gives an empty store with little room (a few hundred 1 KiB values at most),
 * for the behaviour when full: it refuses what needs room and never evicts (issue #14).
 */
export function runStoreContract(
  name: string,
  makeStore: () => Promise<StoreFixture>,
  makeSmallStore?: () => Promise<SmallStoreFixture>,
): void {
  if (makeSmallStore) runFullStoreContract(name, makeSmallStore);
  describe(`${name} (Store contract)`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
    });

    afterEach(async () => {
      await cleanup();
    });

    describe('values', () => {
      it('returns undefined for an absent key', async () => {
        await expect(store.get('absent')).resolves.toBeUndefined();
      });

      it('round-trips a JSON value exactly', async () => {
        await store.set('rich', RICH_VALUE);
        await expect(store.get('rich')).resolves.toStrictEqual(RICH_VALUE);
      });

      it('replaces a value on set', async () => {
        await store.set('k', { version: 1 });
        await store.set('k', { version: 2 });
        await expect(store.get('k')).resolves.toStrictEqual({ version: 2 });
      });

      it('isolates stored values from mutation by callers', async () => {
        const original = { user: 'alice', roles: ['admin'], meta: { n: 1 } };
        await store.set('k', original);
        original.user = 'mallory';
        original.roles.push('root');
        original.meta.n = 2;

        const first = await store.get<typeof original>('k');
        expect(first).toStrictEqual({
          user: 'alice',
          roles: ['admin'],
          meta: { n: 1 },
        });
        first!.roles.push('root');
        first!.meta.n = 3;

        await expect(store.get('k')).resolves.toStrictEqual({
          user: 'alice',
          roles: ['admin'],
          meta: { n: 1 },
        });
        expect(await store.get('k')).not.toBe(await store.get('k'));
      });

      it('stores values with JSON semantics (what Redis would give back)', async () => {
        const when = new Date('2030-01-02T03:04:05.000Z');
        await store.set('k', { when, gone: undefined, kept: 1 });
        await expect(store.get('k')).resolves.toStrictEqual({
          when: '2030-01-02T03:04:05.000Z',
          kept: 1,
        });
      });

      it('rejects values that are not JSON objects', async () => {
        await expect(store.set('k', [1, 2] as unknown as JsonObject)).rejects.toThrow(TypeError);
        await expect(store.set('k', { big: 1n } as JsonObject)).rejects.toThrow(TypeError);
        await expect(store.get('k')).resolves.toBeUndefined();
      });

      it('rejects TTLs that are not positive integers', async () => {
        for (const ttl of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expect(store.set('k', { a: 1 }, ttl)).rejects.toThrow(RangeError);
          await expect(store.setIfAbsent('k', { a: 1 }, ttl)).rejects.toThrow(RangeError);
          await expect(store.addToSet('s', ['m'], ttl)).rejects.toThrow(RangeError);
          await expect(store.increment('c', ttl)).rejects.toThrow(RangeError);
        }
        await expect(store.get('k')).resolves.toBeUndefined();
        await expect(store.setSize('s')).resolves.toBe(0);
      });

      it('expires a value after its TTL; a later set without TTL makes a value permanent', async () => {
        await store.set('expiring', { a: 1 }, 1);
        await store.set('made-permanent', { b: 1 }, 1);
        await store.set('made-permanent', { b: 2 });
        await store.set('permanent', { c: 1 });
        await expect(store.get('expiring')).resolves.toStrictEqual({ a: 1 });

        await waitFor(async () => (await store.get('expiring')) === undefined, 'value expires');
        await expect(store.get('made-permanent')).resolves.toStrictEqual({
          b: 2,
        });
        await expect(store.get('permanent')).resolves.toStrictEqual({ c: 1 });
      });

      it('deletes several keys at once and ignores absent ones', async () => {
        await store.set('a', { v: 'a' });
        await store.set('b', { v: 'b' });
        await store.set('c', { v: 'c' });
        await store.addToSet('s', ['m']);
        await store.delete('a', 'b', 'missing', 's');
        await store.delete();
        await expect(store.get('a')).resolves.toBeUndefined();
        await expect(store.get('b')).resolves.toBeUndefined();
        await expect(store.setSize('s')).resolves.toBe(0);
        await expect(store.get('c')).resolves.toStrictEqual({ v: 'c' });
      });
    });

    describe('setIfAbsent', () => {
      it('writes only when the key is absent', async () => {
        await expect(store.setIfAbsent('k', { first: true })).resolves.toBe(true);
        await expect(store.setIfAbsent('k', { first: false })).resolves.toBe(false);
        await expect(store.get('k')).resolves.toStrictEqual({ first: true });
        await store.delete('k');
        await expect(store.setIfAbsent('k', { again: true })).resolves.toBe(true);
      });

      it('lets exactly one of 20 concurrent callers write', async () => {
        const results = await concurrently(20, (i) => store.setIfAbsent('k', { writer: i }, 60));
        expect(results.filter((wrote) => wrote)).toHaveLength(1);
        const winner = results.indexOf(true);
        await expect(store.get('k')).resolves.toStrictEqual({ writer: winner });
      });

      it('applies the TTL, after which the key can be written again', async () => {
        await expect(store.setIfAbsent('k', { round: 1 }, 1)).resolves.toBe(true);
        await expect(store.setIfAbsent('k', { round: 2 }, 1)).resolves.toBe(false);
        await waitFor(() => store.setIfAbsent('k', { round: 3 }), 'expired key is writable');
        await expect(store.get('k')).resolves.toStrictEqual({ round: 3 });
      });
    });

    describe('replaceIf', () => {
      it('replaces only when the field has the expected value, and never creates', async () => {
        await expect(store.replaceIf('k', 'version', 'v1', { version: 'v2' })).resolves.toBe(false);
        await expect(store.get('k')).resolves.toBeUndefined();
        await store.set('k', { version: 'v1' });
        await expect(store.replaceIf('k', 'version', 'v0', { version: 'x' })).resolves.toBe(false);
        await expect(store.replaceIf('k', 'other', 'v1', { version: 'x' })).resolves.toBe(false);
        await expect(
          store.replaceIf('k', 'version', 'v1', { version: 'v2', list: [] }),
        ).resolves.toBe(true);
        // Written as given (an empty array stays an array).
        await expect(store.get('k')).resolves.toStrictEqual({ version: 'v2', list: [] });
      });

      it('lets exactly one of 20 concurrent callers expecting the same version write', async () => {
        await store.set('k', { version: 'v1' });
        const results = await concurrently(20, (i) =>
          store.replaceIf('k', 'version', 'v1', { version: `v2-${i}` }),
        );
        expect(results.filter((wrote) => wrote)).toHaveLength(1);
        await expect(store.get('k')).resolves.toStrictEqual({
          version: `v2-${results.indexOf(true)}`,
        });
      });
    });

    describe('take', () => {
      it('returns the value once, then undefined', async () => {
        await store.set('code', RICH_VALUE, 60);
        await expect(store.take('code')).resolves.toStrictEqual(RICH_VALUE);
        await expect(store.take('code')).resolves.toBeUndefined();
        await expect(store.get('code')).resolves.toBeUndefined();
        await expect(store.take('absent')).resolves.toBeUndefined();
      });

      it('gives the value to exactly one of 20 concurrent callers', async () => {
        await store.set('code', { sub: 'alice' }, 60);
        const results = await concurrently(20, () => store.take('code'));
        const winners = results.filter((value) => value !== undefined);
        expect(winners).toStrictEqual([{ sub: 'alice' }]);
      });
    });

    describe('markConsumed', () => {
      it('marks once, keeps the rest of the value intact, and is false afterwards', async () => {
        await store.set('code', RICH_VALUE, 60);
        await expect(store.markConsumed('code', 'consumedAt', 1_700_000_000)).resolves.toBe(true);
        await expect(store.markConsumed('code', 'consumedAt', 1_700_000_001)).resolves.toBe(false);
        await expect(store.get('code')).resolves.toStrictEqual({
          ...RICH_VALUE,
          consumedAt: 1_700_000_000,
        });
      });

      it('is independent per field and works on an empty object', async () => {
        await store.set('k', {});
        await expect(store.markConsumed('k', 'a', 1)).resolves.toBe(true);
        await expect(store.markConsumed('k', 'b', 2)).resolves.toBe(true);
        await expect(store.markConsumed('k', 'a', 3)).resolves.toBe(false);
        await expect(store.get('k')).resolves.toStrictEqual({ a: 1, b: 2 });
      });

      it('treats a null field as not yet consumed', async () => {
        await store.set('k', { consumedAt: null, other: 'x' });
        await expect(store.markConsumed('k', 'consumedAt', 42)).resolves.toBe(true);
        await expect(store.markConsumed('k', 'consumedAt', 43)).resolves.toBe(false);
        await expect(store.get('k')).resolves.toStrictEqual({
          consumedAt: 42,
          other: 'x',
        });
      });

      it('returns false for an absent key and does not create it', async () => {
        await expect(store.markConsumed('absent', 'consumedAt', 1)).resolves.toBe(false);
        await expect(store.get('absent')).resolves.toBeUndefined();
      });

      it('rejects a timestamp that is not a finite number', async () => {
        await store.set('k', { a: 1 });
        await expect(store.markConsumed('k', 'consumedAt', Number.NaN)).rejects.toThrow(RangeError);
        await expect(store.get('k')).resolves.toStrictEqual({ a: 1 });
      });

      it('lets exactly one of 20 concurrent callers mark the value', async () => {
        await store.set('refresh', { sub: 'alice' }, 60);
        const results = await concurrently(20, (i) =>
          store.markConsumed('refresh', 'usedAt', 1000 + i),
        );
        expect(results.filter((marked) => marked)).toHaveLength(1);
        const winner = results.indexOf(true);
        await expect(store.get('refresh')).resolves.toStrictEqual({
          sub: 'alice',
          usedAt: 1000 + winner,
        });
      });

      it('keeps the TTL: a consumed value still expires', async () => {
        await store.set('code', { sub: 'alice' }, 1);
        await expect(store.markConsumed('code', 'consumedAt', 1)).resolves.toBe(true);
        await expect(store.get('code')).resolves.toStrictEqual({
          sub: 'alice',
          consumedAt: 1,
        });
        await waitFor(async () => (await store.get('code')) === undefined, 'consumed code expires');
      });
    });

    describe('sets', () => {
      it('adds, lists, counts and removes members', async () => {
        await expect(store.setMembers('s')).resolves.toStrictEqual([]);
        await expect(store.setSize('s')).resolves.toBe(0);
        await store.addToSet('s', ['a', 'b']);
        await store.addToSet('s', ['b', 'c']);
        await store.addToSet('s', []);
        await expect(store.setSize('s')).resolves.toBe(3);
        expect((await store.setMembers('s')).sort()).toStrictEqual(['a', 'b', 'c']);

        await store.removeFromSet('s', ['a', 'not-a-member']);
        await store.removeFromSet('s', []);
        expect((await store.setMembers('s')).sort()).toStrictEqual(['b', 'c']);
        await expect(store.setSize('s')).resolves.toBe(2);

        await store.removeFromSet('s', ['b', 'c']);
        await expect(store.setSize('s')).resolves.toBe(0);
        await expect(store.setMembers('s')).resolves.toStrictEqual([]);
        await store.removeFromSet('absent', ['x']);
      });

      it('holds many members', async () => {
        const members = Array.from({ length: 2500 }, (_, i) => `member-${i}`);
        await store.addToSet('big', members, 60);
        await expect(store.setSize('big')).resolves.toBe(2500);
      });

      it('gives a new set its TTL and only ever extends an existing one', async () => {
        await store.addToSet('shortened', ['x'], 100);
        await store.addToSet('shortened', ['y'], 1); // must not shorten 100 s to 1 s
        await store.addToSet('permanent', ['x']);
        await store.addToSet('permanent', ['y'], 1); // must not give a permanent set a TTL
        await store.addToSet('extended', ['x'], 1);
        await store.addToSet('extended', ['y'], 100); // must extend 1 s to 100 s
        await store.addToSet('new', ['x'], 1); // must get its 1 s TTL

        await waitFor(async () => (await store.setSize('new')) === 0, 'new set expires');
        await expect(store.setSize('shortened')).resolves.toBe(2);
        await expect(store.setSize('permanent')).resolves.toBe(2);
        await expect(store.setSize('extended')).resolves.toBe(2);
      });
    });

    describe('increment', () => {
      it('counts from 1 per key', async () => {
        await expect(store.increment('c')).resolves.toBe(1);
        await expect(store.increment('c')).resolves.toBe(2);
        await expect(store.increment('c', 60)).resolves.toBe(3);
        await expect(store.increment('other', 60)).resolves.toBe(1);
      });

      it('counts every one of 20 concurrent increments', async () => {
        const results = await concurrently(20, () => store.increment('c', 60));
        expect([...results].sort((a, b) => a - b)).toStrictEqual(
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
      });

      it('expires a fixed window even while it keeps being incremented', async () => {
        let highest = await store.increment('window', 1);
        expect(highest).toBe(1);
        // Were each increment to extend the TTL, the counter would never start over.
        await waitFor(async () => {
          const value = await store.increment('window', 1);
          if (value === 1) return true;
          highest = Math.max(highest, value);
          return false;
        }, 'counter window resets');
        expect(highest).toBeGreaterThan(1);
      });
    });

    describe('kinds', () => {
      it('rejects using a key as a different kind than it holds', async () => {
        await store.set('value', { a: 1 });
        await store.addToSet('set', ['m']);
        await store.increment('counter');

        await expect(store.addToSet('value', ['m'])).rejects.toThrow(WRONG_KIND);
        await expect(store.increment('value')).rejects.toThrow(WRONG_KIND);
        await expect(store.get('set')).rejects.toThrow(WRONG_KIND);
        await expect(store.take('set')).rejects.toThrow(WRONG_KIND);
        await expect(store.markConsumed('set', 'f', 1)).rejects.toThrow(WRONG_KIND);
        await expect(store.get('counter')).rejects.toThrow(WRONG_KIND);
        await expect(store.markConsumed('counter', 'f', 1)).rejects.toThrow(WRONG_KIND);
        await expect(store.setSize('value')).rejects.toThrow(WRONG_KIND);

        // Nothing was damaged by the failed calls.
        await expect(store.get('value')).resolves.toStrictEqual({ a: 1 });
        await expect(store.setMembers('set')).resolves.toStrictEqual(['m']);
        await expect(store.increment('counter')).resolves.toBe(2);
        await expect(store.setIfAbsent('set', { a: 1 })).resolves.toBe(false);
      });
    });

    describe('hash chains', () => {
      /** A chained record as a caller builds it (the store reads only `hash`). */
      const link = (n: number, prev: string | null): JsonObject => ({
        n,
        prev,
        hash: `h${n}`,
        nested: { list: [], big: Number.MAX_SAFE_INTEGER },
      });

      /** Every record of a chain, read in pages of `pageSize`. */
      async function readAll(key: string, pageSize: number): Promise<JsonObject[]> {
        const records: JsonObject[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await store.readChained(key, {
            count: pageSize,
            ...(after === undefined ? {} : { after }),
          });
          if (page.length === 0) return records;
          expect(page.length).toBeLessThanOrEqual(pageSize);
          records.push(...page.map((entry) => entry.record));
          after = page.at(-1)!.id;
        }
      }

      it('is empty before the first append', async () => {
        await expect(store.chainHead('log')).resolves.toBeNull();
        await expect(store.lastChained('log')).resolves.toBeUndefined();
        await expect(store.readChained('log')).resolves.toStrictEqual([]);
      });

      it('appends against the expected head, and moves the head', async () => {
        await expect(store.appendChained('log', link(1, null), null, 100)).resolves.toBe(true);
        await expect(store.chainHead('log')).resolves.toBe('h1');
        await expect(store.appendChained('log', link(2, 'h1'), 'h1', 100)).resolves.toBe(true);
        await expect(store.chainHead('log')).resolves.toBe('h2');

        const entries = await store.readChained('log');
        expect(entries.map((entry) => entry.record)).toStrictEqual([link(1, null), link(2, 'h1')]);
        expect(entries[0]!.id).not.toBe(entries[1]!.id);
        await expect(store.lastChained('log')).resolves.toStrictEqual(entries[1]);
      });

      it('refuses an append made against a stale or wrong head, writing nothing', async () => {
        await store.appendChained('log', link(1, null), null, 100);
        await store.appendChained('log', link(2, 'h1'), 'h1', 100);

        await expect(store.appendChained('log', link(9, null), null, 100)).resolves.toBe(false);
        await expect(store.appendChained('log', link(9, 'h1'), 'h1', 100)).resolves.toBe(false);
        await expect(store.appendChained('log', link(9, 'hx'), 'hx', 100)).resolves.toBe(false);
        await expect(store.chainHead('log')).resolves.toBe('h2');
        expect((await store.readChained('log')).map((entry) => entry.record.n)).toStrictEqual([
          1, 2,
        ]);
        // A chain that has no head refuses an append that expects one.
        await expect(store.appendChained('other', link(1, 'h0'), 'h0', 100)).resolves.toBe(false);
        await expect(store.chainHead('other')).resolves.toBeNull();
      });

      it('lets exactly one of 20 concurrent appends against the same head win', async () => {
        await store.appendChained('log', link(0, null), null, 100);
        const results = await concurrently(20, (i) =>
          store.appendChained('log', { writer: i, prev: 'h0', hash: `w${i}` }, 'h0', 100),
        );
        expect(results.filter((won) => won)).toHaveLength(1);
        const winner = results.indexOf(true);
        await expect(store.chainHead('log')).resolves.toBe(`w${winner}`);
        const records = (await store.readChained('log')).map((entry) => entry.record);
        expect(records).toHaveLength(2);
        expect(records[1]).toStrictEqual({ writer: winner, prev: 'h0', hash: `w${winner}` });
      });

      it('builds one linear chain when 20 writers retry on conflict', async () => {
        await concurrently(20, async (writer) => {
          for (;;) {
            const head = await store.chainHead('log');
            const record = { writer, prev: head, hash: `w${writer}` };
            if (await store.appendChained('log', record, head, 100)) return;
          }
        });
        const records = (await store.readChained('log')).map((entry) => entry.record);
        expect(records).toHaveLength(20);
        expect(new Set(records.map((record) => record.writer)).size).toBe(20);
        records.forEach((record, i) => {
          expect(record.prev).toBe(i === 0 ? null : records[i - 1]!.hash);
        });
      });

      it('keeps at most maxLength records, dropping the oldest but keeping the head', async () => {
        let prev: string | null = null;
        for (let n = 1; n <= 12; n += 1) {
          await expect(store.appendChained('log', link(n, prev), prev, 5)).resolves.toBe(true);
          prev = `h${n}`;
        }
        const records = (await store.readChained('log')).map((entry) => entry.record.n);
        expect(records).toStrictEqual([8, 9, 10, 11, 12]);
        await expect(store.chainHead('log')).resolves.toBe('h12');
        await expect(store.appendChained('log', link(13, 'h12'), 'h12', 5)).resolves.toBe(true);
        expect((await store.readChained('log')).map((entry) => entry.record.n)).toStrictEqual([
          9, 10, 11, 12, 13,
        ]);
      });

      it('reads oldest first, in pages that resume after the last id read', async () => {
        let prev: string | null = null;
        for (let n = 1; n <= 23; n += 1) {
          await store.appendChained('log', link(n, prev), prev, 1000);
          prev = `h${n}`;
        }
        const all = await store.readChained('log');
        expect(all.map((entry) => entry.record.n)).toStrictEqual(
          Array.from({ length: 23 }, (_, i) => i + 1),
        );
        for (const pageSize of [1, 5, 23, 50]) {
          expect((await readAll('log', pageSize)).map((record) => record.n)).toStrictEqual(
            all.map((entry) => entry.record.n),
          );
        }
        const middle = await store.readChained('log', { after: all[9]!.id, count: 3 });
        expect(middle).toStrictEqual(all.slice(10, 13));
        await expect(store.readChained('log', { after: all[22]!.id })).resolves.toStrictEqual([]);
      });

      it('rejects bad arguments and writes nothing', async () => {
        for (const max of [0, -1, 1.5, Number.NaN]) {
          await expect(store.appendChained('log', link(1, null), null, max)).rejects.toThrow(
            RangeError,
          );
        }
        await expect(
          store.appendChained('log', { prev: null, hash: '' }, null, 10),
        ).rejects.toThrow(TypeError);
        await expect(store.appendChained('log', { prev: null }, null, 10)).rejects.toThrow(
          TypeError,
        );
        await expect(store.readChained('log', { count: 0 })).rejects.toThrow(RangeError);
        await expect(store.chainHead('log')).resolves.toBeNull();
        await expect(store.readChained('log')).resolves.toStrictEqual([]);
      });

      it('rejects using a value key as a chain and a chain as a value', async () => {
        await store.set('value', { a: 1 });
        await store.appendChained('log', link(1, null), null, 10);
        await expect(store.appendChained('value', link(1, null), null, 10)).rejects.toThrow(
          WRONG_KIND,
        );
        await expect(store.readChained('value')).rejects.toThrow(WRONG_KIND);
        await expect(store.get('log')).rejects.toThrow(WRONG_KIND);
        await expect(store.get('value')).resolves.toStrictEqual({ a: 1 });
        await expect(store.readChained('log')).resolves.toHaveLength(1);
      });
    });

    describe('recent lists', () => {
      const entry = (n: number): JsonObject => ({ n, nested: { list: [], big: 2 ** 53 - 1 } });
      const numbers = (records: JsonObject[]) => records.map((record) => record.n);

      it('is empty when absent, and pushing nothing creates nothing', async () => {
        await expect(store.readRecent('recent', 10)).resolves.toStrictEqual([]);
        await store.pushRecent('recent', [], 10);
        await expect(store.setIfAbsent('recent', { a: 1 })).resolves.toBe(true);
      });

      it('reads the newest records first, batches given oldest first', async () => {
        await store.pushRecent('recent', [entry(1), entry(2)], 100);
        await store.pushRecent('recent', [entry(3)], 100);
        await store.pushRecent('recent', [entry(4), entry(5), entry(6)], 100);
        await expect(store.readRecent('recent', 100)).resolves.toStrictEqual(
          [6, 5, 4, 3, 2, 1].map(entry),
        );
        expect(numbers(await store.readRecent('recent', 2))).toStrictEqual([6, 5]);
        await store.pushRecent('recent', [RICH_VALUE], 100);
        await expect(store.readRecent('recent', 1)).resolves.toStrictEqual([RICH_VALUE]);
      });

      it('returns copies: changing a record read or pushed changes nothing stored', async () => {
        const pushed = entry(1);
        await store.pushRecent('recent', [pushed], 10);
        pushed.n = 99;
        const [read] = await store.readRecent('recent', 1);
        read!.n = 98;
        expect(numbers(await store.readRecent('recent', 1))).toStrictEqual([1]);
      });

      it('keeps at most maxLength records, dropping the oldest', async () => {
        for (let n = 1; n <= 12; n += 1) await store.pushRecent('recent', [entry(n)], 5);
        expect(numbers(await store.readRecent('recent', 100))).toStrictEqual([12, 11, 10, 9, 8]);
        // One batch longer than the bound keeps its newest records.
        await store.pushRecent('recent', [13, 14, 15, 16, 17, 18, 19].map(entry), 5);
        expect(numbers(await store.readRecent('recent', 100))).toStrictEqual([19, 18, 17, 16, 15]);
        await store.pushRecent('fresh', [1, 2, 3, 4].map(entry), 2);
        expect(numbers(await store.readRecent('fresh', 100))).toStrictEqual([4, 3]);
      });

      it('stays within its bound and keeps every batch whole under 20 concurrent writers', async () => {
        const batch = (writer: number) => [0, 1, 2].map((i) => ({ writer, i }));
        await concurrently(20, (writer) => store.pushRecent('all', batch(writer), 1000));
        const all = await store.readRecent('all', 1000);
        expect(all).toHaveLength(60);
        // Each writer's batch is contiguous and in order (newest first).
        for (let start = 0; start < all.length; start += 3) {
          const writer = all[start]!.writer;
          expect(all.slice(start, start + 3)).toStrictEqual(batch(Number(writer)).reverse());
        }
        await concurrently(20, (writer) => store.pushRecent('bounded', batch(writer), 10));
        await expect(store.readRecent('bounded', 1000)).resolves.toHaveLength(10);
      });

      it('rejects bad arguments and writes nothing', async () => {
        for (const bad of [0, -1, 1.5, Number.NaN]) {
          await expect(store.pushRecent('recent', [entry(1)], bad)).rejects.toThrow(RangeError);
          await expect(store.readRecent('recent', bad)).rejects.toThrow(RangeError);
        }
        await expect(
          store.pushRecent('recent', [entry(1), [1] as unknown as JsonObject], 10),
        ).rejects.toThrow(TypeError);
        await expect(store.readRecent('recent', 10)).resolves.toStrictEqual([]);
      });

      it('rejects using a value key as a list and a list as a value or chain', async () => {
        await store.set('value', { a: 1 });
        await store.pushRecent('recent', [entry(1)], 10);
        await expect(store.pushRecent('value', [entry(2)], 10)).rejects.toThrow(WRONG_KIND);
        await expect(store.readRecent('value', 10)).rejects.toThrow(WRONG_KIND);
        await expect(store.get('recent')).rejects.toThrow(WRONG_KIND);
        await expect(store.readChained('recent')).rejects.toThrow(WRONG_KIND);
        await expect(store.get('value')).resolves.toStrictEqual({ a: 1 });
        expect(numbers(await store.readRecent('recent', 10))).toStrictEqual([1]);
      });
    });

    describe('publish and subscribe', () => {
      it('delivers messages to every subscriber of the channel until it unsubscribes', async () => {
        const a: string[] = [];
        const b: string[] = [];
        const stopA = await store.subscribe('events', (message) => a.push(message));
        const stopB = await store.subscribe('events', (message) => b.push(message));
        const other: string[] = [];
        await store.subscribe('elsewhere', (message) => other.push(message));
        await store.publish('events', 'one');
        await waitFor(async () => a.length === 1 && b.length === 1, 'both subscribers receive');
        await stopA();
        await store.publish('events', 'two');
        await waitFor(async () => b.length === 2, 'remaining subscriber receives');
        expect(a).toEqual(['one']);
        expect(b).toEqual(['one', 'two']);
        expect(other).toEqual([]);
        await stopB();
      });
    });

    describe('lifecycle', () => {
      it('answers ping', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('rejects ping after close, and close can be called twice', async () => {
        await store.close();
        await expect(store.ping()).rejects.toThrow(/closed/i);
        await store.close();
      });
    });
  });
}

/**
 * What a store says when a key is used as another kind than it holds: Redis's own `WRONGTYPE`
 * error, which the memory store and the Redis store's JSON reads repeat. Redis keeps JSON values
 * and counters both as strings, so counting on a JSON value fails as "value is not an integer"
 * and marking a counter consumed as "not a JSON object".
 */
const WRONG_KIND = /WRONGTYPE|value is not an integer|not a JSON object/;

/** A filler value of about 1 KiB. */
const FILLER = { padding: 'x'.repeat(1000) };

/**
 * Writes 1 KiB values under `filler:<n>` until the store refuses one, which must be a
 * {@link StoreFullError}; returns the keys written.
 */
async function fillUntilRefused(store: Store, ttlSeconds?: number): Promise<string[]> {
  const keys: string[] = [];
  for (let n = 0; n < 10_000; n += 1) {
    const key = `filler:${n}`;
    try {
      await store.set(key, { ...FILLER, n }, ttlSeconds);
    } catch (error) {
      expect(error).toBeInstanceOf(StoreFullError);
      return keys;
    }
    keys.push(key);
  }
  throw new Error('the store never filled up');
}

/** Whether a promise rejects with a {@link StoreFullError} (anything else fails the test). */
async function refusedAsFull(promise: Promise<unknown>): Promise<boolean> {
  try {
    await promise;
    return false;
  } catch (error) {
    expect(error).toBeInstanceOf(StoreFullError);
    return true;
  }
}

function runFullStoreContract(
  name: string,
  makeSmallStore: () => Promise<SmallStoreFixture>,
): void {
  describe(`${name} (Store contract, when full)`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let stayFull: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      ({ store, cleanup, stayFull } = await makeSmallStore());
    });

    /** Writes 1 KiB values until the store refuses one; returns the keys written. */
    async function fill(ttlSeconds?: number): Promise<string[]> {
      const keys = await fillUntilRefused(store, ttlSeconds);
      await stayFull?.();
      return keys;
    }

    afterEach(async () => {
      await cleanup();
    });

    it('refuses every write that would create a key, writing nothing, and keeps every key it holds', async () => {
      // What denies access, written before other traffic fills the store.
      await store.addToSet('clients:disabled', ['mallory-client']);
      await store.addToSet('revocations:grants', ['stolen-grant 4102444800'], 3600);
      await store.setIfAbsent('session:bound', { subject: 'alice', clientId: 'app' }, 3600);
      const fillers = await fill();
      expect(fillers.length).toBeGreaterThan(10);

      const link = { prev: null, hash: 'h1' };
      await expect(store.set('new:value', { a: 1 })).rejects.toThrow(StoreFullError);
      await expect(store.set('new:value', { a: 1 }, 60)).rejects.toThrow(StoreFullError);
      await expect(store.setIfAbsent('new:once', { a: 1 }, 60)).rejects.toThrow(StoreFullError);
      await expect(store.addToSet('new:set', ['m'], 60)).rejects.toThrow(StoreFullError);
      await expect(store.increment('new:counter', 60)).rejects.toThrow(StoreFullError);
      await expect(store.appendChained('new:chain', link, null, 10)).rejects.toThrow(
        StoreFullError,
      );
      await expect(store.pushRecent('new:list', [{ n: 1 }], 10)).rejects.toThrow(StoreFullError);

      // Nothing was written by the refused calls.
      await expect(store.get('new:value')).resolves.toBeUndefined();
      await expect(store.get('new:once')).resolves.toBeUndefined();
      await expect(store.setSize('new:set')).resolves.toBe(0);
      await expect(store.chainHead('new:chain')).resolves.toBeNull();
      await expect(store.readRecent('new:list', 10)).resolves.toStrictEqual([]);

      // Nothing was evicted: every key is there with its value.
      await expect(store.setMembers('clients:disabled')).resolves.toStrictEqual(['mallory-client']);
      await expect(store.setMembers('revocations:grants')).resolves.toStrictEqual([
        'stolen-grant 4102444800',
      ]);
      await expect(store.get('session:bound')).resolves.toStrictEqual({
        subject: 'alice',
        clientId: 'app',
      });
      for (const [n, key] of fillers.entries()) {
        await expect(store.get(key)).resolves.toStrictEqual({ ...FILLER, n });
      }
    });

    it('never loses a key it holds, whether or not it accepts a write to it', async () => {
      await store.set('counted', { v: 1 });
      const fillers = await fill();
      // The memory store takes writes to existing keys; Redis refuses most writes once over
      // maxmemory. Either way the key keeps a whole value, the old one or the new one.
      const written = !(await refusedAsFull(store.set('counted', { v: 2 })));
      await expect(store.get('counted')).resolves.toStrictEqual({ v: written ? 2 : 1 });
      await expect(store.get(fillers.at(-1)!)).resolves.toStrictEqual({
        ...FILLER,
        n: fillers.length - 1,
      });
    });

    it('reads, takes and deletes while full; what is deleted frees room', async () => {
      const fillers = await fill();
      await expect(store.take(fillers[0]!)).resolves.toStrictEqual({ ...FILLER, n: 0 });
      // Half of them: Redis's first DEL allocates some memory of its own.
      await store.delete(...fillers.slice(1, Math.ceil(fillers.length / 2)));
      await expect(store.get(fillers[1]!)).resolves.toBeUndefined();
      await store.set('after-delete', { a: 1 });
      await expect(store.get('after-delete')).resolves.toStrictEqual({ a: 1 });
    });

    it('frees the room of expired entries', async () => {
      await store.set('kept', { a: 1 });
      const fillers = await fill(1);
      expect(fillers.length).toBeGreaterThan(10);
      await waitFor(
        async () => !(await refusedAsFull(store.set('after-expiry', { a: 2 }))),
        'expired entries free room',
      );
      await expect(store.get('after-expiry')).resolves.toStrictEqual({ a: 2 });
      await expect(store.get('kept')).resolves.toStrictEqual({ a: 1 });
    });
  });
}
