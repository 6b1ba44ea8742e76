/**
 * docs/openapi.yaml stays in step with the service: every path and method the service
 * answers is described, and everything described is answered. The schemathesis run
 * (schemathesis.test.ts) fuzzes only what the description lists, so a route missing from it
 * would go unfuzzed without anyone noticing.
 *
 * What the service answers is found twice over: the Express application's routes are read
 * from its router, and oidc-provider's (a Koa router it keeps private) and the `node:http`
 * dispatcher's (`/verify`, `/metrics`) are probed from the route names they are built from.
 * A path is "answered" when the answer is anything but the fallback every unknown path gets
 * (`404` with the plain-text body `Not Found`).
 *
 * Also checked without Python: every `$ref` resolves, every operation has an id and answers,
 * path parameters are declared, and every schema compiles as JSON Schema 2020-12 (strict, so
 * a misspelt keyword fails). The OpenAPI meta-schema itself is checked in schemathesis.test.ts.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { VERIFY_PATH } from '../../src/forward-auth/decision-point.js';
import { METRICS_PATH } from '../../src/observability/metrics-endpoint.js';
import { ROUTES } from '../../src/oauth/constants.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';

const METHODS = ['get', 'post', 'put', 'delete', 'patch', 'options'] as const;

interface Spec {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      {
        operationId?: string;
        responses?: object;
        parameters?: { $ref?: string; name?: string; in?: string }[];
      }
    >
  >;
  components: Record<string, Record<string, unknown>>;
}

/** `/interaction/:uid` and `/interaction/{uid}` alike: every parameter is `{}`. */
function normalise(path: string): string {
  return path.replace(/:\w+/g, '{}').replace(/\{\w+\}/g, '{}');
}

/**
 * The `node:http` dispatcher's paths answer every method (docs/openapi.yaml says how); the
 * description lists the methods the proxies and scrapers use.
 */
const ANY_METHOD = new Set([VERIFY_PATH, METRICS_PATH]);

/** The Express routes, as `METHOD path` (nested routers included). */
function expressRoutes(app: unknown): string[] {
  interface Layer {
    route?: { path: string; methods: Record<string, boolean> };
    handle?: { stack?: Layer[] };
  }
  const routes: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) {
          // `{/*path}`: the prefix alone, and the prefix with a path after it.
          for (const path of layer.route.path.includes('{/*')
            ? [
                layer.route.path.replace(/\{\/\*\w+\}$/, ''),
                layer.route.path.replace(/\{\/\*\w+\}$/, '/:rest'),
              ]
            : [layer.route.path]) {
            routes.push(`${method.toUpperCase()} ${path}`);
          }
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as { router: { stack: Layer[] } }).router.stack);
  return routes;
}

/** Where oidc-provider and the dispatcher may answer: from the route names they are built from. */
function probedRoutes(): string[] {
  const paths = new Set<string>([
    VERIFY_PATH,
    METRICS_PATH,
    '/.well-known/oauth-authorization-server',
    '/.well-known/openid-configuration',
    '/.well-known/openid-credential-issuer',
  ]);
  for (const route of Object.values(ROUTES)) {
    for (const suffix of ['', '/:id', '/confirm', '/success']) paths.add(`${route}${suffix}`);
  }
  return [...paths].flatMap((path) =>
    ['GET', 'POST', 'PUT', 'DELETE'].map((method) => `${method} ${path}`),
  );
}

describe('docs/openapi.yaml and the routes the service answers', () => {
  let gw: RunningGateway;
  let spec: Spec;
  /** `METHOD normalised-path` of every operation in the description. */
  let described: Set<string>;

  beforeAll(async () => {
    spec = parse(await readFile('docs/openapi.yaml', 'utf8')) as Spec;
    described = new Set(
      Object.entries(spec.paths).flatMap(([path, item]) =>
        METHODS.filter((method) => item[method]).map(
          (method) => `${method.toUpperCase()} ${normalise(path)}`,
        ),
      ),
    );
    gw = await startGateway(() => ({ log: { level: 'error' } }));
  });
  afterAll(async () => gw?.stop());

  /** Whether the service answers `METHOD path` with anything but the unknown-path fallback. */
  async function answered(route: string): Promise<boolean> {
    const [method, path] = route.split(' ') as [string, string];
    const response = await fetch(`${gw.url}${path.replace(/:\w+|\{\w+\}/g, 'x')}`, {
      method,
      redirect: 'manual',
      headers:
        method === 'OPTIONS'
          ? { origin: 'https://client.example', 'access-control-request-method': 'POST' }
          : {},
    });
    const body = await response.text();
    return !(response.status === 404 && body === 'Not Found');
  }

  it('describes every route the service answers', async () => {
    const candidates = [...new Set([...expressRoutes(gw.gateway.app), ...probedRoutes()])];
    // A concrete path (`/authorize/confirm`) is described by a template that matches it.
    const templates = [...described].map((entry) => {
      const [method, path] = entry.split(' ') as [string, string];
      const pattern = path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replaceAll('{}', '[^/]+');
      return { method, pattern: new RegExp(`^${pattern}$`) };
    });
    const isDescribed = (method: string, path: string) =>
      described.has(`${method} ${normalise(path)}`) ||
      templates.some((t) => t.method === method && t.pattern.test(path)) ||
      (ANY_METHOD.has(path) && templates.some((t) => t.pattern.test(path)));
    const missing: string[] = [];
    for (const route of candidates) {
      const [method, path] = route.split(' ') as [string, string];
      if (isDescribed(method, path)) continue;
      if (await answered(route)) missing.push(route);
    }
    expect(missing).toEqual([]);
    // The probe tells answered from not answered (a disabled feature's route is not).
    expect(await answered(`GET ${ROUTES.userinfo}`)).toBe(false);
    expect(await answered(`GET ${VERIFY_PATH}`)).toBe(true);
  });

  it('answers every operation it describes', async () => {
    const unanswered: string[] = [];
    for (const route of described) {
      if (!(await answered(route))) unanswered.push(route);
    }
    expect(unanswered).toEqual([]);
  });

  it('is a well-formed description: references, operation ids, answers, path parameters', () => {
    expect(spec.openapi).toMatch(/^3\.1\.\d+$/);
    const problems: string[] = [];
    const resolve = (ref: string): unknown =>
      ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], spec);
    const visit = (node: unknown, where: string) => {
      if (Array.isArray(node)) node.forEach((item, index) => visit(item, `${where}/${index}`));
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === '$ref' && typeof value === 'string' && resolve(value) === undefined) {
            problems.push(`${where}: unresolved ${value}`);
          }
          visit(value, `${where}/${key}`);
        }
      }
    };
    visit(spec, '#');
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(spec.paths)) {
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
      for (const method of METHODS) {
        const operation = item[method];
        if (!operation) continue;
        const where = `${method.toUpperCase()} ${path}`;
        if (!operation.operationId || ids.has(operation.operationId)) {
          problems.push(`${where}: missing or repeated operationId`);
        }
        ids.add(operation.operationId ?? '');
        if (!operation.responses || Object.keys(operation.responses).length === 0) {
          problems.push(`${where}: no responses`);
        }
        const parameters = (operation.parameters ?? []).map(
          (parameter) =>
            (parameter.$ref ? resolve(parameter.$ref) : parameter) as { name: string; in: string },
        );
        for (const name of templated) {
          if (!parameters.some((parameter) => parameter.in === 'path' && parameter.name === name)) {
            problems.push(`${where}: path parameter ${name} not declared`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('has schemas that compile as JSON Schema 2020-12', () => {
    // Strict about keywords (a misspelt one fails); union types and `required` inside `not`
    // are plain JSON Schema.
    const ajv = new Ajv2020({
      strictSchema: true,
      strictTypes: false,
      strictRequired: false,
      allowUnionTypes: true,
      allErrors: true,
    });
    addFormats.default(ajv);
    // References point into the description; as JSON Schema they point into one document.
    const rewrite = (node: unknown): unknown =>
      JSON.parse(
        JSON.stringify(node).replaceAll('"#/components/schemas/', '"openapi#/$defs/'),
      ) as unknown;
    ajv.addSchema({ $id: 'openapi', $defs: rewrite(spec.components.schemas) as object });
    const schemas: [string, unknown][] = [];
    const collect = (node: unknown, where: string) => {
      if (Array.isArray(node)) node.forEach((item, index) => collect(item, `${where}/${index}`));
      else if (node && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === 'schema') schemas.push([`${where}/schema`, value]);
          else collect(value, `${where}/${key}`);
        }
      }
    };
    collect(spec.paths, '#/paths');
    collect(spec.components, '#/components');
    for (const name of Object.keys(spec.components.schemas ?? {})) {
      schemas.push([`#/components/schemas/${name}`, { $ref: `#/components/schemas/${name}` }]);
    }
    const problems: string[] = [];
    for (const [where, schema] of schemas) {
      try {
        ajv.compile(rewrite(schema) as object);
      } catch (error) {
        problems.push(`${where}: ${(error as Error).message}`);
      }
    }
    expect(schemas.length).toBeGreaterThan(50);
    expect(problems).toEqual([]);
    // A misspelt keyword is an error in strict mode, so the check above can fail.
    expect(() => ajv.compile({ type: 'string', maxLenght: 3 })).toThrow(/unknown keyword/);
  });
});
