/**
 * The compose deployment: compose.yaml, deploy/gateway.yaml, .env.example and the Dockerfiles,
 * and how they fit traefik/ and crowdsec/. The tests use no Docker engine: nothing
 * here is built or started (tests/deploy/compose-native.test.ts runs the services natively). Instead:
 *
 * 1. compose.yaml, interpolated with .env.example as Compose would, is validated against the
 *    Compose Specification's JSON schema (../shared/schemas/compose-spec.json; skipped with a
 *    printed reason when ../shared is absent).
 * 2. A checker returns every cross-file problem the schema cannot see: the Traefik routers'
 *    middlewares and services, the forwardAuth target and identity headers, each gateway
 *    resource's router, service URLs against compose services and their ports, published
 *    ports, pinned images, secrets not written inline, health checks behind `service_healthy`,
 *    networks and volumes the pieces share, and deploy/gateway.yaml loaded by the service's own
 *    loader with the environment the auth container would get from .env.example. It must find
 *    nothing in the real files, and must find the problem in copies broken on purpose, one per
 *    check (so each check is known to be able to fail).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { parseAllDocuments, stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import {
  compileSharedSchema,
  describeWithSharedSchemas,
  isRecord,
  record,
  renderTraefikTemplates,
  schemaErrors,
  strings,
  type Json,
} from '../helpers/config-files.js';
import { IDENTITY_RESPONSE_HEADERS } from '../../src/forward-auth/identity-headers.js';
import {
  buildContext,
  COMPOSE_VARIABLE,
  containerEnvironment,
  environmentEntries,
  exposedPorts,
  filledIn,
  interpolate,
  isUnder,
  mountsOf,
  normalizeContext,
  parseDotEnv,
  parseYaml,
  publishedPorts,
  type Mount,
} from '../helpers/compose-model.js';

const ROOT = path.resolve('.');
const COMPOSE_FILE = 'compose.yaml';
const GATEWAY_FILE = 'deploy/gateway.yaml';
const ENV_EXAMPLE = '.env.example';
const STATIC_FILE = 'traefik/traefik.yml';
const DYNAMIC_FILE = 'traefik/dynamic_config.yaml';
const CROWDSEC_DIR = 'crowdsec';

/** The one service that may publish ports, and the ports it publishes. */
const EDGE_SERVICE = 'traefik';
const EDGE_PORTS = ['443', '80'];
const AUTH_SERVICE = 'auth';
const STORE_SERVICE = 'redis';
const CROWDSEC_SERVICE = 'crowdsec';
const WELL_KNOWN_PREFIX = '/.well-known/oauth-protected-resource';
/** Environment variable names whose values are secrets: never written in compose.yaml. */
const SECRET_NAME = /SECRET|KEY|PASSWORD|TOKEN/i;

function readText(file: string): string {
  return readFileSync(path.join(ROOT, file), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// .env files and Compose interpolation

/** Every variable a Compose file interpolates, plus the names passed through bare. */
function composeVariables(compose: Json): Set<string> {
  const names = new Set<string>();
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      for (const match of value.matchAll(COMPOSE_VARIABLE)) {
        const name = match[2] ?? match[5];
        if (name !== undefined) names.add(name);
      }
    } else if (Array.isArray(value)) {
      value.forEach(visit);
    } else if (isRecord(value)) {
      Object.values(value).forEach(visit);
    }
  };
  visit(compose);
  for (const service of Object.values(record(compose.services))) {
    for (const [name, value] of environmentEntries(record(service).environment)) {
      if (value === null) names.add(name);
    }
  }
  secretsEnvironmentNames(compose).forEach((name) => names.add(name));
  return names;
}

function secretsEnvironmentNames(compose: Json): string[] {
  return Object.values(record(compose.secrets))
    .map((secret) => record(secret).environment)
    .filter((name): name is string => typeof name === 'string');
}

/** The variables a gateway configuration interpolates (`$${` is a literal). */
function gatewayVariables(gateway: unknown): Set<string> {
  const names = new Set<string>();
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      for (const match of value.matchAll(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
        if (!match[0].startsWith('$$') && match[1] !== undefined) names.add(match[1]);
      }
    } else if (Array.isArray(value)) {
      value.forEach(visit);
    } else if (isRecord(value)) {
      Object.values(value).forEach(visit);
    }
  };
  visit(gateway);
  return names;
}

// ---------------------------------------------------------------------------------------------
// Compose model helpers

/** The named volume mounted at the directory holding `file`, if any. */
function volumeHolding(service: Json, file: string): Mount | undefined {
  return mountsOf(service)
    .filter((m) => m.type === 'volume' && isUnder(file, m.target))
    .sort((a, b) => b.target.length - a.target.length)[0];
}

function networksOf(service: Json): string[] {
  return Array.isArray(service.networks)
    ? strings(service.networks)
    : Object.keys(record(service.networks));
}

function sharedNetworks(a: Json, b: Json): string[] {
  const other = new Set(networksOf(b));
  return networksOf(a).filter((name) => other.has(name));
}

/** A pinned image: a version tag (digits and dots), never `latest`; or a digest. */
function isPinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const tag = /:([^/:@]+)$/.exec(image)?.[1];
  return tag !== undefined && !/latest/i.test(tag) && /\d+\.\d+/.test(tag);
}

/** `host:port` (or a URL) → [host, port]. */
function hostPort(address: string): [string, string] {
  const url = new URL(address.includes('://') ? address : `tcp://${address}`);
  return [url.hostname, url.port];
}

// ---------------------------------------------------------------------------------------------
// Traefik model helpers

interface PathMatcher {
  kind: 'Path' | 'PathPrefix';
  value: string;
}

function hostsOf(rule: string): string[] {
  return [...rule.matchAll(/Host\(`([^`]+)`\)/g)].map((match) => (match[1] ?? '').toLowerCase());
}

function pathsOf(rule: string): PathMatcher[] {
  return [...rule.matchAll(/\b(Path|PathPrefix)\(`([^`]+)`\)/g)].map((match) => ({
    kind: match[1] === 'Path' ? 'Path' : 'PathPrefix',
    value: match[2] ?? '',
  }));
}

function localName(reference: string): string {
  return reference.replace(/@[^@]*$/, '');
}

/** The one middleware kind (`forwardAuth`, `headers`, `plugin`, ...) a middleware defines. */
function kindOf(middleware: unknown): string | undefined {
  return Object.keys(record(middleware))[0];
}

/** Does the path matcher send every request under `resourcePath` to its router? */
function covers(matcher: PathMatcher, resourcePath: string): boolean {
  if (matcher.kind === 'Path') return matcher.value === resourcePath;
  const prefix = matcher.value.replace(/\/+$/, '');
  return prefix === '' || resourcePath === prefix || resourcePath.startsWith(`${prefix}/`);
}

/** Does every path the matcher lets through lie inside `resourcePath`? */
function within(matcher: PathMatcher, resourcePath: string): boolean {
  const value = matcher.value.replace(/\/+$/, '') || '/';
  const base = resourcePath.replace(/\/+$/, '');
  return value === base || value.startsWith(`${base}/`) || base === '';
}

// ---------------------------------------------------------------------------------------------
// The deployment and its checker

interface CrowdSecFiles {
  /** The documents of crowdsec/acquis.yaml. */
  acquis: unknown[];
  /** Local items, relative to crowdsec/: `parsers/<stage>/<file>`, `scenarios/<file>`, … */
  localItems: string[];
}

interface Deployment {
  compose: Json;
  gateway: Json;
  staticConfig: Json;
  dynamicConfig: Json;
  envExample: string;
  /** Dockerfile text by build context (normalized, relative to the repository root). */
  dockerfiles: Record<string, string>;
  /** crowdsec/ when it exists (another part of the project), else undefined. */
  crowdsec: CrowdSecFiles | undefined;
  /** Whether a path relative to the repository root exists. */
  exists: (relative: string) => boolean;
}

function listLocalCrowdSecItems(): string[] {
  const items: string[] = [];
  const yaml = (name: string) => name.endsWith('.yaml') || name.endsWith('.yml');
  const parsers = path.join(ROOT, CROWDSEC_DIR, 'parsers');
  if (existsSync(parsers)) {
    for (const stage of readdirSync(parsers, { withFileTypes: true })) {
      if (!stage.isDirectory()) continue;
      for (const file of readdirSync(path.join(parsers, stage.name)).filter(yaml)) {
        items.push(`parsers/${stage.name}/${file}`);
      }
    }
  }
  for (const kind of ['scenarios', 'collections', 'postoverflows']) {
    const dir = path.join(ROOT, CROWDSEC_DIR, kind);
    if (existsSync(dir)) {
      for (const file of readdirSync(dir).filter(yaml)) items.push(`${kind}/${file}`);
    }
  }
  return items.sort();
}

function loadDeployment(): Deployment {
  const compose = parseYaml(readText(COMPOSE_FILE));
  const dockerfiles: Record<string, string> = {};
  for (const service of Object.values(record(compose.services))) {
    const context = buildContext(record(service));
    if (context === undefined) continue;
    const key = normalizeContext(context);
    dockerfiles[key] = readText(path.posix.join(key, 'Dockerfile'));
  }
  const acquisFile = path.join(ROOT, CROWDSEC_DIR, 'acquis.yaml');
  return {
    compose,
    gateway: parseYaml(readText(GATEWAY_FILE)),
    staticConfig: parseYaml(readText(STATIC_FILE)),
    dynamicConfig: parseYaml(readText(DYNAMIC_FILE)),
    envExample: readText(ENV_EXAMPLE),
    dockerfiles,
    crowdsec: existsSync(path.join(ROOT, CROWDSEC_DIR))
      ? {
          acquis: existsSync(acquisFile)
            ? parseAllDocuments(readFileSync(acquisFile, 'utf8')).map((doc) => doc.toJS())
            : [],
          localItems: listLocalCrowdSecItems(),
        }
      : undefined,
    exists: (relative) => existsSync(path.join(ROOT, relative)),
  };
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'mcp-gateway-deploy-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let scratchFiles = 0;

/** deploy/gateway.yaml (or a copy) through the service's own loader, from a file as in the container. */
function loadGateway(gateway: Json, env: Record<string, string>): GatewayConfig {
  scratchFiles += 1;
  const file = path.join(scratch, `gateway-${scratchFiles}.yaml`);
  writeFileSync(file, stringify(gateway));
  return loadConfig(file, env).config;
}

/** Every problem in the deployment that the schemas cannot see; empty when it is consistent. */
function checkDeployment(d: Deployment): string[] {
  const problems: string[] = [];
  const parsed = parseDotEnv(d.envExample);
  const dotenv = { ...parsed, values: filledIn(parsed) };

  // .env.example lists every variable compose.yaml and deploy/gateway.yaml use.
  for (const name of composeVariables(d.compose)) {
    if (!dotenv.documented.has(name))
      problems.push(`compose.yaml uses ${name}, not in .env.example`);
  }
  const gatewayVars = gatewayVariables(d.gateway);
  for (const name of gatewayVars) {
    if (!dotenv.documented.has(name)) {
      problems.push(`deploy/gateway.yaml uses ${name}, not in .env.example`);
    }
  }

  // Secrets are never written in compose.yaml: only passed through, or ${VAR} without default.
  for (const [serviceName, raw] of Object.entries(record(d.compose.services))) {
    for (const [name, value] of environmentEntries(record(raw).environment)) {
      if (!SECRET_NAME.test(name) || value === null) continue;
      if (!/^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}$/.test(value)) {
        problems.push(`service ${serviceName} writes secret ${name} inline (${value})`);
      }
    }
  }
  for (const [name, raw] of Object.entries(record(d.compose.secrets))) {
    const secret = record(raw);
    if (typeof secret.environment !== 'string' && typeof secret.file !== 'string') {
      problems.push(`secret ${name} comes from neither an environment variable nor a file`);
    }
  }

  let compose: Json;
  try {
    compose = record(interpolate(d.compose, dotenv.values));
  } catch (error) {
    problems.push(
      `compose.yaml does not interpolate with .env.example: ${(error as Error).message}`,
    );
    return problems;
  }
  const services = record(compose.services);
  const service = (name: string) => record(services[name]);
  const networks = record(compose.networks);

  // The dynamic file as Traefik reads it: its host names rendered from the environment
  // compose.yaml gives the edge service.
  const edgeEnv = Object.fromEntries(
    environmentEntries(service(EDGE_SERVICE).environment).filter(
      (entry): entry is [string, string] => entry[1] !== null,
    ),
  );
  try {
    d = { ...d, dynamicConfig: renderTraefikTemplates(d.dynamicConfig, edgeEnv) };
  } catch (error) {
    problems.push(`traefik/dynamic_config.yaml: ${(error as Error).message}`);
    return problems;
  }

  // Only the edge publishes ports, and only 80 and 443.
  for (const [name, raw] of Object.entries(services)) {
    const published = publishedPorts(record(raw));
    if (name === EDGE_SERVICE) {
      if (JSON.stringify([...published].sort()) !== JSON.stringify(EDGE_PORTS)) {
        problems.push(`${EDGE_SERVICE} publishes ${published.join(', ')}, not 80 and 443`);
      }
    } else if (published.length > 0) {
      problems.push(`service ${name} publishes ports ${published.join(', ')}`);
    }
  }

  // Every image is pinned, base images of the Dockerfiles included.
  for (const [name, raw] of Object.entries(services)) {
    const svc = record(raw);
    if (typeof svc.image === 'string' && !isPinned(svc.image)) {
      problems.push(`service ${name} image ${svc.image} is not pinned to a version`);
    } else if (svc.image === undefined && buildContext(svc) === undefined) {
      problems.push(`service ${name} has neither image nor build`);
    }
  }
  for (const [context, text] of Object.entries(d.dockerfiles)) {
    const stages = new Set<string>();
    for (const match of text.matchAll(/^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/gim)) {
      const image = match[1] ?? '';
      if (!stages.has(image) && !isPinned(image)) {
        problems.push(`${context}/Dockerfile: base image ${image} is not pinned to a version`);
      }
      if (match[2] !== undefined) stages.add(match[2]);
    }
  }

  // Bind-mounted files exist (or are operator files with a committed .example).
  for (const [name, raw] of Object.entries(services)) {
    for (const mount of mountsOf(record(raw)).filter((m) => m.type === 'bind')) {
      const relative = path.posix.normalize(mount.source);
      if (relative.startsWith(`${CROWDSEC_DIR}/`) && d.crowdsec === undefined) continue;
      if (!d.exists(relative) && !d.exists(`${relative}.example`)) {
        problems.push(`service ${name} mounts ${mount.source}, which does not exist`);
      }
    }
  }

  // `service_healthy` waits for a health check that exists.
  for (const [name, raw] of Object.entries(services)) {
    for (const [target, dep] of Object.entries(record(record(raw).depends_on))) {
      if (record(dep).condition !== 'service_healthy') continue;
      if (!(target in services)) {
        problems.push(`service ${name} depends on unknown service ${target}`);
        continue;
      }
      const targetService = service(target);
      const context = buildContext(targetService);
      const dockerfile =
        context === undefined ? '' : (d.dockerfiles[normalizeContext(context)] ?? '');
      const inCompose =
        isRecord(targetService.healthcheck) && targetService.healthcheck.disable !== true;
      const inImage = /^HEALTHCHECK\s+(?!NONE)/im.test(dockerfile);
      if (!inCompose && !inImage) {
        problems.push(
          `service ${name} waits for ${target} to be healthy, which has no health check`,
        );
      }
    }
  }

  // Traefik's own files are where the static configuration expects them.
  const edge = service(EDGE_SERVICE);
  const edgeMounts = mountsOf(edge);
  const mounted = (source: string, target: string) =>
    edgeMounts.some((m) => path.posix.normalize(m.source) === source && m.target === target);
  if (!mounted(STATIC_FILE, '/etc/traefik/traefik.yml')) {
    problems.push(`${EDGE_SERVICE} does not mount ${STATIC_FILE} at /etc/traefik/traefik.yml`);
  }
  const providerDir = String(record(record(d.staticConfig.providers).file).directory ?? '');
  if (!edgeMounts.some((m) => m.source.endsWith(DYNAMIC_FILE) && isUnder(m.target, providerDir))) {
    problems.push(`${EDGE_SERVICE} does not mount ${DYNAMIC_FILE} under ${providerDir}`);
  }
  for (const [resolver, raw] of Object.entries(record(d.staticConfig.certificatesResolvers))) {
    const storage = String(record(record(raw).acme).storage ?? '');
    if (storage !== '' && volumeHolding(edge, storage) === undefined) {
      problems.push(`ACME storage ${storage} (${resolver}) is not on a volume of ${EDGE_SERVICE}`);
    }
  }
  const accessLog = String(record(d.staticConfig.accessLog).filePath ?? '');
  const accessLogVolume = volumeHolding(edge, accessLog);
  if (accessLogVolume === undefined) {
    problems.push(`Traefik's access log ${accessLog} is not on a volume`);
  } else if (
    !mountsOf(service(CROWDSEC_SERVICE)).some((m) => m.source === accessLogVolume.source)
  ) {
    problems.push(
      `${CROWDSEC_SERVICE} does not mount the access log volume ${accessLogVolume.source}`,
    );
  }

  // The dynamic configuration against compose.yaml.
  const http = record(d.dynamicConfig.http);
  const routers = record(http.routers);
  const middlewares = record(http.middlewares);
  const traefikServices = record(http.services);
  /** A `service:port` reference from Traefik must name a compose service and a port it exposes. */
  const checkTarget = (what: string, host: string, port: string) => {
    if (!(host in services)) {
      problems.push(`${what} names ${host}, not a compose service`);
    } else if (!exposedPorts(service(host)).has(port)) {
      problems.push(
        `${what} names port ${port || '(default)'} of ${host}, which it does not expose`,
      );
    } else if (sharedNetworks(edge, service(host)).length === 0) {
      problems.push(`${what} names ${host}, which shares no network with ${EDGE_SERVICE}`);
    }
  };

  for (const [name, raw] of Object.entries(routers)) {
    const router = record(raw);
    for (const middleware of strings(router.middlewares)) {
      if (!(localName(middleware) in middlewares)) {
        problems.push(`router ${name} uses undefined middleware ${middleware}`);
      }
    }
    if (!(localName(String(router.service ?? '')) in traefikServices)) {
      problems.push(`router ${name} uses undefined service ${String(router.service)}`);
    }
  }
  const serviceHosts: Record<string, string> = {};
  for (const [name, raw] of Object.entries(traefikServices)) {
    for (const server of Array.isArray(record(record(raw).loadBalancer).servers)
      ? (record(record(raw).loadBalancer).servers as unknown[])
      : []) {
      const [host, port] = hostPort(String(record(server).url ?? ''));
      serviceHosts[name] = host;
      checkTarget(`Traefik service ${name}`, host, port);
    }
  }

  const forwardAuthNames = Object.keys(middlewares).filter(
    (name) => kindOf(middlewares[name]) === 'forwardAuth',
  );
  if (forwardAuthNames.length === 0) problems.push('no forwardAuth middleware in Traefik');
  for (const name of forwardAuthNames) {
    const forwardAuth = record(record(middlewares[name]).forwardAuth);
    const [host, port] = hostPort(String(forwardAuth.address ?? ''));
    if (host !== AUTH_SERVICE) {
      problems.push(`forwardAuth ${name} asks ${host}, not the compose service ${AUTH_SERVICE}`);
    }
    checkTarget(`forwardAuth ${name}`, host, port);
    const headers = strings(forwardAuth.authResponseHeaders);
    if (JSON.stringify(headers) !== JSON.stringify(IDENTITY_RESPONSE_HEADERS)) {
      problems.push(
        `forwardAuth ${name} authResponseHeaders ${JSON.stringify(headers)} differ from ` +
          `IDENTITY_RESPONSE_HEADERS ${JSON.stringify(IDENTITY_RESPONSE_HEADERS)}`,
      );
    }
  }

  // The CrowdSec bouncer: its LAPI and AppSec endpoints and its key file.
  const crowdsecEnv = containerEnvironment(service(CROWDSEC_SERVICE), dotenv.values);
  const appsecInstalled = /appsec/.test(crowdsecEnv.COLLECTIONS ?? '');
  for (const [name, raw] of Object.entries(middlewares)) {
    if (kindOf(raw) !== 'plugin') continue;
    for (const options of Object.values(record(record(raw).plugin)).map(record)) {
      if (typeof options.crowdsecLapiHost !== 'string') continue;
      checkTarget(`bouncer ${name} crowdsecLapiHost`, ...hostPort(options.crowdsecLapiHost));
      const keyFile = options.crowdsecLapiKeyFile;
      if (typeof keyFile === 'string') {
        const secretTargets = (Array.isArray(edge.secrets) ? edge.secrets : []).map((s: unknown) =>
          typeof s === 'string'
            ? `/run/secrets/${s}`
            : String(record(s).target ?? `/run/secrets/${String(record(s).source)}`),
        );
        if (!secretTargets.includes(keyFile)) {
          problems.push(`bouncer ${name} reads ${keyFile}, not a secret of ${EDGE_SERVICE}`);
        }
      } else if (typeof options.crowdsecLapiKey === 'string' && options.crowdsecLapiKey !== '') {
        problems.push(`bouncer ${name} has its key written in the dynamic configuration`);
      }
      if (appsecInstalled) {
        if (options.crowdsecAppsecEnabled !== true) {
          problems.push(
            `${CROWDSEC_SERVICE} installs AppSec rules but bouncer ${name} does not enable AppSec`,
          );
        } else {
          checkTarget(
            `bouncer ${name} crowdsecAppsecHost`,
            ...hostPort(String(options.crowdsecAppsecHost ?? '')),
          );
        }
      }
    }
  }

  // deploy/gateway.yaml, loaded as the auth container would load it.
  const authService = service(AUTH_SERVICE);
  const authEnv = containerEnvironment(authService, dotenv.values);
  for (const name of gatewayVars) {
    if (!environmentEntries(authService.environment).some(([n]) => n === name)) {
      problems.push(
        `deploy/gateway.yaml uses ${name}, which compose does not pass to ${AUTH_SERVICE}`,
      );
    }
  }
  const authMounts = mountsOf(authService);
  if (
    !authMounts.some(
      (m) => m.source.endsWith(GATEWAY_FILE) && m.target === '/etc/mcp-gateway/gateway.yaml',
    )
  ) {
    problems.push(
      `${AUTH_SERVICE} does not mount ${GATEWAY_FILE} at /etc/mcp-gateway/gateway.yaml`,
    );
  }
  let config: GatewayConfig;
  try {
    config = loadGateway(d.gateway, authEnv);
  } catch (error) {
    const lines = error instanceof ConfigError ? error.problems : [(error as Error).message];
    problems.push(...lines.map((line) => `deploy/gateway.yaml does not load: ${line}`));
    return problems;
  }

  if (!exposedPorts(authService).has(String(config.listen.port))) {
    problems.push(
      `the gateway listens on ${config.listen.port}, which ${AUTH_SERVICE} does not expose`,
    );
  }
  if (config.listen.host !== '0.0.0.0') {
    problems.push(`the gateway listens on ${config.listen.host}, unreachable from Traefik`);
  }

  // The store is the compose Redis, reachable from the auth service.
  if (config.store.redis === undefined) {
    problems.push('deploy/gateway.yaml keeps state in memory: replicas need the Redis store');
  } else {
    const url = new URL(config.store.redis.url);
    if (!(url.hostname in services)) {
      problems.push(`store.redis.url names ${url.hostname}, not a compose service`);
    } else {
      if (!exposedPorts(service(url.hostname)).has(url.port || '6379')) {
        problems.push(`store.redis.url port ${url.port} is not exposed by ${url.hostname}`);
      }
      if (sharedNetworks(authService, service(url.hostname)).length === 0) {
        problems.push(`${AUTH_SERVICE} shares no network with ${url.hostname}`);
      }
    }
  }

  // trustedProxies is exactly the subnet of the network(s) Traefik reaches the auth service on.
  const edgeAuthNetworks = sharedNetworks(edge, authService);
  const subnets = edgeAuthNetworks.flatMap((name) => {
    const config = record(record(networks[name]).ipam).config;
    const list = (Array.isArray(config) ? config : []).map((c: unknown) =>
      String(record(c).subnet ?? ''),
    );
    if (list.length === 0 || list.includes('')) {
      problems.push(`network ${name} (${EDGE_SERVICE} ↔ ${AUTH_SERVICE}) has no explicit subnet`);
    }
    return list;
  });
  if (JSON.stringify([...config.trustedProxies].sort()) !== JSON.stringify([...subnets].sort())) {
    problems.push(
      `trustedProxies ${JSON.stringify(config.trustedProxies)} is not the subnet of the ` +
        `${EDGE_SERVICE} ↔ ${AUTH_SERVICE} network(s) ${JSON.stringify(subnets)}`,
    );
  }

  // The security events file lands on a volume CrowdSec reads.
  const eventsFile = config.log.securityEventsFile;
  if (eventsFile === undefined) {
    problems.push('deploy/gateway.yaml writes no security events file for CrowdSec');
  } else {
    const volume = volumeHolding(authService, eventsFile);
    if (volume === undefined || volume.readOnly) {
      problems.push(
        `log.securityEventsFile ${eventsFile} is not on a writable volume of ${AUTH_SERVICE}`,
      );
    } else if (!mountsOf(service(CROWDSEC_SERVICE)).some((m) => m.source === volume.source)) {
      problems.push(`${CROWDSEC_SERVICE} does not mount ${volume.source} (security events)`);
    }
  }

  // Routers for the issuer and for every resource, and no MCP router outside the resources.
  const routerList = Object.entries(routers).map(([name, raw]) => {
    const router = record(raw);
    const rule = String(router.rule ?? '');
    const chain = strings(router.middlewares).map(localName);
    return {
      name,
      hosts: hostsOf(rule),
      paths: pathsOf(rule),
      service: localName(String(router.service ?? '')),
      forwardAuth: chain.some((m) => forwardAuthNames.includes(m)),
      tls: isRecord(router.tls),
    };
  });
  const toAuth = (router: { service: string }) => serviceHosts[router.service] === AUTH_SERVICE;
  const issuerHost = new URL(config.issuer).hostname;
  if (
    !routerList.some((r) => r.hosts.includes(issuerHost) && toAuth(r) && r.tls && !r.forwardAuth)
  ) {
    problems.push(`no TLS router sends the issuer host ${issuerHost} to ${AUTH_SERVICE}`);
  }
  const resourceUrls = config.resources.map((resource) => new URL(resource.url));
  for (const url of resourceUrls) {
    const host = url.hostname;
    const routed = routerList.some(
      (r) =>
        r.hosts.includes(host) &&
        r.forwardAuth &&
        r.tls &&
        r.paths.some((p) => covers(p, url.pathname)),
    );
    if (!routed) {
      problems.push(`resource ${url.href} has no Traefik router (host, path, forwardAuth, TLS)`);
    }
    const wellKnown = routerList.some(
      (r) =>
        r.hosts.includes(host) &&
        toAuth(r) &&
        !r.forwardAuth &&
        r.paths.some(
          (p) => p.kind === 'PathPrefix' && covers(p, `${WELL_KNOWN_PREFIX}${url.pathname}`),
        ),
    );
    if (!wellKnown) {
      problems.push(`no router sends ${WELL_KNOWN_PREFIX} on ${host} to ${AUTH_SERVICE}`);
    }
  }
  for (const router of routerList.filter((r) => r.forwardAuth)) {
    const matched = resourceUrls.some(
      (url) =>
        router.hosts.includes(url.hostname) &&
        router.paths.length > 0 &&
        router.paths.every((p) => within(p, url.pathname)),
    );
    if (!matched) {
      problems.push(
        `router ${router.name} runs forwardAuth on a path no resource covers (all 403)`,
      );
    }
  }

  // MCP servers reach neither the store nor the auth service directly.
  const mcpServices = new Set(
    routerList.filter((r) => r.forwardAuth).map((r) => serviceHosts[r.service] ?? ''),
  );
  for (const name of mcpServices) {
    if (!(name in services)) continue;
    for (const other of [AUTH_SERVICE, STORE_SERVICE]) {
      const shared = sharedNetworks(service(name), service(other));
      if (shared.length > 0) {
        problems.push(`MCP server ${name} shares network ${shared.join()} with ${other}`);
      }
    }
  }

  // crowdsec/ (when present): the files it has are mounted, and it reads what the stack writes.
  if (d.crowdsec !== undefined) {
    const crowdsec = service(CROWDSEC_SERVICE);
    const crowdsecMounts = mountsOf(crowdsec);
    for (const item of d.crowdsec.localItems) {
      const target = `/etc/crowdsec/${item}`;
      if (
        !crowdsecMounts.some(
          (m) => m.target === target && m.source.endsWith(`${CROWDSEC_DIR}/${item}`),
        )
      ) {
        problems.push(`${CROWDSEC_DIR}/${item} is not mounted at ${target}`);
      }
    }
    const sources = d.crowdsec.acquis.map(record);
    const filenames = sources.flatMap((s) => [
      ...(typeof s.filename === 'string' ? [s.filename] : []),
      ...strings(s.filenames),
    ]);
    for (const file of filenames) {
      if (!crowdsecMounts.some((m) => isUnder(file.replace(/\*.*$/, ''), m.target))) {
        problems.push(`acquis.yaml reads ${file}, outside every mount of ${CROWDSEC_SERVICE}`);
      }
    }
    const globMatches = (pattern: string, file: string) =>
      new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`).test(
        file,
      );
    for (const [what, file] of [
      ['Traefik access log', accessLog],
      ['security events file', eventsFile ?? ''],
    ]) {
      if (!filenames.some((pattern) => globMatches(pattern, file ?? ''))) {
        problems.push(`acquis.yaml does not read the ${what} ${file}`);
      }
    }
    const appsec = sources.find((s) => s.source === 'appsec');
    if (appsecInstalled && appsec === undefined) {
      problems.push('acquis.yaml has no appsec source, but the bouncer sends requests to AppSec');
    } else if (appsec !== undefined) {
      const port = /:(\d+)$/.exec(String(appsec.listen_addr ?? ''))?.[1] ?? '';
      if (!exposedPorts(crowdsec).has(port)) {
        problems.push(`the AppSec listener port ${port} is not exposed by ${CROWDSEC_SERVICE}`);
      }
    }
  }

  return problems;
}

// ---------------------------------------------------------------------------------------------

const deployment = loadDeployment();

/** A copy of the deployment with one thing broken by `edit`. */
function broken(edit: (d: Deployment) => void): Deployment {
  const copy: Deployment = {
    ...structuredClone({ ...deployment, exists: undefined }),
    exists: deployment.exists,
  };
  edit(copy);
  return copy;
}

function svc(d: Deployment, name: string): Json {
  return record(record(d.compose.services)[name]);
}

function middleware(d: Deployment, name: string): Json {
  return record(record(record(d.dynamicConfig.http).middlewares)[name]);
}

function routerOf(d: Deployment, name: string): Json {
  return record(record(record(d.dynamicConfig.http).routers)[name]);
}

function bouncer(d: Deployment): Json {
  return record(record(middleware(d, 'crowdsec').plugin).bouncer);
}

/** crowdsec/ as the other part of the project is expected to provide it (for broken copies). */
function syntheticCrowdSec(): CrowdSecFiles {
  return {
    acquis: [
      { source: 'file', filenames: ['/var/log/traefik/access.log'], labels: { type: 'traefik' } },
      {
        source: 'file',
        filenames: ['/var/log/mcp-gateway/*.log'],
        labels: { type: 'mcp-gateway' },
      },
      {
        source: 'appsec',
        listen_addr: '0.0.0.0:7422',
        appsec_config: 'crowdsecurity/appsec-default',
      },
    ],
    localItems: listLocalCrowdSecItems(),
  };
}

describe('compose deployment: cross-checks', () => {
  it('finds nothing wrong in compose.yaml, deploy/gateway.yaml, .env.example, traefik/', () => {
    expect(checkDeployment(deployment)).toEqual([]);
  });

  it('runs Traefik with the Go collector settings docs/performance.md measured', () => {
    // forwardAuth allocates a body buffer per MCP request; at GOGC=100 Traefik spends a large
    // share of its CPU collecting (docs/performance.md, "The auth hop in Traefik").
    const traefik = record(record(deployment.compose.services).traefik);
    expect(Object.fromEntries(environmentEntries(traefik.environment))).toMatchObject({
      GOGC: '400',
      GOMEMLIMIT: '512MiB',
    });
  });

  it('refuses to start with .env.example unchanged (no bouncer key)', () => {
    const dotenv = parseDotEnv(deployment.envExample);
    expect(dotenv.values.CROWDSEC_BOUNCER_KEY).toBe('');
    expect(() => interpolate(deployment.compose, dotenv.values)).toThrow(
      /required variable CROWDSEC_BOUNCER_KEY is not set/,
    );
  });

  it('loads deploy/gateway.yaml with the service loader and the .env.example values', () => {
    const parsed = parseDotEnv(deployment.envExample);
    const dotenv = { ...parsed, values: filledIn(parsed) };
    const env = containerEnvironment(
      record(record(interpolate(deployment.compose, dotenv.values)).services).auth as Json,
      dotenv.values,
    );
    const config = loadGateway(deployment.gateway, env);
    expect(config.issuer).toBe('https://auth.example.com');
    expect(config.store.redis?.url).toBe('redis://redis:6379/0');
    expect(config.trustedProxies).toEqual([dotenv.values.INTERNAL_SUBNET]);
    expect(config.login.oidc[0]?.clientSecret).toBe(dotenv.values.OIDC_CLIENT_SECRET);
    expect(config.resources.map((r) => r.url)).toEqual([
      'https://mcp.example.com/mcp',
      'https://mcp.example.com/servers/legacy',
    ]);
    // The bouncer key is not among what the auth container receives.
    expect(Object.keys(env)).not.toContain('CROWDSEC_BOUNCER_KEY');
  });

  it('agrees with crowdsec/ as expected (synthetic files, for when crowdsec/ is absent)', () => {
    expect(checkDeployment(broken((d) => (d.crowdsec = syntheticCrowdSec())))).toEqual([]);
  });

  // Each case breaks one thing in a copy of the real files; the checker must notice.
  const cases: [string, (d: Deployment) => void, RegExp][] = [
    [
      'a router using an undefined middleware',
      (d) => {
        routerOf(d, 'mcp-example').middlewares = ['crowdsec', 'no-such-middleware'];
      },
      /router mcp-example uses undefined middleware no-such-middleware/,
    ],
    [
      'forwardAuth naming another service',
      (d) => {
        record(middleware(d, 'mcp-auth').forwardAuth).address = 'http://gateway:8787/verify';
      },
      /forwardAuth mcp-auth asks gateway, not the compose service auth/,
    ],
    [
      'forwardAuth naming a port the auth service does not expose',
      (d) => {
        record(middleware(d, 'mcp-auth').forwardAuth).address = 'http://auth:9000/verify';
      },
      /forwardAuth mcp-auth names port 9000 of auth, which it does not expose/,
    ],
    [
      'authResponseHeaders missing an identity header',
      (d) => {
        const fa = record(middleware(d, 'mcp-auth').forwardAuth);
        fa.authResponseHeaders = strings(fa.authResponseHeaders).filter(
          (h) => h !== 'X-Auth-Scopes',
        );
      },
      /authResponseHeaders .* differ from IDENTITY_RESPONSE_HEADERS/,
    ],
    [
      'a resource without a router',
      (d) => {
        (d.gateway.resources as Json[]).push({
          url: 'https://mcp.${MCP_DOMAIN}/servers/new',
          name: 'New',
        });
      },
      /resource https:\/\/mcp\.example\.com\/servers\/new has no Traefik router/,
    ],
    [
      'a resource on a host the well-known router does not cover',
      (d) => {
        const resources = d.gateway.resources as Json[];
        resources[0] = { ...resources[0], url: 'https://tools.${MCP_DOMAIN}/mcp' };
        routerOf(d, 'mcp-example').rule = 'Host(`tools.example.com`) && Path(`/mcp`)';
      },
      /no router sends \/\.well-known\/oauth-protected-resource on tools\.example\.com to auth/,
    ],
    [
      'an MCP router on a path no resource covers',
      (d) => {
        routerOf(d, 'mcp-example').rule = 'Host(`mcp.example.com`) && PathPrefix(`/other`)';
      },
      /router mcp-example runs forwardAuth on a path no resource covers/,
    ],
    [
      'a Traefik service URL naming no compose service',
      (d) => {
        const services = record(record(d.dynamicConfig.http).services);
        services['mcp-example'] = { loadBalancer: { servers: [{ url: 'http://mcp-gone:3001' }] } };
      },
      /Traefik service mcp-example names mcp-gone, not a compose service/,
    ],
    [
      'a Traefik service URL on a port the service does not expose',
      (d) => {
        svc(d, 'mcp-legacy').expose = ['3003'];
      },
      /Traefik service mcp-legacy names port 3002 of mcp-legacy, which it does not expose/,
    ],
    [
      'another service publishing a port',
      (d) => {
        svc(d, 'redis').ports = ['6379:6379'];
      },
      /service redis publishes ports 6379/,
    ],
    [
      'Traefik publishing more than 80 and 443',
      (d) => {
        svc(d, 'traefik').ports = ['80:80', '443:443', '8080:8080'];
      },
      /traefik publishes 80, 443, 8080, not 80 and 443/,
    ],
    [
      'an image on latest',
      (d) => {
        svc(d, 'redis').image = 'redis:latest';
      },
      /service redis image redis:latest is not pinned/,
    ],
    [
      'an image without a tag',
      (d) => {
        svc(d, 'crowdsec').image = 'crowdsecurity/crowdsec';
      },
      /service crowdsec image crowdsecurity\/crowdsec is not pinned/,
    ],
    [
      'a Dockerfile on an unpinned base image',
      (d) => {
        d.dockerfiles['.'] = (d.dockerfiles['.'] ?? '').replace(
          /FROM node:\S+ AS build/,
          'FROM node:22-slim AS build',
        );
      },
      /\.\/Dockerfile: base image node:22-slim is not pinned/,
    ],
    [
      'a secret written inline',
      (d) => {
        record(svc(d, 'auth').environment).OIDC_CLIENT_SECRET = 's3cr3t-value';
      },
      /service auth writes secret OIDC_CLIENT_SECRET inline/,
    ],
    [
      'a secret with an inline default',
      (d) => {
        record(svc(d, 'crowdsec').environment).BOUNCER_KEY_traefik = '${CROWDSEC_BOUNCER_KEY:-abc}';
      },
      /service crowdsec writes secret BOUNCER_KEY_traefik inline/,
    ],
    [
      'deploy/gateway.yaml that does not load',
      (d) => {
        d.gateway.issuer = 'http://auth.${DOMAIN}';
      },
      /deploy\/gateway\.yaml does not load: issuer: must use https/,
    ],
    [
      'a gateway variable compose does not pass to the auth service',
      (d) => {
        delete record(svc(d, 'auth').environment).ALLOWED_EMAIL_DOMAIN;
      },
      /uses ALLOWED_EMAIL_DOMAIN, which compose does not pass to auth/,
    ],
    [
      'a variable missing from .env.example',
      (d) => {
        d.envExample = d.envExample.replace(/^MCP_DOMAIN=.*$/m, '');
      },
      /compose\.yaml uses MCP_DOMAIN, not in \.env\.example/,
    ],
    [
      'trustedProxies other than the internal subnet',
      (d) => {
        d.gateway.trustedProxies = ['172.16.0.0/12'];
      },
      /trustedProxies \["172\.16\.0\.0\/12"\] is not the subnet/,
    ],
    [
      'the internal network without an explicit subnet',
      (d) => {
        delete record(record(d.compose.networks).internal).ipam;
      },
      /network internal \(traefik ↔ auth\) has no explicit subnet/,
    ],
    [
      'a store the auth service cannot reach',
      (d) => {
        svc(d, 'redis').networks = ['mcp'];
      },
      /auth shares no network with redis/,
    ],
    [
      'an MCP server on the store network',
      (d) => {
        svc(d, 'mcp-example').networks = ['mcp', 'internal'];
      },
      /MCP server mcp-example shares network internal with auth/,
    ],
    [
      'service_healthy on a service without a health check',
      (d) => {
        delete svc(d, 'redis').healthcheck;
      },
      /auth waits for redis to be healthy, which has no health check/,
    ],
    [
      'security events outside the volume CrowdSec reads',
      (d) => {
        svc(d, 'crowdsec').volumes = mountsOf(svc(d, 'crowdsec'))
          .filter((m) => m.source !== 'auth-security-events')
          .map((m) => ({
            type: m.type,
            source: m.source,
            target: m.target,
            read_only: m.readOnly,
          }));
      },
      /crowdsec does not mount auth-security-events \(security events\)/,
    ],
    [
      'the access log not on a volume',
      (d) => {
        svc(d, 'traefik').volumes = mountsOf(svc(d, 'traefik'))
          .filter((m) => m.target !== '/var/log/traefik')
          .map((m) => ({
            type: m.type,
            source: m.source,
            target: m.target,
            read_only: m.readOnly,
          }));
      },
      /Traefik's access log \/var\/log\/traefik\/access\.log is not on a volume/,
    ],
    [
      'the bouncer key file not mounted in Traefik',
      (d) => {
        delete svc(d, 'traefik').secrets;
      },
      /bouncer crowdsec reads \/run\/secrets\/crowdsec_bouncer_key, not a secret of traefik/,
    ],
    [
      'AppSec rules installed but the bouncer not using them',
      (d) => {
        delete bouncer(d).crowdsecAppsecEnabled;
      },
      /crowdsec installs AppSec rules but bouncer crowdsec does not enable AppSec/,
    ],
    [
      'a bind-mounted file that does not exist',
      (d) => {
        const auth = svc(d, 'auth');
        auth.volumes = [
          ...(auth.volumes as unknown[]),
          './deploy/missing.yaml:/etc/missing.yaml:ro',
        ];
      },
      /service auth mounts \.\/deploy\/missing\.yaml, which does not exist/,
    ],
    [
      'a crowdsec/ parser that is not mounted',
      (d) => {
        d.crowdsec = syntheticCrowdSec();
        d.crowdsec.localItems.push('scenarios/extra.yaml');
        d.exists = () => true;
      },
      /crowdsec\/scenarios\/extra\.yaml is not mounted at \/etc\/crowdsec\/scenarios\/extra\.yaml/,
    ],
    [
      'acquis.yaml not reading the security events file',
      (d) => {
        d.crowdsec = syntheticCrowdSec();
        d.crowdsec.acquis.splice(1, 1);
        d.exists = () => true;
      },
      /acquis\.yaml does not read the security events file/,
    ],
    [
      'an AppSec listener on a port CrowdSec does not expose',
      (d) => {
        d.crowdsec = syntheticCrowdSec();
        record(d.crowdsec.acquis[2]).listen_addr = '0.0.0.0:7423';
        d.exists = () => true;
      },
      /AppSec listener port 7423 is not exposed by crowdsec/,
    ],
  ];
  it.each(cases)('notices %s', (_name, edit, problem) => {
    expect(checkDeployment(broken(edit)).join('\n')).toMatch(problem);
  });
});

describe('compose deployment: crowdsec/ (another part of the project)', () => {
  const present = deployment.crowdsec !== undefined;
  if (!present) {
    console.warn(
      `Skipping the crowdsec/ file checks: ${CROWDSEC_DIR}/ does not exist in this checkout ` +
        '(the synthetic cases above check the same rules)',
    );
  }
  (present ? it : it.skip)('mounts every crowdsec/ file and reads what the stack writes', () => {
    // Already part of the first cross-check when crowdsec/ exists; repeated to name it.
    expect(checkDeployment(deployment).filter((p) => /crowdsec|acquis|AppSec/i.test(p))).toEqual(
      [],
    );
  });
});

describeWithSharedSchemas(
  'compose.yaml: Compose Specification schema (../shared/schemas)',
  ['compose-spec.json'],
  () => {
    // Compiled in the tests, not here: a skipped describe still runs this body.
    let validate: ReturnType<typeof compileSharedSchema> | undefined;
    const errorsOf = (data: unknown) =>
      schemaErrors((validate ??= compileSharedSchema('compose-spec.json')), data);
    const env = filledIn(parseDotEnv(deployment.envExample));

    it('is valid once interpolated with .env.example', () => {
      expect(errorsOf(interpolate(deployment.compose, env))).toEqual([]);
    });

    it('rejects a misspelt key (so passing means something)', () => {
      const copy = record(interpolate(deployment.compose, env));
      record(record(copy.services).redis).helthcheck = { test: ['CMD', 'true'] };
      expect(errorsOf(copy)).not.toEqual([]);
    });
  },
);
