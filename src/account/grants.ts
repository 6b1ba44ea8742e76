/**
 * Reading grants the way a person thinks of them: which applications hold access, to what,
 * since when, and when they last used it. The indexes are kept by the store adapter
 * (src/oauth/store-adapter.ts: per account and per client); the records are oidc-provider's
 * own Grant records, read straight from the store, so that the command line (which has no
 * oidc-provider) reads them the same way the service does.
 */
import { accountGrantsKey, clientGrantsKey, grantUseKey, recordKey } from '../store/keys.js';
import type { JsonObject, Store } from '../store/store.js';

export interface GrantSummary {
  grantId: string;
  accountId: string;
  clientId: string;
  /** Approved scopes per resource (canonical URL). */
  resources: { url: string; scopes: string[] }[];
  /** Approved OpenID scopes (`openid`, `email`, …). */
  oidcScopes: string[];
  /** When the grant was made (the user's consent): its first use. Epoch seconds. */
  firstUse: number | undefined;
  /** When the client last got tokens under it (code exchange or refresh). Epoch seconds. */
  lastUse: number | undefined;
  /** When the grant expires unless it is used again. Epoch seconds. */
  expiresAt: number | undefined;
}

interface StoredGrant extends JsonObject {
  accountId?: unknown;
  clientId?: unknown;
  resources?: unknown;
  openid?: unknown;
  iat?: unknown;
  exp?: unknown;
}

/** Grant ids are oidc-provider's opaque ids: URL-safe characters, bounded length. */
const GRANT_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function isGrantId(value: string): boolean {
  return GRANT_ID.test(value);
}

const splitScope = (value: unknown) =>
  typeof value === 'string' ? value.split(' ').filter(Boolean) : [];
const epoch = (value: unknown) =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

export class GrantDirectory {
  constructor(private readonly store: Store) {}

  /** One grant, or `undefined` when it does not exist (any more). */
  async find(grantId: string): Promise<GrantSummary | undefined> {
    if (!isGrantId(grantId)) return undefined;
    const record = await this.store.get<StoredGrant>(recordKey('Grant', grantId));
    if (!record) return undefined;
    const { accountId, clientId } = record;
    if (typeof accountId !== 'string' || typeof clientId !== 'string') return undefined;
    const resources = Object.entries(
      record.resources && typeof record.resources === 'object'
        ? (record.resources as Record<string, unknown>)
        : {},
    ).map(([url, scope]) => ({ url, scopes: splitScope(scope) }));
    const use = await this.store.get<{ at?: unknown }>(grantUseKey(grantId));
    return {
      grantId,
      accountId,
      clientId,
      resources,
      oidcScopes: splitScope((record.openid as { scope?: unknown } | undefined)?.scope),
      firstUse: epoch(record.iat),
      lastUse: epoch(use?.at),
      expiresAt: epoch(record.exp),
    };
  }

  /** The grants of an account, most recently used first. */
  forAccount(accountId: string, options: { prune?: boolean } = {}): Promise<GrantSummary[]> {
    return this.fromIndex(
      accountGrantsKey(accountId),
      options.prune ?? true,
      (grant) => grant.accountId === accountId,
    );
  }

  /** The grants of a client, most recently used first. */
  forClient(clientId: string, options: { prune?: boolean } = {}): Promise<GrantSummary[]> {
    return this.fromIndex(
      clientGrantsKey(clientId),
      options.prune ?? true,
      (grant) => grant.clientId === clientId,
    );
  }

  /** Records that the grant got tokens now; kept as long as the grant may live. */
  async recordUse(grantId: string, ttlSeconds: number): Promise<void> {
    await this.store.set(
      grantUseKey(grantId),
      { at: Math.floor(Date.now() / 1000) },
      Math.max(1, Math.ceil(ttlSeconds)),
    );
  }

  private async fromIndex(
    key: string,
    prune: boolean,
    belongs: (grant: GrantSummary) => boolean,
  ): Promise<GrantSummary[]> {
    const ids = await this.store.setMembers(key);
    const found: GrantSummary[] = [];
    const gone: string[] = [];
    for (const id of ids) {
      const grant = await this.find(id);
      // A grant whose owner does not match is never shown (an index can only be wrong if
      // someone wrote to the store behind the service's back).
      if (grant && belongs(grant)) found.push(grant);
      else if (!grant) gone.push(id);
    }
    // Grants that expired (or were revoked by an older version) leave their id behind.
    if (prune && gone.length > 0) await this.store.removeFromSet(key, gone);
    return found.sort((a, b) => (b.lastUse ?? b.firstUse ?? 0) - (a.lastUse ?? a.firstUse ?? 0));
  }
}
