/**
 * Registration governance for Client ID Metadata Documents: `onlyHosts` (allow-list) and
 * `requireApproval` (a new client host waits for an admin).
 */
import { createServer, type Server } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ClientHostApprovals } from '../../src/clients/host-approvals.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { authorizeUrl, LOOPBACK_REDIRECT, pkcePair } from '../helpers/oauth-flow.js';
import { listenOnFreePort } from '../helpers/ports.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const RESOURCE = 'http://localhost:3999/mcp';

describe('CIMD client hosts', () => {
  let ca: TestCa;
  let cimd: Server;
  let port: number;
  let gw: RunningGateway;
  const clientId = () => `https://localhost:${port}/client.json`;

  beforeAll(async () => {
    ca = await createTestCa();
    cimd = createServer({ cert: ca.cert, key: ca.key }, (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          client_id: clientId(),
          client_name: 'Governed client',
          redirect_uris: [LOOPBACK_REDIRECT],
          token_endpoint_auth_method: 'none',
        }),
      );
    });
    port = await listenOnFreePort(cimd);
    gw = await startGateway(() => ({
      tls: { caFiles: [ca.caFile] },
      registration: { cimd: { allowHosts: [`localhost:${port}`], requireApproval: true } },
    }));
  });

  afterAll(async () => {
    await gw?.stop();
    await new Promise((resolve) => cimd?.close(resolve));
    await ca?.cleanup();
  });

  const authorize = () =>
    new TestUserAgent().follow(
      authorizeUrl(gw.url, {
        clientId: clientId(),
        resource: RESOURCE,
        codeChallenge: pkcePair().challenge,
      }),
      (url) => url.href.startsWith(LOOPBACK_REDIRECT),
    );

  it('refuses a client on a host pending approval, lists the host, and accepts it once approved', async () => {
    const refused = await authorize();
    expect(refused.status).toBe(400);
    expect(refused.body).not.toContain('Governed client');
    const approvals = new ClientHostApprovals(gw.gateway.store);
    expect(await approvals.pending()).toEqual(['localhost']);
    expect(gw.logRecords().some((line) => line.event === 'cimd_pending')).toBe(true);

    await approvals.approve('localhost');
    expect(await approvals.pending()).toEqual([]);
    const accepted = await authorize();
    expect(accepted.status).toBe(200);
    expect(accepted.body).toContain('Development sign-in');
  });

  it('accepts only onlyHosts when that list is set', async () => {
    const only = await startGateway(() => ({
      tls: { caFiles: [ca.caFile] },
      registration: {
        cimd: { allowHosts: [`localhost:${port}`], onlyHosts: ['clients.example.com'] },
      },
    }));
    try {
      const page = await new TestUserAgent().follow(
        authorizeUrl(only.url, {
          clientId: clientId(),
          resource: RESOURCE,
          codeChallenge: pkcePair().challenge,
        }),
        (url) => url.href.startsWith(LOOPBACK_REDIRECT),
      );
      expect(page.status).toBe(400);
      expect(page.body).not.toContain('Development sign-in');
    } finally {
      await only.stop();
    }
  });
});
