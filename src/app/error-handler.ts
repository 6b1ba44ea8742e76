/**
 * The one error path of the Express surface (everything but `/verify` and oidc-provider's own
 * endpoints, which answer their errors themselves). Whatever a step, a guard or a router passes
 * on, or throws, ends here and is answered by kind:
 *
 * | error                                               | answer                                   |
 * | --------------------------------------------------- | ---------------------------------------- |
 * | a typed OAuth error (src/http/errors.ts)            | its status and headers, JSON body        |
 * | an expired or foreign sign-in (oidc-provider's      | the "sign-in expired" page, 400, and an  |
 * | SessionNotFound, InteractionMismatch)               | `oauth_error` security event             |
 * | another client error (status 4xx: body-parser's     | a page on the browser routes, else JSON  |
 * | 413, a malformed body or path)                      | `invalid_request` "malformed request"    |
 * | anything else                                       | logged; the "something went wrong" page  |
 */
import type { ErrorRequestHandler } from 'express';
import { errors as oidcErrors } from 'oidc-provider';
import type { SecurityEvents } from '../events/security-events.js';
import { InvalidRequest, OAuthHttpError, sendOAuthError } from '../http/errors.js';
import type { Logger } from '../logging/logger.js';
import { InteractionMismatch } from '../login/steps/interaction.js';
import { renderErrorPage, sendSignInExpired } from '../web/error-page.js';
import { sendPage } from '../web/send-page.js';

/** The routes a person's browser visits (pages), as opposed to the JSON API. */
function isBrowserRoute(path: string): boolean {
  return /^\/(interaction|login|authorize|account|admin)(\/|$)/.test(path);
}

/** Mounted after every router and before oidc-provider (src/gateway.ts). */
export function errorHandler(logger: Logger, events: SecurityEvents): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) return next(error);
    if (error instanceof OAuthHttpError) return sendOAuthError(res, error);
    if (error instanceof oidcErrors.SessionNotFound || error instanceof InteractionMismatch) {
      events.emit('oauth_error', { ip: req.ip, reason: (error as Error).message });
      return sendSignInExpired(
        res,
        'This sign-in session has expired or belongs to another browser. Start again from your application.',
      );
    }
    // Client errors raised by Express itself (body-parser's 413, malformed bodies, a path
    // whose percent-encoding cannot be decoded): a page for the browser routes, JSON for the
    // API ones (registration, metadata, token…).
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      if (!isBrowserRoute(req.path)) {
        return sendOAuthError(res, new InvalidRequest('malformed request', status));
      }
      return sendPage(
        res,
        status,
        renderErrorPage({
          title: 'Request refused',
          error: 'invalid_request',
          description: (error as Error).message,
        }),
      );
    }
    logger.error('request failed', { error });
    return sendPage(
      res,
      500,
      renderErrorPage({ title: 'Something went wrong', error: 'server_error' }),
    );
  };
}
