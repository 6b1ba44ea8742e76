/**
 * The compose stack without Docker: compose.yaml's services run as native processes from the
 * same files, so a test can drive the deployed stack end to end and then show that what ran is
 * what compose.yaml declares (tests/deploy/compose-native.test.ts, with the checks of
 * ./compose-native-check.ts; docs/deployment.md, "What the tests prove without Docker").
 *
 * How each service is derived ({@link deriveService}):
 * - Images compose builds (`auth`: ./Dockerfile; `mcp-example`, `mcp-legacy`:
 *   examples/mcp-servers/Dockerfile): rebuilt under a temp root standing for the image's file
 *   system (./compose-image.ts). The command is compose's `command`, else the image's CMD,
 *   `node` being this Node (the image's version), in the image's WORKDIR; the environment is
 *   exactly PATH, the image's ENV and compose's `environment`.
 * - Pinned images (`redis`, `traefik`): the same program installed here, run with compose's
 *   command as the image's entrypoint runs it ({@link UPSTREAM_IMAGES}); Traefik through
 *   ./traefik.ts, whose overlay is documented there.
 *
 * The one change is the address map: every `service:port` compose exposes or publishes is served
 * on 127.0.0.1 at a free port, and what names such an address is rewritten through the map and
 * nothing else: a copy of a bind-mounted file naming one (deploy/gateway.yaml: `listen`, the
 * store), an environment value (`PORT`; the listen address 0.0.0.0 becomes 127.0.0.1), Traefik's
 * service URLs. Container paths become the bind mount's source (or that copy, kept in the image's
 * temp root at the mount's target), a named volume's temp directory (shared as compose shares
 * it) or the image's temp root. Clients reach the public names (AUTH_HOST, MCP_HOST, port 443)
 * through {@link addressMapDispatcher}. The .env values that are addresses are the test's:
 * INTERNAL_SUBNET is loopback, OIDC_ISSUER a real oidc-provider (./upstream-idp.ts) whose test
 * CA the auth service trusts through NODE_EXTRA_CA_CERTS, the one variable compose does not set
 * ({@link EXTRA_ENVIRONMENT}).
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect, isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { Agent, buildConnector, fetch as undiciFetch, type Dispatcher } from 'undici';
import { parse, stringify } from 'yaml';
import { findBinary } from './binaries.js';
import { buildImage } from './compose-image.js';
import {
  buildContext,
  containerEnvironment,
  exposedPorts,
  filledIn,
  imageStage,
  interpolate,
  isUnder,
  mountsOf,
  normalizeContext,
  parseDotEnv,
  parseYaml,
  publishedPorts,
} from './compose-model.js';
import { isRecord, record, strings, type Json } from './config-files.js';
import { getFreePort, isPortTaken } from './ports.js';
import { createTestCa, type TestCa } from './test-ca.js';
import { startTraefik, type RunningTraefik } from './traefik.js';
import { startUpstreamIdp, type UpstreamIdp, type UpstreamUser } from './upstream-idp.js';
import { spawnWatched, waitUntilReady, type WatchedProcess } from './watched-process.js';

const ROOT = path.resolve('.');
export const COMPOSE_FILE = 'compose.yaml';
export const ENV_EXAMPLE = '.env.example';

/** compose.yaml's services the native run leaves out, and why (docs/deployment.md). */
export const NOT_RUN: Record<string, string> = {
  crowdsec: 'CrowdSec and the `crowdsec` middleware: tests/crowdsec/ runs them on the same files',
  wireguard: 'optional (profile `tunnel`), host network and NET_ADMIN: tests/tunnel/',
};
/** Middlewares left out of Traefik's chains (their service is not run). */
export const LEFT_OUT_MIDDLEWARES = ['crowdsec'];
/** Container ports compose declares that the native run does not serve, and why. */
export const PORTS_NOT_SERVED: Record<string, string> = {
  'traefik:80': 'the `web` entry point (redirect to https) runs in the Traefik harness with ACME',
};
/** Environment the native run adds to compose's, per service, and why. */
export const EXTRA_ENVIRONMENT: Record<string, Record<string, string>> = {
  auth: { NODE_EXTRA_CA_CERTS: 'trusts the test CA of the test IdP (the image trusts public CAs)' },
};
/** The listen address inside a container, and natively. */
export const WILDCARD = '0.0.0.0';
export const LOOPBACK = '127.0.0.1';
/** The harness's Traefik writes its overlays here (./traefik.ts). */
const TRAEFIK_STATIC = '/etc/traefik/traefik.yml';
const TRAEFIK_DYNAMIC_DIR = '/etc/traefik/dynamic';

export interface UpstreamImage {
  /** The image's ENTRYPOINT and CMD, from its published Dockerfile. */
  entrypoint: string[];
  cmd: string[];
  workdir: string;
  /** The port its program listens on (the image's EXPOSE), when it is not run by a harness. */
  port?: string;
}

/**
 * What the pinned images run. Redis's entrypoint runs `redis-server …` as given (as user redis,
 * in WORKDIR /data, the `redis-data` volume). Traefik's runs `traefik`, which finds
 * /etc/traefik/traefik.yml on its default search path; natively the harness names its overlay of
 * that file with --configFile. A new tag must be looked up and entered here.
 */
export const UPSTREAM_IMAGES: Record<string, UpstreamImage> = {
  'redis:7.4.11-alpine': {
    entrypoint: ['docker-entrypoint.sh'],
    cmd: ['redis-server'],
    workdir: '/data',
    port: '6379',
  },
  'traefik:v3.7.15': { entrypoint: ['/entrypoint.sh'], cmd: ['traefik'], workdir: '/' },
};

/** The deployment's files as declared (a test may pass copies broken on purpose). */
export interface Declared {
  /** compose.yaml as parsed, not interpolated. */
  compose: Json;
  /** Dockerfile text by normalized build context. */
  dockerfiles: Record<string, string>;
  /** A repository file's text (bind mount sources). */
  read(file: string): string;
}

/** Where the native run put things: the address map and the temp directories. */
export interface RunPlaces {
  dotenv: Record<string, string>;
  /** `service:port` → the loopback port serving it. */
  addresses: Record<string, number>;
  /** Named volume → directory. */
  volumes: Record<string, string>;
  /** Build context → the temp root standing for its image's file system. */
  imageRoots: Record<string, string>;
  /** Container path → native path of the Traefik harness's overlay files. */
  traefikFiles: Record<string, string>;
  /** The test CA's PEM file (NODE_EXTRA_CA_CERTS). */
  caFile: string;
}

/** One native process for a compose service. */
export interface DerivedService {
  /** Program (absolute) and arguments. */
  argv: string[];
  cwd: string;
  /** The whole environment. */
  env: Record<string, string>;
  /** Copies of bind-mounted files with the address map applied: native path → text. */
  copies: Record<string, string>;
}

export function readRepoFile(file: string): string {
  return readFileSync(path.join(ROOT, file), 'utf8');
}

/** The project's own files, as they are. */
export function declaredFromRepo(): Declared {
  const compose = parseYaml(readRepoFile(COMPOSE_FILE));
  const dockerfiles: Record<string, string> = {};
  for (const service of Object.values(record(compose.services))) {
    const context = buildContext(record(service));
    if (context === undefined) continue;
    const key = normalizeContext(context);
    dockerfiles[key] = readRepoFile(path.posix.join(key, 'Dockerfile'));
  }
  return { compose, dockerfiles, read: readRepoFile };
}

/** The services the native run starts: compose's, less {@link NOT_RUN}. */
export function nativeServices(compose: Json): string[] {
  return Object.keys(record(compose.services)).filter((name) => !(name in NOT_RUN));
}

/** Every container port of a service compose declares (expose, and ports' targets). */
export function declaredPorts(service: Json): string[] {
  return [...new Set([...exposedPorts(service), ...publishedPorts(service)])].sort();
}

export function serviceOf(compose: Json, name: string): Json {
  return record(record(compose.services)[name]);
}

/** The native path of a container path of `service`. */
export function nativePath(
  compose: Json,
  places: RunPlaces,
  service: string,
  containerPath: string,
): string {
  if (service === 'traefik' && places.traefikFiles[containerPath] !== undefined) {
    return places.traefikFiles[containerPath];
  }
  const svc = serviceOf(compose, service);
  const mount = mountsOf(svc)
    .filter((m) => isUnder(containerPath, m.target))
    .sort((a, b) => b.target.length - a.target.length)[0];
  const context = buildContext(svc);
  const imageRoot =
    context === undefined ? undefined : places.imageRoots[normalizeContext(context)];
  if (mount === undefined) {
    if (imageRoot === undefined) throw new Error(`${service}: ${containerPath} is in no mount`);
    return path.join(imageRoot, containerPath);
  }
  const rest = containerPath.slice(mount.target.replace(/\/+$/, '').length);
  if (mount.type === 'volume') {
    const dir = places.volumes[mount.source];
    if (dir === undefined) throw new Error(`${service}: volume ${mount.source} has no directory`);
    return dir + rest;
  }
  // A built image's bind-mounted YAML runs as its copy through the address map, at the target.
  if (imageRoot !== undefined && isYamlFile(mount.source) && rest === '') {
    return path.join(imageRoot, containerPath);
  }
  return path.join(ROOT, mount.source) + rest;
}

function isYamlFile(file: string): boolean {
  return /\.ya?ml$/.test(file);
}

/** A configuration file's value through the address map. */
function mapValue(value: unknown, map: (text: string) => string, listen: ListenMap): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((item) => mapValue(item, map, listen));
  if (!isRecord(value)) return value;
  const mapped = Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, mapValue(v, map, listen)]),
  );
  // `listen: { host: 0.0.0.0, port: 8787 }`: the container's listening socket.
  const port = typeof value.port === 'number' ? listen(String(value.port)) : undefined;
  if (value.host === WILDCARD && port !== undefined) return { ...mapped, host: LOOPBACK, port };
  return mapped;
}

type ListenMap = (containerPort: string) => number | undefined;

/** The string mapper of one service: URLs naming `service:port`, and its container paths. */
function stringMapper(compose: Json, places: RunPlaces, service: string): (text: string) => string {
  const targets = mountsOf(serviceOf(compose, service)).map((m) => m.target);
  return (text) => {
    if (text === WILDCARD) return LOOPBACK;
    const url = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(text);
    if (url?.[1] !== undefined && places.addresses[url[1]] !== undefined) {
      return text.replace(`//${url[1]}`, `//${LOOPBACK}:${places.addresses[url[1]]}`);
    }
    if (text.startsWith('/') && targets.some((target) => isUnder(text, target))) {
      return nativePath(compose, places, service, text);
    }
    return text;
  };
}

/** The environment of a built service: PATH, the image's ENV, compose's, the extras. */
function builtEnvironment(
  compose: Json,
  places: RunPlaces,
  service: string,
  imageEnv: Record<string, string>,
  imageRoot: string,
): Record<string, string> {
  const map = stringMapper(compose, places, service);
  const ports = declaredPorts(serviceOf(compose, service));
  // A value that is a port the service declares (PORT: '3001') is its listening port.
  const mapEnv = (env: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(env).map(([name, value]) => [
        name,
        ports.includes(value) ? String(places.addresses[`${service}:${value}`]) : map(value),
      ]),
    );
  const extra: Record<string, string> = {};
  if (EXTRA_ENVIRONMENT[service]?.NODE_EXTRA_CA_CERTS) extra.NODE_EXTRA_CA_CERTS = places.caFile;
  return {
    PATH: nativePathVariable(imageRoot),
    ...mapEnv(imageEnv),
    ...mapEnv(containerEnvironment(serviceOf(compose, service), places.dotenv)),
    ...extra,
  };
}

/** The system part of PATH (that of the node, redis and traefik images). */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** PATH natively: a built image's /usr/local/bin and this Node's directory, then the system's. */
export function nativePathVariable(imageRoot?: string): string {
  if (imageRoot === undefined) return SYSTEM_PATH;
  const own = [path.join(imageRoot, 'usr/local/bin'), path.dirname(process.execPath)];
  return [...own, SYSTEM_PATH].join(path.delimiter);
}

/**
 * The native process for a compose service (not Traefik: the harness derives its own), from the
 * declared files and where the run put things. The launcher starts exactly this; the checks
 * compare what ran with it.
 */
export function deriveService(
  declared: Declared,
  places: RunPlaces,
  service: string,
): DerivedService {
  const compose = record(interpolate(declared.compose, places.dotenv));
  const svc = serviceOf(compose, service);
  const command = Array.isArray(svc.command) ? strings(svc.command) : undefined;
  const context = buildContext(svc);
  if (context === undefined) {
    const image = UPSTREAM_IMAGES[String(svc.image)];
    if (image === undefined) throw new Error(`${service}: image ${String(svc.image)} not known`);
    const [program = '', ...args] = command ?? image.cmd;
    if (program !== 'redis-server') throw new Error(`${service}: no native run for ${program}`);
    const port = places.addresses[`${service}:${image.port}`];
    return {
      argv: [findBinary(program) ?? program, ...args, '--port', String(port), '--bind', LOOPBACK],
      cwd: nativePath(compose, places, service, image.workdir),
      env: { PATH: nativePathVariable() },
      copies: {},
    };
  }
  const key = normalizeContext(context);
  const stage = imageStage(declared.dockerfiles[key] ?? '');
  const imageRoot = places.imageRoots[key] ?? '';
  const [program = '', ...args] = command ?? stage.cmd ?? [];
  if (program !== 'node') throw new Error(`${service}: command ${program} is not node`);
  const map = stringMapper(compose, places, service);
  const listen: ListenMap = (port) => places.addresses[`${service}:${port}`];
  const copies: Record<string, string> = {};
  for (const mount of mountsOf(svc).filter((m) => m.type === 'bind' && isYamlFile(m.source))) {
    const target = nativePath(compose, places, service, mount.target);
    const original = parse(declared.read(path.posix.normalize(mount.source))) as unknown;
    copies[target] = stringify(mapValue(original, map, listen));
  }
  return {
    argv: [process.execPath, ...args.map(map)],
    cwd: nativePath(compose, places, service, stage.workdir),
    env: builtEnvironment(compose, places, service, stage.env, imageRoot),
    copies,
  };
}

// ---------------------------------------------------------------------------------------------
// Clients

const isLoopbackName = (host: string) => host === 'localhost' || host === LOOPBACK;

/**
 * A dispatcher that connects `name:port` (the public names) to 127.0.0.1 at the mapped port,
 * with TLS for the name and the test CA trusted; loopback goes as is; anything else is refused.
 */
export function addressMapDispatcher(names: Record<string, number>, ca: string): Agent {
  const connector = buildConnector({ ca });
  return new Agent({
    connect(options, callback) {
      const port = Number(options.port || (options.protocol === 'https:' ? 443 : 80));
      const mapped = names[`${options.hostname}:${port}`];
      if (mapped === undefined && !isLoopbackName(options.hostname)) {
        callback(new Error(`${options.hostname}:${port} is not in the address map`), null);
        return;
      }
      const servername = isIP(options.hostname) ? undefined : options.hostname;
      connector(
        { ...options, hostname: LOOPBACK, port: String(mapped ?? port), servername },
        callback,
      );
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Starting

export interface NativeStack {
  declared: Declared;
  places: RunPlaces;
  /** compose.yaml interpolated with the run's .env. */
  compose: Json;
  /** The native processes this helper started, as derived. */
  processes: Record<string, DerivedService & { watched: WatchedProcess }>;
  traefik: RunningTraefik;
  idp: UpstreamIdp;
  ca: TestCa;
  /** `https://<AUTH_HOST>` and `https://<MCP_HOST>`. */
  authOrigin: string;
  mcpOrigin: string;
  /** Connects the public names to Traefik, trusting the test CA. */
  dispatcher: Dispatcher;
  fetch: FetchLike;
  stop(): Promise<void>;
}

export interface NativeStackOptions {
  /** The test IdP's users, by id (`loginAs`). */
  users: Record<string, UpstreamUser>;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const START_ATTEMPTS = 3;

/** Starts a derived process; resolves once `GET /healthz` (or a TCP connect) answers. */
async function launch(
  service: string,
  derived: DerivedService,
  port: number,
  http: boolean,
): Promise<WatchedProcess> {
  for (const [file, text] of Object.entries(derived.copies)) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
  // Exactly this environment: spawnWatched adds process.env, whose names are unset here.
  const unset = Object.fromEntries(Object.keys(process.env).map((name) => [name, undefined]));
  const [program = '', ...args] = derived.argv;
  const watched = spawnWatched(program, args, { ...unset, ...derived.env }, derived.cwd);
  await waitUntilReady(watched, () => (http ? healthy(port) : accepts(port)), {
    what: `${service} to answer on ${port}`,
    timeoutMs: READY_TIMEOUT_MS,
  });
  return watched;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: LOOPBACK, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(500, () => done(false));
  });
}

async function healthy(port: number): Promise<boolean> {
  const response = await fetch(`http://${LOOPBACK}:${port}/healthz`).catch(() => undefined);
  await response?.body?.cancel();
  return response?.status === 200;
}

/** .env.example filled in as an operator would, with the test's addresses. */
export function nativeDotEnv(idpIssuer: string): Record<string, string> {
  return {
    ...filledIn(parseDotEnv(readRepoFile(ENV_EXAMPLE))),
    OIDC_ISSUER: idpIssuer,
    INTERNAL_SUBNET: `${LOOPBACK}/32`,
  };
}

/** Starts compose.yaml's services natively (see the module comment); stop() ends them all. */
export async function startNativeStack(options: NativeStackOptions): Promise<NativeStack> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startOnce(options);
    } catch (error) {
      if (!isPortTaken(error) || attempt >= START_ATTEMPTS) throw error;
    }
  }
}

async function startOnce(options: NativeStackOptions): Promise<NativeStack> {
  const declared = declaredFromRepo();
  const base = nativeDotEnv('https://localhost');
  const first = record(interpolate(declared.compose, base));
  const edgeEnv = containerEnvironment(serviceOf(first, 'traefik'), {});
  const hosts = { auth: edgeEnv.AUTH_HOST ?? '', mcp: edgeEnv.MCP_HOST ?? '' };
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const ca = await createTestCa({ dnsNames: ['localhost', hosts.auth, hosts.mcp] });
    stops.push(() => ca.cleanup());
    const root = await mkdtemp(path.join(tmpdir(), 'mcp-gateway-compose-'));
    stops.push(() => rm(root, { recursive: true, force: true }));
    const gateway = parse(readRepoFile('deploy/gateway.yaml')) as Json;
    const idp = await startUpstreamIdp({
      ca,
      clientId: base.OIDC_CLIENT_ID ?? '',
      clientSecret: base.OIDC_CLIENT_SECRET ?? '',
      redirectUris: (record(gateway.login).oidc as Json[]).map(
        (provider) => `https://${hosts.auth}/login/callback/${String(provider.id)}`,
      ),
      users: options.users,
    });
    stops.push(() => idp.stop());
    const places = await preparePlaces(declared, root, idp.issuer, ca.caFile);
    const compose = record(interpolate(declared.compose, places.dotenv));
    const processes: NativeStack['processes'] = {};
    const start = async (service: string, http: boolean) => {
      const derived = deriveService(declared, places, service);
      const port = places.addresses[`${service}:${declaredPorts(serviceOf(compose, service))[0]}`];
      const watched = await launch(service, derived, port ?? 0, http);
      stops.push(() => watched.stop(STOP_TIMEOUT_MS));
      processes[service] = { ...derived, watched };
    };
    await start('redis', false);
    await Promise.all([start('mcp-example', true), start('mcp-legacy', true)]);
    const traefik = await startTraefik({
      authUrl: `http://${LOOPBACK}:${places.addresses['auth:8787']}`,
      routes: [],
      hosts,
      certificate: { certFile: ca.certFile, keyFile: ca.keyFile },
      upstreams: Object.fromEntries(
        Object.entries(places.addresses).map(([address, port]) => [address, `${LOOPBACK}:${port}`]),
      ),
      env: containerEnvironment(serviceOf(compose, 'traefik'), places.dotenv),
    });
    stops.push(() => traefik.stop());
    placeTraefik(places, traefik);
    await start('auth', true);

    const names = { [`${hosts.auth}:443`]: traefik.port, [`${hosts.mcp}:443`]: traefik.port };
    const dispatcher = addressMapDispatcher(names, ca.ca);
    stops.push(() => dispatcher.close());
    return {
      declared,
      places,
      compose,
      processes,
      traefik,
      idp,
      ca,
      authOrigin: `https://${hosts.auth}`,
      mcpOrigin: `https://${hosts.mcp}`,
      dispatcher,
      fetch: (url, init) =>
        undiciFetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The address map, volumes and images of a run (Traefik's places come once it runs). */
async function preparePlaces(
  declared: Declared,
  root: string,
  idpIssuer: string,
  caFile: string,
): Promise<RunPlaces> {
  const dotenv = nativeDotEnv(idpIssuer);
  const compose = record(interpolate(declared.compose, dotenv));
  const addresses: Record<string, number> = {};
  for (const service of nativeServices(compose)) {
    if (service === 'traefik') continue;
    for (const port of declaredPorts(serviceOf(compose, service))) {
      addresses[`${service}:${port}`] = await getFreePort();
    }
  }
  const volumes: Record<string, string> = {};
  for (const name of Object.keys(record(compose.volumes))) {
    volumes[name] = path.join(root, 'volumes', name);
    await mkdir(volumes[name], { recursive: true });
  }
  const imageRoots: Record<string, string> = {};
  const contexts = new Set(
    nativeServices(compose).flatMap((name) => {
      const context = buildContext(serviceOf(compose, name));
      return context === undefined ? [] : [normalizeContext(context)];
    }),
  );
  await Promise.all(
    [...contexts].map(async (context, index) => {
      imageRoots[context] = path.join(root, 'images', String(index));
      await buildImage(context, declared.dockerfiles[context] ?? '', imageRoots[context]);
    }),
  );
  return { dotenv, addresses, volumes, imageRoots, traefikFiles: {}, caFile };
}

/** Traefik's port, volumes and overlay files, from the running harness. */
function placeTraefik(places: RunPlaces, traefik: RunningTraefik): void {
  const dir = path.dirname(traefik.dynamicDir);
  places.addresses['traefik:443'] = traefik.port;
  places.volumes['traefik-dynamic'] = traefik.dynamicDir;
  places.volumes['traefik-logs'] = dir;
  places.traefikFiles[TRAEFIK_STATIC] = path.join(dir, 'traefik.yml');
  places.traefikFiles[`${TRAEFIK_DYNAMIC_DIR}/dynamic_config.yaml`] = path.join(
    traefik.dynamicDir,
    'dynamic_config.yaml',
  );
}
