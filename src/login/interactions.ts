/**
 * The user-facing part of an authorization request, as steps (src/login/steps/). oidc-provider
 * hands the browser to `/interaction/<uid>` whenever it needs a login or a consent; each step
 * ends with `interactionFinished` (steps/interaction.ts), after which oidc-provider goes on
 * with the authorization. This file only builds the steps and mounts them, in the order a
 * browser meets them.
 *
 * Every step under `/interaction/<uid>` first loads the interaction (oidc-provider's cookie,
 * scoped to that path, proves it is this browser's) and checks that it is the one in the path
 * and at the expected prompt; a mismatch is `InteractionMismatch`, a "sign-in expired" page
 * (the service's error handler). Forms carry a CSRF token per interaction (src/web/).
 */
import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { GatewayConfig } from '../config/schema.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { Logger } from '../logging/logger.js';
import type { ConsentMemory } from '../oauth/consent-memory.js';
import { ACCOUNT_CLIENT_ID } from '../oauth/constants.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { ResourceRegistry } from '../resources/registry.js';
import type { Store } from '../store/store.js';
import type { CsrfTokens } from '../web/csrf.js';
import { renderErrorPage } from '../web/error-page.js';
import { createFormCheck } from '../web/form-check.js';
import { sendPage } from '../web/send-page.js';
import type { AccountStore } from './accounts.js';
import type { LoginProvider } from './providers/provider.js';
import type { Reauthorization } from './reauthorization.js';
import { createAccessRefusal } from './steps/access-refusal.js';
import { accountConsentStep } from './steps/account-consent.js';
import { createLoginCompletion } from './steps/complete-login.js';
import {
  consentConfirmStep,
  consentPageStep,
  type ConsentClient,
  type ConsentGrants,
} from './steps/consent.js';
import { devLoginStep, type DevUser } from './steps/dev-login.js';
import { interactionOutcome, InteractionMismatch, type StepHandler } from './steps/interaction.js';
import { providerChoiceStep } from './steps/provider-choice.js';
import { callbackRelocation, callbackStep } from './steps/upstream-callback.js';
import { UpstreamLogins } from './steps/upstream-logins.js';
import { upstreamStartStep } from './steps/upstream-start.js';

export interface InteractionDependencies {
  /** `tokens.loginTtl` for pending upstream logins; `access` and `login` for the access rules. */
  config: Pick<GatewayConfig, 'tokens' | 'access' | 'login'>;
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
  events: SecurityEvents;
  logger: Logger;
}

export function createInteractionRouter(deps: InteractionDependencies): Router {
  const steps = createSteps(deps);
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });
  const { provider } = deps;
  const router = express.Router();

  /** Runs `handler` on this browser's interaction, unchecked (the step checks it itself). */
  const withInteraction =
    (handler: StepHandler) =>
    async (req: Request, res: Response): Promise<void> =>
      handler(req, res, await provider.interactionDetails(req, res));

  /** Runs `handler` once this browser's interaction is the path's, at `prompt` if named. */
  const atInteraction = (prompt: 'login' | 'consent' | undefined, handler: StepHandler) =>
    withInteraction(async (req, res, interaction) => {
      if (interaction.uid !== req.params.uid) throw new InteractionMismatch();
      if (prompt && interaction.prompt.name !== prompt) throw new InteractionMismatch();
      return handler(req, res, interaction);
    });

  // 1. oidc-provider's redirect, by prompt: login offers the sign-in methods, consent asks.
  router.get(
    '/interaction/:uid',
    atInteraction(undefined, async (req, res, interaction) => {
      const { name } = interaction.prompt;
      if (name === 'login') return steps.providerChoice(req, res, interaction);
      if (name === 'consent') return steps.consent(req, res, interaction);
      throw new Error(`unsupported prompt ${name}`);
    }),
  );
  // 2. The chosen sign-in method: the dev login's page and form, or the redirect upstream.
  router.get('/interaction/:uid/login/:providerId', atInteraction('login', steps.loginStart));
  router.post('/interaction/:uid/login/dev', form, atInteraction('login', steps.devLogin.submit));
  // 3. The upstream's callback: found by `state` and moved under the interaction, then the
  //    code redeemed (that step matches the interaction to the record kept at the start).
  router.get('/login/callback/:providerId', steps.callbackRelocation);
  router.get('/interaction/:uid/callback/:providerId', withInteraction(steps.callback));
  // 4. The consent form.
  router.post('/interaction/:uid/confirm', form, atInteraction('consent', steps.consentConfirm));
  return router;
}

/** Each step with only what it uses. */
function createSteps(deps: InteractionDependencies) {
  const { provider, csrf, events, logger, metrics } = deps;
  const outcome = interactionOutcome(provider);
  const upstreams = new Map(deps.upstreams.map((upstream) => [upstream.id, upstream]));
  const pending = new UpstreamLogins(deps.store, deps.config.tokens.loginTtl);
  const access = createAccessRefusal({ resources: deps.resources, csrf, outcome, events, metrics });
  const completeLogin = createLoginCompletion({
    config: deps.config,
    access,
    reauthorization: deps.reauthorization,
    outcome,
    metrics,
    logger,
  });
  // Token only: the interaction cookie (SameSite=Lax) is not sent on cross-site posts.
  const checkForm = createFormCheck({
    csrf,
    events,
    refuse: (res) =>
      sendPage(
        res,
        403,
        renderErrorPage({
          title: 'Request refused',
          error: 'invalid_request',
          description:
            'The form was not submitted from this sign-in page. Start again from your application.',
        }),
      ),
  });
  const grants: ConsentGrants = {
    find: (grantId) => provider.Grant.find(grantId),
    create: (owner) => new provider.Grant(owner),
  };
  const devLogin = devLoginStep({ devUsers: deps.devUsers, csrf, checkForm, completeLogin });
  const upstreamStart = upstreamStartStep({ upstreams, pending, logger });
  const accountConsent = accountConsentStep({ grants, outcome });
  const consentPage = consentPageStep({
    // The store adapter marks clients from a metadata document; oidc-provider's type has no field.
    findClient: async (clientId) =>
      (await provider.Client.find(clientId)) as ConsentClient | undefined,
    accounts: deps.accounts,
    resources: deps.resources,
    csrf,
    access,
  });
  return {
    providerChoice: providerChoiceStep({
      choices: [
        ...(deps.devUsers ? [{ id: 'dev', name: 'Development login' }] : []),
        ...deps.upstreams.map(({ id, name }) => ({ id, name })),
      ],
    }),
    devLogin,
    /** The dev login's page when it is on and chosen, else an upstream's start. */
    loginStart: (async (req, res, interaction) =>
      req.params.providerId === 'dev' && devLogin.page
        ? devLogin.page(req, res, interaction)
        : upstreamStart(req, res, interaction)) satisfies StepHandler,
    callbackRelocation: callbackRelocation({ pending, events }),
    callback: callbackStep({ upstreams, pending, outcome, completeLogin, events, metrics }),
    /** The gateway's own account client is granted `openid` without a page. */
    consent: (async (req, res, interaction) =>
      interaction.params.client_id === ACCOUNT_CLIENT_ID
        ? accountConsent(req, res, interaction)
        : consentPage(req, res, interaction)) satisfies StepHandler,
    consentConfirm: consentConfirmStep({
      checkForm,
      csrf,
      grants,
      consents: deps.consents,
      outcome,
      events,
      logger,
    }),
  };
}
