/**
 * `mcp-gateway tunnel …`: the remote sites whose MCP servers the gateway reaches through
 * WireGuard (docs/tunnels.md). It manages the gateway side's state directory (src/tunnel/state.ts)
 * and applies each change to the running interface at once when it can (src/tunnel/wg.ts).
 *
 *   tunnel add-site NAME --public-key KEY   register a site (its key was made AT the site)
 *   tunnel add-site NAME                    print how the site makes its key, register nothing
 *   tunnel show-site NAME                   print the site's configuration again
 *   tunnel rotate-site NAME --public-key KEY  replace a site's key, keep its address
 *   tunnel remove-site NAME                 remove a site: its peer is cut at once
 *   tunnel rotate-hub                       new gateway key (every site needs show-site again)
 *   tunnel list [--json]                    the sites
 *
 * Private keys: the site's is generated at the site and never seen here; the gateway's is
 * generated here into hub.key/wg0.conf (0600) and is never written to stdout or stderr.
 * stdout carries data (a site configuration, the list); stderr carries what happened.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_SUBNET,
  LAST_SITE_HOST,
  parseSubnet,
  siteAddress,
  hubAddress,
} from './addresses.js';
import { generateKeyPair, isKeyText, publicKeyOf } from './keys.js';
import {
  DEFAULT_INTERFACE,
  DEFAULT_LISTEN_PORT,
  HUB_KEY_FILE,
  newRegistry,
  readHubKey,
  readRegistry,
  renderSiteConfig,
  StateError,
  subnetOf,
  withLock,
  WG_CONF_FILE,
  writeState,
  type Registry,
  type Site,
} from './state.js';
import { applyChange, type ApplyResult, type PeerChange } from './wg.js';
import { EXIT, type CliIo } from '../cli/io.js';

export interface TunnelOptions {
  /** The state directory (`--dir` overrides it). */
  dir: string;
  /** How to run wireguard-tools' `wg` (default `['wg']`); tests run it inside a namespace. */
  wg?: string[];
  /** The clock, for `addedAt`. */
  now?: () => Date;
}

/** Where the gateway keeps its tunnel state unless told otherwise (mounted by compose.yaml). */
export const DEFAULT_TUNNEL_DIR = 'deploy/tunnel/hub';

export const TUNNEL_USAGE = `usage: mcp-gateway tunnel add-site NAME --public-key KEY [--endpoint HOST[:PORT]] [--subnet CIDR]
                                     [--listen-port PORT] [--interface NAME]
       mcp-gateway tunnel show-site NAME
       mcp-gateway tunnel rotate-site NAME --public-key KEY
       mcp-gateway tunnel remove-site NAME
       mcp-gateway tunnel rotate-hub
       mcp-gateway tunnel list [--json]
  --dir DIR   the gateway's tunnel state (default ${DEFAULT_TUNNEL_DIR}, or $MCP_GATEWAY_TUNNEL_DIR)
  NAME is a DNS label (lowercase letters, digits, hyphens). KEY is the site's PUBLIC key: the
  site makes its own key pair (docker compose run --rm wireguard site-init) and keeps the
  private half. The first add-site needs --endpoint: the gateway's address the sites dial.
`;

const SITE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const INTERFACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

class UsageError extends Error {}
class Failure extends Error {}

type Values = {
  'public-key'?: string;
  endpoint?: string;
  subnet?: string;
  'listen-port'?: string;
  interface?: string;
  dir?: string;
  json?: boolean;
  help?: boolean;
};

export async function runTunnelCommand(
  argv: string[],
  io: CliIo,
  options: TunnelOptions,
): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'public-key': { type: 'string' },
        endpoint: { type: 'string' },
        subnet: { type: 'string' },
        'listen-port': { type: 'string' },
        interface: { type: 'string' },
        dir: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    io.stderr(`tunnel: ${(error as Error).message}\n${TUNNEL_USAGE}`);
    return EXIT.usage;
  }
  if (values.help || positionals[0] === 'help') {
    io.stdout(TUNNEL_USAGE);
    return EXIT.ok;
  }
  const context: Context = {
    io,
    dir: values.dir ?? options.dir,
    wg: options.wg ?? ['wg'],
    now: options.now ?? (() => new Date()),
  };
  const [action, name, ...extra] = positionals;
  try {
    if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
    switch (action) {
      case 'add-site':
        return await addSite(context, requireName(name), values);
      case 'show-site':
        onlyOptions(values, []);
        return await showSite(context, requireName(name));
      case 'rotate-site':
        onlyOptions(values, ['public-key']);
        return await rotateSite(context, requireName(name), values['public-key']);
      case 'remove-site':
        onlyOptions(values, []);
        return await removeSite(context, requireName(name));
      case 'rotate-hub':
        onlyOptions(values, []);
        if (name !== undefined) throw new UsageError('rotate-hub takes no name');
        return await rotateHub(context);
      case 'list':
        onlyOptions(values, ['json']);
        if (name !== undefined) throw new UsageError('list takes no name');
        return await list(context, values.json === true);
      default:
        throw new UsageError(
          action === undefined ? 'which tunnel command?' : `unknown command ${action}`,
        );
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`tunnel: ${error.message}\n${TUNNEL_USAGE}`);
      return EXIT.usage;
    }
    if (error instanceof Failure || error instanceof StateError) {
      io.stderr(`tunnel: ${error.message}\n`);
      return EXIT.failed;
    }
    io.stderr(`tunnel: ${(error as Error).message}\n`);
    return EXIT.failed;
  }
}

interface Context {
  io: CliIo;
  dir: string;
  wg: string[];
  now: () => Date;
}

function requireName(name: string | undefined): string {
  if (name === undefined) throw new UsageError('a site NAME is required');
  if (!SITE_NAME.test(name)) {
    throw new UsageError(
      `not a valid site name ${JSON.stringify(name)}: a DNS label, 1 to 63 lowercase letters, ` +
        'digits and hyphens, not starting or ending with a hyphen',
    );
  }
  return name;
}

function onlyOptions(values: Values, allowed: (keyof Values)[]): void {
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || key === 'dir' || allowed.includes(key as keyof Values)) continue;
    throw new UsageError(`--${key} does not apply here`);
  }
}

function requirePublicKey(key: string | undefined, registry: Registry | undefined): string {
  if (key === undefined) throw new UsageError('--public-key KEY is required');
  const trimmed = key.trim();
  if (!isKeyText(trimmed)) {
    throw new UsageError(
      '--public-key is not a WireGuard public key (base64 of 32 bytes, 44 characters, as `wg pubkey` prints)',
    );
  }
  if (registry !== undefined && trimmed === registry.hubPublicKey) {
    throw new UsageError("--public-key is the gateway's own key, not the site's");
  }
  return trimmed;
}

function parseEndpoint(text: string, listenPort: number): string {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(text);
  const host = match?.[1];
  const port = match?.[2] === undefined ? listenPort : Number(match[2]);
  const hostOk =
    host !== undefined && (IPV4.test(host) || HOST_NAME.test(host) || host.startsWith('['));
  if (!hostOk || port < 1 || port > 65535) {
    throw new UsageError(
      `--endpoint must be HOST[:PORT], the gateway address sites dial (got ${JSON.stringify(text)})`,
    );
  }
  return `${host}:${port}`;
}

function parsePort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LISTEN_PORT;
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) {
    throw new UsageError(`--listen-port must be a port number (got ${JSON.stringify(text)})`);
  }
  return port;
}

function findSite(registry: Registry | undefined, name: string): Site {
  const site = registry?.sites.find((s) => s.name === name);
  if (site === undefined) throw new Failure(`no site named ${name}`);
  return site;
}

async function requireRegistry(dir: string): Promise<Registry> {
  const registry = await readRegistry(dir);
  if (registry === undefined) {
    throw new Failure(`no tunnel state in ${dir}: add a site first (tunnel add-site)`);
  }
  return registry;
}

/** How the change reached the running interface, for stderr. */
function appliedNote(context: Context, registry: Registry, result: ApplyResult): string {
  if (result.applied) return `applied to ${registry.interface} now`;
  return (
    `not applied here (${result.reason}): the wireguard service reloads ` +
    `${path.join(context.dir, WG_CONF_FILE)} within seconds, or run ` +
    `\`wg syncconf ${registry.interface} ${path.join(context.dir, WG_CONF_FILE)}\``
  );
}

async function apply(context: Context, registry: Registry, change: PeerChange, hubKey: string) {
  return applyChange(context.wg, registry.interface, hubKey, change);
}

async function addSite(context: Context, name: string, values: Values): Promise<number> {
  const { io } = context;
  if (values['public-key'] === undefined) {
    onlyOptions(values, ['endpoint', 'subnet', 'listen-port', 'interface']);
    io.stderr(
      [
        `tunnel: nothing registered: a site's key pair is made at the site, and only its public key comes here.`,
        `  1. At site ${name}, in the site kit (site/):  docker compose run --rm wireguard site-init`,
        '     (without Docker: umask 077; wg genkey > private.key; wg pubkey < private.key)',
        `  2. Here:  mcp-gateway tunnel add-site ${name} --public-key <the key it printed>`,
        '     This prints the site configuration to save as site/state/tunnel.conf.',
        '',
      ].join('\n'),
    );
    return EXIT.usage;
  }
  requirePublicKey(values['public-key'], undefined);
  return withLock(context.dir, async () => {
    let registry = await readRegistry(context.dir);
    const publicKey = requirePublicKey(values['public-key'], registry);
    let hubKey: string;
    if (registry === undefined) {
      if (values.endpoint === undefined) {
        throw new UsageError(
          `${context.dir} holds no tunnel state yet: the first add-site needs --endpoint HOST[:PORT], ` +
            'the public address of the gateway that sites dial',
        );
      }
      const listenPort = parsePort(values['listen-port']);
      const iface = values.interface ?? DEFAULT_INTERFACE;
      if (!INTERFACE_NAME.test(iface)) throw new UsageError(`not an interface name: ${iface}`);
      let subnet;
      try {
        subnet = parseSubnet(values.subnet ?? DEFAULT_SUBNET);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const hub = generateKeyPair();
      hubKey = hub.privateKey;
      registry = newRegistry({
        subnet,
        listenPort,
        endpoint: parseEndpoint(values.endpoint, listenPort),
        interface: iface,
        hubPublicKey: hub.publicKey,
      });
      io.stderr(
        `tunnel: new tunnel state in ${context.dir}: subnet ${subnet.cidr}, gateway ` +
          `${hubAddress(subnet)}, endpoint ${registry.endpoint}, gateway key in ${HUB_KEY_FILE} (0600)\n`,
      );
    } else {
      hubKey = await readHubKey(context.dir);
      const existing = registry;
      const given: [string, string | undefined, (value: string) => boolean][] = [
        [
          'endpoint',
          values.endpoint,
          (v) => parseEndpoint(v, existing.listenPort) !== existing.endpoint,
        ],
        ['subnet', values.subnet, (v) => v !== existing.subnet],
        ['listen-port', values['listen-port'], (v) => parsePort(v) !== existing.listenPort],
        ['interface', values.interface, (v) => v !== existing.interface],
      ];
      const mismatch = given.find(([, value, differs]) => value !== undefined && differs(value));
      if (mismatch !== undefined) {
        throw new UsageError(
          `--${mismatch[0]} differs from the existing tunnel state in ${context.dir}; ` +
            'it is set by the first add-site only',
        );
      }
    }
    if (registry.sites.some((s) => s.name === name)) {
      throw new Failure(
        `a site named ${name} exists already (remove-site it first, or rotate-site)`,
      );
    }
    const sameKey = registry.sites.find((s) => s.publicKey === publicKey);
    if (sameKey !== undefined) {
      throw new Failure(`that public key belongs to site ${sameKey.name} already`);
    }
    if (registry.nextHost > LAST_SITE_HOST) {
      throw new Failure(
        `no tunnel address left in ${registry.subnet} (addresses of removed sites are not reused)`,
      );
    }
    const site: Site = {
      name,
      address: siteAddress(subnetOf(registry), registry.nextHost),
      publicKey,
      addedAt: context.now().toISOString(),
    };
    registry.nextHost += 1;
    registry.sites.push(site);
    await writeState(context.dir, registry, hubKey);
    const result = await apply(
      context,
      registry,
      { kind: 'add', publicKey, address: site.address },
      registry.hubPublicKey,
    );
    io.stdout(renderSiteConfig(registry, site));
    io.stderr(
      `tunnel: site ${name} registered at ${site.address}; ${appliedNote(context, registry, result)}.\n` +
        `  At the site: save the configuration above as site/state/tunnel.conf, set ` +
        `TUNNEL_ADDRESS=${site.address} in site/.env, then docker compose up -d.\n` +
        `  Route to its MCP servers with a Traefik service URL such as http://${site.address}:3001 (docs/tunnels.md).\n`,
    );
    return EXIT.ok;
  });
}

async function showSite(context: Context, name: string): Promise<number> {
  const registry = await requireRegistry(context.dir);
  context.io.stdout(renderSiteConfig(registry, findSite(registry, name)));
  return EXIT.ok;
}

async function rotateSite(
  context: Context,
  name: string,
  key: string | undefined,
): Promise<number> {
  return withLock(context.dir, async () => {
    const registry = await requireRegistry(context.dir);
    const site = findSite(registry, name);
    const publicKey = requirePublicKey(key, registry);
    if (publicKey === site.publicKey) throw new Failure(`site ${name} has that key already`);
    const other = registry.sites.find((s) => s.publicKey === publicKey);
    if (other !== undefined) throw new Failure(`that public key belongs to site ${other.name}`);
    const oldPublicKey = site.publicKey;
    site.publicKey = publicKey;
    site.rotatedAt = context.now().toISOString();
    await writeState(context.dir, registry, await readHubKey(context.dir));
    const result = await apply(
      context,
      registry,
      { kind: 'replace', oldPublicKey, publicKey, address: site.address },
      registry.hubPublicKey,
    );
    context.io.stderr(
      `tunnel: site ${name} (${site.address}) now accepts only its new key; the old one is cut; ` +
        `${appliedNote(context, registry, result)}. Restart the site's wireguard container.\n`,
    );
    return EXIT.ok;
  });
}

async function removeSite(context: Context, name: string): Promise<number> {
  return withLock(context.dir, async () => {
    const registry = await requireRegistry(context.dir);
    const site = findSite(registry, name);
    registry.sites = registry.sites.filter((s) => s !== site);
    await writeState(context.dir, registry, await readHubKey(context.dir));
    const result = await apply(
      context,
      registry,
      { kind: 'remove', publicKey: site.publicKey },
      registry.hubPublicKey,
    );
    context.io.stderr(
      `tunnel: site ${name} removed (${site.address}, never handed out again); ` +
        `${appliedNote(context, registry, result)}. Remove its Traefik routes and resources too.\n`,
    );
    return EXIT.ok;
  });
}

async function rotateHub(context: Context): Promise<number> {
  return withLock(context.dir, async () => {
    const registry = await requireRegistry(context.dir);
    const previousPublicKey = registry.hubPublicKey;
    const hub = generateKeyPair();
    registry.hubPublicKey = hub.publicKey;
    await writeState(context.dir, registry, hub.privateKey);
    if (publicKeyOf(await readHubKey(context.dir)) !== hub.publicKey) {
      throw new Failure(`${HUB_KEY_FILE} does not hold the new key after writing it`);
    }
    const result = await apply(
      context,
      registry,
      { kind: 'hub-key', keyFile: path.resolve(context.dir, HUB_KEY_FILE) },
      previousPublicKey,
    );
    context.io.stderr(
      `tunnel: new gateway key; ${appliedNote(context, registry, result)}. Every site is cut ` +
        `until it gets its configuration again: tunnel show-site NAME, for ${registry.sites.length} site(s).\n`,
    );
    return EXIT.ok;
  });
}

async function list(context: Context, json: boolean): Promise<number> {
  const registry = await readRegistry(context.dir);
  const { io } = context;
  if (json) {
    const view =
      registry === undefined
        ? { sites: [] }
        : {
            subnet: registry.subnet,
            gatewayAddress: hubAddress(subnetOf(registry)),
            endpoint: registry.endpoint,
            interface: registry.interface,
            gatewayPublicKey: registry.hubPublicKey,
            sites: registry.sites,
          };
    io.stdout(`${JSON.stringify(view, null, 2)}\n`);
    return EXIT.ok;
  }
  if (registry === undefined) {
    io.stderr(`tunnel: no sites (no tunnel state in ${context.dir})\n`);
    return EXIT.ok;
  }
  io.stderr(
    `tunnel: gateway ${hubAddress(subnetOf(registry))} on ${registry.interface}, endpoint ` +
      `${registry.endpoint}, key ${registry.hubPublicKey}\n`,
  );
  const rows = [
    ['NAME', 'ADDRESS', 'PUBLIC KEY', 'ADDED'],
    ...registry.sites.map((s) => [s.name, s.address, s.publicKey, s.addedAt]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) {
    io.stdout(
      `${row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
  return EXIT.ok;
}
