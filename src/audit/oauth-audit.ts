/**
 * The authorization server's side of the audit trail: oidc-provider's events become audit
 * records. Which event gives what (oidc-provider 9):
 *
 *   `grant.saved` (the Grant model was saved: consent given or widened, remembered consent
 *       turned into a grant)                                              → `grant_saved`
 *   `grant.success` (the token endpoint answered with tokens)           → `token_issued`
 *       (authorization_code, client_credentials) or `token_refreshed` (refresh_token)
 *   `grant.revoked` (oidc-provider revoked a grant: the revocation endpoint, a replayed code,
 *       a reused refresh token)                                          → `grant_revoked`
 *   `grant.error` for revocations the gateway makes without that event (the store adapter's
 *       atomic single-use check losing a race, access withdrawn at a refresh)  → `grant_revoked`
 *   `registration_{create,update,delete}.success`   → `client_registered|updated|deleted`
 *
 * oidc-provider has no `revocation.success` event: revoking a refresh token revokes its grant
 * (the default `revokeGrantPolicy`), which `grant.revoked` reports with `reason: revoked`.
 *
 * Records name the subject, client, grant, resources and scopes, never a token value: not
 * even a token's `jti` (for opaque tokens the jti *is* the token).
 */
import {
  onProviderEvent,
  type EventClient,
  type EventEntity,
  type OAuthEventContext,
  type ProviderEventSource,
} from '../events/provider-events.js';
import { currentClientIp } from '../logging/logger.js';
import type { AuditFields, AuditKind, AuditLog } from './audit-log.js';

/** Entities that carry the subject and grant of a token request, in order of preference. */
const GRANT_ENTITIES = ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'Grant'];

function fromEntities(ctx: OAuthEventContext): EventEntity {
  const entities = ctx.oidc?.entities ?? {};
  const found: EventEntity = {};
  for (const name of GRANT_ENTITIES) {
    const entity = entities[name];
    found.accountId ??= entity?.accountId;
    found.grantId ??= entity?.grantId ?? (name === 'Grant' ? grantJti(entity) : undefined);
  }
  return found;
}

function grantJti(entity: unknown): string | undefined {
  const jti = (entity as { jti?: unknown } | undefined)?.jti;
  return typeof jti === 'string' ? jti : undefined;
}

/** Why oidc-provider revoked a grant, from the endpoint it happened at. */
function revocationReason(route: string | undefined): string {
  if (route === 'revocation') return 'revoked';
  if (route === 'token') return 'replay';
  return route ?? 'unknown';
}

export function auditOAuthEvents(provider: ProviderEventSource, audit: AuditLog): void {
  const record = (kind: AuditKind, fields: AuditFields): void => {
    void audit.append(kind, fields);
  };
  /** Requests whose grant revocation was already recorded through `grant.revoked`. */
  const revokedIn = new WeakSet<object>();

  onProviderEvent(provider, 'grant.saved', (grant) => {
    record('grant_saved', {
      subject: grant.accountId,
      clientId: grant.clientId,
      grantId: grant.jti,
      openidScope: grant.openid?.scope,
      // A list, not a map keyed by URL: field names are screened for secrets, URLs are not names.
      resources: Object.entries(grant.resources ?? {}).map(([resource, scope]) => ({
        resource,
        scope: scope ?? '',
      })),
      ip: currentClientIp(),
    });
  });

  onProviderEvent(provider, 'grant.success', (ctx) => {
    const grantType = String(ctx.oidc?.params?.grant_type ?? '');
    const accessToken = ctx.oidc?.entities?.AccessToken;
    const known = fromEntities(ctx);
    record(grantType === 'refresh_token' ? 'token_refreshed' : 'token_issued', {
      grantType,
      subject: known.accountId,
      clientId: ctx.oidc?.client?.clientId,
      grantId: known.grantId,
      resource: accessToken?.resourceServer?.identifier?.(),
      scope: accessToken?.scope,
      refreshIssued: ctx.oidc?.entities?.RefreshToken !== undefined,
      ip: ctx.ip,
    });
  });

  onProviderEvent(provider, 'grant.revoked', (ctx, grantId) => {
    revokedIn.add(ctx);
    const known = fromEntities(ctx);
    record('grant_revoked', {
      reason: revocationReason(ctx.oidc?.route),
      subject: known.accountId ?? ctx.oidc?.session?.accountId,
      clientId: ctx.oidc?.client?.clientId,
      grantId,
      ip: ctx.ip,
    });
  });

  onProviderEvent(provider, 'grant.error', (ctx, error) => {
    if (revokedIn.has(ctx)) return;
    const detail = error.error_detail ?? '';
    let reason: string | undefined;
    if (detail.startsWith('access withdrawn')) reason = 'access_withdrawn';
    else if (/already used$/.test(detail)) reason = 'replay';
    if (reason === undefined) return;
    const known = fromEntities(ctx);
    if (known.grantId === undefined) return;
    record('grant_revoked', {
      reason,
      subject: known.accountId,
      clientId: ctx.oidc?.client?.clientId,
      grantId: known.grantId,
      ip: ctx.ip,
    });
  });

  const clientChange =
    (kind: AuditKind) =>
    (ctx: OAuthEventContext, client: EventClient): void => {
      record(kind, {
        clientId: client.clientId,
        clientName: client.clientName,
        redirectUris: client.redirectUris,
        grantTypes: client.grantTypes,
        authMethod: client.tokenEndpointAuthMethod,
        ip: ctx.ip,
      });
    };
  onProviderEvent(provider, 'registration_create.success', clientChange('client_registered'));
  onProviderEvent(provider, 'registration_update.success', clientChange('client_updated'));
  onProviderEvent(provider, 'registration_delete.success', clientChange('client_deleted'));
}
