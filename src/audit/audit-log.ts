/**
 * The tamper-evident audit trail: every grant, token issue, refresh, revocation, client
 * change and `/verify` refusal becomes one record of a hash chain kept in the store (a Redis
 * stream in production), and optionally mirrored to a file of JSON lines.
 *
 * Record: `{ v: 1, seq, time, kind, actor?, …fields, prev, hash }` (verify-chain.ts says how
 * `hash` is computed and what a verifier can tell). Records never hold tokens, secrets or tool
 * arguments: fields whose names say they hold a secret are dropped here, whatever the caller
 * passed, and tool arguments are only ever recorded as `argumentsHash`.
 *
 * Several replicas share one chain: each append is a compare-and-append against the head the
 * writer read ({@link Store.appendChained}); the loser of a race reads the new head, rebuilds
 * its record (new `seq` and `prev`) and tries again, a bounded number of times.
 *
 * Off the hot path: `append` only queues the record (taking its time then); one writer per
 * process drains the queue in order. The queue is bounded: when full, records are dropped,
 * counted in {@link AuditLog.dropped} and reported in a warning at most once a minute. A store
 * failure is logged (with the record's kind) and counted in {@link AuditLog.failed}; it never
 * reaches the caller. `flush()` waits until everything queued is written (tests, shutdown).
 *
 * The file mirror (file-mirror.ts) follows the store's chain rather than this process's own
 * appends, so that each replica's file is a complete chain, with signed checkpoints of both
 * its ends, that `mcp-gateway audit verify --file` can check on its own. It is brought up to
 * date after each batch of appends, every `mirrorSyncIntervalMs` and on `flush()`. When the
 * store has no chain yet but the file has records (the in-memory store after a restart, or a
 * wiped Redis), the chain continues from the file's last record, so the file stays one chain.
 */
import type { Logger } from '../logging/logger.js';
import { AUDIT_KEY } from '../store/keys.js';
import type { ChainEntry, JsonObject, Store } from '../store/store.js';
import type { CheckpointKeys } from './checkpoint.js';
import { FileMirror } from './file-mirror.js';
import { AUDIT_RECORD_VERSION, hashRecord } from './verify-chain.js';

/** What a record is about. `admin_change` is for administrative changes made through the service. */
export type AuditKind =
  | 'grant_saved'
  | 'grant_revoked'
  | 'token_issued'
  | 'token_refreshed'
  | 'client_registered'
  | 'client_updated'
  | 'client_deleted'
  | 'admin_change'
  | 'verify_denied';

/** The fields of a record besides the chain's own (`v`, `seq`, `time`, `kind`, `prev`, `hash`). */
export interface AuditFields {
  /** Who made the change, when it is someone other than the `subject` (an administrator). */
  actor?: string | undefined;
  subject?: string | undefined;
  clientId?: string | undefined;
  [field: string]: unknown;
}

export interface AuditLogOptions {
  store: Store;
  /** The chain's key in the store. Default `audit`. */
  key?: string;
  /** Records kept in the store; older ones are trimmed (the file mirror keeps everything). */
  maxRecords: number;
  /** Mirror every record of the chain to this file, one JSON line each (created mode 0600). */
  file?: string | undefined;
  /** Sign the mirror file's checkpoints (file-mirror.ts); required with `file`. */
  checkpointKeys?: CheckpointKeys | undefined;
  logger: Logger;
  /** Records waiting to be written, at most. Default 10 000. */
  maxQueue?: number;
  /** Attempts at one record when other writers keep winning the race. Default 20. */
  maxAttempts?: number;
  /** How often the mirror picks up records other replicas appended. Default 5 s. */
  mirrorSyncIntervalMs?: number;
}

const RESERVED = new Set(['v', 'seq', 'time', 'kind', 'prev', 'hash']);

/**
 * Field names that say they hold a secret or a tool's arguments: dropped at any depth. A name
 * ending in `Hash` (e.g. `argumentsHash`) is a digest, and kept.
 */
const FORBIDDEN_FIELD =
  /token|secret|password|passwd|cookie|authorization|assertion|verifier|^code$|^state$|^nonce$|jwk|private|^arguments$|^args$|^params$|^body$/i;

const WARN_INTERVAL_MS = 60_000;

interface Pending {
  kind: string;
  time: string;
  fields: JsonObject;
  done: () => void;
}

export class AuditLog {
  readonly #store: Store;
  readonly #key: string;
  readonly #maxRecords: number;
  readonly #logger: Logger;
  readonly #maxQueue: number;
  readonly #maxAttempts: number;
  readonly #mirror: FileMirror | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #queue: Pending[] = [];
  #draining: Promise<void> | undefined;
  #dropped = 0;
  #failed = 0;
  #closed = false;
  readonly #lastWarning = new Map<string, number>();

  constructor(options: AuditLogOptions) {
    if (!Number.isSafeInteger(options.maxRecords) || options.maxRecords < 1) {
      throw new RangeError(`maxRecords must be a positive integer, got ${options.maxRecords}`);
    }
    this.#store = options.store;
    this.#key = options.key ?? AUDIT_KEY;
    this.#maxRecords = options.maxRecords;
    this.#logger = options.logger;
    this.#maxQueue = options.maxQueue ?? 10_000;
    this.#maxAttempts = options.maxAttempts ?? 20;
    if (options.file !== undefined) {
      if (!options.checkpointKeys) {
        throw new TypeError('an audit mirror file needs checkpointKeys: its ends are signed');
      }
      this.#mirror = new FileMirror(
        options.file,
        this.#store,
        this.#key,
        this.#logger,
        options.checkpointKeys,
      );
      this.#timer = setInterval(() => this.#kick(), options.mirrorSyncIntervalMs ?? 5000);
      this.#timer.unref();
    }
  }

  /** Records dropped because the queue was full (or the log closed). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Records lost to store errors, or to losing the race to other writers every time. */
  get failed(): number {
    return this.#failed;
  }

  /** Records waiting to be written. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Queues a record and returns at once; the promise settles when the record has been written
   * (or given up on), and never rejects. Hot paths do not await it.
   */
  append(kind: AuditKind | (string & {}), fields: AuditFields = {}): Promise<void> {
    const time = new Date().toISOString();
    if (this.#closed || this.#queue.length >= this.#maxQueue) {
      this.#dropped += 1;
      this.#reportAtMostEveryMinute(
        'warn',
        'dropped',
        this.#closed
          ? 'audit records dropped: the audit log is closed'
          : 'audit records dropped: the audit queue is full',
        {
          dropped: this.#dropped,
          queued: this.#queue.length,
          closed: this.#closed,
        },
      );
      return Promise.resolve();
    }
    let clean: JsonObject;
    try {
      clean = cleanFields(fields);
    } catch (error) {
      this.#failed += 1;
      this.#logger.error('audit record refused: its fields are not JSON', {
        event: 'audit_failed',
        kind,
        error: (error as Error).message,
      });
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.#queue.push({ kind, time, fields: clean, done: resolve });
      this.#kick();
    });
  }

  /** Resolves once every record queued so far is written and the mirror is up to date. */
  async flush(): Promise<void> {
    this.#kick();
    while (this.#draining) await this.#draining;
  }

  /** Writes what is queued, stops the mirror's timer and closes its file. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.flush();
    this.#closed = true;
    await this.#mirror?.close();
  }

  #kick(): void {
    if (this.#draining) return;
    const run = this.#drain()
      .catch((error: unknown) => {
        this.#logger.error('audit writer failed', {
          event: 'audit_failed',
          error: (error as Error).message,
        });
      })
      .finally(() => {
        this.#draining = undefined;
        if (this.#queue.length > 0 && !this.#closed) this.#kick();
      });
    this.#draining = run;
  }

  async #drain(): Promise<void> {
    if (this.#closed) return;
    await this.#mirror?.init();
    for (let item = this.#queue.shift(); item; item = this.#queue.shift()) {
      try {
        await this.#write(item);
      } finally {
        item.done();
      }
    }
    await this.#mirror?.sync();
  }

  /** Appends one record, rebuilding it against the new head whenever another writer won. */
  async #write(item: Pending): Promise<void> {
    try {
      for (let attempt = 1; attempt <= this.#maxAttempts; attempt += 1) {
        const { expected, after } = await this.#position();
        // `fields` holds none of the chain's own names (cleanFields), so none is overwritten.
        const body: JsonObject = {
          v: AUDIT_RECORD_VERSION,
          seq: after.seq + 1,
          time: item.time,
          kind: item.kind,
          ...item.fields,
          prev: after.hash,
        };
        const record = { ...body, hash: hashRecord(body) };
        if (await this.#store.appendChained(this.#key, record, expected, this.#maxRecords)) {
          return;
        }
        // Another writer appended first: back off a little (jittered) and rebuild.
        await delay(Math.random() * Math.min(2 ** attempt, 50));
      }
      this.#failed += 1;
      this.#reportAtMostEveryMinute(
        'error',
        'race',
        'audit records not written: other writers kept winning the race',
        {
          event: 'audit_failed',
          kind: item.kind,
          failed: this.#failed,
          attempts: this.#maxAttempts,
          ...(await this.#headProblem()),
        },
      );
    } catch (error) {
      this.#failed += 1;
      this.#reportAtMostEveryMinute(
        'error',
        'store',
        'audit records not written: the store failed',
        {
          event: 'audit_failed',
          kind: item.kind,
          failed: this.#failed,
          error: (error as Error).message,
        },
      );
    }
  }

  /**
   * Where the next record goes: the head to compare against (`expected`), and the seq and
   * hash it follows. Both come from one read of the newest record, so they cannot disagree.
   */
  async #position(): Promise<{
    expected: string | null;
    after: { seq: number; hash: string | null };
  }> {
    const last = await this.#store.lastChained(this.#key);
    if (last) return positionAfter(last);
    const head = await this.#store.chainHead(this.#key);
    if (head !== null) {
      // Another writer may have appended the first record between the two reads: look again.
      // Records never disappear once the head is set (trimming keeps at least one), so no
      // record now means a chain whose records were deleted behind the service's back.
      const appended = await this.#store.lastChained(this.#key);
      if (appended) return positionAfter(appended);
      this.#reportAtMostEveryMinute('error', 'headless', 'audit chain has a head but no records', {
        event: 'audit_tampered',
      });
      const fileLast = this.#mirror?.last;
      const seq = fileLast?.hash === head ? fileLast.seq : 0;
      return { expected: head, after: { seq, hash: head } };
    }
    // No chain in the store: continue the mirror file's chain when there is one.
    return { expected: null, after: this.#mirror?.last ?? { seq: 0, hash: null } };
  }

  /** After giving up: says whether the head and the newest record disagree (a cut tail). */
  async #headProblem(): Promise<JsonObject> {
    try {
      const [last, head] = await Promise.all([
        this.#store.lastChained(this.#key),
        this.#store.chainHead(this.#key),
      ]);
      if (last && last.record.hash !== head) {
        return {
          problem:
            'the chain head does not match its newest record: records were removed; run `mcp-gateway audit verify`',
        };
      }
    } catch {
      // Reported by the caller already.
    }
    return {};
  }

  /** Logs once per topic and minute: a full queue or a store outage must not flood the log. */
  #reportAtMostEveryMinute(
    level: 'warn' | 'error',
    topic: string,
    message: string,
    details: JsonObject,
  ): void {
    const now = Date.now();
    const last = this.#lastWarning.get(topic);
    if (last !== undefined && now - last < WARN_INTERVAL_MS) return;
    this.#lastWarning.set(topic, now);
    this.#logger.log(level, message, { event: 'audit_problem', ...details });
  }
}

/** Where a record goes after `last`; its hash is also the head to compare against. */
function positionAfter(last: ChainEntry): {
  expected: string;
  after: { seq: number; hash: string };
} {
  const { seq, hash } = last.record;
  if (!Number.isSafeInteger(seq) || typeof hash !== 'string') {
    throw new Error(`the newest audit record (${last.id}) has no valid seq or hash`);
  }
  return { expected: hash, after: { seq: seq as number, hash } };
}

/**
 * A copy of the record's fields that is plain JSON (what the store will give back, so the hash
 * covers exactly what is stored), without the chain's reserved names, secret-named fields or
 * `undefined` values.
 */
function cleanFields(fields: AuditFields): JsonObject {
  const json = JSON.stringify(fields, (key, value: unknown) => {
    if (key !== '' && FORBIDDEN_FIELD.test(key) && !key.endsWith('Hash')) return undefined;
    return value;
  });
  const parsed: unknown = JSON.parse(json ?? '{}');
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TypeError('audit fields must be an object');
  }
  const clean = parsed as JsonObject;
  for (const key of Object.keys(clean)) if (RESERVED.has(key)) delete clean[key];
  return clean;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
