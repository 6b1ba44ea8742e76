/**
 * oidc-provider's events, turned into security events (one JSON line each, for operators and
 * CrowdSec): registrations, refused registrations and CIMD documents, PKCE failures, replayed
 * codes and reused refresh tokens, and any other OAuth error. The classification reads the
 * error's detail, which oidc-provider sets to the precise reason (never a token).
 */
import type Provider from 'oidc-provider';
import type { Logger } from './logger.js';
import { securityEvent, type SecurityEventKind } from './security-events.js';

interface EventContext {
  ip?: string;
  oidc?: { client?: { clientId: string }; params?: Record<string, unknown> };
}

interface ProviderError extends Error {
  error?: string;
  error_description?: string;
  error_detail?: string;
}

/** Which security event an OAuth error at `endpoint` is. Exported for tests. */
export function classifyOAuthError(endpoint: string, error: ProviderError): SecurityEventKind {
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

export function logOAuthEvents(provider: Provider, logger: Logger): void {
  const on = provider.on.bind(provider) as (
    event: string,
    listener: (...args: never[]) => void,
  ) => void;

  on(
    'registration_create.success',
    (_ctx: EventContext, client: { clientId: string; clientName?: string }) => {
      securityEvent(logger, 'client_registered', {
        clientId: client.clientId,
        clientName: client.clientName,
      });
    },
  );

  for (const endpoint of [
    'authorization.error',
    'grant.error',
    'registration_create.error',
    'registration_read.error',
    'revocation.error',
    'introspection.error',
  ]) {
    on(endpoint, (ctx: EventContext, error: ProviderError) => {
      securityEvent(logger, classifyOAuthError(endpoint, error), {
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

  on('server_error', (_ctx: EventContext, error: Error) => {
    logger.error('oauth server error', { error });
  });
}
