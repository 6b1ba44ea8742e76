/**
 * One bounded list of recent records in the store, written in batches: what the admin
 * console's activity feed is made of (src/activity/activity-feed.ts).
 *
 * `add` is called on hot paths (after every `/verify` answer), so it only appends to an
 * in-memory buffer; the buffer goes to the store in one `pushRecent` (LPUSH + LTRIM in one
 * MULTI on Redis): after {@link FLUSH_INTERVAL_MS}, or on the next turn of the event loop once
 * {@link BATCH_SIZE} records wait. One write at a time; what arrives meanwhile waits for the
 * next. So a busy replica makes a few store writes per second, and a record reaches the other
 * replicas' pages within about a second.
 *
 * Bounded everywhere: the store keeps the newest `maxEntries`, and so does the buffer while
 * the store cannot be written (older records would be trimmed anyway). A failed write is
 * logged once until a write succeeds again, and retried on the timer, never in a tight loop.
 * Records buffered when the process dies are lost: the feed is a view for people; the audit
 * trail (src/audit/) is the record.
 */
import type { Logger } from '../logging/logger.js';
import type { JsonObject, Store } from '../store/store.js';

/** How long a record may wait in memory before it is written. */
export const FLUSH_INTERVAL_MS = 1000;
/** Records that are written at once, without waiting for the interval. */
export const BATCH_SIZE = 100;

export interface RecentListOptions {
  store: Store;
  key: string;
  /** Records kept, in the store and in the buffer. */
  maxEntries: number;
  logger: Logger;
}

export class RecentList {
  #buffer: JsonObject[] = [];
  #writing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #failing = false;
  #closed = false;
  #batches = 0;

  constructor(private readonly options: RecentListOptions) {}

  /**
   * Counts the batches taken for writing. A record added while this number stays the same is
   * still in memory, so the caller may still change it (the activity feed counts repeats of
   * a decision in the record it added for the first one).
   */
  get batchesTaken(): number {
    return this.#batches;
  }

  /** Buffers a record; O(1), never throws, never waits. Ignored once closed. */
  add(record: JsonObject): void {
    if (this.#closed) return;
    const buffer = this.#buffer;
    // Only while the store cannot be written does the buffer reach the bound.
    if (buffer.length >= this.options.maxEntries) buffer.shift();
    buffer.push(record);
    this.#schedule();
  }

  /** The newest `count` records in the store, newest first (this replica's buffer included). */
  async read(count: number): Promise<JsonObject[]> {
    await this.flush();
    return this.options.store.readRecent(this.options.key, count);
  }

  /** Writes what is buffered now, after any write in progress; never rejects. */
  async flush(): Promise<void> {
    this.#cancelTimers();
    while (this.#writing) await this.#writing;
    if (this.#buffer.length === 0) return;
    const run = this.#write();
    this.#writing = run;
    try {
      await run;
    } finally {
      if (this.#writing === run) this.#writing = undefined;
      this.#schedule();
    }
  }

  /** Writes what is buffered and stops; later records are ignored. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    this.#cancelTimers();
  }

  async #write(): Promise<void> {
    const { store, key, maxEntries, logger } = this.options;
    const batch = this.#buffer;
    this.#buffer = [];
    this.#batches += 1;
    try {
      await store.pushRecent(key, batch, maxEntries);
      if (this.#failing) {
        this.#failing = false;
        logger.info('recent activity is written to the store again', { key });
      }
    } catch (error) {
      // Back in front of what arrived meanwhile, keeping the newest within the bound.
      const kept = batch.concat(this.#buffer);
      this.#buffer = kept.length > maxEntries ? kept.slice(kept.length - maxEntries) : kept;
      if (!this.#failing) {
        this.#failing = true;
        logger.warn('recent activity cannot be written to the store; kept in memory, retrying', {
          key,
          error,
        });
      }
    }
  }

  #schedule(): void {
    if (this.#closed || this.#writing || this.#buffer.length === 0) return;
    if (this.#buffer.length >= BATCH_SIZE && !this.#failing) {
      if (this.#immediate) return;
      if (this.#timer) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      this.#immediate = setImmediate(() => {
        this.#immediate = undefined;
        void this.flush();
      });
    } else if (!this.#timer && !this.#immediate) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush();
      }, FLUSH_INTERVAL_MS);
      // A pending write must not keep the process alive; close() writes what is left.
      this.#timer.unref();
    }
  }

  #cancelTimers(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }
}
