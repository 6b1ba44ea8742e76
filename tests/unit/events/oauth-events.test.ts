/**
 * oidc-provider's events as security events (src/events/oauth-events.ts), driven by an
 * EventEmitter standing in for the provider: what each event raises, with which fields, and
 * that a 500 is logged as an error rather than raised.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import { logOAuthEvents } from '../../../src/events/oauth-events.js';
import {
  SecurityEventEmitter,
  type SecurityEventDetails,
  type SecurityEventKind,
} from '../../../src/events/security-events.js';
import { captureLogger } from '../../helpers/captured-logger.js';

function setUp() {
  const provider = new EventEmitter();
  const raised: { kind: SecurityEventKind; details: SecurityEventDetails }[] = [];
  const events = new SecurityEventEmitter([(kind, details) => raised.push({ kind, details })]);
  const captured = captureLogger();
  logOAuthEvents(provider, { events, logger: captured.logger });
  return { provider, raised, captured };
}

const providerError = (error: string, detail: string) =>
  Object.assign(new Error(error), { error, error_detail: detail });

describe('logOAuthEvents', () => {
  it('raises client_registered with the client id and name', () => {
    const { provider, raised } = setUp();
    provider.emit('registration_create.success', {}, { clientId: 'c1', clientName: 'Inspector' });
    expect(raised).toEqual([
      { kind: 'client_registered', details: { clientId: 'c1', clientName: 'Inspector' } },
    ]);
  });

  it('classifies token endpoint errors by their detail, with client, grant type and endpoint', () => {
    const { provider, raised } = setUp();
    const ctx = { oidc: { client: { clientId: 'c1' }, params: { grant_type: 'refresh_token' } } };
    provider.emit('grant.error', ctx, providerError('invalid_grant', 'refresh token already used'));
    provider.emit('grant.error', ctx, providerError('invalid_grant', 'PKCE verification failed'));
    provider.emit('revocation.error', {}, providerError('invalid_request', 'no token'));
    expect(raised).toEqual([
      {
        kind: 'refresh_token_reuse',
        details: {
          clientId: 'c1',
          grantType: 'refresh_token',
          error: 'invalid_grant',
          reason: 'refresh token already used',
          endpoint: 'grant.error',
        },
      },
      expect.objectContaining({ kind: 'pkce_failed' }),
      {
        kind: 'oauth_error',
        details: {
          clientId: undefined,
          grantType: undefined,
          error: 'invalid_request',
          reason: 'no token',
          endpoint: 'revocation.error',
        },
      },
    ]);
  });

  it('logs a server error as an error line, not a security event', () => {
    const { provider, raised, captured } = setUp();
    provider.emit('server_error', {}, new Error('adapter exploded'));
    expect(raised).toEqual([]);
    expect(captured.records()).toEqual([
      expect.objectContaining({ level: 'error', message: 'oauth server error' }),
    ]);
  });
});
