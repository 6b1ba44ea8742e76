/**
 * The user-facing part of an authorization request: login (dev or upstream OIDC), the
 * access rules, and consent. oidc-provider hands the browser to `/interaction/<uid>`
 * whenever it needs one of these; we finish the step with `interactionFinished`.
 *
 * Order: login first, then our own consent page for every client the user has not yet
 * approved, and at every authorization of a public client whose code goes to this computer
 * (src/oauth/native-consent.ts). A code is only issued after both, so an attacker who registers a client and
 * lures a user whose upstream session is still alive (the "confused deputy" of the MCP
 * Security Best Practices) still stops at a consent page naming the attacker's client.
 *
 * The upstream callback URL is fixed (`/login/callback/<provider>`, registered at the
 * provider) while oidc-provider's interaction cookie is scoped to `/interaction/<uid>`. The
 * callback therefore finds the interaction by the upstream `state`, then sends the browser
 * back under `/interaction/<uid>/…`, where the cookie proves that the browser finishing the
 * login is the one that started it.
 */
import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { GatewayConfig } from '../config/schema.js';

type DevUser = NonNullable<GatewayConfig['login']['dev']>['users'][number];
import type { Logger } from '../logging/logger.js';
import { securityEvent } from '../logging/security-events.js';
import { ACCOUNT_CLIENT_ID } from '../oauth/provider.js';
import { grantableScopes, type ResourceRegistry } from '../oauth/resources.js';
import { LOCAL_REDIRECT_REASON } from '../oauth/native-consent.js';
import type { ConsentMemory } from '../oauth/consent-memory.js';
import { evaluateLogin, evaluateResourceAccess, type AccessDecision } from '../policy/access.js';
import { namespacedGroups } from '../policy/groups.js';
import type { Store } from '../store/store.js';
import type { AccountStore, Identity } from './accounts.js';
import type { Reauthorization } from './reauthorization.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { CsrfTokens } from './csrf.js';
import { isLoopbackHostname } from '../net/loopback.js';
import {
  UpstreamRefused,
  type LoginProvider,
  type PendingUpstreamLogin,
  type UpstreamLogin,
} from './providers/provider.js';
import { renderConsent } from './views/consent-page.js';
import { renderErrorPage } from './views/error-page.js';
import {
  renderAccessDenied,
  renderDevLogin,
  renderProviderChoice,
  type ReturnLink,
} from './views/login-pages.js';

export interface InteractionDependencies {
  config: GatewayConfig;
  provider: Provider;
  store: Store;
  accounts: AccountStore;
  consents: ConsentMemory;
  csrf: CsrfTokens;
  resources: ResourceRegistry;
  /** Dev users when the development login is enabled (and allowed on this listener). */
  devUsers: DevUser[] | undefined;
  upstreams: LoginProvider[];
  /** Records logins (identity and sealed upstream session) for the checks at refresh. */
  reauthorization: Reauthorization;
  metrics?: GatewayMetrics | undefined;
  logger: Logger;
}

interface UpstreamLoginRecord {
  uid: string;
  providerId: string;
  pending: PendingUpstreamLogin;
}

const upstreamKey = (state: string) => `upstream-login:${state}`;

/** OpenID scopes that reveal something about the user, named on the consent page. */
const IDENTITY_SCOPES = new Set(['email', 'profile']);

/** Security headers for every page: no framing (clickjacking on consent), no caching. */
function sendPage(res: Response, status: number, body: string): void {
  res
    .status(status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy':
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
    })
    .send(body);
}

export function createInteractionRouter(deps: InteractionDependencies): Router {
  const { provider, store, accounts, consents, csrf, logger, config } = deps;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });
  const upstreamById = new Map(deps.upstreams.map((upstream) => [upstream.id, upstream]));
  const choices = [
    ...(deps.devUsers ? [{ id: 'dev', name: 'Development login' }] : []),
    ...deps.upstreams.map(({ id, name }) => ({ id, name })),
  ];

  const details = (req: Request, res: Response) => provider.interactionDetails(req, res);

  const finish = (req: Request, res: Response, result: InteractionResults) =>
    provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });

  type Interaction = Awaited<ReturnType<typeof details>>;

  /**
   * Ends the authorization with `access_denied` for the client, behind a page that says why:
   * the link takes the browser back to the client's redirect URI with the error (RFC 6749
   * §4.1.2.1), so that the application does not wait forever; no code is issued.
   */
  async function returnLink(
    req: Request,
    res: Response,
    interaction: Interaction,
    description: string,
  ): Promise<ReturnLink> {
    const clientId = String(interaction.params.client_id);
    const client = await provider.Client.find(clientId).catch(() => undefined);
    const url = await provider.interactionResult(
      req,
      res,
      { error: 'access_denied', error_description: description },
      { mergeWithLastSubmission: false },
    );
    return { url, clientName: client?.clientName ?? clientId };
  }

  async function refuseAccess(
    req: Request,
    res: Response,
    interaction: Interaction,
    identity: Identity,
    decision: Extract<AccessDecision, { allowed: false }>,
    resource?: string,
  ) {
    deps.metrics?.login(identity.provider, 'denied');
    securityEvent(logger, 'access_denied', {
      ip: req.ip,
      provider: identity.provider,
      subject: identity.sub,
      ...(resource ? { resource } : {}),
      reason: decision.reason,
    });
    await csrf.discard(interaction.uid);
    const link = await returnLink(req, res, interaction, 'the user is not allowed access');
    return sendPage(res, 403, renderAccessDenied(decision.reason, link));
  }

  /** The first MCP server among those the authorization asks for that refuses this user. */
  function refusingResource(interaction: Interaction, identity: Identity) {
    for (const url of requestedResourceUrls(interaction)) {
      const resource = deps.resources.find(url);
      if (!resource) continue; // oidc-provider answers invalid_target for it
      const decision = evaluateResourceAccess(identity, resource);
      if (!decision.allowed) return { resource: resource.url, decision };
    }
    return undefined;
  }

  /**
   * The MCP servers this request names (the only one when it names none, as oidc-provider's
   * `defaultResource` does) with the scopes it asks of each that the server offers.
   */
  function requestedScopes(interaction: Interaction): [string, string[]][] {
    const named = requestedResourceUrls(interaction);
    const sole = deps.resources.soleResource();
    const urls = named.length ? named : sole ? [sole] : [];
    const asked = String(interaction.params.scope ?? '')
      .split(' ')
      .filter(Boolean);
    return urls.flatMap((url) => {
      const resource = deps.resources.find(url);
      if (!resource) return [];
      const offered = new Set(grantableScopes(resource));
      const scopes = asked.length ? asked.filter((scope) => offered.has(scope)) : resource.scopes;
      return [[resource.url, scopes] as [string, string[]]];
    });
  }

  /** Applies the access rules, then records the login or shows why it was refused. */
  async function completeLogin(
    req: Request,
    res: Response,
    interaction: Interaction,
    login: UpstreamLogin,
  ) {
    const { identity } = login;
    const decision = evaluateLogin(identity, config);
    if (!decision.allowed) return refuseAccess(req, res, interaction, identity, decision);
    const refusing = refusingResource(interaction, identity);
    if (refusing) {
      return refuseAccess(req, res, interaction, identity, refusing.decision, refusing.resource);
    }
    await deps.reauthorization.recordLogin(login);
    deps.metrics?.login(identity.provider, 'success');
    logger.info('login', {
      event: 'login',
      provider: identity.provider,
      subject: identity.sub,
      rule: decision.rule,
    });
    return finish(req, res, { login: { accountId: identity.sub } });
  }

  router.get('/interaction/:uid', async (req, res) => {
    const interaction = await details(req, res);
    if (interaction.uid !== req.params.uid) throw new InteractionMismatch();
    if (interaction.prompt.name === 'login') {
      if (choices.length === 1) {
        return res.redirect(303, `/interaction/${interaction.uid}/login/${choices[0]!.id}`);
      }
      return sendPage(res, 200, renderProviderChoice(interaction.uid, choices));
    }
    if (interaction.prompt.name === 'consent') {
      if (interaction.params.client_id === ACCOUNT_CLIENT_ID) {
        return consentToAccountClient(req, res, interaction);
      }
      return showConsent(req, res, interaction);
    }
    throw new Error(`unsupported prompt ${interaction.prompt.name}`);
  });

  /**
   * The gateway's own account page (src/account/) is no third party: the user who just signed
   * in to see their connected apps is not asked whether the gateway may know who they are.
   * Only `openid` is granted; the client can ask for nothing else (no resource: see
   * provider.ts), and anything else it asks for is refused here rather than granted.
   */
  async function consentToAccountClient(req: Request, res: Response, interaction: Interaction) {
    const missingResources = interaction.prompt.details.missingResourceScopes ?? {};
    const missingOidc = (interaction.prompt.details.missingOIDCScope ?? []) as string[];
    if (
      Object.keys(missingResources).length > 0 ||
      missingOidc.some((scope) => scope !== 'openid')
    ) {
      return finish(req, res, {
        error: 'invalid_scope',
        error_description: 'the account client is granted openid only',
      });
    }
    const accountId = interaction.session!.accountId;
    const grant = interaction.grantId
      ? ((await provider.Grant.find(interaction.grantId)) ??
        new provider.Grant({ accountId, clientId: ACCOUNT_CLIENT_ID }))
      : new provider.Grant({ accountId, clientId: ACCOUNT_CLIENT_ID });
    grant.addOIDCScope('openid');
    return finish(req, res, { consent: { grantId: await grant.save() } });
  }

  async function showConsent(req: Request, res: Response, interaction: Interaction) {
    const clientId = String(interaction.params.client_id);
    const client = await provider.Client.find(clientId);
    if (!client) throw new Error('client disappeared during the interaction');
    const redirectUri = new URL(String(interaction.params.redirect_uri));
    const missingResources = (interaction.prompt.details.missingResourceScopes ?? {}) as Record<
      string,
      string[]
    >;
    const missingOidc = (interaction.prompt.details.missingOIDCScope ?? []) as string[];
    // Asked again although everything was approved before (native-consent.ts): the page
    // names what this request would get, so the user approves it knowingly.
    const localRedirect = interaction.prompt.reasons.includes(LOCAL_REDIRECT_REASON);
    const reconfirm = localRedirect && Object.keys(missingResources).length === 0;
    const requestedResources = reconfirm
      ? requestedScopes(interaction)
      : Object.entries(missingResources);
    const accountId = interaction.session?.accountId ?? '';
    const account = await accounts.find(accountId);
    // A user still signed in here skips the login step: the MCP server they now ask for
    // must admit them too.
    const refusing = account ? refusingResource(interaction, account) : undefined;
    if (account && refusing) {
      return refuseAccess(req, res, interaction, account, refusing.decision, refusing.resource);
    }
    const registered = client.redirectUris ?? [];
    const view = {
      uid: interaction.uid,
      csrfToken: await csrf.issue(interaction.uid),
      clientName: client.clientName ?? clientId,
      clientId,
      redirectHost: redirectUri.host,
      approvedBefore: localRedirect && Boolean(interaction.grantId),
      verifiedHost: (client as unknown as { clientIdMetadataDocument?: boolean })
        .clientIdMetadataDocument
        ? new URL(clientId).host
        : undefined,
      loopbackOnly:
        registered.length > 0 &&
        registered.every((uri) => isLoopbackHostname(new URL(uri).hostname)),
      user: account?.email ?? account?.name ?? accountId,
      resources: requestedResources.map(([url, scopes]) => ({
        name: deps.resources.find(url)?.name ?? url,
        url,
        scopes,
      })),
      oidcScopes: missingOidc.filter((scope) => IDENTITY_SCOPES.has(scope)),
    };
    return sendPage(res, 200, renderConsent(view));
  }

  router.get('/interaction/:uid/login/:providerId', async (req, res) => {
    const interaction = await details(req, res);
    if (interaction.uid !== req.params.uid || interaction.prompt.name !== 'login') {
      throw new InteractionMismatch();
    }
    const { providerId } = req.params;
    if (providerId === 'dev' && deps.devUsers) {
      return sendPage(
        res,
        200,
        renderDevLogin(
          interaction.uid,
          await csrf.issue(interaction.uid),
          deps.devUsers.map((user) => user.email),
        ),
      );
    }
    const upstream = upstreamById.get(providerId);
    if (!upstream)
      return sendPage(
        res,
        404,
        renderErrorPage({ title: 'Unknown sign-in method', error: 'not_found' }),
      );
    let started;
    try {
      started = await upstream.start();
    } catch (error) {
      logger.warn('upstream login could not start', {
        provider: upstream.id,
        error: (error as Error).message,
      });
      return sendPage(
        res,
        503,
        renderErrorPage({
          title: 'Sign-in unavailable',
          error: 'temporarily_unavailable',
          description: `${upstream.name} cannot be reached right now. Try again in a moment.`,
        }),
      );
    }
    const { url, pending } = started;
    const record: UpstreamLoginRecord = { uid: interaction.uid, providerId, pending };
    await store.set(upstreamKey(pending.state), { ...record }, config.tokens.loginTtl);
    return res.redirect(303, url.href);
  });

  router.post('/interaction/:uid/login/dev', form, async (req, res) => {
    const interaction = await details(req, res);
    if (
      interaction.uid !== req.params.uid ||
      interaction.prompt.name !== 'login' ||
      !deps.devUsers
    ) {
      throw new InteractionMismatch();
    }
    if (!(await csrf.verify(interaction.uid, req.body?.csrf)))
      return csrfFailure(req, res, interaction.uid);
    const email = String(req.body?.email ?? '').toLowerCase();
    const user = deps.devUsers.find((candidate) => candidate.email === email);
    if (!user) {
      return sendPage(
        res,
        400,
        renderErrorPage({ title: 'Unknown user', error: 'invalid_request' }),
      );
    }
    return completeLogin(req, res, interaction, {
      identity: {
        sub: `dev:${email}`,
        provider: 'dev',
        email,
        emailVerified: true,
        name: user.name,
        groups: namespacedGroups('dev', user.groups),
      },
    });
  });

  // Step 1 of the upstream callback: find the interaction by `state`, move under its path.
  router.get('/login/callback/:providerId', async (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state : undefined;
    const record = state
      ? await store.get<UpstreamLoginRecord & Record<string, unknown>>(upstreamKey(state))
      : undefined;
    if (!record || record.providerId !== req.params.providerId) {
      securityEvent(logger, 'upstream_state_invalid', {
        ip: req.ip,
        provider: req.params.providerId,
      });
      return sendSignInExpired(
        res,
        'This sign-in link is unknown, was already used or has expired. Start again from your application.',
      );
    }
    const query = new URL(req.originalUrl, 'http://placeholder').search;
    return res.redirect(303, `/interaction/${record.uid}/callback/${record.providerId}${query}`);
  });

  // Step 2: under the interaction's path, with its cookie: redeem the code, log the user in.
  router.get('/interaction/:uid/callback/:providerId', async (req, res) => {
    const interaction = await details(req, res);
    const state = typeof req.query.state === 'string' ? req.query.state : '';
    const record = await store.take<UpstreamLoginRecord & Record<string, unknown>>(
      upstreamKey(state),
    );
    const upstream = upstreamById.get(req.params.providerId);
    if (
      !record ||
      !upstream ||
      record.uid !== interaction.uid ||
      record.uid !== req.params.uid ||
      record.providerId !== upstream.id
    ) {
      securityEvent(logger, 'upstream_state_invalid', {
        ip: req.ip,
        provider: req.params.providerId,
      });
      throw new InteractionMismatch();
    }
    const callbackUrl = new URL(upstream.redirectUri);
    callbackUrl.search = new URL(req.originalUrl, 'http://placeholder').search;
    let login: UpstreamLogin;
    try {
      login = await upstream.finish(callbackUrl, record.pending);
    } catch (error) {
      // The user cancelled at the provider, the provider refused, or it could not be
      // reached: the application gets access_denied, the user a page saying which.
      const refused = error instanceof UpstreamRefused;
      deps.metrics?.login(upstream.id, 'failed');
      securityEvent(logger, 'login_failed', {
        ip: req.ip,
        provider: upstream.id,
        reason: (error as Error).message,
      });
      const cancelled = callbackUrl.searchParams.get('error') === 'access_denied';
      return sendPage(
        res,
        refused ? 401 : 502,
        renderErrorPage({
          title: 'Sign-in failed',
          error: cancelled ? 'access_denied' : 'login_failed',
          description: cancelled
            ? `The sign-in was cancelled at ${upstream.name}.`
            : refused
              ? `${upstream.name} did not complete the sign-in.`
              : `${upstream.name} could not be reached to complete the sign-in.`,
          returnTo: await returnLink(
            req,
            res,
            interaction,
            cancelled ? 'the user cancelled the sign-in' : 'the sign-in failed',
          ),
        }),
      );
    }
    return completeLogin(req, res, interaction, login);
  });

  router.post('/interaction/:uid/confirm', form, async (req, res) => {
    const interaction = await details(req, res);
    if (interaction.uid !== req.params.uid || interaction.prompt.name !== 'consent') {
      throw new InteractionMismatch();
    }
    if (!(await csrf.verify(interaction.uid, req.body?.csrf)))
      return csrfFailure(req, res, interaction.uid);
    await csrf.discard(interaction.uid);
    const clientId = String(interaction.params.client_id);
    const accountId = interaction.session!.accountId;
    if (req.body?.decision !== 'approve') {
      securityEvent(logger, 'consent_denied', { ip: req.ip, clientId, subject: accountId });
      return finish(req, res, {
        error: 'access_denied',
        error_description: 'the user denied the request',
      });
    }
    const grant = interaction.grantId
      ? (await provider.Grant.find(interaction.grantId))!
      : new provider.Grant({ accountId, clientId });
    const missingOidc = (interaction.prompt.details.missingOIDCScope ?? []) as string[];
    const missingClaims = (interaction.prompt.details.missingOIDCClaims ?? []) as string[];
    const missingResources = (interaction.prompt.details.missingResourceScopes ?? {}) as Record<
      string,
      string[]
    >;
    if (missingOidc.length) grant.addOIDCScope(missingOidc.join(' '));
    if (missingClaims.length) grant.addOIDCClaims(missingClaims);
    for (const [resource, scopes] of Object.entries(missingResources)) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const adds = missingOidc.length + missingClaims.length + Object.keys(missingResources).length;
    // Approving again what was approved before (native-consent.ts) changes nothing to store.
    const grantId = adds === 0 && grant.jti ? grant.jti : await grant.save();
    if (adds > 0) {
      await consents.remember(accountId, clientId, {
        resources: missingResources,
        oidcScopes: missingOidc,
      });
    }
    logger.info('consent', { event: 'consent', clientId, subject: accountId });
    return finish(req, res, { consent: { grantId } });
  });

  async function csrfFailure(req: Request, res: Response, uid: string) {
    securityEvent(logger, 'csrf_failed', { ip: req.ip, interaction: uid });
    return sendPage(
      res,
      403,
      renderErrorPage({
        title: 'Request refused',
        error: 'invalid_request',
        description:
          'The form was not submitted from this sign-in page. Start again from your application.',
      }),
    );
  }

  return router;
}

/** The `resource` parameters of an authorization request, as given. */
function requestedResourceUrls(interaction: { params: Record<string, unknown> }): string[] {
  const requested = interaction.params.resource;
  if (Array.isArray(requested)) return requested.map(String);
  return typeof requested === 'string' ? [requested] : [];
}

/** The browser is not the one the interaction belongs to, or the step is out of order. */
export class InteractionMismatch extends Error {
  constructor() {
    super('interaction does not match this browser or step');
    this.name = 'InteractionMismatch';
  }
}

/** The page for a sign-in that cannot continue: expired, replayed, or another browser's. */
export function sendSignInExpired(res: Response, description: string): void {
  sendPage(
    res,
    400,
    renderErrorPage({ title: 'Sign-in expired', error: 'invalid_request', description }),
  );
}

export { sendPage };
