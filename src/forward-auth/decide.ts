/**
 * What `/verify` decides, apart from how it is answered: {@link decide} reads a plain
 * description of the forwardAuth subrequest and returns a {@link Decision}. It never touches
 * `node:http` (decision-point.ts reads the request and writes the answer), so it is tested as a
 * table of requests and decisions, with no server.
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
 *  7. per-tool checks on the MCP operation: definitions held by tool pinning, then the tool
 *     rules (403, or 400/413 for a bad body; tool-rules.ts).
 *
 * A decision on a cached token, with no session to bind, no body to read and no backend JWT to
 * sign, is returned synchronously: no promise per request on the hot path. Anything else
 * returns a promise. Neither ever throws or rejects: an unexpected error is a `failed` decision.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { SecurityEvents } from '../events/security-events.js';
import type { TrustFunction } from '../http/trusted-proxies.js';
import type { Logger } from '../logging/logger.js';
import {
  AMBIGUOUS_CASE,
  type ResourceMatch,
  type ResourceMatcher,
} from '../resources/resource-matcher.js';
import { StoreFullError } from '../store/store.js';
import type { BackendTokenSigner } from './backend-token.js';
import {
  insufficientScope,
  invalidToken,
  JSONRPC_FORBIDDEN,
  jsonRpcError,
  missingToken,
  protectedResourceMetadataUrl,
  refused,
  SESSION_NOT_FOUND,
  STORE_UNAVAILABLE,
  TOO_MANY_SESSIONS,
  type Denial,
} from './challenges.js';
import { identityHeaderAlias } from './identity-headers.js';
import {
  readPublicRequest,
  type PublicRequest,
  type PublicRequestResult,
} from './public-request.js';
import type { ClaimOutcome, SessionBindings } from './session-binding.js';
import { sessionNamed } from './session-names.js';
import { TokenRejected, TokenVerifier, type VerifiedToken } from './token-verifier.js';
import type { ToolPinning } from '../tool-pinning/pinning.js';
import { checkTools, union, type ToolRefusal } from './tool-rules.js';

/** The forwardAuth subrequest, as far as the decision reads it. */
export interface VerifyRequest {
  /** The address the subrequest came from: the proxy's, when it is one. */
  readonly peerAddress: string | undefined;
  /** The subrequest's headers, names in lowercase (`X-Forwarded-*` describe the original). */
  readonly headers: IncomingHttpHeaders;
  /**
   * The forwarded body, `undefined` when none came. Called only for a resource with tool rules:
   * no other decision reads a body, so none is read (nor refused as too large) for them. It may
   * reject with `BodyTooLarge` (413) or anything else (a failed decision).
   */
  body(): Buffer | undefined | Promise<Buffer | undefined>;
}

/** What a decision needs besides the request; built once per decision point. */
export interface DecisionDependencies {
  /** The protected MCP servers, live (src/resources/): read once per decision. */
  resources: { readonly matcher: ResourceMatcher };
  trust: TrustFunction;
  verifier: TokenVerifier;
  backendSigner: BackendTokenSigner;
  events: SecurityEvents;
  logger: Logger;
  /** Whether revocations are known well enough to allow a token (store outage policy). */
  revocations?: { usable(): boolean } | undefined;
  /** MCP sessions bound to their first user and client (`verify.sessionBinding`). */
  sessions?: SessionBindings | undefined;
  /** Client IPs refused for now (`limits.verifyFailures`); counted by the adapter. */
  failureLimiter?: { readonly active: boolean; isBlocked(ip: string): number } | undefined;
  /** Tool definition pinning (src/tool-pinning/): what is held back, and new sessions. */
  pins?: Pick<ToolPinning, 'held' | 'fresh' | 'sessionStarted'> | undefined;
}

/** What every decision tells, whatever it is: the observers' facts. */
interface DecisionFacts {
  /** The resource URL the request was matched to, when one was. */
  readonly resource: string | undefined;
  /** The verified token, when one was. */
  readonly token: VerifiedToken | undefined;
  /** The original client's address when the proxy is trusted, else the peer's. */
  readonly clientIp: () => string | undefined;
}

/** The request may pass, to the MCP server, with these identity headers. */
export interface Allowed extends DecisionFacts {
  readonly kind: 'allow';
  readonly resource: string;
  readonly token: VerifiedToken;
  /** The `Authorization` the MCP server receives: '' or `Bearer <backend JWT>`. */
  readonly authorization: string;
}

/** The request may not pass; challenges.ts maps the denial to its answer. */
export interface Denied extends DecisionFacts {
  readonly kind: 'deny';
  readonly denial: Denial;
  /** Why, for metrics, audit and the activity feed (decision-observer.ts). */
  readonly reason: string;
  /** For a tool rule refusal: the tool, and a SHA-256 of its arguments. */
  readonly tool?: string | undefined;
  readonly argumentsHash?: string | undefined;
}

/** No decision: something failed (a 500, or a client that hung up mid-body). */
export interface Failed extends DecisionFacts {
  readonly kind: 'failed';
  readonly error: unknown;
}

export type Decision = Allowed | Denied | Failed;

/** Decides one `/verify` request; synchronous on the cached hot path (see the module doc). */
export function decide(
  request: VerifyRequest,
  deps: DecisionDependencies,
): Decision | Promise<Decision> {
  const parsed = readPublicRequest(request.headers, request.peerAddress, deps.trust);
  if (!parsed.ok && parsed.reason !== 'ambiguous_path') {
    const peer = request.peerAddress;
    deps.events.emit('untrusted_proxy', { ip: peer, reason: parsed.reason });
    return {
      kind: 'deny',
      denial: NOT_FORWARD_AUTH,
      reason: 'untrusted_proxy',
      resource: undefined,
      token: undefined,
      clientIp: () => peer,
    };
  }
  const run = new DecisionRun(request, deps, parsed.ok ? parsed.request.clientIp : parsed.clientIp);
  try {
    const decision = run.start(parsed);
    return decision instanceof Promise ? decision.catch((error) => run.failed(error)) : decision;
  } catch (error) {
    return run.failed(error);
  }
}

/** 400 for a subrequest that is not from a trusted proxy or does not describe a request. */
const NOT_FORWARD_AUTH = refused(
  400,
  'invalid_request',
  'not a forwardAuth request from a trusted proxy',
);

/** What the public request reads as once the proxy is trusted: a request, or an ambiguous path. */
type TrustedRequestResult = Extract<
  PublicRequestResult,
  { ok: true } | { reason: 'ambiguous_path' }
>;

/** `Bearer <token>` from the Authorization header; `null` for another scheme or none. */
function bearerToken(header: string | undefined): string | null | '' {
  if (!header) return null;
  const match = /^Bearer(?:\s+(\S*))?\s*$/i.exec(header);
  if (!match) return null;
  return match[1] ?? '';
}

/** One decision as it goes: the steps after the proxy is trusted, and what they learnt. */
class DecisionRun {
  resource: string | undefined = undefined;
  token: VerifiedToken | undefined = undefined;
  /** Set once the request is known to be for a resource. */
  private request!: PublicRequest;
  private match!: ResourceMatch;
  private prmUrl = '';

  constructor(
    private readonly subrequest: VerifyRequest,
    private readonly deps: DecisionDependencies,
    /** The original client's address (the proxy is trusted from here on). */
    readonly clientIp: () => string,
  ) {}

  /** Steps 1 to 4: the request, the resource, the origin, the token. */
  start(parsed: TrustedRequestResult): Decision | Promise<Decision> {
    const { deps, subrequest } = this;
    // From here on the subrequest comes from a trusted proxy: refusals count against the
    // original client's address, never the proxy's (which would block everyone behind it).
    const limiter = deps.failureLimiter;
    if (limiter?.active) {
      const retryAfter = limiter.isBlocked(this.clientIp());
      if (retryAfter > 0) {
        return this.deny({ kind: 'too_many_failures', retryAfter }, 'rate_limited');
      }
    }
    if (!parsed.ok) return this.refuseAmbiguousPath(parsed.ambiguity, parsed.rawPath);
    const alias = identityHeaderAlias(subrequest.headers);
    if (alias !== undefined) {
      deps.events.emit('ambiguous_header', { ip: this.clientIp(), header: alias });
      return this.deny(
        refused(400, 'invalid_request', `header ${alias} is another name for an identity header`),
        'ambiguous_header',
      );
    }
    const request = (this.request = parsed.request);
    const match = deps.resources.matcher.match(request.origin, request.path);
    if (match === AMBIGUOUS_CASE) return this.refuseAmbiguousPath(match, request.path);
    if (!match) {
      deps.logger.debug('no resource', { origin: request.origin, path: request.path });
      return this.deny(
        refused(403, 'access_denied', 'no protected MCP server at this URL'),
        'no_resource',
      );
    }
    this.match = match;
    const { resource } = match;
    this.resource = resource.url;
    this.prmUrl = protectedResourceMetadataUrl(request.origin, match.resourcePath);

    const origin = subrequest.headers.origin;
    if (origin !== undefined && !match.allowedOrigins.has(origin.toLowerCase())) {
      deps.events.emit('origin_refused', {
        ip: request.clientIp(),
        resource: resource.url,
        origin,
      });
      return this.deny(
        jsonRpcError(403, JSONRPC_FORBIDDEN, 'Forbidden: Origin not allowed'),
        'origin',
      );
    }
    // A CORS preflight is not let through without a token: it would reach the MCP server
    // unauthenticated, with whatever body it carries. The proxy answers preflights itself
    // (docs/proxies.md: Traefik's headers middleware, Caddy and nginx in their routes).

    const token = bearerToken(subrequest.headers.authorization);
    if (token === null) return this.deny(missingToken(this.prmUrl, resource.scopes), 'no_token');
    if (deps.revocations && !deps.revocations.usable()) {
      // The store cannot be read: a token revoked meanwhile would pass (verify.storeOutage).
      return this.deny(STORE_UNAVAILABLE, 'store_unavailable');
    }
    if (token === '') {
      return this.rejectToken(new TokenRejected('the Bearer credentials are empty', 'malformed'));
    }
    const key = TokenVerifier.cacheKey(token);
    const cached = deps.verifier.cached(key);
    if (cached) return this.withToken(cached);
    return deps.verifier.verify(token, key).then(
      (verified) => this.withToken(verified),
      (error: unknown) => {
        if (!(error instanceof TokenRejected)) throw error;
        return this.rejectToken(error);
      },
    );
  }

  /** Steps 5 and 6: after the token is known to be ours and intact. */
  private withToken(verified: VerifiedToken): Decision | Promise<Decision> {
    const { resource } = this.match;
    this.token = verified;
    try {
      this.deps.verifier.check(verified, resource.url);
    } catch (error) {
      if (!(error instanceof TokenRejected)) throw error;
      return this.rejectToken(error);
    }

    const missingBaseline = resource.scopes.filter((scope) => !verified.scopes.includes(scope));
    if (missingBaseline.length > 0) {
      return this.deny(
        insufficientScope(
          this.prmUrl,
          union(verified.scopes, resource.scopes),
          `requires ${resource.scopes.join(' ')}`,
        ),
        'insufficient_scope',
      );
    }

    const sessions = this.deps.sessions;
    if (!sessions) return this.withSession(verified);
    const header = this.subrequest.headers['mcp-session-id'];
    const named = sessionNamed(
      Array.isArray(header) ? header.join(', ') : header,
      this.request.search,
    );
    if (named.kind === 'none') return this.withSession(verified);
    if (named.kind === 'refused') {
      this.deps.events.emit('ambiguous_session', {
        ip: this.request.clientIp(),
        resource: resource.url,
        subject: verified.sub,
        clientId: verified.clientId,
        reason: named.reason,
      });
      const description =
        named.reason === 'several_sessions'
          ? 'the request names more than one MCP session'
          : 'malformed MCP session id';
      return this.deny(refused(400, 'invalid_request', description), 'bad_request');
    }
    const owner = { subject: verified.sub, clientId: verified.clientId };
    const claimed = sessions.claim(resource.url, named.id, owner);
    if (typeof claimed === 'string') return this.afterClaim(verified, claimed);
    return claimed.then(
      (outcome) => this.afterClaim(verified, outcome),
      (error: unknown) => {
        // A full store is reported once by the store itself; anything else, here.
        if (!(error instanceof StoreFullError)) {
          this.deps.logger.warn('cannot read MCP session bindings', { error });
        }
        return this.deny(STORE_UNAVAILABLE, 'store_unavailable');
      },
    );
  }

  private afterClaim(verified: VerifiedToken, outcome: ClaimOutcome): Decision | Promise<Decision> {
    if (outcome === 'owner') return this.withSession(verified);
    const ip = this.request.clientIp();
    const resource = this.match.resource.url;
    const { sub: subject, clientId } = verified;
    if (outcome === 'other') {
      // Another user's (or client's) session: 404, as for a session that does not exist.
      this.deps.events.emit('session_mismatch', { ip, resource, subject, clientId });
      return this.deny(SESSION_NOT_FOUND, 'session_mismatch');
    }
    this.deps.events.emit('rate_limited', {
      ip,
      route: 'session',
      keyType: 'user',
      resource,
      subject,
      clientId,
    });
    return this.deny(TOO_MANY_SESSIONS, 'session_quota');
  }

  /** Step 7: after the session (if any) is known to be this token's. */
  private withSession(verified: VerifiedToken): Decision | Promise<Decision> {
    const policy = this.match.toolPolicy;
    const { pins } = this.deps;
    const held = pins?.held(this.match.resource);
    if (pins && this.request.method === 'POST' && !this.subrequest.headers['mcp-session-id']) {
      // A POST without a session is how an MCP session starts: list the server again soon.
      pins.sessionStarted(this.match.resource.url);
    }
    if (!policy?.hasRules && !held) return this.allow(verified);
    return checkTools({
      body: () => this.subrequest.body(),
      headers: this.subrequest.headers,
      request: this.request,
      resourceUrl: this.match.resource.url,
      policy: policy?.hasRules ? policy : undefined,
      held,
      freshHeld: held ? () => pins!.fresh(this.match.resource) : undefined,
      token: verified,
      prmUrl: this.prmUrl,
      events: this.deps.events,
    }).then((refusal) => (refusal ? this.refuseTool(refusal) : this.allow(verified)));
  }

  private allow(verified: VerifiedToken): Allowed | Promise<Allowed> {
    const { resource } = this.match;
    if (resource.upstreamAuthorization !== 'jwt') return this.allowed(verified, '');
    return this.deps.backendSigner
      .tokenFor(verified, resource.url)
      .then((jwt) => this.allowed(verified, `Bearer ${jwt}`));
  }

  private allowed(token: VerifiedToken, authorization: string): Allowed {
    return {
      kind: 'allow',
      resource: this.match.resource.url,
      token,
      authorization,
      clientIp: this.clientIp,
    };
  }

  /**
   * A forwarded path a proxy could route to another MCP server than the one it names to a
   * reader like this one (src/resources/routed-path.ts): 400, before any token is looked at.
   */
  private refuseAmbiguousPath(reason: string, path: string): Denied {
    this.deps.events.emit('ambiguous_path', { ip: this.clientIp(), reason, path });
    return this.deny(
      refused(400, 'invalid_request', `ambiguous request path (${reason})`),
      'ambiguous_path',
    );
  }

  private rejectToken(error: TokenRejected): Denied {
    const { resource } = this.match;
    this.deps.events.emit('invalid_token', {
      ip: this.request.clientIp(),
      resource: resource.url,
      reason: error.message,
      reasonCode: error.code,
    });
    return this.deny(invalidToken(this.prmUrl, resource.scopes, error.message), error.code);
  }

  private refuseTool(refusal: ToolRefusal): Denied {
    return {
      kind: 'deny',
      denial: refusal.denial,
      reason: refusal.reason,
      resource: this.resource,
      token: this.token,
      clientIp: this.clientIp,
      tool: refusal.tool,
      argumentsHash: refusal.argumentsHash,
    };
  }

  private deny(denial: Denial, reason: string): Denied {
    return {
      kind: 'deny',
      denial,
      reason,
      resource: this.resource,
      token: this.token,
      clientIp: this.clientIp,
    };
  }

  /** What the decision learnt before `error`, for the 500 answer and the observers. */
  failed(error: unknown): Failed {
    return {
      kind: 'failed',
      error,
      resource: this.resource,
      token: this.token,
      clientIp: this.clientIp,
    };
  }
}
