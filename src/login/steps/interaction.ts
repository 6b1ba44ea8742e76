/**
 * What every login step shares: the interaction as oidc-provider hands it over, how a step
 * ends it, and the refusal when the browser or the step does not match.
 */
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { ReturnLink } from '../../web/error-page.js';

/** What the steps read of an interaction (`provider.interactionDetails`). */
export interface Interaction {
  uid: string;
  params: Record<string, unknown>;
  prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
  /** The signed-in user, once the login step is done. */
  session?: { accountId: string } | undefined;
  /** The grant this client already holds from this user, if any. */
  grantId?: string | undefined;
}

/** A step's handler, called once the router has loaded and checked the interaction. */
export type StepHandler = (req: Request, res: Response, interaction: Interaction) => Promise<void>;

/** How a step ends the interaction: oidc-provider takes the browser back to the client. */
export interface InteractionOutcome {
  /** Finishes the interaction with `result` (a login, a consent, or an error for the client). */
  finish(req: Request, res: Response, result: InteractionResults): Promise<void>;
  /**
   * Ends the authorization with `access_denied` for the client, behind a page that says why:
   * the link takes the browser back to the client's redirect URI with the error (RFC 6749
   * §4.1.2.1), so that the application does not wait forever; no code is issued.
   */
  deny(
    req: Request,
    res: Response,
    interaction: Interaction,
    description: string,
  ): Promise<ReturnLink>;
}

/**
 * An error result for `InteractionOutcome.finish`: oidc-provider sends it to the client's
 * redirect URI as `error` and `error_description` (RFC 6749 §4.1.2.1). Every step that ends
 * the authorization with an error builds it here.
 */
export function interactionError(error: string, description: string): InteractionResults {
  return { error, error_description: description };
}

/** The outcome on oidc-provider; no step merges with an earlier submission. */
export function interactionOutcome(
  provider: Pick<Provider, 'interactionFinished' | 'interactionResult' | 'Client'>,
): InteractionOutcome {
  const options = { mergeWithLastSubmission: false };
  return {
    finish: (req, res, result) => provider.interactionFinished(req, res, result, options),
    async deny(req, res, interaction, description) {
      const clientId = String(interaction.params.client_id);
      const client = await provider.Client.find(clientId).catch(() => undefined);
      const url = await provider.interactionResult(
        req,
        res,
        interactionError('access_denied', description),
        options,
      );
      return { url, clientName: client?.clientName ?? clientId };
    },
  };
}

/** The `resource` parameters of an authorization request, as given. */
export function requestedResourceUrls(interaction: Pick<Interaction, 'params'>): string[] {
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
