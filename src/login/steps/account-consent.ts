/**
 * Consent for the gateway's own account page (src/account/): no third party, so no page. The
 * user who just signed in to see their connected apps is not asked whether the gateway may
 * know who they are. Only `openid` is granted; the client can ask for nothing else (no
 * resource: see src/oauth/provider.ts), and anything else it asks for is refused here rather
 * than granted.
 */
import { ACCOUNT_CLIENT_ID } from '../../oauth/constants.js';
import type { ConsentGrants } from './consent.js';
import { interactionError, type InteractionOutcome, type StepHandler } from './interaction.js';

export interface AccountConsentDependencies {
  grants: ConsentGrants;
  outcome: Pick<InteractionOutcome, 'finish'>;
}

export function accountConsentStep(deps: AccountConsentDependencies): StepHandler {
  return async (req, res, interaction) => {
    const missingResources = interaction.prompt.details.missingResourceScopes ?? {};
    const missingOidc = (interaction.prompt.details.missingOIDCScope ?? []) as string[];
    if (
      Object.keys(missingResources).length > 0 ||
      missingOidc.some((scope) => scope !== 'openid')
    ) {
      return deps.outcome.finish(
        req,
        res,
        interactionError('invalid_scope', 'the account client is granted openid only'),
      );
    }
    const accountId = interaction.session!.accountId;
    const owner = { accountId, clientId: ACCOUNT_CLIENT_ID };
    const grant = interaction.grantId
      ? ((await deps.grants.find(interaction.grantId)) ?? deps.grants.create(owner))
      : deps.grants.create(owner);
    grant.addOIDCScope('openid');
    return deps.outcome.finish(req, res, { consent: { grantId: await grant.save() } });
  };
}
