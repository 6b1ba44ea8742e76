/**
 * oidc-provider's persistence adapter, on top of the gateway {@link Store}.
 *
 * Key layout (src/store/keys.ts; the store adds its own prefix): `oidc:<Model>:<id>` for records,
 * `oidc:grant:<grantId>` for the set of records issued under a grant (so a grant can be
 * revoked in one go), `oidc:uid:<uid>` for the interaction-session index.
 *
 * Grants are also indexed by account (`oidc:account-grants:<accountId>`, read by the
 * "connected apps" page, src/account/) and by client (`oidc:client-grants:<clientId>`, read by
 * `mcp-gateway clients revoke`): sets of grant ids, with the grant's TTL, added to whenever a
 * Grant is saved and removed from when it is destroyed or revoked. A grant that simply
 * expires stays in its sets until a reader notices its record is gone and prunes it (or the
 * set itself expires). `oidc:grant-use:<grantId>` (written by src/account/usage.ts) is when the
 * grant last got tokens; it goes with the grant.
 *
 * Clients: only dynamically registered clients pass through the adapter (pre-registered
 * ones live in the configuration, CIMD clients in oidc-provider's document cache), so every
 * `Client` record gets the DCR expiry and is counted in {@link DCR_CLIENT_INDEX}. The expiry
 * is pushed back when the client is used: oidc-provider looks the client up (`find`) for
 * every authorization, code exchange, refresh and registration management request. The record
 * carries when that last happened and when it now expires ({@link CLIENT_LAST_USED},
 * {@link CLIENT_EXPIRES}; kept from oidc-provider, which would reject unknown metadata), for
 * `mcp-gateway clients list` and the admin console.
 *
 * Single use: `consume()` is atomic ({@link Store.markConsumed}). oidc-provider checks
 * `consumed` before it calls `consume()`, which leaves a window in which two concurrent
 * redemptions of one authorization code or refresh token could both pass the check. The
 * atomic mark closes it: the loser gets `invalid_grant`, and, as for any replay, the whole
 * grant is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14.2).
 */
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { JsonObject, Store } from '../store/store.js';
import {
  accountGrantsKey,
  clientGrantsKey,
  DCR_CLIENT_INDEX,
  DISABLED_CLIENTS_KEY,
  grantRecordsKey,
  grantUseKey,
  recordKey,
  sessionUidKey,
} from '../store/keys.js';

/** Models whose records belong to a grant and die with it. */
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

/** Field of a DCR client record: its last use, epoch seconds (precision: the touch interval). */
export const CLIENT_LAST_USED = 'x-last-used-at';
/** Field of a DCR client record: when the store expires it unless it is used, epoch seconds. */
export const CLIENT_EXPIRES = 'x-expires-at';

export interface AdapterOptions {
  /** TTL for dynamically registered clients, renewed when they are used. */
  dcrClientTtl: number;
  /**
   * Told of every grant revocation: oidc-provider revokes through `revokeByGrantId` (refresh
   * token reuse, code replay, the revocation endpoint), and so do the gateway's own features.
   */
  onGrantRevoked?: (grantId: string) => Promise<void>;
  /**
   * Clients whose grants are kept out of the account and client indexes: the gateway's own
   * account-page client, whose grants are no "connected app" and would otherwise pile up one
   * per sign-in in its client index.
   */
  unindexedClients?: string[];
}

/** The fields of a stored Grant record the indexes need. */
interface GrantOwners {
  accountId?: unknown;
  clientId?: unknown;
}

/**
 * How often (seconds) at most a DCR client's expiry is pushed back when it is used: a day, or
 * a tenth of `dcrClientTtl` when that is shorter (a client in use then always has at least
 * nine tenths of its lifetime ahead; with a day for every lifetime, a lifetime under a day
 * would never be extended).
 */
const CLIENT_TOUCH_INTERVAL = 24 * 3600;

export function createAdapterFactory(store: Store, options: AdapterOptions) {
  const unindexed = new Set(options.unindexedClients ?? []);
  const touchInterval = Math.min(CLIENT_TOUCH_INTERVAL, Math.floor(options.dcrClientTtl / 10));

  /** A DCR client record as stored: used now, expiring `dcrClientTtl` from now. */
  const clientRecord = (record: JsonObject, now: number): JsonObject => ({
    ...record,
    [CLIENT_LAST_USED]: now,
    [CLIENT_EXPIRES]: now + options.dcrClientTtl,
  });

  /** The index sets a grant belongs to (none for an unindexed client). */
  const grantIndexes = (grant: GrantOwners): string[] => {
    const { accountId, clientId } = grant;
    if (typeof accountId !== 'string' || typeof clientId !== 'string') return [];
    if (unindexed.has(clientId)) return [];
    return [accountGrantsKey(accountId), clientGrantsKey(clientId)];
  };

  const unindexGrant = async (grantId: string, grant: GrantOwners | undefined) => {
    for (const key of grant ? grantIndexes(grant) : []) await store.removeFromSet(key, [grantId]);
    await store.delete(grantUseKey(grantId));
  };

  return class StoreAdapter implements Adapter {
    constructor(private readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      const key = recordKey(this.model, id);
      let ttl: number | undefined = expiresIn > 0 ? expiresIn : undefined;
      let record: JsonObject = { ...payload };
      if (this.model === 'Client') {
        ttl = options.dcrClientTtl;
        record = clientRecord(record, Math.floor(Date.now() / 1000));
        await store.addToSet(DCR_CLIENT_INDEX, [id]);
      }
      await store.set(key, record, ttl);
      if (GRANTABLE.has(this.model) && payload.grantId) {
        await store.addToSet(grantRecordsKey(payload.grantId), [key], ttl);
      }
      if (this.model === 'Session' && payload.uid) {
        await store.set(sessionUidKey(payload.uid), { id }, ttl);
      }
      if (this.model === 'Grant') {
        for (const index of grantIndexes(payload)) await store.addToSet(index, [id], ttl);
      }
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      const record = await store.get<AdapterPayload & JsonObject>(recordKey(this.model, id));
      if (record && this.model === 'Client') {
        await touchClient(id, record);
      }
      return record ? withoutInternalFields(record) : undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const index = await store.get<{ id: string }>(sessionUidKey(uid));
      return index ? this.find(index.id) : undefined;
    }

    async findByUserCode(): Promise<AdapterPayload | undefined> {
      // The device flow is not enabled; nothing is ever stored by user code.
      return undefined;
    }

    async consume(id: string): Promise<void> {
      const key = recordKey(this.model, id);
      const marked = await store.markConsumed(key, 'consumed', Math.floor(Date.now() / 1000));
      if (!marked) {
        const record = await store.get<AdapterPayload & JsonObject>(key);
        if (record?.grantId) await this.revokeByGrantId(record.grantId);
        throw new errors.InvalidGrant(
          `${this.model === 'RefreshToken' ? 'refresh token' : 'grant'} already used`,
        );
      }
    }

    async destroy(id: string): Promise<void> {
      const grant =
        this.model === 'Grant'
          ? await store.get<GrantOwners & JsonObject>(recordKey('Grant', id))
          : undefined;
      await store.delete(recordKey(this.model, id));
      if (this.model === 'Client') {
        await store.removeFromSet(DCR_CLIENT_INDEX, [id]);
        // A deleted registration takes its disabled mark with it: the id is never issued
        // again, so the mark would only linger (each replica drops it at its next re-read).
        await store.removeFromSet(DISABLED_CLIENTS_KEY, [id]);
      }
      if (this.model === 'Grant') await unindexGrant(id, grant);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      // A revocation that cannot be recorded (a full store) still deletes the grant's records
      // (deleting needs no room): its refresh tokens and codes stop working, and the error
      // then reaches oidc-provider, which fails the request.
      let unrecorded: { error: unknown } | undefined;
      try {
        await options.onGrantRevoked?.(grantId);
      } catch (error) {
        unrecorded = { error };
      }
      const grant = await store.get<GrantOwners & JsonObject>(recordKey('Grant', grantId));
      const members = await store.setMembers(grantRecordsKey(grantId));
      await store.delete(...members, grantRecordsKey(grantId), recordKey('Grant', grantId));
      // oidc-provider calls this once per model (codes, access and refresh tokens): only the
      // first call still finds the record, and that one is enough.
      if (grant) await unindexGrant(grantId, grant);
      if (unrecorded) throw unrecorded.error;
    }
  };

  async function touchClient(id: string, record: JsonObject): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    const lastUsed = typeof record[CLIENT_LAST_USED] === 'number' ? record[CLIENT_LAST_USED] : 0;
    if (now - lastUsed < touchInterval) return;
    await store.set(recordKey('Client', id), clientRecord(record, now), options.dcrClientTtl);
  }
}

function withoutInternalFields(record: JsonObject): AdapterPayload {
  const { [CLIENT_LAST_USED]: _lastUsed, [CLIENT_EXPIRES]: _expires, ...rest } = record;
  return rest as AdapterPayload;
}
