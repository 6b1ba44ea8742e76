/**
 * `mcp-gateway clients …`: client governance from a terminal, on the store of a running
 * service (Redis; the embedded default's memory store lives inside the service process).
 *
 *   clients list                   every client: pre-registered, DCR, CIMD (seen obtaining
 *                                  tokens); tab-separated, one line each, with a header
 *   clients revoke CLIENT_ID       revoke every grant of the client (its refresh tokens stop
 *                                  working, `/verify` refuses its access tokens on every
 *                                  replica) and, for a DCR client, delete its registration
 *   clients disable CLIENT_ID      disable the client, keeping its grants: `/verify` refuses
 *                                  its access tokens on every replica within seconds, and it
 *                                  can neither refresh nor be authorized
 *   clients enable CLIENT_ID       enable it again: the same grants and tokens work again
 *   clients pending-hosts          CIMD hosts waiting for approval (registration.cimd.requireApproval)
 *   clients approved-hosts         hosts approved so far
 *   clients approve-host HOST      approve a host: its client ids work from the next request
 *   clients unapprove-host HOST    withdraw an approval: the host's clients are refused at
 *                                  their next authorization or refresh (grants kept)
 */
import {
  createAuditLog,
  createDisabledClients,
  createOAuthAdapter,
  createRevocationList,
  createStore,
} from '../app/services.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import { createLogger, type Logger } from '../logging/logger.js';
import {
  listClientsWithUse,
  revokeClientAccess,
  setClientDisabled,
} from '../clients/governance.js';
import { ClientHostApprovals } from '../clients/host-approvals.js';
import { ConsentMemory } from '../oauth/consent-memory.js';
import type { Store } from '../store/store.js';
import { userInfo } from 'node:os';
import { EXIT, type CliIo } from './io.js';

const USAGE = `usage: mcp-gateway clients list [--config FILE]
       mcp-gateway clients revoke|disable|enable CLIENT_ID [--config FILE]
       mcp-gateway clients pending-hosts|approved-hosts [--config FILE]
       mcp-gateway clients approve-host|unapprove-host HOST [--config FILE]
`;

const HOST = /^[a-z0-9.-]{1,253}$/i;
/** Printable ASCII without spaces: DCR ids, https CIMD ids, configured ids. */
const CLIENT_ID = /^[\x21-\x7e]{1,2000}$/;

/**
 * Runs `clients …`. A composition like the service's (src/app/services.ts builds its store,
 * audit log and revocation list), so it takes the whole configuration and hands each part its
 * slice.
 */
export async function runClientsCommand(
  argv: string[],
  config: GatewayConfig,
  io: CliIo,
): Promise<number> {
  const [action, host, ...rest] = argv;
  const needsHost = action === 'approve-host' || action === 'unapprove-host';
  const needsClient = action === 'revoke' || action === 'disable' || action === 'enable';
  const listing = action === 'pending-hosts' || action === 'approved-hosts' || action === 'list';
  const needsArgument = needsHost || needsClient;
  if (
    (!needsArgument && !listing) ||
    rest.length > 0 ||
    (needsArgument ? !host : host !== undefined)
  ) {
    io.stderr(USAGE);
    return EXIT.usage;
  }
  if (needsHost && !HOST.test(host!)) {
    io.stderr(`not a host name: ${host}\n`);
    return EXIT.usage;
  }
  if (needsClient && !CLIENT_ID.test(host!)) {
    io.stderr(`not a client id: ${printable(host!)}\n`);
    return EXIT.usage;
  }
  if (!config.store.redis) {
    io.stderr(
      'this configuration uses the in-memory store, which only the running service can read: configure store.redis to manage clients from the command line\n',
    );
    return EXIT.failed;
  }
  const logger = createLogger({ level: 'error' });
  const store = createStore(config, logger);
  // Admin changes go into the audit trail, with the operating-system user who made them.
  const audit = listing ? undefined : createAuditLog(config, store, logger);
  const changed = { store, config, audit, actor: `cli:${userInfo().username}` };
  try {
    if (action === 'list') {
      io.stdout(await listClients(store, config));
      return EXIT.ok;
    }
    if (action === 'revoke') return await revokeClient(host!, changed, logger, io);
    if (action === 'disable' || action === 'enable') {
      return await setClientState(action === 'disable', host!, changed, logger, io);
    }
    const approvals = new ClientHostApprovals(store, config.registration.cimd.onlyHosts);
    if (action === 'pending-hosts') io.stdout(lines(await approvals.pending()));
    if (action === 'approved-hosts') io.stdout(lines(await approvals.approved()));
    if (needsHost) {
      if (action === 'approve-host') await approvals.approve(host!);
      else await approvals.revoke(host!);
      void audit?.append('admin_change', {
        actor: changed.actor,
        change: action,
        host: host!.toLowerCase(),
      });
      io.stdout(
        action === 'approve-host'
          ? `approved ${host!.toLowerCase()}\n`
          : `approval withdrawn for ${host!.toLowerCase()}: its clients are refused from their next authorization or refresh on every replica; their grants are kept (approve-host restores them), and access tokens already issued run out within tokens.accessTokenTtl (clients disable CLIENT_ID refuses them at once)\n`,
      );
    }
    return EXIT.ok;
  } catch (error) {
    io.stderr(`clients: ${(error as Error).message}\n`);
    return EXIT.failed;
  } finally {
    await audit?.close();
    await store.close();
  }
}

/** What a change made from the command line needs: where, under which rules, audited as whom. */
interface ChangeContext {
  store: Store;
  config: Pick<GatewayConfig, 'clients' | 'registration' | 'tokens' | 'verify'>;
  audit: AuditLog | undefined;
  actor: string;
}

function lines(items: string[]): string {
  return items.map((item) => `${item}\n`).join('');
}

/**
 * Text a client chose (its name) or sent (an id), made safe for a terminal and for the
 * tab-separated listing: control characters (escape sequences, tabs, newlines), format
 * characters (bidirectional overrides, zero-width) and line separators become `?`.
 */
function printable(text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '?');
}

function isoTime(epochSeconds: number | undefined): string {
  return epochSeconds === undefined
    ? '-'
    : new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const LIST_HEADER = [
  'KIND',
  'CLIENT_ID',
  'NAME',
  'REDIRECT_HOSTS',
  'CREATED',
  'LAST_USED',
  'GRANTS',
  'EXPIRES',
  'STATE',
];

/**
 * Every client, one tab-separated line each (GRANTS: live grants, users who authorized it;
 * EXPIRES: when an unused DCR client's registration expires; STATE: active or disabled).
 */
async function listClients(store: Store, config: Pick<GatewayConfig, 'clients'>): Promise<string> {
  const rows = [LIST_HEADER];
  for (const { client, grants, lastUse, disabled } of await listClientsWithUse(store, config)) {
    rows.push([
      client.kind,
      printable(client.clientId),
      printable(client.name ?? '-'),
      client.redirectHosts.map(printable).join(',') || '-',
      isoTime(client.createdAt),
      isoTime(lastUse),
      String(grants),
      client.kind === 'dcr' ? isoTime(client.expiresAt) : '-',
      disabled ? 'disabled' : 'active',
    ]);
  }
  return lines(rows.map((row) => row.join('\t')));
}

/**
 * Revokes every grant of a client, as the service itself would (the store adapter's
 * `revokeByGrantId`: refresh tokens deleted, the revocation list told, which every replica's
 * `/verify` hears at once or at its next poll), forgets the users' remembered consent for it,
 * and deletes a DCR client's registration (src/clients/governance.ts). A pre-registered
 * client stays configured, a CIMD client can ask users again: both are said in the output.
 */
async function revokeClient(
  clientId: string,
  { store, config, audit, actor }: ChangeContext,
  logger: Logger,
  io: CliIo,
): Promise<number> {
  const revocations = createRevocationList(config, store, logger);
  const Adapter = createOAuthAdapter(config.registration.dcr, store, (grantId) =>
    revocations.revoke(grantId),
  );
  const grantAdapter = new Adapter('Grant');
  const result = await revokeClientAccess({
    clientId,
    store,
    config,
    consents: new ConsentMemory(store, config.tokens.consentTtl),
    revokeGrant: (grantId) => grantAdapter.revokeByGrantId(grantId),
    deleteRegistration: (id) => new Adapter('Client').destroy(id),
    audit,
    actor,
  });
  if (result.outcome === 'built-in') {
    io.stderr(`${clientId} is the gateway's own account page client; it cannot be revoked\n`);
    return EXIT.failed;
  }
  if (result.outcome === 'not-found') {
    io.stderr(`no such client: ${printable(clientId)}\n`);
    return EXIT.failed;
  }
  const { client, grants, registrationDeleted } = result;
  const name = printable(clientId);
  const count = `${grants} grant${grants === 1 ? '' : 's'}`;
  if (registrationDeleted) io.stdout(`revoked ${count} of ${name} and deleted its registration\n`);
  else if (client.kind === 'pre-registered') {
    io.stdout(
      `revoked ${count} of ${name}; it stays configured (remove it from clients: to refuse new authorizations)\n`,
    );
  } else if (client.kind === 'cimd') {
    io.stdout(
      `revoked ${count} of ${name}; a CIMD client can ask users again (to refuse its host: registration.cimd.denyHosts, or unapprove-host with requireApproval)\n`,
    );
  } else io.stdout(`revoked ${count} of ${name} (its registration had already expired)\n`);
  return EXIT.ok;
}

/**
 * Disables a client (its grants kept) or enables it again, as the admin console does
 * (src/clients/governance.ts): the store's disabled-clients list is written and the change
 * announced, which every replica's `/verify` hears at once (or at its next poll), and the
 * authorization server reads at its next request.
 */
async function setClientState(
  disable: boolean,
  clientId: string,
  { store, config, audit, actor }: ChangeContext,
  logger: Logger,
  io: CliIo,
): Promise<number> {
  const result = await setClientDisabled({
    clientId,
    disable,
    store,
    config,
    disabledClients: createDisabledClients(config.verify, store, logger),
    audit,
    actor,
  });
  const name = printable(clientId);
  if (result.outcome === 'built-in') {
    io.stderr(`${clientId} is the gateway's own account page client; it cannot be disabled\n`);
    return EXIT.failed;
  }
  if (result.outcome === 'not-found') {
    io.stderr(disable ? `no such client: ${name}\n` : `${name} is not disabled (no such client)\n`);
    return EXIT.failed;
  }
  if (result.outcome === 'unchanged') {
    io.stdout(`${name} was already ${disable ? 'disabled' : 'enabled'}\n`);
  } else if (disable) {
    io.stdout(
      `disabled ${name}: its access tokens are refused and it cannot obtain new ones; its grants are kept (mcp-gateway clients enable ${name} restores it)\n`,
    );
  } else {
    io.stdout(`enabled ${name}: its grants and tokens work again\n`);
  }
  return EXIT.ok;
}
