/**
 * Verifies an audit mirror file: the hash chain of its records (verify-chain.ts) and both of
 * its ends against its signed checkpoints (checkpoint.ts).
 *
 * - Every checkpoint must sit right after the record it names as `last`, and name the file's
 *   first record as `first`: otherwise records were cut before it (`end_cut`), or at the
 *   start of the file (`start_cut`).
 * - The file must end with a checkpoint, signed by one of the keys given: records after the
 *   last one, or none at all, mean the end was cut or never signed (`unsigned_end`); a
 *   checkpoint that does not verify is `bad_checkpoint`.
 *
 * A checkpoint signed by a key that is not given (rotated away since) vouches for nothing
 * and is skipped, unless it is the last one: then the end cannot be vouched for, and the
 * verdict says which key to supply (`--jwks` with the JWKS of that time).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { decodeProtectedHeader } from 'jose';
import { AUDIT_KEY } from '../store/keys.js';
import {
  checkpointOfLine,
  CheckpointRefused,
  type CheckpointKeys,
  type VerifiedCheckpoint,
} from './checkpoint.js';
import {
  ChainVerifier,
  type ChainFailure,
  type ChainFailureReason,
  type ChainVerification,
} from './verify-chain.js';

export interface FileVerification {
  verification: ChainVerification;
  /** The file line of the first bad record or checkpoint. */
  line?: number;
  /** When intact: the checkpoint that vouches for the file's end. */
  signed?: { iat: number; kid: string | undefined; iss: string };
}

interface LastCheckpoint {
  line: number;
  /** The seq it names as the file's last (the newest record before it, if it vouches for nothing). */
  seq: number;
  verified: VerifiedCheckpoint | undefined;
  kid: string;
  /** Records it names that are not before it: cut, unless records follow (then the chain says). */
  missing: { from: number; to: number } | undefined;
}

type Problem = [reason: ChainFailureReason, detail: string];

/** Verifies `file` as it is read (blank lines are ignored). */
export async function verifyFile(
  file: string,
  verifyCheckpoint: CheckpointKeys['verify'],
  chain = AUDIT_KEY,
): Promise<FileVerification> {
  const verifier = new ChainVerifier();
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  let last: LastCheckpoint | undefined;
  let recordsAfterLast = false;
  /** A cut start is reported together with whatever else turns out to be wrong. */
  let startCut: { line: number; seq: number; detail: string } | undefined;
  let firstRecordLine = 0;
  /** A failure found outside the chain: at the checkpoints, or at the end of the file. */
  const problemAt = ([reason, detail]: Problem): ChainFailure => ({
    ok: false,
    index: verifier.count,
    seq: null,
    reason,
    detail,
  });
  /** The verdict, with a cut start found earlier told first. */
  const fail = (found: ChainFailure, line: number): FileVerification => {
    if (!startCut || found.reason === 'start_cut') return { verification: found, line };
    return {
      verification: {
        ok: false,
        index: 0,
        seq: startCut.seq,
        reason: 'start_cut',
        detail: `${startCut.detail}; and ${found.detail}`,
      },
      line: startCut.line,
    };
  };
  try {
    for await (const line of lines) {
      lineNumber += 1;
      if (line.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = null; // reported as malformed
      }
      const jws = checkpointOfLine(parsed);
      if (jws === undefined) {
        recordsAfterLast = true;
        firstRecordLine ||= lineNumber;
        if (!verifier.add(parsed)) return fail(verifier.result() as ChainFailure, lineNumber);
        continue;
      }
      const checked = await checkCheckpoint(verifier, jws, chain, verifyCheckpoint);
      if ('problem' in checked) return fail(problemAt(checked.problem), lineNumber);
      if (checked.startCut !== undefined && !startCut) {
        startCut = { line: firstRecordLine, seq: verifier.first!.seq, detail: checked.startCut };
      }
      last = { line: lineNumber, ...checked };
      recordsAfterLast = false;
    }
  } finally {
    lines.close();
    input.destroy();
  }
  const end = endProblem(verifier, last, recordsAfterLast);
  if (end !== undefined) return fail(problemAt(end), lineNumber + 1);
  if (startCut) {
    const { line, seq, detail } = startCut;
    return fail({ ok: false, index: 0, seq, reason: 'start_cut', detail }, line);
  }
  const { iat, kid, iss } = last!.verified!;
  return { verification: verifier.result(), signed: { iat, kid, iss } };
}

/** One checkpoint against the records before it. */
async function checkCheckpoint(
  verifier: ChainVerifier,
  jws: string,
  chain: string,
  verifyCheckpoint: CheckpointKeys['verify'],
): Promise<{ problem: Problem } | (Omit<LastCheckpoint, 'line'> & { startCut?: string })> {
  let claims: VerifiedCheckpoint;
  try {
    claims = await verifyCheckpoint(jws);
  } catch (error) {
    if (error instanceof CheckpointRefused && error.unknownKey) {
      // Vouches for nothing; a problem only if no later checkpoint does (endProblem).
      const seq = verifier.last?.seq ?? 0;
      return { seq, verified: undefined, kid: keyIdOf(jws), missing: undefined };
    }
    return {
      problem: ['bad_checkpoint', `a checkpoint does not verify: ${(error as Error).message}`],
    };
  }
  const { first, last } = verifier;
  if (claims.chain !== chain) {
    return {
      problem: ['bad_checkpoint', `a checkpoint is of chain "${claims.chain}", not "${chain}"`],
    };
  }
  if (!first || !last) {
    return {
      problem: [
        'start_cut',
        `a signed checkpoint comes before any record: ${describe(claims.first.seq, claims.last.seq)} cut`,
      ],
    };
  }
  let startCut: string | undefined;
  if (first.seq !== claims.first.seq || first.prev !== claims.first.prev) {
    if (claims.first.seq >= first.seq) {
      return {
        problem: [
          'bad_checkpoint',
          `a signed checkpoint names seq ${claims.first.seq} as the file's start, which the file does not begin with: the file was edited`,
        ],
      };
    }
    startCut = `the file's signed start is seq ${claims.first.seq} but its first record is seq ${first.seq}: ${describe(claims.first.seq, first.seq - 1)} cut from the start`;
  }
  let missing: LastCheckpoint['missing'];
  if (last.seq !== claims.last.seq || last.hash !== claims.last.hash) {
    if (claims.last.seq <= last.seq) {
      return {
        problem: [
          'bad_checkpoint',
          `a signed checkpoint for seq ${claims.last.seq} stands after record seq ${last.seq}: the file was edited`,
        ],
      };
    }
    missing = { from: last.seq + 1, to: claims.last.seq };
  }
  return {
    seq: claims.last.seq,
    verified: claims,
    kid: claims.kid ?? '',
    missing,
    ...(startCut === undefined ? {} : { startCut }),
  };
}

/** Whether the file's end is vouched for by its last checkpoint. */
function endProblem(
  verifier: ChainVerifier,
  last: LastCheckpoint | undefined,
  recordsAfterLast: boolean,
): Problem | undefined {
  const newest = verifier.last;
  if (!newest) {
    return ['unsigned_end', 'the file holds no record and no signed checkpoint'];
  }
  if (!last) {
    return [
      'unsigned_end',
      `no signed checkpoint in the file: its ends cannot be vouched for (records seq ${verifier.first!.seq}–${newest.seq} chain correctly, but records may have been cut before or after them; a file from a version without checkpoints has none)`,
    ];
  }
  if (last.missing && !recordsAfterLast) {
    return [
      'end_cut',
      `the last signed checkpoint says the file holds records up to seq ${last.missing.to}, but the last record before it is seq ${last.missing.from - 1}: ${describe(last.missing.from, last.missing.to)} cut from the end`,
    ];
  }
  if (recordsAfterLast) {
    return [
      'unsigned_end',
      `the records after seq ${last.seq} (up to seq ${newest.seq}) are not covered by a signed checkpoint, the line the gateway writes after each batch: the end of the file was cut, or its writer stopped before signing`,
    ];
  }
  if (!last.verified) {
    return [
      'bad_checkpoint',
      `the last checkpoint (line ${last.line}) is signed by key ${last.kid || '(no kid)'}, which is not among the keys given: give the JWKS of the time it was written with --jwks`,
    ];
  }
  return undefined;
}

function describe(from: number, to: number): string {
  return from === to ? `record seq ${from} was` : `records seq ${from}–${to} were`;
}

/** The `kid` of a checkpoint's protected header, for the message only (nothing is trusted from it). */
function keyIdOf(jws: string): string {
  try {
    return decodeProtectedHeader(jws).kid ?? '';
  } catch {
    return '';
  }
}
