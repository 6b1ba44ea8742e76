/**
 * Withdrawing a CIMD host's approval (`registration.cimd.requireApproval`) takes effect at the
 * next request on every replica, although each replica's oidc-provider still holds the host's
 * client document in its cache (up to an hour): no new authorization, no refresh. The grant is
 * kept, so approving the host again restores it, as enabling a disabled client does.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { ClientHostApprovals } from '../../src/clients/host-approvals.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  LOOPBACK_REDIRECT,
  obtainTokens,
  pkcePair,
  tokenRequest,
} from '../helpers/oauth-flow.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const RESOURCE = 'http://localhost:3999/mcp';

describeWithBinary('redis-server', 'withdrawing a CIMD host approval', () => {
  let ca: TestCa;
  let cimd: CimdServer;
  let redis: RedisServer;
  let a: RunningGateway;
  let b: RunningGateway;
  /** B's own address (its issuer is A's, as behind one load balancer). */
  let bUrl: string;

  beforeAll(async () => {
    ca = await createTestCa();
    cimd = await startCimdServer(ca, 'Approved agent');
    redis = await startRedis();
    const config = (issuer: string) => ({
      issuer,
      store: { redis: { url: redis.url, keyPrefix: 'cimd-revocation:' } },
      tls: { caFiles: [ca.caFile] },
      registration: { cimd: { allowHosts: [cimd.host], requireApproval: true } },
    });
    a = await startGateway(config);
    b = await startGateway(() => config(a.url));
    bUrl = `http://127.0.0.1:${b.config.listen.port}`;
  });

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await redis?.stop();
    await cimd?.stop();
    await ca?.cleanup();
  });

  /** Starts an authorization at `issuer`: the login page when the client is accepted. */
  const authorize = (issuer: string) =>
    new TestUserAgent().follow(
      authorizeUrl(issuer, {
        clientId: cimd.clientId,
        resource: RESOURCE,
        codeChallenge: pkcePair().challenge,
      }),
      (url) => url.href.startsWith(LOOPBACK_REDIRECT),
    );
  const refresh = (issuer: string, refreshToken: string) =>
    tokenRequest(issuer, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: cimd.clientId,
    });

  it('refuses new authorizations and refreshes at once on both replicas, keeping the grant', async () => {
    const approvals = new ClientHostApprovals(a.gateway.store);
    await approvals.approve('localhost');
    const { token } = await obtainTokens(a.url, {
      client: { client_id: cimd.clientId },
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    // Both replicas now hold the document in their cache: A from the login, B from these.
    const rotated = await refresh(bUrl, String(token.body.refresh_token));
    expect(rotated.status).toBe(200);
    expect((await authorize(bUrl)).body).toContain('Development sign-in');
    expect((await authorize(a.url)).body).toContain('Development sign-in');

    // As `mcp-gateway clients unapprove-host localhost` does, from a third store connection.
    await new ClientHostApprovals(b.gateway.store).revoke('localhost');

    for (const issuer of [a.url, bUrl]) {
      const refused = await authorize(issuer);
      expect(refused.status).toBe(400);
      expect(refused.body).not.toContain('Development sign-in');
      expect(refused.body).not.toContain('Approved agent');
    }
    let refreshToken = String(rotated.body.refresh_token);
    for (const issuer of [a.url, bUrl]) {
      const refusedRefresh = await refresh(issuer, refreshToken);
      expect(refusedRefresh.status).toBe(400);
      expect(refusedRefresh.body.error).toBe('invalid_client');
    }
    // Refused by who the client is, before the token was looked at: the grant is intact, and
    // approving the host again lets the same refresh token work.
    await approvals.approve('localhost');
    const restored = await refresh(bUrl, refreshToken);
    expect(restored.status).toBe(200);
    refreshToken = String(restored.body.refresh_token);
    expect((await refresh(a.url, refreshToken)).status).toBe(200);
    // Once withdrawn, the host is listed as pending again when its clients keep coming.
    await approvals.revoke('localhost');
    await authorize(a.url);
    expect(await approvals.pending()).toEqual(['localhost']);
  });
});
