/**
 * Abuse limits inside the auth service: defence in depth behind Traefik's rate limits and
 * CrowdSec's bans, for the endpoints an attacker can drive without any credential.
 *
 * | limit (`config.limits`) | key                | where                                               |
 * | ----------------------- | ------------------ | --------------------------------------------------- |
 * | `register`              | client IP          | POST /register                                      |
 * | `authorize`             | client IP          | GET and POST /authorize                             |
 * | `tokenPerIp`            | client IP          | POST /token                                         |
 * | `tokenPerClient`        | client id          | POST /token (see {@link RateLimits.token})          |
 * | `login`                 | client IP          | the dev login form post and the upstream callbacks  |
 * | `verifyFailures`        | client IP          | `/verify` refusals ({@link VerifyFailureLimiter})   |
 * | `maxClientsPerIp`       | client IP          | POST /register (`client-quota.ts`)                  |
 * | `maxClientsPerNetwork`  | IPv4 /24, IPv6 /48 | POST /register (`client-quota.ts`)                  |
 *
 * Counters live in the store, so every replica sees the same counts: with `store.redis`
 * rate-limiter-flexible's RateLimiterRedis on the store's own connection, under the store's key
 * prefix (`<prefix>limits:<limit>:<key>`), with an in-process RateLimiterMemory as insurance
 * while Redis cannot be reached (each replica then limits on its own, which is what a lone
 * replica would do); with the memory store (one process) RateLimiterMemory. Should even that
 * fail, a request is let through: these limits protect the service, they are not what grants
 * or denies access.
 *
 * Over a limit the answer is 429 with `Retry-After` (whole seconds) and an OAuth-style JSON
 * body `{"error":"too_many_requests","error_description":…}`, on the browser routes too (no
 * page: a browser that hits these limits is a script). One `rate_limited` security event is
 * written per key and window (when the limit is first exceeded; for a client, when it reaches
 * it), not per refused request, so a flood cannot flood the log; CrowdSec can act on them.
 *
 * IP keys: an IPv4 address (IPv4-mapped IPv6 included) is its own key; an IPv6 address is
 * keyed by its /64, the block one host usually gets, or every limit would be as many limits as
 * the host has addresses. `req.ip` is Express's, which believes X-Forwarded-For from the
 * trusted proxies only.
 *
 * `limits.enabled: false` turns every limit here into a no-op.
 */
import type { Express, Request, RequestHandler, Response } from 'express';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { GatewayConfig } from '../config/schema.js';
import { onProviderEvent, type ProviderEventSource } from '../events/provider-events.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { Logger } from '../logging/logger.js';
import { sendOAuthError, TooManyRequests } from '../http/errors.js';
import { mountPipelines, oauthPipelines } from '../oauth/endpoints.js';
import { ROUTES } from '../oauth/constants.js';
import { rateLimitPrefix } from '../store/keys.js';
import { RedisStore } from '../store/redis-store.js';
import type { Store } from '../store/store.js';
import type { ClientQuota } from './client-quota.js';
import { limitKeyForIp, StoreWarnings } from './shared.js';
import { VerifyFailureLimiter } from './verify-failures.js';

export { limitKeyForIp, StoreWarnings, VerifyFailureLimiter };

export type LimitRule = GatewayConfig['limits']['register'];

/** The names of the limits, as in `config.limits` (also the key segment in the store). */
export type LimitName =
  'register' | 'authorize' | 'tokenPerIp' | 'tokenPerClient' | 'login' | 'verifyFailures';

/** What the limits need from oidc-provider: its events (Provider is an EventEmitter). */
export type ProviderEvents = ProviderEventSource;

export interface RateLimitsDeps {
  /** `limits`; `cors.allowedOrigins`: the origins that may read a 429 from /token. */
  config: Pick<GatewayConfig, 'limits' | 'cors'>;
  store: Store;
  logger: Logger;
  /** Where `rate_limited` is raised. */
  events: SecurityEvents;
}

export interface RateLimits {
  /** Per IP, for POST /register (after the registration CORS, so a browser can read a 429). */
  register: RequestHandler;
  /** Per IP, for GET and POST /authorize. */
  authorize: RequestHandler;
  /**
   * Per IP and per client, for POST /token.
   *
   * The per-IP limit counts every request. The per-client limit is split in two, because the
   * client is known for sure only inside oidc-provider, after it authenticated the client,
   * and by then it is too late to refuse without losing what the grant did (a redeemed code,
   * a rotated refresh token):
   * - counting ({@link RateLimits.attach}): oidc-provider's `grant.success` and `grant.error`
   *   events count one request for `ctx.oidc.client`, except `invalid_client` and
   *   `invalid_request` errors, the only ones that can happen before the client proved who
   *   it is; so nobody can use up another client's allowance by naming it with a wrong secret;
   * - refusing (this middleware): the client id the request names (HTTP Basic, else the
   *   `client_id` form field) is looked up, read-only, and the request refused while that
   *   client's count is at the limit.
   * The form body is read without taking it from oidc-provider: its bytes are read off the
   * request stream and pushed back (`stream.unshift`) before anything else reads it, so
   * oidc-provider parses the very same bytes itself (`express.urlencoded` would consume the
   * stream, and oidc-provider would then fall back to a pre-parsed body with a warning). Only a
   * form body with a Content-Length within oidc-provider's own 56 KiB limit is read; a request
   * without one (chunked) or naming its client only in a `client_assertion` is held by the
   * per-IP limit alone.
   * Concurrent requests of one client may pass the read-only check together, so a burst can
   * exceed the per-client limit by its concurrency; the per-IP limit bounds that.
   * Clients whose id is a URL (Client ID Metadata Documents) are not limited per client: one
   * such id is shared by every user of an application (every Claude user, say), and limiting
   * it would let one user's traffic, or anyone naming it, lock all of them out; the per-IP
   * limit covers them.
   */
  token: RequestHandler;
  /**
   * Per IP, for the login steps: POST /interaction/:uid/login/dev, GET
   * /login/callback/:providerId and GET /interaction/:uid/callback/:providerId.
   */
  login: RequestHandler;
  /** For the `/verify` decision point. */
  verifyFailures: VerifyFailureLimiter;
  /** Counts token requests per authenticated client from oidc-provider's events. */
  attach(provider: ProviderEvents): void;
}

/** The largest form body oidc-provider itself reads (lib/shared/selective_body.js). */
const PEEK_LIMIT = 56 * 1024;

/**
 * Builds every limiter from `config.limits`. The limiters keep no timers or connections of
 * their own (the Redis connection is the store's), so there is nothing to close.
 */
export function createRateLimits(deps: RateLimitsDeps): RateLimits {
  const { config, logger, events } = deps;
  const settings = config.limits;
  if (!settings.enabled) return disabledLimits();

  const build = (name: LimitName) => buildLimiter(name, settings[name], deps.store);
  const warnings = new StoreWarnings(logger);
  const context = { events, warnings, allowedOrigins: config.cors.allowedOrigins };

  const register = perIpLimit(build('register'), settings.register, 'register', context);
  const authorize = perIpLimit(build('authorize'), settings.authorize, 'authorize', context);
  const tokenPerIp = perIpLimit(build('tokenPerIp'), settings.tokenPerIp, 'tokenPerIp', context);
  const login = perIpLimit(build('login'), settings.login, 'login', context);
  const perClient = build('tokenPerClient');
  const clientRule = settings.tokenPerClient;

  const tokenPerClient: RequestHandler = async (req, res, next) => {
    const clientId = await claimedClientId(req);
    if (clientId === undefined || !isLimitedClient(clientId)) return next();
    let state: RateLimiterRes | null;
    try {
      state = await perClient.get(clientId);
    } catch (error) {
      warnings.warn('tokenPerClient', error);
      return next();
    }
    if (state && state.consumedPoints >= clientRule.points && state.msBeforeNext > 0) {
      allowReading(req, res, context.allowedOrigins);
      return sendTooManyRequests(
        res,
        state.msBeforeNext,
        'too many token requests for this client; retry later',
      );
    }
    return next();
  };

  /** One authenticated token request of `clientId`; blocks it once it reaches the limit. */
  const countTokenRequest = (clientId: string | undefined): void => {
    if (clientId === undefined || !isLimitedClient(clientId)) return;
    perClient.consume(clientId).then(
      (result) => {
        if (result.consumedPoints !== clientRule.points) return;
        // Reached (not exceeded): the next request of this client is refused.
        events.emit('rate_limited', {
          route: ROUTES.token,
          keyType: 'client',
          limit: 'tokenPerClient',
          clientId,
        });
        // `blockDuration` starts when the limit is reached: the refusal is the read-only
        // check above, so rate-limiter-flexible's own block-on-exceeding never runs here.
        if (clientRule.blockDuration) {
          perClient
            .block(clientId, clientRule.blockDuration)
            .catch((error: unknown) => warnings.warn('tokenPerClient', error));
        }
      },
      (rejection: unknown) => {
        // Over the limit already (concurrent requests): counted, nothing more to do.
        if (!(rejection instanceof RateLimiterRes)) warnings.warn('tokenPerClient', rejection);
      },
    );
  };

  return {
    register,
    authorize,
    token: chain(tokenPerIp, tokenPerClient),
    login,
    verifyFailures: new VerifyFailureLimiter(build('verifyFailures'), { events, warnings }),
    attach(provider) {
      onProviderEvent(provider, 'grant.success', (ctx) =>
        countTokenRequest(ctx.oidc?.client?.clientId),
      );
      onProviderEvent(provider, 'grant.error', (ctx, error) => {
        if (error?.error === 'invalid_client' || error?.error === 'invalid_request') return;
        countTokenRequest(ctx.oidc?.client?.clientId);
      });
    },
  };
}

/**
 * Mounts the limits alone, in the places the endpoint chains give them (src/oauth/endpoints.ts,
 * without the guards), and attaches what counts from oidc-provider's events: for an
 * application that is not the gateway (the limits' tests). The gateway mounts the whole chains.
 */
export function installLimits(
  app: Express,
  provider: ProviderEvents,
  limits: RateLimits,
  clientQuota: ClientQuota,
): void {
  mountPipelines(app, oauthPipelines({ limits, clientQuota }));
  limits.attach(provider);
  clientQuota.attach(provider);
}

/**
 * Answers 429 with `Retry-After` (whole seconds, at least 1) and an OAuth-style JSON error.
 * When CORS headers were set (registration CORS, {@link allowReading}), a browser-based client
 * may read `Retry-After` too.
 */
export function sendTooManyRequests(
  res: Response,
  msBeforeNext: number,
  description: string,
): void {
  if (res.getHeader('Access-Control-Allow-Origin') !== undefined) {
    res.set('Access-Control-Expose-Headers', 'Retry-After');
  }
  sendOAuthError(res, new TooManyRequests(description, msBeforeNext));
}

/**
 * Lets the browser origins that may call the token endpoint (`cors.allowedOrigins`, as
 * oidc-provider's `clientBasedCORS` in provider.ts) read its 429, as they read its other
 * answers.
 */
function allowReading(req: Request, res: Response, allowedOrigins: string[]): void {
  const origin = req.headers.origin;
  res.vary('Origin');
  if (origin !== undefined && allowedOrigins.includes(origin)) {
    res.set('Access-Control-Allow-Origin', origin);
  }
}

const ROUTE_OF: Record<Exclude<LimitName, 'tokenPerClient' | 'verifyFailures'>, string> = {
  register: ROUTES.registration,
  authorize: ROUTES.authorization,
  tokenPerIp: ROUTES.token,
  login: 'login',
};

const DESCRIPTION_OF: Record<keyof typeof ROUTE_OF, string> = {
  register: 'too many client registrations from this address; retry later',
  authorize: 'too many authorization requests from this address; retry later',
  tokenPerIp: 'too many token requests from this address; retry later',
  login: 'too many sign-in attempts from this address; retry later',
};

interface LimitContext {
  events: SecurityEvents;
  warnings: StoreWarnings;
  allowedOrigins: string[];
}

function perIpLimit(
  limiter: RateLimiterAbstract,
  rule: LimitRule,
  name: keyof typeof ROUTE_OF,
  { events, warnings, allowedOrigins }: LimitContext,
): RequestHandler {
  return async (req, res, next) => {
    const ip = req.ip;
    if (!ip) return next();
    try {
      await limiter.consume(limitKeyForIp(ip));
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) {
        warnings.warn(name, rejection);
        return next();
      }
      if (rejection.consumedPoints === rule.points + 1) {
        events.emit('rate_limited', {
          ip,
          route: name === 'login' ? req.path : ROUTE_OF[name],
          keyType: 'ip',
          limit: name,
        });
      }
      if (name === 'tokenPerIp') allowReading(req, res, allowedOrigins);
      return sendTooManyRequests(res, rejection.msBeforeNext, DESCRIPTION_OF[name]);
    }
    return next();
  };
}

/** Runs `first`, then `second` unless `first` answered. */
function chain(first: RequestHandler, second: RequestHandler): RequestHandler {
  return (req, res, next) =>
    first(req, res, (error?: unknown) => {
      if (error !== undefined) return next(error);
      return second(req, res, next);
    });
}

function buildLimiter(name: LimitName, rule: LimitRule, store: Store): RateLimiterAbstract {
  const options = {
    points: rule.points,
    duration: rule.duration,
    blockDuration: rule.blockDuration ?? 0,
  };
  const local = new RateLimiterMemory({ ...options, keyPrefix: rateLimitPrefix(name) });
  if (!(store instanceof RedisStore)) return local;
  return new RateLimiterRedis({
    ...options,
    storeClient: store.client,
    keyPrefix: `${store.keyPrefix}${rateLimitPrefix(name)}`,
    // While Redis is unreachable, limit in this process rather than queue every request
    // behind the reconnection.
    rejectIfRedisNotReady: true,
    insuranceLimiter: local,
  });
}

/**
 * The client a token request names: the HTTP Basic user name, else the `client_id` form
 * field (read without consuming the body, see {@link RateLimits.token}). Unauthenticated: used
 * only to look up an existing count, never to add to one.
 */
async function claimedClientId(req: Request): Promise<string | undefined> {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const [scheme, value] = authorization.split(' ');
    if (scheme?.toLowerCase() !== 'basic' || !value) return undefined;
    const basic = Buffer.from(value, 'base64').toString('utf8');
    const colon = basic.indexOf(':');
    if (colon <= 0) return undefined;
    try {
      // RFC 6749 §2.3.1: the id is form-urlencoded before it is put in the header.
      return decodeURIComponent(basic.slice(0, colon).replace(/\+/g, '%20'));
    } catch {
      return undefined;
    }
  }
  const body = await peekFormBody(req);
  if (body === undefined) return undefined;
  const clientId = new URLSearchParams(body).getAll('client_id');
  return clientId.length === 1 ? clientId[0] : undefined;
}

/**
 * Reads a small form body and pushes its bytes back onto the request stream, so that the next
 * reader (oidc-provider) reads it as if nobody had: `Readable.unshift` is Node's API for
 * "un-consuming" data read ahead. The bytes are put back synchronously as soon as
 * Content-Length bytes have been read, before the stream can emit `end` (after which nothing
 * can be put back). Resolves `undefined`, having put back whatever was read, when the body is
 * not a form, has no or too large a Content-Length, or the request fails.
 */
export function peekFormBody(req: Request): Promise<string | undefined> {
  const length = Number(req.headers['content-length']);
  if (
    req.method !== 'POST' ||
    !req.is('application/x-www-form-urlencoded') ||
    !Number.isSafeInteger(length) ||
    length <= 0 ||
    length > PEEK_LIMIT ||
    req.readableEncoding !== null ||
    !req.readable ||
    req.readableEnded
  ) {
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      req.off('readable', onReadable);
      req.off('end', finish);
      req.off('error', finish);
      req.off('close', finish);
      const body = Buffer.concat(chunks, received);
      if (received > 0 && !req.readableEnded && !req.destroyed) req.unshift(body);
      resolve(received === length ? body.toString('utf8') : undefined);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while (received < length && (chunk = req.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        received += chunk.length;
      }
      if (received >= length) finish();
    };
    req.on('readable', onReadable);
    req.once('end', finish);
    req.once('error', finish);
    req.once('close', finish);
  });
}

/** Client ID Metadata Document clients (URL ids) are limited per IP only (see `token`). */
function isLimitedClient(clientId: string): boolean {
  return !/^https?:\/\//i.test(clientId);
}

function disabledLimits(): RateLimits {
  const pass: RequestHandler = (_req, _res, next) => next();
  return {
    register: pass,
    authorize: pass,
    token: pass,
    login: pass,
    verifyFailures: new VerifyFailureLimiter(undefined),
    attach: () => undefined,
  };
}
