/**
 * Resource URLs have no query (security issue #14, item 4): `/verify` and the protected
 * resource metadata match a resource on scheme, host and path, so two resources differing
 * only by query would be one resource there. The configuration, `config check`, the managed
 * server catalog and the authorization server's RFC 8707 `resource` parameter all refuse a
 * query, with a message naming the rule (the admin console form: tests/admin/servers.test.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runConfigCommand } from '../../src/cli/config-command.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { canonicalResourceUrl } from '../../src/resources/resource-url.js';
import { ServerCatalog, ServerChangeRefused } from '../../src/servers/catalog.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { captureLogger } from '../helpers/captured-logger.js';
import { captureIo } from '../helpers/cli-io.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  devLogin,
  LOOPBACK_REDIRECT,
  pkcePair,
  registerClient,
  tokenRequest,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const RULE = /must not contain a query/;
const RESOURCE = 'http://localhost:3999/tenant';

describe('resource URLs with a query', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-resource-query-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const configFile = async (url: string) => {
    const file = path.join(dir, `config-${Math.random().toString(16).slice(2)}.yaml`);
    await writeFile(
      file,
      `issuer: https://auth.example.com\nresources: [{ url: "${url}", name: Tenant }]\nlogin: { dev: { users: [a@example.com] } }\n`,
    );
    return file;
  };

  it.each([
    'https://h.example/tenant?t=open',
    'https://h.example/tenant?',
    'https://h.example?x=1',
  ])('canonicalResourceUrl refuses %s, naming the rule', (url) => {
    expect(() => canonicalResourceUrl(url)).toThrow(RULE);
  });

  it('keeps accepting a percent-encoded ? in the path (it is path data, not a query)', () => {
    expect(canonicalResourceUrl('https://H.example/a%3Fb/')).toBe('https://h.example/a%3Fb');
  });

  it('refuses a configured resource with a query, naming the key and the rule', async () => {
    const file = await configFile('https://h.example/tenant?t=open');
    let error: unknown;
    try {
      loadConfig(file, {});
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(/^resources\[0\]\.url: .*tenant\?t=open.* must not contain a query/),
    ]);
  });

  it('makes `config check` fail with that message', async () => {
    const io = captureIo();
    expect(
      runConfigCommand(['check', await configFile('https://h.example/tenant?t=open')], {}, io),
    ).toBe(1);
    expect(io.err).toMatch(/^config: resources\[0\]\.url: .*must not contain a query/m);
  });

  it('refuses to add a managed server whose URL has a query', async () => {
    const store = new MemoryStore({ maxEntries: 1000 });
    const catalog = new ServerCatalog({
      store,
      configuredUrls: [],
      maxServers: 10,
      pollInterval: 3600,
      logger: captureLogger().logger,
    });
    const input = {
      name: 'Tenant',
      url: 'https://h.example/tenant?t=open',
      upstream: 'http://10.0.0.5:3000',
      scopes: ['mcp'],
      allowedOrigins: [],
      upstreamAuthorization: 'none' as const,
      rateLimitAverage: 10,
      rateLimitBurst: 20,
      inFlight: 5,
      crowdsec: false,
    };
    const refusal = await catalog.add(input, 'cli').catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ServerChangeRefused);
    expect((refusal as ServerChangeRefused).problems).toEqual([
      expect.stringMatching(/^url: .* must not contain a query/),
    ]);
    expect(await catalog.read()).toEqual([]);
    await store.close();
  });
});

describe('the authorization server and a resource indicator with a query (RFC 8707)', () => {
  let gw: RunningGateway;
  let client: RegisteredClient;

  beforeAll(async () => {
    gw = await startGateway(() => ({
      resources: [{ url: RESOURCE, name: 'Tenant', scopes: ['mcp'] }],
    }));
    client = await registerClient(gw.url);
  });
  afterAll(async () => gw?.stop());

  it.each([`${RESOURCE}?t=open`, `${RESOURCE}?`, `HTTP://LOCALHOST:3999/tenant/?t=restricted`])(
    '/authorize with resource=%s redirects with invalid_target (no login, no code)',
    async (resource) => {
      const result = await new TestUserAgent().follow(
        authorizeUrl(gw.url, {
          clientId: client.client_id,
          resource,
          codeChallenge: pkcePair().challenge,
        }),
        (url) => url.origin === new URL(LOOPBACK_REDIRECT).origin,
      );
      expect(result.url.origin).toBe(new URL(LOOPBACK_REDIRECT).origin);
      expect(result.url.searchParams.get('error')).toBe('invalid_target');
      expect(result.url.searchParams.get('error_description')).toMatch(/query/);
      expect(result.url.searchParams.get('code')).toBeNull();
    },
  );

  it('/token answers invalid_target for a query at the code exchange and at a refresh', async () => {
    const { verifier, challenge } = pkcePair();
    const login = await devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: challenge,
    });
    const code = login.url.searchParams.get('code');
    expect(code).toBeTruthy();
    const exchange = await tokenRequest(gw.url, {
      grant_type: 'authorization_code',
      code: code!,
      code_verifier: verifier,
      redirect_uri: LOOPBACK_REDIRECT,
      client_id: client.client_id,
      resource: `${RESOURCE}?t=open`,
    });
    expect(exchange.status).toBe(400);
    expect(exchange.body.error).toBe('invalid_target');

    // A clean exchange of a fresh code, then a refresh naming the resource with a query.
    const fresh = pkcePair();
    const again = await devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: fresh.challenge,
    });
    const tokens = await tokenRequest(gw.url, {
      grant_type: 'authorization_code',
      code: again.url.searchParams.get('code')!,
      code_verifier: fresh.verifier,
      redirect_uri: LOOPBACK_REDIRECT,
      client_id: client.client_id,
      resource: RESOURCE,
    });
    expect(tokens.status).toBe(200);
    const refresh = await tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: String(tokens.body.refresh_token),
      client_id: client.client_id,
      resource: `${RESOURCE}?t=open`,
    });
    expect(refresh.status).toBe(400);
    expect(refresh.body.error).toBe('invalid_target');
    // Nothing crashed: the service still answers.
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });
});
