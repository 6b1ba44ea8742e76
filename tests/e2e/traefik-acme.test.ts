/**
 * Let's Encrypt, issued: the shipped Traefik configuration (traefik/traefik.yml) obtains its
 * certificates through its own `letsencrypt` resolver, with only the settings a production user
 * would edit changed (`caServer`: Pebble, Let's Encrypt's ACME test server; `storage`: a temp
 * file). Pebble validates the TLS-ALPN-01 challenges Traefik answers (the shipped
 * `tlsChallenge`), the test's names resolving to 127.0.0.1 through Pebble's DNS server
 * (tests/helpers/pebble.ts). Then, with certificate verification on everywhere:
 *
 * - both public hosts are served a certificate for their name that chains to Pebble's root;
 * - plain http on the `web` entry point is redirected permanently to https;
 * - the MCP SDK's client, given only the MCP URL, runs the whole OAuth flow through Traefik
 *   (401, protected resource metadata, authorization server metadata, registration, the dev
 *   login and consent, the token) and calls a tool.
 *
 * The names (`*.gateway.test`, a reserved TLD) resolve nowhere else: this test's clients
 * connect them to 127.0.0.1 themselves.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import type { LookupFunction } from 'node:net';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { parse } from 'yaml';
import { describeWithBinary, findBinary } from '../helpers/binaries.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { startPebble, type RunningPebble } from '../helpers/pebble.js';
import { eventually } from '../helpers/poll.js';
import { TestOAuthProvider, userApproves } from '../helpers/sdk-client.js';
import { startStreamableServer, type StreamableServer } from '../helpers/streamable-server.js';
import {
  startTraefik,
  TRAEFIK_STATIC_FILE,
  type RunningTraefik,
  type Yaml,
} from '../helpers/traefik.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const HOSTS = { auth: 'auth.gateway.test', mcp: 'mcp.gateway.test' };
/** Issuance normally takes a few seconds; the bound leaves room for a loaded machine. */
const ISSUANCE_TIMEOUT_MS = 45_000;

/** Resolves the test's two names to 127.0.0.1, and nothing else (fail closed). */
const loopbackLookup: LookupFunction = (hostname, options, callback) => {
  if (!Object.values(HOSTS).includes(hostname)) {
    callback(Object.assign(new Error(`not a test name: ${hostname}`), { code: 'ENOTFOUND' }), '');
  } else if (options.all) {
    callback(null, [{ address: '127.0.0.1', family: 4 }]);
  } else {
    callback(null, '127.0.0.1', 4);
  }
};

interface Served {
  authorized: boolean;
  error: string | undefined;
  certificate: PeerCertificate | undefined;
}

/** Connects to Traefik as `servername`, trusting only `ca`; what it was served. */
function served(port: number, servername: string, ca: string): Promise<Served> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername, ca: [ca] });
    socket.setTimeout(2_000, () => socket.destroy());
    socket.once('secureConnect', () => {
      resolve({
        authorized: socket.authorized,
        error: socket.authorizationError?.message,
        certificate: socket.getPeerCertificate(),
      });
      socket.end();
    });
    socket.once('error', (error) =>
      resolve({ authorized: false, error: error.message, certificate: undefined }),
    );
    socket.once('close', () =>
      resolve({ authorized: false, error: 'closed', certificate: undefined }),
    );
  });
}

/** A plain-http request to the `web` entry point: status and Location. */
function plainHttp(port: number, method: string, host: string, path: string) {
  return new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, headers: { host: `${host}:${port}` }, agent: false },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: res.headers.location });
      },
    );
    req.once('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

/** The programs this test runs; the first one missing is reported (binaries.ts). */
const PROGRAMS = ['pebble', 'pebble-challtestsrv', 'traefik'];
const firstMissing = PROGRAMS.find((name) => findBinary(name) === undefined);

describeWithBinary(firstMissing ?? 'traefik', 'Traefik ACME with Pebble', () => {
  let pebble: RunningPebble;
  let traefik: RunningTraefik;
  let gw: RunningGateway;
  let server: StreamableServer;
  let agent: Agent;
  let issuer: string;
  let resource: string;
  /** The static configuration Traefik ran. */
  let ran: Yaml;
  /** Every request the SDK made: method, URL, status. */
  const requests: string[] = [];

  /** The SDK's fetch: undici, trusting Pebble's root only, the test names on loopback. */
  const tlsFetch: FetchLike = async (url, init) => {
    const response = await undiciFetch(url, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: agent,
    });
    requests.push(`${init?.method ?? 'GET'} ${String(url)} ${response.status}`);
    return response as unknown as Response;
  };

  beforeAll(async () => {
    pebble = await startPebble();
    agent = new Agent({ connect: { ca: pebble.root, lookup: loopbackLookup } });
    server = await startStreamableServer();
    ({ proxy: traefik, gw } = await startGatewayBehind(
      (authUrl) =>
        startTraefik({
          authUrl,
          routes: [{ path: '/mcp', upstream: server.url }],
          acme: { caServer: pebble.directoryUrl },
          hosts: HOSTS,
          env: { LEGO_CA_CERTIFICATES: pebble.directoryCaFile },
          // Pebble validates on Traefik's websecure port, known once the harness has picked it.
          staticConfig: (config) => {
            pebble.validateAt(
              Number(String(config.entryPoints.websecure.address).split(':').pop()),
            );
            ran = structuredClone(config);
          },
        }),
      (started) => {
        issuer = started.authHostUrl;
        resource = `${started.url}/mcp`;
        return () => ({
          issuer,
          resources: [{ url: resource, name: 'ACME MCP server', scopes: ['mcp:tools'] }],
        });
      },
    ));
  });

  afterAll(async () => {
    // The client's keep-alive connections first: Traefik waits for open ones when stopping.
    await agent?.close();
    await traefik?.stop();
    await gw?.stop();
    await server?.stop();
    await pebble?.stop();
  });

  it('runs the shipped resolver, changed only where a production user would', () => {
    const shipped = parse(readFileSync(TRAEFIK_STATIC_FILE, 'utf8')) as Yaml;
    const resolvers = structuredClone(shipped.certificatesResolvers) as Yaml;
    // Production: Let's Encrypt's directory (no caServer: Traefik's default), a volume.
    expect(resolvers.letsencrypt.acme.caServer).toBeUndefined();
    resolvers.letsencrypt.acme.caServer = pebble.directoryUrl;
    resolvers.letsencrypt.acme.storage = ran.certificatesResolvers.letsencrypt.acme.storage;
    expect(ran.certificatesResolvers).toEqual(resolvers);
    expect(ran.entryPoints.websecure.http.tls).toEqual(shipped.entryPoints.websecure.http.tls);
    expect(ran.entryPoints.web.http).toEqual(shipped.entryPoints.web.http);
  });

  it('serves each host a certificate for its name that chains to Pebble’s root', async () => {
    const last: Record<string, Served> = {};
    const allServed = async () => {
      for (const name of Object.values(HOSTS)) {
        last[name] = await served(traefik.port, name, pebble.root);
      }
      return Object.values(last).every((result) => result.authorized);
    };
    // Traefik does not retry a failed order soon: its error ends the wait.
    await eventually(
      async () => (await allServed()) || traefik.errors().length > 0,
      ISSUANCE_TIMEOUT_MS,
    );
    if (!(await allServed())) {
      throw new Error(
        `no certificate from Pebble: ${JSON.stringify(last)}\n` +
          `traefik:\n${traefik.output()}\npebble:\n${pebble.output()}`,
      );
    }
    for (const name of Object.values(HOSTS)) {
      expect(last[name]!.certificate!.subjectaltname).toBe(`DNS:${name}`);
      expect(last[name]!.certificate!.issuer.CN).toMatch(/^Pebble Intermediate CA/);
    }
    // Pebble validated the challenges Traefik answered, one connection per name at least.
    expect(pebble.validations()).toBeGreaterThanOrEqual(Object.values(HOSTS).length);
    // Not merely any certificate: the same connection, trusting the directory's test CA
    // instead of Pebble's root, is refused.
    const untrusted = await served(traefik.port, HOSTS.mcp, pebble.directoryCa);
    expect(untrusted).toMatchObject({
      authorized: false,
      error: 'unable to get local issuer certificate',
    });
  });

  it('redirects plain http on the web entry point permanently to https', async () => {
    const get = await plainHttp(traefik.webPort!, 'GET', HOSTS.mcp, '/mcp');
    expect(get).toEqual({ status: 301, location: resource });
    const post = await plainHttp(traefik.webPort!, 'POST', HOSTS.mcp, '/mcp');
    expect(post).toEqual({ status: 308, location: resource });
    const auth = await plainHttp(traefik.webPort!, 'GET', HOSTS.auth, '/authorize?x=1');
    expect(auth).toEqual({ status: 301, location: `${issuer}/authorize?x=1` });
  });

  it('runs the SDK client’s whole OAuth flow and a tool call over verified TLS', async () => {
    const provider = new TestOAuthProvider();
    const transport = new StreamableHTTPClientTransport(new URL(resource), {
      authProvider: provider,
      fetch: tlsFetch,
    });
    await expect(
      new Client({ name: 'acme-e2e', version: '1.0.0' }).connect(transport),
    ).rejects.toThrow(UnauthorizedError);
    const authorizationUrl = provider.authorizationUrl!;
    expect(authorizationUrl.origin).toBe(issuer);
    expect(authorizationUrl.searchParams.get('resource')).toBe(resource);

    const login = await userApproves(new TestUserAgent({ dispatcher: agent }), authorizationUrl);
    expect(login.url.searchParams.get('iss')).toBe(issuer);
    expect(login.hops.every((hop) => hop.url.startsWith(`${issuer}/`))).toBe(true);
    await transport.finishAuth(login.url.searchParams.get('code')!);

    const client = new Client({ name: 'acme-e2e', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(resource), {
        authProvider: provider,
        fetch: tlsFetch,
      }),
    );
    const tools = await client.listTools();
    expect(tools.tools.map((tool) => tool.name)).toEqual(
      expect.arrayContaining(['whoami', 'echo']),
    );
    const whoami = await client.callTool({ name: 'whoami', arguments: {} });
    expect(JSON.stringify(whoami.content)).toContain('alice@example.com');
    await client.close();

    // Every step, in order, over https to the public names.
    const steps = [
      `POST ${resource} 401`,
      `GET ${traefik.url}/.well-known/oauth-protected-resource/mcp 200`,
      `GET ${issuer}/.well-known/oauth-authorization-server 200`,
      `POST ${issuer}/register 201`,
      `POST ${issuer}/token 200`,
      `POST ${resource} 200`,
    ];
    let from = 0;
    for (const step of steps) {
      const at = requests.indexOf(step, from);
      expect({ step, found: at >= 0, requests }).toEqual({ step, found: true, requests });
      from = at + 1;
    }
  });

  it('logged no error in Traefik', () => {
    expect(traefik.errors()).toEqual([]);
  });
});
