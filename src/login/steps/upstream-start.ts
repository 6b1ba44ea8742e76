/**
 * The start of an upstream login: the provider's authorization URL, with what its callback
 * will need kept (upstream-logins.ts). An unknown provider is a 404 page; one that cannot be
 * reached right now a 503 page.
 */
import type { Logger } from '../../logging/logger.js';
import { renderErrorPage } from '../../web/error-page.js';
import { sendPage } from '../../web/send-page.js';
import type { LoginProvider } from '../providers/provider.js';
import type { StepHandler } from './interaction.js';
import type { UpstreamLogins } from './upstream-logins.js';

export interface UpstreamStartDependencies {
  upstreams: ReadonlyMap<string, LoginProvider>;
  pending: Pick<UpstreamLogins, 'keep'>;
  logger: Pick<Logger, 'warn'>;
}

export function upstreamStartStep(deps: UpstreamStartDependencies): StepHandler {
  return async (req, res, interaction) => {
    const providerId = String(req.params.providerId);
    const upstream = deps.upstreams.get(providerId);
    if (!upstream) {
      return sendPage(
        res,
        404,
        renderErrorPage({ title: 'Unknown sign-in method', error: 'not_found' }),
      );
    }
    let started;
    try {
      started = await upstream.start();
    } catch (error) {
      deps.logger.warn('upstream login could not start', {
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
    await deps.pending.keep({ uid: interaction.uid, providerId, pending });
    return res.redirect(303, url.href);
  };
}
