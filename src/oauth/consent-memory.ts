/**
 * Remembered consent: what a user approved for a client, so that the consent page is shown
 * once per user and client (and again only when the client asks for more). Not for a public
 * client whose code goes to this computer (loopback or custom scheme): anyone local can use
 * its name, so it sees the page at every authorization (native-consent.ts, RFC 8252 §8.6).
 *
 * Kept server-side in the store, keyed by account and client, rather than in a cookie: the
 * decision then follows the user across browsers and cannot be forged or replayed from
 * another client (MCP Security Best Practices, "Confused Deputy Problem": consent is bound to
 * the specific `client_id`; a newly registered client always sees the consent page).
 */
import { consentKey } from '../store/keys.js';
import type { Store } from '../store/store.js';

export interface ConsentRecord {
  /** Approved scopes per resource (canonical URL). */
  resources: Record<string, string[]>;
  /** Approved OpenID scopes (`openid`, `email`, ...). */
  oidcScopes: string[];
}

export class ConsentMemory {
  constructor(
    private readonly store: Store,
    private readonly ttlSeconds: number,
  ) {}

  async find(accountId: string, clientId: string): Promise<ConsentRecord | undefined> {
    return this.store.get<ConsentRecord & Record<string, unknown>>(consentKey(accountId, clientId));
  }

  /** Adds an approval to what the user already approved for this client. */
  async remember(accountId: string, clientId: string, approved: ConsentRecord): Promise<void> {
    const previous = (await this.find(accountId, clientId)) ?? { resources: {}, oidcScopes: [] };
    const resources = { ...previous.resources };
    for (const [resource, scopes] of Object.entries(approved.resources)) {
      resources[resource] = [...new Set([...(resources[resource] ?? []), ...scopes])];
    }
    const oidcScopes = [...new Set([...previous.oidcScopes, ...approved.oidcScopes])];
    await this.store.set(
      consentKey(accountId, clientId),
      { resources, oidcScopes },
      this.ttlSeconds,
    );
  }

  async forget(accountId: string, clientId: string): Promise<void> {
    await this.store.delete(consentKey(accountId, clientId));
  }
}
