/**
 * Which grants were revoked, known to every replica within seconds.
 *
 * Access tokens are JWTs verified without a store round trip, so a revoked grant would keep
 * working until its tokens expire. Every revocation (refresh token reuse, code replay, the
 * revocation endpoint, a user or admin ending a grant) passes through the store adapter's
 * `revokeByGrantId`, which calls {@link RevocationList.revoke}: the grant id is written to the
 * store and announced on a channel. Each replica keeps the list in memory (a lookup on the
 * hot path is a Map read), applies announcements at once, and re-reads the whole list every
 * `pollInterval` seconds in case it missed one (Redis pub/sub is best effort).
 *
 * An entry is kept as long as a token of that grant could still be valid (the access token
 * lifetime plus clock skew); after that, expiry refuses the tokens anyway.
 *
 * While the store cannot be read the list may miss revocations. {@link usable} says whether
 * it is recent enough to decide on (`verify.storeOutage`): `fail-closed` tolerates one
 * missed poll (the list is at most two poll intervals old), `serve-cached` keeps deciding on
 * the last list read for `verify.storeOutageGrace` more; after that `/verify` answers 503.
 */
import type { Logger } from '../logging/logger.js';
import { REVOCATION_LIST_KEY, REVOCATIONS_CHANNEL } from '../store/keys.js';
import type { Store } from '../store/store.js';

export class RevocationList {
  /** Grant id → epoch seconds after which the entry no longer matters. */
  private readonly revoked = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  /** `performance.now()` of the last successful read of the whole list. */
  private lastRead = 0;
  /** How old (ms) the list may be and still be decided on. */
  private readonly maxAgeMs: number;
  private outage = false;

  constructor(
    private readonly store: Store,
    /** Seconds an entry must be kept: the longest access token lifetime plus clock skew. */
    private readonly retention: number,
    private readonly pollInterval: number,
    private readonly logger: Logger,
    /** Seconds the list may keep being used after a missed read (`serve-cached`); 0 = fail closed. */
    outageGrace = 0,
  ) {
    this.maxAgeMs = (2 * pollInterval + outageGrace) * 1000;
  }

  /** Whether the list is recent enough to decide on (cheap: called on every decision). */
  usable(): boolean {
    return performance.now() - this.lastRead <= this.maxAgeMs;
  }

  /** Seconds since the list was last read from the store (metrics). */
  ageSeconds(): number {
    return (performance.now() - this.lastRead) / 1000;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.store.subscribe(REVOCATIONS_CHANNEL, (message) =>
      this.remember(message),
    );
    await this.refresh();
    this.timer = setInterval(() => {
      // Said once per outage, from the timer and the reads (never from the decision path).
      if (!this.usable()) this.reportOutage();
      this.refresh().then(
        () => {
          if (this.outage)
            this.logger.warn('revocations readable again', { event: 'store_recovered' });
          this.outage = false;
        },
        (error: unknown) =>
          this.logger.warn('cannot read revocations', { error: (error as Error).message }),
      );
    }, this.pollInterval * 1000);
    this.timer.unref();
  }

  private reportOutage(): void {
    if (this.outage) return;
    this.outage = true;
    this.logger.error('revocations cannot be read: /verify refuses tokens (verify.storeOutage)', {
      event: 'store_outage',
    });
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.unsubscribe?.();
  }

  isRevoked(grantId: string | undefined): boolean {
    if (grantId === undefined) return false;
    const until = this.revoked.get(grantId);
    return until !== undefined && until >= Math.floor(Date.now() / 1000);
  }

  async revoke(grantId: string): Promise<void> {
    const until = Math.floor(Date.now() / 1000) + this.retention;
    // oidc-provider revokes a grant model by model (codes, access, refresh tokens): announce
    // it once.
    if ((this.revoked.get(grantId) ?? 0) >= until - 5) return;
    const member = `${grantId} ${until}`;
    this.remember(member);
    try {
      await this.store.addToSet(REVOCATION_LIST_KEY, [member], this.retention);
    } catch (error) {
      // Not recorded (a full store): still announced, so that every replica that hears it
      // refuses the grant's tokens (its own copy keeps the entry until `until`). The caller
      // gets the error all the same.
      await this.store.publish(REVOCATIONS_CHANNEL, member).catch(() => undefined);
      throw error;
    }
    await this.store.publish(REVOCATIONS_CHANNEL, member);
  }

  /** Re-reads the list from the store and drops what no longer matters. */
  async refresh(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    const members = await this.store.setMembers(REVOCATION_LIST_KEY);
    const expired: string[] = [];
    for (const member of members) {
      if (this.remember(member) < now) expired.push(member);
    }
    for (const [grantId, until] of this.revoked) if (until < now) this.revoked.delete(grantId);
    // A list that went stale and is read again within one poll interval was still an outage
    // (/verify refused meanwhile): said here, as the timer never saw it.
    if (this.lastRead > 0 && !this.usable()) this.reportOutage();
    this.lastRead = performance.now();
    if (expired.length) await this.store.removeFromSet(REVOCATION_LIST_KEY, expired);
  }

  /** Parses `"<grantId> <until>"` into the in-memory list; returns `until`. */
  private remember(member: string): number {
    const [grantId, untilText] = member.split(' ');
    const until = Number(untilText);
    if (!grantId || !Number.isFinite(until)) return 0;
    if ((this.revoked.get(grantId) ?? 0) < until) this.revoked.set(grantId, until);
    return until;
  }
}
