/**
 * Pre-registered clients from the configuration, token revocation (RFC 7009) and
 * introspection (RFC 7662).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  devLogin,
  LOOPBACK_REDIRECT,
  obtainTokens,
  pkcePair,
  registerClient,
  tokenRequest,
} from '../helpers/oauth-flow.js';

const RESOURCE = 'http://localhost:3999/mcp';
const SECRET = 'preregistered-secret-0123456789';
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describe('pre-registered clients, revocation and introspection', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway(() => ({
      clients: [
        {
          client_id: 'internal-agent',
          client_name: 'Internal agent',
          client_secret: SECRET,
          redirect_uris: [LOOPBACK_REDIRECT],
        },
        { client_id: 'public-tool', redirect_uris: [LOOPBACK_REDIRECT] },
        {
          client_id: 'resource-server',
          client_secret: SECRET,
          redirect_uris: ['https://rs.example/unused'],
          allowIntrospection: true,
        },
      ],
    }));
  });
  afterAll(async () => gw.stop());

  it('runs the flow for a confidential pre-registered client, which must authenticate', async () => {
    const { verifier, challenge } = pkcePair();
    const login = await devLogin(gw.url, {
      clientId: 'internal-agent',
      resource: RESOURCE,
      codeChallenge: challenge,
    });
    expect(login.pagesSeen).toEqual(['login', 'consent']);
    const params = {
      grant_type: 'authorization_code',
      code: login.url.searchParams.get('code')!,
      code_verifier: verifier,
      redirect_uri: LOOPBACK_REDIRECT,
      resource: RESOURCE,
    };
    const unauthenticated = await tokenRequest(gw.url, { ...params, client_id: 'internal-agent' });
    expect(unauthenticated.body.error).toBe('invalid_client');
    // The failed attempt did not consume the code: authenticated, it is redeemed.
    const token = await tokenRequest(gw.url, params, {
      authorization: basic('internal-agent', SECRET),
    });
    expect(token.status).toBe(200);

    const introspection = await fetch(`${gw.url}/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic('internal-agent', SECRET),
      },
      body: new URLSearchParams({ token: String(token.body.refresh_token) }),
    });
    const result = (await introspection.json()) as Record<string, unknown>;
    expect(result).toMatchObject({
      active: true,
      client_id: 'internal-agent',
      sub: 'dev:alice@example.com',
    });
  });

  it('runs the flow for a public pre-registered client', async () => {
    const client = { client_id: 'public-tool', redirect_uris: [LOOPBACK_REDIRECT] };
    const { token } = await obtainTokens(gw.url, { client, resource: RESOURCE });
    expect(token.status).toBe(200);
  });

  it('revokes a refresh token (RFC 7009): it no longer refreshes', async () => {
    const client = await registerClient(gw.url);
    const { token } = await obtainTokens(gw.url, { client, resource: RESOURCE });
    const revoke = await fetch(`${gw.url}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: String(token.body.refresh_token),
        client_id: client.client_id,
      }),
    });
    expect(revoke.status).toBe(200);
    const refresh = await tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: String(token.body.refresh_token),
      client_id: client.client_id,
    });
    expect(refresh.body.error).toBe('invalid_grant');
  });

  it("does not let a client revoke or introspect another client's tokens", async () => {
    const owner = await registerClient(gw.url);
    const other = await registerClient(gw.url);
    const { token } = await obtainTokens(gw.url, { client: owner, resource: RESOURCE });
    await fetch(`${gw.url}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: String(token.body.refresh_token),
        client_id: other.client_id,
      }),
    });
    const refresh = await tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: String(token.body.refresh_token),
      client_id: owner.client_id,
    });
    expect(refresh.status).toBe(200);
    const introspection = await fetch(`${gw.url}/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic('internal-agent', SECRET),
      },
      body: new URLSearchParams({ token: String(refresh.body.refresh_token) }),
    });
    expect(((await introspection.json()) as Record<string, unknown>).active).toBe(false);
    // A resource server named in the configuration may introspect it.
    const byResourceServer = await fetch(`${gw.url}/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic('resource-server', SECRET),
      },
      body: new URLSearchParams({ token: String(refresh.body.refresh_token) }),
    });
    expect(await byResourceServer.json()).toMatchObject({
      active: true,
      client_id: owner.client_id,
    });
  });
});
