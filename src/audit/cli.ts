/**
 * `mcp-gateway audit verify`: checks the audit trail's hash chain, in a mirror file or in the
 * configured store, and names the first record that was altered, removed or reordered. A
 * mirror file's ends are checked against its signed checkpoints (verify-file.ts), with the
 * gateway's public keys: from `--jwks` (a saved `<issuer>/jwks`, or that URL), else from where
 * the configuration keeps its keys.
 *
 * Exit codes: 0 intact, 1 tampered (or not provably intact), 2 usage error or the chain could
 * not be read.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { JWK } from 'jose';
import type { CliIo } from '../cli/io.js';
import { ConfigError, loadConfig, type Environment } from '../config/load.js';
import type { GatewayConfig } from '../config/schema.js';
import { publicJwk, readKeyMaterial, type KeyMaterial } from '../keys/key-material.js';
import { AUDIT_KEY } from '../store/keys.js';
import { RedisStore } from '../store/redis-store.js';
import type { Store } from '../store/store.js';
import { checkpointVerifier } from './checkpoint.js';
import { ChainVerifier } from './verify-chain.js';
import { verifyFile, type FileVerification } from './verify-file.js';

/** Where the command writes (src/cli/io.ts), and the environment it reads. */
export interface AuditCliIo extends CliIo {
  /** For `MCP_GATEWAY_CONFIG` and the configuration's `${VAR}` references. */
  env: Environment;
}

export const AUDIT_USAGE = `Usage: mcp-gateway audit verify [--file FILE] [--jwks FILE|URL] [--config FILE]

Checks the hash chain of the audit trail and names the first record that was altered,
removed or reordered. A mirror file's first and last records are checked against its
signed checkpoints, so a file cut at either end is found too.

  --file FILE     verify a mirror file (audit.file: one JSON record per line, and a signed
                  checkpoint after each batch)
  --jwks FILE|URL the gateway's public keys for the checkpoints: a JWK Set saved from
                  <issuer>/jwks, or that URL (default: the keys the configuration keeps)
  --config FILE   the gateway configuration (default: $MCP_GATEWAY_CONFIG); without --file,
                  the chain in its Redis store is verified, or, with the in-memory store, the
                  configured audit.file (an in-memory chain lives inside the gateway process
                  and cannot be read from another one)
  --help          show this text

Exit codes: 0 intact, 1 tampered (or its ends cannot be vouched for), 2 usage error or the
chain or keys could not be read.`;

const PAGE = 1000;

export async function runAuditCommand(argv: string[], io: AuditCliIo): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        file: { type: 'string' },
        jwks: { type: 'string' },
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
    const configFile = args.values.config ?? (io.env.MCP_GATEWAY_CONFIG || undefined);
    const jwks = args.values.jwks;
    // Read only when needed: `--file` with `--jwks` needs no configuration at all.
    const configured = () => loadConfig(configFile, io.env).config;
    const verifierFor = async (config?: KeySources & Pick<GatewayConfig, 'issuer'>) => {
      if (jwks !== undefined) return checkpointVerifier(await jwksFrom(jwks));
      const keysOf = config ?? configured();
      return checkpointVerifier(await configuredKeys(keysOf), keysOf.issuer);
    };
    if (args.values.file !== undefined) {
      const verify = await verifierFor();
      return report(await verifyFile(args.values.file, verify), `file ${args.values.file}`, io);
    }
    const config = configured();
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
      const verify = await verifierFor(config);
      return report(await verifyFile(config.audit.file, verify), `file ${config.audit.file}`, io);
    }
    io.stderr(
      `${configFile === undefined ? 'The embedded default keeps' : 'This configuration keeps'} the audit trail in memory, inside the gateway process: another process cannot read it. Set audit.file and verify that file with --file, or use a Redis store.\n`,
    );
    return 2;
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const line of error.problems) io.stderr(`config: ${line}\n`);
      return 2;
    }
    io.stderr(`cannot verify the audit trail: ${(error as Error).message}\n`);
    return 2;
  }
}

/** Where the configuration keeps the signing keys: `keys.file`, the Redis store, or `dataDir`. */
type KeySources = Pick<GatewayConfig, 'keys' | 'store' | 'dataDir'>;

/** The public keys the configuration keeps (keys.file, the Redis store, or dataDir). */
async function configuredKeys(config: KeySources): Promise<JWK[]> {
  let material: KeyMaterial | undefined;
  let where: string;
  if (config.keys.file) {
    where = config.keys.file;
    material = await readKeyMaterial({ kind: 'file', file: config.keys.file });
  } else if (config.store.redis) {
    where = 'the Redis store';
    const store = new RedisStore({
      url: config.store.redis.url,
      keyPrefix: config.store.redis.keyPrefix,
      onError: () => undefined,
    });
    try {
      material = await readKeyMaterial({ kind: 'store', store });
    } finally {
      await store.close();
    }
  } else {
    where = `${config.dataDir}/keys.json`;
    material = await readKeyMaterial({ kind: 'dataDir', dir: config.dataDir });
  }
  if (!material || material.keys.length === 0) {
    throw new Error(
      `no signing keys in ${where} to check the file's checkpoints: give --jwks (a JWK Set saved from <issuer>/jwks, or that URL) or the gateway's --config`,
    );
  }
  return material.keys.map((key) => publicJwk(key.jwk));
}

/** A JWK Set from a file or an http(s) URL; only public parts are kept. */
async function jwksFrom(source: string): Promise<JWK[]> {
  let text: string;
  if (/^https?:\/\//i.test(source)) {
    const response = await fetch(source, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`--jwks ${source}: answered ${response.status}`);
    text = await response.text();
  } else {
    text = await readFile(source, 'utf8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`--jwks ${source}: not JSON`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new Error(`--jwks ${source}: not a JWK Set with at least one key`);
  }
  return (keys as JWK[]).map(publicJwk);
}

/**
 * Verifies the chain in a store, oldest first, in pages. The head is read first and records
 * after it are ignored: the gateway may be appending while this runs. The chain must reach
 * the head; when it does not, the newest records were removed.
 */
export async function verifyStore(store: Store, key: string): Promise<FileVerification> {
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

function report(
  { verification, line, signed }: FileVerification,
  source: string,
  io: AuditCliIo,
): number {
  if (verification.ok) {
    const by = signed
      ? `, signed ${new Date(signed.iat * 1000).toISOString()} by ${signed.iss} (key ${signed.kid ?? '?'})`
      : '';
    io.stdout(
      verification.count === 0
        ? `audit chain in ${source}: no records\n`
        : `audit chain in ${source} intact: ${verification.count} records (seq ${verification.firstSeq}-${verification.lastSeq}), head ${verification.head}${by}\n`,
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
