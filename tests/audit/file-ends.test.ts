/**
 * `mcp-gateway audit verify --file` finds a mirror file cut at either end, not only in the
 * middle: the file's signed checkpoints name its first record and its last. And it still
 * tells a cut start from a file that legitimately starts mid-chain (the store keeps only the
 * newest `maxRecords`). The mirror itself never signs over a cut it finds at start-up.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from '@jest/globals';
import { SignJWT, decodeJwt, importJWK } from 'jose';
import { AuditLog } from '../../src/audit/audit-log.js';
import { CHECKPOINT_TYPE, checkpointOfLine } from '../../src/audit/checkpoint.js';
import { runAuditCommand } from '../../src/audit/cli.js';
import { generateSigningKey } from '../../src/keys/key-material.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { auditTestKeys, type AuditTestKeys } from '../helpers/audit-keys.js';
import { captureLogger } from '../helpers/captured-logger.js';

let keys: AuditTestKeys;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-audit-ends-'));
  keys = await auditTestKeys(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runAuditCommand(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env: {},
  });
  return { code, stdout, stderr };
}

const verify = (file: string) => cli(['verify', '--file', file, '--jwks', keys.jwksFile]);

/**
 * Writes `batches` of records through a real AuditLog into a fresh mirror file; the store
 * keeps `maxRecords`, and the mirror starts after `before` records were already appended.
 */
async function mirrorFile(
  name: string,
  options: { batches: number[]; maxRecords?: number; before?: number },
): Promise<string> {
  const file = path.join(dir, name);
  const store = new MemoryStore({ maxEntries: 1000 });
  const { logger } = captureLogger();
  const maxRecords = options.maxRecords ?? 1000;
  if (options.before) {
    const unmirrored = new AuditLog({ store, maxRecords, logger });
    for (let n = 0; n < options.before; n += 1) void unmirrored.append('token_issued', { n });
    await unmirrored.close();
  }
  const audit = new AuditLog({
    store,
    maxRecords,
    logger,
    file,
    checkpointKeys: keys.checkpointKeys,
  });
  for (const size of options.batches) {
    for (let n = 0; n < size; n += 1) void audit.append('grant_revoked', { n });
    await audit.flush();
  }
  await audit.close();
  await store.close();
  return file;
}

const lines = async (file: string) =>
  (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
const isCheckpoint = (line: string) => checkpointOfLine(JSON.parse(line)) !== undefined;
const rewrite = (file: string, kept: string[]) => writeFile(file, `${kept.join('\n')}\n`);

describe('audit verify --file: both ends of a mirror file', () => {
  let file: string;
  let all: string[];

  beforeEach(async () => {
    // Two batches: records 1-3, a checkpoint, records 4-6, a checkpoint.
    file = await mirrorFile(`ends-${Date.now()}-${Math.random()}.jsonl`, { batches: [3, 3] });
    all = await lines(file);
    expect(all.map(isCheckpoint)).toEqual([false, false, false, true, false, false, false, true]);
  });

  afterEach(async () => {
    await rm(file, { force: true });
  });

  it('intact file: exit 0, with the count, the head and the signature', async () => {
    const result = await verify(file);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /intact: 6 records \(seq 1-6\), head [0-9a-f]{64}, signed \d{4}-\d\d-\d\dT.* by http:\/\/localhost:8787 \(key /,
    );
  });

  it('first record cut: exit 1, start_cut', async () => {
    await rewrite(file, all.slice(1));
    const result = await verify(file);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('TAMPERED');
    expect(result.stdout).toContain(
      "start_cut: the file's signed start is seq 1 but its first record is seq 2: record seq 1 was cut from the start",
    );
  });

  it('last record cut: exit 1, end_cut', async () => {
    await rewrite(file, [...all.slice(0, 6), all[7]!]);
    const result = await verify(file);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      'end_cut: the last signed checkpoint says the file holds records up to seq 6, but the last record before it is seq 5: record seq 6 was cut from the end',
    );
  });

  it('last record cut together with the checkpoint after it: exit 1, unsigned_end', async () => {
    await rewrite(file, all.slice(0, 6));
    const result = await verify(file);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      'unsigned_end: the records after seq 3 (up to seq 5) are not covered by a signed checkpoint',
    );
  });

  it('first and last records cut: exit 1, start_cut naming both ends', async () => {
    await rewrite(file, [...all.slice(1, 6), all[7]!]);
    const result = await verify(file);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      "index 0, line 1, seq 2: start_cut: the file's signed start is seq 1 but its first record is seq 2: record seq 1 was cut from the start; and the last signed checkpoint says the file holds records up to seq 6, but the last record before it is seq 5: record seq 6 was cut from the end",
    );
  });

  it('a middle record cut: exit 1, sequence_gap', async () => {
    await rewrite(file, [...all.slice(0, 4), ...all.slice(5)]);
    const result = await verify(file);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('line 5, seq 5: sequence_gap');
    expect(result.stdout).toContain('record seq 4 was removed');
  });

  it('a cut start with a checkpoint forged under another key: exit 1, bad_checkpoint', async () => {
    const { jwk } = await generateSigningKey(Math.floor(Date.now() / 1000));
    const genuine = decodeJwt(JSON.parse(all[7]!).checkpoint as string);
    const second = JSON.parse(all[1]!) as { seq: number; prev: string };
    const forged = await new SignJWT({ ...genuine, first: { seq: second.seq, prev: second.prev } })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: CHECKPOINT_TYPE })
      .sign(await importJWK(jwk, 'RS256'));
    // The genuine checkpoint after seq 3 (which names the real start) is removed too.
    const records = all.filter((line) => !isCheckpoint(line));
    await rewrite(file, [...records.slice(1), JSON.stringify({ checkpoint: forged })]);
    const result = await verify(file);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('bad_checkpoint');
    expect(result.stdout).toContain(`signed by key ${jwk.kid}, which is not among the keys given`);
  });

  it('a checkpoint whose claims were edited: exit 1, bad_checkpoint', async () => {
    const [header, payload, signature] = (JSON.parse(all[7]!).checkpoint as string).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as {
      first: { seq: number };
    };
    claims.first.seq = 2;
    const edited = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    const records = all.filter((line) => !isCheckpoint(line));
    await rewrite(file, [...records.slice(1), JSON.stringify({ checkpoint: edited })]);
    const result = await verify(file);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('bad_checkpoint: a checkpoint does not verify');
  });

  it('an emptied file, or one without any checkpoint: exit 1, unsigned_end', async () => {
    await rewrite(
      file,
      all.filter((line) => !isCheckpoint(line)),
    );
    const unsigned = await verify(file);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stdout).toContain('unsigned_end: no signed checkpoint in the file');
    await writeFile(file, '');
    const emptied = await verify(file);
    expect(emptied.code).toBe(1);
    expect(emptied.stdout).toContain('unsigned_end: the file holds no record');
  });

  it('exit 2 when there are no keys to check the checkpoints with', async () => {
    const result = await cli(['verify', '--file', file, '--jwks', path.join(dir, 'missing.json')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('cannot verify the audit trail');
  });
});

describe('a file that legitimately starts mid-chain', () => {
  it('is intact; cutting its first record is still found', async () => {
    // The store keeps 5 records; 12 were appended before the mirror started and 2 after: the
    // file starts with the oldest the store still held, seq 10, whose prev is not in it.
    const file = await mirrorFile('trimmed.jsonl', { before: 12, maxRecords: 5, batches: [2] });
    const all = await lines(file);
    expect(JSON.parse(all[0]!)).toMatchObject({ seq: 10, prev: expect.any(String) });
    const intact = await verify(file);
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain('intact: 5 records (seq 10-14)');
    await rewrite(file, all.slice(1));
    const cut = await verify(file);
    expect(cut.code).toBe(1);
    expect(cut.stdout).toContain(
      "start_cut: the file's signed start is seq 10 but its first record is seq 11",
    );
  });
});

describe('the mirror at start-up', () => {
  it('moves a file whose start was cut aside rather than signing the cut, and starts anew', async () => {
    const sub = await mkdtemp(path.join(dir, 'restart-'));
    const file = path.join(sub, 'audit.jsonl');
    const store = new MemoryStore({ maxEntries: 1000 });
    const captured = captureLogger();
    const options = {
      store,
      maxRecords: 1000,
      logger: captured.logger,
      file,
      checkpointKeys: keys.checkpointKeys,
    };
    const before = new AuditLog(options);
    for (let n = 0; n < 4; n += 1) void before.append('token_issued', { n });
    await before.close();
    await rewrite(file, (await lines(file)).slice(1));

    const after = new AuditLog(options);
    void after.append('token_issued', { n: 4 });
    await after.close();
    await store.close();

    const names = await readdir(sub);
    const aside = names.find((name) => name.startsWith('audit.jsonl.unverified.'));
    expect(aside).toBeDefined();
    expect(captured.records()).toContainEqual(
      expect.objectContaining({
        event: 'audit_tampered',
        movedTo: path.join(sub, aside!),
        problem: expect.stringContaining('the start was cut'),
      }),
    );
    // The cut file still fails; the new one holds the store's chain, signed from its start.
    expect((await verify(path.join(sub, aside!))).code).toBe(1);
    const fresh = await verify(file);
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).toContain('intact: 5 records (seq 1-5)');
  });

  it('moves a file without checkpoints (an earlier version) aside', async () => {
    const sub = await mkdtemp(path.join(dir, 'legacy-'));
    const file = path.join(sub, 'audit.jsonl');
    const legacy = await mirrorFile('legacy-source.jsonl', { batches: [2] });
    await rewrite(
      file,
      (await lines(legacy)).filter((line) => !isCheckpoint(line)),
    );
    const captured = captureLogger();
    const store = new MemoryStore({ maxEntries: 1000 });
    const audit = new AuditLog({
      store,
      maxRecords: 1000,
      logger: captured.logger,
      file,
      checkpointKeys: keys.checkpointKeys,
    });
    void audit.append('token_issued', {});
    await audit.close();
    await store.close();
    expect(captured.records()).toContainEqual(
      expect.objectContaining({
        event: 'audit_problem',
        problem: expect.stringContaining('no signed checkpoint'),
      }),
    );
    expect((await readdir(sub)).some((name) => name.includes('.unverified.'))).toBe(true);
    expect((await verify(file)).code).toBe(0);
  });
});
