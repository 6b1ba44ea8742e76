/**
 * A real Caddy (Debian's 2.6.2) in front of test MCP servers, configured like the gateway's
 * Traefik setup (docs/proxies.md has the production Caddyfile this one mirrors):
 *
 * - the OAuth discovery paths go to the auth service without `forward_auth`;
 * - every MCP route runs `forward_auth` → `/verify` and copies the seven identity headers
 *   (IDENTITY_RESPONSE_HEADERS) onto the request, then `reverse_proxy` to its MCP server with
 *   `flush_interval -1` so SSE streams unbuffered;
 * - anything else is 404.
 *
 * Global options: `admin off` (no admin endpoint on :2019 to collide between parallel tests),
 * `auto_https off` (plain http on loopback), a short `grace_period` so SIGTERM does not wait
 * forever on open SSE streams. Caddy's data and config dirs (XDG_DATA_HOME, XDG_CONFIG_HOME)
 * point into the temp dir, so nothing is written to the user's home.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary } from './binaries.js';
import { IDENTITY_RESPONSE_HEADERS } from './identity-headers.js';
import {
  hostPort,
  routePath,
  startProxyProcess,
  type ProxyOptions,
  type RunningProxy,
} from './proxy-process.js';

export type { ProxyOptions, ProxyRoute, RunningProxy } from './proxy-process.js';

/** The OAuth discovery paths answered by the auth service with no forward_auth. */
const DISCOVERY_PATHS = [
  '/.well-known/oauth-protected-resource',
  '/.well-known/oauth-protected-resource/*',
  '/.well-known/oauth-authorization-server',
];

/** The Caddyfile for a proxy on `127.0.0.1:port` (exported so a failing test can print it). */
export function caddyfile(port: number, options: ProxyOptions): string {
  const auth = hostPort(options.authUrl, 'authUrl');
  const lines = [
    '{',
    '\tadmin off',
    '\tauto_https off',
    '\tgrace_period 2s',
    '}',
    '',
    `:${port} {`,
    '\tbind 127.0.0.1',
    '',
    `\t@oauth_discovery path ${DISCOVERY_PATHS.join(' ')}`,
    '\thandle @oauth_discovery {',
    `\t\treverse_proxy ${auth}`,
    '\t}',
  ];
  for (const route of options.routes) {
    routePath(route.path);
    lines.push(
      '',
      `\thandle ${route.path} {`,
      `\t\tforward_auth ${auth} {`,
      '\t\t\turi /verify',
      `\t\t\tcopy_headers ${IDENTITY_RESPONSE_HEADERS.join(' ')}`,
      '\t\t}',
      `\t\treverse_proxy ${hostPort(route.upstream, 'upstream')} {`,
      '\t\t\tflush_interval -1',
      '\t\t}',
      '\t}',
    );
  }
  lines.push('', '\thandle {', '\t\trespond 404', '\t}', '}', '');
  return lines.join('\n');
}

/** Starts Caddy; resolves once it answers HTTP on its port. */
export async function startCaddy(options: ProxyOptions): Promise<RunningProxy> {
  const binary = findBinary('caddy');
  if (binary === undefined) throw new Error('caddy is not installed');
  return startProxyProcess({
    name: 'caddy',
    binary,
    async prepare(port, dir) {
      const config = join(dir, 'Caddyfile');
      await writeFile(config, caddyfile(port, options));
      const data = join(dir, 'data');
      const home = join(dir, 'config');
      await mkdir(data, { recursive: true });
      await mkdir(home, { recursive: true });
      return {
        args: ['run', '--config', config, '--adapter', 'caddyfile'],
        env: { XDG_DATA_HOME: data, XDG_CONFIG_HOME: home, HOME: dir },
      };
    },
  });
}
