/**
 * `/verify`: the decision Traefik's forwardAuth (or Caddy `forward_auth`, nginx
 * `auth_request`) asks for on every request to an MCP server.
 *
 * A plain `node:http` handler in front of the Express application: this path runs for every
 * MCP request, and Express's per-request cost would dominate it (docs/performance.md: an
 * Express route with jose did 0.13x a bare server). With the verified-token cache a decision
 * is a hash, two map reads and a few header writes; `npm run bench` measures it.
 *
 * This module is the adapter only: it hands the request to {@link decide} (decide.ts, what is
 * decided and in which order), writes the decision (challenges.ts for refusals,
 * identity-headers.ts for the 2xx), counts refusals against the client's address
 * (`limits.verifyFailures`) and tells the observers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/schema.js';
import { ClientGone, hasBody, readBody } from '../http/read-body.js';
import type { TrustFunction } from '../http/trusted-proxies.js';
import { answerFor } from './challenges.js';
import {
  decide,
  type Decision,
  type DecisionDependencies,
  type Failed,
  type VerifyRequest,
} from './decide.js';
import type { DecisionObserver, DecisionOutcome } from './decision-observer.js';
import { allowedAnswerHeaders } from './identity-headers.js';

export const VERIFY_PATH = '/verify';

export interface DecisionPointDependencies extends DecisionDependencies {
  /** `verify.maxBodySize`: the most of a forwarded body read for the tool rules. */
  config: Pick<GatewayConfig, 'verify'>;
  /** Told of every decision after it is answered (metrics, audit). */
  observers?: DecisionObserver[];
  /** Refusals per client IP (`limits.verifyFailures`, src/limits/rate-limits.ts). */
  failureLimiter?: {
    readonly active: boolean;
    isBlocked(ip: string): number;
    recordFailure(ip: string): void;
  };
}

/** Refusals that are part of normal use and do not count towards `limits.verifyFailures`. */
const NOT_FAILURES = new Set([
  'no_token',
  'insufficient_scope',
  'rate_limited',
  'store_unavailable',
  'session_quota',
  // The MCP server's definitions changed: the client did nothing wrong.
  'definition_held',
]);

/** The subrequest as {@link decide} reads it; the body is read from the socket only if asked. */
class IncomingVerifyRequest implements VerifyRequest {
  constructor(
    private readonly req: IncomingMessage,
    private readonly maxBodySize: number,
  ) {}

  get peerAddress(): string | undefined {
    return this.req.socket.remoteAddress;
  }

  get headers(): IncomingMessage['headers'] {
    return this.req.headers;
  }

  body(): Promise<Buffer> | undefined {
    return hasBody(this.req) ? readBody(this.req, this.maxBodySize) : undefined;
  }
}

export class DecisionPoint {
  /** What {@link decide} is given: the options, with the proxy trust remembered per peer. */
  private readonly deps: DecisionDependencies;
  private observerFailed = false;

  constructor(private readonly options: DecisionPointDependencies) {
    this.deps = { ...options, trust: rememberedTrust(options.trust) };
  }

  /**
   * The `node:http` request listener for `/verify`. It never throws. A decision on a cached
   * token runs synchronously to the end (no promise per request); only a cache miss, a session
   * to bind, a body to read or a backend JWT to sign goes asynchronous.
   */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    let decision: Decision | Promise<Decision>;
    try {
      decision = decide(
        new IncomingVerifyRequest(req, this.options.config.verify.maxBodySize),
        this.deps,
      );
    } catch (error) {
      // decide() returns its failures; this is for one in reading the subrequest itself.
      const peer = req.socket.remoteAddress;
      decision = {
        kind: 'failed',
        error,
        resource: undefined,
        token: undefined,
        clientIp: () => peer,
      };
    }
    if (decision instanceof Promise) {
      void decision.then((decided) => this.answer(res, decided, started));
    } else {
      this.answer(res, decision, started);
    }
  };

  /** Writes the decision, counts a refusal against the client, tells the observers. */
  private answer(res: ServerResponse, decision: Decision, started: number): void {
    if (decision.kind === 'failed') return this.fail(res, decision, started);
    try {
      if (decision.kind === 'allow') {
        const { token, resource, authorization } = decision;
        res.writeHead(200, allowedAnswerHeaders(token, resource, authorization));
        res.end();
        this.observe(decision, 200, 'allowed', started);
        return;
      }
      const answer = answerFor(decision.denial);
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
      const limiter = this.options.failureLimiter;
      if (limiter && !NOT_FAILURES.has(decision.reason)) {
        limiter.recordFailure(decision.clientIp() ?? '');
      }
      this.observe(decision, answer.status, decision.reason, started);
    } catch (error) {
      const { resource, token, clientIp } = decision;
      this.fail(res, { kind: 'failed', error, resource, token, clientIp }, started);
    }
  }

  /** 500, or nothing for a client that hung up mid-body. */
  private fail(res: ServerResponse, failed: Failed, started: number): void {
    const { logger } = this.options;
    if (failed.error instanceof ClientGone) {
      logger.debug('verify: the client hung up before its body was complete');
      res.destroy();
      return;
    }
    logger.error('verify failed', { error: failed.error });
    if (!res.headersSent) {
      res.writeHead(500, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end('{"error":"server_error"}');
    } else {
      res.destroy();
    }
    this.observe(failed, 500, 'error', started);
  }

  /** Tells the observers; an observer that throws is logged (once), never fatal to the answer. */
  private observe(decision: Decision, status: number, reason: string, started: number): void {
    const observers = this.options.observers;
    if (!observers || observers.length === 0) return;
    const outcome: DecisionOutcome = {
      status,
      reason,
      resource: decision.resource,
      seconds: (performance.now() - started) / 1000,
      subject: decision.token?.sub,
      clientId: decision.token?.clientId,
      clientIp: decision.clientIp,
      tool: decision.kind === 'deny' ? decision.tool : undefined,
      argumentsHash: decision.kind === 'deny' ? decision.argumentsHash : undefined,
    };
    for (const observer of observers) {
      try {
        observer.decided(outcome);
      } catch (error) {
        if (!this.observerFailed) {
          this.observerFailed = true;
          this.options.logger.error('a decision observer failed', { error });
        }
      }
    }
  }
}

/** `trust`, remembered per peer address (proxies are few; parsing one is not free). */
function rememberedTrust(trust: TrustFunction): TrustFunction {
  const trustedPeers = new Map<string, boolean>();
  return (address, hop) => {
    let trusted = trustedPeers.get(address);
    if (trusted === undefined) {
      trusted = trust(address, hop);
      if (trustedPeers.size < 1024) trustedPeers.set(address, trusted);
    }
    return trusted;
  };
}
