/**
 * The admin console (`/admin`): clients (with revocation), recent activity (decisions and
 * security events, activity-feed.ts; audit records), the configured MCP servers, and their
 * pinned tool definitions (tools-routes.ts).
 *
 * Sign-in is the `/account` page's (src/account/session.ts): the same oidc-provider session,
 * and without one the same sign-in through the built-in account client, which brings the
 * browser back to `/admin`. An administrator is a signed-in user whose account record (what
 * their identity provider said at their last login) has a verified email in `admins.emails`
 * or a group in `admins.groups`; anyone else signed in gets 403 on every page.
 *
 * The actions, revoking a client (`POST /admin/clients/revoke`) and disabling or enabling one
 * (`POST /admin/clients/disable|enable`, client-state.ts), need an administrator's session,
 * the page's CSRF token (one per session, in the store) and a same-origin request by the
 * browser's own headers (src/web/form-check.ts, as on `/account`). They do what
 * `mcp-gateway clients revoke|disable|enable` do (src/clients/governance.ts), through the
 * service's own adapters, and are audited as `admin_change` with `actor: admin:<accountId>`.
 */
import express, { type Router } from 'express';
import type Provider from 'oidc-provider';
import { listClientsWithUse, revokeClientAccess } from '../clients/governance.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import type { AccountStore } from '../login/accounts.js';
import type { CsrfTokens } from '../web/csrf.js';
import { sendPage } from '../web/send-page.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { Logger } from '../logging/logger.js';
import type { ConsentMemory } from '../oauth/consent-memory.js';
import type { DisabledClients } from '../clients/disabled-clients.js';
import type { ResourceRegistry } from '../resources/registry.js';
import type { ServerCatalog } from '../servers/catalog.js';
import type { Store } from '../store/store.js';
import type { ToolPinning } from '../tool-pinning/pinning.js';
import {
  ACTIVITY_FILTERS,
  recentActivity,
  type ActivityFilter,
} from '../activity/audit-records.js';
import type { ActivityFeed } from '../activity/activity-feed.js';
import { sendActivityFeed } from './activity-feed.js';
import { pageOf, parsePage } from './paging.js';
import { clientStateHandler, clientStateNotice } from './client-state.js';
import { createAdminGuard } from './guard.js';
import { createServerRoutes } from './server-routes.js';
import { createToolsRoutes } from './tools-routes.js';
import { renderActivity, renderClients, renderOverview } from './views.js';

export { isAdmin } from './guard.js';

export const ADMIN_PATH = '/admin';
const ACTIVITY_LIMIT = 200;
/** Longest accepted filter value (a CIMD client id is a URL). */
const MAX_FILTER = 2000;

export interface AdminDependencies {
  /** What the guard, the client pages and the server pages read (each takes its part). */
  config: Pick<GatewayConfig, 'issuer' | 'tokens' | 'admins' | 'clients' | 'managedServers'>;
  provider: Provider;
  store: Store;
  accounts: AccountStore;
  consents: ConsentMemory;
  /** Per-session tokens for the console's forms; their TTL should be the session's. */
  csrf: CsrfTokens;
  /** Absent with `audit.enabled: false`. */
  audit: AuditLog | undefined;
  /** Recent decisions and security events; absent with `activity.enabled: false`. */
  activity: ActivityFeed | undefined;
  events: SecurityEvents;
  logger: Logger;
  /** The protected MCP servers (live) and the run-time catalog (absent when turned off). */
  resources: ResourceRegistry;
  catalog: ServerCatalog | undefined;
  /** Clients an administrator disabled (src/clients/disabled-clients.ts). */
  disabledClients: Pick<DisabledClients, 'disable' | 'enable'>;
  /** Tool definition pinning (src/tool-pinning/): the Tools view reads and decides with it. */
  pins: Pick<ToolPinning, 'status' | 'approve' | 'reject'>;
}

export function createAdminRouter(deps: AdminDependencies): Router {
  const { config, provider, store, logger } = deps;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });
  const guard = createAdminGuard(deps);
  const { refuse } = guard;
  const admin = guard.admin;

  router.use(
    createServerRoutes({
      config,
      guard,
      resources: deps.resources,
      catalog: deps.catalog,
      logger,
    }),
  );
  router.use(createToolsRoutes({ guard, resources: deps.resources, pins: deps.pins, logger }));

  router.get(ADMIN_PATH, async (req, res) => {
    const who = await admin(req, res, true);
    if (!who) return undefined;
    return sendPage(
      res,
      200,
      renderOverview({
        user: who.user,
        clients: (await listClientsWithUse(store, config)).length,
        servers: deps.resources.list().length,
        auditEnabled: deps.audit !== undefined,
      }),
    );
  });

  router.get(`${ADMIN_PATH}/clients`, async (req, res) => {
    const who = await admin(req, res, true);
    if (!who) return undefined;
    return sendPage(
      res,
      200,
      renderClients({
        user: who.user,
        csrfToken: await guard.csrfToken(who),
        clients: await listClientsWithUse(store, config),
        notice:
          req.query.done === 'revoked'
            ? 'Client revoked: its grants are ended and its tokens refused.'
            : clientStateNotice(req.query.done),
      }),
    );
  });

  router.post(`${ADMIN_PATH}/clients/revoke`, form, async (req, res) => {
    const who = await guard.adminForm(req, res);
    if (!who) return undefined;
    const { session } = who;
    const body = req.body as Record<string, unknown>;
    const clientId = body.client_id;
    if (typeof clientId !== 'string' || clientId.length === 0 || clientId.length > MAX_FILTER) {
      return refuse(res, 400, 'Bad request', 'No client was named.');
    }
    const result = await revokeClientAccess({
      clientId,
      store,
      config,
      consents: deps.consents,
      revokeGrant: (grantId) => provider.Grant.adapter.revokeByGrantId(grantId),
      // oidc-provider's own adapter for clients (not in its type declarations).
      deleteRegistration: (id) =>
        (
          provider.Client as unknown as { adapter: { destroy(id: string): Promise<void> } }
        ).adapter.destroy(id),
      audit: deps.audit,
      actor: who.actor,
      auditFields: { ip: req.ip },
    });
    if (result.outcome === 'built-in') {
      return refuse(res, 400, 'Not revocable', 'The gateway’s own account client stays.');
    }
    if (result.outcome === 'not-found') {
      return refuse(res, 404, 'Not found', 'There is no such client.');
    }
    logger.info('client revoked by an administrator', {
      event: 'admin_change',
      subject: session.accountId,
      clientId,
      grants: result.grants,
    });
    return res.redirect(303, `${ADMIN_PATH}/clients?done=revoked`);
  });

  router.post(`${ADMIN_PATH}/clients/disable`, form, clientStateHandler(deps, guard, true));
  router.post(`${ADMIN_PATH}/clients/enable`, form, clientStateHandler(deps, guard, false));

  router.get(`${ADMIN_PATH}/activity`, async (req, res) => {
    const who = await admin(req, res, true);
    if (!who) return undefined;
    if (req.query.view !== 'audit') return sendActivityFeed(req, res, who, { ...deps, guard });
    const paged = parsePage(req.query);
    if (!paged.ok) return guard.refuse(res, 400, 'Bad page', paged.problem);
    const filter: ActivityFilter = {};
    for (const name of ACTIVITY_FILTERS) {
      const value = req.query[name];
      if (typeof value === 'string' && value.length > 0 && value.length <= MAX_FILTER) {
        filter[name] = value;
      }
    }
    // The newest records up to the end of this page, and one more to tell whether any follow.
    const newest = await recentActivity(store, filter, {
      limit: paged.page * ACTIVITY_LIMIT + 1,
    });
    const { items, hasOlder } = pageOf(newest, paged.page, ACTIVITY_LIMIT);
    return sendPage(
      res,
      200,
      renderActivity({
        user: who.user,
        filter,
        records: items,
        auditEnabled: deps.audit !== undefined,
        limit: ACTIVITY_LIMIT,
        page: paged.page,
        hasOlder,
      }),
    );
  });

  return router;
}
