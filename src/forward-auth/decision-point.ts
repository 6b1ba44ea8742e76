/**
 * `/verify`: the decision Traefik's forwardAuth (or Caddy `forward_auth`, nginx
 * `auth_request`) asks for on every request to an MCP server.
 *
 * A plain `node:http` handler in front of the Express application: this path runs for every
 * MCP request, and Express's per-request cost would dominate it (docs/performance.md: an
 * Express route with jose did 0.13x a bare server). With the verified-token cache a decision
 * is a hash, two map reads and a few header writes; `npm run bench` measures it.
 *
 * The order of the checks is deliberate:
 *  1. the subrequest comes from a trusted proxy and describes the original request (400);
 *  2. the URL belongs to a configured resource (403 otherwise: deny by default);
 *  3. a browser `Origin` is allowed for that resource (403 before any token check, TR-01);
 *  4. a Bearer token from the `Authorization` header only (query tokens are ignored, RS-11);
 *     valid, for this resource, not revoked (401 with the RFC 9728 challenge);
 *  5. the resource's baseline scopes (403 `insufficient_scope`);
 *  6. the MCP session, if the request names one, is this token's user's and client's (404 as
 *     for an unknown session otherwise; session-binding.ts);
 *  7. per-tool rules on the MCP operation (403, or 400/413 for a bad body).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/schema.js';
import { StoreFullError } from '../store/store.js';
import { BodyTooLarge, ClientGone, hasBody, readBody } from '../http/read-body.js';
import type { TrustFunction } from '../http/trusted-proxies.js';
import type { Logger } from '../logging/logger.js';
import { securityEvent } from '../logging/security-events.js';
import type { ToolPolicy } from '../policy/tools.js';
import type { BackendTokenSigner } from './backend-token.js';
import type { DecisionObserver, DecisionOutcome } from './decision-observer.js';
import {
  insufficientScope,
  invalidToken,
  JSONRPC_FORBIDDEN,
  JSONRPC_INVALID_REQUEST,
  JSONRPC_SESSION_NOT_FOUND,
  jsonRpcError,
  missingToken,
  protectedResourceMetadataUrl,
  refused,
  type Denial,
} from './challenges.js';
import { identityHeaderAlias, identityHeaders, type Identity } from './identity-headers.js';
import { readOperation } from './mcp-operation.js';
import { readPublicRequest, type PublicRequest } from './public-request.js';
import type { ClaimOutcome, SessionBindings } from './session-binding.js';
import { sessionNamed } from './session-names.js';
import { AMBIGUOUS_CASE, type ResourceMatch, type ResourceMatcher } from './resource-matcher.js';
import { TokenRejected, TokenVerifier, type VerifiedToken } from './token-verifier.js';

export const VERIFY_PATH = '/verify';

export interface DecisionPointDependencies {
  config: GatewayConfig;
  /** The protected MCP servers, live (src/oauth/resources.ts): read once per decision. */
  resources: { readonly matcher: ResourceMatcher };
  trust: TrustFunction;
  verifier: TokenVerifier;
  backendSigner: BackendTokenSigner;
  logger: Logger;
  /** Told of every decision after it is answered (metrics, audit). */
  observers?: DecisionObserver[];
  /** Whether revocations are known well enough to allow a token (store outage policy). */
  revocations?: { usable(): boolean };
  /** MCP sessions bound to their first user and client (`verify.sessionBinding`). */
  sessions?: SessionBindings | undefined;
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
]);

/** 429 for a client IP over `limits.verifyFailures`; the proxy passes it on. */
function tooManyFailures(retryAfter: number): Denial {
  return {
    status: 429,
    headers: {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-store',
      'Retry-After': String(retryAfter),
    },
    body: { error: 'too_many_requests', error_description: 'too many refused requests' },
  };
}

/** 503 while revocations cannot be read; the proxy passes it on to the client. */
const STORE_UNAVAILABLE = {
  status: 503,
  headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Retry-After': '5' },
  body: {
    error: 'temporarily_unavailable',
    error_description: 'the gateway cannot check revocations right now; retry shortly',
  },
} as const;

/** What the observers are told about one decision, filled in as it goes. */
/**
 * One decision as it goes, and then what the observers are told: a single object per
 * request (this is the hot path), finished in place by {@link DecisionPoint.observe}.
 */
class Trace implements DecisionOutcome {
  readonly started = performance.now();
  request: PublicRequest | undefined = undefined;
  resource: string | undefined = undefined;
  token: VerifiedToken | undefined = undefined;
  tool: string | undefined = undefined;
  argumentsHash: string | undefined = undefined;
  status = 0;
  reason = '';
  seconds = 0;

  constructor(readonly req: IncomingMessage) {}

  get subject(): string | undefined {
    return this.token?.sub;
  }

  get clientId(): string | undefined {
    return this.token?.clientId;
  }

  /** Reads the original client's address; set once the proxy is known to be trusted. */
  clientAddress: (() => string) | undefined = undefined;

  /** The original client's address when the proxy is trusted, else the peer's. */
  clientIp(): string | undefined {
    return this.clientAddress?.() ?? this.req.socket.remoteAddress;
  }
}

/** What the steps of one decision share. */
interface DecisionContext {
  req: IncomingMessage;
  res: ServerResponse;
  request: PublicRequest;
  match: ResourceMatch;
  prmUrl: string;
  trace: Trace;
}

/** A refusal from the per-tool checks, with what the observers are told. */
interface ToolDenial {
  denial: Denial;
  reason: string;
  tool?: string;
  argumentsHash?: string;
}

/**
 * 429 for a new MCP session over `verify.sessionBinding.maxPerUser`: bindings are never
 * evicted to make room (they deny access to everyone else), so new ones are refused instead.
 */
const TOO_MANY_SESSIONS: Denial = withRetryAfter(
  jsonRpcError(429, JSONRPC_INVALID_REQUEST, 'Too many MCP sessions for this user; retry later'),
  60,
);

function withRetryAfter(denial: Denial, seconds: number): Denial {
  return { ...denial, headers: { ...denial.headers, 'Retry-After': String(seconds) } };
}

/** 404 for a session bound to someone else: the transport's answer for an unknown session. */
const SESSION_NOT_FOUND = jsonRpcError(404, JSONRPC_SESSION_NOT_FOUND, 'Session not found');

/** `Bearer <token>` from the Authorization header; `null` for another scheme or none. */
function bearerToken(req: IncomingMessage): string | null | '' {
  const header = req.headers.authorization;
  if (!header) return null;
  const match = /^Bearer(?:\s+(\S*))?\s*$/i.exec(header);
  if (!match) return null;
  return match[1] ?? '';
}

export class DecisionPoint {
  /** `deps.trust`, remembered per peer address (proxies are few; parsing one is not free). */
  private readonly trust: TrustFunction;

  constructor(private readonly deps: DecisionPointDependencies) {
    const trustedPeers = new Map<string, boolean>();
    this.trust = (address, hop) => {
      let trusted = trustedPeers.get(address);
      if (trusted === undefined) {
        trusted = deps.trust(address, hop);
        if (trustedPeers.size < 1024) trustedPeers.set(address, trusted);
      }
      return trusted;
    };
  }

  /**
   * The `node:http` request listener for `/verify`. It never throws. A decision on a cached
   * token runs synchronously to the end (no promise per request); only a cache miss, a body to
   * read or a backend JWT to sign goes asynchronous.
   */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const trace = new Trace(req);
    try {
      this.decide(req, res, trace)?.catch((error: unknown) => this.fail(res, error, trace));
    } catch (error) {
      this.fail(res, error, trace);
    }
  };

  private fail(res: ServerResponse, error: unknown, trace: Trace): void {
    if (error instanceof ClientGone) {
      this.deps.logger.debug('verify: the client hung up before its body was complete');
      res.destroy();
      return;
    }
    this.deps.logger.error('verify failed', { error });
    if (!res.headersSent) {
      res.writeHead(500, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end('{"error":"server_error"}');
    } else {
      res.destroy();
    }
    this.observe(trace, 500, 'error');
  }

  /** Tells the observers; an observer that throws is logged, never fatal to the answer. */
  private observe(trace: Trace, status: number, reason: string): void {
    const observers = this.deps.observers;
    if (!observers || observers.length === 0) return;
    trace.status = status;
    trace.reason = reason;
    trace.seconds = (performance.now() - trace.started) / 1000;
    for (const observer of observers) {
      try {
        observer.decided(trace);
      } catch (error) {
        if (!this.observerFailed) {
          this.observerFailed = true;
          this.deps.logger.error('a decision observer failed', { error });
        }
      }
    }
  }

  private observerFailed = false;

  private decide(req: IncomingMessage, res: ServerResponse, trace: Trace): Promise<void> | void {
    const { logger } = this.deps;
    const parsed = readPublicRequest(req, this.trust);
    if (!parsed.ok && parsed.reason !== 'ambiguous_path') {
      securityEvent(logger, 'untrusted_proxy', {
        ip: req.socket.remoteAddress,
        reason: parsed.reason,
      });
      return this.deny(
        trace,
        res,
        refused(400, 'invalid_request', 'not a forwardAuth request from a trusted proxy'),
        'untrusted_proxy',
      );
    }
    // From here on the subrequest comes from a trusted proxy: refusals count against the
    // original client's address, never the proxy's (which would block everyone behind it).
    trace.clientAddress = parsed.ok ? parsed.request.clientIp : parsed.clientIp;
    const limiter = this.deps.failureLimiter;
    if (limiter?.active) {
      const retryAfter = limiter.isBlocked(trace.clientIp() ?? '');
      if (retryAfter > 0) return this.deny(trace, res, tooManyFailures(retryAfter), 'rate_limited');
    }
    if (!parsed.ok) {
      return this.refuseAmbiguousPath(trace, res, parsed.ambiguity, parsed.rawPath);
    }
    const alias = identityHeaderAlias(req.headers);
    if (alias !== undefined) {
      securityEvent(logger, 'ambiguous_header', { ip: trace.clientIp(), header: alias });
      return this.deny(
        trace,
        res,
        refused(400, 'invalid_request', `header ${alias} is another name for an identity header`),
        'ambiguous_header',
      );
    }
    const request = parsed.request;
    trace.request = request;
    const match = this.deps.resources.matcher.match(request.origin, request.path);
    if (match === AMBIGUOUS_CASE) return this.refuseAmbiguousPath(trace, res, match, request.path);
    if (!match) {
      logger.debug('no resource', { origin: request.origin, path: request.path });
      return this.deny(
        trace,
        res,
        refused(403, 'access_denied', 'no protected MCP server at this URL'),
        'no_resource',
      );
    }
    const { resource } = match;
    trace.resource = resource.url;
    const prmUrl = protectedResourceMetadataUrl(request.origin, match.resourcePath);

    const origin = req.headers.origin;
    if (origin !== undefined && !match.allowedOrigins.has(origin.toLowerCase())) {
      securityEvent(logger, 'origin_refused', {
        ip: request.clientIp(),
        resource: resource.url,
        origin,
      });
      return this.deny(
        trace,
        res,
        jsonRpcError(403, JSONRPC_FORBIDDEN, 'Forbidden: Origin not allowed'),
        'origin',
      );
    }
    // A CORS preflight is not let through without a token: it would reach the MCP server
    // unauthenticated, with whatever body it carries. The proxy answers preflights itself
    // (docs/proxies.md: Traefik's headers middleware, Caddy and nginx in their routes).

    const token = bearerToken(req);
    if (token === null) {
      return this.deny(trace, res, missingToken(prmUrl, resource.scopes), 'no_token');
    }
    if (this.deps.revocations && !this.deps.revocations.usable()) {
      // The store cannot be read: a token revoked meanwhile would pass (verify.storeOutage).
      return this.deny(trace, res, STORE_UNAVAILABLE, 'store_unavailable');
    }
    const context: DecisionContext = { req, res, request, match, prmUrl, trace };
    if (token === '') {
      return this.rejectToken(
        context,
        new TokenRejected('the Bearer credentials are empty', 'malformed'),
      );
    }
    const key = TokenVerifier.cacheKey(token);
    const cached = this.deps.verifier.cached(key);
    if (cached) return this.withToken(context, cached);
    return this.deps.verifier.verify(token, key).then(
      (verified) => this.withToken(context, verified),
      (error: unknown) => {
        if (!(error instanceof TokenRejected)) throw error;
        return this.rejectToken(context, error);
      },
    );
  }

  /** The checks after the token is known to be ours and intact. */
  private withToken(context: DecisionContext, verified: VerifiedToken): Promise<void> | void {
    const { req, res, request, match, prmUrl, trace } = context;
    const { resource } = match;
    trace.token = verified;
    try {
      this.deps.verifier.check(verified, resource.url);
    } catch (error) {
      if (!(error instanceof TokenRejected)) throw error;
      return this.rejectToken(context, error);
    }

    const missingBaseline = resource.scopes.filter((scope) => !verified.scopes.includes(scope));
    if (missingBaseline.length > 0) {
      return this.deny(
        trace,
        res,
        insufficientScope(
          prmUrl,
          union(verified.scopes, resource.scopes),
          `requires ${resource.scopes.join(' ')}`,
        ),
        'insufficient_scope',
      );
    }

    const sessions = this.deps.sessions;
    if (!sessions) return this.withSession(context, verified);
    const header = req.headers['mcp-session-id'];
    const named = sessionNamed(Array.isArray(header) ? header.join(', ') : header, request.search);
    if (named.kind === 'none') return this.withSession(context, verified);
    if (named.kind === 'refused') {
      securityEvent(this.deps.logger, 'ambiguous_session', {
        ip: request.clientIp(),
        resource: resource.url,
        subject: verified.sub,
        clientId: verified.clientId,
        reason: named.reason,
      });
      const description =
        named.reason === 'several_sessions'
          ? 'the request names more than one MCP session'
          : 'malformed MCP session id';
      return this.deny(trace, res, refused(400, 'invalid_request', description), 'bad_request');
    }
    const owner = { subject: verified.sub, clientId: verified.clientId };
    const claimed = sessions.claim(resource.url, named.id, owner);
    if (typeof claimed === 'string') return this.afterClaim(context, verified, claimed);
    return claimed.then(
      (outcome) => this.afterClaim(context, verified, outcome),
      (error: unknown) => {
        // A full store is reported once by the store itself; anything else, here.
        if (!(error instanceof StoreFullError)) {
          this.deps.logger.warn('cannot read MCP session bindings', { error });
        }
        this.deny(trace, res, STORE_UNAVAILABLE, 'store_unavailable');
      },
    );
  }

  private afterClaim(
    context: DecisionContext,
    verified: VerifiedToken,
    outcome: ClaimOutcome,
  ): Promise<void> | void {
    if (outcome === 'owner') return this.withSession(context, verified);
    if (outcome === 'other') return this.refuseSession(context, verified);
    securityEvent(this.deps.logger, 'rate_limited', {
      ip: context.request.clientIp(),
      route: 'session',
      keyType: 'user',
      resource: context.match.resource.url,
      subject: verified.sub,
      clientId: verified.clientId,
    });
    return this.deny(context.trace, context.res, TOO_MANY_SESSIONS, 'session_quota');
  }

  /** The checks after the session (if any) is known to be this token's. */
  private withSession(context: DecisionContext, verified: VerifiedToken): Promise<void> | void {
    const { req, res, request, match, prmUrl, trace } = context;
    const policy = match.toolPolicy;
    if (policy?.hasRules) {
      return this.checkTools(req, request, match, policy, verified, prmUrl).then((refusal) => {
        if (!refusal) return this.allowToken(trace, res, verified, match);
        trace.tool = refusal.tool;
        trace.argumentsHash = refusal.argumentsHash;
        return this.deny(trace, res, refusal.denial, refusal.reason);
      });
    }
    return this.allowToken(trace, res, verified, match);
  }

  /**
   * A forwarded path a proxy could route to another MCP server than the one it names to a
   * reader like this one (routed-path.ts): 400, before any token is looked at.
   */
  private refuseAmbiguousPath(
    trace: Trace,
    res: ServerResponse,
    reason: string,
    path: string,
  ): void {
    securityEvent(this.deps.logger, 'ambiguous_path', { ip: trace.clientIp(), reason, path });
    this.deny(
      trace,
      res,
      refused(400, 'invalid_request', `ambiguous request path (${reason})`),
      'ambiguous_path',
    );
  }

  /** Another user's (or client's) session: 404, as for a session that does not exist. */
  private refuseSession(context: DecisionContext, verified: VerifiedToken): void {
    securityEvent(this.deps.logger, 'session_mismatch', {
      ip: context.request.clientIp(),
      resource: context.match.resource.url,
      subject: verified.sub,
      clientId: verified.clientId,
    });
    this.deny(context.trace, context.res, SESSION_NOT_FOUND, 'session_mismatch');
  }

  private allowToken(
    trace: Trace,
    res: ServerResponse,
    verified: VerifiedToken,
    { resource }: ResourceMatch,
  ): Promise<void> | void {
    if (resource.upstreamAuthorization !== 'jwt') {
      return this.allow(trace, res, verified, resource.url, '');
    }
    return this.deps.backendSigner
      .tokenFor(verified, resource.url)
      .then((jwt) => this.allow(trace, res, verified, resource.url, `Bearer ${jwt}`));
  }

  private rejectToken(context: DecisionContext, error: TokenRejected): void {
    const { resource } = context.match;
    securityEvent(this.deps.logger, 'invalid_token', {
      ip: context.request.clientIp(),
      resource: resource.url,
      reason: error.message,
      reasonCode: error.code,
    });
    this.deny(
      context.trace,
      context.res,
      invalidToken(context.prmUrl, resource.scopes, error.message),
      error.code,
    );
  }

  private async checkTools(
    req: IncomingMessage,
    request: PublicRequest,
    match: ResourceMatch,
    policy: ToolPolicy,
    token: VerifiedToken,
    prmUrl: string,
  ): Promise<ToolDenial | undefined> {
    const { logger, config } = this.deps;
    const { resource } = match;
    let body: Buffer | undefined;
    if (hasBody(req)) {
      try {
        body = await readBody(req, config.verify.maxBodySize);
      } catch (error) {
        if (error instanceof BodyTooLarge) {
          return {
            denial: jsonRpcError(413, JSONRPC_INVALID_REQUEST, 'Request body too large'),
            reason: 'body_too_large',
          };
        }
        throw error;
      }
    }
    const operation = readOperation({
      method: request.method,
      headers: req.headers,
      body,
      operationFrom: policy.operationFrom,
    });
    if (!operation.ok) {
      if (operation.refusal !== 'operation_unknown') {
        securityEvent(
          logger,
          operation.refusal === 'header_body_mismatch' ? 'header_body_mismatch' : 'unreadable_body',
          {
            ip: request.clientIp(),
            resource: resource.url,
            clientId: token.clientId,
            subject: token.sub,
            reason: operation.refusal,
          },
        );
      }
      return {
        denial: operation.denial,
        reason: operation.refusal === 'operation_unknown' ? 'operation_unknown' : 'bad_request',
      };
    }
    for (const message of operation.messages) {
      if (message.method !== 'tools/call') continue;
      const tool = message.name ?? '';
      const decision = policy.decide(tool, token);
      if (decision.allowed) continue;
      securityEvent(logger, 'tool_denied', {
        ip: request.clientIp(),
        resource: resource.url,
        clientId: token.clientId,
        subject: token.sub,
        tool,
        reason: decision.reason,
      });
      // The arguments are recorded only as a hash (audit): they may carry user data.
      const argumentsHash =
        message.arguments === undefined
          ? undefined
          : createHash('sha256').update(JSON.stringify(message.arguments)).digest('hex');
      if (decision.reason === 'scope') {
        return {
          denial: insufficientScope(
            prmUrl,
            union(token.scopes, decision.requiredScopes),
            `tool ${tool} requires ${decision.requiredScopes.join(' ')}`,
          ),
          reason: 'insufficient_scope',
          tool,
          argumentsHash,
        };
      }
      return {
        denial: jsonRpcError(
          403,
          JSONRPC_FORBIDDEN,
          `Forbidden: you may not call the tool "${tool}"`,
          message.id ?? null,
        ),
        reason: 'tool_denied',
        tool,
        argumentsHash,
      };
    }
    return undefined;
  }

  private deny(trace: Trace, res: ServerResponse, denial: Denial, reason: string): void {
    const body = JSON.stringify(denial.body);
    // With its length the answer is one write; without, node:http would chunk it.
    res.writeHead(denial.status, {
      ...denial.headers,
      'Content-Length': String(Buffer.byteLength(body)),
    });
    res.end(body);
    if (this.deps.failureLimiter && !NOT_FAILURES.has(reason)) {
      this.deps.failureLimiter.recordFailure(trace.clientIp() ?? '');
    }
    this.observe(trace, denial.status, reason);
  }

  /**
   * The 2xx answer. For a verified token its headers are built once per resource and kept with
   * the token in the cache (rebuilt when the backend JWT changes).
   */
  private allow(
    trace: Trace,
    res: ServerResponse,
    token: VerifiedToken | undefined,
    resourceUrl: string,
    authorization: string,
  ): void {
    const kept = token?.answerHeaders;
    let headers = kept?.resourceUrl === resourceUrl ? kept.headers : undefined;
    if (headers?.Authorization !== authorization) {
      headers = {
        ...identityHeaders(token ? identityOf(token) : emptyIdentity(), authorization),
        'Cache-Control': 'no-store',
        'Content-Length': '0',
      };
      if (token) token.answerHeaders = { resourceUrl, headers };
    }
    res.writeHead(200, headers);
    res.end();
    this.observe(trace, 200, 'allowed');
  }
}

function identityOf(token: VerifiedToken): Identity {
  return {
    sub: token.sub,
    email: token.email,
    name: token.name,
    groups: token.groups,
    clientId: token.clientId,
    scopes: token.scopes,
  };
}

function emptyIdentity(): Identity {
  return { sub: '', email: '', name: '', groups: [], clientId: '', scopes: [] };
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}
