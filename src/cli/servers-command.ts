/**
 * `mcp-gateway servers …`: the run-time MCP servers from a terminal, for automation. It works
 * on the store of a running service (Redis; the embedded default's memory store lives inside
 * the service process) through the same catalog as the admin console, so a server is
 * validated, its Traefik file checked, the change audited and announced to every replica
 * exactly alike.
 *
 *   servers list                     every server: configured (read-only) and run-time;
 *                                    tab-separated, one line each, with a header
 *   servers add FILE                 add the server described in FILE (YAML or JSON, `-` for
 *                                    standard input): the fields of the admin console's form,
 *                                    e.g. `{ name, url, upstream, scopes, tools, … }`; omitted
 *                                    limits take `managedServers.defaults`, `crowdsec` true
 *   servers remove ID|URL            remove a run-time server
 *
 * The Traefik file is written here when `managedServers.traefik.directory` is writable where
 * the command runs; otherwise it is only validated, and the running service writes it when
 * it hears of the change.
 */
import { access, constants, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { parse } from 'yaml';
import { createAuditLog, createStore } from '../app/services.js';
import type { GatewayConfig } from '../config/schema.js';
import { createLogger } from '../logging/logger.js';
import { tryCanonicalResourceUrl } from '../resources/resource-url.js';
import { ServerChangeRefused } from '../servers/catalog.js';
import type { ManagedServer, ManagedServerInput } from '../servers/managed-server.js';
import { createServerCatalog } from '../servers/setup.js';
import { EXIT, type CliIo } from './io.js';

const USAGE = `usage: mcp-gateway servers list [--config FILE]
       mcp-gateway servers add FILE|- [--config FILE]
       mcp-gateway servers remove SERVER_ID|URL [--config FILE]
`;

/** Largest server description read (a server with many tool rules is a few KiB). */
const MAX_INPUT = 256 * 1024;

export interface ServersCommandIo extends CliIo {
  /** Standard input, for `servers add -`. */
  stdin: () => Promise<string>;
}

/**
 * Runs `servers …`. A composition like the service's (src/app/services.ts builds its store and
 * audit log), so it takes the whole configuration and hands each part its slice.
 */
export async function runServersCommand(
  argv: string[],
  config: GatewayConfig,
  io: ServersCommandIo,
): Promise<number> {
  const [action, argument, ...rest] = argv;
  const known =
    action === 'list' ? argument === undefined : action === 'add' || action === 'remove';
  if (!known || rest.length > 0 || (action !== 'list' && !argument)) {
    io.stderr(USAGE);
    return EXIT.usage;
  }
  if (!config.store.redis) {
    io.stderr(
      'this configuration uses the in-memory store, which only the running service can read: configure store.redis to manage servers from the command line\n',
    );
    return EXIT.failed;
  }
  if (action !== 'list' && !config.managedServers.enabled) {
    io.stderr('managedServers.enabled is false: servers are added in the configuration file\n');
    return EXIT.failed;
  }

  let input: ManagedServerInput | undefined;
  if (action === 'add') {
    const described = await readDescription(argument!, io).catch((error: unknown) => {
      io.stderr(`servers: ${(error as Error).message}\n`);
      return undefined;
    });
    if (described === undefined) return EXIT.failed;
    // Checked by the catalog's schema, which names every missing or bad field.
    input = { ...defaults(config), ...described } as ManagedServerInput;
  }

  const logger = createLogger({ level: 'error' });
  const store = createStore(config, logger);
  const audit = createAuditLog(config, store, logger);
  const directory = config.managedServers.traefik.directory;
  const writable =
    directory !== undefined &&
    (await access(directory, constants.W_OK).then(
      () => true,
      () => false,
    ));
  try {
    const catalog = await createServerCatalog({
      config,
      store,
      audit,
      logger,
      traefikFiles: writable ? 'write' : 'validate-only',
    });
    const actor = `cli:${userInfo().username}`;
    if (action === 'list') {
      io.stdout(listing(config, await catalog.read()));
      return EXIT.ok;
    }
    if (action === 'add') {
      const server = await catalog.add(input!, actor);
      io.stdout(`added ${server.id} ${server.url}\n`);
      return EXIT.ok;
    }
    const servers = await catalog.read();
    const url = tryCanonicalResourceUrl(argument!);
    const target = servers.find((server) => server.id === argument || server.url === url);
    if (!target) {
      io.stderr(`servers: no run-time server ${argument!}\n`);
      return EXIT.failed;
    }
    await catalog.remove(target.id, actor);
    io.stdout(`removed ${target.id} ${target.url}\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof ServerChangeRefused) {
      for (const problem of error.problems) io.stderr(`server: ${problem}\n`);
      return EXIT.failed;
    }
    io.stderr(`servers: ${(error as Error).message}\n`);
    return EXIT.failed;
  } finally {
    await audit?.close();
    await store.close();
  }
}

function defaults(config: Pick<GatewayConfig, 'managedServers'>): Partial<ManagedServerInput> {
  const { rateLimitAverage, rateLimitBurst, inFlight } = config.managedServers.defaults;
  return { rateLimitAverage, rateLimitBurst, inFlight, crowdsec: true };
}

async function readDescription(
  source: string,
  io: ServersCommandIo,
): Promise<Partial<ManagedServerInput>> {
  const text = source === '-' ? await io.stdin() : await readFile(source, 'utf8');
  if (text.length > MAX_INPUT) throw new Error(`${source}: larger than ${MAX_INPUT} bytes`);
  let value: unknown;
  try {
    value = parse(text, { maxAliasCount: 0 });
  } catch (error) {
    throw new Error(`${source}: not YAML or JSON: ${(error as Error).message.split('\n')[0]}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${source}: must describe one server (a mapping of its fields)`);
  }
  return value as Partial<ManagedServerInput>;
}

/** Terminal-safe text: control and format characters become `?`. */
const printable = (text: string) => text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '?');

function listing(config: Pick<GatewayConfig, 'resources'>, managed: ManagedServer[]): string {
  const rows = [
    ['ID', 'SOURCE', 'NAME', 'URL', 'UPSTREAM', 'SCOPES', 'UPDATED'],
    ...config.resources.map((resource) => [
      '-',
      'config',
      resource.name,
      resource.url,
      '-',
      resource.scopes.join(' '),
      '-',
    ]),
    ...managed.map((server) => [
      server.id,
      'managed',
      server.name,
      server.url,
      server.upstream,
      server.scopes.join(' '),
      `${server.updatedAt} ${server.updatedBy}`,
    ]),
  ];
  return rows.map((row) => `${row.map(printable).join('\t')}\n`).join('');
}
