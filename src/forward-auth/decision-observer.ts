/**
 * What the decision point tells the rest of the service about each decision, after the
 * answer is written: metrics count and time it (src/observability/metrics.ts), the audit
 * trail records refusals (src/audit/). Observers run on the hot path of every MCP request:
 * they must be synchronous, cheap, and must not throw (the decision point catches and logs
 * anything they throw, once).
 */
export interface DecisionOutcome {
  /** The HTTP status answered to the proxy (200, 400, 401, 403, 404, 413, 429, 500, 503). */
  status: number;
  /**
   * `allowed`, or why not: the token rejection code (`expired`, `audience`, …), `no_token`,
   * `insufficient_scope`, `no_resource`, `origin`, `untrusted_proxy`, `ambiguous_path`,
   * `ambiguous_header`, `tool_denied`, `operation_unknown`, `bad_request`, `body_too_large`,
   * `session_mismatch`, `session_quota`, `rate_limited`, `store_unavailable`, `error`.
   */
  reason: string;
  /** The resource URL the request was matched to, when one was. */
  resource: string | undefined;
  /** Seconds from the request's arrival to the answer. */
  seconds: number;
  /** Who, when a token was verified. */
  subject?: string | undefined;
  clientId?: string | undefined;
  /** The client address (computed on demand: only refusals need it). */
  clientIp: () => string | undefined;
  /** For `tool_denied`: the tool, and a SHA-256 of its arguments (never the arguments). */
  tool?: string | undefined;
  argumentsHash?: string | undefined;
}

export interface DecisionObserver {
  decided(outcome: DecisionOutcome): void;
}
