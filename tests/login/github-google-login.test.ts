/**
 * GitHub and Google login (passport-github2, passport-google-oauth20) against fakes of the
 * two providers written from their public API docs (tests/helpers/fake-github.ts,
 * fake-google.ts), both configured on one gateway: the login page lists them by name.
 *
 * GitHub is set up as GitHub Enterprise Server would be (every endpoint URL overridden).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { startFakeGitHub, type FakeGitHub } from '../helpers/fake-github.js';
import { startFakeGoogle, type FakeGoogle } from '../helpers/fake-google.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { registerClient, type RegisteredClient } from '../helpers/oauth-flow.js';
import {
  atLoopbackRedirect,
  loginThroughProvider,
  redeem,
  refresh,
  verifyStatus,
} from '../helpers/provider-login.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const RESOURCE = 'http://localhost:4201/mcp';
const GITHUB_SECRET = 'github-client-secret-abcdef';
const GOOGLE_SECRET = 'google-client-secret-abcdef';

describe('GitHub and Google login', () => {
  let github: FakeGitHub;
  let google: FakeGoogle;
  let gw: RunningGateway;
  let client: RegisteredClient;

  beforeAll(async () => {
    // The fakes name the gateway's callback before it binds its port: all again on a taken one.
    ({ gw } = await startGatewayBehind(
      async (_authUrl, port) => {
        const issuer = `http://localhost:${port}`;
        github = await startFakeGitHub({
          clientId: 'gh-client',
          clientSecret: GITHUB_SECRET,
          redirectUri: `${issuer}/login/callback/github`,
          users: [
            {
              id: 101,
              login: 'Octo',
              name: 'Octo Cat',
              emails: [
                { email: 'octo@personal.example', primary: false, verified: true },
                { email: 'Octo@Example.com', primary: true, verified: true },
              ],
              orgs: ['Acme'],
              teams: [{ org: 'Acme', slug: 'platform' }],
            },
            {
              id: 102,
              login: 'stranger',
              emails: [{ email: 'stranger@example.com', primary: true, verified: true }],
              orgs: ['other'],
            },
            {
              id: 103,
              login: 'lurker',
              // Member of the org but of no allowed team, with an unverified company address.
              emails: [{ email: 'lurker@example.com', primary: true, verified: false }],
              orgs: ['acme'],
              teams: [{ org: 'acme', slug: 'sales' }],
            },
            {
              id: 104,
              login: 'temp',
              emails: [{ email: 'temp@contractor.example', primary: true, verified: true }],
              orgs: ['acme'],
              teams: [{ org: 'acme', slug: 'platform' }],
            },
          ],
        });
        google = await startFakeGoogle({
          clientId: 'google-client',
          clientSecret: GOOGLE_SECRET,
          redirectUri: `${issuer}/login/callback/google`,
          users: [
            {
              sub: '9001',
              email: 'ann@example.com',
              email_verified: true,
              name: 'Ann',
              hd: 'example.com',
            },
            // A consumer account: no Workspace domain, although the address matches one.
            { sub: '9002', email: 'gus@example.com', email_verified: true, name: 'Gus' },
            { sub: '9003', email: 'una@example.com', email_verified: false, hd: 'example.com' },
            // Another company's Workspace.
            { sub: '9004', email: 'otto@other.example', email_verified: true, hd: 'other.example' },
          ],
        });
        const started = { github, google };
        return {
          stop: async () => {
            await started.github.stop();
            await started.google.stop();
          },
        };
      },
      () => () => ({
        login: {
          github: {
            clientId: 'gh-client',
            clientSecret: GITHUB_SECRET,
            orgs: ['acme'],
            authorizationUrl: github.authorizationUrl,
            tokenUrl: github.tokenUrl,
            apiUrl: github.apiUrl,
          },
          google: {
            clientId: 'google-client',
            clientSecret: GOOGLE_SECRET,
            hostedDomains: ['example.com'],
            authorizationUrl: google.authorizationUrl,
            tokenUrl: google.tokenUrl,
            userinfoUrl: google.userinfoUrl,
          },
        },
        access: { githubTeams: ['acme/platform'], domains: ['example.com'] },
        resources: [{ url: RESOURCE, name: 'Company MCP', scopes: ['mcp:tools'] }],
      }),
    ));
    client = await registerClient(gw.url);
  });

  afterAll(async () => {
    await gw?.stop();
    await github?.stop();
    await google?.stop();
  });

  const login = (provider: 'github' | 'google', agent = new TestUserAgent()) =>
    loginThroughProvider(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      provider,
      agent,
    });

  async function tokensVia(provider: 'github' | 'google') {
    const result = await login(provider);
    // Consent is asked once per user and client, then remembered.
    expect(result.pages[0]).toBe('choice');
    expect(result.code).toBeTruthy();
    const token = await redeem(gw.url, result, { clientId: client.client_id, resource: RESOURCE });
    expect(token.status).toBe(200);
    return token.body as { access_token: string; refresh_token: string };
  }

  it('lists both providers by name on the login page', async () => {
    const page = await new TestUserAgent().follow(
      new URL(
        `${gw.url}/authorize?response_type=code&client_id=${client.client_id}&redirect_uri=${encodeURIComponent('http://127.0.0.1:8976/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256&resource=${encodeURIComponent(RESOURCE)}`,
      ),
      atLoopbackRedirect,
    );
    expect(page.body).toContain('Sign in with GitHub');
    expect(page.body).toContain('Sign in with Google');
  });

  describe('GitHub', () => {
    it('logs in a member of an allowed team: numeric-id subject, verified primary email, orgs and teams as groups', async () => {
      github.loginAs('Octo');
      const tokens = await tokensVia('github');
      expect(decodeJwt(tokens.access_token)).toMatchObject({
        sub: 'github:101',
        email: 'octo@example.com',
        name: 'Octo Cat',
        groups: ['github:acme', 'github:acme/platform'],
        idp: 'github',
      });
      expect(await verifyStatus(gw.url, RESOURCE, tokens.access_token)).toBe(200);
      // read:org only because org/team rules exist; PKCE S256 and state on the way out.
      const asked = github.lastAuthorization!;
      expect(asked.get('scope')!.split(/[ ,]/).sort()).toEqual([
        'read:org',
        'read:user',
        'user:email',
      ]);
      expect(asked.get('code_challenge_method')).toBe('S256');
      expect(asked.get('state')!.length).toBeGreaterThanOrEqual(32);
      // The GitHub token stays in the gateway, sealed.
      const record = await gw.gateway.store.get<Record<string, unknown>>('account:github:101');
      expect(JSON.stringify(record)).not.toContain('gho_');
      expect(typeof record?.sealedSession).toBe('string');
    });

    it('refuses a user outside login.github.orgs, naming the rule', async () => {
      github.loginAs('stranger');
      const result = await login('github');
      expect(result.result.status).toBe(403);
      expect(result.code).toBeNull();
      expect(result.result.body).toContain('login.github.orgs');
    });

    it('refuses an org member in no allowed team whose address is unverified', async () => {
      github.loginAs('lurker');
      const result = await login('github');
      expect(result.result.status).toBe(403);
      expect(result.result.body).toContain(
        'lurker@example.com matches no rule in access (checked: emails/domains (your identity provider has not verified lurker@example.com), githubTeams).',
      );
    });

    it('ends a sign-in cancelled at GitHub with a page and access_denied for the client', async () => {
      github.loginAs(null);
      const agent = new TestUserAgent();
      const result = await login('github', agent);
      expect(result.result.status).toBe(401);
      expect(result.result.body).toContain('The sign-in was cancelled at GitHub.');
      const back = await agent.followLink(result.result, atLoopbackRedirect);
      expect(back.url.searchParams.get('error')).toBe('access_denied');
      expect(back.url.searchParams.get('code')).toBeNull();
    });

    it('ends a sign-in GitHub cannot complete (API down) with a page and access_denied', async () => {
      github.loginAs('Octo');
      github.setApiDown(true);
      const agent = new TestUserAgent();
      const result = await login('github', agent).finally(() => github.setApiDown(false));
      expect(result.result.status).toBe(502);
      expect(result.result.body).toContain('GitHub could not be reached to complete the sign-in.');
      const back = await agent.followLink(result.result, atLoopbackRedirect);
      expect(back.url.searchParams.get('error')).toBe('access_denied');
      expect(
        gw
          .logRecords()
          .some((line) => line.security_event === 'login_failed' && line.provider === 'github'),
      ).toBe(true);
    });

    it('re-reads teams at refresh: removed from the team, refused and revoked', async () => {
      github.loginAs('temp');
      const tokens = await tokensVia('github');
      const ok = await refresh(gw.url, tokens.refresh_token, client.client_id);
      expect(ok.status).toBe(200);
      const current = ok.body as { access_token: string; refresh_token: string };

      // GitHub down: the refresh fails, nothing is revoked, and it works once GitHub is back.
      github.setApiDown(true);
      const down = await refresh(gw.url, current.refresh_token, client.client_id);
      github.setApiDown(false);
      expect(down.status).toBe(503);
      expect(down.body.error).toBe('temporarily_unavailable');
      expect(await verifyStatus(gw.url, RESOURCE, current.access_token)).toBe(200);
      const again = await refresh(gw.url, current.refresh_token, client.client_id);
      expect(again.status).toBe(200);
      const latest = again.body as { access_token: string; refresh_token: string };

      github.setMembership('temp', { orgs: ['acme'], teams: [] });
      const refused = await refresh(gw.url, latest.refresh_token, client.client_id);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('invalid_grant');
      expect(await verifyStatus(gw.url, RESOURCE, latest.access_token)).toBe(401);
      const event = gw
        .logRecords()
        .find(
          (line) => line.security_event === 'access_withdrawn' && line.subject === 'github:104',
        );
      expect(event).toMatchObject({ provider: 'github' });
    });

    it('refuses the refresh once the user revoked the app at GitHub', async () => {
      github.loginAs('Octo');
      const tokens = await tokensVia('github');
      github.revokeTokens('Octo');
      const refused = await refresh(gw.url, tokens.refresh_token, client.client_id);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('invalid_grant');
      const event = gw
        .logRecords()
        .filter(
          (line) => line.security_event === 'access_withdrawn' && line.subject === 'github:101',
        )
        .at(-1);
      expect(event?.reason).toContain('GitHub no longer accepts the token');
    });
  });

  describe('Google', () => {
    it('logs in a verified Workspace account of an allowed domain', async () => {
      google.loginAs('ann@example.com');
      const tokens = await tokensVia('google');
      expect(decodeJwt(tokens.access_token)).toMatchObject({
        sub: 'google:9001',
        email: 'ann@example.com',
        name: 'Ann',
        idp: 'google',
      });
      const asked = google.lastAuthorization!;
      expect(asked.get('scope')!.split(' ').sort()).toEqual(['email', 'openid', 'profile']);
      expect(asked.get('hd')).toBe('example.com');
      expect(asked.get('code_challenge_method')).toBe('S256');
    });

    it('refuses a consumer account at the company domain (no hd)', async () => {
      google.loginAs('gus@example.com');
      const result = await login('google');
      expect(result.result.status).toBe(403);
      expect(result.result.body).toContain('belongs to no Google Workspace domain');
    });

    it('refuses an account of another Workspace domain (hd mismatch)', async () => {
      google.loginAs('otto@other.example');
      const result = await login('google');
      expect(result.result.status).toBe(403);
      expect(result.result.body).toContain(
        'Google Workspace domain other.example is not allowed by login.google.hostedDomains.',
      );
    });

    it('refuses an unverified address', async () => {
      google.loginAs('una@example.com');
      const result = await login('google');
      expect(result.result.status).toBe(403);
      expect(result.result.body).toContain('has not verified una@example.com');
    });

    it('ends a sign-in cancelled at Google with a page and access_denied for the client', async () => {
      google.loginAs(null);
      const agent = new TestUserAgent();
      const result = await login('google', agent);
      expect(result.result.body).toContain('The sign-in was cancelled at Google.');
      const back = await agent.followLink(result.result, atLoopbackRedirect);
      expect(back.url.searchParams.get('error')).toBe('access_denied');
    });

    it('re-applies the rules at refresh to the identity of the last login', async () => {
      google.loginAs('ann@example.com');
      const tokens = await tokensVia('google');
      const ok = await refresh(gw.url, tokens.refresh_token, client.client_id);
      expect(ok.status).toBe(200);
    });
  });

  it('never logs an upstream or gateway token', () => {
    const log = gw.logs.join('\n');
    expect(log).not.toMatch(/gho_[A-Za-z0-9_-]{10}/);
    expect(log).not.toMatch(/ya29\.[A-Za-z0-9_-]{10}/);
    expect(log).not.toContain(GITHUB_SECRET);
    expect(log).not.toContain(GOOGLE_SECRET);
  });
});
