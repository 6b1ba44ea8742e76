/**
 * Remembered consent and public clients that redirect to this computer (security issue #14,
 * item 5; RFC 8252 §8.6). After one approval, any local program could send the same public
 * client's `client_id` with its own PKCE pair and its own loopback port: it must meet the
 * consent page (naming that host and port), never get a code silently. Confidential clients
 * and public clients with an exactly registered https redirect keep remembered consent.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  devLogin,
  pkcePair,
  redeemCode,
  registerClient,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const RESOURCE = 'http://localhost:3999/mcp';
const REGISTERED = 'http://127.0.0.1:8976/callback';
const OTHER_PORT = 'http://127.0.0.1:4444/callback';

const atOrigin = (uri: string) => (url: URL) => url.origin === new URL(uri).origin;

describe('remembered consent for public clients redirecting to this computer', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGateway(() => ({
      resources: [{ url: RESOURCE, name: 'Test MCP', scopes: ['mcp:tools'] }],
    }));
  });
  afterAll(async () => gw?.stop());

  /** An authorization of `client` in `agent` to `redirectUri`, with a fresh PKCE pair. */
  const authorizeIn = (client: RegisteredClient, agent: TestUserAgent, redirectUri: string) =>
    devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
      redirectUri,
      agent,
    });

  /** First authorization in `agent`: login and consent, a code for the registered port. */
  async function firstApproval(
    client: RegisteredClient,
    agent: TestUserAgent,
    redirectUri: string,
  ) {
    const first = await authorizeIn(client, agent, redirectUri);
    expect(first.pagesSeen).toEqual(['login', 'consent']);
    expect(first.url.searchParams.get('code')).toBeTruthy();
  }

  it('shows the consent page again to a second request on another loopback port, and gives a code only after approval', async () => {
    const client = await registerClient(gw.url, {
      client_name: 'Desktop MCP client',
      redirect_uris: [REGISTERED],
    });
    const agent = new TestUserAgent();
    await firstApproval(client, agent, REGISTERED);

    // Another program, same client_id, its own PKCE pair and port, in the same browser.
    const { verifier, challenge } = pkcePair();
    const page = await agent.follow(
      authorizeUrl(gw.url, {
        clientId: client.client_id,
        resource: RESOURCE,
        codeChallenge: challenge,
        redirectUri: OTHER_PORT,
      }),
      atOrigin(OTHER_PORT),
    );
    expect(page.status).toBe(200);
    expect(page.url.searchParams.get('code')).toBeNull();
    expect(page.hops.some((hop) => (hop.location ?? '').includes('code='))).toBe(false);
    expect(page.body).toContain('name="decision"');
    expect(page.body).toContain('Desktop MCP client');
    expect(page.body).toContain('127.0.0.1:4444');
    expect(page.body).toContain('You approved this application before');
    // What the code would grant is named, although nothing new is asked.
    expect(page.body).toContain(RESOURCE);
    expect(page.body).toContain('mcp:tools');

    const approved = await agent.submit(
      page,
      { name: 'decision', value: 'approve' },
      atOrigin(OTHER_PORT),
    );
    expect(approved.url.port).toBe('4444');
    const code = approved.url.searchParams.get('code');
    expect(code).toBeTruthy();
    const token = await redeemCode(gw.url, {
      code: code!,
      verifier,
      clientId: client.client_id,
      redirectUri: OTHER_PORT,
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    expect(token.body.access_token).toEqual(expect.any(String));
  });

  it('asks again on the very same port too, and a denial sends access_denied and no code', async () => {
    const client = await registerClient(gw.url, { redirect_uris: [REGISTERED] });
    const agent = new TestUserAgent();
    await firstApproval(client, agent, REGISTERED);
    const denied = await devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
      redirectUri: REGISTERED,
      agent,
      decision: 'deny',
    });
    expect(denied.pagesSeen).toEqual(['consent']);
    expect(denied.url.searchParams.get('error')).toBe('access_denied');
    expect(denied.url.searchParams.get('code')).toBeNull();
  });

  it('does not skip the page from consent remembered server-side either (another browser)', async () => {
    const client = await registerClient(gw.url, { redirect_uris: [REGISTERED] });
    await firstApproval(client, new TestUserAgent(), REGISTERED);
    const second = await devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
      redirectUri: 'http://127.0.0.1:5555/callback',
    });
    expect(second.pagesSeen).toEqual(['login', 'consent']);
    expect(second.url.port).toBe('5555');
    expect(second.url.searchParams.get('code')).toBeTruthy();
  });

  it.each([
    ['localhost', 'http://localhost:8976/callback', 'http://localhost:4444/callback'],
    ['[::1]', 'http://[::1]:8976/callback', 'http://[::1]:4444/callback'],
  ])('treats %s like 127.0.0.1', async (_label, registered, other) => {
    const client = await registerClient(gw.url, { redirect_uris: [registered] });
    const agent = new TestUserAgent();
    await firstApproval(client, agent, registered);
    const page = await agent.follow(
      authorizeUrl(gw.url, {
        clientId: client.client_id,
        resource: RESOURCE,
        codeChallenge: pkcePair().challenge,
        redirectUri: other,
      }),
      atOrigin(other),
    );
    expect(page.status).toBe(200);
    expect(page.body).toContain('name="decision"');
    expect(page.body).toContain(new URL(other).host);
  });

  it('answers prompt=none with consent_required instead of a code', async () => {
    const client = await registerClient(gw.url, { redirect_uris: [REGISTERED] });
    const agent = new TestUserAgent();
    await firstApproval(client, agent, REGISTERED);
    const url = authorizeUrl(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
      redirectUri: OTHER_PORT,
    });
    url.searchParams.set('prompt', 'none');
    const result = await agent.follow(url, atOrigin(OTHER_PORT));
    expect(result.url.origin).toBe(new URL(OTHER_PORT).origin);
    expect(result.url.searchParams.get('error')).toBe('consent_required');
    expect(result.url.searchParams.get('code')).toBeNull();
  });

  it('keeps remembered consent for a confidential client, even on loopback', async () => {
    const client = await registerClient(gw.url, {
      redirect_uris: [REGISTERED],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    const agent = new TestUserAgent();
    await firstApproval(client, agent, REGISTERED);
    const again = await authorizeIn(client, agent, OTHER_PORT);
    expect(again.pagesSeen).toEqual([]);
    expect(again.url.searchParams.get('code')).toBeTruthy();
  });

  it('keeps remembered consent for a public client with an exactly registered https redirect', async () => {
    const redirect = 'https://app.example/callback';
    const client = await registerClient(gw.url, { redirect_uris: [redirect] });
    const agent = new TestUserAgent();
    await firstApproval(client, agent, redirect);
    const again = await authorizeIn(client, agent, redirect);
    expect(again.pagesSeen).toEqual([]);
    expect(again.url.searchParams.get('code')).toBeTruthy();
    // Another browser: login only, the consent is remembered server-side.
    const elsewhere = await devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
      redirectUri: redirect,
    });
    expect(elsewhere.pagesSeen).toEqual(['login']);
    expect(elsewhere.url.searchParams.get('code')).toBeTruthy();
  });
});
