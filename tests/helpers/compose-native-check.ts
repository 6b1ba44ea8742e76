/**
 * What the native compose run (./compose-native.ts) actually ran, read from outside the
 * processes (/proc: the process listening on each mapped port, its arguments, environment and
 * working directory; the running Redis's CONFIG GET; the files the processes were pointed at),
 * and the checks that it is exactly what compose.yaml and the Dockerfiles declare, through the
 * address map and nothing else.
 *
 * The checks take the declaration as an argument, so a test can hand them a copy of compose.yaml
 * broken on purpose and see them fail: what they compare against is derived from the files
 * given, never from the run.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import { containerEnvironment, interpolate, mountsOf } from './compose-model.js';
import {
  declaredPorts,
  deriveService,
  LEFT_OUT_MIDDLEWARES,
  LOOPBACK,
  nativePath,
  nativeServices,
  NOT_RUN,
  PORTS_NOT_SERVED,
  serviceOf,
  type Declared,
  type NativeStack,
  type RunPlaces,
} from './compose-native.js';
import { isRecord, record, strings, type Json } from './config-files.js';

export interface ObservedProcess {
  pid: number;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
}

export interface Observed {
  /** `service:port` → the process listening on its loopback port, if any. */
  listeners: Record<string, ObservedProcess | undefined>;
  /** The running Redis's settings (CONFIG GET *). */
  redisConfig: Record<string, string>;
  /** Text of the files the processes were pointed at (arguments, environment), by path. */
  files: Record<string, string>;
}

/** Inodes of the TCP sockets listening on `port`. */
async function listeningInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1]?.split(':').at(-1);
      if (fields[3] === '0A' && local !== undefined && parseInt(local, 16) === port) {
        inodes.add(fields[9] ?? '');
      }
    }
  }
  return inodes;
}

/** The process holding a listening socket on `port` (the lowest pid if several share it). */
export async function listenerOf(port: number): Promise<ObservedProcess | undefined> {
  const inodes = await listeningInodes(port);
  if (inodes.size === 0) return undefined;
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  for (const pid of pids.sort((a, b) => a - b)) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      if (inode !== undefined && inodes.has(inode)) return processInfo(pid);
    }
  }
  return undefined;
}

async function processInfo(pid: number): Promise<ObservedProcess> {
  const zeroSeparated = async (file: string) =>
    (await readFile(`/proc/${pid}/${file}`, 'utf8')).split('\0').filter((part) => part !== '');
  const env: Record<string, string> = {};
  for (const entry of await zeroSeparated('environ')) {
    const index = entry.indexOf('=');
    env[entry.slice(0, index)] = entry.slice(index + 1);
  }
  return {
    pid,
    argv: await zeroSeparated('cmdline'),
    env,
    cwd: await readlink(`/proc/${pid}/cwd`),
  };
}

/** The running Redis's settings, all of them (CONFIG GET *). */
async function redisSettings(port: number): Promise<Record<string, string>> {
  const redis = new Redis({ host: LOOPBACK, port, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const pairs = (await redis.config('GET', '*')) as string[];
    const settings: Record<string, string> = {};
    for (let i = 0; i + 1 < pairs.length; i += 2) settings[pairs[i] ?? ''] = pairs[i + 1] ?? '';
    return settings;
  } finally {
    redis.disconnect();
  }
}

/** What ran: every mapped address's listener, Redis's settings, the files given. */
export async function observe(stack: NativeStack): Promise<Observed> {
  const listeners: Observed['listeners'] = {};
  for (const [address, port] of Object.entries(stack.places.addresses)) {
    listeners[address] = await listenerOf(port);
  }
  const redisPort = stack.places.addresses['redis:6379'] ?? 0;
  const files: Record<string, string> = {};
  for (const listener of Object.values(listeners)) {
    const values = [...(listener?.argv ?? []), ...Object.values(listener?.env ?? {})];
    for (const value of values.map((v) => v.replace(/^--[a-zA-Z]+=/, ''))) {
      if (!value.startsWith('/') || value in files) continue;
      const text = await readFile(value, 'utf8').catch(() => undefined);
      if (text !== undefined) files[value] = text;
    }
  }
  const dynamic = `${stack.traefik.dynamicDir}/dynamic_config.yaml`;
  files[dynamic] = await readFile(dynamic, 'utf8');
  return {
    listeners,
    redisConfig: await redisSettings(redisPort),
    files,
  };
}

// ---------------------------------------------------------------------------------------------
// The checks

/** Every way the observed run differs from the declaration; empty when it is the same. */
export function nativeRunProblems(
  declared: Declared,
  places: RunPlaces,
  observed: Observed,
): string[] {
  const compose = record(interpolate(declared.compose, places.dotenv));
  const problems = [...coverageProblems(compose, places, observed)];
  for (const service of nativeServices(compose)) {
    try {
      problems.push(...serviceProblems(declared, compose, places, observed, service));
    } catch (error) {
      problems.push(`${service}: ${(error as Error).message}`);
    }
  }
  return problems;
}

/** One service's process against its declaration (Traefik's against the harness's overlay). */
function serviceProblems(
  declared: Declared,
  compose: Json,
  places: RunPlaces,
  observed: Observed,
  service: string,
): string[] {
  return service === 'traefik'
    ? traefikProblems(declared, compose, places, observed)
    : processProblems(declared, places, observed, service);
}

/** Services and ports: each one run or excluded with a reason, nothing run that is not declared. */
function coverageProblems(compose: Json, places: RunPlaces, observed: Observed): string[] {
  const problems: string[] = [];
  const services = Object.keys(record(compose.services));
  for (const name of Object.keys(NOT_RUN).filter((n) => !services.includes(n))) {
    problems.push(`${name} is excluded from the native run but is no compose service`);
  }
  const declared = new Set<string>();
  for (const service of nativeServices(compose)) {
    for (const port of declaredPorts(serviceOf(compose, service))) {
      const address = `${service}:${port}`;
      declared.add(address);
      if (address in PORTS_NOT_SERVED) continue;
      if (places.addresses[address] === undefined) {
        problems.push(`compose declares ${address}, which the native run does not serve`);
      } else if (observed.listeners[address] === undefined) {
        problems.push(`nothing listens for ${address} on port ${places.addresses[address]}`);
      }
    }
  }
  for (const address of Object.keys(places.addresses)) {
    if (!declared.has(address)) {
      problems.push(`the native run serves ${address}, which compose does not declare`);
    }
  }
  for (const address of Object.keys(PORTS_NOT_SERVED).filter((a) => !declared.has(a))) {
    problems.push(`${address} is listed as not served but compose does not declare it`);
  }
  return problems;
}

/** The listener on one of the service's mapped ports (they must all be the same process). */
function listenerFor(places: RunPlaces, observed: Observed, service: string) {
  const pids = Object.keys(places.addresses)
    .filter((address) => address.startsWith(`${service}:`))
    .map((address) => observed.listeners[address]);
  return pids.every((p) => p?.pid === pids[0]?.pid) ? pids[0] : undefined;
}

const describeDiff = (what: string, ran: unknown, declared: unknown) =>
  `${what}: ran ${JSON.stringify(ran)}, declared ${JSON.stringify(declared)}`;

/** Redis and the built services: the process against {@link deriveService}. */
function processProblems(
  declared: Declared,
  places: RunPlaces,
  observed: Observed,
  service: string,
): string[] {
  let expected;
  try {
    expected = deriveService(declared, places, service);
  } catch (error) {
    return [`${service}: ${(error as Error).message}`];
  }
  const ran = listenerFor(places, observed, service);
  if (ran === undefined) return [`${service}: no single process listens on its ports`];
  const problems: string[] = [];
  if (service === 'redis') {
    // Redis writes its process title over its arguments and environment: its settings are read
    // from the server instead (compose gives it no environment).
    const args = expected.argv.slice(1);
    for (let i = 0; i < args.length; i += 2) {
      const name = (args[i] ?? '').replace(/^--/, '');
      if (observed.redisConfig[name] !== args[i + 1]) {
        problems.push(describeDiff(`redis ${name}`, observed.redisConfig[name], args[i + 1]));
      }
    }
    if (observed.redisConfig.dir !== expected.cwd) {
      problems.push(describeDiff('redis dir (WORKDIR)', observed.redisConfig.dir, expected.cwd));
    }
  } else if (!isDeepStrictEqual(ran.argv, expected.argv)) {
    problems.push(describeDiff(`${service} command`, ran.argv, expected.argv));
  }
  if (ran.cwd !== expected.cwd)
    problems.push(describeDiff(`${service} cwd`, ran.cwd, expected.cwd));
  if (service !== 'redis' && !isDeepStrictEqual(sorted(ran.env), sorted(expected.env))) {
    problems.push(describeDiff(`${service} environment`, sorted(ran.env), sorted(expected.env)));
  }
  for (const [file, text] of Object.entries(expected.copies)) {
    const given = observed.files[file];
    if (given === undefined) problems.push(`${service}: was given no file ${file}`);
    else if (!isDeepStrictEqual(parse(given), parse(text))) {
      problems.push(describeDiff(`${service} file ${file}`, parse(given), parse(text)));
    }
  }
  return problems;
}

const sorted = (env: Record<string, string>) =>
  Object.fromEntries(Object.entries(env).sort(([a], [b]) => a.localeCompare(b)));

/** The bind mount source of a container file of a service. */
function mountSource(compose: Json, service: string, target: string): string | undefined {
  return mountsOf(serviceOf(compose, service)).find((m) => m.target === target)?.source;
}

/**
 * Traefik: its environment has compose's; its static file is the harness's overlay of the mounted
 * traefik.yml on the mapped entry point; its dynamic file is the mounted dynamic_config.yaml with
 * every address mapped, the left-out middlewares removed and the routers' TLS on the test
 * certificate (the overlay of ./traefik.ts), nothing else changed.
 */
function traefikProblems(
  declared: Declared,
  compose: Json,
  places: RunPlaces,
  observed: Observed,
): string[] {
  const ran = listenerFor(places, observed, 'traefik');
  if (ran === undefined) return ['traefik: no single process listens on its ports'];
  const problems: string[] = [];
  const staticPath = nativePath(compose, places, 'traefik', '/etc/traefik/traefik.yml');
  // The image runs `traefik`, which finds /etc/traefik/traefik.yml itself; the harness names
  // its overlay of that file. (argv[0] is the binary a PATH shim may have exec'd.)
  const command = [path.basename(ran.argv[0] ?? ''), ...ran.argv.slice(1)];
  const declaredCommand = ['traefik', `--configFile=${staticPath}`];
  if (!isDeepStrictEqual(command, declaredCommand)) {
    problems.push(describeDiff('traefik command', command, declaredCommand));
  }
  const env = containerEnvironment(serviceOf(compose, 'traefik'), places.dotenv);
  for (const [name, value] of Object.entries(env)) {
    if (ran.env[name] !== value)
      problems.push(describeDiff(`traefik ${name}`, ran.env[name], value));
  }
  for (const name of Object.keys(ran.env).filter((n) => n.startsWith('TRAEFIK_'))) {
    problems.push(`traefik: ${name} is set natively, not by compose`);
  }
  const staticSource = mountSource(compose, 'traefik', '/etc/traefik/traefik.yml');
  const shippedStatic = record(parse(declared.read(String(staticSource))));
  const overlay = record(parse(observed.files[staticPath] ?? '{}'));
  const websecure = record(record(overlay.entryPoints).websecure);
  if (websecure.address !== `${LOOPBACK}:${places.addresses['traefik:443']}`) {
    problems.push(describeDiff('traefik websecure', websecure.address, 'traefik:443 mapped'));
  }
  const shippedWebsecure = record(record(shippedStatic.entryPoints).websecure);
  for (const key of ['forwardedHeaders', 'transport']) {
    if (!isDeepStrictEqual(websecure[key], shippedWebsecure[key])) {
      problems.push(
        describeDiff(`traefik websecure.${key}`, websecure[key], shippedWebsecure[key]),
      );
    }
  }
  const encoded = (entry: Json) => record(entry.http).encodedCharacters;
  if (!isDeepStrictEqual(encoded(websecure), encoded(shippedWebsecure))) {
    problems.push(
      describeDiff('traefik encodedCharacters', encoded(websecure), encoded(shippedWebsecure)),
    );
  }
  const accessLog = record(shippedStatic.accessLog);
  const expectedAccessLog = {
    ...accessLog,
    filePath: nativePath(compose, places, 'traefik', String(accessLog.filePath)),
  };
  if (!isDeepStrictEqual(overlay.accessLog, expectedAccessLog)) {
    problems.push(describeDiff('traefik accessLog', overlay.accessLog, expectedAccessLog));
  }
  const providerDir = String(record(record(shippedStatic.providers).file).directory);
  const dir = record(record(overlay.providers).file).directory;
  if (dir !== nativePath(compose, places, 'traefik', providerDir)) {
    problems.push(describeDiff('traefik file provider', dir, providerDir));
  }
  problems.push(...dynamicProblems(declared, compose, places, observed));
  return problems;
}

/** The dynamic file Traefik ran against the mounted one, through the overlay. */
function dynamicProblems(
  declared: Declared,
  compose: Json,
  places: RunPlaces,
  observed: Observed,
): string[] {
  const target = '/etc/traefik/dynamic/dynamic_config.yaml';
  const ranPath = nativePath(compose, places, 'traefik', target);
  const ran = record(parse(observed.files[ranPath] ?? '{}'));
  const source = mountSource(compose, 'traefik', target);
  if (source === undefined) return [`traefik: compose mounts nothing at ${target}`];
  const expected = record(parse(declared.read(source.replace(/^\.\//, ''))));
  const http = record(expected.http);
  const mapUrl = (url: string) => {
    const host = /^[a-z]+:\/\/([^/]+)/.exec(url)?.[1] ?? '';
    const port = places.addresses[host];
    return port === undefined ? url : url.replace(`//${host}`, `//${LOOPBACK}:${port}`);
  };
  for (const name of LEFT_OUT_MIDDLEWARES) delete record(http.middlewares)[name];
  for (const router of Object.values(record(http.routers)).map(record)) {
    router.middlewares = strings(router.middlewares).filter(
      (m) => !LEFT_OUT_MIDDLEWARES.includes(m),
    );
    if (isRecord(router.tls)) router.tls = {};
  }
  for (const service of Object.values(record(http.services)).map(record)) {
    for (const server of (record(service.loadBalancer).servers as Json[] | undefined) ?? []) {
      server.url = mapUrl(String(server.url));
    }
  }
  for (const middleware of Object.values(record(http.middlewares)).map(record)) {
    if (isRecord(middleware.forwardAuth)) {
      middleware.forwardAuth.address = mapUrl(String(middleware.forwardAuth.address));
    }
  }
  const { tls: _tls, ...rest } = ran;
  return isDeepStrictEqual(rest, expected)
    ? []
    : [describeDiff('traefik dynamic configuration', rest, expected)];
}
