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

export function securityEvent(
  logger: Logger,
  kind: SecurityEventKind,
  details: SecurityEventDetails,
): void {
  logger.warn(kind, { security_event: kind, ...details, ip: details.ip ?? currentClientIp() });
}
