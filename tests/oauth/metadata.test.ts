/**
 * Discovery and registration as MCP clients see them (checklist AS-02, AS-03, AS-05, AS-11, AS-12).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { register } from '../helpers/oauth-flow.js';

describe('authorization server metadata and registration', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.stop());

  it('serves the same document at the RFC 8414 and OpenID paths', async () => {
    const oauth = await fetch(`${gw.url}/.well-known/oauth-authorization-server`);
    const openid = await fetch(`${gw.url}/.well-known/openid-configuration`);
    expect(oauth.status).toBe(200);
    expect(oauth.headers.get('content-type')).toMatch(/^application\/json/);
    const a = (await oauth.json()) as Record<string, unknown>;
    const b = (await openid.json()) as Record<string, unknown>;
    expect(a).toEqual(b);
    expect(a.issuer).toBe(gw.url);
    expect(a.code_challenge_methods_supported).toEqual(['S256']);
    expect(a.client_id_metadata_document_supported).toBe(true);
    expect(a.authorization_response_iss_parameter_supported).toBe(true);
    expect(a.response_types_supported).toEqual(['code']);
    expect(a.grant_types_supported).toEqual(
      expect.arrayContaining(['authorization_code', 'refresh_token']),
    );
    expect(a.authorization_endpoint).toBe(`${gw.url}/authorize`);
    expect(a.token_endpoint).toBe(`${gw.url}/token`);
    expect(a.registration_endpoint).toBe(`${gw.url}/register`);
    expect(a.revocation_endpoint).toBe(`${gw.url}/revoke`);
    expect(a.introspection_endpoint).toBe(`${gw.url}/introspect`);
    expect(a.pushed_authorization_request_endpoint).toBeUndefined();
  });

  it('lets any browser origin read discovery and JWKS, without credentials', async () => {
    const response = await fetch(`${gw.url}/.well-known/oauth-authorization-server`, {
      headers: { origin: 'http://localhost:6274', 'mcp-protocol-version': '2025-11-25' },
    });
    expect(response.headers.get('access-control-allow-origin')).toBe('http://localhost:6274');
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    const preflight = await fetch(`${gw.url}/.well-known/oauth-authorization-server`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:6274',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'mcp-protocol-version',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain(
      'mcp-protocol-version',
    );
  });

  it('publishes a JWKS with public keys only', async () => {
    const jwks = (await (await fetch(`${gw.url}/jwks`)).json()) as {
      keys: Record<string, unknown>[];
    };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) {
      expect(key.kty).toBe('RSA');
      expect(key.kid).toEqual(expect.any(String));
      for (const privatePart of ['d', 'p', 'q', 'dp', 'dq', 'qi'])
        expect(key[privatePart]).toBeUndefined();
    }
  });

  it('registers a public client (RFC 7591) and lets it read its registration (RFC 7592)', async () => {
    const { status, body } = await register(gw.url, {
      client_name: 'Inspector-like',
      redirect_uris: [
        'http://localhost:6274/oauth/callback',
        'http://localhost:6274/oauth/callback/debug',
      ],
    });
    expect(status).toBe(201);
    expect(body.client_id).toEqual(expect.any(String));
    expect(body.client_secret).toBeUndefined();
    expect(body.registration_client_uri).toBe(`${gw.url}/register/${body.client_id}`);
    const read = await fetch(String(body.registration_client_uri), {
      headers: { authorization: `Bearer ${body.registration_access_token}` },
    });
    expect(read.status).toBe(200);
    expect(((await read.json()) as Record<string, unknown>).client_name).toBe('Inspector-like');
    const noToken = await fetch(String(body.registration_client_uri));
    expect(noToken.status).toBe(401);
    const update = await fetch(String(body.registration_client_uri), {
      method: 'PUT',
      headers: { authorization: `Bearer ${body.registration_access_token}` },
    });
    expect(update.status).toBe(404);
  });

  it('issues a secret to a confidential client', async () => {
    const { status, body } = await register(gw.url, {
      token_endpoint_auth_method: 'client_secret_basic',
    });
    expect(status).toBe(201);
    expect(body.client_secret).toEqual(expect.any(String));
  });

  it('answers malformed registration with a clear error and no crash', async () => {
    const response = await fetch(`${gw.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as Record<string, unknown>).error).toBe('invalid_request');
    const missing = await register(gw.url, { redirect_uris: undefined });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe('invalid_redirect_uri');
    expect(missing.body.error_description).toMatch(/redirect_uris/);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  it('answers health and readiness', async () => {
    expect(await (await fetch(`${gw.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${gw.url}/readyz`)).json()).toEqual({ status: 'ready' });
  });
});
