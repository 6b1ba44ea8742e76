/**
 * Resource exhaustion: 50 concurrent clients hammer /authorize and /register for 10 seconds.
 * The service (a separate process, as deployed) must stay up and answering, and its memory
 * must stay bounded: DCR registrations are capped, pending logins expire and the embedded
 * store is bounded. Prints what it measured; asserts no wall-clock numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import autocannon from 'autocannon';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { pkcePair, registerClient } from '../helpers/oauth-flow.js';

const MAX_CLIENTS = 100;
const MB = 1024 * 1024;

function cannon(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

describe('flooding /authorize and /register', () => {
  let gw: GatewayProcess;

  beforeAll(async () => {
    gw = await startGatewayProcess((issuer, port, dataDir) => ({
      issuer,
      listen: { host: '127.0.0.1', port },
      dataDir,
      login: { dev: { users: ['alice@example.com'] } },
      resources: [{ url: 'http://localhost:3999/mcp', name: 'Test MCP', scopes: ['mcp:tools'] }],
      registration: { dcr: { maxClients: MAX_CLIENTS } },
      store: { memory: { maxEntries: 20_000 } },
      log: { level: 'error' },
      // What is measured here is the service without its per-IP limits (all requests come
      // from one address, which the limits would cut to a trickle): the memory bound and
      // the global registration cap. The limits have their own tests (tests/limits/).
      limits: { enabled: false },
    }));
  });
  afterAll(async () => gw.stop());

  it('stays up, keeps answering, and keeps memory bounded', async () => {
    const client = await registerClient(gw.url);
    const authorize = new URL(`${gw.url}/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: 'http://127.0.0.1:8976/callback',
      code_challenge: pkcePair().challenge,
      code_challenge_method: 'S256',
      resource: 'http://localhost:3999/mcp',
      state: 'flood',
    }).toString();
    const rssBefore = await gw.rss();

    const healthStatuses: number[] = [];
    let flooding = true;
    const probe = (async () => {
      while (flooding) {
        const response = await fetch(`${gw.url}/healthz`).catch(() => undefined);
        healthStatuses.push(response?.status ?? 0);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();

    const [authorizeResult, registerResult] = await Promise.all([
      cannon({ url: authorize.href, connections: 25, duration: 10, timeout: 30 }),
      cannon({
        url: `${gw.url}/register`,
        connections: 25,
        duration: 10,
        // A slow answer on a busy machine is not a failure; a refused or reset connection is.
        timeout: 30,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          client_name: 'flood',
          redirect_uris: ['http://127.0.0.1:1/cb'],
          token_endpoint_auth_method: 'none',
        }),
      }),
    ]);
    flooding = false;
    await probe;
    const rssAfter = await gw.rss();

    console.log(
      [
        `flood: /authorize ${authorizeResult.requests.total} requests (${Math.round(authorizeResult.requests.average)} req/s, p99 ${authorizeResult.latency.p99} ms, ${authorizeResult['3xx']} redirected to login)`,
        `flood: /register ${registerResult.requests.total} requests (${Math.round(registerResult.requests.average)} req/s, p99 ${registerResult.latency.p99} ms, ${registerResult['2xx']} created, ${registerResult.non2xx} refused)`,
        `flood: RSS ${Math.round(rssBefore / MB)} MB before, ${Math.round(rssAfter / MB)} MB after; /healthz probes ${healthStatuses.length}, all 200: ${healthStatuses.every((s) => s === 200)}`,
      ].join('\n'),
    );

    expect(gw.child.exitCode).toBeNull();
    expect(authorizeResult.errors).toBe(0);
    // Every authorization request was answered with the redirect to the login page.
    expect(authorizeResult['3xx']).toBe(authorizeResult.requests.total);
    expect(registerResult['5xx']).toBe(registerResult.non2xx);
    expect(registerResult.errors).toBe(0);
    // Registration closes at the cap: at most MAX_CLIENTS (minus the one above) were created.
    expect(registerResult['2xx']).toBeLessThanOrEqual(MAX_CLIENTS);
    expect(registerResult.non2xx).toBeGreaterThan(0);
    expect(healthStatuses.length).toBeGreaterThan(5);
    expect(healthStatuses.every((status) => status === 200)).toBe(true);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    // Bounded: the embedded store holds at most 20 000 entries of a few KB each.
    expect(rssAfter - rssBefore).toBeLessThan(300 * MB);
    const refused = await fetch(`${gw.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1:1/cb'] }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('60');
  }, 60_000);
});
