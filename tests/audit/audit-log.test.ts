import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type Provider from 'oidc-provider';
import { Redis } from 'ioredis';
import { AuditLog } from '../../src/audit/audit-log.js';
import { runAuditCommand, verifyStore } from '../../src/audit/cli.js';
import { auditDecisions } from '../../src/audit/decision-audit.js';
import { auditOAuthEvents } from '../../src/audit/oauth-audit.js';
import { hashRecord, verifyChain } from '../../src/audit/verify-chain.js';
import type { DecisionOutcome } from '../../src/forward-auth/decision-observer.js';
import type { Logger } from '../../src/logging/logger.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { JsonObject, Store } from '../../src/store/store.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  LOOPBACK_REDIRECT,
  obtainTokens,
  registerClient,
  tokenRequest,
} from '../helpers/oauth-flow.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { captureLogger } from '../helpers/captured-logger.js';
import { auditTestKeys, type AuditTestKeys } from '../helpers/audit-keys.js';
import { checkpointOfLine } from '../../src/audit/checkpoint.js';

/** The gateway key the mirror files of these tests are signed with, and its JWKS files. */
let keys: AuditTestKeys;
let keysDir: string;
beforeAll(async () => {
  keysDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-audit-keys-'));
  keys = await auditTestKeys(keysDir);
});
afterAll(async () => {
  await rm(keysDir, { recursive: true, force: true });
});

/** A logger whose lines the test can read. */
function capturingLogger(): { logger: Logger; lines: () => JsonObject[] } {
  const captured = captureLogger();
  return { logger: captured.logger, lines: () => captured.records() as JsonObject[] };
}

async function chainOf(store: Store, key = 'audit'): Promise<JsonObject[]> {
  return (await store.readChained(key)).map((entry) => entry.record);
}

/** The records of a mirror file (its checkpoint lines left out). */
async function fileRecords(file: string): Promise<JsonObject[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as JsonObject)
    .filter((line) => checkpointOfLine(line) === undefined);
}

/** Runs the CLI and captures what it prints; `--file` is checked with the test key's JWKS. */
async function cli(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const withKeys =
    argv.includes('--file') && !argv.includes('--jwks') ? [...argv, '--jwks', keys.jwksFile] : argv;
  const code = await runAuditCommand(withKeys, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env,
  });
  return { code, stdout, stderr };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function outcome(overrides: Partial<DecisionOutcome>): DecisionOutcome {
  return {
    status: 403,
    reason: 'tool_denied',
    resource: 'https://mcp.example.com/mcp',
    seconds: 0.001,
    subject: 'user-1',
    clientId: 'client-1',
    clientIp: () => '203.0.113.7',
    ...overrides,
  };
}

interface Backend {
  /** A fresh store; `replica` stores share the state of the first (Redis) or are the same (memory). */
  open(): Promise<{ store: Store; replica: () => Store; close: () => Promise<void> }>;
}

/** What every backend must do: the chain, replicas, the mirror, the secrets rule. */
function auditSuite(name: string, backend: () => Backend): void {
  describe(`AuditLog on ${name}`, () => {
    let store: Store;
    let replica: () => Store;
    let closeStores: () => Promise<void>;
    let dir: string;
    const logs: AuditLog[] = [];
    const track = (log: AuditLog): AuditLog => {
      logs.push(log);
      return log;
    };

    beforeEach(async () => {
      ({ store, replica, close: closeStores } = await backend().open());
      dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-audit-'));
    });

    afterEach(async () => {
      await Promise.all(logs.splice(0).map((log) => log.close()));
      await closeStores();
      await rm(dir, { recursive: true, force: true });
    });

    it('chains records: seq from 1, each prev the hash before, each hash over the record', async () => {
      const { logger } = capturingLogger();
      const audit = track(new AuditLog({ store, maxRecords: 1000, logger }));
      void audit.append('grant_saved', { subject: 'u1', clientId: 'c1', grantId: 'g1' });
      void audit.append('token_issued', { subject: 'u1', clientId: 'c1', scope: 'mcp:tools' });
      void audit.append('admin_change', { actor: 'admin@example.com', change: 'x' });
      await audit.flush();

      const records = await chainOf(store);
      expect(records.map((record) => [record.seq, record.kind])).toStrictEqual([
        [1, 'grant_saved'],
        [2, 'token_issued'],
        [3, 'admin_change'],
      ]);
      expect(records[0]!.prev).toBeNull();
      expect(records[1]!.prev).toBe(records[0]!.hash);
      expect(records[2]!.prev).toBe(records[1]!.hash);
      for (const record of records) {
        expect(record.v).toBe(1);
        expect(new Date(record.time as string).toISOString()).toBe(record.time);
        expect(record.hash).toBe(hashRecord(record));
      }
      expect(records[2]!.actor).toBe('admin@example.com');
      expect(records[0]).toMatchObject({ subject: 'u1', clientId: 'c1', grantId: 'g1' });
      await expect(store.chainHead('audit')).resolves.toBe(records[2]!.hash);
      expect(verifyChain(records)).toStrictEqual({
        ok: true,
        count: 3,
        head: records[2]!.hash,
        firstSeq: 1,
        lastSeq: 3,
      });
      expect(audit.failed).toBe(0);
    });

    it('lets two replicas append concurrently into one valid chain', async () => {
      const { logger, lines } = capturingLogger();
      const a = track(new AuditLog({ store, maxRecords: 1000, logger }));
      const b = track(new AuditLog({ store: replica(), maxRecords: 1000, logger }));
      const written: Promise<void>[] = [];
      for (let n = 0; n < 60; n += 1) {
        written.push(a.append('token_issued', { writer: 'a', n }));
        written.push(b.append('token_issued', { writer: 'b', n }));
      }
      await Promise.all(written);
      await Promise.all([a.flush(), b.flush()]);

      const records = await chainOf(store);
      const verdict = verifyChain(records);
      expect(verdict).toMatchObject({ ok: true, count: 120, firstSeq: 1, lastSeq: 120 });
      expect(records[0]!.prev).toBeNull();
      const seen = records.map((record) => `${record.writer}:${record.n}`);
      expect(new Set(seen).size).toBe(120);
      // Each replica's own records keep their order.
      for (const writer of ['a', 'b']) {
        const ns = records.filter((record) => record.writer === writer).map((r) => r.n);
        expect(ns).toStrictEqual(Array.from({ length: 60 }, (_, i) => i));
      }
      expect(a.failed + b.failed + a.dropped + b.dropped).toBe(0);
      expect(lines().filter((line) => line.level !== 'debug')).toStrictEqual([]);
    });

    it('mirrors the chain to a 0600 file, each replica a complete copy', async () => {
      const { logger } = capturingLogger();
      const fileA = path.join(dir, 'a.jsonl');
      const fileB = path.join(dir, 'b.jsonl');
      const a = track(
        new AuditLog({
          store,
          maxRecords: 1000,
          logger,
          file: fileA,
          checkpointKeys: keys.checkpointKeys,
        }),
      );
      const b = track(
        new AuditLog({
          store: replica(),
          maxRecords: 1000,
          logger,
          file: fileB,
          checkpointKeys: keys.checkpointKeys,
        }),
      );
      for (let n = 0; n < 15; n += 1) {
        void a.append('token_issued', { writer: 'a', n });
        void b.append('token_refreshed', { writer: 'b', n });
      }
      await Promise.all([a.flush(), b.flush()]);
      // Each flush also picks up what the other replica appended after its own last batch.
      await Promise.all([a.flush(), b.flush()]);

      const chain = await chainOf(store);
      expect(chain).toHaveLength(30);
      await expect(fileRecords(fileA)).resolves.toStrictEqual(chain);
      await expect(fileRecords(fileB)).resolves.toStrictEqual(chain);
      expect((await stat(fileA)).mode & 0o777).toBe(0o600);
      const verdict = await cli(['verify', '--file', fileA]);
      expect(verdict.code).toBe(0);
      expect(verdict.stdout).toContain('30 records');
      expect(verdict.stdout).toContain(String(chain.at(-1)!.hash));
    });

    it('never records tool arguments or secrets: tool arguments only as argumentsHash', async () => {
      const { logger } = capturingLogger();
      const file = path.join(dir, 'audit.jsonl');
      const audit = track(
        new AuditLog({
          store,
          maxRecords: 1000,
          logger,
          file,
          checkpointKeys: keys.checkpointKeys,
        }),
      );
      const toolArguments = JSON.stringify({ query: 'SELECT secret_salary FROM payroll' });
      const observer = auditDecisions(audit);

      observer.decided(
        outcome({ tool: 'run_sql', argumentsHash: sha256(toolArguments), reason: 'tool_denied' }),
      );
      observer.decided(outcome({ status: 401, reason: 'no_token', subject: undefined }));
      observer.decided(outcome({ status: 429, reason: 'rate_limited' }));
      observer.decided(outcome({ status: 200, reason: 'allowed' }));
      observer.decided(outcome({ status: 503, reason: 'store_unavailable' }));
      observer.decided(outcome({ status: 401, reason: 'expired', tool: undefined }));
      // A careless caller: the secret-named fields are dropped whatever they hold.
      void audit.append('admin_change', {
        actor: 'admin@example.com',
        arguments: { query: 'SELECT secret_salary FROM payroll' },
        accessToken: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl',
        client_secret: 'hunter2-client-secret',
        nested: { refresh_token: 'opaque-refresh-value', password: 'pw-value', keep: 1 },
      });
      await audit.flush();

      const records = await chainOf(store);
      expect(records.map((record) => [record.kind, record.reason])).toStrictEqual([
        ['verify_denied', 'tool_denied'],
        ['verify_denied', 'expired'],
        ['admin_change', undefined],
      ]);
      expect(records[0]).toMatchObject({
        status: 403,
        resource: 'https://mcp.example.com/mcp',
        ip: '203.0.113.7',
        subject: 'user-1',
        clientId: 'client-1',
        tool: 'run_sql',
        argumentsHash: sha256(toolArguments),
      });
      expect(records[2]).toStrictEqual(
        expect.objectContaining({ actor: 'admin@example.com', nested: { keep: 1 } }),
      );
      const everything = JSON.stringify(records) + (await readFile(file, 'utf8'));
      for (const secret of [
        'secret_salary',
        'payroll',
        'eyJhbGciOiJSUzI1NiJ9',
        'hunter2',
        'opaque-refresh-value',
        'pw-value',
      ]) {
        expect(everything).not.toContain(secret);
      }
      expect(verifyChain(records).ok).toBe(true);
    });

    it('keeps the newest maxRecords in the store, still a verifiable chain', async () => {
      const { logger } = capturingLogger();
      const audit = track(new AuditLog({ store, maxRecords: 5, logger }));
      for (let n = 1; n <= 12; n += 1) void audit.append('token_issued', { n });
      await audit.flush();
      const records = await chainOf(store);
      expect(records.map((record) => record.seq)).toStrictEqual([8, 9, 10, 11, 12]);
      // The first kept record's prev points at a trimmed record: accepted as it is.
      expect(verifyChain(records)).toMatchObject({ ok: true, count: 5, firstSeq: 8 });
      const verdict = await verifyStore(store, 'audit');
      expect(verdict.verification).toMatchObject({ ok: true, count: 5, lastSeq: 12 });
    });
  });
}

describe('verifyChain', () => {
  let records: JsonObject[];

  beforeAll(async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const audit = new AuditLog({ store, maxRecords: 1000, logger: capturingLogger().logger });
    for (let n = 1; n <= 6; n += 1) void audit.append('token_issued', { subject: `u${n}` });
    await audit.close();
    records = await chainOf(store);
    await store.close();
  });

  const copy = () => records.map((record) => ({ ...record }));

  it('accepts the intact chain', () => {
    expect(verifyChain(records)).toMatchObject({ ok: true, count: 6, head: records[5]!.hash });
    expect(verifyChain([])).toStrictEqual({
      ok: true,
      count: 0,
      head: null,
      firstSeq: null,
      lastSeq: null,
    });
  });

  it('detects an altered field', () => {
    const altered = copy();
    altered[3]!.subject = 'mallory';
    expect(verifyChain(altered)).toMatchObject({
      ok: false,
      index: 3,
      seq: 4,
      reason: 'hash_mismatch',
    });
  });

  it('detects an altered record whose hash was recomputed, at the next record', () => {
    const altered = copy();
    altered[2]!.subject = 'mallory';
    altered[2]!.hash = hashRecord(altered[2]!);
    expect(verifyChain(altered)).toMatchObject({
      ok: false,
      index: 3,
      seq: 4,
      reason: 'broken_link',
    });
  });

  it('detects a removed record', () => {
    const removed = copy();
    removed.splice(2, 1);
    const verdict = verifyChain(removed);
    expect(verdict).toMatchObject({ ok: false, index: 2, seq: 4, reason: 'sequence_gap' });
    expect(verdict.ok === false && verdict.detail).toContain('record seq 3 was removed');
  });

  it('detects a removed record whose successors were renumbered', () => {
    const removed = copy();
    removed.splice(2, 1);
    for (let i = 2; i < removed.length; i += 1) {
      removed[i]!.seq = i + 1;
      removed[i]!.hash = hashRecord(removed[i]!);
    }
    expect(verifyChain(removed)).toMatchObject({ ok: false, index: 2, reason: 'broken_link' });
  });

  it('detects a reordered pair', () => {
    const swapped = copy();
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    expect(verifyChain(swapped)).toMatchObject({
      ok: false,
      index: 1,
      seq: 3,
      reason: 'sequence_gap',
    });
  });

  it('detects a malformed record and a truncated end', () => {
    const malformed = copy();
    delete malformed[4]!.hash;
    expect(verifyChain(malformed)).toMatchObject({ ok: false, index: 4, reason: 'malformed' });
    expect(verifyChain([...copy(), 'not a record'])).toMatchObject({
      ok: false,
      index: 6,
      reason: 'malformed',
    });
    expect(
      verifyChain(records.slice(0, 4), { expectedHead: records[5]!.hash as string }),
    ).toMatchObject({ ok: false, index: 4, reason: 'head_mismatch' });
  });
});

describe('AuditLog limits and failures', () => {
  it('bounds its queue: drops and counts beyond maxQueue, warns once', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const { logger, lines } = capturingLogger();
    const audit = new AuditLog({ store, maxRecords: 1000, logger, maxQueue: 5 });
    try {
      // All appended in one tick: the writer has taken at most the first one off the queue.
      for (let n = 0; n < 20; n += 1) void audit.append('token_issued', { n });
      await audit.flush();
      const records = await chainOf(store);
      expect(records.length + audit.dropped).toBe(20);
      expect(audit.dropped).toBeGreaterThanOrEqual(14);
      expect(verifyChain(records).ok).toBe(true);
      const warnings = lines().filter((line) => String(line.message).includes('queue is full'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.level).toBe('warn');
    } finally {
      await audit.close();
      await store.close();
    }
  });

  it('logs a store failure and never throws it at the caller', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    await store.close(); // every operation now rejects
    const { logger, lines } = capturingLogger();
    const audit = new AuditLog({ store, maxRecords: 1000, logger });
    await expect(audit.append('token_issued', { n: 1 })).resolves.toBeUndefined();
    await expect(audit.append('token_issued', { n: 2 })).resolves.toBeUndefined();
    await audit.flush();
    expect(audit.failed).toBe(2);
    const errors = lines().filter((line) => line.level === 'error');
    expect(errors).toHaveLength(1); // once per minute, not once per record
    expect(errors[0]!.kind).toBe('token_issued');
    await audit.close();
  });

  it('continues the file chain across a restart of the in-memory store', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-audit-'));
    const file = path.join(dir, 'audit.jsonl');
    const { logger } = capturingLogger();
    try {
      for (let run = 0; run < 3; run += 1) {
        const store = new MemoryStore({ maxEntries: 100 }); // a new process: empty store
        const audit = new AuditLog({
          store,
          maxRecords: 1000,
          logger,
          file,
          checkpointKeys: keys.checkpointKeys,
        });
        for (let n = 0; n < 4; n += 1) void audit.append('token_issued', { run, n });
        await audit.close();
        await store.close();
      }
      const records = await fileRecords(file);
      expect(records.map((record) => record.seq)).toStrictEqual(
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      expect(verifyChain(records)).toMatchObject({ ok: true, count: 12 });
      expect((await cli(['verify', '--file', file])).code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the mirror file after a crash mid-write', () => {
  it('cuts off an incomplete last line and goes on with one valid chain', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-audit-'));
    const file = path.join(dir, 'audit.jsonl');
    const { logger, lines } = capturingLogger();
    try {
      const first = new MemoryStore({ maxEntries: 100 });
      const checkpointKeys = keys.checkpointKeys;
      const before = new AuditLog({ store: first, maxRecords: 1000, logger, file, checkpointKeys });
      for (let n = 0; n < 3; n += 1) void before.append('token_issued', { n });
      await before.close();
      await first.close();
      await writeFile(file, `${await readFile(file, 'utf8')}{"v":1,"seq":4,"ti`);

      const second = new MemoryStore({ maxEntries: 100 });
      const after = new AuditLog({ store: second, maxRecords: 1000, logger, file, checkpointKeys });
      for (let n = 3; n < 5; n += 1) void after.append('token_issued', { n });
      await after.close();
      await second.close();

      const text = await readFile(file, 'utf8');
      expect(text).not.toContain('"ti{');
      const records = await fileRecords(file);
      expect(records.map((record) => [record.seq, record.n])).toStrictEqual([
        [1, 0],
        [2, 1],
        [3, 2],
        [4, 3],
        [5, 4],
      ]);
      expect((await cli(['verify', '--file', file])).code).toBe(0);
      expect(lines().some((line) => String(line.message).includes('incomplete last line'))).toBe(
        true,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('mcp-gateway audit verify', () => {
  let dir: string;
  let file: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-audit-cli-'));
    file = path.join(dir, 'audit.jsonl');
    const store = new MemoryStore({ maxEntries: 100 });
    const audit = new AuditLog({
      store,
      maxRecords: 1000,
      logger: capturingLogger().logger,
      file,
      checkpointKeys: keys.checkpointKeys,
    });
    for (let n = 1; n <= 5; n += 1) void audit.append('grant_revoked', { grantId: `g${n}` });
    await audit.close();
    await store.close();
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const lines = async () => (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');

  it('exits 0 on an intact file, printing the count and the head', async () => {
    const head = (await fileRecords(file)).at(-1)!.hash as string;
    const result = await cli(['verify', '--file', file]);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('intact: 5 records (seq 1-5)');
    expect(result.stdout).toContain(head);
    expect(result.stdout).toContain('signed');
  });

  it('exits 1 on an altered record, naming it', async () => {
    const all = await lines();
    all[2] = all[2]!.replace('"g3"', '"g9"');
    await writeFile(file, `${all.join('\n')}\n`);
    const result = await cli(['verify', '--file', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('TAMPERED at record index 2, line 3, seq 3: hash_mismatch');
  });

  it('exits 1 on a removed record, naming where the gap is', async () => {
    const all = await lines();
    all.splice(1, 1);
    await writeFile(file, `${all.join('\n')}\n`);
    const result = await cli(['verify', '--file', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('index 1, line 2, seq 3: sequence_gap');
    expect(result.stdout).toContain('record seq 2 was removed');
  });

  it('exits 1 on a line that is not JSON', async () => {
    const all = await lines();
    all[3] = '{"v":1,"seq":4,';
    await writeFile(file, `${all.join('\n')}\n`);
    const result = await cli(['verify', '--file', file]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('index 3, line 4, seq ?: malformed');
  });

  it('exits 2 on usage errors and when the chain cannot be read', async () => {
    expect((await cli([])).code).toBe(2);
    expect((await cli(['check'])).code).toBe(2);
    expect((await cli(['verify', '--nope'])).code).toBe(2);
    const missing = await cli(['verify', '--file', path.join(dir, 'missing.jsonl')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot verify');
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: mcp-gateway audit verify');
  });

  it('explains that the embedded default keeps the trail in memory', async () => {
    const result = await cli(['verify']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('in memory, inside the gateway process');
    expect(result.stderr).toContain('--file');
  });

  it('verifies the configured audit.file when the store is in memory', async () => {
    const config = path.join(dir, 'gateway.yaml');
    await writeFile(config, configYaml({ file, keysFile: keys.privateJwksFile }));
    const result = await cli(['verify', '--config', config]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('5 records');
    const all = await lines();
    await writeFile(file, `${[all[0], all[2], all[1], all[3], all[4]].join('\n')}\n`);
    expect((await cli(['verify'], { MCP_GATEWAY_CONFIG: config })).code).toBe(1);
  });
});

function configYaml(options: {
  file?: string;
  keysFile?: string;
  redis?: { url: string; keyPrefix: string };
}) {
  return [
    'issuer: http://localhost:8787',
    'login:',
    '  dev:',
    '    users: [dev@example.com]',
    'resources:',
    '  - url: http://localhost:3001/mcp',
    '    name: Example',
    '    scopes: [mcp:tools]',
    ...(options.redis
      ? [
          'store:',
          '  redis:',
          `    url: ${options.redis.url}`,
          `    keyPrefix: "${options.redis.keyPrefix}"`,
        ]
      : []),
    ...(options.file ? ['audit:', `  file: ${options.file}`] : []),
    ...(options.keysFile ? ['keys:', `  file: ${options.keysFile}`] : []),
    '',
  ].join('\n');
}

auditSuite('MemoryStore', () => ({
  async open() {
    const store = new MemoryStore({ maxEntries: 1000 });
    return { store, replica: () => store, close: () => store.close() };
  },
}));

describeWithBinary('redis-server', 'audit trail on a real redis-server', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedis();
  });

  afterAll(async () => {
    await server?.stop();
  });

  auditSuite('RedisStore', () => ({
    async open() {
      const keyPrefix = `audit-test:${randomUUID()}:`;
      const stores: RedisStore[] = [];
      const make = () => {
        const store = new RedisStore({ url: server.url, keyPrefix });
        stores.push(store);
        return store;
      };
      return {
        store: make(),
        replica: make,
        close: async () => {
          await Promise.all(stores.map((store) => store.close()));
        },
      };
    },
  }));

  describe('verifying the chain in Redis', () => {
    let keyPrefix: string;
    let store: RedisStore;
    let raw: Redis;
    let dir: string;
    let config: string;

    beforeEach(async () => {
      keyPrefix = `audit-cli:${randomUUID()}:`;
      store = new RedisStore({ url: server.url, keyPrefix });
      raw = new Redis(server.url);
      dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-audit-redis-'));
      config = path.join(dir, 'gateway.yaml');
      await writeFile(config, configYaml({ redis: { url: server.url, keyPrefix } }));
      const audit = new AuditLog({ store, maxRecords: 1000, logger: capturingLogger().logger });
      for (let n = 1; n <= 6; n += 1) void audit.append('token_refreshed', { n });
      await audit.close();
    });

    afterEach(async () => {
      await store.close();
      await raw.quit();
      await rm(dir, { recursive: true, force: true });
    });

    const ids = async () => (await raw.xrange(`${keyPrefix}audit`, '-', '+')).map(([id]) => id);

    it('exits 0 on the intact chain', async () => {
      const result = await cli(['verify', '--config', config]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('the Redis store intact: 6 records');
      expect(result.stdout).toContain(String(await store.chainHead('audit')));
    });

    it('exits 1 when a record was deleted from the stream', async () => {
      await raw.xdel(`${keyPrefix}audit`, (await ids())[3]!);
      const result = await cli(['verify', '--config', config]);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('index 3, seq 5: sequence_gap');
    });

    it('exits 1 when the newest records were deleted (the head remembers them)', async () => {
      const all = await ids();
      await raw.xdel(`${keyPrefix}audit`, all[4]!, all[5]!);
      const result = await cli(['verify', '--config', config]);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('head_mismatch');
      expect(result.stdout).toContain('records after seq 4 were removed');
    });

    it('exits 1 when a record was rewritten in place', async () => {
      const [id] = (await ids()).slice(2, 3);
      const [[, fields]] = (await raw.xrange(`${keyPrefix}audit`, id!, id!)) as [
        [string, string[]],
      ];
      const altered = fields[1]!.replace('"n":3', '"n":33');
      expect(altered).not.toBe(fields[1]);
      // Streams cannot be edited: rebuild it with the altered record (what an attacker would do).
      const entries = await raw.xrange(`${keyPrefix}audit`, '-', '+');
      await raw.del(`${keyPrefix}audit`);
      for (const [entryId, entryFields] of entries) {
        await raw.xadd(
          `${keyPrefix}audit`,
          entryId,
          'data',
          entryId === id ? altered : entryFields[1]!,
        );
      }
      const result = await cli(['verify', '--config', config]);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('index 2, seq 3: hash_mismatch');
    });
  });
});

describe('OAuth events in the audit trail (real gateway)', () => {
  let running: RunningGateway;
  let audit: AuditLog;
  const resource = 'http://localhost:3999/mcp';

  beforeAll(async () => {
    running = await startGateway();
    audit = new AuditLog({
      store: running.gateway.store,
      key: 'audit-flow',
      maxRecords: 1000,
      logger: capturingLogger().logger,
    });
    auditOAuthEvents(running.gateway.provider, audit);
  });

  afterAll(async () => {
    await audit?.close();
    await running?.stop();
  });

  it('records registration, grant, issue, refresh and revocations, never a token', async () => {
    const client = await registerClient(running.url);
    const first = await obtainTokens(running.url, { client, resource });
    expect(first.token.status).toBe(200);
    const refreshToken = String(first.token.body.refresh_token);
    const refreshed = await tokenRequest(running.url, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: client.client_id,
    });
    expect(refreshed.status).toBe(200);
    // Reusing the rotated refresh token revokes the grant (RFC 9700 §4.14.2).
    const reused = await tokenRequest(running.url, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: client.client_id,
    });
    expect(reused.status).toBe(400);
    // A second grant, revoked by the client at the revocation endpoint.
    const second = await obtainTokens(running.url, { client, resource });
    const revoke = await fetch(`${running.url}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        token: String(second.token.body.refresh_token),
        token_type_hint: 'refresh_token',
        client_id: client.client_id,
      }),
    });
    expect(revoke.status).toBe(200);
    await audit.flush();

    const records = await chainOf(running.gateway.store, 'audit-flow');
    expect(verifyChain(records).ok).toBe(true);
    const kinds = records.map((record) => [record.kind, record.reason ?? record.grantType]);
    expect(kinds).toStrictEqual([
      ['client_registered', undefined],
      ['grant_saved', undefined],
      ['token_issued', 'authorization_code'],
      ['token_refreshed', 'refresh_token'],
      ['grant_revoked', 'replay'],
      ['grant_saved', undefined],
      ['token_issued', 'authorization_code'],
      ['grant_revoked', 'revoked'],
    ]);
    const subject = records[2]!.subject;
    expect(typeof subject).toBe('string');
    const firstGrant = records[1]!.grantId;
    expect(records[1]).toMatchObject({
      clientId: client.client_id,
      subject,
      resources: [{ resource, scope: expect.any(String) }],
    });
    expect(records[2]).toMatchObject({
      clientId: client.client_id,
      grantId: firstGrant,
      resource,
      refreshIssued: true,
    });
    expect(records[4]).toMatchObject({ grantId: firstGrant, clientId: client.client_id });
    expect(records[7]).toMatchObject({ grantId: records[5]!.grantId, subject });
    expect(records[0]).toMatchObject({
      clientId: client.client_id,
      redirectUris: [LOOPBACK_REDIRECT],
    });

    const everything = JSON.stringify(records);
    for (const secret of [
      first.token.body.access_token,
      refreshToken,
      refreshed.body.access_token,
      refreshed.body.refresh_token,
      second.token.body.refresh_token,
      first.code,
      first.verifier,
      client.registration_access_token,
    ]) {
      expect(typeof secret).toBe('string');
      expect(everything).not.toContain(String(secret));
    }
  });
});

describe('revocations oidc-provider reports only as token errors', () => {
  it('records access withdrawn and a lost single-use race once each, nothing for other errors', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const audit = new AuditLog({ store, maxRecords: 1000, logger: capturingLogger().logger });
    const provider = new EventEmitter();
    auditOAuthEvents(provider as unknown as Provider, audit);
    const tokenRequestFor = (grantId: string) => ({
      ip: '198.51.100.4',
      oidc: {
        route: 'token',
        client: { clientId: 'client-1' },
        params: { grant_type: 'refresh_token' },
        entities: { RefreshToken: { accountId: 'user-1', grantId } },
      },
    });
    const invalidGrant = (detail: string) =>
      Object.assign(new Error('invalid_grant'), { error: 'invalid_grant', error_detail: detail });

    // oidc-provider's own reuse detection: grant.revoked, then the error; recorded once.
    const reuse = tokenRequestFor('grant-1');
    provider.emit('grant.revoked', reuse, 'grant-1');
    provider.emit('grant.error', reuse, invalidGrant('refresh token already used'));
    // The store adapter's atomic check lost the race: only the error tells.
    provider.emit(
      'grant.error',
      tokenRequestFor('grant-2'),
      invalidGrant('refresh token already used'),
    );
    // Access withdrawn at a refresh (src/oauth/provider.ts revokes through the adapter).
    provider.emit(
      'grant.error',
      tokenRequestFor('grant-3'),
      invalidGrant('access withdrawn: not in group mcp-users'),
    );
    provider.emit('grant.error', tokenRequestFor('grant-4'), invalidGrant('grant not found'));
    await audit.close();

    const records = await chainOf(store);
    expect(records.map((record) => [record.grantId, record.reason])).toStrictEqual([
      ['grant-1', 'replay'],
      ['grant-2', 'replay'],
      ['grant-3', 'access_withdrawn'],
    ]);
    expect(records[2]).toMatchObject({
      kind: 'grant_revoked',
      subject: 'user-1',
      clientId: 'client-1',
      ip: '198.51.100.4',
    });
    await store.close();
  });
});
