/**
 * The harness's bounded poll and its free-port retry: what every other suite relies on to
 * wait for a condition and to bind a port another process may take first.
 */
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { eventually, pollUntil, waitFor } from './poll.js';
import { closeServer, isPortTaken, listenOn, listenOnFreePort, onFreePort } from './ports.js';

describe('waitFor, pollUntil and eventually', () => {
  it('resolves once the condition holds, with how long it took', async () => {
    let calls = 0;
    const elapsed = await waitFor(async () => (calls += 1) >= 3, {
      what: 'the third call',
      intervalMs: 1,
    });
    expect(calls).toBe(3);
    expect(elapsed).toBeGreaterThanOrEqual(0);
  });

  it('throws naming what it waited for, and the extra detail', async () => {
    await expect(
      waitFor(() => false, {
        what: 'a condition that never holds',
        timeoutMs: 30,
        intervalMs: 5,
        detail: () => 'server output: nothing',
      }),
    ).rejects.toThrow(
      /^timed out after 30 ms waiting for a condition that never holds\nserver output: nothing$/,
    );
  });

  it('returns the accepted value, or names the last one seen when none is', async () => {
    let n = 0;
    await expect(
      pollUntil(
        () => (n += 1),
        (value) => value === 2,
        { what: 'two' },
      ),
    ).resolves.toMatchObject({ value: 2 });
    await expect(
      pollUntil(
        () => ({ status: 200 }),
        (answer) => answer.status === 401,
        { what: 'a refusal', timeoutMs: 20, intervalMs: 5 },
      ),
    ).rejects.toThrow('timed out after 20 ms waiting for a refusal (last: {"status":200})');
  });

  it('lets a failing check fail at once rather than wait', async () => {
    let calls = 0;
    await expect(
      waitFor(
        () => {
          calls += 1;
          throw new Error('the server exited');
        },
        { what: 'a server', timeoutMs: 5_000 },
      ),
    ).rejects.toThrow('the server exited');
    expect(calls).toBe(1);
  });

  it('eventually answers whether the condition held in time', async () => {
    expect(await eventually(async () => true, 10)).toBe(true);
    expect(await eventually(async () => false, 20, 5)).toBe(false);
  });
});

describe('onFreePort', () => {
  it('recognises a taken port in a listener error and in a spawned server output', () => {
    expect(isPortTaken(Object.assign(new Error('listen'), { code: 'EADDRINUSE' }))).toBe(true);
    expect(
      isPortTaken(new Error('nginx: bind() to 127.0.0.1:1 failed (98: Address already in use)')),
    ).toBe(true);
    expect(isPortTaken(new Error('redis-server exited with code 1'))).toBe(false);
    expect(isPortTaken(undefined)).toBe(false);
  });

  it('starts again on another port when the first one was taken', async () => {
    const squatter = createServer();
    const other = createServer();
    const tried: number[] = [];
    try {
      const port = await onFreePort(async (candidate) => {
        tried.push(candidate);
        // The first port is taken (by the squatter) before the launch binds it.
        if (tried.length === 1) await listenOn(squatter, candidate);
        await listenOn(other, candidate);
        return candidate;
      });
      expect(tried).toHaveLength(2);
      expect(port).toBe(tried[1]);
      expect(port).not.toBe(tried[0]);
    } finally {
      await Promise.all([closeServer(squatter as Server), closeServer(other as Server)]);
    }
  });

  it('gives up after the attempts, and at once on another error', async () => {
    let calls = 0;
    const taken = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
    await expect(
      onFreePort(async () => {
        calls += 1;
        throw taken;
      }, 2),
    ).rejects.toBe(taken);
    expect(calls).toBe(2);
    calls = 0;
    await expect(
      onFreePort(async () => {
        calls += 1;
        throw new Error('no such binary');
      }),
    ).rejects.toThrow('no such binary');
    expect(calls).toBe(1);
  });

  it('listens a server on a free port and says which', async () => {
    const server = createServer();
    try {
      const port = await listenOnFreePort(server);
      const address = server.address();
      expect(typeof address === 'object' && address?.port).toBe(port);
    } finally {
      await closeServer(server);
    }
  });
});
