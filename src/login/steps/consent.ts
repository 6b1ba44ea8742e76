/**
 * The consent step: our own page for every client the user has not yet approved, and at
 * every authorization of a public client whose code goes to this computer
 * (src/oauth/native-consent.ts); then its form, which records the grant or ends the
 * authorization with `access_denied`.
 *
 * A code is only issued after login and consent, so an attacker who registers a client and
 * lures a user whose upstream session is still alive (the "confused deputy" of the MCP
 * Security Best Practices) still stops at a page naming the attacker's client.
 */
import type { InteractionResults } from 'oidc-provider';
import type { SecurityEvents } from '../../events/security-events.js';
import type { Logger } from '../../logging/logger.js';
import { isLoopbackHostname } from '../../net/loopback.js';
import type { ConsentMemory } from '../../oauth/consent-memory.js';
import { LOCAL_REDIRECT_REASON } from '../../oauth/native-consent.js';
import { grantableScopes, type ResourceRegistry } from '../../resources/registry.js';
import type { CsrfTokens } from '../../web/csrf.js';
import type { FormCheck } from '../../web/form-check.js';
import { sendPage } from '../../web/send-page.js';
import type { AccountRecord } from '../accounts.js';
import { renderConsent, type ConsentView } from '../views/consent-page.js';
import type { AccessRefusal } from './access-refusal.js';
import {
  interactionError,
  requestedResourceUrls,
  type Interaction,
  type InteractionOutcome,
  type StepHandler,
} from './interaction.js';

/** OpenID scopes that reveal something about the user, named on the consent page. */
const IDENTITY_SCOPES = new Set(['email', 'profile']);

/** What the consent page reads of the client (oidc-provider's `Client`). */
export interface ConsentClient {
  clientName?: string | undefined;
  redirectUris?: string[] | undefined;
  /** Set by the store adapter on clients identified by a Client ID Metadata Document. */
  clientIdMetadataDocument?: boolean | undefined;
}

/** What the confirmation does with oidc-provider's `Grant`. */
export interface ConsentGrant {
  jti?: string | undefined;
  addOIDCScope(scope: string): unknown;
  addOIDCClaims(claims: string[]): unknown;
  addResourceScope(resource: string, scope: string): unknown;
  save(): Promise<string>;
}

/** The user's grants to clients (oidc-provider's `Grant` model). */
export interface ConsentGrants {
  find(grantId: string): Promise<ConsentGrant | undefined>;
  create(owner: { accountId: string; clientId: string }): ConsentGrant;
}

/** What the prompt says is missing: scopes of each resource, OpenID scopes and claims. */
function missing(interaction: Interaction) {
  const details = interaction.prompt.details;
  return {
    resources: (details.missingResourceScopes ?? {}) as Record<string, string[]>,
    oidcScopes: (details.missingOIDCScope ?? []) as string[],
    oidcClaims: (details.missingOIDCClaims ?? []) as string[],
  };
}

export interface ConsentPageDependencies {
  findClient(clientId: string): Promise<ConsentClient | undefined>;
  accounts: { find(accountId: string): Promise<AccountRecord | undefined> };
  resources: Pick<ResourceRegistry, 'find' | 'soleResource'>;
  csrf: Pick<CsrfTokens, 'issue'>;
  access: AccessRefusal;
}

/** The page: the client, where the code goes, what it grants; approve and deny. */
export function consentPageStep(deps: ConsentPageDependencies): StepHandler {
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

  return async (req, res, interaction) => {
    const clientId = String(interaction.params.client_id);
    const client = await deps.findClient(clientId);
    if (!client) throw new Error('client disappeared during the interaction');
    const redirectUri = new URL(String(interaction.params.redirect_uri));
    const asked = missing(interaction);
    // Asked again although everything was approved before (native-consent.ts): the page
    // names what this request would get, so the user approves it knowingly.
    const localRedirect = interaction.prompt.reasons.includes(LOCAL_REDIRECT_REASON);
    const reconfirm = localRedirect && Object.keys(asked.resources).length === 0;
    const requestedResources = reconfirm
      ? requestedScopes(interaction)
      : Object.entries(asked.resources);
    const accountId = interaction.session?.accountId ?? '';
    const account = await deps.accounts.find(accountId);
    // A user still signed in here skips the login step: the MCP server they now ask for
    // must admit them too.
    const refusing = account ? deps.access.refusingResource(interaction, account) : undefined;
    if (account && refusing) {
      return deps.access.refuse(
        req,
        res,
        interaction,
        account,
        refusing.decision,
        refusing.resource,
      );
    }
    const registered = client.redirectUris ?? [];
    const view: ConsentView = {
      uid: interaction.uid,
      csrfToken: await deps.csrf.issue(interaction.uid),
      clientName: client.clientName ?? clientId,
      clientId,
      redirectHost: redirectUri.host,
      approvedBefore: localRedirect && Boolean(interaction.grantId),
      verifiedHost: client.clientIdMetadataDocument ? new URL(clientId).host : undefined,
      loopbackOnly:
        registered.length > 0 &&
        registered.every((uri) => isLoopbackHostname(new URL(uri).hostname)),
      user: account?.email ?? account?.name ?? accountId,
      resources: requestedResources.map(([url, scopes]) => ({
        name: deps.resources.find(url)?.name ?? url,
        url,
        scopes,
      })),
      oidcScopes: asked.oidcScopes.filter((scope) => IDENTITY_SCOPES.has(scope)),
    };
    return sendPage(res, 200, renderConsent(view));
  };
}

export interface ConsentConfirmDependencies {
  /** The login steps' form check (CSRF token per interaction). */
  checkForm: FormCheck;
  csrf: Pick<CsrfTokens, 'discard'>;
  grants: ConsentGrants;
  consents: Pick<ConsentMemory, 'remember'>;
  outcome: Pick<InteractionOutcome, 'finish'>;
  events: SecurityEvents;
  logger: Pick<Logger, 'info'>;
}

/** The form: deny ends the authorization; approve adds what was missing to the grant. */
export function consentConfirmStep(deps: ConsentConfirmDependencies): StepHandler {
  return async (req, res, interaction) => {
    const post = { tokenKey: interaction.uid, details: { interaction: interaction.uid } };
    if (!(await deps.checkForm(req, res, post))) return;
    await deps.csrf.discard(interaction.uid);
    const clientId = String(interaction.params.client_id);
    const accountId = interaction.session!.accountId;
    const body = req.body as Record<string, unknown> | undefined;
    if (body?.decision !== 'approve') {
      deps.events.emit('consent_denied', { ip: req.ip, clientId, subject: accountId });
      return deps.outcome.finish(
        req,
        res,
        interactionError('access_denied', 'the user denied the request'),
      );
    }
    const grant = interaction.grantId
      ? (await deps.grants.find(interaction.grantId))!
      : deps.grants.create({ accountId, clientId });
    const approved = missing(interaction);
    if (approved.oidcScopes.length) grant.addOIDCScope(approved.oidcScopes.join(' '));
    if (approved.oidcClaims.length) grant.addOIDCClaims(approved.oidcClaims);
    for (const [resource, scopes] of Object.entries(approved.resources)) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const adds =
      approved.oidcScopes.length +
      approved.oidcClaims.length +
      Object.keys(approved.resources).length;
    // Approving again what was approved before (native-consent.ts) changes nothing to store.
    const grantId = adds === 0 && grant.jti ? grant.jti : await grant.save();
    if (adds > 0) {
      await deps.consents.remember(accountId, clientId, {
        resources: approved.resources,
        oidcScopes: approved.oidcScopes,
      });
    }
    deps.logger.info('consent', { event: 'consent', clientId, subject: accountId });
    const result: InteractionResults = { consent: { grantId } };
    return deps.outcome.finish(req, res, result);
  };
}
