/**
 * Accounts: who a user is, as their identity provider told us at their last login.
 *
 * The auth service has no user database of its own; an account record is written at every
 * login and lives as long as a refresh token could, so that refreshing re-reads the current
 * record (group changes take effect at the next login). The subject is namespaced by the
 * provider that vouched for it (`oidc:<provider>:<sub>`, `dev:<email>`) so that two
 * providers can never mint the same subject.
 */
import type { Store } from '../store/store.js';

export interface Identity {
  /** The gateway-wide subject; see module comment for its form. */
  sub: string;
  /** The login provider id (`dev`, or a `login.oidc[].id`). */
  provider: string;
  email?: string | undefined;
  emailVerified?: boolean | undefined;
  name?: string | undefined;
  groups?: string[] | undefined;
}

const accountKey = (sub: string) => `account:${sub}`;

export class AccountStore {
  constructor(
    private readonly store: Store,
    private readonly ttlSeconds: number,
  ) {}

  async save(identity: Identity): Promise<void> {
    await this.store.set(accountKey(identity.sub), { ...identity }, this.ttlSeconds);
  }

  async find(sub: string): Promise<Identity | undefined> {
    return this.store.get<Identity & Record<string, unknown>>(accountKey(sub));
  }
}
