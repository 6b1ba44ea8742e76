/**
 * Security events: what an operator (or CrowdSec, reading the log) should act on. Modules that
 * raise them are given a `SecurityEvents` emitter; where each event goes is decided once, in
 * the composition, by the sinks the emitter is built with: the log (one structured line per
 * event, `security_event: <kind>`, the client IP where known, never a token: the logger's
 * redaction applies) and, when enabled, the admin console's activity feed.
 */
import { currentClientIp, type Logger } from '../logging/logger.js';

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
  | 'rate_limited'
  /** An MCP server's tool definitions changed since approval (`resource`, counts, keys). */
  | 'tool_definition_changed'
  /** The scanner flagged a tool definition (`resource`, `definition`, `rules`). */
  | 'tool_definition_flagged'
  /** A tool named like another server's tool behind the gateway (`resource`, `definition`). */
  | 'tool_shadowing';

export interface SecurityEventDetails {
  ip?: string | undefined;
  clientId?: string | undefined;
  subject?: string | undefined;
  provider?: string | undefined;
  reason?: string | undefined;
  [key: string]: unknown;
}

/** What raises security events sees: one method, whatever the sinks are. */
export interface SecurityEvents {
  emit(kind: SecurityEventKind, details: SecurityEventDetails): void;
}

/**
 * Told of every security event, in the raising request: it must be synchronous and cheap.
 * `ip` is the event's own or, failing that, the current request's client address.
 */
export type SecurityEventSink = (
  kind: SecurityEventKind,
  details: SecurityEventDetails,
  ip: string | undefined,
) => void;

/** Where sinks are added: what a consumer of the events (the activity feed) is given. */
export interface SecurityEventSinks {
  /** Tells `sink` of every later event; returns its removal. */
  addSink(sink: SecurityEventSink): () => void;
}

/**
 * The emitter the composition builds once per service and hands to every module that raises
 * events. Sinks are told in the order they were added; one that throws is skipped, so a
 * failing sink never breaks the request that raised the event.
 *
 * Sinks rather than a winston transport on the logger: a transport would see every log line
 * (and have to pick the security events out of them), would see none with `log.level:
 * error`, and would get them only after formatting; a sink is told of exactly these events,
 * whatever the level, with their fields as the caller gave them. Each sink picks the fields
 * it keeps (the activity feed: never a token, see src/activity/activity-entries.ts).
 */
export class SecurityEventEmitter implements SecurityEvents, SecurityEventSinks {
  private sinks: SecurityEventSink[];

  constructor(sinks: SecurityEventSink[] = []) {
    this.sinks = [...sinks];
  }

  addSink(sink: SecurityEventSink): () => void {
    this.sinks = [...this.sinks, sink];
    return () => {
      this.sinks = this.sinks.filter((other) => other !== sink);
    };
  }

  emit(kind: SecurityEventKind, details: SecurityEventDetails): void {
    const ip = details.ip ?? currentClientIp();
    for (const sink of this.sinks) {
      try {
        sink(kind, details, ip);
      } catch {
        // A failing sink must not break the request that raised the event.
      }
    }
  }
}

/**
 * The log sink: one warning line per event, its message the kind. CrowdSec's parsers read
 * `security_event` and `ip` from these lines (crowdsec/).
 */
export function logSink(logger: Logger): SecurityEventSink {
  return (kind, details, ip) => logger.warn(kind, { security_event: kind, ...details, ip });
}

/** An emitter that only logs: the default where no composition provides one (tests, CLI). */
export function loggedSecurityEvents(logger: Logger): SecurityEventEmitter {
  return new SecurityEventEmitter([logSink(logger)]);
}
