/**
 * Who may use the admin console, and what every admin form must carry. One guard shared by
 * the console's routers (clients, servers, activity, diagnostics), so that each page and each
 * action makes exactly the same checks.
 *
 * - Pages: a signed-in administrator (the `/account` sign-in, src/account/session.ts);
 *   without a session the browser is sent to sign in and back to `/admin`.
 * - Actions (POST): the same, plus the shared form check (src/web/form-check.ts): a
 *   same-origin request by the browser's own headers and the page's CSRF token (one per
 *   session, in the store).
 *
 * An administrator is a signed-in user whose account record (what their identity provider
 * said at their last login) has a verified email in `admins.emails` or a group in
 * `admins.groups`; anyone else signed in gets 403. Refusals are logged as security events.
 */
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import { createPageSessions, type PageSession } from '../account/session.js';
import type { GatewayConfig } from '../config/schema.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { AccountRecord, AccountStore } from '../login/accounts.js';
import { adminCsrfName } from '../store/keys.js';
import type { CsrfTokens } from '../web/csrf.js';
import { createConsoleFormCheck } from '../web/form-check.js';
import { sendPage } from '../web/send-page.js';
import { renderAdminProblem } from './views.js';

export interface SignedInAdmin {
  session: PageSession;
  /** What the pages show: email, else name, else account id. */
  user: string;
  /** `admin:<accountId>`: the audit records' actor. */
  actor: string;
}

export interface AdminGuard {
  /**
   * The signed-in administrator, or `undefined` once the response is sent: the sign-in
   * redirect (`page: true`) or a refusal.
   */
  admin(req: Request, res: Response, page: boolean): Promise<SignedInAdmin | undefined>;
  /**
   * For a form post: the administrator when the post is same-origin and carries the
   * session's CSRF token, else `undefined` once a 403 is sent.
   */
  adminForm(req: Request, res: Response): Promise<SignedInAdmin | undefined>;
  /** The CSRF token to put in the page's forms. */
  csrfToken(admin: SignedInAdmin): Promise<string>;
  /** Sends a refusal page. */
  refuse(res: Response, status: number, title: string, description: string): void;
}

export interface AdminGuardDependencies {
  /** `issuer` and `tokens` for the sign-in (src/account/session.ts), `admins` for who may. */
  config: Pick<GatewayConfig, 'issuer' | 'tokens' | 'admins'>;
  provider: Provider;
  accounts: AccountStore;
  /** Per-session tokens for the console's forms; their TTL should be the session's. */
  csrf: CsrfTokens;
  events: SecurityEvents;
}

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

export function createAdminGuard(deps: AdminGuardDependencies): AdminGuard {
  const { config, provider, csrf, events } = deps;
  const sessions = createPageSessions(config, provider);

  const refuse = (res: Response, status: number, title: string, description: string) => {
    sendPage(res, status, renderAdminProblem(title, description));
  };
  const checkForm = createConsoleFormCheck({
    issuer: config.issuer,
    csrf,
    events,
    area: 'admin',
    pageName: 'the admin console',
    tokenKey: adminCsrfName,
    refuse,
  });

  async function admin(
    req: Request,
    res: Response,
    page: boolean,
  ): Promise<SignedInAdmin | undefined> {
    const session = await sessions.current(req, res);
    if (!session) {
      if (page) sessions.startSignIn(res, 'admin');
      else refuse(res, 403, 'Signed out', 'Your sign-in has ended. Open the page again.');
      return undefined;
    }
    const account = await deps.accounts.find(session.accountId);
    if (!isAdmin(account, config.admins)) {
      events.emit('access_denied', {
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
    return {
      session,
      user: account?.email ?? account?.name ?? session.accountId,
      actor: `admin:${session.accountId}`,
    };
  }

  return {
    admin,
    refuse,
    csrfToken: (who) => csrf.issue(adminCsrfName(who.session.uid)),
    async adminForm(req, res) {
      const who = await admin(req, res, false);
      if (!who) return undefined;
      return (await checkForm(req, res, who.session)) ? who : undefined;
    },
  };
}
