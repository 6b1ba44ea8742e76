/**
 * The contract of `/verify`, answer by answer (checklist RS-xx, TR-01), as Traefik's
 * forwardAuth would ask: X-Forwarded-* describe the original request; the body is forwarded
 * when `forwardBody: true`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeJwt, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import { IDENTITY_RESPONSE_HEADERS } from '../../src/forward-auth/identity-headers.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { obtainTokens, registerClient, type RegisteredClient } from '../helpers/oauth-flow.js';

const A = 'http://localhost:4001/mcp';
const B = 'http://localhost:4002/mcp';
const LEGACY = 'http://localhost:4003/servers/legacy';
/** Tool rules decided on the Mcp-* headers when no body comes (`operationFrom: headers`). */
const HEADERS = 'http://localhost:4004/mcp';
const PRM_A = 'http://localhost:4001/.well-known/oauth-protected-resource/mcp';

interface Ask {
  uri?: string;
  host?: string;
  method?: string;
  token?: string;
  headers?: Record<string, string>;
  body?: unknown;
}

describe('/verify', () => {
  let gw: RunningGateway;
  let client: RegisteredClient;
  let tokenA: string;
  let tokenB: string;
  let tokenLegacy: string;
  let tokenHeaders: string;
  let signingKey: JWK;

  const ask = async ({
    uri = '/mcp',
    host = 'localhost:4001',
    method = 'POST',
    token,
    headers = {},
    body,
  }: Ask) => {
    const response = await fetch(`${gw.url}/verify`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        'x-forwarded-proto': 'http',
        'x-forwarded-host': host,
        'x-forwarded-uri': uri,
        'x-forwarded-method': method,
        'x-forwarded-for': '203.0.113.7',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      challenge: response.headers.get('www-authenticate'),
      json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
    };
  };

  /** A token signed with the gateway's own key but with chosen claims (forgery by an insider). */
  const forge = async (claims: Record<string, unknown>, header: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ client_id: 'x', scope: 'mcp:tools', ...claims })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: signingKey.kid, ...header })
      .setIssuer(String(claims.iss ?? gw.url))
      .setSubject('forged')
      .setAudience(String(claims.aud ?? A))
      .setIssuedAt(now)
      .setExpirationTime(Number(claims.exp ?? now + 300))
      .sign(await importJWK(signingKey, 'RS256'));
  };

  beforeAll(async () => {
    gw = await startGateway(() => ({
      login: {
        dev: {
          users: [
            { email: 'alice@example.com', name: 'Alice Zoë', groups: ['eng', 'ops'] },
            'bob@example.com',
          ],
        },
      },
      resources: [
        {
          url: A,
          name: 'A',
          scopes: ['mcp:tools'],
          allowedOrigins: ['http://localhost:6274'],
          tools: {
            default: 'allow',
            rules: {
              'delete_*': { scopes: ['mcp:admin'] },
              secret: { groups: ['dev:eng'] },
              delete_everything: { groups: ['dev:nobody'] },
            },
          },
        },
        { url: B, name: 'B' },
        { url: LEGACY, name: 'Legacy SSE', upstreamAuthorization: 'jwt' },
        {
          url: HEADERS,
          name: 'Header-only tool rules',
          tools: { operationFrom: 'headers', rules: { 'delete_*': { groups: ['dev:nobody'] } } },
        },
      ],
    }));
    client = await registerClient(gw.url);
    tokenA = String((await obtainTokens(gw.url, { client, resource: A })).token.body.access_token);
    tokenB = String((await obtainTokens(gw.url, { client, resource: B })).token.body.access_token);
    tokenLegacy = String(
      (await obtainTokens(gw.url, { client, resource: LEGACY })).token.body.access_token,
    );
    tokenHeaders = String(
      (await obtainTokens(gw.url, { client, resource: HEADERS })).token.body.access_token,
    );
    const material = JSON.parse(await readFile(path.join(gw.config.dataDir, 'keys.json'), 'utf8'));
    signingKey = material.keys[0].jwk;
  });
  afterAll(async () => gw.stop());

  describe('no token (RS-03, RS-05, RS-07)', () => {
    it('answers 401 with resource_metadata and scope, and no error parameter (RFC 6750 §3.1)', async () => {
      const answer = await ask({});
      expect(answer.status).toBe(401);
      expect(answer.challenge).toBe(`Bearer resource_metadata="${PRM_A}", scope="mcp:tools"`);
      expect(answer.json).toMatchObject({ error: 'unauthorized', resource_metadata: PRM_A });
      expect(JSON.parse(answer.headers.get('x-auth-error-body')!)).toEqual(answer.json);
      expect(answer.headers.get('content-type')).toBe('application/json');
      // Sized, not chunked: one write per answer on the hot path.
      expect(answer.headers.get('content-length')).toBe(
        String(Buffer.byteLength(JSON.stringify(answer.json))),
      );
      expect(answer.headers.get('transfer-encoding')).toBeNull();
    });

    it('treats another scheme as no token', async () => {
      const answer = await ask({ headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' } });
      expect(answer.status).toBe(401);
      expect(answer.challenge).not.toContain('error=');
    });

    it.each(['GET', 'DELETE'])(
      'challenges a %s (SSE stream, session end) without token (RS-11)',
      async (method) => {
        expect((await ask({ method })).status).toBe(401);
      },
    );

    it('ignores a token in the query string (RS-11)', async () => {
      const answer = await ask({ uri: `/mcp?access_token=${tokenA}` });
      expect(answer.status).toBe(401);
      expect(answer.challenge).not.toContain('error=');
    });
  });

  describe('bad tokens (RS-07, RS-09)', () => {
    it.each([
      ['malformed', async () => 'not-a-jwt'],
      ['empty', async () => ''],
      ['with a bad signature', async () => `${tokenA.slice(0, -4)}AAAA`],
      ['from another issuer', async () => forge({ iss: 'https://evil.example' })],
      ['expired', async () => forge({ exp: Math.floor(Date.now() / 1000) - 120 })],
      ['not yet valid', async () => forge({ nbf: Math.floor(Date.now() / 1000) + 600 })],
      ['of another type (an ID token)', async () => forge({}, { typ: 'JWT' })],
      ['for another resource', async () => tokenB],
    ])('refuses a token %s with 401 invalid_token', async (_label, make) => {
      const token = await make();
      const answer = await ask({ headers: { authorization: `Bearer ${token}` } });
      expect(answer.status).toBe(401);
      expect(answer.challenge).toMatch(
        /^Bearer error="invalid_token", error_description="[^"]+", resource_metadata="[^"]+", scope="mcp:tools"$/,
      );
      expect(answer.json?.error).toBe('invalid_token');
      const event = gw
        .logRecords()
        .filter((record) => record.security_event === 'invalid_token')
        .at(-1);
      expect(event).toMatchObject({
        ip: '203.0.113.7',
        resource: A,
        reasonCode: expect.any(String),
      });
    });

    it('refuses an HS256 token made with the public key as secret (algorithm confusion)', async () => {
      const jwks = (await (await fetch(`${gw.url}/jwks`)).json()) as { keys: JWK[] };
      const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
      const token = await new SignJWT({ client_id: 'x', scope: 'mcp:tools' })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setIssuer(gw.url)
        .setSubject('x')
        .setAudience(A)
        .setExpirationTime('5m')
        .sign(secret);
      expect((await ask({ token })).status).toBe(401);
    });

    it('refuses at resource B a token issued for resource A (RS-09)', async () => {
      const answer = await ask({ host: 'localhost:4002', token: tokenA });
      expect(answer.status).toBe(401);
      expect(answer.json?.error_description).toMatch(/another resource/);
      const event = gw
        .logRecords()
        .filter((record) => record.security_event === 'invalid_token')
        .at(-1);
      expect(event?.reasonCode).toBe('audience');
    });
  });

  describe('allowed', () => {
    it('answers 200 with every identity header, and no client token', async () => {
      const answer = await ask({
        method: 'GET',
        token: tokenA,
        headers: { 'x-auth-user-id': 'admin', 'x-auth-user-groups': 'root' },
      });
      expect(answer.status).toBe(200);
      for (const name of IDENTITY_RESPONSE_HEADERS) expect(answer.headers.has(name)).toBe(true);
      expect(answer.headers.get('x-auth-user-id')).toBe('dev:alice@example.com');
      expect(answer.headers.get('x-auth-user-email')).toBe('alice@example.com');
      expect(answer.headers.get('x-auth-user-name')).toBe('Alice Zo%C3%AB');
      expect(answer.headers.get('x-auth-user-groups')).toBe('dev:eng,dev:ops');
      expect(answer.headers.get('x-auth-client-id')).toBe(client.client_id);
      expect(answer.headers.get('x-auth-scopes')).toBe('mcp:tools');
      expect(answer.headers.get('authorization')).toBe('');
    });

    it('answers the same from the verified-token cache', async () => {
      for (let i = 0; i < 3; i += 1)
        expect((await ask({ method: 'GET', token: tokenA })).status).toBe(200);
    });

    it('covers /sse and /messages of a legacy SSE server with one resource, and signs a backend JWT for it', async () => {
      for (const uri of ['/servers/legacy/sse', '/servers/legacy/messages?sessionId=abc']) {
        const answer = await ask({
          host: 'localhost:4003',
          uri,
          method: uri.endsWith('sse') ? 'GET' : 'POST',
          token: tokenLegacy,
        });
        expect(answer.status).toBe(200);
        const authorization = answer.headers.get('authorization')!;
        expect(authorization).toMatch(/^Bearer ey/);
        const backendToken = authorization.slice('Bearer '.length);
        expect(backendToken).not.toBe(tokenLegacy);
        const { payload, protectedHeader } = await jwtVerify(
          backendToken,
          createRemoteJWKSet(new URL(`${gw.url}/jwks`)),
          {
            issuer: gw.url,
            audience: LEGACY,
            typ: 'mcp-gateway+jwt',
          },
        );
        expect(protectedHeader.alg).toBe('RS256');
        expect(payload.sub).toBe('dev:alice@example.com');
        expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(60);
      }
    });

    it('refuses a path outside every resource (deny by default)', async () => {
      const answer = await ask({
        host: 'localhost:4003',
        uri: '/servers/legacy-other/sse',
        token: tokenLegacy,
      });
      expect(answer.status).toBe(403);
      expect((await ask({ uri: '/admin', token: tokenA })).status).toBe(403);
      // Dot segments are refused rather than resolved (src/resources/routed-path.ts): 400.
      expect((await ask({ uri: '/mcp/../admin', token: tokenA })).status).toBe(400);
      // A protocol-relative URI must not move the request to another host's resource.
      const smuggled = await ask({
        host: 'localhost:4002',
        uri: '//localhost:4001/mcp',
        method: 'GET',
        token: tokenA,
      });
      expect(smuggled.status).not.toBe(200);
    });
  });

  describe('identity header aliases', () => {
    it.each(['x_auth_user_id', 'X.Auth.Scopes', 'x-auth_client-id', 'X_AUTH_USER_GROUPS'])(
      'refuses a request carrying %s (a CGI-style server reads it as the identity header)',
      async (name) => {
        const answer = await ask({
          token: tokenB,
          host: 'localhost:4002',
          headers: { [name]: 'admin' },
        });
        expect(answer.status).toBe(400);
        expect(gw.logRecords().some((r) => r.security_event === 'ambiguous_header')).toBe(true);
      },
    );

    it('lets other underscore and dot headers through', async () => {
      const answer = await ask({
        token: tokenB,
        host: 'localhost:4002',
        headers: { x_request_id: '1', 'x.trace': '2' },
      });
      expect(answer.status).toBe(200);
    });
  });

  describe('proxy trust', () => {
    it('refuses a subrequest without the X-Forwarded-* description (400)', async () => {
      const response = await fetch(`${gw.url}/verify`, {
        headers: { authorization: `Bearer ${tokenA}` },
      });
      expect(response.status).toBe(400);
    });

    it.each(['localhost:4001/mcp', 'user@localhost:4001', 'localhost:4001?x', 'localhost:4001#x'])(
      'refuses a forwarded host that is not a plain host[:port] (%s)',
      async (host) => {
        expect((await ask({ host, method: 'GET', token: tokenA })).status).toBe(400);
      },
    );

    it('refuses a subrequest from an untrusted address (400, security event)', async () => {
      const strict = await startGateway(() => ({ trustedProxies: ['192.0.2.0/24'] }));
      try {
        const response = await fetch(`${strict.url}/verify`, {
          headers: {
            'x-forwarded-proto': 'http',
            'x-forwarded-host': 'localhost:3999',
            'x-forwarded-uri': '/mcp',
            'x-forwarded-method': 'POST',
          },
        });
        expect(response.status).toBe(400);
        expect(
          strict.logRecords().some((record) => record.security_event === 'untrusted_proxy'),
        ).toBe(true);
      } finally {
        await strict.stop();
      }
    });
  });

  describe('Origin (TR-01)', () => {
    it('refuses a foreign Origin with 403 before looking at any token', async () => {
      const answer = await ask({ headers: { origin: 'https://evil.example' } });
      expect(answer.status).toBe(403);
      expect(answer.json).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32001 } });
      expect(
        (await ask({ token: tokenA, headers: { origin: 'https://evil.example' } })).status,
      ).toBe(403);
    });

    it('lets an allowed Origin through to the token check', async () => {
      expect((await ask({ headers: { origin: 'http://localhost:6274' } })).status).toBe(401);
      expect(
        (await ask({ method: 'GET', token: tokenA, headers: { origin: 'http://localhost:6274' } }))
          .status,
      ).toBe(200);
    });

    it('never lets a CORS preflight through without a token (the proxy answers preflights)', async () => {
      const answer = await ask({
        method: 'OPTIONS',
        headers: { origin: 'http://localhost:6274', 'access-control-request-method': 'POST' },
        body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } },
      });
      expect(answer.status).toBe(401);
      expect(answer.challenge).toMatch(/^Bearer resource_metadata=/);
    });
  });

  describe('tool rules', () => {
    const call = (name: string, id: number | string = 1) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name, arguments: {} },
    });

    it('allows a tool no rule restricts', async () => {
      expect((await ask({ token: tokenA, body: call('echo') })).status).toBe(200);
      expect(
        (await ask({ token: tokenA, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } }))
          .status,
      ).toBe(200);
    });

    it('answers 403 insufficient_scope with every scope needed when more scopes would allow the call (RS-08)', async () => {
      const answer = await ask({ token: tokenA, body: call('delete_file') });
      expect(answer.status).toBe(403);
      expect(answer.challenge).toBe(
        `Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="${PRM_A}", error_description="tool delete_file requires mcp:admin"`,
      );
    });

    it('answers a JSON-RPC error carrying the request id when no scope would help', async () => {
      const answer = await ask({ token: tokenA, body: call('delete_everything', 'req-7') });
      expect(answer.status).toBe(403);
      expect(answer.challenge).toBeNull();
      expect(answer.json).toMatchObject({ jsonrpc: '2.0', id: 'req-7', error: { code: -32001 } });
    });

    it('checks group membership', async () => {
      expect((await ask({ token: tokenA, body: call('secret') })).status).toBe(200);
      const bobToken = String(
        (await obtainTokens(gw.url, { client, resource: A, user: 'bob@example.com' })).token.body
          .access_token,
      );
      const answer = await ask({ token: bobToken, body: call('secret', 9) });
      expect(answer.status).toBe(403);
      expect(answer.json).toMatchObject({ id: 9 });
    });

    it('checks every call of a batch', async () => {
      const answer = await ask({
        token: tokenA,
        body: [call('echo', 1), call('delete_everything', 2)],
      });
      expect(answer.status).toBe(403);
      expect(answer.json).toMatchObject({ id: 2 });
    });

    it('never believes Mcp-Method/Mcp-Name alone on a resource that decides on the body', async () => {
      // The client writes these headers: `Mcp-Name: echo` on a body-less subrequest says
      // nothing about the tools/call the MCP server will receive.
      for (const method of ['POST', 'PUT', 'PATCH']) {
        const answer = await ask({
          method,
          token: tokenA,
          headers: { 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
        });
        expect([method, answer.status]).toEqual([method, 403]);
        expect(String((answer.json?.error as { message: string }).message)).toMatch(/forward/);
      }
      // Methods that carry no JSON-RPC without a body (stream, session end) pass.
      for (const method of ['GET', 'DELETE']) {
        expect((await ask({ method, token: tokenA })).status).toBe(200);
      }
    });

    it('judges a forwarded body whatever the method (PUT, PATCH, DELETE, GET)', async () => {
      for (const method of ['PUT', 'PATCH', 'DELETE', 'GET']) {
        const answer = await ask({ method, token: tokenA, body: call('delete_everything') });
        expect([method, answer.status]).toEqual([method, 403]);
      }
    });

    it('reads Mcp-Method/Mcp-Name without a body only where the resource opts in', async () => {
      const on = (name: string, method = 'POST') =>
        ask({
          host: 'localhost:4004',
          method,
          token: tokenHeaders,
          headers: { 'mcp-method': 'tools/call', 'mcp-name': name },
        });
      expect((await on('delete_file')).status).toBe(403);
      expect((await on('delete_file', 'GET')).status).toBe(403);
      expect((await on('echo')).status).toBe(200);
      // The body still wins when there is one, and must agree with the headers.
      const mismatch = await ask({
        host: 'localhost:4004',
        token: tokenHeaders,
        headers: { 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
        body: call('delete_file'),
      });
      expect(mismatch.status).toBe(400);
      // Headers naming a call over a body that carries none (a response, or not JSON-RPC at
      // all) do not agree with it either.
      for (const body of [{ jsonrpc: '2.0' }, { jsonrpc: '2.0', id: 1, result: {} }]) {
        const answer = await ask({
          host: 'localhost:4004',
          token: tokenHeaders,
          headers: { 'mcp-method': 'tools/call', 'mcp-name': 'delete_file' },
          body,
        });
        expect([body, answer.status]).toEqual([body, 400]);
      }
      // And without headers nor body, a POST is still unknown.
      expect((await ask({ host: 'localhost:4004', token: tokenHeaders })).status).toBe(403);
    });

    it.each([
      [
        'a duplicate key',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_everything"}}',
      ],
      [
        'keys equal without case',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","Name":"delete_everything"}}',
      ],
      [
        'a method key in other case',
        '{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call","params":{"name":"delete_everything"}}',
      ],
      [
        'keys equal under Unicode folding (Kelvin sign)',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","\u212Aey":1,"key":2}}',
      ],
      [
        'a lone field name in other case (Go reads it, JavaScript does not)',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"delete_everything"}}',
      ],
      [
        'a lone method in other case',
        '{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"name":"delete_everything"}}',
      ],
      [
        'a NUL-suffixed key',
        '{"jsonrpc":"2.0","id":1,"method":"ping","method\u0000":"tools/call"}',
      ],
      [
        'keys duplicated deep in the arguments',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":{"b":1,"b":2}}}}',
      ],
      [
        'a comment',
        '{"jsonrpc":"2.0","id":1,"method":"tools/call" /* x */,"params":{"name":"echo"}}',
      ],
    ])(
      'refuses a body with %s (400, read alike by every decoder or not at all)',
      async (_name, body) => {
        const answer = await ask({ token: tokenA, body });
        expect(answer.status).toBe(400);
        expect(answer.json).toMatchObject({ jsonrpc: '2.0', error: { code: expect.any(Number) } });
      },
    );

    it('refuses deeply nested arguments with 400 instead of failing while hashing them', async () => {
      const deep = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_everything","arguments":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
      const answer = await ask({ token: tokenA, body: deep });
      expect(answer.status).toBe(400);
      expect(answer.json).toMatchObject({ error: { code: -32600 } });
      // Nesting within the bound is hashed and refused as usual.
      const nested = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_everything","arguments":{"a":${'['.repeat(50)}${']'.repeat(50)}}}}`;
      expect((await ask({ token: tokenA, body: nested })).status).toBe(403);
    });

    it('refuses headers that disagree with the body (400, security event)', async () => {
      const answer = await ask({
        token: tokenA,
        headers: { 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
        body: call('delete_everything', 5),
      });
      expect(answer.status).toBe(400);
      expect(answer.json).toMatchObject({ jsonrpc: '2.0', id: 5, error: { code: -32600 } });
      expect(
        gw.logRecords().some((record) => record.security_event === 'header_body_mismatch'),
      ).toBe(true);
    });

    it('answers malformed JSON-RPC with a parse error (400)', async () => {
      const answer = await ask({ token: tokenA, body: '{"jsonrpc": "2.0", "method": ' });
      expect(answer.status).toBe(400);
      expect(answer.json).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32700, message: 'Parse error' },
      });
      expect((await ask({ token: tokenA, body: { method: 'tools/call' } })).json).toMatchObject({
        error: { code: -32600 },
      });
    });

    it('answers a body over the limit with 413', async () => {
      const answer = await ask({ token: tokenA, body: call('x'.repeat(1_100_000)) });
      expect(answer.status).toBe(413);
    });

    it('fails closed on a POST whose operation it cannot see', async () => {
      const answer = await ask({ token: tokenA });
      expect(answer.status).toBe(403);
      expect(String((answer.json?.error as { message: string }).message)).toMatch(/forwardBody/);
    });
  });

  describe('revocation', () => {
    it('refuses the access tokens of a revoked grant at once, even when cached', async () => {
      const fresh = await obtainTokens(gw.url, { client, resource: B });
      const accessToken = String(fresh.token.body.access_token);
      expect((await ask({ host: 'localhost:4002', token: accessToken })).status).toBe(200);
      const revoke = await fetch(`${gw.url}/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: String(fresh.token.body.refresh_token),
          client_id: client.client_id,
        }),
      });
      expect(revoke.status).toBe(200);
      const answer = await ask({ host: 'localhost:4002', token: accessToken });
      expect(answer.status).toBe(401);
      expect(answer.json?.error_description).toMatch(/revoked/);
      const event = gw
        .logRecords()
        .filter((record) => record.security_event === 'invalid_token')
        .at(-1);
      expect(event?.reasonCode).toBe('revoked');
    });
  });

  describe('MCP sessions bound to their first user and client (RS-12)', () => {
    const onB = (token: string, session: string) =>
      ask({ host: 'localhost:4002', token, headers: { 'mcp-session-id': session } });

    it("refuses another user's token on a session (404, as an unknown session), and another client's", async () => {
      expect((await onB(tokenB, 'session-1')).status).toBe(200); // binds session-1 to this token's user
      expect((await onB(tokenB, 'session-1')).status).toBe(200);

      const bob = await obtainTokens(gw.url, { client, resource: B, user: 'bob@example.com' });
      const bobToken = String(bob.token.body.access_token);
      const hijack = await onB(bobToken, 'session-1');
      expect(hijack.status).toBe(404);
      expect(hijack.json).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32001, message: 'Session not found' },
      });
      expect(hijack.challenge).toBeNull();
      expect(
        gw
          .logRecords()
          .filter((record) => record.security_event === 'session_mismatch')
          .at(-1),
      ).toMatchObject({ resource: B, subject: 'dev:bob@example.com', clientId: client.client_id });
      expect((await onB(bobToken, 'session-2')).status).toBe(200); // his own session

      // The same user through another client (another app holding a token of hers).
      const otherClient = await registerClient(gw.url);
      const other = await obtainTokens(gw.url, { client: otherClient, resource: B });
      expect((await onB(String(other.token.body.access_token), 'session-1')).status).toBe(404);
      // The owner is unaffected.
      expect((await onB(tokenB, 'session-1')).status).toBe(200);
    });

    it('binds per resource, covers a legacy SSE sessionId, and refuses a malformed session id', async () => {
      // session-1 is the first user's on B; on the legacy resource it is another session,
      // bound to whoever uses it there first (bob).
      const bob = await obtainTokens(gw.url, {
        client,
        resource: LEGACY,
        user: 'bob@example.com',
      });
      const bobLegacy = String(bob.token.body.access_token);
      const messages = (token: string, session: string) =>
        ask({
          host: 'localhost:4003',
          uri: `/servers/legacy/messages?sessionId=${encodeURIComponent(session)}`,
          token,
        });
      expect((await messages(bobLegacy, 'session-1')).status).toBe(200);
      expect((await messages(tokenLegacy, 'session-1')).status).toBe(404);
      expect((await messages(bobLegacy, 'session-1')).status).toBe(200);

      for (const bad of ['has space', 'x'.repeat(257)]) {
        const answer = await onB(tokenB, bad);
        expect([bad.slice(0, 10), answer.status]).toEqual([bad.slice(0, 10), 400]);
      }
    });

    it('binds every way a session can be named, and refuses a request naming several', async () => {
      const bob = await obtainTokens(gw.url, { client, resource: LEGACY, user: 'bob@example.com' });
      const bobLegacy = String(bob.token.body.access_token);
      const post = (token: string, query: string, headers: Record<string, string> = {}) =>
        ask({ host: 'localhost:4003', uri: `/servers/legacy/messages${query}`, token, headers });
      // Bob's session, named the plain way.
      expect((await post(bobLegacy, '?sessionId=victim-1')).status).toBe(200);
      // Alice names it every other way a server could read it: each is Bob's session.
      for (const query of [
        '?session%49d=victim-1',
        '?%73ession%49d=victim-1',
        '?sessionId[]=victim-1',
        '?sessionId%5B0%5D=victim-1',
        '?session_id=victim-1',
        '?sessionid=victim-1',
        '?SESSIONID=victim-1',
        '?x=1;sessionId=victim-1',
        '?sessionId=victim%2D1',
      ]) {
        expect([query, (await post(tokenLegacy, query)).status]).toEqual([query, 404]);
      }
      // Naming two sessions, or one twice, is refused whatever the order.
      for (const [query, headers] of [
        ['?sessionId=mine&sessionId=victim-1', {}],
        ['?sessionId=victim-1&sessionId=victim-1', {}],
        ['?sessionId=victim-1', { 'mcp-session-id': 'mine' }],
        ['?session_id=mine&sessionId=victim-1', {}],
      ] as const) {
        const answer = await post(tokenLegacy, query, headers);
        expect([query, answer.status]).toEqual([query, 400]);
      }
      expect(gw.logRecords().some((r) => r.security_event === 'ambiguous_session')).toBe(true);
      // A name that cannot be decoded could be anything to a lenient parser: refused.
      expect((await post(tokenLegacy, '?session%E0=victim-1')).status).toBe(400);
      // Queries without a session name are not touched.
      expect((await post(bobLegacy, '?sessionId=victim-1&format=json')).status).toBe(200);
    });
  });

  describe('protected resource metadata (RS-01, RS-02, RS-04, RS-06)', () => {
    it('serves the document for each resource at its path-inserted URL', async () => {
      const response = await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp`, {
        headers: { 'x-forwarded-host': 'localhost:4001', 'x-forwarded-proto': 'http' },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(response.headers.get('access-control-allow-origin')).toBe('*');
      expect(await response.json()).toEqual({
        resource: A,
        authorization_servers: [gw.url],
        scopes_supported: ['mcp:tools'],
        bearer_methods_supported: ['header'],
        resource_name: 'A',
      });
      const legacy = await fetch(`${gw.url}/.well-known/oauth-protected-resource/servers/legacy`, {
        headers: { 'x-forwarded-host': 'localhost:4003' },
      });
      expect(((await legacy.json()) as Record<string, unknown>).resource).toBe(LEGACY);
    });

    it('answers 404 for a URL that is not a resource', async () => {
      const response = await fetch(`${gw.url}/.well-known/oauth-protected-resource/elsewhere`, {
        headers: { 'x-forwarded-host': 'localhost:4001' },
      });
      expect(response.status).toBe(404);
    });
  });

  it('decodes the identity it forwards from the token, not from the request', async () => {
    const claims = decodeJwt(tokenA);
    const answer = await ask({
      method: 'GET',
      token: tokenA,
      headers: {
        'x-auth-user-id': 'dev:mallory@example.com',
        'x-auth-user-email': 'mallory@example.com',
        'x-auth-client-id': 'someone-else',
      },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-auth-user-id')).toBe('dev:alice@example.com');
    expect(answer.headers.get('x-auth-user-id')).toBe(claims.sub);
    expect(answer.headers.get('x-auth-user-email')).toBe('alice@example.com');
    expect(answer.headers.get('x-auth-client-id')).toBe(claims.client_id);
  });
});
