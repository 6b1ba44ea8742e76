/** The command-line tools: `config check` and `clients` (on a real Redis). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runClientsCommand } from '../../src/cli/clients-command.js';
import { runConfigCommand } from '../../src/cli/config-command.js';
import { configSchema } from '../../src/config/schema.js';
import { ClientHostApprovals } from '../../src/clients/host-approvals.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { captureIo } from '../helpers/cli-io.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

describe('mcp-gateway config check', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-cli-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('accepts a valid file and summarises it', async () => {
    const file = path.join(dir, 'ok.yaml');
    await writeFile(
      file,
      'issuer: https://auth.example.com\nresources: [{ url: https://mcp.example.com/mcp, name: M }]\nlogin: { dev: { users: [a@example.com] } }\n',
    );
    const io = captureIo();
    expect(runConfigCommand(['check', file], {}, io)).toBe(0);
    expect(io.out).toContain('valid');
    expect(io.out).toContain('https://mcp.example.com/mcp');
  });

  it("says what each resource's tool rules need, and warns about header-decided ones", async () => {
    const file = path.join(dir, 'tools.yaml');
    await writeFile(
      file,
      [
        'issuer: https://auth.example.com',
        'login: { dev: { users: [a@example.com] } }',
        'resources:',
        '  - { url: https://mcp.example.com/a, name: A, tools: { rules: { x: {} } } }',
        '  - url: https://mcp.example.com/b',
        '    name: B',
        '    tools: { operationFrom: headers, rules: { x: {} } }',
        '  - { url: https://mcp.example.com/c, name: C }',
        '',
      ].join('\n'),
    );
    const io = captureIo();
    expect(runConfigCommand(['check', file], {}, io)).toBe(0);
    expect(io.out).toMatch(/note: resources\[0\]\.tools\.operationFrom: body: .*forwardBody/);
    expect(io.out).toMatch(
      /warning: resources\[1\]\.tools\.operationFrom: headers: .*mcp\.example\.com\/b.*refuses requests whose headers do not match their body/,
    );
    expect(io.out).not.toContain('resources[2]');
  });

  it('prints one line per problem and exits 1', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'issuer: nope\nresources: []\nmanagedServers: { enabled: false }\n');
    const io = captureIo();
    expect(runConfigCommand(['check', file], {}, io)).toBe(1);
    expect(io.err).toMatch(/^config: issuer: /m);
    expect(io.err).toMatch(/^config: resources: /m);
  });

  it('refuses a bad invocation with usage and exit 2', () => {
    const io = captureIo();
    expect(runConfigCommand(['lint'], {}, io)).toBe(2);
    expect(io.err).toContain('usage');
  });
});

describeWithBinary('redis-server', 'mcp-gateway clients (hosts)', () => {
  let redis: RedisServer;
  const config = () =>
    configSchema.parse({
      issuer: 'https://auth.example.com',
      resources: [{ url: 'https://mcp.example.com/mcp', name: 'M' }],
      login: { dev: { users: ['a@example.com'] } },
      store: { redis: { url: redis.url, keyPrefix: 'cli:' } },
    });

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('lists pending hosts and approves one, as the running service sees it', async () => {
    // The service (here: its approvals object on the same Redis) saw a new host.
    const service = new RedisStore({ url: redis.url, keyPrefix: 'cli:' });
    try {
      const approvals = new ClientHostApprovals(service);
      expect(await approvals.check('tools.example.org')).toBe(false);

      let io = captureIo();
      expect(await runClientsCommand(['pending-hosts'], config(), io)).toBe(0);
      expect(io.out).toBe('tools.example.org\n');

      io = captureIo();
      expect(await runClientsCommand(['approve-host', 'Tools.Example.org'], config(), io)).toBe(0);
      expect(await approvals.check('tools.example.org')).toBe(true);
      // The change is in the audit trail, with who made it.
      const records = await service.readChained('audit');
      expect(records.at(-1)?.record).toMatchObject({
        kind: 'admin_change',
        change: 'approve-host',
        host: 'tools.example.org',
        actor: expect.stringMatching(/^cli:/),
      });
      io = captureIo();
      expect(await runClientsCommand(['pending-hosts'], config(), io)).toBe(0);
      expect(io.out).toBe('');
    } finally {
      await service.close();
    }
  });

  it('refuses bad host names and the memory store', async () => {
    let io = captureIo();
    expect(await runClientsCommand(['approve-host', 'bad host/x'], config(), io)).toBe(2);
    io = captureIo();
    const memory = configSchema.parse({
      issuer: 'https://auth.example.com',
      resources: [{ url: 'https://mcp.example.com/mcp', name: 'M' }],
      login: { dev: { users: ['a@example.com'] } },
    });
    expect(await runClientsCommand(['pending-hosts'], memory, io)).toBe(1);
    expect(io.err).toContain('in-memory store');
  });
});
