/**
 * The tunnel's container files, checked without a Docker engine (the tests use none): the
 * site kit (site/compose.yaml) against the Compose Specification schema and its own rules (no
 * published port, every MCP server in the tunnel's namespace on the tunnel address), the
 * gateway's `wireguard` service in compose.yaml, and the one image both build
 * (site/wireguard/Dockerfile: pinned base image and packages, the script it runs).
 * tests/tunnel/tunnel.test.ts runs that script for real.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { DEFAULT_TUNNEL_DIR } from '../../src/tunnel/command.js';
import {
  compileSharedSchema,
  describeWithSharedSchemas,
  record,
  schemaErrors,
  strings,
  type Json,
} from '../helpers/config-files.js';

const read = (file: string) => readFileSync(path.resolve(file), 'utf8');
const yaml = (file: string) => record(parse(read(file), { merge: true }));

const site = yaml('site/compose.yaml');
const gateway = yaml('compose.yaml');
const siteServices = record(site.services);
const hub = record(record(gateway.services).wireguard);
const dockerfile = read('site/wireguard/Dockerfile');

/** The site kit with .env filled in as the operator does (TUNNEL_ADDRESS from add-site). */
function interpolated(compose: Json): Json {
  return JSON.parse(
    JSON.stringify(compose).replace(/\$\{TUNNEL_ADDRESS:\?[^}]*\}/g, '10.77.0.2'),
  ) as Json;
}

/** Every problem with the site kit's own rules (empty when it follows them). */
function siteKitProblems(compose: Json): string[] {
  const problems: string[] = [];
  const services = record(compose.services);
  const tunnel = record(services.wireguard);
  if (tunnel.command === undefined || strings(tunnel.command)[0] !== 'site') {
    problems.push('the wireguard service does not run `mcp-tunnel site`');
  }
  if (!strings(tunnel.cap_add).includes('NET_ADMIN')) problems.push('wireguard lacks NET_ADMIN');
  if (tunnel.network_mode === 'host') problems.push('wireguard runs in the host network');
  if (!strings(tunnel.volumes).some((v) => v.endsWith(':/etc/mcp-tunnel'))) {
    problems.push('wireguard does not mount its state at /etc/mcp-tunnel');
  }
  for (const [name, raw] of Object.entries(services)) {
    const service = record(raw);
    if (service.ports !== undefined) problems.push(`${name} publishes ports`);
    if (name === 'wireguard') continue;
    if (service.network_mode !== 'service:wireguard') {
      problems.push(`${name} is not in the tunnel's network namespace`);
    }
    if (service.networks !== undefined) problems.push(`${name} joins other networks`);
    const host = String(record(service.environment).HOST ?? '');
    if (!/^\$\{TUNNEL_ADDRESS\b/.test(host)) {
      problems.push(`${name} does not listen on \${TUNNEL_ADDRESS} (HOST=${host})`);
    }
  }
  return problems;
}

describe('site kit (site/compose.yaml)', () => {
  it('follows its rules: no port, MCP servers in the tunnel namespace on the tunnel address', () => {
    expect(Object.keys(siteServices)).toEqual(expect.arrayContaining(['wireguard', 'mcp-example']));
    expect(siteKitProblems(site)).toEqual([]);
  });

  it.each([
    [
      'a published port',
      (c: Json) => (record(record(c.services)['mcp-example']).ports = ['3001:3001']),
    ],
    [
      'a server outside the tunnel namespace',
      (c: Json) => delete record(record(c.services)['mcp-example']).network_mode,
    ],
    [
      'a server listening on every address',
      (c: Json) => (record(record(record(c.services)['mcp-example']).environment).HOST = '0.0.0.0'),
    ],
    [
      'the tunnel in the host network',
      (c: Json) => (record(record(c.services).wireguard).network_mode = 'host'),
    ],
  ])('notices %s', (_name, edit) => {
    const copy = structuredClone(site);
    edit(copy);
    expect(siteKitProblems(copy)).not.toEqual([]);
  });

  it('refuses to start without TUNNEL_ADDRESS', () => {
    const host = String(record(record(siteServices['mcp-example']).environment).HOST);
    expect(host).toMatch(/^\$\{TUNNEL_ADDRESS:\?/);
  });
});

describe("the gateway's wireguard service (compose.yaml, profile tunnel)", () => {
  it('runs the hub from the same image as the sites, on the host network, with the CLI state read-only', () => {
    expect(strings(hub.profiles)).toEqual(['tunnel']);
    expect(hub.build).toBe('./site/wireguard');
    expect(record(siteServices.wireguard).build).toBe('./wireguard');
    expect(strings(hub.command)).toEqual(['hub']);
    expect(hub.network_mode).toBe('host');
    expect(hub.ports).toBeUndefined();
    expect(strings(hub.cap_drop)).toEqual(['ALL']);
    expect(strings(hub.cap_add)).toEqual(['NET_ADMIN', 'DAC_READ_SEARCH']);
    const volumes = hub.volumes as unknown[];
    expect(volumes).toEqual([
      expect.objectContaining({
        type: 'bind',
        source: './deploy/tunnel/hub',
        target: '/etc/mcp-tunnel',
        read_only: true,
      }),
      // The last endpoints of the sites, kept across restarts (mcp-tunnel.sh TUNNEL_RUNTIME).
      'tunnel-hub-runtime:/var/lib/mcp-tunnel',
    ]);
    expect(record(gateway.volumes)['tunnel-hub-runtime']).toEqual({});
    // The CLI's default state directory is that mount's source.
    expect(`./${DEFAULT_TUNNEL_DIR}`).toBe(record(volumes[0]).source);
    // The directory exists in a checkout and keeps its contents (a private key) out of git.
    expect(read('deploy/tunnel/hub/.gitignore')).toMatch(/^\*$/m);
    expect(read('site/state/.gitignore')).toMatch(/^\*$/m);
  });
});

describe('the tunnel image (site/wireguard/Dockerfile)', () => {
  it('pins its base image and every package it installs, and runs mcp-tunnel.sh', () => {
    expect(dockerfile).toMatch(/^FROM debian:\d+\.\d+-slim$/m);
    const install = /apt-get install[^&]*/.exec(dockerfile)?.[0] ?? '';
    const packages = install
      .split(/\s+/)
      .filter(
        (word) => /^[a-z0-9][a-z0-9.+-]*(=|$)/.test(word) && !['apt-get', 'install'].includes(word),
      );
    expect(packages.map((p) => p.split('=')[0]).sort()).toEqual([
      'iproute2',
      'nftables',
      'wireguard-go',
      'wireguard-tools',
    ]);
    for (const pkg of packages) expect(pkg).toMatch(/^[a-z0-9-]+=\S+$/);
    expect(dockerfile).toContain('COPY --chmod=0755 mcp-tunnel.sh /usr/local/bin/mcp-tunnel');
    expect(dockerfile).toMatch(/^ENTRYPOINT \["mcp-tunnel"\]$/m);
    expect(read('site/wireguard/mcp-tunnel.sh')).toMatch(/^#!\/bin\/sh\n/);
  });
});

/** The Traefik example of docs/tunnels.md ("An MCP server at a site"). */
function docsTraefikExample(): Json {
  const blocks = [...read('docs/tunnels.md').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((text) => text.includes('serversTransports'));
  if (block === undefined) throw new Error('docs/tunnels.md has no Traefik example');
  return record(parse(block));
}

describe('the Traefik example in docs/tunnels.md', () => {
  it('uses the same middleware chain as the MCP routers in traefik/, a tunnel address and short timeouts', () => {
    const http = record(docsTraefikExample().http);
    const router = record(record(http.routers)['mcp-office-files']);
    const production = record(
      record(record(yaml('traefik/dynamic_config.yaml').http).routers)['mcp-example'],
    );
    expect(strings(router.middlewares)).toEqual(strings(production.middlewares));
    const service = record(record(record(http.services)['mcp-office-files']).loadBalancer);
    const url = new URL(String(record((service.servers as unknown[])[0]).url));
    expect(url.hostname).toMatch(/^10\.77\.0\.\d+$/);
    expect(service.serversTransport).toBe('tunnel');
    const timeouts = record(record(record(http.serversTransports).tunnel).forwardingTimeouts);
    expect(timeouts.dialTimeout).toBe('3s');
    expect(record(service.healthCheck).path).toBe('/healthz');
  });
});

describeWithSharedSchemas(
  'docs/tunnels.md Traefik example: Traefik v3 file provider schema (../shared/schemas)',
  ['traefik-v3-file-provider.json'],
  () => {
    it('is valid', () => {
      const validate = compileSharedSchema('traefik-v3-file-provider.json');
      expect(schemaErrors(validate, docsTraefikExample())).toEqual([]);
      const broken = docsTraefikExample();
      const service = record(record(record(broken.http).services)['mcp-office-files']);
      record(service.loadBalancer).servers = 'http://10.77.0.2:3001';
      expect(schemaErrors(validate, broken)).not.toEqual([]);
    });
  },
);

describeWithSharedSchemas(
  'site/compose.yaml: Compose Specification schema (../shared/schemas)',
  ['compose-spec.json'],
  () => {
    it('is valid once TUNNEL_ADDRESS is set', () => {
      const validate = compileSharedSchema('compose-spec.json');
      expect(schemaErrors(validate, interpolated(site))).toEqual([]);
      const broken = interpolated(site);
      record(record(broken.services).wireguard).network_mod = 'host';
      expect(schemaErrors(validate, broken)).not.toEqual([]);
    });
  },
);
