/**
 * oidc-provider's events, turned into security events (one JSON line each, for operators and
 * CrowdSec): registrations, refused registrations and CIMD documents, PKCE failures, replayed
 * codes and reused refresh tokens, and any other OAuth error. The classification reads the
 * error's detail, which oidc-provider sets to the precise reason (never a token).
 */
import {
  onProviderEvent,
  type OAuthEventError,
  type ProviderErrorEvent,
  type ProviderEventSource,
} from './provider-events.js';
import type { SecurityEventKind, SecurityEvents } from './security-events.js';
import type { Logger } from '../logging/logger.js';

/** Which security event an OAuth error at `endpoint` is. Exported for tests. */
export function classifyOAuthError(endpoint: string, error: OAuthEventError): SecurityEventKind {
  const detail = `${error.error_detail ?? ''} ${error.error_description ?? ''}`;
  if (endpoint === 'registration_create.error') return 'registration_refused';
  if (/client_id metadata document|client is not allowed/.test(detail)) return 'cimd_refused';
  if (endpoint === 'grant.error') {
    if (/refresh token already used|refresh token already/.test(detail))
      return 'refresh_token_reuse';
    if (/authorization code already consumed|grant already used/.test(detail)) return 'code_replay';
    if (/code_verifier|PKCE/i.test(detail)) return 'pkce_failed';
  }
  return 'oauth_error';
}

/** The endpoints whose errors are security events. */
const ERROR_EVENTS: ProviderErrorEvent[] = [
  'authorization.error',
  'grant.error',
  'registration_create.error',
  'registration_read.error',
  'revocation.error',
  'introspection.error',
];

/** Raises oidc-provider's registrations and errors as security events; logs its 500s. */
export function logOAuthEvents(
  provider: ProviderEventSource,
  deps: { events: SecurityEvents; logger: Logger },
): void {
  const { events, logger } = deps;
  onProviderEvent(provider, 'registration_create.success', (_ctx, client) => {
    events.emit('client_registered', {
      clientId: client.clientId,
      clientName: client.clientName,
    });
  });

  for (const endpoint of ERROR_EVENTS) {
    onProviderEvent(provider, endpoint, (ctx, error) => {
      events.emit(classifyOAuthError(endpoint, error), {
        clientId: ctx?.oidc?.client?.clientId,
        grantType:
          typeof ctx?.oidc?.params?.grant_type === 'string'
            ? ctx.oidc.params.grant_type
            : undefined,
        error: error.error ?? error.name,
        reason: error.error_detail ?? error.error_description ?? error.message,
        endpoint,
      });
    });
  }

  onProviderEvent(provider, 'server_error', (_ctx, error) => {
    logger.error('oauth server error', { error });
  });
}
