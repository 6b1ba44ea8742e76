/**
 * A real nginx (Debian's 1.22.1, `auth_request` compiled in) in front of test MCP servers,
 * configured like the gateway's Traefik setup; docs/proxies.md has the production nginx.conf
 * this one mirrors and the reason for each line. In short:
 *
 * - the OAuth discovery paths go to the auth service without `auth_request`;
 * - every MCP route runs `auth_request` → `/verify` (without the body), copies the seven
 *   identity headers with `auth_request_set` + `proxy_set_header` (which also drops whatever
 *   the client sent under those names, the bearer token included), and proxies with
 *   `proxy_buffering off` so SSE streams;
 * - nginx never relays the auth answer's body, and turns any auth status but 2xx/401/403 into
 *   500: the auth service repeats its JSON body in `X-Auth-Error-Body`, and `error_page`
 *   locations answer 401/403/400/413 with it (plus `WWW-Authenticate`, which nginx relays by
 *   itself only on 401).
 *
 * Runs in the foreground (`daemon off;`) with `-p PREFIX -c CONF -e stderr`; pid file, logs and
 * every temp path live in the temp dir.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
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

/** nginx's own 413 (client_max_body_size, checked before auth_request runs), as JSON-RPC. */
export const TOO_LARGE_BODY = JSON.stringify({
  jsonrpc: '2.0',
  error: { code: -32600, message: 'Request body larger than 1 MiB' },
  id: null,
});

const TEMP_PATHS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'] as const;

/** `X-Auth-User-Id` → `gw_x_auth_user_id` (the nginx variable holding its value). */
function variableOf(header: string): string {
  return `gw_${header.toLowerCase().replace(/-/g, '_')}`;
}

/** The X-Forwarded-* set for a hop: nginx is the edge, so the client's own values are replaced. */
const FORWARDED_HEADERS = [
  'proxy_set_header X-Forwarded-For $remote_addr;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  'proxy_set_header X-Forwarded-Host $http_host;',
];

/** The nginx.conf for a proxy on `127.0.0.1:port` with everything under `dir`. */
export function nginxConf(port: number, dir: string, options: ProxyOptions): string {
  const auth = hostPort(options.authUrl, 'authUrl');
  const indent = (n: number, lines: string[]): string[] =>
    lines.map((line) => `${'    '.repeat(n)}${line}`);

  const upstreams: string[] = [];
  const locations: string[] = [];
  options.routes.forEach((route, index) => {
    const path = routePath(route.path);
    const upstream = `mcp_${index}`;
    upstreams.push(
      `upstream ${upstream} {`,
      `    server ${hostPort(route.upstream, 'upstream')};`,
      '    keepalive 8;',
      '}',
    );
    const match = 'exact' in path ? `= ${path.exact}` : `^~ ${path.prefix}`;
    locations.push(
      `location ${match} {`,
      ...indent(1, [
        'auth_request /.gateway-verify;',
        ...IDENTITY_RESPONSE_HEADERS.map(
          (h) => `auth_request_set $${variableOf(h)} $upstream_http_${variableOf(h).slice(3)};`,
        ),
        'auth_request_set $gw_error_body $upstream_http_x_auth_error_body;',
        'auth_request_set $gw_www_authenticate $upstream_http_www_authenticate;',
        'auth_request_set $gw_auth_status $upstream_status;',
        'error_page 401 = @gateway_401;',
        'error_page 403 = @gateway_403;',
        'error_page 500 = @gateway_auth_error;',
        'error_page 413 = @gateway_too_large;',
        '',
        `proxy_pass http://${upstream};`,
        ...IDENTITY_RESPONSE_HEADERS.map((h) => `proxy_set_header ${h} $${variableOf(h)};`),
        ...FORWARDED_HEADERS,
        'proxy_set_header Host $http_host;',
        'proxy_http_version 1.1;',
        'proxy_set_header Connection "";',
        'proxy_buffering off;',
        'proxy_cache off;',
        'proxy_read_timeout 1h;',
      ]),
      '}',
    );
  });

  const discovery = [
    'proxy_pass http://gateway_auth;',
    ...FORWARDED_HEADERS,
    'proxy_http_version 1.1;',
    'proxy_set_header Connection "";',
  ];
  const lines = [
    'daemon off;',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} info;`,
    '',
    'events {',
    '    worker_connections 256;',
    '}',
    '',
    'http {',
    ...indent(1, [
      `access_log ${join(dir, 'access.log')};`,
      ...TEMP_PATHS.map((name) => `${name}_temp_path ${join(dir, 'tmp', name)};`),
      'server_tokens off;',
      'default_type application/octet-stream;',
      '',
      'upstream gateway_auth {',
      `    server ${auth};`,
      '    keepalive 8;',
      '}',
      ...upstreams,
      '',
      'server {',
      ...indent(1, [
        `listen 127.0.0.1:${port};`,
        'client_max_body_size 1m;',
        '',
        'location ^~ /.well-known/oauth-protected-resource {',
        ...indent(1, discovery),
        '}',
        'location = /.well-known/oauth-authorization-server {',
        ...indent(1, discovery),
        '}',
        '',
        'location = /.gateway-verify {',
        ...indent(1, [
          'internal;',
          'proxy_pass http://gateway_auth/verify;',
          'proxy_pass_request_body off;',
          'proxy_set_header Content-Length "";',
          'proxy_set_header X-Forwarded-Method $request_method;',
          'proxy_set_header X-Forwarded-Uri $request_uri;',
          ...FORWARDED_HEADERS,
          'proxy_http_version 1.1;',
          'proxy_set_header Connection "";',
        ]),
        '}',
        '',
        ...locations,
        '',
        'location @gateway_401 {',
        ...indent(1, ['default_type application/json;', 'return 401 $gw_error_body;']),
        '}',
        'location @gateway_403 {',
        ...indent(1, [
          'add_header WWW-Authenticate $gw_www_authenticate always;',
          'default_type application/json;',
          'return 403 $gw_error_body;',
        ]),
        '}',
        'location @gateway_auth_error {',
        ...indent(1, [
          'default_type application/json;',
          'if ($gw_auth_status = 400) {',
          '    return 400 $gw_error_body;',
          '}',
          'if ($gw_auth_status = 413) {',
          '    return 413 $gw_error_body;',
          '}',
          'return 500;',
        ]),
        '}',
        'location @gateway_too_large {',
        ...indent(1, ['default_type application/json;', `return 413 '${TOO_LARGE_BODY}';`]),
        '}',
        '',
        'location / {',
        '    return 404;',
        '}',
      ]),
      '}',
    ]),
    '}',
    '',
  ];
  return lines.join('\n');
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
