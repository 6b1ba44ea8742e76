/**
 * Checks the fake GitHub and the fake Google on their own, with plain fetch, so that a failure
 * in a gateway login test can be blamed on the gateway and not on the fakes: each one redirects
 * with a code and the `state`, cancels with `access_denied`, checks PKCE for real, and answers
 * its API the way the provider's docs describe (scopes, pagination, revoked and suspended
 * accounts, refresh tokens).
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeGitHub, type FakeGitHub } from './fake-github.js';
import { startFakeGoogle, type FakeGoogle } from './fake-google.js';

const CLIENT_ID = 'test-client';
const CLIENT_SECRET = 'test-secret';
const REDIRECT_URI = 'https://gateway.test/login/callback';
const USER_AGENT = 'fakes-test';

function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

/** Sends the browser to `url` and returns where the provider redirects it (or the page). */
async function authorize(
  url: string,
  params: Record<string, string>,
): Promise<{ status: number; location: URL | undefined; text: string }> {
  const target = new URL(url);
  for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
  const response = await fetch(target, { redirect: 'manual' });
  const location = response.headers.get('location');
  return {
    status: response.status,
    location: location === null ? undefined : new URL(location),
    text: await response.text(),
  };
}

function form(fields: Record<string, string>): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  };
}

describe('fake GitHub', () => {
  let github: FakeGitHub;

  beforeAll(async () => {
    github = await startFakeGitHub({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUri: REDIRECT_URI,
      users: [
        {
          id: 101,
          login: 'alice',
          name: 'Alice Liddell',
          emails: [
            { email: 'alice@old.example', primary: false, verified: true },
            { email: 'alice@example.com', primary: true, verified: true },
          ],
          orgs: ['acme', 'beta', 'gamma'],
          teams: [{ org: 'acme', slug: 'platform' }],
        },
        { id: 102, login: 'bob', emails: [] },
      ],
    });
  });

  afterAll(async () => {
    await github.stop();
  });

  /** A full login as `login` with `scope`; returns the access token. */
  async function loginFor(login: string, scope: string): Promise<string> {
    github.loginAs(login);
    const { verifier, challenge } = pkcePair();
    const { location } = await authorize(github.authorizationUrl, {
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      scope,
      state: 's',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const response = await fetch(github.tokenUrl, {
      ...form({
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        code: location?.searchParams.get('code') ?? '',
        code_verifier: verifier,
      }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    });
    const body = (await response.json()) as { access_token?: string };
    if (!body.access_token) throw new Error(`no token: ${JSON.stringify(body)}`);
    return body.access_token;
  }

  function api(path: string, token: string | undefined, headers: Record<string, string> = {}) {
    return fetch(`${github.apiUrl}${path}`, {
      headers: {
        'user-agent': USER_AGENT,
        ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
    });
  }

  it('redirects back with a code and the state, and records the request', async () => {
    github.loginAs('alice');
    const { challenge } = pkcePair();
    const result = await authorize(github.authorizationUrl, {
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      scope: 'read:user user:email',
      state: 'state-1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    expect(result.status).toBe(302);
    expect(`${result.location?.origin}${result.location?.pathname}`).toBe(REDIRECT_URI);
    expect(result.location?.searchParams.get('code')).toMatch(/^[A-Za-z0-9_-]{20}$/);
    expect(result.location?.searchParams.get('state')).toBe('state-1');
    expect(github.lastAuthorization?.get('code_challenge')).toBe(challenge);
    expect(github.requests.at(-1)).toMatchObject({
      method: 'GET',
      path: '/login/oauth/authorize',
    });
  });

  it('redirects with access_denied when the user cancels', async () => {
    github.loginAs(null);
    const result = await authorize(github.authorizationUrl, {
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      state: 'state-2',
    });
    expect(result.status).toBe(302);
    expect(result.location?.searchParams.get('error')).toBe('access_denied');
    expect(result.location?.searchParams.get('error_description')).toBe(
      'The user has denied your application access.',
    );
    expect(result.location?.searchParams.get('state')).toBe('state-2');
    expect(result.location?.searchParams.has('code')).toBe(false);
  });

  it('refuses an unknown client, another redirect_uri and plain PKCE without redirecting', async () => {
    github.loginAs('alice');
    const base = { client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, state: 'x' };
    const answers = await Promise.all([
      authorize(github.authorizationUrl, { ...base, client_id: 'other' }),
      authorize(github.authorizationUrl, { ...base, redirect_uri: `${REDIRECT_URI}/other` }),
      authorize(github.authorizationUrl, {
        ...base,
        code_challenge: 'a'.repeat(43),
        code_challenge_method: 'plain',
      }),
    ]);
    for (const answer of answers) {
      expect(answer.status).toBe(400);
      expect(answer.location).toBeUndefined();
    }
  });

  it('exchanges a code once, with the right PKCE verifier only', async () => {
    github.loginAs('alice');
    const { verifier, challenge } = pkcePair();
    const codeFor = async () =>
      (
        await authorize(github.authorizationUrl, {
          client_id: CLIENT_ID,
          redirect_uri: REDIRECT_URI,
          scope: 'read:user,user:email read:org',
          code_challenge: challenge,
          code_challenge_method: 'S256',
        })
      ).location?.searchParams.get('code') ?? '';
    const exchange = (code: string, codeVerifier: string) =>
      fetch(github.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          code,
          redirect_uri: REDIRECT_URI,
          code_verifier: codeVerifier,
        }),
      });

    const wrong = await exchange(await codeFor(), pkcePair().verifier);
    expect(wrong.status).toBe(200);
    expect(await wrong.json()).toMatchObject({ error: 'bad_verification_code' });

    const code = await codeFor();
    const good = await exchange(code, verifier);
    expect(good.status).toBe(200);
    expect(good.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await good.json()) as Record<string, string>;
    expect(body.access_token).toMatch(/^gho_/);
    expect(body.token_type).toBe('bearer');
    expect(body.scope).toBe('read:user,user:email,read:org');

    const again = await exchange(code, verifier);
    expect(await again.json()).toMatchObject({ error: 'bad_verification_code' });
  });

  it('answers form-encoded by default and takes HTTP Basic client credentials', async () => {
    github.loginAs('bob');
    const code = async () =>
      (
        await authorize(github.authorizationUrl, { client_id: CLIENT_ID, scope: 'read:user' })
      ).location?.searchParams.get('code') ?? '';
    const basic = (secret: string) =>
      `Basic ${Buffer.from(`${CLIENT_ID}:${secret}`).toString('base64')}`;

    const refused = await fetch(github.tokenUrl, {
      ...form({ code: await code() }),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic('wrong'),
      },
    });
    expect(refused.status).toBe(200);
    expect(new URLSearchParams(await refused.text()).get('error')).toBe(
      'incorrect_client_credentials',
    );

    const accepted = await fetch(github.tokenUrl, {
      ...form({ code: await code() }),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic(CLIENT_SECRET),
      },
    });
    expect(accepted.headers.get('content-type')).toMatch(/^application\/x-www-form-urlencoded/);
    const fields = new URLSearchParams(await accepted.text());
    expect(fields.get('access_token')).toMatch(/^gho_/);
    expect(fields.get('scope')).toBe('read:user');
  });

  it('serves /user and /user/emails, the latter only with user:email', async () => {
    const token = await loginFor('alice', 'read:user user:email');
    const user = await api('/user', token);
    expect(user.status).toBe(200);
    expect(user.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await user.json()).toMatchObject({
      login: 'alice',
      id: 101,
      name: 'Alice Liddell',
      email: null,
      type: 'User',
    });
    const emails = await api('/user/emails', token);
    expect(await emails.json()).toEqual([
      { email: 'alice@old.example', primary: false, verified: true, visibility: 'private' },
      { email: 'alice@example.com', primary: true, verified: true, visibility: 'private' },
    ]);

    const narrow = await loginFor('alice', 'read:user');
    const hidden = await api('/user/emails', narrow);
    expect(hidden.status).toBe(404);
    expect(await hidden.json()).toMatchObject({ message: 'Not Found' });
    expect((await api('/user/orgs', narrow)).status).toBe(403);
    expect(await (await api('/user', narrow)).json()).toMatchObject({ login: 'alice' });
  });

  it('pages /user/orgs with a Link header', async () => {
    const token = await loginFor('alice', 'read:user read:org');
    const first = await api('/user/orgs?per_page=2', token);
    expect(((await first.json()) as { login: string }[]).map((org) => org.login)).toEqual([
      'acme',
      'beta',
    ]);
    const link = first.headers.get('link') ?? '';
    expect(link).toContain(`<${github.apiUrl}/user/orgs?per_page=2&page=2>; rel="next"`);
    expect(link).toContain(`<${github.apiUrl}/user/orgs?per_page=2&page=2>; rel="last"`);

    const second = await api('/user/orgs?per_page=2&page=2', token);
    expect(((await second.json()) as { login: string }[]).map((org) => org.login)).toEqual([
      'gamma',
    ]);
    expect(second.headers.get('link')).not.toContain('rel="next"');
    expect(second.headers.get('link')).toContain('rel="prev"');

    const all = await api('/user/orgs?per_page=100', token);
    expect(all.headers.get('link')).toBeNull();
    expect(await all.json()).toHaveLength(3);
  });

  it('lists teams and reads memberships live', async () => {
    const token = await loginFor('alice', 'read:org');
    const teams = await api('/user/teams', token);
    expect(await teams.json()).toEqual([
      expect.objectContaining({
        slug: 'platform',
        organization: expect.objectContaining({ login: 'acme' }),
      }),
    ]);

    github.setMembership('alice', { orgs: ['acme'], teams: [] });
    expect(await (await api('/user/teams', token)).json()).toEqual([]);
    const orgs = (await (await api('/user/orgs', token)).json()) as { login: string }[];
    expect(orgs.map((org) => org.login)).toEqual(['acme']);
    github.setMembership('alice', {
      orgs: ['acme', 'beta', 'gamma'],
      teams: [{ org: 'acme', slug: 'platform' }],
    });
  });

  it('answers 401 for missing, unknown and revoked tokens', async () => {
    const token = await loginFor('bob', 'read:user');
    expect((await api('/user', token)).status).toBe(200);
    expect((await api('/user', undefined)).status).toBe(401);
    const unknown = await api('/user', 'gho_unknown');
    expect(unknown.status).toBe(401);
    expect(await unknown.json()).toMatchObject({ message: 'Bad credentials' });

    github.revokeTokens('bob');
    const revoked = await api('/user', token);
    expect(revoked.status).toBe(401);
    expect(await revoked.json()).toMatchObject({ message: 'Bad credentials' });
  });

  it('answers `token X` auth, 404 for unknown paths, 503 while down', async () => {
    const token = await loginFor('alice', 'read:user');
    const legacy = await fetch(`${github.apiUrl}/user`, {
      headers: { 'user-agent': USER_AGENT, authorization: `token ${token}` },
    });
    expect(legacy.status).toBe(200);
    const missing = await api('/repos/acme/nothing', token);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ message: 'Not Found' });

    github.setApiDown(true);
    try {
      const down = await api('/user', token);
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({ message: 'Service unavailable' });
    } finally {
      github.setApiDown(false);
    }
    expect((await api('/user', token)).status).toBe(200);
  });

  it('refuses API requests without a User-Agent', async () => {
    // fetch always sends a User-Agent; node:http sends none unless told to.
    const { status, body } = await new Promise<{ status: number; body: string }>(
      (resolve, reject) => {
        const req = httpRequest(`${github.apiUrl}/user`, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', reject);
        req.end();
      },
    );
    expect(status).toBe(403);
    expect(JSON.parse(body)).toMatchObject({ message: expect.stringContaining('User-Agent') });
  });
});

describe('fake Google', () => {
  let google: FakeGoogle;

  beforeAll(async () => {
    google = await startFakeGoogle({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUri: REDIRECT_URI,
      users: [
        {
          sub: '1001',
          email: 'ann@corp.example',
          email_verified: true,
          name: 'Ann Smith',
          hd: 'corp.example',
        },
        { sub: '1002', email: 'pat@gmail.example', email_verified: true },
        { sub: '1003', email: 'leaver@corp.example', email_verified: true, hd: 'corp.example' },
      ],
    });
  });

  afterAll(async () => {
    await google.stop();
  });

  /** Authorizes as `email` with PKCE S256; returns the code and its verifier. */
  async function codeFor(email: string, extra: Record<string, string> = {}) {
    google.loginAs(email);
    const { verifier, challenge } = pkcePair();
    const result = await authorize(google.authorizationUrl, {
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      scope: 'openid email profile',
      state: 'st',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...extra,
    });
    return { code: result.location?.searchParams.get('code') ?? '', verifier };
  }

  function tokenRequest(fields: Record<string, string>) {
    return fetch(
      google.tokenUrl,
      form({ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, ...fields }),
    );
  }

  function redeem(code: string, verifier: string) {
    return tokenRequest({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    });
  }

  function userinfo(token: string) {
    return fetch(google.userinfoUrl, { headers: { authorization: `Bearer ${token}` } });
  }

  it('publishes its discovery document', async () => {
    const response = await fetch(`${google.url}/.well-known/openid-configuration`);
    expect(await response.json()).toMatchObject({
      issuer: google.url,
      authorization_endpoint: google.authorizationUrl,
      token_endpoint: google.tokenUrl,
      userinfo_endpoint: google.userinfoUrl,
      jwks_uri: `${google.url}/oauth2/v3/certs`,
      code_challenge_methods_supported: ['plain', 'S256'],
    });
    expect(await (await fetch(`${google.url}/oauth2/v3/certs`)).json()).toEqual({ keys: [] });
  });

  it('redirects back with a code and the state, or access_denied on cancel', async () => {
    google.loginAs('ann@corp.example');
    const base = {
      client_id: CLIENT_ID,
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      scope: 'openid email',
      state: 'g-1',
      hd: 'corp.example',
    };
    const ok = await authorize(google.authorizationUrl, base);
    expect(ok.status).toBe(302);
    expect(ok.location?.searchParams.get('code')).toBeTruthy();
    expect(ok.location?.searchParams.get('state')).toBe('g-1');
    expect(google.lastAuthorization?.get('hd')).toBe('corp.example');

    google.loginAs(null);
    const cancelled = await authorize(google.authorizationUrl, { ...base, state: 'g-2' });
    expect(cancelled.location?.searchParams.get('error')).toBe('access_denied');
    expect(cancelled.location?.searchParams.get('state')).toBe('g-2');

    const mismatch = await authorize(google.authorizationUrl, {
      ...base,
      redirect_uri: 'https://evil.test/cb',
    });
    expect(mismatch.status).toBe(400);
    expect(mismatch.location).toBeUndefined();
    expect(mismatch.text).toContain('redirect_uri_mismatch');

    const implicit = await authorize(google.authorizationUrl, { ...base, response_type: 'token' });
    expect(implicit.location?.searchParams.get('error')).toBe('unsupported_response_type');
  });

  it('exchanges a code with the right PKCE verifier only, once', async () => {
    const wrong = await codeFor('ann@corp.example');
    const refused = await redeem(wrong.code, pkcePair().verifier);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'Invalid code verifier.',
    });

    const { code, verifier } = await codeFor('ann@corp.example');
    const response = await redeem(code, verifier);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ expires_in: 3599, token_type: 'Bearer' });
    expect(body.access_token).toMatch(/^ya29\./);
    expect(body.refresh_token).toBeUndefined();
    expect(String(body.scope).split(' ')).toEqual([
      'openid',
      'https://www.googleapis.com/auth/userinfo.email',
      'https://www.googleapis.com/auth/userinfo.profile',
    ]);

    const again = await redeem(code, verifier);
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses wrong client credentials with 401 and accepts HTTP Basic', async () => {
    const { code, verifier } = await codeFor('pat@gmail.example');
    const refused = await tokenRequest({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
      client_secret: 'wrong',
    });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'invalid_client' });

    const second = await codeFor('pat@gmail.example');
    const accepted = await fetch(google.tokenUrl, {
      ...form({
        grant_type: 'authorization_code',
        code: second.code,
        redirect_uri: REDIRECT_URI,
        code_verifier: second.verifier,
      }),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
      },
    });
    expect(accepted.status).toBe(200);
    const unsupported = await tokenRequest({ grant_type: 'password' });
    expect(unsupported.status).toBe(400);
    expect(await unsupported.json()).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it('serves userinfo with hd only for Workspace accounts', async () => {
    const ann = await codeFor('ann@corp.example');
    const annToken = (
      (await (await redeem(ann.code, ann.verifier)).json()) as { access_token: string }
    ).access_token;
    expect(await (await userinfo(annToken)).json()).toEqual({
      sub: '1001',
      email: 'ann@corp.example',
      email_verified: true,
      name: 'Ann Smith',
      given_name: 'Ann',
      picture: expect.any(String),
      hd: 'corp.example',
    });

    const pat = await codeFor('pat@gmail.example');
    const patToken = (
      (await (await redeem(pat.code, pat.verifier)).json()) as { access_token: string }
    ).access_token;
    const claims = (await (await userinfo(patToken)).json()) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: '1002', email: 'pat@gmail.example' });
    expect(claims).not.toHaveProperty('hd');

    const bad = await userinfo('ya29.unknown');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('gives a refresh token for access_type=offline, and refreshes', async () => {
    const { code, verifier } = await codeFor('ann@corp.example', { access_type: 'offline' });
    expect(google.lastAuthorization?.get('access_type')).toBe('offline');
    const first = (await (await redeem(code, verifier)).json()) as Record<string, string>;
    expect(first.refresh_token).toBeTruthy();

    const refreshed = await tokenRequest({
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token ?? '',
    });
    expect(refreshed.status).toBe(200);
    const body = (await refreshed.json()) as Record<string, string>;
    expect(body.access_token).not.toBe(first.access_token);
    expect(body.refresh_token).toBeUndefined();
    expect(await (await userinfo(body.access_token ?? '')).json()).toMatchObject({
      sub: '1001',
    });

    const unknown = await tokenRequest({ grant_type: 'refresh_token', refresh_token: '1//nope' });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses refresh and userinfo for a suspended account', async () => {
    const { code, verifier } = await codeFor('leaver@corp.example', { access_type: 'offline' });
    const tokens = (await (await redeem(code, verifier)).json()) as Record<string, string>;
    expect((await userinfo(tokens.access_token ?? '')).status).toBe(200);

    google.suspend('leaver@corp.example');
    const refreshed = await tokenRequest({
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token ?? '',
    });
    expect(refreshed.status).toBe(400);
    expect(await refreshed.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'Token has been expired or revoked.',
    });
    const info = await userinfo(tokens.access_token ?? '');
    expect(info.status).toBe(401);
    expect(info.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await info.json()).toMatchObject({ error: 'invalid_token' });
  });

  it('records every request', () => {
    const paths = new Set(google.requests.map((entry) => `${entry.method} ${entry.path}`));
    expect(paths).toEqual(
      new Set([
        'GET /.well-known/openid-configuration',
        'GET /oauth2/v3/certs',
        'GET /o/oauth2/v2/auth',
        'POST /token',
        'GET /v1/userinfo',
      ]),
    );
    const tokenCall = google.requests.find((entry) => entry.path === '/token');
    expect(tokenCall?.body).toContain('grant_type=');
  });
});
