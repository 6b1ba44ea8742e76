/**
 * `mcp-gateway servers list|add|remove` on a real Redis, against a running gateway on the same
 * Redis: a server added from the terminal is protected by the service at once (it hears the
 * announcement), its Traefik file is written, a bad description changes nothing, and removal
 * refuses its URL again; changes are audited with the operating-system user.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runServersCommand } from '../../src/cli/servers-command.js';
import { configSchema, type GatewayConfig } from '../../src/config/schema.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { captureIo, listingRows } from '../helpers/cli-io.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/netns.js';
import { verifyStatus } from '../helpers/provider-login.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

describe('mcp-gateway servers (usage)', () => {
  const memory = configSchema.parse({
    issuer: 'https://auth.example.com',
    login: { dev: { users: ['a@example.com'] } },
  });

  it('refuses bad invocations with usage and exit 2, and the memory store with exit 1', async () => {
    for (const argv of [
      [],
      ['add'],
      ['list', 'x'],
      ['remove'],
      ['remove', 'a', 'b'],
      ['drop', 'x'],
    ]) {
      const io = captureIo();
      expect([argv, await runServersCommand(argv, memory, io)]).toEqual([argv, 2]);
      expect(io.err).toMatch(/^usage: mcp-gateway servers/);
    }
    const io = captureIo();
    expect(await runServersCommand(['list'], memory, io)).toBe(1);
    expect(io.err).toMatch(/in-memory store/);
  });
});

describeWithBinary('redis-server', 'mcp-gateway servers list|add|remove', () => {
  let redis: RedisServer;
  let gw: RunningGateway;
  let config: GatewayConfig;
  let traefikDir: string;
  let scratch: string;

  beforeAll(async () => {
    redis = await startRedis();
    traefikDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-cli-traefik-'));
    scratch = await mkdtemp(path.join(tmpdir(), 'mcpgw-cli-servers-'));
    const settings = {
      store: { redis: { url: redis.url, keyPrefix: 'servers-cli:' } },
      managedServers: { traefik: { directory: traefikDir } },
    };
    gw = await startGateway(() => settings);
    config = configSchema.parse({
      issuer: gw.url,
      login: { dev: { users: ['a@example.com'] } },
      resources: [{ url: 'http://localhost:3999/mcp', name: 'Test MCP', scopes: ['mcp:tools'] }],
      ...settings,
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await redis?.stop();
    await rm(traefikDir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  });

  it('adds a server from a YAML file that the running service protects at once, lists and removes it', async () => {
    const resource = 'http://localhost:4100/billing/mcp';
    const file = path.join(scratch, 'billing.yaml');
    await writeFile(
      file,
      [
        'name: Billing',
        `url: ${resource}`,
        'upstream: http://billing-mcp:3000',
        'scopes: [billing]',
        'tools:',
        '  default: deny',
        '  rules:',
        '    "invoice_*": { scopes: [billing:write] }',
      ].join('\n'),
    );
    const added = captureIo();
    expect(await runServersCommand(['add', file], config, added)).toBe(0);
    const id = /^added (s[0-9a-f]{10}) /.exec(added.out)?.[1];
    expect(id).toBeDefined();
    await waitFor(
      async () => (await verifyStatus(gw.url, resource, 'x')) === 401,
      5000,
      'the service protects it',
    );
    expect(await readdir(traefikDir)).toContain(`mcpgw-${id!}.yaml`);

    const listed = captureIo();
    expect(await runServersCommand(['list'], config, listed)).toBe(0);
    expect(listingRows(listed.out)).toEqual([
      expect.objectContaining({ ID: '-', SOURCE: 'config', URL: 'http://localhost:3999/mcp' }),
      expect.objectContaining({
        ID: id,
        SOURCE: 'managed',
        NAME: 'Billing',
        URL: resource,
        UPSTREAM: 'http://billing-mcp:3000',
        SCOPES: 'billing',
        UPDATED: expect.stringContaining(`cli:${userInfo().username}`),
      }),
    ]);

    // By URL, in any spelling of it.
    const removed = captureIo();
    expect(
      await runServersCommand(['remove', 'HTTP://LOCALHOST:4100/billing/mcp'], config, removed),
    ).toBe(0);
    expect(removed.out).toBe(`removed ${id!} ${resource}\n`);
    await waitFor(
      async () => (await verifyStatus(gw.url, resource, 'x')) === 403,
      5000,
      'the service forgets it',
    );
    expect(await readdir(traefikDir)).not.toContain(`mcpgw-${id!}.yaml`);

    const audit = (await gw.gateway.store.readChained('audit')).map((entry) => entry.record);
    expect(audit).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: 'admin_change',
          change: 'add-server',
          serverId: id,
          actor: `cli:${userInfo().username}`,
        }),
        expect.objectContaining({ kind: 'admin_change', change: 'remove-server', serverId: id }),
      ]),
    );
  });

  it('reads standard input, and refuses a bad description naming each problem, changing nothing', async () => {
    const before = await readdir(traefikDir);
    const bad = captureIo(
      'name: X\nurl: http://localhost:4101/mcp\nupstream: "ftp://nope"\nrateLimitAverage: -1\n',
    );
    expect(await runServersCommand(['add', '-'], config, bad)).toBe(1);
    expect(bad.err).toMatch(/^server: upstream: must be an http\(s\) URL$/m);
    expect(bad.err).toMatch(/^server: rateLimitAverage: /m);
    const notYaml = captureIo('name: [unclosed');
    expect(await runServersCommand(['add', '-'], config, notYaml)).toBe(1);
    expect(notYaml.err).toMatch(/not YAML or JSON/);
    const list = captureIo('- a\n- b\n');
    expect(await runServersCommand(['add', '-'], config, list)).toBe(1);
    expect(list.err).toMatch(/must describe one server/);
    const configured = captureIo(
      '{"name":"T","url":"http://localhost:3999/mcp","upstream":"http://t:1"}',
    );
    expect(await runServersCommand(['add', '-'], config, configured)).toBe(1);
    expect(configured.err).toMatch(/defined in the configuration file/);
    const missing = captureIo();
    expect(await runServersCommand(['remove', 's0123456789'], config, missing)).toBe(1);
    expect(missing.err).toMatch(/no run-time server/);
    expect(await readdir(traefikDir)).toEqual(before);
    expect(await verifyStatus(gw.url, 'http://localhost:4101/mcp', 'x')).toBe(403);
  });
});
