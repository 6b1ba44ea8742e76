/**
 * A real Caddy (Debian's 2.6.2) in front of test MCP servers, running the project's own
 * snippets (`deploy/caddy/mcp-gateway.caddy`, imported as they are): only the site blocks are
 * written here, as `deploy/caddy/Caddyfile` writes them, with loopback addresses instead of
 * public hosts and plain http instead of automatic HTTPS.
 *
 * - `localhost:PORT` is the auth host (`mcp_auth_host`);
 * - `127.0.0.1:PORT` is the MCP host: `mcp_discovery`, one `handle` per route with
 *   `mcp_route <upstream>`, 404 for anything else.
 *
 * Global options: `admin off` (no admin endpoint on :2019 to collide between parallel tests),
 * `auto_https off`, a short `grace_period` so SIGTERM does not wait forever on open SSE
 * streams. The auth service's address reaches the snippets through `MCPGW_AUTH`, as in
 * production. Caddy's data and config dirs point into the temp dir.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { findBinary } from './binaries.js';
import {
  hostPort,
  routePath,
  startProxyProcess,
  type ProxyOptions,
  type RunningProxy,
} from './proxy-process.js';

export type { ProxyOptions, ProxyRoute, RunningProxy } from './proxy-process.js';

/** The snippets every Caddy deployment of the gateway imports. */
export const CADDY_SNIPPETS = resolve('deploy/caddy/mcp-gateway.caddy');

/** The Caddyfile for a proxy on port `port` (exported so a failing test can print it). */
export function caddyfile(port: number, options: ProxyOptions): string {
  const lines = [
    '{',
    '\tadmin off',
    '\tauto_https off',
    '\tgrace_period 2s',
    '}',
    '',
    `import ${CADDY_SNIPPETS}`,
    '',
    `http://localhost:${port} {`,
    '\tbind 127.0.0.1',
    '\timport mcp_auth_host',
    '}',
    '',
    `http://127.0.0.1:${port} {`,
    '\tbind 127.0.0.1',
    '\timport mcp_security_headers',
    '\timport mcp_discovery',
  ];
  for (const route of options.routes) {
    routePath(route.path);
    lines.push(
      '',
      `\thandle ${route.path} {`,
      `\t\timport mcp_route ${hostPort(route.upstream, 'upstream')}`,
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
        env: {
          XDG_DATA_HOME: data,
          XDG_CONFIG_HOME: home,
          HOME: dir,
          MCPGW_AUTH: hostPort(options.authUrl, 'authUrl'),
        },
      };
    },
  });
}
