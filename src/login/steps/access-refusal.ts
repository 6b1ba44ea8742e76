/**
 * The access rules at the login and consent steps: the MCP servers an authorization asks for
 * must each admit the user, and a refusal ends the authorization with `access_denied` behind
 * a page that says why.
 */
import type { Request, Response } from 'express';
import type { SecurityEvents } from '../../events/security-events.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { evaluateResourceAccess, type AccessDecision } from '../../policy/access.js';
import type { ResourceRegistry } from '../../resources/registry.js';
import type { CsrfTokens } from '../../web/csrf.js';
import { sendPage } from '../../web/send-page.js';
import type { Identity } from '../accounts.js';
import { renderAccessDenied } from '../views/login-pages.js';
import { requestedResourceUrls, type Interaction, type InteractionOutcome } from './interaction.js';

export type Refusal = Extract<AccessDecision, { allowed: false }>;

export interface AccessRefusalDependencies {
  resources: Pick<ResourceRegistry, 'find'>;
  csrf: Pick<CsrfTokens, 'discard'>;
  outcome: Pick<InteractionOutcome, 'deny'>;
  events: SecurityEvents;
  metrics?: Pick<GatewayMetrics, 'login'> | undefined;
}

export interface AccessRefusal {
  /** The first MCP server the authorization asks for that refuses this user, if any. */
  refusingResource(
    interaction: Interaction,
    identity: Identity,
  ): { resource: string; decision: Refusal } | undefined;
  /** Raises `access_denied`, ends the authorization and sends the 403 page. */
  refuse(
    req: Request,
    res: Response,
    interaction: Interaction,
    identity: Identity,
    decision: Refusal,
    resource?: string,
  ): Promise<void>;
}

export function createAccessRefusal(deps: AccessRefusalDependencies): AccessRefusal {
  return {
    refusingResource(interaction, identity) {
      for (const url of requestedResourceUrls(interaction)) {
        const resource = deps.resources.find(url);
        if (!resource) continue; // oidc-provider answers invalid_target for it
        const decision = evaluateResourceAccess(identity, resource);
        if (!decision.allowed) return { resource: resource.url, decision };
      }
      return undefined;
    },
    async refuse(req, res, interaction, identity, decision, resource) {
      deps.metrics?.login(identity.provider, 'denied');
      deps.events.emit('access_denied', {
        ip: req.ip,
        provider: identity.provider,
        subject: identity.sub,
        ...(resource ? { resource } : {}),
        reason: decision.reason,
      });
      await deps.csrf.discard(interaction.uid);
      const link = await deps.outcome.deny(req, res, interaction, 'the user is not allowed access');
      sendPage(res, 403, renderAccessDenied(decision.reason, link));
    },
  };
}
