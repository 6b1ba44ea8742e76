/**
 * CSRF protection for the login and consent forms: a synchronizer token per interaction,
 * kept in the store (so any replica can check it), compared in constant time, and valid only
 * for the interaction it was issued for. A cross-site page can neither read the token nor
 * ride the interaction cookie (SameSite=Lax cookies are not sent on cross-site POSTs), so
 * both layers would have to fail for a forged approval to pass (checklist AS-10).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';

const csrfKey = (uid: string) => `csrf:${uid}`;

export class CsrfTokens {
  constructor(
    private readonly store: Store,
    private readonly ttlSeconds: number,
  ) {}

  /** The token for this interaction, created on first use. */
  async issue(uid: string): Promise<string> {
    const existing = await this.store.get<{ token: string }>(csrfKey(uid));
    if (existing) return existing.token;
    const token = randomBytes(24).toString('base64url');
    if (await this.store.setIfAbsent(csrfKey(uid), { token }, this.ttlSeconds)) return token;
    return (await this.store.get<{ token: string }>(csrfKey(uid)))?.token ?? token;
  }

  async verify(uid: string, presented: unknown): Promise<boolean> {
    if (typeof presented !== 'string' || presented.length === 0) return false;
    const stored = await this.store.get<{ token: string }>(csrfKey(uid));
    if (!stored) return false;
    const a = Buffer.from(stored.token);
    const b = Buffer.from(presented);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  async discard(uid: string): Promise<void> {
    await this.store.delete(csrfKey(uid));
  }
}
