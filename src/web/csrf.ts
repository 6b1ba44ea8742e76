/**
 * CSRF protection for the gateway's forms: a synchronizer token per interaction (login and
 * consent) or per browser session (`/account`, `/admin`), kept in the store (so any replica
 * can check it), compared in constant time, and valid only for the key it was issued for. A
 * cross-site page can neither read the token nor ride the interaction cookie (SameSite=Lax
 * cookies are not sent on cross-site POSTs), so both layers would have to fail for a forged
 * approval to pass (checklist AS-10 in docs/security.md). form-check.ts checks it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { csrfKey } from '../store/keys.js';
import type { Store } from '../store/store.js';

/** The tokens of one kind of form, each valid for `ttlSeconds` after it is first issued. */
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

  /** Whether `presented` is the token issued for `uid`; it stays valid until discarded. */
  async verify(uid: string, presented: unknown): Promise<boolean> {
    if (typeof presented !== 'string' || presented.length === 0) return false;
    const stored = await this.store.get<{ token: string }>(csrfKey(uid));
    if (!stored) return false;
    const a = Buffer.from(stored.token);
    const b = Buffer.from(presented);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Ends the token of `uid`: once the form did its work, a replayed post fails. */
  async discard(uid: string): Promise<void> {
    await this.store.delete(csrfKey(uid));
  }
}
