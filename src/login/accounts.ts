/**
 * Accounts: who a user is, as their identity provider told us at their last login.
 *
 * The auth service has no user database of its own; an account record is written at every
 * login and lives as long as a refresh token could. Every refresh of a gateway token re-reads
 * it, and re-reads the identity from the provider first where the provider allows it
 * (src/login/reauthorization.ts), so that group changes take effect at the next refresh. The subject is namespaced by the
 * provider that vouched for it (`oidc:<provider>:<sub>`, `dev:<email>`) so that two
 * providers can never mint the same subject.
 */
import { accountKey } from '../store/keys.js';
import type { Store } from '../store/store.js';

export interface Identity {
  /** The gateway-wide subject; see module comment for its form. */
  sub: string;
  /** The login provider id (`dev`, or a `login.oidc[].id`). */
  provider: string;
  email?: string | undefined;
  emailVerified?: boolean | undefined;
  name?: string | undefined;
  /** Namespaced by the provider: `<provider>:<group>` (src/policy/groups.ts). */
  groups?: string[] | undefined;
  /** GitHub: the login name (for display; the subject uses the numeric id). */
  githubLogin?: string | undefined;
  /** GitHub: organization logins, lowercased (read only when a rule needs them). */
  githubOrgs?: string[] | undefined;
  /** GitHub: teams as `org/team-slug`, lowercased. */
  githubTeams?: string[] | undefined;
  /** Google: the Workspace domain (`hd`), absent for consumer accounts. */
  hostedDomain?: string | undefined;
}

/** The stored account: the identity, and the upstream session sealed (encrypted). */
export interface AccountRecord extends Identity {
  /** A {@link SessionSealer} JWE of the provider's {@link UpstreamSession}. */
  sealedSession?: string | undefined;
  /** When the identity was last read from the provider (seconds since the epoch). */
  checkedAt?: number | undefined;
}

export class AccountStore {
  constructor(
    private readonly store: Store,
    private readonly ttlSeconds: number,
  ) {}

  async save(record: AccountRecord): Promise<void> {
    const stored: Record<string, unknown> = {};
    // JSON has no `undefined`; the Redis store would refuse it.
    for (const [key, value] of Object.entries(record)) if (value !== undefined) stored[key] = value;
    await this.store.set(accountKey(record.sub), stored as never, this.ttlSeconds);
  }

  async find(sub: string): Promise<AccountRecord | undefined> {
    return this.store.get<AccountRecord & Record<string, unknown>>(accountKey(sub));
  }
}
