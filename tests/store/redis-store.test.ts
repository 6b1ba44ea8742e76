import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis-store.js';
import { StoreFullError } from '../../src/store/store.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { getFreePort } from '../helpers/ports.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { runStoreContract, waitFor } from './contract.js';

/** Whether a promise settles as resolved, for polling. */
function succeeds(promise: Promise<unknown>): Promise<boolean> {
  return promise.then(
    () => true,
    () => false,
  );
}

/** How long a promise takes to reject; fails the test if it resolves. */
async function timeToReject(promise: Promise<unknown>): Promise<number> {
  const started = Date.now();
  await expect(promise).rejects.toThrow();
  return Date.now() - started;
}

/** `used_memory` of a server, from `INFO memory`. */
async function usedMemory(admin: Redis): Promise<number> {
  const used = /^used_memory:(\d+)/m.exec(await admin.info('memory'))?.[1];
  if (used === undefined) throw new Error('INFO memory has no used_memory');
  return Number(used);
}

describeWithBinary('redis-server', 'RedisStore on a real redis-server', () => {
  let server: RedisServer;
  /** A server run as production must be (`noeviction`), given a small `maxmemory` per test. */
  let small: RedisServer;
  let smallAdmin: Redis;

  beforeAll(async () => {
    server = await startRedis();
    small = await startRedis({ extraArgs: ['--maxmemory-policy', 'noeviction'] });
    smallAdmin = new Redis(small.url);
  });

  afterAll(async () => {
    await smallAdmin?.quit();
    await small?.stop();
    await server?.stop();
  });

  runStoreContract(
    'RedisStore',
    async () => {
      const store = new RedisStore({
        url: server.url,
        keyPrefix: `test:${randomUUID()}:`,
      });
      return { store, cleanup: () => store.close() };
    },
    async () => {
      await smallAdmin.flushall();
      const store = new RedisStore({ url: small.url, keyPrefix: 'full:' });
      await store.ping();
      // Room for about 256 values of 1 KiB beyond what the empty server uses.
      await smallAdmin.config(
        'SET',
        'maxmemory',
        String((await usedMemory(smallAdmin)) + 256 * 1024),
      );
      return {
        store,
        stayFull: async () => {
          await smallAdmin.config(
            'SET',
            'maxmemory',
            String((await usedMemory(smallAdmin)) - 16 * 1024),
          );
        },
        cleanup: async () => {
          await store.close();
          await smallAdmin.config('SET', 'maxmemory', '0');
          await smallAdmin.flushall();
        },
      };
    },
  );

  describe('Redis specifics', () => {
    it('turns an out-of-memory refusal into StoreFullError, from scripts too; reads, takes and deletes go on', async () => {
      await smallAdmin.flushall();
      const store = new RedisStore({ url: small.url, keyPrefix: 'oom:' });
      try {
        await store.set('code', { sub: 'alice' }, 60);
        await store.set('doc', { version: 'v1' });
        await store.addToSet('set', ['a']);
        // Over maxmemory from here on: every write that could use memory is refused.
        await smallAdmin.config('SET', 'maxmemory', '1');

        await expect(store.markConsumed('code', 'usedAt', 1)).rejects.toThrow(StoreFullError);
        await expect(
          store.replaceIf('doc', 'version', 'v1', { version: 'v2' }),
        ).rejects.toMatchObject({
          name: 'StoreFullError',
          cause: expect.objectContaining({ message: expect.stringMatching(/^OOM command/) }),
        });
        await expect(store.addToSet('set', ['b'])).rejects.toThrow(StoreFullError);

        await expect(store.get('code')).resolves.toStrictEqual({ sub: 'alice' });
        await expect(store.get('doc')).resolves.toStrictEqual({ version: 'v1' });
        await expect(store.setMembers('set')).resolves.toStrictEqual(['a']);
        await expect(store.take('code')).resolves.toStrictEqual({ sub: 'alice' });
        await store.removeFromSet('set', ['a']);
        await store.delete('doc');
        await expect(store.get('doc')).resolves.toBeUndefined();
        // A command error that is not about memory stays what it is.
        await smallAdmin.config('SET', 'maxmemory', '0');
        await store.set('value', { a: 1 });
        const wrongType = await store.increment('value').catch((error: unknown) => error);
        expect(wrongType).toBeInstanceOf(Error);
        expect(wrongType).not.toBeInstanceOf(StoreFullError);
      } finally {
        await smallAdmin.config('SET', 'maxmemory', '0');
        await store.close();
        await smallAdmin.flushall();
      }
    });

    it('keeps JSON text under its key prefix; other prefixes do not see it', async () => {
      const prefix = `test:${randomUUID()}:`;
      const store = new RedisStore({ url: server.url, keyPrefix: prefix });
      const other = new RedisStore({
        url: server.url,
        keyPrefix: `test:${randomUUID()}:`,
      });
      const raw = new Redis(server.url);
      try {
        await store.set('k', { a: [1] }, 60);
        await expect(raw.get(`${prefix}k`)).resolves.toBe('{"a":[1]}');
        await expect(other.get('k')).resolves.toBeUndefined();

        // markConsumed keeps the remaining lifetime to the millisecond, not just "some" TTL.
        const before = await raw.pttl(`${prefix}k`);
        await expect(store.markConsumed('k', 'usedAt', 5)).resolves.toBe(true);
        const after = await raw.pttl(`${prefix}k`);
        expect(before).toBeGreaterThan(59_000);
        expect(after).toBeLessThanOrEqual(before);
        expect(after).toBeGreaterThan(before - 1000);
        await expect(raw.get(`${prefix}k`)).resolves.toBe('{"a":[1],"usedAt":5}');

        await store.addToSet('s', ['m'], 30);
        await store.addToSet('s', ['n'], 10);
        expect(await raw.ttl(`${prefix}s`)).toBeGreaterThan(20);
      } finally {
        await store.close();
        await other.close();
        await raw.quit();
      }
    });

    it('is single-use across replicas: 20 callers on 4 connections, one winner', async () => {
      const keyPrefix = `test:${randomUUID()}:`;
      const replicas = Array.from(
        { length: 4 },
        () => new RedisStore({ url: server.url, keyPrefix }),
      );
      const on = (i: number): RedisStore => replicas[i % replicas.length]!;
      try {
        await on(0).set('code', { sub: 'alice' }, 60);
        const taken = await Promise.all(
          replicas.flatMap((_, r) => [0, 1, 2, 3, 4].map(() => on(r).take('code'))),
        );
        expect(taken.filter((value) => value !== undefined)).toStrictEqual([{ sub: 'alice' }]);

        await on(0).set('refresh', { sub: 'alice' }, 60);
        const marked = await Promise.all(
          Array.from({ length: 20 }, (_, i) => on(i).markConsumed('refresh', 'usedAt', i)),
        );
        expect(marked.filter((won) => won)).toHaveLength(1);
      } finally {
        await Promise.all(replicas.map((store) => store.close()));
      }
    });

    it('fails fast while Redis is down, reports errors instead of crashing, and recovers', async () => {
      const consoleError = jest.spyOn(console, 'error');
      const uncaught: unknown[] = [];
      const record = (error: unknown): void => {
        uncaught.push(error);
      };
      process.on('unhandledRejection', record);
      process.on('uncaughtException', record);
      let consoleErrors: unknown[][] = [];
      const errors: Error[] = [];
      // A server of its own: the shared one must survive this test.
      const doomed = await startRedis();
      let revived: RedisServer | undefined;
      const store = new RedisStore({
        url: doomed.url,
        keyPrefix: 'outage:',
        onError: (error) => errors.push(error),
      });
      try {
        await store.ping();
        await store.set('k', { v: 1 });

        await doomed.stop();
        expect(await timeToReject(store.ping())).toBeLessThan(2500);
        expect(await timeToReject(store.get('k'))).toBeLessThan(6000);
        expect(await timeToReject(store.take('k'))).toBeLessThan(6000);
        await waitFor(async () => errors.length > 0, 'onError hears of the outage');

        revived = await startRedis({ port: doomed.port });
        await waitFor(() => succeeds(store.ping()), 'the store reconnects', {
          timeoutMs: 10_000,
          intervalMs: 100,
        });
        await store.set('k', { v: 2 });
        await expect(store.get('k')).resolves.toStrictEqual({ v: 2 });
      } finally {
        await store.close();
        await doomed.stop();
        await revived?.stop();
        process.removeListener('unhandledRejection', record);
        process.removeListener('uncaughtException', record);
        consoleErrors = consoleError.mock.calls.slice();
        consoleError.mockRestore();
      }
      expect(uncaught).toStrictEqual([]);
      // Without an 'error' listener ioredis logs "[ioredis] Unhandled error event" here.
      expect(consoleErrors).toStrictEqual([]);
      expect(errors[0]?.message).toEqual(expect.any(String));
    });

    it('starts while Redis is unreachable without crashing; ping rejects promptly', async () => {
      const errors: Error[] = [];
      const store = new RedisStore({
        url: `redis://127.0.0.1:${await getFreePort()}`,
        onError: (error) => errors.push(error),
      });
      try {
        expect(await timeToReject(store.ping())).toBeLessThan(2500);
        expect(await timeToReject(store.set('k', { v: 1 }))).toBeLessThan(6000);
        expect(errors.length).toBeGreaterThan(0);
      } finally {
        const started = Date.now();
        await store.close();
        expect(Date.now() - started).toBeLessThan(1000);
      }
    });
  });
});
