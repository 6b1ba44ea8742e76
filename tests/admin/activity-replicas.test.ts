/**
 * The Activity page across replicas: two gateways on one real redis-server; decisions and a
 * security event made on replica A are listed on replica B's page (A writes its batch within
 * about a second; B's page reads the shared lists).
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { describeWithBinary } from '../helpers/binaries.js';
import { ask, feedRows, openPage } from '../helpers/admin-activity.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { TestUserAgent } from '../helpers/user-agent.js';
import { waitFor } from '../store/contract.js';

const RESOURCE = 'http://localhost:3999/mcp';
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

describeWithBinary('redis-server', 'Activity page on two replicas sharing Redis', () => {
  let redis: RedisServer;
  let a: RunningGateway;
  let b: RunningGateway;

  beforeAll(async () => {
    redis = await startRedis();
    const shared = { url: redis.url, keyPrefix: 'activity-replicas:' };
    a = await startGateway(() => ({ admins: { emails: [ALICE] }, store: { redis: shared } }));
    // B answers as A's issuer, as behind one load balancer.
    b = await startGateway(() => ({
      issuer: a.url,
      admins: { emails: [ALICE] },
      store: { redis: shared },
    }));
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await redis?.stop();
  });

  it('lists on replica B the decisions and security events made on replica A', async () => {
    const client = await registerClient(a.url);
    const { token } = await obtainTokens(a.url, { client, resource: RESOURCE, user: BOB });
    const accessToken = String(token.body.access_token);
    expect(await ask(a.url, RESOURCE, { token: accessToken, ip: '192.0.2.10' })).toBe(200);
    expect(await ask(a.url, RESOURCE, { token: 'forged', ip: '192.0.2.11' })).toBe(401);

    // Signed in through A (the issuer); the session lives in Redis, the cookie is localhost's.
    const agent = new TestUserAgent();
    await openPage(a.url, agent, '/admin', ALICE);
    const bPage = `http://localhost:${b.config.listen.port}/admin/activity`;
    let listed: Record<string, string>[] = [];
    await waitFor(
      async () => {
        const page = await agent.follow(bPage, () => false);
        expect(page.status).toBe(200);
        listed = feedRows(page.body);
        return listed.filter((row) => row.ip?.startsWith('192.0.2.')).length >= 3;
      },
      "replica A's entries on replica B's page",
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(listed).toContainEqual(
      expect.objectContaining({
        ip: '192.0.2.10',
        result: 'allowed',
        subject: `dev:${BOB}`,
        email: BOB,
        client: client.client_id,
        resource: RESOURCE,
      }),
    );
    expect(listed).toContainEqual(
      expect.objectContaining({ ip: '192.0.2.11', result: 'refused', what: '401' }),
    );
    expect(listed).toContainEqual(
      expect.objectContaining({
        ip: '192.0.2.11',
        result: 'security event',
        what: 'invalid_token',
      }),
    );
    // B's filters apply to A's entries too.
    const filtered = feedRows(
      (await agent.follow(`${bPage}?result=allowed&user=${encodeURIComponent(BOB)}`, () => false))
        .body,
    );
    expect(filtered.map((row) => row.ip)).toEqual(['192.0.2.10']);
  });
});
