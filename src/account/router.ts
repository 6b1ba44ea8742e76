/**
 * "Connected apps" (`/account`): every user sees the MCP clients they gave access to, one
 * entry per client whatever the number of its grants (connected-apps.ts), and can revoke any.
 *
 * Sign-in reuses the gateway's own login. The page is an OAuth client of the gateway itself,
 * the built-in {@link ACCOUNT_CLIENT_ID} (public, PKCE S256, `openid` only, never a resource;
 * its consent step is skipped): `GET /account` without an oidc-provider session sends the
 * browser to `/authorize` for it, with a random `state` and the PKCE verifier kept in a
 * short-lived cookie (path `/account`, HttpOnly, SameSite=Lax; nothing is written to the
 * store for a visitor who is not signed in, so the page cannot be used to fill it). The user signs
 * in as for any MCP client (dev or upstream providers, access rules apply); oidc-provider
 * then sets its session cookie (path `/`, so it is sent to `/account` too) and redirects to
 * `GET /account/callback`, which checks `state` and `iss`, redeems the code server-side with
 * the verifier (so no code is left unused, and a replayed callback fails on the used code;
 * the code's account must be the browser session's, which defeats a planted cookie) and
 * sends the browser to `/account`. A browser that already signed in for an MCP client has the
 * session, and goes straight to the page.
 *
 * The session is read as oidc-provider reads it: `Session.get` on a context built with
 * `provider.createContext(req, res)` (oidc-provider 9: the provider *is* the Koa app; the
 * `provider.app` getter is deprecated).
 *
 * Revoking (`POST /account/apps/revoke` with the form's `client_id`) needs the session, the
 * page's CSRF token (one per session, in the store, valid as long as the session) and a
 * same-origin request by the browser's own headers (`Origin`, `Sec-Fetch-Site`), both checked
 * by the shared form check (src/web/form-check.ts). It ends every grant the session's account gave that client, and only
 * those: a client the account holds no grant of is answered 404, whether or not other users
 * hold some. Each grant is revoked through the store adapter's `revokeByGrantId`, the one path
 * every revocation takes: its refresh tokens are deleted (the next refresh gets
 * `invalid_grant`) and the revocation list is told (`/verify` refuses its access tokens at
 * once here and, through the store's pub/sub, on every replica; at the latest after
 * `verify.revocationPollInterval`). The remembered consent for that client is forgotten, so
 * that the application has to ask the user again.
 */
import { timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { AuditLog } from '../audit/audit-log.js';
import type { ClientDirectory } from '../clients/directory.js';
import type { GatewayConfig } from '../config/schema.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { AccountStore } from '../login/accounts.js';
import type { Logger } from '../logging/logger.js';
import type { ConsentMemory } from '../oauth/consent-memory.js';
import { ACCOUNT_CLIENT_ID, accountCallbackUrl } from '../oauth/constants.js';
import type { ResourceRegistry } from '../resources/registry.js';
import { accountCsrfName } from '../store/keys.js';
import type { CsrfTokens } from '../web/csrf.js';
import { createConsoleFormCheck } from '../web/form-check.js';
import { sendPage } from '../web/send-page.js';
import { groupByClient, type ConnectedApp } from './connected-apps.js';
import type { GrantDirectory } from './grants.js';
import {
  ACCOUNT_PATH,
  createPageSessions,
  RETURN_PATHS,
  s256,
  type PageSessions,
  type ReturnTarget,
} from './session.js';
import {
  ACCOUNT_REVOKE_PATH,
  renderAccountPage,
  renderAccountProblem,
  renderSignedOut,
  type ConnectedAppView,
} from './views/account-page.js';

export { ACCOUNT_PATH };

export interface AccountDependencies {
  /** `issuer` and `tokens` for the sign-in (src/account/session.ts) and the form checks. */
  config: Pick<GatewayConfig, 'issuer' | 'tokens'>;
  provider: Provider;
  accounts: AccountStore;
  consents: ConsentMemory;
  /** Per-session tokens for the page's forms; their TTL should be the session's. */
  csrf: CsrfTokens;
  resources: ResourceRegistry;
  grants: GrantDirectory;
  clients: ClientDirectory;
  /** Absent with `audit.enabled: false`. */
  audit: AuditLog | undefined;
  events: SecurityEvents;
  logger: Logger;
}

const IDENTITY_SCOPES = new Set(['email', 'profile']);

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** One cookie's value from the request's Cookie header. */
function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return undefined;
}

function refuse(res: Response, status: number, title: string, description: string): void {
  sendPage(res, status, renderAccountProblem(title, description));
}

export function createAccountRouter(deps: AccountDependencies): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });
  const sessions = createPageSessions(deps.config, deps.provider);
  const apps = connectedAppsOf(deps);
  const checkForm = accountFormCheck(deps);
  router.get(ACCOUNT_PATH, accountPage(deps, sessions, apps));
  router.get(`${ACCOUNT_PATH}/callback`, signInCallback(deps, sessions));
  router.post(ACCOUNT_REVOKE_PATH, form, revokeApp(deps, sessions, apps, checkForm));
  router.post(`${ACCOUNT_PATH}/signout`, form, signOut(deps, sessions, checkForm));
  return router;
}

/**
 * A form post must come from the page itself: the browser's word on where the form was, then
 * the session's CSRF token (src/web/form-check.ts).
 */
function accountFormCheck(deps: Pick<AccountDependencies, 'config' | 'csrf' | 'events'>) {
  return createConsoleFormCheck({
    issuer: deps.config.issuer,
    csrf: deps.csrf,
    events: deps.events,
    area: 'account',
    pageName: 'your connected apps page',
    tokenKey: accountCsrfName,
    refuse,
  });
}

type SessionFormCheck = ReturnType<typeof accountFormCheck>;

/** An account's connected apps: its grants by client, and what the page shows of each. */
interface ConnectedApps {
  /** The account's grants, by client; the gateway's own account client is not an app. */
  of(accountId: string): Promise<ConnectedApp[]>;
  describe(app: ConnectedApp): Promise<ConnectedAppView>;
}

function connectedAppsOf(
  deps: Pick<AccountDependencies, 'grants' | 'clients' | 'resources'>,
): ConnectedApps {
  return {
    async of(accountId) {
      const grants = await deps.grants.forAccount(accountId);
      return groupByClient(grants.filter((grant) => grant.clientId !== ACCOUNT_CLIENT_ID));
    },
    async describe(app) {
      const client = await deps.clients.describe(app.clientId);
      return {
        clientId: app.clientId,
        clientName: client.name ?? client.host ?? app.clientId,
        kind: client.kind,
        host: client.host,
        clientKnown: client.known,
        resources: app.resources.map(({ url, scopes }) => ({
          name: deps.resources.find(url)?.name ?? url,
          url,
          scopes,
        })),
        identityScopes: app.oidcScopes.filter((scope) => IDENTITY_SCOPES.has(scope)),
        firstUse: app.firstUse,
        lastUse: app.lastUse,
        authorizations: app.grantIds.length,
      };
    },
  };
}

/** `GET /account`: the page, or the sign-in without a session. */
function accountPage(
  deps: Pick<AccountDependencies, 'accounts' | 'csrf'>,
  sessions: PageSessions,
  apps: ConnectedApps,
) {
  return async (req: Request, res: Response) => {
    const session = await sessions.current(req, res);
    if (!session) return sessions.startSignIn(res);
    const accountId = session.accountId;
    const identity = await deps.accounts.find(accountId);
    const views: ConnectedAppView[] = [];
    for (const app of await apps.of(accountId)) views.push(await apps.describe(app));
    return sendPage(
      res,
      200,
      renderAccountPage({
        user: identity?.email ?? identity?.name ?? accountId,
        csrfToken: await deps.csrf.issue(accountCsrfName(session.uid)),
        apps: views,
        notice:
          req.query.done === 'revoked'
            ? 'Access revoked. The application must ask you again before it can use your MCP servers.'
            : undefined,
      }),
    );
  };
}

/**
 * `GET /account/callback`: the account client's authorization response. The state cookie,
 * `iss`, then the code redeemed here (single use) for this browser's session.
 */
function signInCallback(
  deps: Pick<AccountDependencies, 'config' | 'provider' | 'events' | 'logger'>,
  sessions: PageSessions,
) {
  const { config, provider, events, logger } = deps;
  const callbackUrl = accountCallbackUrl(config.issuer);
  const { stateCookie, stateCookieOptions } = sessions;
  return async (req: Request, res: Response) => {
    const query = req.query as Record<string, unknown>;
    const state = typeof query.state === 'string' ? query.state : '';
    const [expected, verifier, target] = (readCookie(req, stateCookie) ?? '').split('.');
    const returnTo =
      target !== undefined && Object.hasOwn(RETURN_PATHS, target)
        ? RETURN_PATHS[target as ReturnTarget]
        : ACCOUNT_PATH;
    res.clearCookie(stateCookie, stateCookieOptions);
    if (!state || !expected || !verifier || !safeEqual(state, expected)) {
      events.emit('csrf_failed', {
        ip: req.ip,
        reason: 'account sign-in callback without its state',
      });
      return refuse(
        res,
        400,
        'Sign-in expired',
        'This sign-in was started in another browser, was already used, or has expired.',
      );
    }
    if (query.iss !== config.issuer) {
      return refuse(res, 400, 'Sign-in failed', 'The answer did not come from this gateway.');
    }
    if (typeof query.error === 'string') {
      const description =
        typeof query.error_description === 'string' ? `: ${query.error_description}` : '';
      return refuse(
        res,
        query.error === 'access_denied' ? 403 : 400,
        'Sign-in did not complete',
        `${query.error}${description}`,
      );
    }
    const code =
      typeof query.code === 'string'
        ? await provider.AuthorizationCode.find(query.code).catch(() => undefined)
        : undefined;
    if (
      !code ||
      !code.isValid ||
      code.clientId !== ACCOUNT_CLIENT_ID ||
      code.redirectUri !== callbackUrl ||
      code.codeChallengeMethod !== 'S256' ||
      typeof code.codeChallenge !== 'string' ||
      !safeEqual(code.codeChallenge, s256(verifier))
    ) {
      return refuse(res, 400, 'Sign-in failed', 'The sign-in code is invalid or expired.');
    }
    try {
      // Single use, atomically (a replay revokes the account client's grant, nothing more):
      // this is also what makes the callback itself single use.
      await code.consume();
    } catch {
      return refuse(res, 400, 'Sign-in failed', 'The sign-in code was already used.');
    }
    const session = await sessions.current(req, res);
    if (!session || session.accountId !== code.accountId) {
      events.emit('oauth_error', {
        ip: req.ip,
        subject: code.accountId,
        reason: 'account sign-in code does not match the browser session',
      });
      return refuse(res, 400, 'Sign-in failed', 'This browser is not signed in as that user.');
    }
    logger.info('account page sign-in', { event: 'account_login', subject: session.accountId });
    return res.redirect(303, returnTo);
  };
}

/** `POST /account/apps/revoke`: ends every grant this account gave the client, and only those. */
function revokeApp(
  deps: Pick<AccountDependencies, 'provider' | 'consents' | 'audit' | 'logger'>,
  sessions: PageSessions,
  apps: ConnectedApps,
  checkForm: SessionFormCheck,
) {
  return async (req: Request, res: Response) => {
    const session = await sessions.current(req, res);
    if (!session) {
      return refuse(res, 403, 'Signed out', 'Your sign-in has ended. Open the page again.');
    }
    if (!(await checkForm(req, res, session))) return undefined;
    const accountId = session.accountId;
    const clientId = (req.body as Record<string, unknown> | undefined)?.client_id;
    // Only this account's grants are looked at: another user's use of the client is not
    // revealed (the answer is the same 404 as for a client nobody uses).
    const app =
      typeof clientId === 'string'
        ? (await apps.of(accountId)).find((candidate) => candidate.clientId === clientId)
        : undefined;
    if (!app) return refuse(res, 404, 'Not found', 'There is no such connected app.');
    for (const grantId of app.grantIds) {
      await deps.provider.Grant.adapter.revokeByGrantId(grantId);
    }
    await deps.consents.forget(accountId, app.clientId);
    for (const grantId of app.grantIds) {
      void deps.audit?.append('grant_revoked', {
        actor: `user:${accountId}`,
        reason: 'user',
        subject: accountId,
        clientId: app.clientId,
        grantId,
        ip: req.ip,
      });
    }
    deps.logger.info('connected app revoked by its user', {
      event: 'grant_revoked',
      reason: 'user',
      subject: accountId,
      clientId: app.clientId,
      grants: app.grantIds.length,
    });
    return res.redirect(303, `${ACCOUNT_PATH}?done=revoked`);
  };
}

/** `POST /account/signout`: ends the oidc-provider session and clears its cookies. */
function signOut(
  deps: Pick<AccountDependencies, 'config' | 'provider' | 'csrf' | 'logger'>,
  sessions: PageSessions,
  checkForm: SessionFormCheck,
) {
  const secure = deps.config.issuer.startsWith('https://');
  return async (req: Request, res: Response) => {
    const session = await sessions.current(req, res);
    if (!session) return sendPage(res, 200, renderSignedOut());
    if (!(await checkForm(req, res, session))) return undefined;
    await deps.csrf.discard(accountCsrfName(session.uid));
    await session.destroy();
    const name = deps.provider.cookieName('session');
    const options = { path: '/', httpOnly: true, sameSite: 'lax', secure } as const;
    res.clearCookie(name, options);
    res.clearCookie(`${name}.sig`, options);
    deps.logger.info('signed out', { event: 'logout', subject: session.accountId });
    return sendPage(res, 200, renderSignedOut());
  };
}
