/**
 * What the gateway knows about a client, whatever kind it is, for the "connected apps" page
 * and `mcp-gateway clients list|revoke`:
 *
 * - pre-registered: `clients:` in the configuration;
 * - DCR (dynamically registered): the store's `oidc:Client:<id>` records, listed in
 *   {@link DCR_CLIENT_INDEX};
 * - CIMD (Client ID Metadata Document, an https client id): oidc-provider keeps the documents
 *   only in its in-process cache, so the gateway records each CIMD client that obtains tokens
 *   ({@link CimdClientLog}, fed from src/account/usage.ts) in {@link CIMD_CLIENT_INDEX}. A CIMD
 *   client is therefore listed once a user has authorized it and it redeemed a code, not when
 *   someone merely names it at `/authorize` (which anyone can do with any URL);
 * - built-in: the gateway's own account-page client.
 *
 * Everything is read from the store and the configuration alone, so the command line reads
 * it exactly as the service does.
 */
import type { GatewayConfig } from '../config/schema.js';
import { ACCOUNT_CLIENT_ID } from '../oauth/constants.js';
import { CLIENT_EXPIRES, CLIENT_LAST_USED } from '../oauth/store-adapter.js';
import { CIMD_CLIENT_INDEX, cimdClientKey, DCR_CLIENT_INDEX, recordKey } from '../store/keys.js';
import type { JsonObject, Store } from '../store/store.js';

export type ClientKind = 'dcr' | 'cimd' | 'pre-registered' | 'built-in';

export interface ClientInfo {
  clientId: string;
  kind: ClientKind;
  /** The name the client gave itself (unverified, except a CIMD document's host). */
  name: string | undefined;
  /** Hosts of its redirect URIs. */
  redirectHosts: string[];
  /**
   * The host that vouches for the client: a CIMD client id's own host (it published the
   * document); for the others, the host of its redirect URIs.
   */
  host: string | undefined;
  /** Registration (DCR) or first time seen (CIMD). Epoch seconds. */
  createdAt: number | undefined;
  /**
   * Last time seen in use: DCR lookups (to the day, or to a tenth of `clientTtl` when that is
   * shorter), CIMD token requests (to the hour).
   */
  lastSeenAt: number | undefined;
  /**
   * DCR only: when its registration expires unless it is used again
   * (`registration.dcr.clientTtl` after its last use; unknown for records written before this
   * was recorded, until the client is used).
   */
  expiresAt?: number | undefined;
  /** False when the gateway no longer has the client (an expired or deleted DCR client). */
  known: boolean;
}

interface CimdRecord extends JsonObject {
  name?: string;
  redirectHosts?: string[];
  firstSeen?: number;
  lastSeen?: number;
}

export function isCimdClientId(clientId: string): boolean {
  return clientId.startsWith('https://') && URL.canParse(clientId);
}

/** The distinct hosts (`host:port`) of a list of redirect URIs. */
export function redirectHosts(uris: unknown): string[] {
  if (!Array.isArray(uris)) return [];
  const hosts = uris.flatMap((uri) => {
    const url = typeof uri === 'string' ? URL.parse(uri) : null;
    return url ? [url.host] : [];
  });
  return [...new Set(hosts)];
}

const epoch = (value: unknown) =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

export class ClientDirectory {
  private readonly configured: Map<string, GatewayConfig['clients'][number]>;

  constructor(
    private readonly store: Store,
    config: Pick<GatewayConfig, 'clients'>,
  ) {
    this.configured = new Map(config.clients.map((client) => [client.client_id, client]));
  }

  async describe(clientId: string): Promise<ClientInfo> {
    if (clientId === ACCOUNT_CLIENT_ID) {
      return {
        clientId,
        kind: 'built-in',
        name: 'MCP Gateway account',
        redirectHosts: [],
        host: undefined,
        createdAt: undefined,
        lastSeenAt: undefined,
        known: true,
      };
    }
    const configured = this.configured.get(clientId);
    if (configured) {
      const hosts = redirectHosts(configured.redirect_uris);
      return {
        clientId,
        kind: 'pre-registered',
        name: configured.client_name,
        redirectHosts: hosts,
        host: hosts[0],
        createdAt: undefined,
        lastSeenAt: undefined,
        known: true,
      };
    }
    if (isCimdClientId(clientId)) {
      const record = await this.store.get<CimdRecord>(cimdClientKey(clientId));
      return {
        clientId,
        kind: 'cimd',
        name: typeof record?.name === 'string' ? record.name : undefined,
        redirectHosts: Array.isArray(record?.redirectHosts) ? record.redirectHosts : [],
        host: new URL(clientId).host,
        createdAt: epoch(record?.firstSeen),
        lastSeenAt: epoch(record?.lastSeen),
        // The document is what defines it; the gateway fetches it again whenever needed.
        known: true,
      };
    }
    const record = await this.store.get(recordKey('Client', clientId));
    const hosts = redirectHosts(record?.redirect_uris);
    return {
      clientId,
      kind: 'dcr',
      name: typeof record?.client_name === 'string' ? record.client_name : undefined,
      redirectHosts: hosts,
      host: hosts[0],
      createdAt: epoch(record?.client_id_issued_at),
      lastSeenAt: epoch(record?.[CLIENT_LAST_USED]),
      expiresAt: epoch(record?.[CLIENT_EXPIRES]),
      known: record !== undefined,
    };
  }

  /** Every client the gateway knows: pre-registered, DCR (not expired), CIMD (seen). */
  async list(): Promise<ClientInfo[]> {
    const ids = [
      ...this.configured.keys(),
      ...(await this.store.setMembers(DCR_CLIENT_INDEX)).sort(),
      ...(await this.store.setMembers(CIMD_CLIENT_INDEX)).sort(),
    ];
    const clients: ClientInfo[] = [];
    for (const id of new Set(ids)) {
      const client = await this.describe(id);
      // Index members outlive their records (expiry); those clients no longer exist.
      if (client.kind === 'cimd' && client.createdAt === undefined) continue;
      if (client.known) clients.push(client);
    }
    return clients;
  }
}

/**
 * Records the CIMD clients that obtain tokens, with the name and redirect hosts their
 * document gave, first and last seen. Written at most once per `minIntervalSeconds` per client
 * and process (token requests are frequent; the record needs no precision beyond that).
 */
export class CimdClientLog {
  private readonly written = new Map<string, number>();

  constructor(
    private readonly store: Store,
    /** How long a client stays listed after it was last seen. */
    private readonly ttlSeconds: number,
    private readonly minIntervalSeconds = 3600,
  ) {}

  async seen(client: {
    clientId: string;
    clientName?: string | undefined;
    redirectUris?: unknown;
  }) {
    if (!isCimdClientId(client.clientId)) return;
    const now = Math.floor(Date.now() / 1000);
    const last = this.written.get(client.clientId);
    if (last !== undefined && now - last < this.minIntervalSeconds) return;
    if (this.written.size >= 10_000) this.written.clear();
    this.written.set(client.clientId, now);
    const key = cimdClientKey(client.clientId);
    const previous = await this.store.get<CimdRecord>(key);
    const record: CimdRecord = {
      ...(client.clientName ? { name: client.clientName } : {}),
      redirectHosts: redirectHosts(client.redirectUris),
      firstSeen: epoch(previous?.firstSeen) ?? now,
      lastSeen: now,
    };
    await this.store.set(key, record, this.ttlSeconds);
    await this.store.addToSet(CIMD_CLIENT_INDEX, [client.clientId], this.ttlSeconds);
  }
}
