/**
 * compose.yaml, .env files and Dockerfiles read the way Docker reads them, for the tests that
 * check the deployment without a Docker engine: tests/deploy/compose.test.ts (the files against
 * each other) and tests/helpers/compose-native.ts (the stack run natively from them).
 *
 * Only what those files use is implemented: YAML merge keys, Compose interpolation, both forms
 * of `environment` and `volumes`, and the Dockerfile instructions of the project's images.
 */
import path from 'node:path';
import { parse } from 'yaml';
import { isRecord, record, strings, type Json } from './config-files.js';

/** YAML as Compose reads it: `<<` merge keys resolved (YAML 1.1, used by compose.yaml). */
export function parseYaml(text: string): Json {
  const value: unknown = parse(text, { merge: true });
  if (!isRecord(value)) throw new Error('not a YAML mapping');
  return value;
}

// ---------------------------------------------------------------------------------------------
// .env files and Compose interpolation

export interface DotEnv {
  /** NAME=value lines. */
  values: Record<string, string>;
  /** Every name the file mentions, including commented-out optional ones (`# NAME=`). */
  documented: Set<string>;
}

/** The subset of Compose's .env syntax that .env.example uses (and a bit more). */
export function parseDotEnv(text: string): DotEnv {
  const values: Record<string, string> = {};
  const documented = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const commented = /^#\s*([A-Za-z_][A-Za-z0-9_]*)=/.exec(line);
    if (commented?.[1] !== undefined) {
      documented.add(commented[1]);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (match?.[1] === undefined) continue;
    let value = match[2] ?? '';
    const quoted = /^(['"])(.*)\1$/.exec(value);
    value = quoted ? (quoted[2] ?? '') : value.replace(/\s+#.*$/, '').trim();
    values[match[1]] = value;
    documented.add(match[1]);
  }
  return { values, documented };
}

/** `$$`, `$NAME`, `${NAME}` and `${NAME<op><arg>}` in a Compose string. */
export const COMPOSE_VARIABLE =
  /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/**
 * .env.example as an operator fills it in: a value it leaves empty (a secret to generate, such
 * as CROWDSEC_BOUNCER_KEY) gets a stand-in, since compose.yaml refuses to start without it.
 */
export function filledIn(dotenv: DotEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(dotenv.values).map(([name, value]) => [name, value || `test-value-${name}`]),
  );
}

/** Compose interpolation of one string: $$, $NAME, ${NAME}, ${NAME:-d}, ${NAME-d}, ${NAME:?e}. */
function interpolateString(value: string, env: Record<string, string>): string {
  return value.replace(
    COMPOSE_VARIABLE,
    (_m, dollar: string, braced: string, op: string, arg: string, bare: string) => {
      if (dollar !== undefined) return '$';
      const name = braced ?? bare;
      const current = env[name];
      const unsetOrEmpty = current === undefined || (op?.startsWith(':') && current === '');
      if (op === ':-' || op === '-') return unsetOrEmpty ? arg : (current ?? '');
      if (op === ':?' || op === '?') {
        if (unsetOrEmpty) throw new Error(`required variable ${name} is not set: ${arg}`);
        return current ?? '';
      }
      return current ?? '';
    },
  );
}

/** Interpolates every string value (not keys), as Compose does. */
export function interpolate(value: unknown, env: Record<string, string>): unknown {
  if (typeof value === 'string') return interpolateString(value, env);
  if (Array.isArray(value)) return value.map((item) => interpolate(item, env));
  if (isRecord(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  }
  return value;
}

/** A service's `environment`, map or list form, as [name, value]; null = passed through. */
export function environmentEntries(environment: unknown): [string, string | null][] {
  if (Array.isArray(environment)) {
    return strings(environment).map((entry) => {
      const index = entry.indexOf('=');
      return index < 0 ? [entry, null] : [entry.slice(0, index), entry.slice(index + 1)];
    });
  }
  return Object.entries(record(environment)).map(([name, value]) => [
    name,
    value === null || value === undefined ? null : String(value),
  ]);
}

/** The environment a container gets: literal values, and pass-through names found in `env`. */
export function containerEnvironment(
  service: Json,
  env: Record<string, string>,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of environmentEntries(service.environment)) {
    if (value !== null) result[name] = value;
    else if (env[name] !== undefined) result[name] = env[name];
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Services

export interface Mount {
  type: string;
  source: string;
  target: string;
  readOnly: boolean;
}

export function mountsOf(service: Json): Mount[] {
  return (Array.isArray(service.volumes) ? service.volumes : []).map((entry: unknown) => {
    if (typeof entry === 'string') {
      const [source = '', target = '', mode = ''] = entry.split(':');
      const bind = source.startsWith('.') || source.startsWith('/');
      return { type: bind ? 'bind' : 'volume', source, target, readOnly: mode.includes('ro') };
    }
    const mount = record(entry);
    return {
      type: String(mount.type ?? ''),
      source: String(mount.source ?? ''),
      target: String(mount.target ?? ''),
      readOnly: mount.read_only === true || mount.read_only === 'true',
    };
  });
}

/** Whether `file` is `directory` or inside it. */
export function isUnder(file: string, directory: string): boolean {
  const dir = directory.replace(/\/+$/, '');
  return file === dir || file.startsWith(`${dir}/`);
}

export function exposedPorts(service: Json): Set<string> {
  const ports = new Set<string>();
  for (const entry of Array.isArray(service.expose) ? service.expose : []) {
    ports.add(String(entry).split('/')[0] ?? '');
  }
  return ports;
}

/** The container ports a service publishes on the host. */
export function publishedPorts(service: Json): string[] {
  return (Array.isArray(service.ports) ? service.ports : []).map((entry: unknown) => {
    if (isRecord(entry)) return String(entry.target ?? '');
    const parts = String(entry).split('/')[0]?.split(':') ?? [];
    return parts[parts.length - 1] ?? '';
  });
}

export function buildContext(service: Json): string | undefined {
  if (typeof service.build === 'string') return service.build;
  if (isRecord(service.build)) return String(service.build.context ?? '.');
  return undefined;
}

export function normalizeContext(context: string): string {
  return path.posix.normalize(context).replace(/\/+$/, '') || '.';
}

// ---------------------------------------------------------------------------------------------
// Dockerfiles

/** One build stage of a Dockerfile, as far as the project's images use the instructions. */
export interface DockerStage {
  from: string;
  name: string | undefined;
  /** ENV, in order (later wins). */
  env: Record<string, string>;
  workdir: string;
  user: string | undefined;
  /** CMD in exec (JSON) form; the shell form is refused. */
  cmd: string[] | undefined;
  /** RUN commands, continuation lines joined. */
  run: string[];
  expose: string[];
  /** HEALTHCHECK's CMD in exec form. */
  healthcheck: string[] | undefined;
}

/** Logical lines: comments dropped, `\` continuations joined. */
function dockerLines(text: string): string[] {
  const lines: string[] = [];
  let current = '';
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*#/.test(raw)) continue;
    const continued = /\\\s*$/.test(raw);
    current += `${raw.replace(/\\\s*$/, '')}${continued ? ' ' : ''}`;
    if (continued) continue;
    if (current.trim() !== '') lines.push(current.trim());
    current = '';
  }
  return lines;
}

function execForm(value: string, what: string): string[] {
  const parsed: unknown = JSON.parse(value);
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) {
    throw new Error(`${what} is not in exec form: ${value}`);
  }
  return parsed as string[];
}

/** `ENV A=1 B="2"` or `ENV A 1`. */
function envPairs(value: string): [string, string][] {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(value)) {
    const [name = '', ...rest] = value.split(/\s+/);
    return [[name, rest.join(' ')]];
  }
  return [...value.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)].map((m) => [
    m[1] ?? '',
    (m[2] ?? '').replace(/^"(.*)"$/, '$1'),
  ]);
}

/** The stages of a Dockerfile (the last one is the image). */
export function parseDockerfile(text: string): DockerStage[] {
  const stages: DockerStage[] = [];
  for (const line of dockerLines(text)) {
    const [, instruction = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const keyword = instruction.toUpperCase();
    if (keyword === 'FROM') {
      const [, from = '', name] = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(rest) ?? [];
      stages.push({
        from,
        name,
        env: {},
        workdir: '/',
        user: undefined,
        cmd: undefined,
        run: [],
        expose: [],
        healthcheck: undefined,
      });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (stage === undefined) continue;
    if (keyword === 'ENV') for (const [name, value] of envPairs(rest)) stage.env[name] = value;
    else if (keyword === 'WORKDIR') stage.workdir = rest.startsWith('/') ? rest : `/${rest}`;
    else if (keyword === 'USER') stage.user = rest;
    else if (keyword === 'CMD') stage.cmd = execForm(rest, 'CMD');
    else if (keyword === 'RUN') stage.run.push(rest);
    else if (keyword === 'EXPOSE') stage.expose.push(...rest.split(/\s+/));
    else if (keyword === 'HEALTHCHECK') {
      const command = /\bCMD\s+(\[.*\])\s*$/.exec(rest)?.[1];
      stage.healthcheck = command === undefined ? undefined : execForm(command, 'HEALTHCHECK');
    }
  }
  return stages;
}

/** The image a Dockerfile builds: its last stage. */
export function imageStage(text: string): DockerStage {
  const stage = parseDockerfile(text).at(-1);
  if (stage === undefined) throw new Error('a Dockerfile without FROM');
  return stage;
}
