/**
 * What is kept between the redirect to an upstream provider and its callback: the
 * interaction it belongs to and the provider's pending state (`state`, PKCE verifier,
 * `nonce`), found by the upstream `state`, for `tokens.loginTtl`, used once.
 */
import { upstreamLoginKey } from '../../store/keys.js';
import type { Store } from '../../store/store.js';
import type { PendingUpstreamLogin } from '../providers/provider.js';

export interface UpstreamLoginRecord {
  uid: string;
  providerId: string;
  pending: PendingUpstreamLogin;
}

export class UpstreamLogins {
  constructor(
    private readonly store: Pick<Store, 'set' | 'get' | 'take'>,
    private readonly ttlSeconds: number,
  ) {}

  async keep(record: UpstreamLoginRecord): Promise<void> {
    await this.store.set(upstreamLoginKey(record.pending.state), { ...record }, this.ttlSeconds);
  }

  /** The record, left in place (the first callback step only moves the browser). */
  async peek(state: string): Promise<UpstreamLoginRecord | undefined> {
    return this.store.get<UpstreamLoginRecord & Record<string, unknown>>(upstreamLoginKey(state));
  }

  /** The record, removed: a replayed callback finds nothing. */
  async take(state: string): Promise<UpstreamLoginRecord | undefined> {
    return this.store.take<UpstreamLoginRecord & Record<string, unknown>>(upstreamLoginKey(state));
  }
}
