/**
 * MCP servers added, edited and removed at run time through the admin console (`/admin/servers`),
 * over HTTP with the scripted user agent and the dev login: a server is protected at once
 * (`/verify` challenges, its protected resource metadata is served, the whole OAuth flow works
 * for its new scope), tool rule edits apply without restart, removal refuses the URL again;
 * its Traefik file is written and validated (against SchemaStore's schema where a copy is
 * it) and a refused change writes nothing; the form's guards (administrator, CSRF, origin);
 * and two replicas on one real Redis applying each other's changes.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { describeWithBinary } from '../helpers/binaries.js';
import { csrfToken, never, openSignedIn, postFields } from '../helpers/admin-console.js';
import { compileSharedSchema, SHARED_SCHEMA_DIR } from '../helpers/config-files.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/netns.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { verifyStatus } from '../helpers/provider-login.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { TestUserAgent, type FlowResult } from '../helpers/user-agent.js';

const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';
const CONFIGURED = 'http://localhost:3999/mcp';
const SCHEMA_FILE = path.join(SHARED_SCHEMA_DIR, 'traefik-v3-file-provider.json');

/** The form of a new server, as a browser would post it (text fields). */
function serverForm(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    name: 'CRM tools',
    url: 'http://localhost:4001/crm/mcp',
    upstream: 'http://127.0.0.1:3001',
    scopes: 'crm:read',
    allowedOrigins: '',
    upstreamAuthorization: 'none',
    toolsDefault: 'none',
    toolRules: '',
    rateLimitAverage: '50',
    rateLimitBurst: '100',
    inFlight: '20',
    crowdsec: 'on',
    ...overrides,
  };
}

const signIn = (gwUrl: string, agent: TestUserAgent, user: string): Promise<FlowResult> =>
  openSignedIn(agent, new URL('/admin/servers', gwUrl), user);

/** Posts a server form from the servers page (its CSRF token), as the admin's browser. */
async function postForm(
  gwUrl: string,
  agent: TestUserAgent,
  action: string,
  fields: Record<string, string>,
  origin = gwUrl,
): Promise<FlowResult> {
  const listing = await agent.follow(new URL('/admin/servers/new', gwUrl), never);
  return postFields(
    agent,
    new URL(action, gwUrl),
    { csrf: csrfToken(listing.body), ...fields },
    origin,
  );
}

/** The ids of the run-time servers listed on `/admin/servers`. */
function managedIds(body: string): string[] {
  return [...body.matchAll(/<tr class="server managed" data-server="([^"]+)">/g)].map((m) => m[1]!);
}

/** Asks /verify about a tools/call of `tool` on `resource` with `token`. */
async function verifyToolCall(gwUrl: string, resource: string, token: string, tool: string) {
  const url = new URL(resource);
  const response = await fetch(`${gwUrl}/verify`, {
    headers: {
      'x-forwarded-proto': 'http',
      'x-forwarded-host': url.host,
      'x-forwarded-uri': url.pathname,
      'x-forwarded-method': 'POST',
      authorization: `Bearer ${token}`,
      'mcp-method': 'tools/call',
      'mcp-name': tool,
    },
  });
  return { status: response.status, body: await response.text() };
}

describe('MCP servers added at run time (/admin/servers)', () => {
  let gw: RunningGateway;
  let traefikDir: string;
  let alice: TestUserAgent;

  beforeAll(async () => {
    traefikDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-traefik-'));
    gw = await startGateway(() => ({
      admins: { emails: [ALICE] },
      managedServers: {
        traefik: {
          directory: traefikDir,
          ...(existsSync(SCHEMA_FILE) ? { schemaFile: SCHEMA_FILE } : {}),
        },
      },
    }));
    alice = new TestUserAgent();
    expect((await signIn(gw.url, alice, ALICE)).status).toBe(200);
  });
  afterAll(async () => {
    await gw?.stop();
    await rm(traefikDir, { recursive: true, force: true });
  });

  /** Adds a server through the form (`serverForm` with `fields`); returns its id, found by name. */
  async function addServer(fields: Record<string, string>): Promise<string> {
    const form = serverForm(fields);
    const added = await postForm(gw.url, alice, '/admin/servers', form);
    expect(added.body).toContain('Server added');
    const id = managedIds(added.body).find((candidate) =>
      new RegExp(`data-server="${candidate}">\\s*<td class="name">${form.name}<`).test(added.body),
    );
    expect(id).toBeDefined();
    return id!;
  }

  it('adds a server that is protected at once: challenge, metadata, Traefik file, a token for its new scope', async () => {
    const resource = 'http://localhost:4001/crm/mcp';
    const prm = 'http://localhost:4001/.well-known/oauth-protected-resource/crm/mcp';
    expect(await verifyStatus(gw.url, resource, 'x')).toBe(403); // no such resource yet

    const added = await postForm(gw.url, alice, '/admin/servers', serverForm());
    expect(added.hops[0]!.status).toBe(303);
    expect(added.url.pathname).toBe('/admin/servers');
    expect(added.body).toContain('Server added');
    const [id] = managedIds(added.body);
    expect(id).toMatch(/^s[0-9a-f]{10}$/);

    // The 401 challenge of RFC 9728 §5.1 for the new resource, and its metadata.
    const challenge = await fetch(`${gw.url}/verify`, {
      headers: {
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'localhost:4001',
        'x-forwarded-uri': '/crm/mcp',
        'x-forwarded-method': 'POST',
      },
    });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${prm}", scope="crm:read"`,
    );
    const metadata = await fetch(`${gw.url}/.well-known/oauth-protected-resource/crm/mcp`, {
      headers: { 'x-forwarded-host': 'localhost:4001', 'x-forwarded-proto': 'http' },
    });
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({
      resource,
      authorization_servers: [gw.url],
      scopes_supported: ['crm:read'],
      resource_name: 'CRM tools',
    });
    // A client registering with the new scope (as the MCP SDK does with the challenge's) gets
    // a token for the new resource, which /verify accepts there and nowhere else.
    const client = await registerClient(gw.url, { scope: 'crm:read' });
    const { token } = await obtainTokens(gw.url, { client, resource, scope: 'crm:read' });
    expect(token.status).toBe(200);
    const accessToken = String(token.body.access_token);
    expect(await verifyStatus(gw.url, resource, accessToken)).toBe(200);
    expect(await verifyStatus(gw.url, CONFIGURED, accessToken)).toBe(401);

    // Its Traefik file: the router chain, the service, valid against the schema.
    const file = path.join(traefikDir, `mcpgw-${id}.yaml`);
    const document = parse(await readFile(file, 'utf8')) as {
      http: { routers: Record<string, Record<string, unknown>>; services: Record<string, unknown> };
    };
    expect(document.http.routers[`mcpgw-${id}`]).toMatchObject({
      rule: 'Host(`localhost`) && (Path(`/crm/mcp`) || PathPrefix(`/crm/mcp/`))',
      middlewares: [
        'crowdsec',
        `mcpgw-${id}-ratelimit`,
        `mcpgw-${id}-inflight`,
        'mcp-auth',
        'security-headers',
      ],
      service: `mcpgw-${id}`,
    });
    expect(document.http.routers[`mcpgw-${id}-well-known`]).toMatchObject({
      service: 'auth',
      priority: 1000,
    });
    expect(document.http.services[`mcpgw-${id}`]).toEqual({
      loadBalancer: { servers: [{ url: 'http://127.0.0.1:3001' }], passHostHeader: true },
    });
    if (existsSync(SCHEMA_FILE)) {
      const validate = compileSharedSchema('traefik-v3-file-provider.json');
      expect([validate(document), validate.errors ?? []]).toEqual([true, []]);
    } else {
      console.warn(`Schema check of the written file skipped: ${SCHEMA_FILE} not found`);
    }

    // Audited with who did it.
    const audit = await gw.gateway.store.readChained('audit');
    expect(audit.map((entry) => entry.record)).toContainEqual(
      expect.objectContaining({
        kind: 'admin_change',
        change: 'add-server',
        serverId: id,
        resource,
      }),
    );
  });

  it('applies an edit of tool rules without restart, and removes a server', async () => {
    const resource = 'http://localhost:4002/mcp';
    const id = await addServer({ name: 'Files', url: resource, scopes: 'files' });
    // The authorization server's metadata names the new scope at once (RFC 8414 §2).
    expect(await discoveryScopes(gw.url)).toEqual(expect.arrayContaining(['openid', 'files']));
    const client = await registerClient(gw.url, { scope: 'files' });
    const { token } = await obtainTokens(gw.url, { client, resource, scope: 'files' });
    const accessToken = String(token.body.access_token);
    expect((await verifyToolCall(gw.url, resource, accessToken, 'delete_file')).status).toBe(200);

    // The edit form shows the stored values; deny delete_file to everyone not in `admins`.
    const edit = await alice.follow(new URL(`/admin/servers/${id}/edit`, gw.url), never);
    expect(edit.status).toBe(200);
    expect(edit.body).toContain(`value="${resource}"`);
    const saved = await postForm(
      gw.url,
      alice,
      `/admin/servers/${id}`,
      serverForm({
        name: 'Files',
        url: resource,
        scopes: 'files',
        toolsDefault: 'allow',
        // verifyToolCall asks as a body-less proxy does, with Mcp-* headers.
        toolsFrom: 'headers',
        toolRules: 'delete_*:\n  groups: [dev:admins]\n',
      }),
    );
    expect(saved.body).toContain('Server saved');
    const denied = await verifyToolCall(gw.url, resource, accessToken, 'delete_file');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toMatchObject({
      error: { message: expect.stringContaining('delete_file') },
    });
    expect((await verifyToolCall(gw.url, resource, accessToken, 'read_file')).status).toBe(200);

    const removed = await postForm(gw.url, alice, `/admin/servers/${id}/remove`, {});
    expect(removed.body).toContain('Server removed');
    expect(managedIds(removed.body)).not.toContain(id);
    expect(await verifyStatus(gw.url, resource, accessToken)).toBe(403);
    expect(await readdir(traefikDir)).not.toContain(`mcpgw-${id}.yaml`);
    const scopes = await discoveryScopes(gw.url);
    expect(scopes).not.toContain('files');
    expect(scopes).toEqual(expect.arrayContaining(['openid', 'crm:read']));
  });

  it('refuses an edit of a server changed since the form was opened (409), and keeps the other change', async () => {
    const resource = 'http://localhost:4003/mcp';
    const id = await addServer({ name: 'Notes', url: resource, scopes: 'notes' });
    const versionOf = (body: string) => /name="version" value="([^"]+)"/.exec(body)?.[1];
    /** Two of the stored values, as the edit form shows them. */
    const storedLimits = async (serverId: string) => {
      const form = await alice.follow(new URL(`/admin/servers/${serverId}/edit`, gw.url), never);
      const value = (field: string) =>
        new RegExp(`id="${field}"[^>]*value="([^"]*)"`).exec(form.body)?.[1];
      return { rateLimitAverage: value('rateLimitAverage'), inFlight: value('inFlight') };
    };
    // Two administrators open the edit form (alice twice here: the version is what counts).
    const first = await alice.follow(new URL(`/admin/servers/${id}/edit`, gw.url), never);
    const opened = versionOf(first.body);
    expect(opened).toMatch(/^\d{4}-\d\d-\d\dT/);
    const saved = await postForm(gw.url, alice, `/admin/servers/${id}`, {
      ...serverForm({ name: 'Notes', url: resource, scopes: 'notes' }),
      rateLimitAverage: '7',
      version: opened!,
    });
    expect(saved.body).toContain('Server saved');

    // The second save, from the form opened before the first one.
    const stale = await postForm(gw.url, alice, `/admin/servers/${id}`, {
      ...serverForm({ name: 'Notes', url: resource, scopes: 'notes' }),
      inFlight: '3',
      version: opened!,
    });
    expect(stale.status).toBe(409);
    expect(stale.body).toContain('Not saved.');
    expect(stale.body).toContain('was changed by admin:');
    expect(stale.body).toContain('value="3"'); // the editor's values are kept
    const current = versionOf(stale.body);
    expect(current).toBeDefined();
    expect(current).not.toBe(opened);
    expect(await storedLimits(id)).toEqual({ rateLimitAverage: '7', inFlight: '20' });

    // Saving that form again replaces the other change, deliberately.
    const again = await postForm(gw.url, alice, `/admin/servers/${id}`, {
      ...serverForm({ name: 'Notes', url: resource, scopes: 'notes' }),
      inFlight: '3',
      version: current!,
    });
    expect(again.body).toContain('Server saved');
    expect(await storedLimits(id)).toEqual({ rateLimitAverage: '50', inFlight: '3' });

    // Two saves from the same version at once: one wins, the other is told (compare-and-set).
    const latest = versionOf(
      (await alice.follow(new URL(`/admin/servers/${id}/edit`, gw.url), never)).body,
    )!;
    const racing = await Promise.all(
      ['4', '5'].map((inFlight) =>
        postForm(gw.url, alice, `/admin/servers/${id}`, {
          ...serverForm({ name: 'Notes', url: resource, scopes: 'notes' }),
          inFlight,
          version: latest,
        }),
      ),
    );
    const won = racing.filter((answer) => answer.body.includes('Server saved'));
    expect(won).toHaveLength(1);
    expect(racing.filter((answer) => answer.status === 409)).toHaveLength(1);
    const winner = racing.indexOf(won[0]!) === 0 ? '4' : '5';
    expect(await storedLimits(id)).toEqual({ rateLimitAverage: '50', inFlight: winner });
    await postForm(gw.url, alice, `/admin/servers/${id}/remove`, {});
  });

  it('gives a server with allowed Origins a CORS middleware before forwardAuth (TR-01, TR-03)', async () => {
    const id = await addServer({
      name: 'Browser tools',
      url: 'http://localhost:4004/mcp',
      allowedOrigins: 'http://localhost:6274 https://app.example.com',
    });
    const document = parse(await readFile(path.join(traefikDir, `mcpgw-${id}.yaml`), 'utf8')) as {
      http: {
        routers: Record<string, { middlewares: string[] }>;
        middlewares: Record<string, unknown>;
      };
    };
    expect(document.http.routers[`mcpgw-${id}`]!.middlewares).toEqual([
      'crowdsec',
      `mcpgw-${id}-ratelimit`,
      `mcpgw-${id}-inflight`,
      `mcpgw-${id}-cors`,
      'mcp-auth',
      'security-headers',
    ]);
    expect(document.http.middlewares[`mcpgw-${id}-cors`]).toEqual({
      headers: {
        accessControlAllowOriginList: ['http://localhost:6274', 'https://app.example.com'],
        accessControlAllowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
        accessControlAllowHeaders: expect.arrayContaining([
          'Authorization',
          'Mcp-Protocol-Version',
          'Mcp-Session-Id',
        ]),
        accessControlExposeHeaders: ['Mcp-Session-Id', 'Mcp-Protocol-Version', 'WWW-Authenticate'],
        accessControlMaxAge: 600,
        addVaryHeader: true,
      },
    });
    if (existsSync(SCHEMA_FILE)) {
      const validate = compileSharedSchema('traefik-v3-file-provider.json');
      expect([validate(document), validate.errors ?? []]).toEqual([true, []]);
    }
    await postForm(gw.url, alice, `/admin/servers/${id}/remove`, {});
  });

  it('refuses bad values with a message, and changes nothing: no file, no server', async () => {
    const filesBefore = (await readdir(traefikDir)).sort();
    const idsBefore = managedIds((await alice.follow(`${gw.url}/admin/servers`, never)).body);
    const cases: [Record<string, string>, RegExp, number][] = [
      [{ rateLimitAverage: 'lots' }, /rateLimitAverage: .*number/i, 400],
      [
        { rateLimitAverage: '200', rateLimitBurst: '100' },
        /rateLimitBurst: must be at least the average/,
        400,
      ],
      [{ upstream: 'http://user:pw@10.0.0.5:3000' }, /upstream: must not carry credentials/, 400],
      [{ url: 'http://mcp.example.com/mcp' }, /url: must use https/, 400],
      [{ url: 'https://mcp.example.com/a#b' }, /url: /, 400],
      // A resource is matched on its path: a query would make two servers one (issue #14).
      [{ url: 'https://mcp.example.com/tenant?t=open' }, /url: .*must not contain a query/, 400],
      [{ toolsDefault: 'deny', toolRules: 'files_*: [unclosed' }, /tools\.rules: not YAML/, 400],
      [
        { toolsDefault: 'deny', toolRules: 'files_*: { scopes: "not a list" }' },
        /tools\.rules\.files_\*\.scopes/,
        400,
      ],
      // Valid for the gateway, not for a Traefik rule (Host() takes a name): Traefik's check.
      [
        { url: 'http://[::1]:4003/mcp' },
        /Traefik: url: an IPv6 address cannot be routed.*DNS name/,
        400,
      ],
      [{ url: CONFIGURED }, /defined in the configuration file/, 409],
      [{ name: '' }, /name: /, 400],
    ];
    for (const [overrides, message, status] of cases) {
      const page = await postForm(
        gw.url,
        alice,
        '/admin/servers',
        serverForm({ ...overrides, url: overrides.url ?? 'http://localhost:4009/mcp' }),
      );
      expect([overrides, page.status]).toEqual([overrides, status]);
      expect(page.body).toContain('Not saved.');
      expect(page.body.replace(/&quot;/g, '"').replace(/&#39;/g, "'")).toMatch(message);
    }
    // A URL another run-time server has: 409.
    await postForm(
      gw.url,
      alice,
      '/admin/servers',
      serverForm({ url: 'http://localhost:4010/mcp' }),
    );
    const taken = await postForm(
      gw.url,
      alice,
      '/admin/servers',
      serverForm({ url: 'http://localhost:4010/mcp' }),
    );
    expect(taken.status).toBe(409);
    expect(taken.body).toContain('another server already has');
    const idsAfter = managedIds((await alice.follow(`${gw.url}/admin/servers`, never)).body);
    expect(idsAfter.length).toBe(idsBefore.length + 1);
    expect((await readdir(traefikDir)).sort().length).toBe(filesBefore.length + 1);
    // What was typed comes back escaped in the form.
    const page = await postForm(
      gw.url,
      alice,
      '/admin/servers',
      serverForm({ name: '<script>x</script>', rateLimitAverage: 'x' }),
    );
    expect(page.body).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(page.body).not.toContain('<script>x');
  });

  it('refuses changes without the CSRF token, from another origin, or by a non-administrator (403)', async () => {
    const before = (await readdir(traefikDir)).length;
    const noToken = await alice.follow(new URL('/admin/servers', gw.url), never, {
      method: 'POST',
      body: new URLSearchParams(serverForm({ url: 'http://localhost:4011/mcp' })),
      origin: gw.url,
    });
    expect(noToken.status).toBe(403);
    const crossSite = await postForm(
      gw.url,
      alice,
      '/admin/servers',
      serverForm({ url: 'http://localhost:4011/mcp' }),
      'https://evil.example',
    );
    expect(crossSite.status).toBe(403);
    const bob = new TestUserAgent();
    const bobsPage = await signIn(gw.url, bob, BOB);
    expect(bobsPage.status).toBe(403);
    const bobsPost = await bob.follow(new URL('/admin/servers', gw.url), never, {
      method: 'POST',
      body: new URLSearchParams({ csrf: 'x', ...serverForm({ url: 'http://localhost:4011/mcp' }) }),
      origin: gw.url,
    });
    expect(bobsPost.status).toBe(403);
    expect((await bob.follow(`${gw.url}/admin/servers/new`, never)).status).toBe(403);
    expect((await readdir(traefikDir)).length).toBe(before);
    expect(await verifyStatus(gw.url, 'http://localhost:4011/mcp', 'x')).toBe(403);
  });
});

describeWithBinary('redis-server', 'run-time MCP servers on two replicas', () => {
  let redis: RedisServer;
  let a: RunningGateway;
  let b: RunningGateway;

  beforeAll(async () => {
    redis = await startRedis();
    const shared = (issuer: string) => ({
      issuer,
      admins: { emails: [ALICE] },
      store: { redis: { url: redis.url, keyPrefix: 'servers-replicas:' } },
      // Long polling: what B learns within the test, it learns from the announcement.
      managedServers: { pollInterval: 3600 },
    });
    a = await startGateway(shared);
    b = await startGateway(() => shared(a.url));
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  it('a server added, edited and removed on A is applied by B', async () => {
    const bUrl = `http://127.0.0.1:${b.config.listen.port}`;
    const resource = 'http://localhost:4020/mcp';
    const alice = new TestUserAgent();
    await signIn(a.url, alice, ALICE);
    expect(await verifyStatus(bUrl, resource, 'x')).toBe(403);
    const added = await postForm(
      a.url,
      alice,
      '/admin/servers',
      serverForm({ url: resource, scopes: 'team' }),
    );
    expect(added.body).toContain('Server added');
    const [id] = managedIds(added.body);
    await waitFor(
      async () => (await verifyStatus(bUrl, resource, 'x')) === 401,
      5000,
      'B challenges for the new server',
    );

    const client = await registerClient(bUrl, { scope: 'team' });
    const { token } = await obtainTokens(a.url, { client, resource, scope: 'team' });
    const accessToken = String(token.body.access_token);
    expect(await verifyStatus(bUrl, resource, accessToken)).toBe(200);

    await postForm(
      a.url,
      alice,
      `/admin/servers/${id}`,
      serverForm({ url: resource, scopes: 'team', toolsDefault: 'deny' }),
    );
    await waitFor(
      async () => (await verifyToolCall(bUrl, resource, accessToken, 'anything')).status === 403,
      5000,
      'B applies the edit',
    );
    await postForm(a.url, alice, `/admin/servers/${id}/remove`, {});
    await waitFor(
      async () => (await verifyStatus(bUrl, resource, accessToken)) === 403,
      5000,
      'B forgets the server',
    );
  });
});

/** `scopes_supported` of the authorization server's metadata, as a client reads it. */
async function discoveryScopes(gatewayUrl: string): Promise<string[]> {
  const response = await fetch(`${gatewayUrl}/.well-known/oauth-authorization-server`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { scopes_supported: string[] }).scopes_supported;
}
