/**
 * Bad input gets a clear error, and the process keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';

describe('bad input', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.stop());

  const get = (path: string) => fetch(`${gw.url}${path}`, { redirect: 'manual' });

  it.each([
    ['an unknown interaction', '/interaction/unknown-uid'],
    ['a login step without the interaction cookie', '/interaction/unknown-uid/login/dev'],
    ['an upstream callback without state', '/login/callback/corp'],
    ['an upstream callback with an unknown state', '/login/callback/corp?state=forged&code=x'],
    ['an interaction callback without cookie', '/interaction/u/callback/corp?state=forged&code=x'],
  ])('answers %s with an error page, never a redirect', async (_label, path) => {
    const response = await get(path);
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await response.text()).toContain('Sign-in expired');
  });

  it('refuses a consent POST without the interaction cookie', async () => {
    const response = await fetch(`${gw.url}/interaction/unknown-uid/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'decision=approve&csrf=x',
      redirect: 'manual',
    });
    expect(response.status).toBe(400);
  });

  it('refuses an oversized form body', async () => {
    const response = await fetch(`${gw.url}/interaction/unknown-uid/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf=${'x'.repeat(10_000)}`,
      redirect: 'manual',
    });
    expect(response.status).toBe(413);
  });

  it('answers an authorization request without parameters with an error page', async () => {
    const response = await get('/authorize');
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });

  it.each([
    ['a JSON body', 'application/json', '{"grant_type":"authorization_code"}'],
    ['an empty form', 'application/x-www-form-urlencoded', ''],
    ['garbage', 'application/x-www-form-urlencoded', '%%%&&&=='],
  ])('answers a token request with %s with an OAuth error', async (_label, type, body) => {
    const response = await fetch(`${gw.url}/token`, {
      method: 'POST',
      headers: { 'content-type': type },
      body,
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    const json = (await response.json()) as Record<string, unknown>;
    expect(json.error).toEqual(expect.any(String));
  });

  it('refuses introspection and revocation without client authentication', async () => {
    for (const endpoint of ['/introspect', '/revoke']) {
      const response = await fetch(`${gw.url}${endpoint}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=abc',
      });
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(((await response.json()) as Record<string, unknown>).error).toEqual(
        expect.any(String),
      );
    }
  });

  // Found by the schemathesis run (tests/faults/schemathesis.test.ts): without the code flow
  // oidc-provider needs no redirect_uris either, and registered a client that can never get a
  // token.
  it.each([
    ['no grant types and no response types', { grant_types: [], response_types: [] }],
    ['only the refresh_token grant', { grant_types: ['refresh_token'], response_types: [] }],
    [
      'no response types',
      {
        redirect_uris: ['http://127.0.0.1/cb'],
        grant_types: ['authorization_code'],
        response_types: [],
      },
    ],
    [
      'no authorization_code grant',
      { redirect_uris: ['http://127.0.0.1/cb'], grant_types: ['refresh_token'] },
    ],
  ])('refuses a registration with %s (invalid_client_metadata)', async (_label, metadata) => {
    const response = await fetch(`${gw.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(metadata),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as Record<string, unknown>).error).toBe(
      'invalid_client_metadata',
    );
  });

  it('is still healthy after all of it, with no server error logged', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect(gw.logRecords().filter((record) => record.level === 'error')).toEqual([]);
  });
});
