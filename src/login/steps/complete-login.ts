/**
 * The end of every login (dev or upstream): the access rules, then the login recorded and
 * handed to oidc-provider, or the page saying why it was refused.
 */
import type { Request, Response } from 'express';
import type { GatewayConfig } from '../../config/schema.js';
import type { Logger } from '../../logging/logger.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { evaluateLogin } from '../../policy/access.js';
import type { UpstreamLogin } from '../providers/provider.js';
import type { Reauthorization } from '../reauthorization.js';
import type { AccessRefusal } from './access-refusal.js';
import type { Interaction, InteractionOutcome } from './interaction.js';

export interface LoginCompletionDependencies {
  /** The access rules (`access`, `login`: evaluateLogin reads both). */
  config: Pick<GatewayConfig, 'access' | 'login'>;
  access: AccessRefusal;
  /** Records logins (identity and sealed upstream session) for the checks at refresh. */
  reauthorization: Pick<Reauthorization, 'recordLogin'>;
  outcome: Pick<InteractionOutcome, 'finish'>;
  metrics?: Pick<GatewayMetrics, 'login'> | undefined;
  logger: Pick<Logger, 'info'>;
}

/** Finishes the login step with the identity an upstream (or the dev login) vouched for. */
export type LoginCompletion = (
  req: Request,
  res: Response,
  interaction: Interaction,
  login: UpstreamLogin,
) => Promise<void>;

export function createLoginCompletion(deps: LoginCompletionDependencies): LoginCompletion {
  return async (req, res, interaction, login) => {
    const { identity } = login;
    const decision = evaluateLogin(identity, deps.config);
    if (!decision.allowed) return deps.access.refuse(req, res, interaction, identity, decision);
    const refusing = deps.access.refusingResource(interaction, identity);
    if (refusing) {
      return deps.access.refuse(
        req,
        res,
        interaction,
        identity,
        refusing.decision,
        refusing.resource,
      );
    }
    await deps.reauthorization.recordLogin(login);
    deps.metrics?.login(identity.provider, 'success');
    deps.logger.info('login', {
      event: 'login',
      provider: identity.provider,
      subject: identity.sub,
      rule: decision.rule,
    });
    return deps.outcome.finish(req, res, { login: { accountId: identity.sub } });
  };
}
