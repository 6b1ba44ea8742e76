/**
 * The admin console (`/admin`): clients (with revocation), recent activity from the audit
 * trail, and the configured MCP servers (read only).
 *
 * Sign-in is the `/account` page's (src/account/session.ts): the same oidc-provider session,
 * and without one the same sign-in through the built-in account client, which brings the
 * browser back to `/admin`. An administrator is a signed-in user whose account record (what
 * their identity provider said at their last login) has a verified email in `admins.emails`
 * or a group in `admins.groups`; anyone else signed in gets 403 on every page.
 *
 * The one action, revoking a client (`POST /admin/clients/revoke`), needs an administrator's
 * session, the page's CSRF token (one per session, in the store) and a same-origin request by
 * the browser's own headers (`sameOriginForm`, as on `/account`). It does what
 * `mcp-gateway clients revoke` does (src/account/client-admin.ts), through the service's own
 * adapters, and is audited as `admin_change` with `actor: admin:<accountId>`.
 */
import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import { listClientsWithUse, revokeClientAccess } from '../account/client-admin.js';
import { createPageSessions, sameOriginForm, type PageSession } from '../account/session.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { GatewayConfig } from '../config/schema.js';
import type { AccountRecord, AccountStore } from '../login/accounts.js';
import type { CsrfTokens } from '../login/csrf.js';
import { sendPage } from '../login/interactions.js';
import type { Logger } from '../logging/logger.js';
import { securityEvent } from '../logging/security-events.js';
import type { ConsentMemory } from '../oauth/consent-memory.js';
import type { Store } from '../store/store.js';
import { ACTIVITY_FILTERS, recentActivity, type ActivityFilter } from './activity.js';
import {
  renderActivity,
  renderAdminProblem,
  renderClients,
  renderOverview,
  renderServers,
} from './views.js';

export const ADMIN_PATH = '/admin';
const ACTIVITY_LIMIT = 200;
/** Longest accepted filter value (a CIMD client id is a URL). */
const MAX_FILTER = 2000;

export interface AdminDependencies {
  config: GatewayConfig;
  provider: Provider;
  store: Store;
  accounts: AccountStore;
  consents: ConsentMemory;
  /** Per-session tokens for the console's forms; their TTL should be the session's. */
  csrf: CsrfTokens;
  /** Absent with `audit.enabled: false`. */
  audit: AuditLog | undefined;
  logger: Logger;
}

const csrfKey = (sessionUid: string) => `admin:${sessionUid}`;

/** Whether an account is an administrator by `admins` (verified email, or group). */
export function isAdmin(
  account: AccountRecord | undefined,
  admins: GatewayConfig['admins'],
): boolean {
  if (!account) return false;
  const email = account.emailVerified === true ? account.email?.toLowerCase() : undefined;
  if (email !== undefined && admins.emails.includes(email)) return true;
  return (account.groups ?? []).some((group) => admins.groups.includes(group));
}

export function createAdminRouter(deps: AdminDependencies): Router {
  const { config, provider, store, csrf, logger } = deps;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });
  const issuerOrigin = new URL(config.issuer).origin;
  const sessions = createPageSessions(config, provider);

  const refuse = (res: Response, status: number, title: string, description: string) =>
    sendPage(res, status, renderAdminProblem(title, description));

  interface Admin {
    session: PageSession;
    user: string;
  }

  /**
   * The signed-in administrator, or `undefined` once the response is sent: the sign-in
   * redirect (pages) or a refusal.
   */
  async function admin(req: Request, res: Response, page: boolean): Promise<Admin | undefined> {
    const session = await sessions.current(req, res);
    if (!session) {
      if (page) sessions.startSignIn(res, 'admin');
      else refuse(res, 403, 'Signed out', 'Your sign-in has ended. Open the page again.');
      return undefined;
    }
    const account = await deps.accounts.find(session.accountId);
    if (!isAdmin(account, config.admins)) {
      securityEvent(logger, 'access_denied', {
        ip: req.ip,
        subject: session.accountId,
        reason: 'admin console refused to a non-administrator',
      });
      refuse(
        res,
        403,
        'Not an administrator',
        'You are signed in, but you are not an administrator of this MCP Gateway.',
      );
      return undefined;
    }
    return { session, user: account?.email ?? account?.name ?? session.accountId };
  }

  router.get(ADMIN_PATH, async (req, res) => {
    const who = await admin(req, res, true);
    if (!who) return undefined;
    return sendPage(
      res,
      200,
      renderOverview({
        user: who.user,
        clients: (await listClientsWithUse(store, config)).length,
        servers: config.resources.length,
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
        csrfToken: await csrf.issue(csrfKey(who.session.uid)),
        clients: await listClientsWithUse(store, config),
        notice:
          req.query.done === 'revoked'
            ? 'Client revoked: its grants are ended and its tokens refused.'
            : undefined,
      }),
    );
  });

  router.post(`${ADMIN_PATH}/clients/revoke`, form, async (req, res) => {
    const who = await admin(req, res, false);
    if (!who) return undefined;
    const { session } = who;
    if (!sameOriginForm(req, issuerOrigin)) {
      securityEvent(logger, 'csrf_failed', {
        ip: req.ip,
        subject: session.accountId,
        reason: 'admin form posted from another origin',
        origin: req.get('origin'),
        fetchSite: req.get('sec-fetch-site'),
      });
      return refuse(res, 403, 'Request refused', 'The form was not sent from this site.');
    }
    const body = req.body as Record<string, unknown> | undefined;
    if (!(await csrf.verify(csrfKey(session.uid), body?.csrf))) {
      securityEvent(logger, 'csrf_failed', {
        ip: req.ip,
        subject: session.accountId,
        reason: 'admin form without a valid CSRF token',
      });
      return refuse(
        res,
        403,
        'Request refused',
        'The form was not sent from the admin console. Open the page again and retry.',
      );
    }
    const clientId = body?.client_id;
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
      actor: `admin:${session.accountId}`,
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

  router.get(`${ADMIN_PATH}/activity`, async (req, res) => {
    const who = await admin(req, res, true);
    if (!who) return undefined;
    const filter: ActivityFilter = {};
    for (const name of ACTIVITY_FILTERS) {
      const value = req.query[name];
      if (typeof value === 'string' && value.length > 0 && value.length <= MAX_FILTER) {
        filter[name] = value;
      }
    }
    return sendPage(
      res,
      200,
      renderActivity({
        user: who.user,
        filter,
        records: await recentActivity(store, filter, { limit: ACTIVITY_LIMIT }),
        auditEnabled: deps.audit !== undefined,
        limit: ACTIVITY_LIMIT,
      }),
    );
  });

  router.get(`${ADMIN_PATH}/servers`, async (req, res) => {
    const who = await admin(req, res, true);
    if (!who) return undefined;
    return sendPage(res, 200, renderServers(who.user, config.resources));
  });

  return router;
}
