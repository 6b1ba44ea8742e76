/**
 * Prometheus metrics (prom-client), one registry per service instance. docs/operations.md
 * lists every metric with its labels and a starter set of alert rules; keep them in step.
 *
 * Label values are bounded by construction: `resource` is a configured resource URL (or
 * empty when none matched), `reason` one of the decision point's fixed reasons, `provider` a
 * configured login id. Nothing a client sends becomes a label value (a scraper's memory
 * must not grow with an attacker's creativity).
 *
 * `/verify` is on the hot path of every MCP request: its counters are bound children kept in
 * a map (no label hashing per request) and its histogram has a dozen buckets.
 */
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type Counter as CounterType,
} from 'prom-client';
import type { DecisionObserver, DecisionOutcome } from '../forward-auth/decision-observer.js';

type DecisionChild = ReturnType<CounterType<'result' | 'reason' | 'resource'>['labels']>;

/** One pinned MCP server as the tool-pinning gauges show it. */
export interface ToolPinsGauge {
  resource: string;
  mode: string;
  /** Definition changes waiting for an administrator. */
  held: number;
  failing: boolean;
  /** Seconds since the last successful listing; undefined before the first. */
  listedAgeSeconds: number | undefined;
}

export type LoginResult = 'success' | 'denied' | 'failed';
export type RegistrationKind = 'dcr' | 'cimd';

export class GatewayMetrics implements DecisionObserver {
  readonly registry = new Registry();

  private readonly decisions = new Counter({
    name: 'mcp_gateway_verify_decisions_total',
    help: 'forwardAuth decisions by result (allow/deny), reason and resource',
    labelNames: ['result', 'reason', 'resource'] as const,
    registers: [this.registry],
  });
  private readonly verifySeconds = new Histogram({
    name: 'mcp_gateway_verify_duration_seconds',
    help: 'time from the arrival of a /verify request to its answer',
    labelNames: ['result'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  private readonly tokens = new Counter({
    name: 'mcp_gateway_tokens_issued_total',
    help: 'tokens issued at the token endpoint, by grant type (authorization_code, refresh_token)',
    labelNames: ['grant_type'] as const,
    registers: [this.registry],
  });
  private readonly tokenErrors = new Counter({
    name: 'mcp_gateway_token_errors_total',
    help: 'token endpoint refusals by OAuth error code',
    labelNames: ['error'] as const,
    registers: [this.registry],
  });
  private readonly registrations = new Counter({
    name: 'mcp_gateway_client_registrations_total',
    help: 'client registrations by kind (dcr, cimd) and result (accepted, refused)',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });
  private readonly logins = new Counter({
    name: 'mcp_gateway_logins_total',
    help: 'login outcomes by provider: success, denied (access rules), failed (provider)',
    labelNames: ['provider', 'result'] as const,
    registers: [this.registry],
  });
  private readonly withdrawals = new Counter({
    name: 'mcp_gateway_access_withdrawn_total',
    help: 'refreshes refused because the user lost access (grant revoked), by provider',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  private readonly storeSeconds = new Histogram({
    name: 'mcp_gateway_store_duration_seconds',
    help: 'store operation latency by operation',
    labelNames: ['operation'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly storeErrors = new Counter({
    name: 'mcp_gateway_store_errors_total',
    help: 'store operations that failed, by operation',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });
  private readonly rateLimited = new Counter({
    name: 'mcp_gateway_rate_limited_total',
    help: "requests refused with 429 by the service's own limits, by limit",
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  /** Read at scrape time from {@link GatewayMetrics.readRevocationsAge}. */
  private revocationsAgeSource: (() => number) | undefined;
  private readonly revocationsAge = new Gauge({
    name: 'mcp_gateway_revocations_age_seconds',
    help: 'seconds since this replica last read the revocation list from the store',
    registers: [this.registry],
    collect: () => {
      if (this.revocationsAgeSource) this.revocationsAge.set(this.revocationsAgeSource());
    },
  });
  private auditDroppedSource: (() => number) | undefined;
  private readonly auditDropped = new Gauge({
    name: 'mcp_gateway_audit_dropped_records',
    help: 'audit records dropped because the audit queue was full (should stay 0)',
    registers: [this.registry],
    collect: () => {
      if (this.auditDroppedSource) this.auditDropped.set(this.auditDroppedSource());
    },
  });

  private toolPinsSource: (() => readonly ToolPinsGauge[]) | undefined;
  private readonly toolHeld = new Gauge({
    name: 'mcp_gateway_tool_definitions_held',
    help: 'tool definitions of an MCP server changed or flagged and waiting for an administrator',
    labelNames: ['resource', 'mode'] as const,
    registers: [this.registry],
    // Sets all three tool-pinning gauges at once: registered first, it is collected before the
    // two below are read.
    collect: () => this.collectToolPins(),
  });
  private readonly toolListingFailing = new Gauge({
    name: 'mcp_gateway_tool_listing_failing',
    help: '1 when the last listing of an MCP server’s tool definitions failed',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });
  private readonly toolListingAge = new Gauge({
    name: 'mcp_gateway_tool_listing_age_seconds',
    help: 'seconds since an MCP server’s tool definitions were last listed successfully',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });

  /** Bound children: result → reason → resource (no label hashing per request). */
  private readonly decisionChildren = {
    allow: new Map<string, Map<string, DecisionChild>>(),
    deny: new Map<string, Map<string, DecisionChild>>(),
  };
  private readonly verifySecondsByResult = {
    allow: this.verifySeconds.labels('allow'),
    deny: this.verifySeconds.labels('deny'),
  };

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: 'mcp_gateway_' });
    }
  }

  decided(outcome: DecisionOutcome): void {
    const result = outcome.status < 300 ? 'allow' : 'deny';
    const resource = outcome.resource ?? '';
    const byReason = this.decisionChildren[result];
    let byResource = byReason.get(outcome.reason);
    if (!byResource) byReason.set(outcome.reason, (byResource = new Map()));
    let child = byResource.get(resource);
    if (!child)
      byResource.set(resource, (child = this.decisions.labels(result, outcome.reason, resource)));
    child.inc();
    this.verifySecondsByResult[result].observe(outcome.seconds);
  }

  /** The revocation list's age, read at every scrape. */
  readRevocationsAge(source: () => number): void {
    this.revocationsAgeSource = source;
  }

  /** The audit log's count of dropped records, read at every scrape. */
  readAuditDropped(source: () => number): void {
    this.auditDroppedSource = source;
  }

  /** Tool definition pinning's state per server, read at every scrape. */
  readToolPins(source: () => readonly ToolPinsGauge[]): void {
    this.toolPinsSource = source;
  }

  private collectToolPins(): void {
    if (!this.toolPinsSource) return;
    this.toolHeld.reset();
    this.toolListingFailing.reset();
    this.toolListingAge.reset();
    for (const server of this.toolPinsSource()) {
      this.toolHeld.labels(server.resource, server.mode).set(server.held);
      this.toolListingFailing.labels(server.resource).set(server.failing ? 1 : 0);
      if (server.listedAgeSeconds !== undefined) {
        this.toolListingAge.labels(server.resource).set(server.listedAgeSeconds);
      }
    }
  }

  tokenIssued(grantType: string): void {
    this.tokens
      .labels(grantType === 'refresh_token' ? 'refresh_token' : 'authorization_code')
      .inc();
  }

  tokenError(error: string): void {
    this.tokenErrors.labels(/^[a-z_]{1,40}$/.test(error) ? error : 'other').inc();
  }

  registration(kind: RegistrationKind, result: 'accepted' | 'refused'): void {
    this.registrations.labels(kind, result).inc();
  }

  login(provider: string, result: LoginResult): void {
    this.logins.labels(provider, result).inc();
  }

  accessWithdrawn(provider: string): void {
    this.withdrawals.labels(provider).inc();
  }

  limited(limit: string): void {
    this.rateLimited.labels(limit).inc();
  }

  storeOperation(operation: string, seconds: number, failed: boolean): void {
    this.storeSeconds.labels(operation).observe(seconds);
    if (failed) this.storeErrors.labels(operation).inc();
  }

  /** The text exposition (Content-Type: `this.registry.contentType`). */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
