/**
 * `POST /admin/clients/disable` and `POST /admin/clients/enable`: an administrator disables a
 * client (its access tokens refused by `/verify` on every replica within seconds, the
 * authorization server refusing it at every endpoint) or enables it again, its grants intact.
 *
 * The same guard as every admin form (src/admin/guard.ts: administrator's session, same-origin
 * request, the page's CSRF token), the same shared code as `mcp-gateway clients
 * disable|enable` (`setClientDisabled`, src/clients/governance.ts), audited as
 * `admin_change` (`disable-client` / `enable-client`) with `actor: admin:<accountId>`.
 */
import type { RequestHandler } from 'express';
import { setClientDisabled } from '../clients/governance.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import type { DisabledClients } from '../clients/disabled-clients.js';
import type { Logger } from '../logging/logger.js';
import type { Store } from '../store/store.js';
import type { AdminGuard } from './guard.js';

/** Longest accepted client id (a CIMD client id is a URL). */
const MAX_CLIENT_ID = 2000;

export interface ClientStateDependencies {
  config: Pick<GatewayConfig, 'clients'>;
  store: Store;
  disabledClients: Pick<DisabledClients, 'disable' | 'enable'>;
  /** Absent with `audit.enabled: false`. */
  audit: AuditLog | undefined;
  logger: Logger;
}

/** What `/admin/clients?done=…` says after a change. */
export function clientStateNotice(done: unknown): string | undefined {
  if (done === 'disabled') {
    return 'Client disabled: its tokens are refused and it cannot obtain new ones. Its grants are kept.';
  }
  if (done === 'enabled') return 'Client enabled: its grants and tokens work again.';
  return undefined;
}

/** The handler of one of the two forms (`disable: true` for the Disable button). */
export function clientStateHandler(
  deps: ClientStateDependencies,
  guard: AdminGuard,
  disable: boolean,
): RequestHandler {
  return async (req, res) => {
    const who = await guard.adminForm(req, res);
    if (!who) return undefined;
    const clientId = (req.body as Record<string, unknown>).client_id;
    if (typeof clientId !== 'string' || clientId.length === 0 || clientId.length > MAX_CLIENT_ID) {
      return guard.refuse(res, 400, 'Bad request', 'No client was named.');
    }
    const result = await setClientDisabled({
      clientId,
      disable,
      store: deps.store,
      config: deps.config,
      disabledClients: deps.disabledClients,
      audit: deps.audit,
      actor: who.actor,
      auditFields: { ip: req.ip },
    });
    if (result.outcome === 'built-in') {
      return guard.refuse(res, 400, 'Not possible', 'The gateway’s own account client stays.');
    }
    if (result.outcome === 'not-found') {
      return guard.refuse(res, 404, 'Not found', 'There is no such client.');
    }
    if (result.outcome === 'changed') {
      deps.logger.info(`client ${disable ? 'disabled' : 'enabled'} by an administrator`, {
        event: 'admin_change',
        subject: who.session.accountId,
        clientId,
      });
    }
    return res.redirect(303, `/admin/clients?done=${disable ? 'disabled' : 'enabled'}`);
  };
}
