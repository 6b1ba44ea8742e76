/**
 * The gateway side's tunnel state directory (default deploy/tunnel/hub, mounted read-only into
 * the `wireguard` compose service at /etc/mcp-tunnel):
 *
 *   sites.json  the registry: subnet, endpoint, interface, the gateway's public key, the sites
 *               (name, address, public key) and the next host number to hand out
 *   hub.key     the gateway's WireGuard private key (0600), generated here by the CLI
 *   wg0.conf    the interface configuration in `wg setconf` format: the private key, the listen
 *               port and one [Peer] per site whose AllowedIPs is that site's /32 (0600)
 *   hub.env     TUNNEL_INTERFACE and TUNNEL_ADDRESS for site/wireguard/mcp-tunnel.sh
 *
 * Every file is written to a temporary name and renamed, under a lock file, so the container's
 * reload loop never reads half a file and two CLI runs never lose each other's change.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { FIRST_SITE_HOST, hubAddress, parseSubnet, type Subnet } from './addresses.js';

export const REGISTRY_FILE = 'sites.json';
export const HUB_KEY_FILE = 'hub.key';
export const WG_CONF_FILE = 'wg0.conf';
export const HUB_ENV_FILE = 'hub.env';
const LOCK_FILE = '.lock';

export const DEFAULT_LISTEN_PORT = 51820;
export const DEFAULT_INTERFACE = 'wg0';
/** Sent by every site so the NAT mapping in front of it stays open for the gateway's packets. */
export const PERSISTENT_KEEPALIVE = 25;

const LOCK_WAIT_MS = 5_000;
const LOCK_STALE_MS = 60_000;

const siteSchema = z.strictObject({
  name: z.string(),
  address: z.string(),
  publicKey: z.string(),
  addedAt: z.string(),
  rotatedAt: z.string().optional(),
});

const registrySchema = z.strictObject({
  version: z.literal(1),
  subnet: z.string(),
  listenPort: z.number().int(),
  endpoint: z.string(),
  interface: z.string(),
  hubPublicKey: z.string(),
  /** The host number the next site gets; only ever grows (addresses are not reused). */
  nextHost: z.number().int(),
  sites: z.array(siteSchema),
});

export type Site = z.infer<typeof siteSchema>;
export type Registry = z.infer<typeof registrySchema>;

export class StateError extends Error {}

export function subnetOf(registry: Registry): Subnet {
  return parseSubnet(registry.subnet);
}

export function newRegistry(options: {
  subnet: Subnet;
  listenPort: number;
  endpoint: string;
  interface: string;
  hubPublicKey: string;
}): Registry {
  return {
    version: 1,
    subnet: options.subnet.cidr,
    listenPort: options.listenPort,
    endpoint: options.endpoint,
    interface: options.interface,
    hubPublicKey: options.hubPublicKey,
    nextHost: FIRST_SITE_HOST,
    sites: [],
  };
}

/** The registry, or `undefined` when the directory holds none yet. */
export async function readRegistry(dir: string): Promise<Registry | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dir, REGISTRY_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new StateError(`${path.join(dir, REGISTRY_FILE)} is not JSON`);
  }
  const result = registrySchema.safeParse(parsed);
  if (!result.success) {
    throw new StateError(`${path.join(dir, REGISTRY_FILE)} is not a tunnel registry`);
  }
  return result.data;
}

export async function readHubKey(dir: string): Promise<string> {
  try {
    return (await readFile(path.join(dir, HUB_KEY_FILE), 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new StateError(`${path.join(dir, HUB_KEY_FILE)} is missing`);
    }
    throw error;
  }
}

/** Writes the registry and everything derived from it (wg0.conf, hub.env). */
export async function writeState(dir: string, registry: Registry, hubKey: string): Promise<void> {
  await writeAtomically(dir, HUB_KEY_FILE, `${hubKey}\n`);
  await writeAtomically(dir, WG_CONF_FILE, renderInterfaceConfig(registry, hubKey));
  await writeAtomically(dir, HUB_ENV_FILE, renderHubEnv(registry));
  await writeAtomically(dir, REGISTRY_FILE, `${JSON.stringify(registry, null, 2)}\n`);
}

/** The gateway's interface configuration, `wg setconf` format (no wg-quick keys). */
export function renderInterfaceConfig(registry: Registry, hubKey: string): string {
  const lines = [
    '# Written by `mcp-gateway tunnel` (src/tunnel/); rewritten on every change, do not edit.',
    '# The gateway end of the site tunnels, loaded with `wg setconf` / `wg syncconf`',
    '# (site/wireguard/mcp-tunnel.sh hub). It holds the gateway private key: mode 0600.',
    '[Interface]',
    `PrivateKey = ${hubKey}`,
    `ListenPort = ${registry.listenPort}`,
  ];
  for (const site of registry.sites) {
    lines.push(
      '',
      `# site ${site.name}`,
      '[Peer]',
      `PublicKey = ${site.publicKey}`,
      // The one address this key may use as a source, and the one address routed to it: a
      // stolen site key reaches nothing but its own address.
      `AllowedIPs = ${site.address}/32`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function renderHubEnv(registry: Registry): string {
  return [
    '# Written by `mcp-gateway tunnel`; read by site/wireguard/mcp-tunnel.sh hub.',
    `TUNNEL_INTERFACE=${registry.interface}`,
    `TUNNEL_ADDRESS=${hubAddress(subnetOf(registry))}/24`,
    '',
  ].join('\n');
}

/**
 * What a site needs, as a file for state/tunnel.conf in the site kit. It holds no private key:
 * the site's own key is made at the site (`mcp-tunnel site-init`) and never leaves it.
 */
export function renderSiteConfig(registry: Registry, site: Site): string {
  const hub = hubAddress(subnetOf(registry));
  return [
    `# mcp-gateway tunnel: site "${site.name}", tunnel address ${site.address}`,
    '# Save as state/tunnel.conf in the site kit (site/), and put',
    `# TUNNEL_ADDRESS=${site.address} in site/.env: the MCP servers listen on that address only.`,
    '# No private key here: the site key is state/private.key, made at the site by site-init.',
    '[Interface]',
    `Address = ${site.address}/32`,
    '',
    '[Peer]',
    '# The gateway. Only its tunnel address is routed into the tunnel.',
    `PublicKey = ${registry.hubPublicKey}`,
    `Endpoint = ${registry.endpoint}`,
    `AllowedIPs = ${hub}/32`,
    `PersistentKeepalive = ${PERSISTENT_KEEPALIVE}`,
    '',
  ].join('\n');
}

/** Runs `fn` holding the directory's lock file (created with O_EXCL; stale after a minute). */
export async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lock = path.join(dir, LOCK_FILE);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lock, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > LOCK_STALE_MS) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new StateError(`${lock} is held by another tunnel command; try again`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

async function writeAtomically(dir: string, name: string, text: string): Promise<void> {
  const target = path.join(dir, name);
  const temporary = path.join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
