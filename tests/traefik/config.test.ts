/**
 * The deployment's Traefik files (traefik/traefik.yml, traefik/dynamic_config.yaml), checked as
 * files; the real Traefik runs them in tests/e2e/traefik-stack.test.ts and the other Traefik
 * tests. Two ways here:
 *
 * 1. Against Traefik's published JSON schemas (SchemaStore's traefik-v3.json and
 *    traefik-v3-file-provider.json, draft-07), read from ../shared/schemas: a misspelt or
 *    misplaced key fails. Those files live outside the repository; when they are absent the
 *    schema part is skipped with a printed reason (also under CI=true).
 * 2. Cross-checks the schemas cannot express, written as a checker that returns the problems it
 *    finds; it must find none in the real files, and must find the problem in copies broken on
 *    purpose (so the checks are known to be able to fail): every middleware and service a
 *    router names exists; the forwardAuth target is `auth:8787/verify`; the identity headers
 *    copied to the MCP servers are exactly IDENTITY_RESPONSE_HEADERS; every MCP router runs
 *    `mcp-auth` and the discovery router does not; every router on the MCP host has TLS.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
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
import { IDENTITY_RESPONSE_HEADERS } from '../helpers/identity-headers.js';

const STATIC_FILE = path.resolve('traefik', 'traefik.yml');
const DYNAMIC_FILE = path.resolve('traefik', 'dynamic_config.yaml');

const MCP_HOST = 'mcp.example.com';
const AUTH_HOST = 'auth.example.com';
const WELL_KNOWN_ROUTER = 'mcp-well-known';
const FORWARD_AUTH_MIDDLEWARE = 'mcp-auth';
const MCP_CHAIN = ['crowdsec', 'mcp-ratelimit', 'mcp-inflight', 'mcp-auth', 'security-headers'];
/** Middleware kinds that hold back a response (or its start) and so would break SSE. */
const BUFFERING_KINDS = ['buffering', 'compress', 'retry'];

function loadYaml(file: string): Json {
  const value: unknown = parse(readFileSync(file, 'utf8'));
  if (!isRecord(value)) throw new Error(`${file} is not a YAML mapping`);
  return value;
}

/** `name@provider` references another provider's object; this file defines `name`. */
function localName(reference: string): string {
  return reference.replace(/@[^@]*$/, '');
}

function hostsOf(rule: string): string[] {
  return [...rule.matchAll(/Host\(`([^`]+)`\)/g)].map((match) => match[1] ?? '');
}

/** Traefik's default router priority is the length of the rule. */
function priorityOf(router: Json): number {
  return typeof router.priority === 'number' ? router.priority : String(router.rule ?? '').length;
}

/** The one middleware kind (`forwardAuth`, `headers`, `plugin`, ...) a middleware defines. */
function kindOf(middleware: unknown): string | undefined {
  return Object.keys(record(middleware))[0];
}

/** Everything wrong with the pair of files that the schemas cannot see; empty when fine. */
function crossCheck(staticConfig: Json, dynamicConfig: Json): string[] {
  const problems: string[] = [];
  const http = record(dynamicConfig.http);
  const routers = record(http.routers);
  const middlewares = record(http.middlewares);
  const services = record(http.services);
  const resolvers = record(staticConfig.certificatesResolvers);
  const plugins = record(record(staticConfig.experimental).plugins);

  // Every reference resolves.
  for (const [name, raw] of Object.entries(routers)) {
    const router = record(raw);
    for (const middleware of strings(router.middlewares)) {
      if (!(localName(middleware) in middlewares)) {
        problems.push(`router ${name} names undefined middleware ${middleware}`);
      }
    }
    const service = String(router.service ?? '');
    if (!(localName(service) in services)) {
      problems.push(`router ${name} names undefined service ${service}`);
    }
    const resolver = record(router.tls).certResolver;
    if (typeof resolver === 'string' && !(resolver in resolvers)) {
      problems.push(`router ${name} uses undeclared certResolver ${resolver}`);
    }
  }
  for (const [name, raw] of Object.entries(middlewares)) {
    if (kindOf(raw) !== 'plugin') continue;
    for (const plugin of Object.keys(record(record(raw).plugin))) {
      if (!(plugin in plugins)) {
        problems.push(`middleware ${name} uses plugin ${plugin}, not in experimental.plugins`);
      }
    }
  }

  // The forwardAuth middleware: target and copied headers.
  const forwardAuth = record(record(middlewares[FORWARD_AUTH_MIDDLEWARE]).forwardAuth);
  if (kindOf(middlewares[FORWARD_AUTH_MIDDLEWARE]) !== 'forwardAuth') {
    problems.push(`middleware ${FORWARD_AUTH_MIDDLEWARE} is not a forwardAuth middleware`);
  } else {
    let address: URL | undefined;
    try {
      address = new URL(String(forwardAuth.address));
    } catch {
      problems.push(`forwardAuth address ${String(forwardAuth.address)} is not a URL`);
    }
    if (address !== undefined) {
      if (address.hostname !== 'auth') {
        problems.push(`forwardAuth address names host ${address.hostname}, not service auth`);
      }
      if (address.port !== '8787') {
        problems.push(`forwardAuth address names port ${address.port || '(default)'}, not 8787`);
      }
      if (address.pathname !== '/verify') {
        problems.push(`forwardAuth address path is ${address.pathname}, not /verify`);
      }
    }
    const headers = strings(forwardAuth.authResponseHeaders);
    if (JSON.stringify(headers) !== JSON.stringify(IDENTITY_RESPONSE_HEADERS)) {
      problems.push(
        `forwardAuth authResponseHeaders ${JSON.stringify(headers)} differ from ` +
          `IDENTITY_RESPONSE_HEADERS ${JSON.stringify(IDENTITY_RESPONSE_HEADERS)}`,
      );
    }
    if (forwardAuth.forwardBody !== true) problems.push('forwardAuth forwardBody is not true');
    if (forwardAuth.maxBodySize !== 1048576) {
      problems.push(`forwardAuth maxBodySize is ${String(forwardAuth.maxBodySize)}, not 1048576`);
    }
    if (forwardAuth.trustForwardHeader !== false) {
      problems.push('forwardAuth trustForwardHeader is not false');
    }
    // Traefik allocates this buffer for every answer: set (unset reads without limit), and
    // under Go's 32 KiB small-object size (docs/performance.md, "The auth hop in Traefik").
    const answerLimit = forwardAuth.maxResponseBodySize;
    if (typeof answerLimit !== 'number' || answerLimit < 4096 || answerLimit > 32768) {
      problems.push(
        `forwardAuth maxResponseBodySize is ${String(answerLimit)}, not between 4096 and 32768`,
      );
    }
  }

  // Routers on the MCP host.
  const wellKnown = record(routers[WELL_KNOWN_ROUTER]);
  if (!(WELL_KNOWN_ROUTER in routers)) problems.push(`router ${WELL_KNOWN_ROUTER} is missing`);
  const mcpRouters = Object.entries(routers).filter(([, raw]) =>
    hostsOf(String(record(raw).rule ?? '')).includes(MCP_HOST),
  );
  for (const [name, raw] of mcpRouters) {
    const router = record(raw);
    if (!isRecord(router.tls)) problems.push(`router ${name} on ${MCP_HOST} has no tls`);
    const entryPoints = strings(router.entryPoints);
    if (entryPoints.length === 0 || entryPoints.some((ep) => ep !== 'websecure')) {
      problems.push(`router ${name} on ${MCP_HOST} is not limited to entry point websecure`);
    }
    const chain = strings(router.middlewares).map(localName);
    const forwardAuths = chain.filter((m) => kindOf(middlewares[m]) === 'forwardAuth');
    if (name === WELL_KNOWN_ROUTER) {
      if (forwardAuths.length > 0) {
        problems.push(`router ${name} (OAuth discovery) runs forwardAuth ${forwardAuths.join()}`);
      }
      continue;
    }
    if (!chain.includes(FORWARD_AUTH_MIDDLEWARE)) {
      problems.push(`MCP router ${name} does not run ${FORWARD_AUTH_MIDDLEWARE}`);
    } else if (JSON.stringify(chain) !== JSON.stringify(MCP_CHAIN)) {
      problems.push(`MCP router ${name} chain ${chain.join(', ')} is not ${MCP_CHAIN.join(', ')}`);
    }
    const buffering = chain.filter((m) => BUFFERING_KINDS.includes(kindOf(middlewares[m]) ?? ''));
    if (buffering.length > 0) {
      problems.push(`MCP router ${name} runs ${buffering.join()}, which holds back SSE`);
    }
    if (priorityOf(router) >= priorityOf(wellKnown)) {
      problems.push(`MCP router ${name} outranks ${WELL_KNOWN_ROUTER}`);
    }
  }
  if (mcpRouters.length < 3) {
    problems.push(`expected the discovery router and two MCP routers on ${MCP_HOST}`);
  }

  // Routers on the auth host: never forwardAuth (the auth service authenticates itself).
  for (const [name, raw] of Object.entries(routers)) {
    const router = record(raw);
    if (!hostsOf(String(router.rule ?? '')).includes(AUTH_HOST)) continue;
    if (!isRecord(router.tls)) problems.push(`router ${name} on ${AUTH_HOST} has no tls`);
    const chain = strings(router.middlewares).map(localName);
    if (chain.some((m) => kindOf(middlewares[m]) === 'forwardAuth')) {
      problems.push(`router ${name} on ${AUTH_HOST} runs forwardAuth`);
    }
  }
  return problems;
}

const staticConfig = loadYaml(STATIC_FILE);
/** The shipped file as Traefik renders it with compose.yaml's environment for .env.example. */
const dynamicConfig = renderTraefikTemplates(loadYaml(DYNAMIC_FILE), {
  AUTH_HOST: AUTH_HOST,
  MCP_HOST: MCP_HOST,
});

function dynamicCopy(edit: (http: Json) => void): Json {
  const copy = structuredClone(dynamicConfig);
  edit(record(copy.http));
  return copy;
}

function routerOf(http: Json, name: string): Json {
  return record(record(http.routers)[name]);
}

function forwardAuthOf(http: Json): Json {
  return record(record(record(http.middlewares)[FORWARD_AUTH_MIDDLEWARE]).forwardAuth);
}

describe('Traefik files: cross-checks', () => {
  it('finds nothing wrong in traefik/traefik.yml + traefik/dynamic_config.yaml', () => {
    expect(crossCheck(staticConfig, dynamicConfig)).toEqual([]);
  });

  it('routes the discovery documents on the MCP host to the auth service', () => {
    const router = routerOf(record(dynamicConfig.http), WELL_KNOWN_ROUTER);
    expect(router.service).toBe('auth');
    expect(router.rule).toContain('PathPrefix(`/.well-known/oauth-protected-resource`)');
    expect(router.rule).toContain('Path(`/.well-known/oauth-authorization-server`)');
    const url = record(record(record(record(dynamicConfig.http).services).auth).loadBalancer);
    expect(url.servers).toEqual([{ url: 'http://auth:8787' }]);
  });

  it('turns on the CrowdSec bouncer with AppSec, failing closed', () => {
    const middlewares = record(record(dynamicConfig.http).middlewares);
    const bouncer = record(record(record(middlewares.crowdsec).plugin).bouncer);
    expect(bouncer).toMatchObject({
      enabled: true,
      crowdsecLapiHost: 'crowdsec:8080',
      crowdsecAppsecEnabled: true,
      crowdsecAppsecHost: 'crowdsec:7422',
      crowdsecAppsecFailureBlock: true,
      crowdsecAppsecUnreachableBlock: true,
    });
  });

  it('keeps Authorization out of the access log and redirects http to https', () => {
    const accessLog = record(staticConfig.accessLog);
    expect(accessLog.format).toBe('json');
    const headers = record(record(accessLog.fields).headers);
    const authorization = record(headers.names).Authorization;
    expect(['drop', 'redact']).toContain(authorization ?? headers.defaultMode);
    const web = record(record(staticConfig.entryPoints).web);
    expect(record(record(record(web.http).redirections).entryPoint)).toMatchObject({
      to: 'websecure',
      scheme: 'https',
    });
  });

  // Each case breaks one thing in a copy of the real file; the checker must notice.
  const broken: [string, () => Json, RegExp][] = [
    [
      'an MCP router without mcp-auth',
      () =>
        dynamicCopy((http) => {
          const router = routerOf(http, 'mcp-example');
          router.middlewares = strings(router.middlewares).filter((m) => m !== 'mcp-auth');
        }),
      /mcp-example does not run mcp-auth/,
    ],
    [
      'a forwardAuth answer buffer of a large Go object',
      () =>
        dynamicCopy((http) => {
          record(record(record(http.middlewares)['mcp-auth']).forwardAuth).maxResponseBodySize =
            65536;
        }),
      /maxResponseBodySize is 65536, not between 4096 and 32768/,
    ],
    [
      'forwardAuth on the discovery router',
      () =>
        dynamicCopy((http) => {
          const router = routerOf(http, WELL_KNOWN_ROUTER);
          router.middlewares = [...strings(router.middlewares), 'mcp-auth'];
        }),
      /mcp-well-known \(OAuth discovery\) runs forwardAuth/,
    ],
    [
      'an undefined middleware',
      () =>
        dynamicCopy((http) => {
          const router = routerOf(http, 'mcp-legacy-sse');
          router.middlewares = ['crowdsec', 'no-such-middleware'];
        }),
      /undefined middleware no-such-middleware/,
    ],
    [
      'a router on the MCP host without TLS',
      () =>
        dynamicCopy((http) => {
          delete routerOf(http, 'mcp-legacy-sse').tls;
        }),
      /mcp-legacy-sse on mcp\.example\.com has no tls/,
    ],
    [
      'a forwardAuth address on another port',
      () =>
        dynamicCopy((http) => {
          forwardAuthOf(http).address = 'http://auth:8080/verify';
        }),
      /port 8080, not 8787/,
    ],
    [
      'a missing identity header',
      () =>
        dynamicCopy((http) => {
          const fa = forwardAuthOf(http);
          fa.authResponseHeaders = strings(fa.authResponseHeaders).slice(0, -1);
        }),
      /authResponseHeaders .* differ from IDENTITY_RESPONSE_HEADERS/,
    ],
  ];
  it.each(broken)('notices %s', (_name, makeConfig, problem) => {
    const problems = crossCheck(staticConfig, makeConfig());
    expect(problems.join('\n')).toMatch(problem);
  });
});

/**
 * Keys Traefik 3.7 reads that SchemaStore's traefik-v3.json predates (it still has the
 * deprecated `underscoreHeadersStrategy` only). They are taken out before the schema check;
 * the real Traefik reading the shipped file without an error line (tests/e2e/traefik-stack)
 * is what checks them. Each key here is one Traefik documents for the version compose pins.
 */
const NEWER_THAN_SCHEMA: ((config: Json) => void)[] = [
  (config) => {
    for (const entryPoint of Object.values(record(config.entryPoints))) {
      delete record(record(entryPoint).http).aliasHeadersStrategy;
    }
  },
];

function withoutNewerKeys(config: Json): Json {
  const copy = structuredClone(config);
  for (const remove of NEWER_THAN_SCHEMA) remove(copy);
  return copy;
}

describeWithSharedSchemas(
  'Traefik files: JSON schemas (../shared/schemas)',
  ['traefik-v3.json', 'traefik-v3-file-provider.json'],
  () => {
    it('traefik/traefik.yml is a valid static configuration (traefik-v3.json)', () => {
      expect(
        schemaErrors(compileSharedSchema('traefik-v3.json'), withoutNewerKeys(staticConfig)),
      ).toEqual([]);
    });

    it('traefik/dynamic_config.yaml is a valid file-provider configuration', () => {
      expect(
        schemaErrors(compileSharedSchema('traefik-v3-file-provider.json'), dynamicConfig),
      ).toEqual([]);
    });

    it('the schemas reject a misspelt key (so passing means something)', () => {
      const validateStatic = compileSharedSchema('traefik-v3.json');
      const badStatic = structuredClone(staticConfig);
      record(badStatic.accessLog).fromat = 'json';
      expect(schemaErrors(validateStatic, badStatic)).not.toEqual([]);

      const validateDynamic = compileSharedSchema('traefik-v3-file-provider.json');
      const badDynamic = dynamicCopy((http) => {
        forwardAuthOf(http).forwardBodyy = true;
      });
      expect(schemaErrors(validateDynamic, badDynamic)).not.toEqual([]);
    });
  },
);
