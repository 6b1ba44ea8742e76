/**
 * The activity feed's parts on the real embedded store and the real logger: batched writes
 * (a full batch without waiting for the interval, a short one within it), a bounded buffer
 * and a single warning while the store fails, close(); the feed as a sink of the security
 * event emitter (removed at close); and what an entry keeps (no token, no arguments).
 */
import { describe, expect, it } from '@jest/globals';
import { ActivityFeed } from '../../src/activity/activity-feed.js';
import { decisionEntry, securityEntry } from '../../src/activity/activity-entries.js';
import { BATCH_SIZE, FLUSH_INTERVAL_MS, RecentList } from '../../src/activity/recent-list.js';
import { loggedSecurityEvents } from '../../src/events/security-events.js';
import { DECISIONS_KEY, SECURITY_EVENTS_KEY } from '../../src/store/keys.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { JsonObject, Store } from '../../src/store/store.js';
import { captureLogger } from '../helpers/captured-logger.js';
import { waitFor } from '../store/contract.js';

/** The real store, counting `pushRecent` calls, and failing them while `failing` is set. */
function watchedStore() {
  const store = new MemoryStore({ maxEntries: 1000 });
  const state = { pushes: 0, failing: false };
  const watched = new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'pushRecent') {
        return async (key: string, records: JsonObject[], max: number) => {
          if (state.failing) throw new Error('store down');
          state.pushes += 1;
          return target.pushRecent(key, records, max);
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store;
  return { store, watched, state };
}

const numbers = (records: JsonObject[]) => records.map((record) => record.n);

describe('RecentList', () => {
  it('writes a full batch at once, in one store write, without waiting for the interval', async () => {
    const { store, watched, state } = watchedStore();
    const { logger } = captureLogger();
    const list = new RecentList({ store: watched, key: 'recent', maxEntries: 1000, logger });
    const started = Date.now();
    for (let n = 0; n < BATCH_SIZE * 2 + 50; n += 1) list.add({ n });
    await waitFor(
      async () => (await store.readRecent('recent', 1000)).length === BATCH_SIZE * 2 + 50,
      'the batch is written',
      { timeoutMs: FLUSH_INTERVAL_MS / 2, intervalMs: 5 },
    );
    expect(Date.now() - started).toBeLessThan(FLUSH_INTERVAL_MS);
    expect(state.pushes).toBe(1);
    expect((await store.readRecent('recent', 1))[0]).toEqual({ n: BATCH_SIZE * 2 + 49 });
    await list.close();
    await store.close();
  });

  it('writes a short batch within the interval, and read() includes what is buffered', async () => {
    const { store, watched, state } = watchedStore();
    const { logger } = captureLogger();
    const list = new RecentList({ store: watched, key: 'recent', maxEntries: 100, logger });
    list.add({ n: 1 });
    list.add({ n: 2 });
    await waitFor(
      async () => (await store.readRecent('recent', 10)).length === 2,
      'the short batch is written by the timer',
      { timeoutMs: FLUSH_INTERVAL_MS * 3, intervalMs: 20 },
    );
    expect(state.pushes).toBe(1);
    list.add({ n: 3 });
    expect(numbers(await list.read(10))).toEqual([3, 2, 1]);
    await list.close();
    list.add({ n: 4 });
    await list.flush();
    expect(numbers(await store.readRecent('recent', 10))).toEqual([3, 2, 1]);
    await store.close();
  });

  it('keeps the newest maxEntries in memory while the store fails, warns once, and catches up', async () => {
    const { store, watched, state } = watchedStore();
    const { logger, records } = captureLogger();
    const list = new RecentList({ store: watched, key: 'recent', maxEntries: 10, logger });
    state.failing = true;
    for (let n = 1; n <= 30; n += 1) list.add({ n });
    await list.flush();
    for (let n = 31; n <= 35; n += 1) list.add({ n });
    await list.flush();
    await expect(store.readRecent('recent', 100)).resolves.toEqual([]);
    const warnings = () =>
      records().filter((line) => String(line.message).includes('cannot be written'));
    expect(warnings()).toHaveLength(1);

    state.failing = false;
    await list.flush();
    expect(numbers(await store.readRecent('recent', 100))).toEqual([
      35, 34, 33, 32, 31, 30, 29, 28, 27, 26,
    ]);
    expect(records().map((line) => line.message)).toContain(
      'recent activity is written to the store again',
    );
    await list.close();
    await store.close();
  });
});

describe('security event sink', () => {
  it('feeds the security events of the gateway emitter into the shared list', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const { logger } = captureLogger();
    const events = loggedSecurityEvents(logger);
    const feed = new ActivityFeed({ store, maxEntries: 10, events, logger });
    events.emit('tool_denied', {
      ip: '192.0.2.9',
      subject: 'dev:bob@example.com',
      clientId: 'client-1',
      resource: 'https://mcp.example.com/mcp',
      tool: 'delete',
      arguments: { secret: 'never' },
      origin: 'https://evil.example',
    });
    await feed.close();
    events.emit('tool_denied', { ip: '192.0.2.10' });
    const [stored, ...rest] = await store.readRecent(SECURITY_EVENTS_KEY, 10);
    expect(rest).toEqual([]);
    expect(stored).toEqual({
      at: expect.any(Number),
      result: 'security',
      kind: 'tool_denied',
      ip: '192.0.2.9',
      subject: 'dev:bob@example.com',
      clientId: 'client-1',
      resource: 'https://mcp.example.com/mcp',
      tool: 'delete',
    });
    await store.close();
  });
});

describe('ActivityFeed decisions', () => {
  const decision = (ip: string, tool?: string) => ({
    ...entryOutcome(),
    resource: 'https://mcp.example.com/mcp',
    subject: 'dev:bob@example.com',
    clientId: 'client-1',
    clientIp: () => ip,
    ...(tool === undefined ? {} : { status: 403, reason: 'tool_denied', tool }),
  });

  it('are one entry with a count while identical and unwritten, a new entry once written', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const { logger } = captureLogger();
    const feed = new ActivityFeed({
      store,
      maxEntries: 10,
      events: loggedSecurityEvents(logger),
      logger,
    });
    for (let n = 0; n < 3; n += 1) feed.decided(decision('192.0.2.1'));
    feed.decided(decision('192.0.2.2'));
    // A NUL in the tool name (the field a client chooses) cannot make two decisions one.
    feed.decided(decision('192.0.2.1', 'a\0b'));
    feed.decided(decision('192.0.2.1', 'a\0b'));
    feed.decided(decision('192.0.2.1', 'a'));
    const first = await feed.recent(); // writes what is buffered
    expect(first.map(({ ip, count, tool }) => ({ ip, count, tool }))).toEqual(
      expect.arrayContaining([
        { ip: '192.0.2.1', count: 3, tool: undefined },
        { ip: '192.0.2.2', count: undefined, tool: undefined },
        { ip: '192.0.2.1', count: 2, tool: 'a\0b' },
        { ip: '192.0.2.1', count: undefined, tool: 'a' },
      ]),
    );
    expect(first).toHaveLength(4);

    feed.decided(decision('192.0.2.1'));
    await feed.close();
    const stored = await store.readRecent(DECISIONS_KEY, 10);
    expect(stored).toHaveLength(5);
    expect(stored[0]).toMatchObject({ ip: '192.0.2.1', result: 'allowed' });
    expect(stored[0]!.count).toBeUndefined();
    expect(stored.filter((record) => record.count === 3)).toHaveLength(1);
    await store.close();
  });
});

describe('activity entries', () => {
  it('keep a refused tool call by name, without its arguments hash', () => {
    const entry = decisionEntry(
      {
        status: 403,
        reason: 'tool_denied',
        resource: 'https://mcp.example.com/mcp',
        seconds: 0.001,
        subject: 'dev:bob@example.com',
        clientId: 'client-1',
        clientIp: () => '192.0.2.1',
        tool: 'x'.repeat(1000),
        argumentsHash: 'a'.repeat(64),
      },
      1,
    );
    expect(entry).toMatchObject({ result: 'refused', status: 403, ip: '192.0.2.1' });
    expect(entry.tool).toHaveLength(300);
    expect(JSON.stringify(entry)).not.toContain('a'.repeat(64));
    expect(decisionEntry({ ...entryOutcome(), status: 503 }, 1).result).toBe('error');
    expect(decisionEntry({ ...entryOutcome(), status: 200 }, 1).result).toBe('allowed');
  });

  it('scrub credentials out of a security event reason, and give a rate limit as one', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    const entry = securityEntry('oauth_error', { reason: `bad token ${jwt}` }, undefined, 1);
    expect(entry.reason).toBe('bad token [jwt]');
    expect(
      securityEntry('rate_limited', { limit: 'verifyFailures', route: '/verify' }, '192.0.2.1', 1)
        .reason,
    ).toBe('limit verifyFailures');
  });
});

function entryOutcome() {
  return {
    status: 200,
    reason: 'allowed',
    resource: undefined,
    seconds: 0,
    clientIp: () => undefined,
  };
}
