/**
 * The authorization server on a real redis-server, as two replicas: keys, clients, codes and
 * refresh tokens are shared, and single use holds across replicas.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  devLogin,
  LOOPBACK_REDIRECT,
  obtainTokens,
  pkcePair,
  registerClient,
  tokenRequest,
} from '../helpers/oauth-flow.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { pollUntil } from '../helpers/poll.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const RESOURCE = 'http://localhost:3999/mcp';

describeWithBinary('redis-server', 'two auth replicas on one Redis', () => {
  let redis: RedisServer;
  let a: RunningGateway;
  let b: RunningGateway;
  /** B's own address (its configured issuer is A's, as behind one load balancer). */
  let bUrl: string;
  let config: (port: number) => (issuer: string) => Record<string, unknown>;

  beforeAll(async () => {
    redis = await startRedis();
    config = (port: number) => (issuer: string) => ({
      // Both replicas answer as the same issuer (behind one load balancer): take A's.
      issuer: port === 0 ? issuer : `http://localhost:${port}`,
      store: { redis: { url: redis.url, keyPrefix: 'replicas:' } },
    });
    a = await startGateway(config(0));
    b = await startGateway(config(Number(new URL(a.url).port)));
    bUrl = `http://127.0.0.1:${b.config.listen.port}`;
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await redis?.stop();
  });

  it('publishes the same signing keys from both replicas', async () => {
    const jwksA = await (await fetch(`${a.url}/jwks`)).json();
    const jwksB = await (await fetch(`${bUrl}/jwks`)).json();
    expect(jwksB).toEqual(jwksA);
  });

  it('redeems at B a code issued by A, refreshes at A, and refuses a replay at B', async () => {
    const client = await registerClient(a.url);
    const { verifier, challenge } = pkcePair();
    const login = await devLogin(a.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: challenge,
    });
    const code = login.url.searchParams.get('code')!;
    const params = {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: LOOPBACK_REDIRECT,
      client_id: client.client_id,
      resource: RESOURCE,
    };
    const token = await tokenRequest(bUrl, params);
    expect(token.status).toBe(200);
    const accessToken = String(token.body.access_token);
    const jwks = (await (await fetch(`${a.url}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((key) => key.kid)).toContain(decodeProtectedHeader(accessToken).kid);
    expect(decodeJwt(accessToken).aud).toBe(RESOURCE);

    const replay = await tokenRequest(bUrl, params);
    expect(replay.body.error).toBe('invalid_grant');
  });

  it('rotates refresh tokens across replicas and detects reuse on the other one', async () => {
    const client = await registerClient(bUrl);
    const { verifier, challenge } = pkcePair();
    const login = await devLogin(a.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: challenge,
    });
    const token = await tokenRequest(a.url, {
      grant_type: 'authorization_code',
      code: login.url.searchParams.get('code')!,
      code_verifier: verifier,
      redirect_uri: LOOPBACK_REDIRECT,
      client_id: client.client_id,
    });
    const rt1 = String(token.body.refresh_token);
    const rotated = await tokenRequest(bUrl, {
      grant_type: 'refresh_token',
      refresh_token: rt1,
      client_id: client.client_id,
    });
    expect(rotated.status).toBe(200);
    const reuse = await tokenRequest(a.url, {
      grant_type: 'refresh_token',
      refresh_token: rt1,
      client_id: client.client_id,
    });
    expect(reuse.body.error).toBe('invalid_grant');
    const revoked = await tokenRequest(bUrl, {
      grant_type: 'refresh_token',
      refresh_token: String(rotated.body.refresh_token),
      client_id: client.client_id,
    });
    expect(revoked.body.error).toBe('invalid_grant');
  });

  it('refuses at B, within seconds, the access token of a grant revoked at A', async () => {
    const client = await registerClient(a.url);
    const { token } = await obtainTokens(a.url, { client, resource: RESOURCE });
    const verifyAtB = async () =>
      (
        await fetch(`${bUrl}/verify`, {
          headers: {
            authorization: `Bearer ${String(token.body.access_token)}`,
            'x-forwarded-proto': 'http',
            'x-forwarded-host': 'localhost:3999',
            'x-forwarded-uri': '/mcp',
            'x-forwarded-method': 'GET',
          },
        })
      ).status;
    expect(await verifyAtB()).toBe(200);
    const revoke = await fetch(`${a.url}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: String(token.body.refresh_token),
        client_id: client.client_id,
      }),
    });
    expect(revoke.status).toBe(200);
    const { value: status, elapsedMs } = await pollUntil(verifyAtB, (seen) => seen !== 200, {
      what: 'the other replica to refuse the revoked token',
      timeoutMs: 10_000,
      intervalMs: 10,
    });
    expect(status).toBe(401);
    console.log(`revocation seen by the other replica after ${elapsedMs} ms`);
  });

  it("binds an MCP session at A and refuses another user's token on it at B (RS-12)", async () => {
    const client = await registerClient(a.url);
    const owner = await obtainTokens(a.url, { client, resource: RESOURCE });
    const other = await obtainTokens(a.url, {
      client,
      resource: RESOURCE,
      user: 'bob@example.com',
    });
    const verifyAt = async (url: string, token: unknown, session: string) =>
      (
        await fetch(`${url}/verify`, {
          headers: {
            authorization: `Bearer ${String(token)}`,
            'mcp-session-id': session,
            'x-forwarded-proto': 'http',
            'x-forwarded-host': 'localhost:3999',
            'x-forwarded-uri': '/mcp',
            'x-forwarded-method': 'POST',
          },
        })
      ).status;
    expect(await verifyAt(a.url, owner.token.body.access_token, 'replicated-session')).toBe(200);
    expect(await verifyAt(bUrl, other.token.body.access_token, 'replicated-session')).toBe(404);
    expect(await verifyAt(bUrl, owner.token.body.access_token, 'replicated-session')).toBe(200);
  });

  it('accepts at B tokens signed with a key another replica rotated in after B started', async () => {
    // Age the shared keys past keys.rotateAfter, then start a third replica: it rotates.
    const store = new RedisStore({ url: redis.url, keyPrefix: 'replicas:' });
    try {
      const material = (await store.get<{ keys: { createdAt: number; jwk: { kid: string } }[] }>(
        'keys:material',
      ))!;
      const oldKid = material.keys[0]!.jwk.kid;
      material.keys[0]!.createdAt -= 100 * 24 * 3600;
      await store.set('keys:material', material);
      const c = await startGateway(config(Number(new URL(a.url).port)));
      try {
        const cUrl = `http://127.0.0.1:${c.config.listen.port}`;
        const client = await registerClient(cUrl);
        const { token } = await obtainTokens(cUrl, { client, resource: RESOURCE });
        const accessToken = String(token.body.access_token);
        const kid = JSON.parse(Buffer.from(accessToken.split('.')[0]!, 'base64url').toString()).kid;
        expect(kid).not.toBe(oldKid);
        const answer = await fetch(`${bUrl}/verify`, {
          headers: {
            authorization: `Bearer ${accessToken}`,
            'x-forwarded-proto': 'http',
            'x-forwarded-host': 'localhost:3999',
            'x-forwarded-uri': '/mcp',
            'x-forwarded-method': 'GET',
          },
        });
        expect(answer.status).toBe(200);
      } finally {
        await c.stop();
      }
    } finally {
      await store.close();
    }
  });

  it('reports ready while Redis answers, and not ready (but alive) when it is gone', async () => {
    expect((await fetch(`${a.url}/readyz`)).status).toBe(200);
    await redis.stop();
    const { value: status } = await pollUntil(
      async () => (await fetch(`${a.url}/readyz`)).status,
      (seen) => seen !== 200,
      { what: '/readyz to report Redis gone', timeoutMs: 15_000, intervalMs: 20 },
    );
    expect(status).toBe(503);
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
  });
});
