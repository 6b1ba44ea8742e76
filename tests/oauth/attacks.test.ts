/**
 * What an attacker would try against the authorization server, one test each. Checklist IDs
 * in the test names (AS-xx) are those of docs/spec-compliance.md.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  devLogin,
  obtainTokens,
  pkcePair,
  redeemCode,
  register,
  registerClient,
  tokenRequest,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const RESOURCE = 'http://localhost:3999/mcp';
const OTHER_RESOURCE = 'http://localhost:3998/other';

describe('authorization server under attack', () => {
  let gw: RunningGateway;
  let client: RegisteredClient;

  beforeAll(async () => {
    gw = await startGateway(() => ({
      resources: [
        { url: RESOURCE, name: 'Test MCP', scopes: ['mcp:tools'] },
        { url: OTHER_RESOURCE, name: 'Other MCP', scopes: ['other:read'] },
      ],
    }));
    client = await registerClient(gw.url);
  });
  afterAll(async () => gw.stop());

  describe('code redemption (AS-01, RFC 6749 §4.1.3)', () => {
    /** A fresh code for `client`, with the verifier that redeems it. */
    async function freshCode() {
      const { verifier, challenge } = pkcePair();
      const result = await devLogin(gw.url, {
        clientId: client.client_id,
        resource: RESOURCE,
        codeChallenge: challenge,
      });
      return { code: result.url.searchParams.get('code')!, verifier };
    }

    it('refuses a code presented with a different redirect_uri', async () => {
      const { code, verifier } = await freshCode();
      const token = await redeemCode(gw.url, {
        code,
        verifier,
        clientId: client.client_id,
        redirectUri: 'http://127.0.0.1:8976/other',
      });
      expect(token.status).toBe(400);
      expect(token.body.error).toBe('invalid_grant');
    });

    it('refuses a code presented by another client', async () => {
      const thief = await registerClient(gw.url, { client_name: 'Thief' });
      const { code, verifier } = await freshCode();
      const token = await redeemCode(gw.url, { code, verifier, clientId: thief.client_id });
      expect(token.status).toBe(400);
      expect(token.body.error).toBe('invalid_grant');
    });

    it('refuses a token request without code_verifier', async () => {
      const { code } = await freshCode();
      const token = await redeemCode(gw.url, { code, clientId: client.client_id });
      expect(token.status).toBe(400);
      expect(token.body.error).toBe('invalid_grant');
    });

    it('refuses a wrong code_verifier', async () => {
      const { code } = await freshCode();
      const token = await redeemCode(gw.url, {
        code,
        verifier: pkcePair().verifier,
        clientId: client.client_id,
      });
      expect(token.body.error).toBe('invalid_grant');
    });

    it('refuses a replayed code and revokes what the first redemption issued', async () => {
      const first = await obtainTokens(gw.url, { client, resource: RESOURCE });
      expect(first.token.status).toBe(200);
      const replay = await redeemCode(gw.url, {
        code: first.code,
        verifier: first.verifier,
        clientId: client.client_id,
      });
      expect(replay.body.error).toBe('invalid_grant');
      const refresh = await tokenRequest(gw.url, {
        grant_type: 'refresh_token',
        refresh_token: String(first.token.body.refresh_token),
        client_id: client.client_id,
      });
      expect(refresh.body.error).toBe('invalid_grant');
    });

    it('lets exactly one of many concurrent redemptions of a code succeed', async () => {
      const { code, verifier } = await freshCode();
      const answers = await Promise.all(
        Array.from({ length: 8 }, () =>
          redeemCode(gw.url, { code, verifier, clientId: client.client_id }),
        ),
      );
      expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1);
    });

    it('answers an unknown grant_type with unsupported_grant_type', async () => {
      const token = await tokenRequest(gw.url, {
        grant_type: 'password',
        username: 'a',
        password: 'b',
        client_id: client.client_id,
      });
      expect(token.status).toBe(400);
      expect(token.body.error).toBe('unsupported_grant_type');
    });
  });

  describe('refresh tokens (AS-08, RFC 9700 §4.14)', () => {
    it('revokes the whole grant when a rotated refresh token is reused', async () => {
      const { token } = await obtainTokens(gw.url, { client, resource: RESOURCE });
      const rt1 = String(token.body.refresh_token);
      const second = await tokenRequest(gw.url, {
        grant_type: 'refresh_token',
        refresh_token: rt1,
        client_id: client.client_id,
      });
      expect(second.status).toBe(200);
      const rt2 = String(second.body.refresh_token);
      const reuse = await tokenRequest(gw.url, {
        grant_type: 'refresh_token',
        refresh_token: rt1,
        client_id: client.client_id,
      });
      expect(reuse.body.error).toBe('invalid_grant');
      const afterReuse = await tokenRequest(gw.url, {
        grant_type: 'refresh_token',
        refresh_token: rt2,
        client_id: client.client_id,
      });
      expect(afterReuse.body.error).toBe('invalid_grant');
    });

    it('refuses a refresh for a resource outside the grant', async () => {
      const { token } = await obtainTokens(gw.url, { client, resource: RESOURCE });
      const refresh = await tokenRequest(gw.url, {
        grant_type: 'refresh_token',
        refresh_token: String(token.body.refresh_token),
        client_id: client.client_id,
        resource: OTHER_RESOURCE,
      });
      expect(refresh.body.error).toBe('invalid_target');
    });
  });

  describe('resource indicators (AS-04)', () => {
    it('refuses an authorization request for a resource that is not configured', async () => {
      const agent = new TestUserAgent();
      const result = await agent.follow(
        authorizeUrl(gw.url, {
          clientId: client.client_id,
          resource: 'https://evil.example/mcp',
          codeChallenge: pkcePair().challenge,
        }),
        (url) => url.origin === 'http://127.0.0.1:8976',
      );
      expect(result.url.searchParams.get('error')).toBe('invalid_target');
      expect(result.url.searchParams.get('iss')).toBe(gw.url);
    });

    it('accepts the canonical URL in another spelling and binds the canonical audience', async () => {
      const { token } = await obtainTokens(gw.url, {
        client,
        resource: 'HTTP://LOCALHOST:3999/mcp/',
      });
      expect(token.status).toBe(200);
      const payload = JSON.parse(
        Buffer.from(String(token.body.access_token).split('.')[1]!, 'base64url').toString(),
      );
      expect(payload.aud).toBe(RESOURCE);
    });

    it('never grants a scope the resource does not offer', async () => {
      const { token } = await obtainTokens(gw.url, {
        client,
        resource: RESOURCE,
        scope: 'mcp:tools admin other:read',
      });
      const payload = JSON.parse(
        Buffer.from(String(token.body.access_token).split('.')[1]!, 'base64url').toString(),
      );
      expect(payload.scope).toBe('mcp:tools');
    });
  });

  describe('PKCE (AS-03)', () => {
    it('refuses an authorization request without code_challenge', async () => {
      const result = await new TestUserAgent().follow(
        authorizeUrl(gw.url, {
          clientId: client.client_id,
          resource: RESOURCE,
          codeChallenge: null,
        }),
        (url) => url.origin === 'http://127.0.0.1:8976',
      );
      expect(result.url.searchParams.get('error')).toBe('invalid_request');
      expect(result.url.searchParams.get('error_description')).toMatch(/PKCE/);
    });

    it('requires it of confidential clients too', async () => {
      const confidential = await registerClient(gw.url, {
        token_endpoint_auth_method: 'client_secret_basic',
      });
      expect(confidential.client_secret).toBeTruthy();
      const result = await new TestUserAgent().follow(
        authorizeUrl(gw.url, {
          clientId: confidential.client_id,
          resource: RESOURCE,
          codeChallenge: null,
        }),
        (url) => url.origin === 'http://127.0.0.1:8976',
      );
      expect(result.url.searchParams.get('error')).toBe('invalid_request');
    });

    it('refuses the plain method', async () => {
      const result = await new TestUserAgent().follow(
        authorizeUrl(gw.url, {
          clientId: client.client_id,
          resource: RESOURCE,
          codeChallenge: 'x'.repeat(43),
          codeChallengeMethod: 'plain',
        }),
        (url) => url.origin === 'http://127.0.0.1:8976',
      );
      expect(result.url.searchParams.get('error')).toBe('invalid_request');
    });
  });

  describe('redirect URIs (AS-07)', () => {
    it.each([
      ['javascript:', 'javascript:alert(1)'],
      ['http on a public host', 'http://evil.example/callback'],
      ['a fragment', 'https://app.example/callback#frag'],
      ['a custom scheme', 'myapp://callback'],
    ])('refuses DCR with %s', async (_label, redirectUri) => {
      const { status, body } = await register(gw.url, { redirect_uris: [redirectUri] });
      expect(status).toBe(400);
      expect(body.error).toBe('invalid_redirect_uri');
    });

    it('never redirects to an unregistered redirect_uri: it shows an error page', async () => {
      const agent = new TestUserAgent();
      const result = await agent.follow(
        authorizeUrl(gw.url, {
          clientId: client.client_id,
          resource: RESOURCE,
          codeChallenge: pkcePair().challenge,
          redirectUri: 'https://evil.example/callback',
        }),
        () => false,
      );
      expect(result.status).toBe(400);
      expect(result.hops).toHaveLength(1);
      expect(result.body).toContain('redirect_uri');
    });

    it('accepts another port on a registered loopback redirect URI (RFC 8252 §7.3)', async () => {
      const { challenge } = pkcePair();
      const result = await devLogin(gw.url, {
        clientId: client.client_id,
        resource: RESOURCE,
        codeChallenge: challenge,
        redirectUri: 'http://127.0.0.1:40123/callback',
      });
      expect(result.url.port).toBe('40123');
      expect(result.url.searchParams.get('code')).toBeTruthy();
    });

    it('does not relax the path of a loopback redirect URI', async () => {
      const result = await new TestUserAgent().follow(
        authorizeUrl(gw.url, {
          clientId: client.client_id,
          resource: RESOURCE,
          codeChallenge: pkcePair().challenge,
          redirectUri: 'http://127.0.0.1:8976/elsewhere',
        }),
        () => false,
      );
      expect(result.status).toBe(400);
    });
  });

  describe('consent (AS-10)', () => {
    it('refuses a consent form posted without the CSRF token', async () => {
      const agent = new TestUserAgent();
      let page = await agent.follow(
        authorizeUrl(gw.url, {
          clientId: client.client_id,
          resource: RESOURCE,
          codeChallenge: pkcePair().challenge,
        }),
        () => false,
      );
      page = await agent.submit(page, { name: 'email', value: 'bob@example.com' }, () => false);
      if (page.body.includes('name="decision"')) {
        const forged = await agent.submit(
          page,
          { name: 'decision', value: 'approve' },
          () => false,
          { csrf: 'forged' },
        );
        expect(forged.status).toBe(403);
        expect(forged.body).toContain('Request refused');
      } else {
        throw new Error('expected a consent page for a user who never consented');
      }
    });

    it('shows the consent page to a new client even when the user approved another one', async () => {
      const agent = new TestUserAgent();
      const first = await devLogin(gw.url, {
        clientId: client.client_id,
        resource: RESOURCE,
        codeChallenge: pkcePair().challenge,
        agent,
      });
      expect(first.url.searchParams.get('code')).toBeTruthy();
      const attacker = await registerClient(gw.url, { client_name: 'Innocent looking app' });
      const page = await agent.follow(
        authorizeUrl(gw.url, {
          clientId: attacker.client_id,
          resource: RESOURCE,
          codeChallenge: pkcePair().challenge,
        }),
        (url) => url.origin === 'http://127.0.0.1:8976',
      );
      expect(page.status).toBe(200);
      expect(page.body).toContain('Innocent looking app');
      expect(page.body).toContain('name="decision"');
      expect(page.body).toContain('127.0.0.1:8976');
    });

    it('remembers an approval for the same user and client (no second consent page)', async () => {
      // An https redirect: a public client redirecting to loopback is asked every time
      // (RFC 8252 §8.6; tests/oauth/loopback-consent.test.ts).
      const redirectUri = 'https://app.example/callback';
      const agent = new TestUserAgent();
      const fresh = await registerClient(gw.url, {
        client_name: 'Remembered app',
        redirect_uris: [redirectUri],
      });
      const first = await devLogin(gw.url, {
        clientId: fresh.client_id,
        resource: RESOURCE,
        codeChallenge: pkcePair().challenge,
        redirectUri,
        agent,
      });
      expect(first.url.searchParams.get('code')).toBeTruthy();
      expect(first.pagesSeen).toEqual(['login', 'consent']);
      // A new browser: login again, but consent is remembered server-side.
      const second = await devLogin(gw.url, {
        clientId: fresh.client_id,
        resource: RESOURCE,
        codeChallenge: pkcePair().challenge,
        redirectUri,
      });
      expect(second.url.searchParams.get('code')).toBeTruthy();
      expect(second.pagesSeen).toEqual(['login']);
    });

    it('sends access_denied (with iss) when the user denies', async () => {
      const fresh = await registerClient(gw.url, { client_name: 'Denied app' });
      const result = await devLogin(gw.url, {
        clientId: fresh.client_id,
        resource: RESOURCE,
        codeChallenge: pkcePair().challenge,
        decision: 'deny',
      });
      expect(result.url.searchParams.get('error')).toBe('access_denied');
      expect(result.url.searchParams.get('iss')).toBe(gw.url);
      expect(result.url.searchParams.get('code')).toBeNull();
    });

    it('sends the consent page with anti-framing headers', async () => {
      const agent = new TestUserAgent();
      const fresh = await registerClient(gw.url, { client_name: 'Framed app' });
      let page = await agent.follow(
        authorizeUrl(gw.url, {
          clientId: fresh.client_id,
          resource: RESOURCE,
          codeChallenge: pkcePair().challenge,
        }),
        () => false,
      );
      page = await agent.submit(page, { name: 'email', value: 'alice@example.com' }, () => false);
      expect(page.body).toContain('name="decision"');
      const response = await fetch(page.url, {
        headers: { cookie: await agent.jar.getCookieString(page.url.href) },
      });
      expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(response.headers.get('x-frame-options')).toBe('DENY');
    });
  });

  describe('CORS', () => {
    it('never allows credentials, and refuses token requests from an unknown origin', async () => {
      const preflight = await fetch(`${gw.url}/token`, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
      const token = await tokenRequest(
        gw.url,
        { grant_type: 'refresh_token', refresh_token: 'x', client_id: client.client_id },
        { origin: 'https://evil.example' },
      );
      expect(token.headers.get('access-control-allow-origin')).toBeNull();
      expect(token.headers.get('access-control-allow-credentials')).toBeNull();
      const registration = await fetch(`${gw.url}/register`, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      });
      expect(registration.headers.get('access-control-allow-credentials')).toBeNull();
    });

    it('lets MCP Inspector (http://localhost:6274) use the token endpoint', async () => {
      const token = await tokenRequest(
        gw.url,
        { grant_type: 'refresh_token', refresh_token: 'x', client_id: client.client_id },
        { origin: 'http://localhost:6274' },
      );
      expect(token.headers.get('access-control-allow-origin')).toBe('http://localhost:6274');
      expect(token.headers.get('access-control-allow-credentials')).toBeNull();
    });
  });
});
