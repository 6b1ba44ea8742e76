/**
 * `mcp-gateway clients …`: client governance from a terminal, on the store of a running
 * service (Redis; the embedded default's memory store lives inside the service process).
 *
 *   clients pending-hosts          CIMD hosts waiting for approval (registration.cimd.requireApproval)
 *   clients approved-hosts         hosts approved so far
 *   clients approve-host HOST      approve a host: its client ids work from the next request
 *   clients unapprove-host HOST    withdraw an approval
 */
import type { GatewayConfig } from '../config/schema.js';
import { createStore } from '../gateway.js';
import { createLogger } from '../logging/logger.js';
import { AuditLog } from '../audit/audit-log.js';
import { ClientHostApprovals } from '../oauth/client-hosts.js';
import { userInfo } from 'node:os';
import { EXIT, type CliIo } from './io.js';

const USAGE = `usage: mcp-gateway clients pending-hosts|approved-hosts [--config FILE]
       mcp-gateway clients approve-host|unapprove-host HOST [--config FILE]
`;

const HOST = /^[a-z0-9.-]{1,253}$/i;

export async function runClientsCommand(
  argv: string[],
  config: GatewayConfig,
  io: CliIo,
): Promise<number> {
  const [action, host, ...rest] = argv;
  const needsHost = action === 'approve-host' || action === 'unapprove-host';
  const listing = action === 'pending-hosts' || action === 'approved-hosts';
  if ((!needsHost && !listing) || rest.length > 0 || (needsHost ? !host : host !== undefined)) {
    io.stderr(USAGE);
    return EXIT.usage;
  }
  if (needsHost && !HOST.test(host!)) {
    io.stderr(`not a host name: ${host}\n`);
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
  try {
    const approvals = new ClientHostApprovals(store, config.registration.cimd.onlyHosts);
    if (action === 'pending-hosts') io.stdout(lines(await approvals.pending()));
    if (action === 'approved-hosts') io.stdout(lines(await approvals.approved()));
    if (needsHost) {
      if (action === 'approve-host') await approvals.approve(host!);
      else await approvals.revoke(host!);
      // Admin changes go into the audit trail, with the operating-system user who made them.
      if (config.audit.enabled) {
        const audit = new AuditLog({ store, maxRecords: config.audit.maxRecords, logger });
        void audit.append('admin_change', {
          actor: `cli:${userInfo().username}`,
          change: action,
          host: host!.toLowerCase(),
        });
        await audit.close();
      }
      io.stdout(
        `${action === 'approve-host' ? 'approved' : 'approval withdrawn for'} ${host!.toLowerCase()}\n`,
      );
    }
    return EXIT.ok;
  } catch (error) {
    io.stderr(`clients: ${(error as Error).message}\n`);
    return EXIT.failed;
  } finally {
    await store.close();
  }
}

function lines(items: string[]): string {
  return items.map((item) => `${item}\n`).join('');
}
