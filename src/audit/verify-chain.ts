/**
 * The audit trail's hash chain: how a record's digest is computed, and how a sequence of
 * records is checked. Pure functions, shared by the writer (audit-log.ts) and the
 * `mcp-gateway audit verify` command (cli.ts).
 *
 * A record is `{ v: 1, seq, time, kind, …fields, prev, hash }`. `hash` is the SHA-256 (hex)
 * of the record without `hash`, serialised as RFC 8785 JSON Canonicalization Scheme (sorted
 * keys, fixed number and string forms: the `canonicalize` package), so the digest does not
 * depend on key order or on who serialised the record. `prev` is the previous record's
 * `hash` (`null` for the first record ever written); `seq` counts up by one per record.
 *
 * What this detects: a record altered in place (its hash no longer matches), a record removed
 * or two records swapped (a gap or a step back in `seq`, and a `prev` that does not match),
 * and, given the store's head, records removed from the end. A chain alone cannot tell a
 * start cut off from one trimmed (its first `prev` is not checked), nor a cut end from an
 * older state: for a mirror file, its signed checkpoints do (checkpoint.ts, verify-file.ts).
 * What it cannot detect alone: an attacker who rewrites a record *and* every hash after it
 * (and the head). That is what the file mirror, shipped elsewhere, is for: a second copy such
 * an attacker must also rewrite.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { JsonObject } from '../store/store.js';

export const AUDIT_RECORD_VERSION = 1;

export type ChainFailureReason =
  | 'hash_mismatch'
  | 'broken_link'
  | 'sequence_gap'
  | 'malformed'
  | 'head_mismatch'
  // A mirror file's ends, against its signed checkpoints (verify-file.ts):
  | 'start_cut'
  | 'end_cut'
  | 'unsigned_end'
  | 'bad_checkpoint';

export type ChainVerification =
  | {
      ok: true;
      /** Records checked. */
      count: number;
      /** The last record's hash (`null` for no records). */
      head: string | null;
      /** The first and last `seq` checked (`null` for no records). */
      firstSeq: number | null;
      lastSeq: number | null;
    }
  | {
      ok: false;
      /** Position (0-based) of the first bad record in the sequence given. */
      index: number;
      /** Its `seq` as found, when it has a numeric one. */
      seq: number | null;
      reason: ChainFailureReason;
      /** One readable sentence about what is wrong. */
      detail: string;
    };

export type ChainFailure = Extract<ChainVerification, { ok: false }>;

/** SHA-256 (hex) of the JCS form of `record` without its `hash` field. */
export function hashRecord(record: JsonObject): string {
  const { hash: _hash, ...body } = record;
  const text = canonicalize(body);
  if (text === undefined) throw new TypeError('An audit record must be a JSON object');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

const HEX_SHA256 = /^[0-9a-f]{64}$/;

/** Why a record cannot be checked at all, or `undefined` when it has the required shape. */
function shapeProblem(record: unknown): string | undefined {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    return 'is not a JSON object';
  }
  const r = record as JsonObject;
  if (r.v !== AUDIT_RECORD_VERSION) return `has version ${JSON.stringify(r.v)}, not 1`;
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) return 'has no valid seq';
  if (typeof r.time !== 'string') return 'has no time';
  if (typeof r.kind !== 'string' || r.kind === '') return 'has no kind';
  if (r.prev !== null && (typeof r.prev !== 'string' || !HEX_SHA256.test(r.prev))) {
    return 'has no valid prev';
  }
  if (typeof r.hash !== 'string' || !HEX_SHA256.test(r.hash)) return 'has no valid hash';
  return undefined;
}

/**
 * Checks records one at a time (the CLI streams files and stores that do not fit in memory).
 * Stops at the first bad record: everything after a break is unverifiable anyway.
 */
export class ChainVerifier {
  #count = 0;
  #last: { seq: number; hash: string } | undefined;
  #first: { seq: number; prev: string | null } | undefined;
  #failure: ChainFailure | undefined;

  /** Records added so far. */
  get count(): number {
    return this.#count;
  }

  /** The first record checked: its seq and prev. */
  get first(): { seq: number; prev: string | null } | undefined {
    return this.#first;
  }

  /** The last record that checked out: its seq and hash. */
  get last(): { seq: number; hash: string } | undefined {
    return this.#last;
  }

  /** Checks the next record; returns false once the chain is broken. */
  add(record: unknown): boolean {
    if (this.#failure) return false;
    const index = this.#count;
    this.#count += 1;
    const seqOf = (value: unknown): number | null => {
      const seq = (value as JsonObject | null)?.seq;
      return typeof seq === 'number' && Number.isFinite(seq) ? seq : null;
    };
    const fail = (reason: ChainFailureReason, detail: string): false => {
      this.#failure = { ok: false, index, seq: seqOf(record), reason, detail };
      return false;
    };

    const problem = shapeProblem(record);
    if (problem !== undefined) return fail('malformed', `the record ${problem}`);
    const r = record as JsonObject & { seq: number; hash: string; prev: string | null };

    let computed: string;
    try {
      computed = hashRecord(r);
    } catch (error) {
      return fail('malformed', `the record cannot be canonicalised: ${(error as Error).message}`);
    }
    if (computed !== r.hash) {
      return fail('hash_mismatch', 'the record was altered: its content does not match its hash');
    }

    const previous = this.#last;
    if (previous !== undefined) {
      // seq first: it names what happened (a record missing, or records out of order).
      if (r.seq !== previous.seq + 1) {
        const detail =
          r.seq > previous.seq + 1
            ? `seq jumps from ${previous.seq} to ${r.seq}: ${describeMissing(previous.seq, r.seq)} removed`
            : `seq goes from ${previous.seq} to ${r.seq}: records were reordered or duplicated`;
        return fail('sequence_gap', detail);
      }
      if (r.prev !== previous.hash) {
        return fail(
          'broken_link',
          `prev does not match the hash of record seq ${previous.seq}: a record was replaced or removed`,
        );
      }
    }
    // The first record's prev is accepted as it is: the store keeps only the newest
    // `maxRecords` (the oldest are trimmed), and a mirror file may start mid-chain.
    this.#first ??= { seq: r.seq, prev: r.prev };
    this.#last = { seq: r.seq, hash: r.hash };
    return true;
  }

  /** The verdict so far; `expectedHead` (the store's head) also catches a truncated end. */
  result(expectedHead?: string | null): ChainVerification {
    if (this.#failure) return this.#failure;
    const head = this.#last?.hash ?? null;
    if (expectedHead !== undefined && expectedHead !== head) {
      return {
        ok: false,
        index: this.#count,
        seq: this.#last ? this.#last.seq + 1 : null,
        reason: 'head_mismatch',
        detail:
          expectedHead === null
            ? 'the store has no head but holds records: the head was removed'
            : `the store's head is ${expectedHead}, not the hash of the last record: records after seq ${this.#last?.seq ?? 0} were removed`,
      };
    }
    return {
      ok: true,
      count: this.#count,
      head,
      firstSeq: this.#first?.seq ?? null,
      lastSeq: this.#last?.seq ?? null,
    };
  }
}

function describeMissing(from: number, to: number): string {
  return to - from === 2 ? `record seq ${from + 1} was` : `records seq ${from + 1}–${to - 1} were`;
}

/**
 * Verifies records in chain order (oldest first): recomputes each hash, checks that each
 * `prev` is the previous record's hash and that `seq` grows by one, and reports the first bad
 * record. The first record's `prev` is not checked (the log may have been trimmed).
 * With `expectedHead` (the store's head), records removed from the end are reported too.
 */
export function verifyChain(
  records: readonly unknown[],
  options: { expectedHead?: string | null } = {},
): ChainVerification {
  const verifier = new ChainVerifier();
  for (const record of records) {
    if (!verifier.add(record)) break;
  }
  return verifier.result(options.expectedHead);
}
