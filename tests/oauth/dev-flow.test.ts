import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { obtainTokens, registerClient, tokenRequest } from '../helpers/oauth-flow.js';

const RESOURCE = 'http://localhost:3999/mcp';

describe('authorization code flow with the development login', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.stop());

  it('issues an audience-bound JWT access token and a rotating refresh token', async () => {
    const client = await registerClient(gw.url);
    const { token, redirect, code, verifier } = await obtainTokens(gw.url, {
      client,
      resource: RESOURCE,
    });
    expect(redirect.searchParams.get('iss')).toBe(gw.url);
    expect(token.status).toBe(200);
    expect(token.headers.get('cache-control')).toBe('no-store');
    const accessToken = String(token.body.access_token);
    expect(decodeProtectedHeader(accessToken).typ).toBe('at+jwt');
    const claims = decodeJwt(accessToken);
    expect(claims.aud).toBe(RESOURCE);
    expect(claims.iss).toBe(gw.url);
    expect(claims.scope).toBe('mcp:tools');
    expect(claims.sub).toBe('dev:alice@example.com');
    expect(claims.email).toBe('alice@example.com');
    expect(typeof token.body.refresh_token).toBe('string');

    const refreshed = await tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: String(token.body.refresh_token),
      client_id: client.client_id,
      resource: RESOURCE,
    });
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.refresh_token).not.toBe(token.body.refresh_token);
    expect(decodeJwt(String(refreshed.body.access_token)).aud).toBe(RESOURCE);

    // RS-13: none of what this flow handled appears anywhere in the service's log.
    const secrets = [
      code,
      verifier,
      String(token.body.access_token),
      String(token.body.refresh_token),
      String(refreshed.body.access_token),
      String(refreshed.body.refresh_token),
      String(client.registration_access_token),
    ];
    const log = gw.logs.join('\n');
    expect(gw.logs.length).toBeGreaterThan(5);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(20);
      expect(log).not.toContain(secret);
    }
  });
});
