/**
 * The audit trail's file mirror: follows the store's chain into a file of JSON lines, one
 * record a line, and after each batch a signed checkpoint line (checkpoint.ts) naming the
 * file's first record and its last, so that `audit verify --file` can tell a cut at either
 * end from legitimate trimming.
 *
 * The file follows the store's chain rather than this process's own appends: each replica
 * writes every record of the shared chain, in chain order. A new file starts with every
 * record the store still holds; after a restart the file gets what it missed. Lines are
 * appended without fsync: a crash can lose the last few (they are still in the store), never
 * reorder them; an incomplete last line is cut off at start-up.
 *
 * The gateway never signs over a file it cannot vouch for: at start-up the file's last
 * checkpoint must verify, name the file's first record, and be followed only by records that
 * continue from the record it names. A file that fails this (cut, edited, or written by a
 * version without checkpoints) is moved aside as `<file>.unverified.<epoch ms>`, kept for
 * investigation and `audit verify`, and a new file starts; otherwise a restart would sign a
 * cut start as if it were the file's real one.
 */
import { chmod, open, rename, type FileHandle } from 'node:fs/promises';
import type { Logger } from '../logging/logger.js';
import type { JsonObject, Store } from '../store/store.js';
import {
  checkpointOfLine,
  CheckpointRefused,
  type CheckpointClaims,
  type CheckpointKeys,
} from './checkpoint.js';

const MIRROR_PAGE = 500;
/** Bytes read from each end of the mirror file to find its first and last records. */
const MIRROR_END_BYTES = 256 * 1024;

export interface ChainPoint {
  seq: number;
  hash: string;
}

interface FileRecord extends ChainPoint {
  prev: string | null;
}

export class FileMirror {
  /** The newest record in the file. */
  last: ChainPoint | undefined;
  /** The file's first record, which every checkpoint names. */
  #first: CheckpointClaims['first'] | undefined;
  /** The seq of the newest record a checkpoint in the file covers. */
  #signedSeq: number | undefined;
  #handle: FileHandle | undefined;
  /** The store id of the newest entry mirrored (`undefined`: from the chain's start). */
  #cursor: string | undefined;
  /** While catching up after a restart: records up to this seq are in the file already. */
  #skipThrough: number | undefined;
  #initialized = false;

  constructor(
    readonly file: string,
    private readonly store: Store,
    private readonly key: string,
    private readonly logger: Logger,
    private readonly keys: CheckpointKeys,
  ) {}

  async init(): Promise<void> {
    if (this.#initialized) return;
    try {
      await this.#openVouchedFile();
      const newest = await this.store.lastChained(this.key);
      if (this.last !== undefined && newest !== undefined && newest.record.seq === this.last.seq) {
        // Up to date (the usual restart): mirror what comes next.
        this.#cursor = newest.id;
        this.#skipThrough = undefined;
      } else {
        // A new file gets every record the store still holds; a file that is behind gets what
        // it misses. The store does not index records by seq, so this reads from the chain's
        // start and skips what the file has (once, at start-up).
        this.#cursor = undefined;
        this.#skipThrough = this.last?.seq;
      }
      // Records a crash left after the last checkpoint: sign them now.
      if (this.last && this.#signedSeq !== this.last.seq) {
        await this.#handle!.appendFile(`${await this.#checkpointLine(this.last)}\n`, 'utf8');
        this.#signedSeq = this.last.seq;
      }
      this.#initialized = true;
    } catch (error) {
      this.logger.error('audit mirror file cannot be opened; retrying later', {
        event: 'audit_failed',
        file: this.file,
        error: (error as Error).message,
      });
    }
  }

  /** Appends every record after the cursor, then a checkpoint. Errors are logged; the next sync retries. */
  async sync(): Promise<void> {
    if (!this.#initialized || !this.#handle) return;
    try {
      for (;;) {
        const page = await this.store.readChained(this.key, {
          count: MIRROR_PAGE,
          ...(this.#cursor === undefined ? {} : { after: this.#cursor }),
        });
        if (page.length === 0) return;
        const lines: string[] = [];
        let last = this.last;
        let first = this.#first;
        for (const { record } of page) {
          const seq = record.seq as number;
          if (this.#skipThrough !== undefined && seq <= this.#skipThrough) continue;
          if (last && record.prev !== last.hash) {
            this.logger.warn(
              'audit mirror misses records: they left the store before being copied',
              { event: 'audit_problem', file: this.file, fromSeq: last.seq, toSeq: seq },
            );
          }
          this.#skipThrough = undefined;
          first ??= { seq, prev: (record.prev as string | null) ?? null };
          lines.push(JSON.stringify(record));
          last = { seq, hash: record.hash as string };
        }
        if (lines.length > 0 && last) {
          this.#first = first;
          // Signed before anything is written: a failure leaves the file as it was.
          lines.push(await this.#checkpointLine(last));
          await this.#handle.appendFile(`${lines.join('\n')}\n`, 'utf8');
          this.#signedSeq = last.seq;
        }
        this.last = last;
        this.#cursor = page.at(-1)!.id;
        if (page.length < MIRROR_PAGE) return;
      }
    } catch (error) {
      this.logger.error('audit mirror not written; retrying later', {
        event: 'audit_failed',
        file: this.file,
        error: (error as Error).message,
      });
    }
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    this.#initialized = false;
    await handle?.close();
  }

  async #checkpointLine(last: ChainPoint): Promise<string> {
    const checkpoint = await this.keys.sign({ chain: this.key, first: this.#first!, last });
    return JSON.stringify({ checkpoint });
  }

  /**
   * Opens the file (created 0600), cuts off a torn last line, and takes over its first record
   * and last checkpoint when it can vouch for them; otherwise moves it aside and starts anew.
   */
  async #openVouchedFile(): Promise<void> {
    this.#handle ??= await open(this.file, 'a+', 0o600);
    // The mode applies only to a file this call creates; an existing one is tightened too.
    await chmod(this.file, 0o600).catch(() => undefined);
    let tail = await readTail(this.#handle);
    if (tail.tornAt !== undefined) {
      // A crash mid-write left half a line. It is not a record (the whole record is still in
      // the store, and is copied again); left there, it would glue itself to the next line.
      this.logger.warn('audit mirror: removing an incomplete last line', {
        event: 'audit_problem',
        file: this.file,
        offset: tail.tornAt,
      });
      await this.#handle.truncate(tail.tornAt);
      tail = await readTail(this.#handle);
    }
    if (tail.empty) {
      this.#first = undefined;
      this.#signedSeq = undefined;
      this.last = undefined;
      return;
    }
    const problem = await this.#vouch(tail, await readHead(this.#handle));
    if (problem === undefined) {
      this.last = tail.last;
      return;
    }
    await this.#handle.close();
    this.#handle = undefined;
    const aside = `${this.file}.unverified.${Date.now()}`;
    await rename(this.file, aside);
    this.logger.error('audit mirror file cannot be vouched for: moved aside, a new file starts', {
      event: problem.tampered ? 'audit_tampered' : 'audit_problem',
      file: this.file,
      movedTo: aside,
      problem: problem.reason,
    });
    this.#handle = await open(this.file, 'a+', 0o600);
    this.#first = undefined;
    this.#signedSeq = undefined;
    this.last = undefined;
  }

  /** Why the file's ends cannot be vouched for, or `undefined` (then its anchor is taken over). */
  async #vouch(
    tail: Tail,
    head: FileRecord | undefined,
  ): Promise<{ reason: string; tampered: boolean } | undefined> {
    if (tail.checkpoint === undefined || head === undefined) {
      return {
        reason: 'no signed checkpoint (a file from a version without them, or cut)',
        tampered: false,
      };
    }
    let claims: CheckpointClaims;
    try {
      claims = await this.keys.verify(tail.checkpoint);
    } catch (error) {
      // A key retired while this replica was stopped proves nothing either way.
      const unknownKey = error instanceof CheckpointRefused && error.unknownKey;
      return { reason: `its last checkpoint: ${(error as Error).message}`, tampered: !unknownKey };
    }
    const { first, last } = claims;
    if (claims.chain !== this.key || head.seq !== first.seq || head.prev !== first.prev) {
      return {
        reason: `its first record (seq ${head.seq}) is not the signed start (seq ${first.seq}): the start was cut`,
        tampered: true,
      };
    }
    const signed = tail.beforeCheckpoint;
    if (!signed || signed.seq !== last.seq || signed.hash !== last.hash) {
      return {
        reason: `its last checkpoint names seq ${last.seq}, not the record before it: records were cut`,
        tampered: true,
      };
    }
    let previous: ChainPoint = last;
    for (const record of tail.after) {
      if (record.seq !== previous.seq + 1 || record.prev !== previous.hash) {
        return { reason: `records after seq ${last.seq} do not follow it`, tampered: true };
      }
      previous = record;
    }
    this.#first = first;
    this.#signedSeq = last.seq;
    return undefined;
  }
}

interface Tail {
  /** No line at all. */
  empty: boolean;
  /** The newest record. */
  last: ChainPoint | undefined;
  /** Where an incomplete last line starts, when the file does not end with a newline. */
  tornAt: number | undefined;
  /** The JWS of the last checkpoint line found in the bytes read. */
  checkpoint: string | undefined;
  /** The record right before that checkpoint. */
  beforeCheckpoint: FileRecord | undefined;
  /** The records after it, oldest first. */
  after: FileRecord[];
}

function recordOf(parsed: unknown): FileRecord | undefined {
  const record = parsed as JsonObject | null;
  if (record === null || typeof record !== 'object') return undefined;
  if (!Number.isSafeInteger(record.seq) || typeof record.hash !== 'string') return undefined;
  const prev = record.prev;
  if (prev !== null && typeof prev !== 'string') return undefined;
  return { seq: record.seq as number, hash: record.hash, prev };
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

/** The last record, the last checkpoint and what surrounds it, read from the file's end. */
async function readTail(handle: FileHandle): Promise<Tail> {
  const none: Tail = {
    empty: true,
    last: undefined,
    tornAt: undefined,
    checkpoint: undefined,
    beforeCheckpoint: undefined,
    after: [],
  };
  const { size } = await handle.stat();
  if (size === 0) return none;
  const length = Math.min(size, MIRROR_END_BYTES);
  const buffer = Buffer.alloc(length);
  await handle.read(buffer, 0, length, size - length);
  if (buffer[length - 1] !== 0x0a) {
    const newline = buffer.lastIndexOf(0x0a);
    // Beyond the bytes read, a line that long is no record: leave the file alone.
    if (newline >= 0 || length === size) {
      return { ...none, empty: false, tornAt: size - length + newline + 1 };
    }
  }
  const lines = buffer.toString('utf8').split('\n');
  // The first line of bytes read from mid-file is partial: never read as a whole one.
  if (length < size) lines.shift();
  const tail: Tail = { ...none, empty: lines.every((line) => line.trim() === '') };
  const after: FileRecord[] = [];
  for (let i = lines.length - 1; i >= 0; i -= 1) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const parsed = parseLine(line);
    const checkpoint = checkpointOfLine(parsed);
    const record = checkpoint === undefined ? recordOf(parsed) : undefined;
    if (record && tail.last === undefined) tail.last = record;
    if (checkpoint !== undefined && tail.checkpoint === undefined) {
      tail.checkpoint = checkpoint;
      tail.after = after.reverse();
      continue;
    }
    if (tail.checkpoint !== undefined) {
      // The line right before the checkpoint must be the record it names.
      tail.beforeCheckpoint = record;
      break;
    }
    if (record) after.push(record);
  }
  return tail;
}

/** The file's first record (the first line that is one), from its first bytes. */
async function readHead(handle: FileHandle): Promise<FileRecord | undefined> {
  const { size } = await handle.stat();
  const length = Math.min(size, MIRROR_END_BYTES);
  const buffer = Buffer.alloc(length);
  await handle.read(buffer, 0, length, 0);
  for (const line of buffer.toString('utf8').split('\n')) {
    if (line.trim() === '') continue;
    return recordOf(parseLine(line));
  }
  return undefined;
}
