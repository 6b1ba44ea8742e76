/**
 * The decision point's side of the audit trail: `/verify` refusals become `verify_denied`
 * records (who, which client, which resource and tool, from where, and why).
 *
 * Not recorded (metrics count them instead):
 *  - `no_token`: a request without a token is how every MCP client starts discovery (the 401
 *    sends it to the protected resource metadata); recording them would bury the refusals
 *    that matter;
 *  - `rate_limited` (429): the limiter answers instead of deciding; recording every request of
 *    a flood would let an attacker push real records out of the store's bounded chain (and
 *    fill the audit queue) at the rate they can send requests. The refusals that led to the
 *    limit were recorded already, and the limiter caps them per client IP;
 *  - 5xx (`store_unavailable`, `error`): the service failed to decide, it did not refuse; the
 *    error log has them, and the store is often what failed.
 *
 * Tool arguments never appear: the decision point hands over only their SHA-256
 * (`argumentsHash`), and that is all that is recorded.
 */
import type { DecisionObserver, DecisionOutcome } from '../forward-auth/decision-observer.js';
import type { AuditLog } from './audit-log.js';

const NOT_AUDITED = new Set(['no_token', 'rate_limited']);

/** Whether an outcome is a refusal the audit trail records. */
export function isAuditedDenial(outcome: DecisionOutcome): boolean {
  return outcome.status >= 400 && outcome.status < 500 && !NOT_AUDITED.has(outcome.reason);
}

export function auditDecisions(audit: AuditLog): DecisionObserver {
  return {
    decided(outcome: DecisionOutcome): void {
      if (!isAuditedDenial(outcome)) return;
      // append() only queues: this stays cheap on the hot path, and it never rejects.
      void audit.append('verify_denied', {
        reason: outcome.reason,
        status: outcome.status,
        resource: outcome.resource,
        ip: outcome.clientIp(),
        subject: outcome.subject,
        clientId: outcome.clientId,
        tool: outcome.tool,
        argumentsHash: outcome.argumentsHash,
      });
    },
  };
}
