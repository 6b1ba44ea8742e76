/**
 * Discovery documents take no URL from the request (security issue #14, item 11): whatever
 * `Host`, `X-Forwarded-Host` and `X-Forwarded-Proto` say, from a trusted proxy or from any
 * other peer, every URL in the authorization server metadata (both paths, also as served on
 * an MCP server's host) starts with the configured issuer, and the protected resource
 * metadata is the configured resource's or a 404. Each carries a `Cache-Control`.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';

const RESOURCE = 'http://localhost:3999/mcp';
const PRM_PATH = '/.well-known/oauth-protected-resource/mcp';
const METADATA_CACHE = 'public, max-age=300';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request with exactly these headers (`Host` included, which fetch would not send). */
function send(
  base: string,
  path: string,
  headers: Record<string, string>,
  method = 'GET',
  body?: string,
): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname, method, headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Every string in a JSON value that is an absolute http(s) URL. */
function urlsIn(value: unknown): string[] {
  if (typeof value === 'string') return /^https?:\/\//i.test(value) ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(urlsIn);
  if (value && typeof value === 'object') return Object.values(value).flatMap(urlsIn);
  return [];
}

/** Spoofing attempts: forwarded headers (believed only from a trusted proxy) and Host. */
const SPOOFS: [string, Record<string, string>][] = [
  ['X-Forwarded-Host: evil.example', { 'x-forwarded-host': 'evil.example' }],
  [
    'X-Forwarded-Host/-Proto: evil.example over https',
    { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
  ],
  ['Host: evil.example', { host: 'evil.example' }],
  ["the MCP server's host (the RFC 8414 route on it)", { 'x-forwarded-host': 'localhost:3999' }],
];

describe.each([
  ['a trusted proxy (loopback)', ['loopback']],
  ['an untrusted peer', ['10.0.0.0/8']],
])('discovery documents requested from %s', (_label, trustedProxies) => {
  let gw: RunningGateway;

  beforeAll(async () => {
    gw = await startGateway(() => ({
      trustedProxies,
      resources: [{ url: RESOURCE, name: 'Test MCP', scopes: ['mcp:tools'] }],
    }));
  });
  afterAll(async () => gw?.stop());

  describe.each(['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'])(
    '%s',
    (path) => {
      it.each(SPOOFS)('builds every URL from the issuer with %s', async (_spoof, headers) => {
        const answer = await send(gw.url, path, headers);
        expect(answer.status).toBe(200);
        const document = JSON.parse(answer.body) as Record<string, unknown>;
        expect(document.issuer).toBe(gw.url);
        expect(document.token_endpoint).toBe(`${gw.url}/token`);
        const urls = urlsIn(document);
        expect(urls.length).toBeGreaterThanOrEqual(6);
        for (const url of urls)
          expect([url, url.startsWith(`${gw.url}/`) || url === gw.url]).toEqual([url, true]);
        expect(answer.body).not.toContain('evil.example');
        expect(answer.headers['cache-control']).toBe(METADATA_CACHE);
      });
    },
  );

  it('sends the JWKS with the same Cache-Control', async () => {
    const answer = await send(gw.url, '/jwks', { host: 'evil.example' });
    expect(answer.status).toBe(200);
    expect(answer.headers['cache-control']).toBe(METADATA_CACHE);
  });

  it('builds registration_client_uri from the issuer too', async () => {
    const answer = await send(
      gw.url,
      '/register',
      {
        host: 'evil.example',
        'x-forwarded-host': 'evil.example',
        'content-type': 'application/json',
      },
      'POST',
      JSON.stringify({
        client_name: 'Spoofing client',
        redirect_uris: ['http://127.0.0.1:8976/callback'],
        token_endpoint_auth_method: 'none',
      }),
    );
    expect(answer.status).toBe(201);
    const registered = JSON.parse(answer.body) as Record<string, unknown>;
    expect(registered.registration_client_uri).toBe(
      `${gw.url}/register/${String(registered.client_id)}`,
    );
  });

  it('answers 404 (not cached) for protected resource metadata of an unknown host', async () => {
    const spoofs: Record<string, string>[] = [
      { 'x-forwarded-host': 'evil.example' },
      { host: 'evil.example' },
    ];
    for (const headers of spoofs) {
      const answer = await send(gw.url, PRM_PATH, headers);
      expect([headers, answer.status]).toEqual([headers, 404]);
      expect(answer.headers['cache-control']).toBe('no-store');
    }
  });

  it("serves the configured resource's metadata, URLs from configuration only", async () => {
    // As the resource's own host asked directly, and as a proxy forwards it (believed only
    // from a trusted proxy; from any other peer the forwarded host is dropped: 404).
    const direct = await send(gw.url, PRM_PATH, { host: 'localhost:3999' });
    const forwarded = await send(gw.url, PRM_PATH, {
      'x-forwarded-host': 'localhost:3999',
      'x-forwarded-proto': 'http',
    });
    const trusted = trustedProxies.includes('loopback');
    expect(forwarded.status).toBe(trusted ? 200 : 404);
    for (const answer of trusted ? [direct, forwarded] : [direct]) {
      expect(answer.status).toBe(200);
      const document = JSON.parse(answer.body) as Record<string, unknown>;
      expect(document.resource).toBe(RESOURCE);
      expect(document.authorization_servers).toEqual([gw.url]);
      expect(urlsIn(document).sort()).toEqual([RESOURCE, gw.url].sort());
      expect(answer.headers['cache-control']).toBe(METADATA_CACHE);
    }
  });
});
