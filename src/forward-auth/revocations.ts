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
 */
import type { Logger } from '../logging/logger.js';
import type { Store } from '../store/store.js';

const LIST_KEY = 'revocations:grants';
const CHANNEL = 'revocations';

export class RevocationList {
  /** Grant id → epoch seconds after which the entry no longer matters. */
  private readonly revoked = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly store: Store,
    /** Seconds an entry must be kept: the longest access token lifetime plus clock skew. */
    private readonly retention: number,
    private readonly pollInterval: number,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.store.subscribe(CHANNEL, (message) => this.remember(message));
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) =>
        this.logger.warn('cannot read revocations', { error: (error as Error).message }),
      );
    }, this.pollInterval * 1000);
    this.timer.unref();
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
    await this.store.addToSet(LIST_KEY, [member], this.retention);
    await this.store.publish(CHANNEL, member);
  }

  /** Re-reads the list from the store and drops what no longer matters. */
  async refresh(): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    const members = await this.store.setMembers(LIST_KEY);
    const expired: string[] = [];
    for (const member of members) {
      if (this.remember(member) < now) expired.push(member);
    }
    for (const [grantId, until] of this.revoked) if (until < now) this.revoked.delete(grantId);
    if (expired.length) await this.store.removeFromSet(LIST_KEY, expired);
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
