/**
 * Security events: one structured log line per event an operator (or CrowdSec, reading the
 * log) should act on. Every line has `security_event: <kind>`, the client IP where known and
 * never a token (the logger's redaction applies here too).
 */
import { currentClientIp, type Logger } from './logger.js';

export type SecurityEventKind =
  | 'access_denied'
  | 'access_withdrawn'
  | 'login_failed'
  | 'upstream_state_invalid'
  | 'csrf_failed'
  | 'consent_denied'
  | 'registration_refused'
  | 'cimd_refused'
  | 'oauth_error'
  | 'client_registered'
  | 'pkce_failed'
  | 'code_replay'
  | 'refresh_token_reuse'
  | 'untrusted_proxy'
  | 'origin_refused'
  | 'invalid_token'
  | 'header_body_mismatch'
  | 'tool_denied'
  /** A token presented an MCP session bound to another user or client (RS-12). */
  | 'session_mismatch'
  /** A forwarded path a proxy could route differently than it reads (`reason`, `path`). */
  | 'ambiguous_path'
  /** A request header aliasing an identity header (`X_Auth_User_Id`; `header`). */
  | 'ambiguous_header'
  /** A request naming several MCP sessions, or a malformed one (`reason`). */
  | 'ambiguous_session'
  /** A JSON-RPC body refused before it was read: duplicate or case-folded keys, too deep. */
  | 'unreadable_body'
  /** An abuse limit refused a request (`route`, `keyType`: `ip` or `client`, `limit`). */
  | 'rate_limited';

export interface SecurityEventDetails {
  ip?: string | undefined;
  clientId?: string | undefined;
  subject?: string | undefined;
  provider?: string | undefined;
  reason?: string | undefined;
  [key: string]: unknown;
}

/**
 * Told of every security event written through one logger, after it is logged: the admin
 * console's activity feed (src/activity/). `ip` is the one the log line has. It runs inside
 * the caller's request: it must be synchronous and cheap, and what it throws is ignored.
 */
export type SecurityEventSink = (
  kind: SecurityEventKind,
  details: SecurityEventDetails,
  ip: string | undefined,
) => void;

/**
 * The sinks of each logger. Keyed by logger rather than module-wide because each gateway has
 * its own logger, and one process may run several (tests run two replicas side by side): a
 * global sink would mix their events.
 *
 * A sink here, rather than a winston transport on the logger: a transport would see every log
 * line (and have to pick the security events out of them), would see none with
 * `log.level: error`, and would get them only after formatting; a sink is told of exactly
 * these events, whatever the level, with their fields as the caller gave them. The sink
 * picks the fields it keeps (never a token: see src/activity/activity-entries.ts).
 */
const sinks = new WeakMap<Logger, SecurityEventSink[]>();

/** Tells `sink` of every later security event written through `logger`; returns the removal. */
export function addSecurityEventSink(logger: Logger, sink: SecurityEventSink): () => void {
  sinks.set(logger, [...(sinks.get(logger) ?? []), sink]);
  return () => {
    const rest = (sinks.get(logger) ?? []).filter((other) => other !== sink);
    if (rest.length > 0) sinks.set(logger, rest);
    else sinks.delete(logger);
  };
}

export function securityEvent(
  logger: Logger,
  kind: SecurityEventKind,
  details: SecurityEventDetails,
): void {
  const ip = details.ip ?? currentClientIp();
  logger.warn(kind, { security_event: kind, ...details, ip });
  const listening = sinks.get(logger);
  if (listening === undefined) return;
  for (const sink of listening) {
    try {
      sink(kind, details, ip);
    } catch {
      // A failing sink must not break the request that raised the event.
    }
  }
}
