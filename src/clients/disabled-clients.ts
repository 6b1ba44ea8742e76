/**
 * Which clients an administrator disabled, known to every replica within seconds.
 *
 * Disabling a client (admin console, `mcp-gateway clients disable`) keeps its grants, unlike
 * revoking it, so that enabling it again restores everything. While it is disabled:
 *
 * - `/verify` refuses its access tokens: they are JWTs checked without a store round trip, so
 *   each replica keeps the list in memory (the hot-path check is a Set lookup on the verified
 *   token's `client_id`), applies announcements on a store channel at once, and re-reads the
 *   whole list every `pollInterval` seconds in case it missed one (Redis pub/sub is best
 *   effort), as the revocation list (src/forward-auth/revocations.ts) does for revoked
 *   grants;
 * - the authorization server refuses the client at every endpoint
 *   (src/oauth/disabled-client-guard.ts), reading the list from the store
 *   ({@link isDisabledInStore}): token issuance is where a missed announcement would matter
 *   most, and those requests read the store anyway.
 *
 * The list is one store set of client ids, without expiry (a disabled client stays disabled
 * until enabled). While the store cannot be read this copy may be stale; `/verify` then
 * answers 503 anyway, because the revocation list, read from the same store on the same
 * interval, is no longer usable (`verify.storeOutage`).
 */
import type { Logger } from '../logging/logger.js';
import { DISABLED_CLIENTS_CHANNEL, DISABLED_CLIENTS_KEY } from '../store/keys.js';
import type { Store } from '../store/store.js';

/** Announcements: `+<clientId>` disabled, `-<clientId>` enabled. */
type Announcement = `${'+' | '-'}${string}`;

/** Every disabled client id, read from the store (listings, the command line). */
export async function readDisabledClients(store: Store): Promise<Set<string>> {
  return new Set(await store.setMembers(DISABLED_CLIENTS_KEY));
}

export class DisabledClients {
  private disabled = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  /**
   * Announcements heard while a re-read is in flight: they may be newer than what the re-read
   * returns, so they are applied on top of it (otherwise a re-read that started just before a
   * disable could forget it until the next poll).
   */
  private heardWhileReading: Map<string, boolean> | undefined;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    /** Seconds between re-reads of the whole list. */
    private readonly pollInterval: number,
    private readonly logger: Logger,
  ) {}

  /** Whether `clientId` is disabled, from this replica's copy (cheap: every `/verify`). */
  isDisabled(clientId: string): boolean {
    return this.disabled.has(clientId);
  }

  /** Whether `clientId` is disabled, read from the store (authoritative, one round trip). */
  async isDisabledInStore(clientId: string): Promise<boolean> {
    return (await readDisabledClients(this.store)).has(clientId);
  }

  /** Subscribes to announcements, reads the list, and re-reads it every `pollInterval`. */
  async start(): Promise<void> {
    this.unsubscribe = await this.store.subscribe(DISABLED_CLIENTS_CHANNEL, (message) =>
      this.heard(message),
    );
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) =>
        this.logger.warn('cannot read disabled clients', { error: (error as Error).message }),
      );
    }, this.pollInterval * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.unsubscribe?.();
  }

  /**
   * Disables a client: written to the store, then announced to every replica. Returns
   * `false` when it was already disabled (nothing written).
   */
  async disable(clientId: string): Promise<boolean> {
    if (await this.isDisabledInStore(clientId)) return false;
    this.apply(clientId, true);
    await this.store.addToSet(DISABLED_CLIENTS_KEY, [clientId]);
    await this.announce(`+${clientId}`);
    return true;
  }

  /** Enables a client again. Returns `false` when it was not disabled (nothing written). */
  async enable(clientId: string): Promise<boolean> {
    if (!(await this.isDisabledInStore(clientId))) return false;
    this.apply(clientId, false);
    await this.store.removeFromSet(DISABLED_CLIENTS_KEY, [clientId]);
    await this.announce(`-${clientId}`);
    return true;
  }

  /** Re-reads the whole list from the store (one re-read at a time). */
  refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
      this.heardWhileReading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<void> {
    this.heardWhileReading = new Map();
    const next = await readDisabledClients(this.store);
    for (const [clientId, disabled] of this.heardWhileReading) {
      if (disabled) next.add(clientId);
      else next.delete(clientId);
    }
    this.disabled = next;
  }

  private announce(message: Announcement): Promise<void> {
    return this.store.publish(DISABLED_CLIENTS_CHANNEL, message);
  }

  private heard(message: string): void {
    const clientId = message.slice(1);
    if (clientId.length === 0) return;
    if (message.startsWith('+')) this.apply(clientId, true);
    else if (message.startsWith('-')) this.apply(clientId, false);
  }

  private apply(clientId: string, disabled: boolean): void {
    if (disabled) this.disabled.add(clientId);
    else this.disabled.delete(clientId);
    this.heardWhileReading?.set(clientId, disabled);
  }
}
