/**
 * What one entry of the activity feed holds, made from a `/verify` decision or a security
 * event, and read back from the store.
 *
 * Only named fields are kept, never the whole object they come from: no token, no tool
 * arguments (the decision hands over only their hash, which is not kept either), no request
 * body, no header. Free text (a security event's `reason` can be an error message) is
 * scrubbed of anything shaped like a credential, as log lines are (`scrubString`), and every
 * string is clipped, so that one request cannot make an entry large.
 *
 * No email either: a decision knows the token's subject, and the page looks the account up
 * (src/admin/activity-feed.ts); the feed does not copy personal data it does not need.
 */
import type { DecisionOutcome } from '../forward-auth/decision-observer.js';
import { scrubString } from '../logging/logger.js';
import type { SecurityEventDetails, SecurityEventKind } from '../events/security-events.js';
import type { JsonObject } from '../store/store.js';

/** A decision's result, or `security` for a security event. */
export const ACTIVITY_RESULTS = ['allowed', 'refused', 'error', 'security'] as const;
export type ActivityResult = (typeof ACTIVITY_RESULTS)[number];

/** A type, not an interface: it must be assignable to the store's `JsonObject`. */
export type ActivityEntry = {
  /** When, in milliseconds since the epoch. */
  at: number;
  result: ActivityResult;
  /** A security event's kind (`invalid_token`, `csrf_failed`, …). */
  kind?: string | undefined;
  /** A decision's HTTP status. */
  status?: number | undefined;
  /** A decision's reason (`allowed`, `expired`, `tool_denied`, …) or the event's reason. */
  reason?: string | undefined;
  resource?: string | undefined;
  subject?: string | undefined;
  clientId?: string | undefined;
  /** The tool a refused call named (its name only). */
  tool?: string | undefined;
  ip?: string | undefined;
  /**
   * Identical decisions within one write of the feed (about a second) are one entry: how many
   * it stands for (absent for one), `at` being the newest of them.
   */
  count?: number | undefined;
};

/** Longest identifier kept (a CIMD client id is a URL); longer ones are cut. */
const MAX_ID = 2000;
/** Longest free text kept (reasons, tool names). */
const MAX_TEXT = 300;

function clip(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  return value.length > max ? value.slice(0, max) : value;
}

const text = (value: unknown) => {
  const clipped = clip(value, MAX_TEXT);
  return clipped === undefined ? undefined : scrubString(clipped);
};

/** `allowed` for a 2xx answer, `error` when the service failed to decide, else `refused`. */
export function resultOf(status: number): ActivityResult {
  if (status < 300) return 'allowed';
  return status >= 500 ? 'error' : 'refused';
}

/** The entry for one decision. Runs on the hot path: one object, no copying beyond it. */
export function decisionEntry(
  outcome: DecisionOutcome,
  at: number,
  ip = outcome.clientIp(),
): ActivityEntry {
  return {
    at,
    result: resultOf(outcome.status),
    status: outcome.status,
    reason: outcome.reason,
    resource: outcome.resource,
    subject: outcome.subject,
    clientId: outcome.clientId,
    tool: clip(outcome.tool, MAX_TEXT),
    ip,
  };
}

/** The entry for one security event; a rate limit with no reason gives its limit as one. */
export function securityEntry(
  kind: SecurityEventKind,
  details: SecurityEventDetails,
  ip: string | undefined,
  at: number,
): ActivityEntry {
  const limit = clip(details.limit, MAX_TEXT);
  return {
    at,
    result: 'security',
    kind,
    reason: text(details.reason) ?? (limit === undefined ? undefined : `limit ${limit}`),
    resource: clip(details.resource, MAX_ID),
    subject: clip(details.subject, MAX_ID),
    clientId: clip(details.clientId, MAX_ID),
    tool: clip(details.tool, MAX_TEXT),
    ip: clip(ip, MAX_TEXT),
  };
}

/**
 * An entry read from the store, or `undefined` for a record that is not one. The store is
 * shared (other versions, other software on the same Redis): nothing is taken on trust.
 */
export function readEntry(record: JsonObject): ActivityEntry | undefined {
  const { at, result, status, count } = record;
  if (typeof at !== 'number' || !Number.isFinite(at)) return undefined;
  if (!ACTIVITY_RESULTS.includes(result as ActivityResult)) return undefined;
  return {
    at,
    result: result as ActivityResult,
    kind: clip(record.kind, MAX_TEXT),
    status: typeof status === 'number' && Number.isInteger(status) ? status : undefined,
    reason: clip(record.reason, MAX_TEXT),
    resource: clip(record.resource, MAX_ID),
    subject: clip(record.subject, MAX_ID),
    clientId: clip(record.clientId, MAX_ID),
    tool: clip(record.tool, MAX_TEXT),
    ip: clip(record.ip, MAX_TEXT),
    count:
      typeof count === 'number' && Number.isSafeInteger(count) && count > 1 ? count : undefined,
  };
}
