/**
 * The first step of a login prompt: the sign-in methods offered (the dev login when enabled,
 * then each upstream provider). With only one, the browser goes straight to it.
 */
import { sendPage } from '../../web/send-page.js';
import { renderProviderChoice, type ProviderChoice } from '../views/login-pages.js';
import type { StepHandler } from './interaction.js';

export interface ProviderChoiceDependencies {
  /** In the order shown. */
  choices: ProviderChoice[];
}

export function providerChoiceStep({ choices }: ProviderChoiceDependencies): StepHandler {
  return async (_req, res, interaction) => {
    if (choices.length === 1) {
      return res.redirect(303, `/interaction/${interaction.uid}/login/${choices[0]!.id}`);
    }
    return sendPage(res, 200, renderProviderChoice(interaction.uid, choices));
  };
}
