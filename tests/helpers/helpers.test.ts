/**
 * Checks each end-to-end test helper on its own, so a failure in a gateway test can be blamed
 * on the gateway and not on its test fixtures: the test CA's chain really verifies (and only
 * with the CA), the upstream IdP serves discovery over that TLS and completes a real
 * authorization code flow, and the MCP server challenges, publishes its PRM and accepts only
 * proper access tokens.
 */
import type { Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet, type Server } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidcClient from 'openid-client';
import { CookieJar } from 'tough-cookie';
import { Agent, fetch as undiciFetch } from 'undici';
import { describeWithBinary } from './binaries.js';
import { listenOnFreePort } from './ports.js';
import { createTestCa, type TestCa } from './test-ca.js';
import { startUpstreamIdp, type UpstreamIdp } from './upstream-idp.js';

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/** A fetch that trusts exactly `ca` (not the system CAs). */
function fetchTrusting(agent: Agent): Fetch {
  return (url, init) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>;
}

function listen(server: Server | HttpServer): Promise<number> {
  return listenOnFreePort(server);
}

async function close(server: Server | HttpServer): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** One GET with node:https; resolves with the status, rejects with the TLS error. */
function httpsStatus(url: string, ca?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ca, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** The self-submitting `<form method="post">` oidc-provider renders, if `html` is one. */
function autoSubmitForm(html: string): { action: string; fields: URLSearchParams } | undefined {
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (action === undefined || !html.includes('document.forms[0].submit()')) return undefined;
  const fields = new URLSearchParams();
  for (const [, name, value] of html.matchAll(
    /<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g,
  )) {
    fields.append(name!, value!);
  }
  return { action, fields };
}

/**
 * Plays the browser through the IdP: follows redirects by hand with a cookie jar, and submits
 * oidc-provider's self-submitting forms (the logout confirmation when the signed-in user
 * changes) as a browser's script would, until the client's redirect URI is reached; returns
 * that URL (code or error in the query).
 */
async function followToRedirectUri(
  start: URL,
  redirectUri: string,
  fetch: Fetch,
  jar = new CookieJar(),
): Promise<URL> {
  let url = start.href;
  let form: URLSearchParams | undefined;
  for (let hop = 0; hop < 15; hop += 1) {
    if (url.startsWith(redirectUri)) return new URL(url);
    const cookie = await jar.getCookieString(url);
    const res = await fetch(url, {
      redirect: 'manual',
      headers: cookie ? { cookie } : {},
      ...(form !== undefined && { method: 'POST', body: form }),
    });
    form = undefined;
    for (const setCookie of res.headers.getSetCookie()) await jar.setCookie(setCookie, url);
    const body = await res.text();
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      url = new URL(location, url).href;
      continue;
    }
    const submit = res.status === 200 ? autoSubmitForm(body) : undefined;
    if (submit === undefined) {
      throw new Error(
        `expected a redirect from ${url}, got ${res.status}: ${body
          .replace(/<style>[^]*?<\/style>|<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .slice(0, 500)}`,
      );
    }
    url = new URL(submit.action, url).href;
    form = submit.fields;
  }
  throw new Error('too many redirects');
}

describeWithBinary('openssl', 'test helpers', () => {
  let ca: TestCa;
  let trustingAgent: Agent;
  let trustingFetch: Fetch;

  beforeAll(async () => {
    ca = await createTestCa();
    trustingAgent = new Agent({ connect: { ca: ca.ca } });
    trustingFetch = fetchTrusting(trustingAgent);
  });

  afterAll(async () => {
    await trustingAgent?.close();
    await ca?.cleanup();
  });

  describe('createTestCa', () => {
    let server: Server;
    let port: number;

    beforeAll(async () => {
      server = createHttpsServer({ cert: ca.cert, key: ca.key }, (_req, res) => res.end('ok'));
      port = await listen(server);
    });

    afterAll(async () => {
      if (server) await close(server);
    });

    it('writes the CA, certificate and key into its own directory', () => {
      for (const file of [ca.caFile, ca.certFile, ca.keyFile]) {
        expect(file.startsWith(`${ca.dir}/`)).toBe(true);
        expect(existsSync(file)).toBe(true);
      }
      expect(ca.ca).toContain('BEGIN CERTIFICATE');
      expect(ca.cert).toContain('BEGIN CERTIFICATE');
      expect(ca.key).toContain('PRIVATE KEY');
    });

    it('makes a P-256 CA and a 2-day serverAuth certificate for localhost, 127.0.0.1 and ::1', () => {
      const caCert = new X509Certificate(ca.ca);
      const serverCert = new X509Certificate(ca.cert);
      expect(caCert.ca).toBe(true);
      expect(caCert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(serverCert.ca).toBe(false);
      expect(serverCert.checkIssued(caCert)).toBe(true);
      expect(serverCert.verify(caCert.publicKey)).toBe(true);
      expect(serverCert.subjectAltName).toBe(
        'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
      );
      expect(serverCert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // extendedKeyUsage serverAuth
      const lifetimeMs = Date.parse(serverCert.validTo) - Date.parse(serverCert.validFrom);
      expect(lifetimeMs).toBe(2 * 24 * 60 * 60 * 1000);
    });

    it('is accepted by Node TLS trusting only the CA, by name and by IP', async () => {
      await expect(httpsStatus(`https://localhost:${port}/`, ca.ca)).resolves.toBe(200);
      await expect(httpsStatus(`https://127.0.0.1:${port}/`, ca.ca)).resolves.toBe(200);
    });

    it('is rejected without the CA', async () => {
      await expect(httpsStatus(`https://localhost:${port}/`)).rejects.toMatchObject({
        code: expect.stringMatching(/UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)/),
      });
    });

    it('is rejected when only another CA is trusted', async () => {
      const other = await createTestCa();
      try {
        await expect(httpsStatus(`https://localhost:${port}/`, other.ca)).rejects.toMatchObject({
          code: expect.stringMatching(/UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)/),
        });
      } finally {
        await other.cleanup();
      }
      expect(existsSync(other.dir)).toBe(false);
    });

    it('is rejected for a name the certificate does not cover', async () => {
      const error = await new Promise<Error>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.ca, servername: 'other.test' });
        socket.once('secureConnect', () => {
          socket.destroy();
          reject(new Error('TLS accepted a certificate for the wrong name'));
        });
        socket.once('error', resolve);
      });
      expect(error).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    });
  });

  describe('startUpstreamIdp', () => {
    const clientId = 'gateway';
    const clientSecret = 'gateway-secret-0123456789';
    const redirectUri = 'https://gateway.example.test/login/callback/corp';
    const users = {
      alice: { email: 'alice@corp.example', name: 'Alice Example', groups: ['engineering'] },
      bob: { email: 'bob@corp.example', email_verified: false },
    };
    let idp: UpstreamIdp;

    beforeAll(async () => {
      idp = await startUpstreamIdp({
        ca,
        clientId,
        clientSecret,
        redirectUris: [redirectUri],
        users,
      });
    });

    afterAll(async () => {
      await idp?.stop();
    });

    async function startLogin(jar?: CookieJar): Promise<{
      config: oidcClient.Configuration;
      callback: URL;
      verifier: string;
      state: string;
      nonce: string;
    }> {
      const config = await oidcClient.discovery(
        new URL(idp.issuer),
        clientId,
        clientSecret,
        undefined,
        { [oidcClient.customFetch]: trustingFetch as oidcClient.CustomFetch },
      );
      const verifier = oidcClient.randomPKCECodeVerifier();
      const state = oidcClient.randomState();
      const nonce = oidcClient.randomNonce();
      const authorizationUrl = oidcClient.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid email profile',
        code_challenge: await oidcClient.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      });
      const callback = await followToRedirectUri(authorizationUrl, redirectUri, trustingFetch, jar);
      return { config, callback, verifier, state, nonce };
    }

    async function loginSubject(jar?: CookieJar): Promise<unknown> {
      const { config, callback, verifier, state, nonce } = await startLogin(jar);
      const tokens = await oidcClient.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
      });
      return tokens.claims()?.sub;
    }

    it('serves discovery over https to a client trusting only the test CA', async () => {
      expect(idp.issuer).toMatch(/^https:\/\/localhost:\d+$/);
      const res = await trustingFetch(`${idp.issuer}/.well-known/openid-configuration`);
      expect(res.status).toBe(200);
      const metadata = (await res.json()) as Record<string, unknown>;
      expect(metadata.issuer).toBe(idp.issuer);
      expect(metadata.jwks_uri).toBe(`${idp.issuer}/jwks`);
      expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
      expect(metadata.scopes_supported).toEqual(
        expect.arrayContaining(['openid', 'email', 'profile']),
      );
      expect(metadata.id_token_signing_alg_values_supported).toContain('RS256');
    });

    it('is not trusted without the test CA', async () => {
      await expect(
        httpsStatus(`${idp.issuer}/.well-known/openid-configuration`),
      ).rejects.toBeDefined();
    });

    it('ends the login with access_denied while no user is chosen', async () => {
      const { callback } = await startLogin();
      expect(callback.searchParams.get('error')).toBe('access_denied');
      expect(idp.logins).toBe(0);
    });

    it('refuses an authorization request without PKCE', async () => {
      const url = new URL(`${idp.issuer}/auth`);
      url.search = new URLSearchParams({
        client_id: clientId,
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'openid',
      }).toString();
      const callback = await followToRedirectUri(url, redirectUri, trustingFetch);
      expect(callback.searchParams.get('error')).toBe('invalid_request');
      expect(callback.searchParams.get('error_description')).toMatch(/PKCE/);
    });

    it('completes an authorization code flow as the loginAs() user, claims in the ID token', async () => {
      idp.loginAs('alice');
      const { config, callback, verifier, state, nonce } = await startLogin();
      expect(callback.searchParams.get('code')).toBeTruthy();
      expect(idp.logins).toBe(1);
      const tokens = await oidcClient.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
      });
      expect(tokens.claims()).toMatchObject({
        iss: idp.issuer,
        aud: clientId,
        sub: 'alice',
        email: 'alice@corp.example',
        email_verified: true,
        name: 'Alice Example',
        groups: ['engineering'],
      });
      const header = JSON.parse(
        Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString(),
      ) as { alg: string };
      expect(header.alg).toBe('RS256');
    });

    it('signs in a different user after loginAs() changes', async () => {
      idp.loginAs('bob');
      const { config, callback, verifier, state, nonce } = await startLogin();
      const tokens = await oidcClient.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
      });
      expect(tokens.claims()).toMatchObject({
        sub: 'bob',
        email: 'bob@corp.example',
        email_verified: false,
      });
      expect(idp.logins).toBe(2);
    });

    it('keeps a browser session (SSO) but re-authenticates when loginAs() switches user', async () => {
      const browser = new CookieJar();
      const before = idp.logins;
      idp.loginAs('alice');
      await expect(loginSubject(browser)).resolves.toBe('alice');
      expect(idp.logins).toBe(before + 1);
      await expect(loginSubject(browser)).resolves.toBe('alice');
      expect(idp.logins).toBe(before + 1);
      idp.loginAs('bob');
      await expect(loginSubject(browser)).resolves.toBe('bob');
      expect(idp.logins).toBe(before + 2);
    });

    it('rejects an unknown user in loginAs()', () => {
      expect(() => idp.loginAs('mallory')).toThrow(/unknown/);
    });
  });
});
