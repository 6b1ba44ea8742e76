/**
 * A real nginx (Debian's 1.22.1, `auth_request` compiled in) in front of test MCP servers,
 * running the project's own snippets (`deploy/nginx/snippets/*.conf`, included as they are):
 * only the `http`/`server`/`location` frame is written here, as `deploy/nginx/mcp-gateway.conf`
 * writes it, with loopback addresses instead of public hosts and no TLS.
 *
 * - `server_name localhost` is the auth host (`mcp-gateway-auth-host.conf`);
 * - the default server on `127.0.0.1:PORT` is the MCP host (`mcp-gateway-server.conf`), with
 *   one `location` per route: `proxy_pass` to its MCP server and `mcp-gateway-route.conf`.
 *
 * Runs in the foreground (`daemon off;`) with `-p PREFIX -c CONF -e stderr`; pid file, logs and
 * every temp path live in the temp dir.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
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

const SNIPPETS = resolve('deploy/nginx/snippets');

/** nginx's own 413 (client_max_body_size, checked before auth_request runs), as JSON-RPC. */
export const TOO_LARGE_BODY = ((): string => {
  const text = readFileSync(join(SNIPPETS, 'mcp-gateway-server.conf'), 'utf8');
  const body = /return 413 '([^']+)';/.exec(text)?.[1];
  if (!body) throw new Error('mcp-gateway-server.conf has no 413 body');
  return body;
})();

const TEMP_PATHS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'] as const;

/** The nginx.conf for a proxy on `127.0.0.1:port` with everything under `dir`. */
export function nginxConf(port: number, dir: string, options: ProxyOptions): string {
  const snippet = (name: string) => `include ${join(SNIPPETS, name)};`;
  const upstreams: string[] = [];
  const locations: string[] = [];
  options.routes.forEach((route, index) => {
    const path = routePath(route.path);
    const upstream = `mcp_${index}`;
    upstreams.push(
      `    upstream ${upstream} {`,
      `        server ${hostPort(route.upstream, 'upstream')};`,
      '        keepalive 8;',
      '    }',
    );
    const match = 'exact' in path ? `= ${path.exact}` : `^~ ${path.prefix}`;
    locations.push(
      `        location ${match} {`,
      `            proxy_pass http://${upstream};`,
      `            ${snippet('mcp-gateway-route.conf')}`,
      '        }',
    );
  });
  return [
    'daemon off;',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} info;`,
    'events {',
    '    worker_connections 256;',
    '}',
    'http {',
    `    access_log ${join(dir, 'access.log')};`,
    ...TEMP_PATHS.map((name) => `    ${name}_temp_path ${join(dir, 'tmp', name)};`),
    '    server_tokens off;',
    '    default_type application/octet-stream;',
    `    ${snippet('mcp-gateway-http.conf')}`,
    '    upstream gateway_auth {',
    `        server ${hostPort(options.authUrl, 'authUrl')};`,
    '        keepalive 8;',
    '    }',
    ...upstreams,
    '    server {',
    `        listen 127.0.0.1:${port};`,
    '        server_name localhost;',
    `        ${snippet('mcp-gateway-auth-host.conf')}`,
    '    }',
    '    server {',
    `        listen 127.0.0.1:${port} default_server;`,
    `        ${snippet('mcp-gateway-server.conf')}`,
    ...locations,
    '    }',
    '}',
    '',
  ].join('\n');
}

/** Starts nginx; resolves once it answers HTTP on its port. */
export async function startNginx(options: ProxyOptions): Promise<RunningProxy> {
  const binary = findBinary('nginx');
  if (binary === undefined) throw new Error('nginx is not installed');
  return startProxyProcess({
    name: 'nginx',
    binary,
    async prepare(port, dir) {
      // Run as root, nginx's workers drop to `nobody`: they must be able to reach the temp
      // dirs (request bodies over 16 KiB are spooled to client_body).
      await chmod(dir, 0o755);
      await mkdir(join(dir, 'tmp'), { recursive: true, mode: 0o755 });
      for (const name of TEMP_PATHS) {
        await mkdir(join(dir, 'tmp', name), { recursive: true });
        await chmod(join(dir, 'tmp', name), 0o777);
      }
      const config = join(dir, 'nginx.conf');
      await writeFile(config, nginxConf(port, dir, options));
      return { args: ['-p', `${dir}/`, '-c', config, '-e', 'stderr'] };
    },
  });
}
