/**
 * `/metrics` (prom-client): what it counts after real traffic, and who may read it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { verifyStatus } from '../helpers/provider-login.js';

const RESOURCE = 'http://localhost:3999/mcp';

/** The value of one sample line, e.g. `name{a="b"} 3`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((label) => line.includes(label))) return Number(line.split(' ').at(-1));
  }
  return NaN;
}

describe('/metrics', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw?.stop());

  it('counts decisions, latency, tokens, registrations, logins and store operations', async () => {
    const client = await registerClient(gw.url);
    const { token } = await obtainTokens(gw.url, { client, resource: RESOURCE });
    const accessToken = (token.body as { access_token: string }).access_token;
    for (let i = 0; i < 3; i++) expect(await verifyStatus(gw.url, RESOURCE, accessToken)).toBe(200);
    expect(await verifyStatus(gw.url, RESOURCE, 'garbage')).toBe(401);

    const response = await fetch(`${gw.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const decision = (result: string, reason: string) =>
      sample(text, 'mcp_gateway_verify_decisions_total', { result, reason, resource: RESOURCE });
    expect(decision('allow', 'allowed')).toBe(3);
    expect(decision('deny', 'malformed')).toBe(1);
    expect(sample(text, 'mcp_gateway_verify_duration_seconds_count', { result: 'allow' })).toBe(3);
    expect(
      sample(text, 'mcp_gateway_tokens_issued_total', { grant_type: 'authorization_code' }),
    ).toBe(1);
    expect(
      sample(text, 'mcp_gateway_client_registrations_total', { kind: 'dcr', result: 'accepted' }),
    ).toBe(1);
    expect(sample(text, 'mcp_gateway_logins_total', { provider: 'dev', result: 'success' })).toBe(
      1,
    );
    expect(
      sample(text, 'mcp_gateway_store_duration_seconds_count', { operation: 'set' }),
    ).toBeGreaterThan(0);
    expect(sample(text, 'mcp_gateway_revocations_age_seconds')).toBeLessThan(30);
    expect(sample(text, 'mcp_gateway_process_resident_memory_bytes')).toBeGreaterThan(0);
    // No token, client secret or user address ever becomes a label.
    expect(text).not.toContain(accessToken.slice(0, 20));
    expect(text).not.toContain('alice@example.com');
  });
});

describe('/metrics access', () => {
  it('hides /metrics from peers outside metrics.allowFrom (404)', async () => {
    const gw = await startGateway(() => ({ metrics: { allowFrom: ['10.0.0.0/8'] } }));
    try {
      const response = await fetch(`${gw.url}/metrics`);
      expect(response.status).toBe(404);
      expect(await response.text()).not.toContain('mcp_gateway_');
    } finally {
      await gw.stop();
    }
  });

  it('serves /metrics on its own listener when metrics.listen is set, and not on the main one', async () => {
    const gw = await startGateway(() => ({ metrics: { listen: { host: '127.0.0.1', port: 0 } } }));
    try {
      const address = gw.gateway.metricsAddress()!;
      const own = await fetch(`http://127.0.0.1:${address.port}/metrics`);
      expect(own.status).toBe(200);
      expect(await own.text()).toContain('mcp_gateway_verify_decisions_total');
      const main = await fetch(`${gw.url}/metrics`);
      expect(main.status).toBe(404);
    } finally {
      await gw.stop();
    }
  });

  it('has no /metrics with metrics.enabled: false', async () => {
    const gw = await startGateway(() => ({ metrics: { enabled: false } }));
    try {
      expect((await fetch(`${gw.url}/metrics`)).status).toBe(404);
      expect(gw.gateway.metrics).toBeUndefined();
    } finally {
      await gw.stop();
    }
  });
});
