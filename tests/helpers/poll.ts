/**
 * The one bounded poll of the test suites: a test waits for a condition to hold, never for a
 * fixed time, and gives up after a bound with an error that names what it was waiting for.
 */

export interface PollOptions {
  /** What is awaited, for the error: "the revocation to reach replica B". */
  what: string;
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between two polls (default 50 ms). */
  intervalMs?: number;
  /** More to say when it times out (a server's output, what was seen so far). */
  detail?: () => string;
}

interface Polled<T> {
  value: T;
  done: boolean;
  elapsedMs: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `get` until `done(value)` or `timeoutMs` has passed; always polls at least once. */
async function poll<T>(
  get: () => T | Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
  intervalMs: number,
): Promise<Polled<T>> {
  const started = Date.now();
  for (;;) {
    const value = await get();
    const elapsedMs = Date.now() - started;
    if (done(value)) return { value, done: true, elapsedMs };
    if (elapsedMs > timeoutMs) return { value, done: false, elapsedMs };
    await pause(intervalMs);
  }
}

const more = (detail: PollOptions['detail']) => (detail ? `\n${detail()}` : '');

function describeValue(value: unknown): string {
  if (typeof value === 'string') return value.length > 200 ? `${value.slice(0, 200)}…` : value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Polls `get` until `done` accepts its value: the value and how long it took (ms). Throws
 * "timed out after N ms waiting for <what> (last: <value>)" when it never does.
 */
export async function pollUntil<T>(
  get: () => T | Promise<T>,
  done: (value: T) => boolean,
  { what, timeoutMs = 10_000, intervalMs = 50, detail }: PollOptions,
): Promise<{ value: T; elapsedMs: number }> {
  const polled = await poll(get, done, timeoutMs, intervalMs);
  if (!polled.done) {
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what} (last: ${describeValue(polled.value)})` +
        more(detail),
    );
  }
  return { value: polled.value, elapsedMs: polled.elapsedMs };
}

/**
 * Polls `check` until it returns true: how long it took (ms). Throws "timed out after N ms
 * waiting for <what>" when it never does.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  { what, timeoutMs = 10_000, intervalMs = 50, detail }: PollOptions,
): Promise<number> {
  const polled = await poll(check, (ok) => ok, timeoutMs, intervalMs);
  if (!polled.done) {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${more(detail)}`);
  }
  return polled.elapsedMs;
}

/**
 * Polls `check` until it returns true, at most `ms` milliseconds; whether it did. For
 * `expect(await eventually(…)).toBe(true)` and for conditions that may rightly never hold.
 */
export async function eventually(
  check: () => Promise<boolean>,
  ms: number,
  intervalMs = 50,
): Promise<boolean> {
  return (await poll(check, (ok) => ok, ms, intervalMs)).done;
}
