/**
 * The upstream provider's callback, in two steps.
 *
 * The callback URL is fixed (`/login/callback/<provider>`, registered at the provider) while
 * oidc-provider's interaction cookie is scoped to `/interaction/<uid>`. The first step
 * therefore finds the interaction by the upstream `state` and sends the browser back under
 * `/interaction/<uid>/callback/<provider>`, where the second step, with the cookie proving
 * that the browser finishing the login is the one that started it, redeems the code.
 */
import type { Request, Response } from 'express';
import type { SecurityEvents } from '../../events/security-events.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { renderErrorPage, sendSignInExpired } from '../../web/error-page.js';
import { sendPage } from '../../web/send-page.js';
import { UpstreamRefused, type LoginProvider, type UpstreamLogin } from '../providers/provider.js';
import type { LoginCompletion } from './complete-login.js';
import { InteractionMismatch, type InteractionOutcome, type StepHandler } from './interaction.js';
import type { UpstreamLogins } from './upstream-logins.js';

/** The query of the request as the browser sent it (`?…`, or empty). */
const searchOf = (req: Request) => new URL(req.originalUrl, 'http://placeholder').search;

const stateOf = (req: Request) =>
  typeof req.query.state === 'string' ? req.query.state : undefined;

export interface CallbackRelocationDependencies {
  pending: Pick<UpstreamLogins, 'peek'>;
  events: SecurityEvents;
}

/** Step 1: find the interaction by `state`, move the browser under its path. */
export function callbackRelocation(deps: CallbackRelocationDependencies) {
  return async (req: Request, res: Response): Promise<void> => {
    const state = stateOf(req);
    const record = state ? await deps.pending.peek(state) : undefined;
    if (!record || record.providerId !== req.params.providerId) {
      deps.events.emit('upstream_state_invalid', {
        ip: req.ip,
        provider: String(req.params.providerId),
      });
      return sendSignInExpired(
        res,
        'This sign-in link is unknown, was already used or has expired. Start again from your application.',
      );
    }
    return res.redirect(
      303,
      `/interaction/${record.uid}/callback/${record.providerId}${searchOf(req)}`,
    );
  };
}

export interface CallbackStepDependencies {
  upstreams: ReadonlyMap<string, LoginProvider>;
  pending: Pick<UpstreamLogins, 'take'>;
  outcome: Pick<InteractionOutcome, 'deny'>;
  completeLogin: LoginCompletion;
  events: SecurityEvents;
  metrics?: Pick<GatewayMetrics, 'login'> | undefined;
}

/**
 * Step 2: under the interaction's path, with its cookie: the kept record taken (used once)
 * and matched to this interaction and provider, the code redeemed, the user logged in.
 */
export function callbackStep(deps: CallbackStepDependencies): StepHandler {
  return async (req, res, interaction) => {
    const record = await deps.pending.take(stateOf(req) ?? '');
    const upstream = deps.upstreams.get(String(req.params.providerId));
    if (
      !record ||
      !upstream ||
      record.uid !== interaction.uid ||
      record.uid !== req.params.uid ||
      record.providerId !== upstream.id
    ) {
      deps.events.emit('upstream_state_invalid', {
        ip: req.ip,
        provider: String(req.params.providerId),
      });
      throw new InteractionMismatch();
    }
    const callbackUrl = new URL(upstream.redirectUri);
    callbackUrl.search = searchOf(req);
    let login: UpstreamLogin;
    try {
      login = await upstream.finish(callbackUrl, record.pending);
    } catch (error) {
      return loginFailed(req, res, interaction, upstream, callbackUrl, error);
    }
    return deps.completeLogin(req, res, interaction, login);
  };

  /**
   * The user cancelled at the provider, the provider refused, or it could not be reached:
   * the application gets access_denied, the user a page saying which.
   */
  async function loginFailed(
    req: Request,
    res: Response,
    interaction: Parameters<StepHandler>[2],
    upstream: LoginProvider,
    callbackUrl: URL,
    error: unknown,
  ): Promise<void> {
    const refused = error instanceof UpstreamRefused;
    deps.metrics?.login(upstream.id, 'failed');
    deps.events.emit('login_failed', {
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
        returnTo: await deps.outcome.deny(
          req,
          res,
          interaction,
          cancelled ? 'the user cancelled the sign-in' : 'the sign-in failed',
        ),
      }),
    );
  }
}
