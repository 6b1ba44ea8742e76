/**
 * The service configuration the fault tests run, and small helpers they share.
 *
 * The in-service abuse limits (`limits`, when the configuration has them) are switched off:
 * these tests measure what the endpoints and the process do with the traffic itself, and a
 * 429 from the limiter in front would hide exactly that. Rate limiting has its own tests.
 */
import { configSchema } from '../../src/config/schema.js';
import { waitFor as poll } from '../helpers/poll.js';

export const RESOURCE = 'http://localhost:3999/mcp';
export const RESOURCE_HOST = 'localhost:3999';
export const RESOURCE_PATH = '/mcp';
export const ALLOWED_TOOL = 'echo';
export const DENIED_TOOL = 'delete_everything';
export const MB = 1024 * 1024;

/** True when this version of the configuration schema knows `limits` (added in parallel). */
function schemaHasLimits(): boolean {
  const probe = configSchema.safeParse({
    issuer: 'http://localhost:1',
    login: { dev: { users: ['alice@example.com'] } },
    resources: [{ url: RESOURCE, name: 'probe' }],
    limits: { enabled: false },
  });
  return probe.success;
}

/** `{ limits: { enabled: false } }` where the schema has `limits`, else nothing. */
export function limitsOff(): Record<string, unknown> {
  return schemaHasLimits() ? { limits: { enabled: false } } : {};
}

/**
 * A gateway configuration (raw, as in the YAML file) for a fault test: one resource with tool
 * rules (so `/verify` reads JSON-RPC bodies), the dev login, logs at `error` only.
 */
export function faultConfig(
  issuer: string,
  port: number,
  dataDir: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    issuer,
    listen: { host: '127.0.0.1', port },
    dataDir,
    login: { dev: { users: ['alice@example.com', 'bob@example.com'] } },
    resources: [
      {
        url: RESOURCE,
        name: 'Fault test MCP',
        scopes: ['mcp:tools'],
        tools: { default: 'deny', rules: { [ALLOWED_TOOL]: {} } },
      },
    ],
    log: { level: 'error' },
    ...limitsOff(),
    ...overrides,
  };
}

/** The headers Traefik's forwardAuth sends for a request to the resource. */
export function forwardedHeaders(accessToken?: string): Record<string, string> {
  return {
    'x-forwarded-proto': 'http',
    'x-forwarded-host': RESOURCE_HOST,
    'x-forwarded-uri': RESOURCE_PATH,
    'x-forwarded-method': 'GET',
    ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
  };
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<void> {
  await poll(condition, { what, timeoutMs, intervalMs });
}

/** `count` workers taking items from `items` in order (bounded concurrency). */
export async function inPool<T>(
  items: readonly T[],
  count: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(count, items.length) }, async () => {
      while (next < items.length) {
        const index = next;
        next += 1;
        await work(items[index]!, index);
      }
    }),
  );
}
