/**
 * Client governance shared by `mcp-gateway clients list|revoke|disable|enable` and the admin
 * console (`/admin/clients`): the listing with each client's use, the revocation of every grant
 * a client holds, and disabling or enabling a client. The caller says how a grant is revoked
 * and a registration deleted (the running service through its provider's adapters, the command
 * line through adapters of its own on the same store) and who is acting, for the audit trail.
 */
import { GrantDirectory } from '../account/grants.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import type { ConsentMemory } from '../oauth/consent-memory.js';
import { ACCOUNT_CLIENT_ID } from '../oauth/constants.js';
import type { Store } from '../store/store.js';
import { ClientDirectory, type ClientInfo } from './directory.js';
import { readDisabledClients } from './disabled-clients.js';

export interface ClientListing {
  client: ClientInfo;
  /** Live grants (users who authorized it). */
  grants: number;
  /**
   * The latest of the client's own record (a DCR client's lookups, to the day; a CIMD
   * client's token requests, to the hour) and its grants' last token requests.
   */
  lastUse: number | undefined;
  /** Disabled by an administrator (its tokens refused, its grants kept). */
  disabled: boolean;
}

/** Every client: pre-registered, DCR, CIMD (seen obtaining tokens), built-in. */
export async function listClientsWithUse(
  store: Store,
  config: Pick<GatewayConfig, 'clients'>,
): Promise<ClientListing[]> {
  const grants = new GrantDirectory(store);
  const disabled = await readDisabledClients(store);
  const listing: ClientListing[] = [];
  for (const client of await new ClientDirectory(store, config).list()) {
    const held = await grants.forClient(client.clientId, { prune: false });
    const lastUse = Math.max(
      client.lastSeenAt ?? 0,
      ...held.map((grant) => grant.lastUse ?? grant.firstUse ?? 0),
    );
    listing.push({
      client,
      grants: held.length,
      lastUse: lastUse > 0 ? lastUse : undefined,
      disabled: disabled.has(client.clientId),
    });
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

export interface ClientStateOptions {
  clientId: string;
  /** `true` to disable the client, `false` to enable it again. */
  disable: boolean;
  store: Store;
  config: Pick<GatewayConfig, 'clients'>;
  /** The disabled-clients list (src/clients/disabled-clients.ts): writes and announces. */
  disabledClients: {
    disable(clientId: string): Promise<boolean>;
    enable(clientId: string): Promise<boolean>;
  };
  /** Absent with `audit.enabled: false`. */
  audit: AuditLog | undefined;
  /** Who did it: `cli:<os user>`, `admin:<account>`. */
  actor: string;
  /** Extra fields for the audit record (e.g. the admin's `ip`). */
  auditFields?: Record<string, string | undefined>;
}

export type ClientStateChange =
  | { outcome: 'built-in' }
  | { outcome: 'not-found' }
  /** It was already in the requested state: nothing written, nothing audited. */
  | { outcome: 'unchanged'; client: ClientInfo }
  | { outcome: 'changed'; client: ClientInfo };

/**
 * Disables a client, or enables it again. Unlike a revocation nothing of the client is
 * deleted: while it is disabled `/verify` refuses its access tokens and the authorization
 * server refuses it at every endpoint (no authorization, no refresh), and enabling it makes
 * the same tokens and grants work again. Writes one `admin_change` (`disable-client` or
 * `enable-client`) to the audit trail.
 *
 * A client must be known to be disabled (the same rule as for a revocation: a DCR client still
 * registered, a CIMD client seen obtaining tokens, a configured one). Any disabled client can
 * be enabled, even one whose registration has expired since.
 */
export async function setClientDisabled(options: ClientStateOptions): Promise<ClientStateChange> {
  const { clientId, disable, store, audit, actor } = options;
  if (clientId === ACCOUNT_CLIENT_ID) return { outcome: 'built-in' };
  const client = await new ClientDirectory(store, options.config).describe(clientId);
  const exists = client.kind === 'cimd' ? client.createdAt !== undefined : client.known;
  if (disable && !exists) return { outcome: 'not-found' };
  const changed = disable
    ? await options.disabledClients.disable(clientId)
    : await options.disabledClients.enable(clientId);
  if (!changed) return exists ? { outcome: 'unchanged', client } : { outcome: 'not-found' };
  void audit?.append('admin_change', {
    actor,
    change: disable ? 'disable-client' : 'enable-client',
    clientId,
    clientKind: client.kind,
    ...(options.auditFields ?? {}),
  });
  return { outcome: 'changed', client };
}
