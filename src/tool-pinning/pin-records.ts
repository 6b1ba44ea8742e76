/**
 * The pinned state of one MCP server, as every replica shares it in the store: the approved
 * snapshot, the change waiting for review (with the scanner's findings), and how the last
 * listing went. Written with compare-and-set on `version`, so that a check running on one
 * replica never silently undoes an approval made on another.
 */
import { createHash, randomUUID } from 'node:crypto';
import { toolPinsKey } from '../store/keys.js';
import type { JsonObject, Store } from '../store/store.js';
import type { DefinitionChange, Snapshot } from './definitions.js';
import type { Finding } from './scanner.js';

/** A change held for an administrator. */
export interface PendingChange {
  snapshot: Snapshot;
  /** Identifies the snapshot (its definitions' hashes), to recognise it when listed again. */
  fingerprint: string;
  changes: DefinitionChange[];
  /** Findings by definition key (`tool:name`), for the definitions that have any. */
  findings: Record<string, Finding[]>;
  /** Epoch ms. */
  detectedAt: number;
  /** `review` until an administrator decides; `rejected` keeps the definitions held. */
  status: 'review' | 'rejected';
  decidedBy?: string;
}

export interface LastCheck {
  /** Epoch ms. */
  at: number;
  ok: boolean;
  error?: string;
  durationMs: number;
}

export interface PinRecord {
  resource: string;
  /** Changes at every write (compare-and-set). */
  version: string;
  approved: Snapshot | null;
  approvedAt?: number;
  approvedBy?: string;
  pending: PendingChange | null;
  lastCheck: LastCheck | null;
  /** When the server was last listed successfully (epoch ms). */
  lastListedAt?: number;
}

/** The fingerprint of a snapshot: a hash of its sorted `key hash` lines. */
export function fingerprintOf(snapshot: Snapshot): string {
  const lines = Object.entries(snapshot.definitions)
    .map(([key, definition]) => `${key} ${definition.hash}`)
    .sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

export class PinRecords {
  constructor(private readonly store: Store) {}

  async read(resource: string): Promise<PinRecord | undefined> {
    return (await this.store.get(toolPinsKey(resource))) as PinRecord | undefined;
  }

  /**
   * Applies `edit` to the current record (or to an empty one) and writes the result, retrying
   * when another replica wrote in between. `edit` returns `undefined` to write nothing.
   */
  async update(
    resource: string,
    edit: (current: PinRecord) => PinRecord | undefined,
  ): Promise<PinRecord> {
    const key = toolPinsKey(resource);
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const stored = await this.read(resource);
      const current: PinRecord = stored ?? {
        resource,
        version: '',
        approved: null,
        pending: null,
        lastCheck: null,
      };
      const next = edit(structuredClone(current));
      if (!next) return current;
      const written = { ...next, version: randomUUID() };
      const ok = stored
        ? await this.store.replaceIf(
            key,
            'version',
            stored.version,
            written as unknown as JsonObject,
          )
        : await this.store.setIfAbsent(key, written as unknown as JsonObject);
      if (ok) return written;
    }
    throw new Error(`tool pins of ${resource}: too many concurrent writes`);
  }
}
