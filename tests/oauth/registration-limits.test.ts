/**
 * Registration limits, over HTTP against the running service: every client metadata field and
 * the whole document are bounded (DCR and CIMD alike), and the registered-clients quotas are
 * fair per network (IPv4 /24, IPv6 /48) with a reserve at the top of the registry, so that a
 * few networks cannot close registration for everyone. Client addresses are simulated with
 * X-Forwarded-For, which the service believes from loopback (`trustedProxies` default).
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { networkKeyForIp } from '../../src/limits/client-quota.js';
import { CLIENTS_BY_NETWORK_PREFIX, DCR_CLIENT_INDEX } from '../../src/store/keys.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { authorizeUrl, LOOPBACK_REDIRECT, pkcePair } from '../helpers/oauth-flow.js';
import { eventually } from '../helpers/poll.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const VALID = {
  client_name: 'Limits test client',
  redirect_uris: [LOOPBACK_REDIRECT],
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
};
/** Registrations are not what these tests limit by rate. */
const MANY = { points: 10_000, duration: 3600 };

async function registerFrom(
  gw: RunningGateway,
  ip: string,
  metadata: Record<string, unknown> = {},
  raw?: string,
) {
  const response = await fetch(`${gw.url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: raw ?? JSON.stringify({ ...VALID, ...metadata }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const long = (length: number) => 'a'.repeat(length);
const uri = (length: number) => {
  const base = 'https://client.example/';
  return base + long(length - base.length);
};

describe('client metadata limits', () => {
  let gw: RunningGateway;
  let ca: TestCa;
  let cimd: CimdServer[] = [];
  const registered = () => gw.gateway.store.setSize(DCR_CLIENT_INDEX);

  beforeAll(async () => {
    ca = await createTestCa();
    cimd = await Promise.all([
      startCimdServer(ca, long(101)),
      startCimdServer(ca, 'Claude\u202e tnega detrevni'),
      startCimdServer(ca, 'Well-behaved agent'),
    ]);
    gw = await startGateway(() => ({
      limits: { register: MANY },
      tls: { caFiles: [ca.caFile] },
      registration: { cimd: { allowHosts: cimd.map((server) => server.host) } },
    }));
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all(cimd.map((server) => server.stop()));
    await ca?.cleanup();
  });

  const ports = (count: number) =>
    Array.from({ length: count }, (_, i) => `http://127.0.0.1:${2000 + i}/cb`);
  it.each<[string, string, Record<string, unknown>]>([
    ['a 101-character', 'client_name', { client_name: long(101) }],
    ['a line break in', 'client_name', { client_name: 'Claude\nVerified by your administrator' }],
    ['a bidirectional override in', 'client_name', { client_name: 'Claude\u202e' }],
    ['a zero-width space in', 'client_name', { client_name: 'Cl\u200baude' }],
    ['11 entries in', 'redirect_uris', { redirect_uris: ports(11) }],
    [
      'a 2,000-character entry in',
      'redirect_uris',
      { redirect_uris: [`${ports(1)[0]}/${long(2000)}`] },
    ],
    ['a 2,001-character', 'client_uri', { client_uri: uri(2001) }],
    ['a 2,001-character', 'logo_uri', { logo_uri: uri(2001) }],
    ['a 2,001-character', 'policy_uri', { policy_uri: uri(2001) }],
    ['a 2,001-character', 'tos_uri', { tos_uri: uri(2001) }],
    [
      'a 2,001-character',
      'jwks_uri',
      { jwks_uri: uri(2001), token_endpoint_auth_method: 'private_key_jwt' },
    ],
    ['a 2,001-character', 'initiate_login_uri', { initiate_login_uri: uri(2001) }],
    [
      '6 entries in',
      'contacts',
      { contacts: Array.from({ length: 6 }, (_, i) => `admin${i}@client.example`) },
    ],
    ['a 265-character entry in', 'contacts', { contacts: [`${long(250)}@client.example`] }],
    ['a 1,009-character', 'scope', { scope: 'mcp:tools '.repeat(101).trim() }],
    ['6 entries in', 'grant_types', { grant_types: Array(6).fill('authorization_code') }],
    ['6 entries in', 'response_types', { response_types: Array(6).fill('code') }],
    ['6 entries in', 'response_modes', { response_modes: Array(6).fill('query') }],
    [
      '11 entries in',
      'default_acr_values',
      { default_acr_values: Array.from({ length: 11 }, (_, i) => `acr${i}`) },
    ],
    ['9 KB of', 'jwks', { jwks: { keys: [{ kty: 'RSA', e: 'AQAB', n: long(9000) }] } }],
    [
      'any',
      'sector_identifier_uri',
      { sector_identifier_uri: 'https://client.example/sector.json' },
    ],
  ])('refuses %s %s, naming it, storing nothing', async (_label, field, metadata) => {
    const before = await registered();
    const { status, body } = await registerFrom(gw, '192.0.2.10', metadata);
    expect(status).toBe(400);
    // oidc-provider answers a problem with `redirect_uris` with RFC 7591's own code for it.
    expect(body.error).toBe(
      field === 'redirect_uris' ? 'invalid_redirect_uri' : 'invalid_client_metadata',
    );
    expect(body.error_description).toEqual(expect.stringContaining(field));
    expect(await registered()).toBe(before);
  });

  it.each<[string, Record<string, unknown>]>([
    ['a 50,000-character client_name', { client_name: long(50_000) }],
    ['2,000 redirect_uris', { redirect_uris: ports(2000) }],
  ])('refuses %s (the document is too large), storing nothing', async (_label, metadata) => {
    const before = await registered();
    const { status, body } = await registerFrom(gw, '192.0.2.10', metadata);
    expect(status).toBe(400);
    expect(body.error).toBe('invalid_client_metadata');
    expect(body.error_description).toMatch(/client metadata document .* at most 16384/);
    expect(await registered()).toBe(before);
  });

  it('accepts metadata at the limits', async () => {
    const { status, body } = await registerFrom(gw, '192.0.2.11', {
      client_name: `${'Long name '.repeat(10).trim()}!`.padEnd(100, 'x'),
      redirect_uris: Array.from({ length: 10 }, (_, i) => `http://127.0.0.1:${3000 + i}/cb`),
      client_uri: uri(2000),
      contacts: Array.from({ length: 5 }, (_, i) => `admin${i}@client.example`),
    });
    expect(status).toBe(201);
    expect(String(body.client_name)).toHaveLength(100);
  });

  it('refuses a registration document over 16 KiB, whatever it holds', async () => {
    const before = await registered();
    // `software_statement` padding: a field oidc-provider would drop rather than store.
    const padded = (bytes: number) => {
      const base = JSON.stringify({ ...VALID, software_id: '' });
      return JSON.stringify({ ...VALID, software_id: long(bytes - base.length) });
    };
    const over = await registerFrom(gw, '192.0.2.12', {}, padded(16 * 1024 + 1));
    expect(over.status).toBe(400);
    expect(over.body.error).toBe('invalid_client_metadata');
    expect(over.body.error_description).toMatch(/16384/);
    expect(await registered()).toBe(before);
    const within = await registerFrom(gw, '192.0.2.12', {}, padded(16 * 1024));
    expect(within.status).toBe(201);
  });

  it('refuses a registration without Content-Length (chunked) with 411', async () => {
    const before = await registered();
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.13' },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write(JSON.stringify(VALID));
      req.end();
    });
    expect(answer.status).toBe(411);
    expect(JSON.parse(answer.body).error).toBe('invalid_request');
    expect(await registered()).toBe(before);
  });

  it('holds Client ID Metadata Documents to the same limits', async () => {
    const authorize = (clientId: string) =>
      new TestUserAgent().follow(
        authorizeUrl(gw.url, {
          clientId,
          resource: 'http://localhost:3999/mcp',
          codeChallenge: pkcePair().challenge,
        }),
        (url) => url.href.startsWith(LOOPBACK_REDIRECT),
      );
    for (const server of cimd.slice(0, 2)) {
      const page = await authorize(server.clientId);
      expect(page.status).toBe(400);
      expect(page.body).toContain('invalid_client_metadata');
      expect(page.body).toContain('client_name');
      expect(page.body).not.toContain('Development sign-in');
    }
    const accepted = await authorize(cimd[2]!.clientId);
    expect(accepted.status).toBe(200);
    expect(accepted.body).toContain('Development sign-in');
  });
});

describe('registered-clients quotas per network', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGateway(() => ({
      limits: { register: MANY, maxClientsPerIp: 2, maxClientsPerNetwork: 3 },
      registration: { dcr: { maxClients: 1000 } },
    }));
  });
  afterAll(async () => gw?.stop());

  /** Waits until the registrations of `ip`'s network are all counted (no one in flight). */
  const settled = (ip: string, count: number) =>
    eventually(async () => {
      const members = await gw.gateway.store.setMembers(
        CLIENTS_BY_NETWORK_PREFIX + networkKeyForIp(ip),
      );
      return members.length === count && !members.some((id) => id.startsWith('pending:'));
    }, 5000);
  const refusals = (limit: string) =>
    gw
      .logRecords()
      .filter((line) => line.security_event === 'registration_refused' && line.limit === limit);

  it('caps an IPv4 /24 across its addresses, not the network next door', async () => {
    expect((await registerFrom(gw, '203.0.113.1')).status).toBe(201);
    expect((await registerFrom(gw, '203.0.113.1')).status).toBe(201);
    expect(await settled('203.0.113.1', 2)).toBe(true);
    // The address's own quota.
    expect((await registerFrom(gw, '203.0.113.1')).status).toBe(429);
    expect((await registerFrom(gw, '203.0.113.2')).status).toBe(201);
    expect(await settled('203.0.113.2', 3)).toBe(true);
    // The network's: another address of the /24 gets nothing more.
    const refused = await registerFrom(gw, '203.0.113.77');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toBe('too_many_requests');
    expect(refused.body.error_description).toMatch(/network/);
    expect(refusals('maxClientsPerNetwork')).toEqual([
      expect.objectContaining({ ip: '203.0.113.77' }),
    ]);
    expect((await registerFrom(gw, '203.0.114.1')).status).toBe(201);
  });

  it('caps a concurrent flood from the /64s of one IPv6 /48 at the network quota', async () => {
    const before = await gw.gateway.store.setSize(DCR_CLIENT_INDEX);
    const flood = await Promise.all(
      Array.from({ length: 30 }, (_, i) => registerFrom(gw, `2001:db8:cc:${i + 1}::1`)),
    );
    const created = flood.filter((answer) => answer.status === 201).length;
    expect(created).toBeLessThanOrEqual(3);
    expect(flood.every((answer) => answer.status === 201 || answer.status === 429)).toBe(true);
    expect(await settled('2001:db8:cc::1', created)).toBe(true);
    // Whatever the race left free is still there, and not one client more.
    let more = 0;
    for (let i = 100; (await registerFrom(gw, `2001:db8:cc:${i}::1`)).status === 201; i += 1) {
      more += 1;
      expect(await settled('2001:db8:cc::1', created + more)).toBe(true);
    }
    expect(created + more).toBe(3);
    expect(await gw.gateway.store.setSize(DCR_CLIENT_INDEX)).toBe(before + 3);
    // Another /48 registers as usual.
    expect((await registerFrom(gw, '2001:db8:dd:1::1')).status).toBe(201);
  });
});

describe('the registry reserve', () => {
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGateway(() => ({
      limits: { register: MANY },
      // The reserve starts at 16 of 20 clients; each network may then keep 3.
      registration: { dcr: { maxClients: 20 } },
    }));
  });
  afterAll(async () => gw?.stop());

  it('keeps the last fifth of the registry for networks that have (almost) no clients', async () => {
    for (let i = 0; i < 16; i += 1) {
      expect((await registerFrom(gw, '198.51.100.10')).status).toBe(201);
    }
    // The flooding network is past its reserve share.
    const refused = await registerFrom(gw, '198.51.100.11');
    expect(refused.status).toBe(429);
    expect(refused.body.error_description).toMatch(/nearly full/);
    expect(
      gw
        .logRecords()
        .some((line) => line.security_event === 'registration_refused' && line.limit === 'reserve'),
    ).toBe(true);
    // A new network still registers, up to its share.
    const settled = (count: number) =>
      eventually(async () => {
        const members = await gw.gateway.store.setMembers(
          CLIENTS_BY_NETWORK_PREFIX + networkKeyForIp('192.0.2.1'),
        );
        return members.length === count && !members.some((id) => id.startsWith('pending:'));
      }, 5000);
    for (let i = 1; i <= 3; i += 1) {
      expect((await registerFrom(gw, `192.0.2.${i}`)).status).toBe(201);
      expect(await settled(i)).toBe(true);
    }
    expect((await registerFrom(gw, '192.0.2.4')).status).toBe(429);
    expect((await registerFrom(gw, '2001:db8:ee::1')).status).toBe(201);
    // The registry itself is full now (20): closed for everyone, as before.
    expect((await registerFrom(gw, '2001:db8:ef::1')).status).toBe(503);
  });
});
