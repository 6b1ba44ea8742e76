/**
 * Client governance shared by `mcp-gateway clients list|revoke` and the admin console
 * (`/admin/clients`): the listing with each client's use, and the revocation of every grant a
 * client holds. The caller says how a grant is revoked and a registration deleted (the running
 * service through its provider's adapters, the command line through adapters of its own on the
 * same store) and who is acting, for the audit trail.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import type { ConsentMemory } from '../oauth/consent-memory.js';
import { ACCOUNT_CLIENT_ID } from '../oauth/provider.js';
import type { Store } from '../store/store.js';
import { ClientDirectory, type ClientInfo } from './clients.js';
import { GrantDirectory } from './grants.js';

export interface ClientListing {
  client: ClientInfo;
  /** Live grants (users who authorized it). */
  grants: number;
  /**
   * The latest of the client's own record (a DCR client's lookups, to the day; a CIMD
   * client's token requests, to the hour) and its grants' last token requests.
   */
  lastUse: number | undefined;
}

/** Every client: pre-registered, DCR, CIMD (seen obtaining tokens), built-in. */
export async function listClientsWithUse(
  store: Store,
  config: Pick<GatewayConfig, 'clients'>,
): Promise<ClientListing[]> {
  const grants = new GrantDirectory(store);
  const listing: ClientListing[] = [];
  for (const client of await new ClientDirectory(store, config).list()) {
    const held = await grants.forClient(client.clientId, { prune: false });
    const lastUse = Math.max(
      client.lastSeenAt ?? 0,
      ...held.map((grant) => grant.lastUse ?? grant.firstUse ?? 0),
    );
    listing.push({ client, grants: held.length, lastUse: lastUse > 0 ? lastUse : undefined });
  }
  return listing;
}

export interface ClientRevocationOptions {
  clientId: string;
  store: Store;
  config: Pick<GatewayConfig, 'clients'>;
  consents: ConsentMemory;
  /** The store adapter's `revokeByGrantId` (refresh tokens deleted, revocation list told). */
  revokeGrant: (grantId: string) => Promise<void>;
  /** Deletes a DCR client's registration. */
  deleteRegistration: (clientId: string) => Promise<void>;
  /** Absent with `audit.enabled: false`. */
  audit: AuditLog | undefined;
  /** Who did it: `cli:<os user>`, `admin:<account>`. */
  actor: string;
  /** Extra fields for the audit records (e.g. the admin's `ip`). */
  auditFields?: Record<string, string | undefined>;
}

export type ClientRevocation =
  | { outcome: 'built-in' }
  | { outcome: 'not-found' }
  | {
      outcome: 'revoked';
      client: ClientInfo;
      grants: number;
      registrationDeleted: boolean;
    };

/**
 * Revokes every grant of a client, forgets the users' remembered consent for it, and deletes
 * a DCR client's registration. A pre-registered client stays configured, a CIMD client can ask
 * users again. Writes `grant_revoked` per grant and one `admin_change` to the audit trail.
 */
export async function revokeClientAccess(
  options: ClientRevocationOptions,
): Promise<ClientRevocation> {
  const { clientId, store, audit, actor } = options;
  if (clientId === ACCOUNT_CLIENT_ID) return { outcome: 'built-in' };
  const client = await new ClientDirectory(store, options.config).describe(clientId);
  const grants = await new GrantDirectory(store).forClient(clientId);
  const registered = client.kind === 'dcr' && client.known;
  const seen = client.kind !== 'cimd' || client.createdAt !== undefined;
  if (grants.length === 0 && (client.kind === 'dcr' ? !registered : !seen)) {
    return { outcome: 'not-found' };
  }
  for (const grant of grants) {
    await options.revokeGrant(grant.grantId);
    await options.consents.forget(grant.accountId, clientId);
  }
  if (registered) await options.deleteRegistration(clientId);

  const extra = options.auditFields ?? {};
  for (const grant of grants) {
    void audit?.append('grant_revoked', {
      actor,
      reason: 'admin',
      subject: grant.accountId,
      clientId,
      grantId: grant.grantId,
      ...extra,
    });
  }
  void audit?.append('admin_change', {
    actor,
    change: 'revoke-client',
    clientId,
    clientKind: client.kind,
    grants: grants.length,
    registrationDeleted: registered,
    ...extra,
  });
  return { outcome: 'revoked', client, grants: grants.length, registrationDeleted: registered };
}
