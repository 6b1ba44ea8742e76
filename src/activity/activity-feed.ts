/**
 * The recent activity the admin console shows (`/admin/activity`): every `/verify` decision,
 * allowed or not, and every security event, shared by all replicas through the store.
 *
 * Two lists, each keeping the newest `activity.maxEntries` entries: decisions come at the rate
 * of MCP traffic, and in one list they would push the rarer security events out within
 * seconds. The page merges both, newest first.
 *
 * Both are fed synchronously by their sources (the decision point's observers, a sink on the
 * gateway's security event emitter) and written to the store in batches (recent-list.ts).
 * Identical decisions (same status, reason, resource, subject, client, tool and client
 * address) within one batch are one entry with a count: an MCP session makes the same
 * decision many times a second, and one entry per request would cost the store a record per
 * MCP request (a Redis write path as busy as the traffic) and push everything else off a page
 * of people-sized length. The `/verify` hot path gains a string key and a Map lookup per
 * decision; a new entry only for what differs.
 */
import type { DecisionObserver, DecisionOutcome } from '../forward-auth/decision-observer.js';
import type {
  SecurityEventDetails,
  SecurityEventKind,
  SecurityEventSinks,
} from '../events/security-events.js';
import type { Logger } from '../logging/logger.js';
import { DECISIONS_KEY, SECURITY_EVENTS_KEY } from '../store/keys.js';
import type { Store } from '../store/store.js';
import { decisionEntry, readEntry, securityEntry, type ActivityEntry } from './activity-entries.js';
import { RecentList } from './recent-list.js';

export interface ActivityFeedOptions {
  store: Store;
  /** Entries kept per list (`activity.maxEntries`). */
  maxEntries: number;
  /** The gateway's security events: the feed adds itself as a sink, until closed. */
  events: SecurityEventSinks;
  /** Where failing writes are logged. */
  logger: Logger;
}

export class ActivityFeed implements DecisionObserver {
  readonly maxEntries: number;
  readonly #decisions: RecentList;
  readonly #security: RecentList;
  readonly #removeSink: () => void;
  /** Entries of decisions not yet taken for writing, by what makes decisions identical. */
  #unwritten = new Map<string, ActivityEntry>();
  /** The decisions list's `batchesTaken` when `#unwritten` was last emptied. */
  #unwrittenBatch = 0;

  constructor(options: ActivityFeedOptions) {
    const { store, maxEntries, events, logger } = options;
    this.maxEntries = maxEntries;
    this.#decisions = new RecentList({ store, key: DECISIONS_KEY, maxEntries, logger });
    this.#security = new RecentList({ store, key: SECURITY_EVENTS_KEY, maxEntries, logger });
    this.#removeSink = events.addSink((kind, details, ip) => this.securityEvent(kind, details, ip));
  }

  /** The decision point's observer: called after every answer; O(1), never throws. */
  decided(outcome: DecisionOutcome): void {
    const at = Date.now();
    const ip = outcome.clientIp();
    const { status, reason, resource, subject, clientId, tool } = outcome;
    // Once the list has taken a batch for writing, its entries may no longer change.
    if (
      this.#unwrittenBatch !== this.#decisions.batchesTaken ||
      this.#unwritten.size >= this.maxEntries
    ) {
      this.#unwritten.clear();
      this.#unwrittenBatch = this.#decisions.batchesTaken;
    }
    // The tool name is the one field a client chooses freely (it may hold any character), so
    // it comes last: the fields before it (a status, our reason codes, a configured URL, the
    // subject and client of a token this service issued, an address parsed by proxy-addr)
    // hold no NUL, and two equal keys therefore mean equal fields.
    const key = `${status}\0${reason}\0${resource ?? ''}\0${subject ?? ''}\0${clientId ?? ''}\0${ip ?? ''}\0${tool ?? ''}`;
    const same = this.#unwritten.get(key);
    if (same) {
      same.count = (same.count ?? 1) + 1;
      same.at = at;
      return;
    }
    const entry = decisionEntry(outcome, at, ip);
    this.#unwritten.set(key, entry);
    this.#decisions.add(entry);
  }

  securityEvent(kind: SecurityEventKind, details: SecurityEventDetails, ip?: string): void {
    this.#security.add(securityEntry(kind, details, ip, Date.now()));
  }

  /**
   * Every entry kept (this replica's unwritten ones included), newest first. Entries of
   * several replicas reach the store up to a second apart, so they are sorted by time here.
   */
  async recent(): Promise<ActivityEntry[]> {
    const [decisions, security] = await Promise.all([
      this.#decisions.read(this.maxEntries),
      this.#security.read(this.maxEntries),
    ]);
    const entries: ActivityEntry[] = [];
    for (const record of [...decisions, ...security]) {
      const entry = readEntry(record);
      if (entry) entries.push(entry);
    }
    return entries.sort((a, b) => b.at - a.at);
  }

  /** Stops listening, and writes what is buffered. */
  async close(): Promise<void> {
    this.#removeSink();
    await Promise.all([this.#decisions.close(), this.#security.close()]);
  }
}
