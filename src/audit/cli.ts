/**
 * `mcp-gateway audit verify`: checks the audit trail's hash chain, in a mirror file or in the
 * configured store, and names the first record that was altered, removed or reordered.
 *
 * Exit codes: 0 intact, 1 tampered, 2 usage error or the chain could not be read.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { CliIo } from '../cli/io.js';
import { ConfigError, loadConfig, type Environment } from '../config/load.js';
import { RedisStore } from '../store/redis-store.js';
import type { Store } from '../store/store.js';
import { ChainVerifier, type ChainVerification } from './verify-chain.js';

/** Where the command writes (src/cli/io.ts), and the environment it reads. */
export interface AuditCliIo extends CliIo {
  /** For `MCP_GATEWAY_CONFIG` and the configuration's `${VAR}` references. */
  env: Environment;
}

/** The store key the gateway's audit trail uses (AuditLog's default). */
export const AUDIT_KEY = 'audit';

export const AUDIT_USAGE = `Usage: mcp-gateway audit verify [--file FILE] [--config FILE]

Checks the hash chain of the audit trail and names the first record that was altered,
removed or reordered.

  --file FILE     verify a mirror file (audit.file: one JSON record per line)
  --config FILE   the gateway configuration (default: $MCP_GATEWAY_CONFIG); without --file,
                  the chain in its Redis store is verified, or, with the in-memory store, the
                  configured audit.file (an in-memory chain lives inside the gateway process
                  and cannot be read from another one)
  --help          show this text

Exit codes: 0 intact, 1 tampered, 2 usage error or the chain could not be read.`;

const PAGE = 1000;

export async function runAuditCommand(argv: string[], io: AuditCliIo): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        file: { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (error) {
    io.stderr(`${(error as Error).message}\n${AUDIT_USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    io.stdout(`${AUDIT_USAGE}\n`);
    return 0;
  }
  const [command, ...extra] = args.positionals;
  if (command !== 'verify' || extra.length > 0) {
    io.stderr(
      `${command === undefined ? 'missing subcommand' : `unknown arguments: ${args.positionals.join(' ')}`}\n${AUDIT_USAGE}\n`,
    );
    return 2;
  }

  try {
    if (args.values.file !== undefined) {
      return report(await verifyFile(args.values.file), `file ${args.values.file}`, io);
    }
    const configFile = args.values.config ?? (io.env.MCP_GATEWAY_CONFIG || undefined);
    let config;
    try {
      ({ config } = loadConfig(configFile, io.env));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const line of error.problems) io.stderr(`config: ${line}\n`);
      return 2;
    }
    if (config.store.redis) {
      const store = new RedisStore({
        url: config.store.redis.url,
        keyPrefix: config.store.redis.keyPrefix,
        onError: () => undefined,
      });
      try {
        return report(await verifyStore(store, AUDIT_KEY), 'the Redis store', io);
      } finally {
        await store.close();
      }
    }
    if (config.audit.file !== undefined) {
      io.stderr(
        `The configured store is in memory (inside the gateway process); verifying audit.file ${config.audit.file}\n`,
      );
      return report(await verifyFile(config.audit.file), `file ${config.audit.file}`, io);
    }
    io.stderr(
      `${configFile === undefined ? 'The embedded default keeps' : 'This configuration keeps'} the audit trail in memory, inside the gateway process: another process cannot read it. Set audit.file and verify that file with --file, or use a Redis store.\n`,
    );
    return 2;
  } catch (error) {
    io.stderr(`cannot verify the audit trail: ${(error as Error).message}\n`);
    return 2;
  }
}

interface Located {
  verification: ChainVerification;
  /** The file line of the first bad record, for files. */
  line?: number;
}

/** Verifies a file of JSON lines as it is read (blank lines are ignored). */
export async function verifyFile(file: string): Promise<Located> {
  const verifier = new ChainVerifier();
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  let failedAt: number | undefined;
  try {
    for await (const line of lines) {
      lineNumber += 1;
      if (line.trim() === '') continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        record = null; // reported as malformed
      }
      if (!verifier.add(record)) {
        failedAt = lineNumber;
        break;
      }
    }
  } finally {
    lines.close();
    input.destroy();
  }
  const verification = verifier.result();
  return failedAt === undefined ? { verification } : { verification, line: failedAt };
}

/**
 * Verifies the chain in a store, oldest first, in pages. The head is read first and records
 * after it are ignored: the gateway may be appending while this runs. The chain must reach
 * the head; when it does not, the newest records were removed.
 */
export async function verifyStore(store: Store, key: string): Promise<Located> {
  const head = await store.chainHead(key);
  const verifier = new ChainVerifier();
  let after: string | undefined;
  let reachedHead = head === null;
  while (!reachedHead) {
    const page = await store.readChained(key, {
      count: PAGE,
      ...(after === undefined ? {} : { after }),
    });
    for (const { record } of page) {
      if (!verifier.add(record)) return { verification: verifier.result() };
      if (record.hash === head) {
        reachedHead = true;
        break;
      }
    }
    if (page.length < PAGE) break;
    after = page.at(-1)!.id;
  }
  return { verification: verifier.result(head) };
}

function report({ verification, line }: Located, source: string, io: AuditCliIo): number {
  if (verification.ok) {
    io.stdout(
      verification.count === 0
        ? `audit chain in ${source}: no records\n`
        : `audit chain in ${source} intact: ${verification.count} records (seq ${verification.firstSeq}-${verification.lastSeq}), head ${verification.head}\n`,
    );
    return 0;
  }
  const where = [
    `index ${verification.index}`,
    ...(line === undefined ? [] : [`line ${line}`]),
    `seq ${verification.seq ?? '?'}`,
  ].join(', ');
  io.stdout(
    `audit chain in ${source} TAMPERED at record ${where}: ${verification.reason}: ${verification.detail}\n`,
  );
  return 1;
}
