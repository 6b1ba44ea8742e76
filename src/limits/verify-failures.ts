/** `/verify` refusals per client IP (`limits.verifyFailures`). */
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { SecurityEvents } from '../events/security-events.js';
import { limitKeyForIp, type StoreWarnings } from './shared.js';

/**
 * Remembers the IPs that keep failing at `/verify` and refuses them at once, without waiting
 * for the store, for as long as the shared limiter says.
 *
 * `/verify` runs for every MCP request and must not wait for Redis in the common case, so the
 * shared counter is only written, fire-and-forget, when a request is refused; the refusing
 * itself reads a local map, which is empty (and costs one size check) unless some IP is over
 * the limit. Each replica learns that an IP is over the limit from its own next failure for
 * that IP (the shared counter then answers "over"), so across N replicas an IP gets about
 * N − 1 failures past the limit (plus those already in flight) before every replica refuses it.
 *
 * The decision point is to use it as follows:
 * ```ts
 * // first thing, before parsing the request or the token:
 * if (verifyFailures.active) {
 *   const retryAfter = verifyFailures.isBlocked(clientIp);
 *   if (retryAfter > 0) return answer429(res, retryAfter); // Retry-After: retryAfter
 * }
 * // …
 * // on every refusal except a request without a token (`no_token`: the normal first step of
 * // every MCP client, answered with the 401 challenge), and not for the 429 above:
 * verifyFailures.recordFailure(clientIp);
 * ```
 * `clientIp` is the original client's address as the trusted proxies reported it (the same
 * address the security events carry). With `limits.enabled: false` both methods do nothing.
 */
export class VerifyFailureLimiter {
  readonly #limiter: RateLimiterAbstract | undefined;
  readonly #events: SecurityEvents | undefined;
  readonly #warnings: StoreWarnings | undefined;
  /** IP key → epoch ms until which it is refused. */
  readonly #blocked = new Map<string, number>();
  #nextSweep = 0;

  /** At most this many blocked IPs are remembered (oldest dropped first). */
  static readonly MAX_BLOCKED = 100_000;

  /**
   * `limiter` undefined: disabled (every IP passes, nothing is counted). The limiter must be
   * shared by the replicas; {@link createRateLimits} builds it from `limits.verifyFailures`.
   */
  constructor(
    limiter: RateLimiterAbstract | undefined,
    options: { events?: SecurityEvents; warnings?: StoreWarnings } = {},
  ) {
    this.#limiter = limiter;
    this.#events = options.events;
    this.#warnings = options.warnings;
  }

  /** Whether any IP may be blocked: when false, {@link isBlocked} is 0 for every IP. */
  get active(): boolean {
    return this.#blocked.size > 0;
  }

  /**
   * Synchronous: the seconds (rounded up) until `ip` is served again, 0 when it is not
   * blocked. Costs one size check while nothing is blocked.
   */
  isBlocked(ip: string): number {
    if (this.#blocked.size === 0) return 0;
    const now = Date.now();
    if (now >= this.#nextSweep) this.#sweep(now);
    const key = limitKeyForIp(ip);
    const until = this.#blocked.get(key);
    if (until === undefined) return 0;
    if (until <= now) {
      this.#blocked.delete(key);
      return 0;
    }
    return Math.ceil((until - now) / 1000);
  }

  /**
   * Counts one refused `/verify` request from `ip` in the shared limiter, without waiting for
   * it; once the limiter says the IP is over its limit, {@link isBlocked} refuses it for as
   * long as the limiter's answer says. An IP already blocked here is not counted again (no
   * store round trip per request of a blocked flood).
   */
  recordFailure(ip: string): void {
    const limiter = this.#limiter;
    if (!limiter) return;
    const key = limitKeyForIp(ip);
    const until = this.#blocked.get(key);
    if (until !== undefined && until > Date.now()) return;
    limiter.consume(key).then(
      () => undefined,
      (rejection: unknown) => {
        if (rejection instanceof RateLimiterRes) this.#block(key, ip, rejection);
        else this.#warnings?.warn('verifyFailures', rejection);
      },
    );
  }

  #block(key: string, ip: string, result: RateLimiterRes): void {
    const now = Date.now();
    const until = now + Math.max(result.msBeforeNext, 1000);
    const known = this.#blocked.get(key);
    if (known !== undefined && known > now) return;
    if (this.#blocked.size >= VerifyFailureLimiter.MAX_BLOCKED) {
      this.#sweep(now);
      // Still full: drop the oldest entries (Map keeps insertion order).
      for (const oldest of this.#blocked.keys()) {
        if (this.#blocked.size < VerifyFailureLimiter.MAX_BLOCKED) break;
        this.#blocked.delete(oldest);
      }
    }
    this.#blocked.delete(key);
    this.#blocked.set(key, until);
    this.#events?.emit('rate_limited', {
      ip,
      route: '/verify',
      keyType: 'ip',
      limit: 'verifyFailures',
      failures: result.consumedPoints,
      retryAfter: Math.ceil((until - now) / 1000),
    });
  }

  /** Drops expired entries, at most once a second. */
  #sweep(now: number): void {
    this.#nextSweep = now + 1000;
    for (const [key, until] of this.#blocked) if (until <= now) this.#blocked.delete(key);
  }
}
