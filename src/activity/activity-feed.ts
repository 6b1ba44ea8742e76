/**
 * The recent activity the admin console shows (`/admin/activity`): every `/verify` decision,
 * allowed or not, and every security event, shared by all replicas through the store.
 *
 * Two lists, each keeping the newest `activity.maxEntries` entries: decisions come at the rate
 * of MCP traffic, and in one list they would push the rarer security events out within
 * seconds. The page merges both, newest first.
 *
 * Both are fed synchronously by their sources (the decision point's observers, the security
 * event sink of the gateway's logger) and written to the store in batches (recent-list.ts):
 * the `/verify` hot path gains one small object and an array push per decision.
 */
import type { DecisionObserver, DecisionOutcome } from '../forward-auth/decision-observer.js';
import type { Logger } from '../logging/logger.js';
import {
  addSecurityEventSink,
  type SecurityEventDetails,
  type SecurityEventKind,
} from '../logging/security-events.js';
import type { Store } from '../store/store.js';
import { decisionEntry, readEntry, securityEntry, type ActivityEntry } from './activity-entries.js';
import { RecentList } from './recent-list.js';

/** The store keys of the two lists. */
export const DECISIONS_KEY = 'activity:decisions';
export const SECURITY_EVENTS_KEY = 'activity:security';

export interface ActivityFeedOptions {
  store: Store;
  /** Entries kept per list (`activity.maxEntries`). */
  maxEntries: number;
  /** The gateway's logger: its security events are fed in, and write failures logged. */
  logger: Logger;
}

export class ActivityFeed implements DecisionObserver {
  readonly maxEntries: number;
  readonly #decisions: RecentList;
  readonly #security: RecentList;
  readonly #removeSink: () => void;

  constructor(options: ActivityFeedOptions) {
    const { store, maxEntries, logger } = options;
    this.maxEntries = maxEntries;
    this.#decisions = new RecentList({ store, key: DECISIONS_KEY, maxEntries, logger });
    this.#security = new RecentList({ store, key: SECURITY_EVENTS_KEY, maxEntries, logger });
    this.#removeSink = addSecurityEventSink(logger, (kind, details, ip) =>
      this.securityEvent(kind, details, ip),
    );
  }

  /** The decision point's observer: called after every answer; O(1), never throws. */
  decided(outcome: DecisionOutcome): void {
    this.#decisions.add(decisionEntry(outcome, Date.now()));
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
