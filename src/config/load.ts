/**
 * Reading the configuration: one YAML file (or the embedded default when there is none),
 * secrets interpolated from the environment, the whole validated once by the schema.
 *
 * The environment is passed in explicitly so that this module, like the rest of the
 * service, never reads `process.env` itself.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { configSchema, type GatewayConfig } from './schema.js';

export type Environment = Readonly<Record<string, string | undefined>>;

/** A configuration that cannot be used; `problems` has one readable line per issue. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((line) => `  ${line}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: GatewayConfig;
  /** The file it came from, or `undefined` for the embedded default. */
  source: string | undefined;
}

export const DEFAULT_PORT = 8787;

export const DEFAULT_DEMO_PORT = 3001;

/**
 * The embedded default: everything on one computer, nothing to install. Listens on loopback
 * only, which is what allows its development login. Its one resource is the demo MCP server
 * (src/demo/), which src/main.ts starts beside it behind a forwardAuth-style front on
 * `demoPort`: one tool is kept for `dev:admins` by a tool rule, the development user is in that
 * group and an administrator, the guest user is neither.
 */
export function embeddedDefault(
  port: number,
  demoPort = DEFAULT_DEMO_PORT,
): Record<string, unknown> {
  return {
    issuer: `http://localhost:${port}`,
    listen: { host: '127.0.0.1', port },
    login: {
      dev: {
        users: [
          { email: 'dev@example.com', name: 'Dev User', groups: ['admins'] },
          { email: 'guest@example.com', name: 'Guest User' },
        ],
      },
    },
    resources: [
      {
        url: `http://localhost:${demoPort}/mcp`,
        name: 'Demo MCP server',
        scopes: ['mcp:tools'],
        tools: { default: 'allow', rules: { team_report: { groups: ['dev:admins'] } } },
      },
    ],
    admins: { emails: ['dev@example.com'] },
  };
}

/**
 * Loads and validates the configuration.
 * @param file the YAML file to read, or `undefined` for the embedded default
 * @param env the environment: `PORT`/`HOST` override `listen`, `${NAME}` references are
 *   replaced by `NAME` (or by the content of the file named by `NAME_FILE`, for Docker
 *   secrets)
 */
export function loadConfig(file: string | undefined, env: Environment): LoadedConfig {
  const portOverride = parsePort(env.PORT, 'PORT');
  let raw: unknown;
  if (file === undefined) {
    raw = embeddedDefault(
      portOverride ?? DEFAULT_PORT,
      parsePort(env.DEMO_PORT, 'DEMO_PORT') ?? DEFAULT_DEMO_PORT,
    );
  } else {
    raw = readYaml(file);
    raw = interpolate(raw, env, []);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError([`${file}: must be a YAML mapping of keys to values`]);
  }
  const withOverrides = applyListenOverrides(raw as Record<string, unknown>, env, portOverride);
  return { config: parseConfig(withOverrides), source: file };
}

/**
 * Validates a configuration as read (after interpolation and the listen overrides).
 * @throws ConfigError with one line per problem, naming the key
 */
export function parseConfig(raw: unknown): GatewayConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error.issues));
  return parsed.data;
}

function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot be read (${(error as NodeJS.ErrnoException).code})`]);
  }
  try {
    return parseYaml(text, { prettyErrors: true }) ?? {};
  } catch (error) {
    if (error instanceof YAMLParseError) {
      throw new ConfigError([`${file}: ${error.message.split('\n')[0]}`]);
    }
    throw error;
  }
}

/**
 * Replaces `${NAME}` in every string value (after YAML parsing, so a secret containing YAML
 * syntax cannot change the document's structure). `$${` escapes a literal `${`.
 */
function interpolate(value: unknown, env: Environment, path: (string | number)[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (match, name: string) => {
      if (match.startsWith('$$')) return match.slice(1);
      const resolved = resolveVariable(name, env);
      if (resolved === undefined) {
        throw new ConfigError([
          `${formatPath(path)}: environment variable ${name} (or ${name}_FILE) is not set`,
        ]);
      }
      return resolved;
    });
  }
  if (Array.isArray(value))
    return value.map((item, index) => interpolate(item, env, [...path, index]));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, interpolate(item, env, [...path, key])]),
    );
  }
  return value;
}

function resolveVariable(name: string, env: Environment): string | undefined {
  const direct = env[name];
  if (direct !== undefined) return direct;
  const file = env[`${name}_FILE`];
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ConfigError([
      `${name}_FILE: ${file} cannot be read (${(error as NodeJS.ErrnoException).code})`,
    ]);
  }
}

function parsePort(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError([`${name}: "${value}" is not a TCP port number`]);
  }
  return port;
}

function applyListenOverrides(
  raw: Record<string, unknown>,
  env: Environment,
  port: number | undefined,
): Record<string, unknown> {
  if (port === undefined && !env.HOST) return raw;
  const listen = { ...((raw.listen as Record<string, unknown> | undefined) ?? {}) };
  if (port !== undefined) listen.port = port;
  if (env.HOST) listen.host = env.HOST;
  return { ...raw, listen };
}

function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
}

function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((part, index) =>
      typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
}
