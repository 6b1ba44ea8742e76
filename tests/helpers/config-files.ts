/**
 * What the checks of the deployment's data files (Traefik, Compose) share: safe access to
 * parsed YAML/JSON values, and validation against the JSON schemas kept in ../shared/schemas
 * (data files outside the repository: a checkout without them skips that part, saying why).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe } from '@jest/globals';
import { Ajv, type ValidateFunction } from 'ajv';
import ajvFormats from 'ajv-formats';

// ajv-formats is CommonJS with `exports.default`: under NodeNext its default import is typed as
// the module object, while at run time it is the plugin function.
const addFormats = ajvFormats as unknown as typeof ajvFormats.default;

export type Json = Record<string, unknown>;

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value as an object, or `{}` when it is not one (absent keys read as empty). */
export function record(value: unknown): Json {
  return isRecord(value) ? value : {};
}

/** The strings of an array (anything else: none). */
export function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export const SHARED_SCHEMA_DIR = path.resolve('..', 'shared', 'schemas');

/**
 * `describe` when every named schema file exists in ../shared/schemas, else `describe.skip`
 * with the reason printed.
 */
export function describeWithSharedSchemas(name: string, files: string[], fn: () => void): void {
  const missing = files
    .map((file) => path.join(SHARED_SCHEMA_DIR, file))
    .filter((file) => !existsSync(file));
  if (missing.length === 0) {
    describe(name, fn);
    return;
  }
  console.warn(
    `Skipping "${name}": ${missing.join(', ')} not found. The schemas are data files kept ` +
      'outside the repository in ../shared/schemas (see SOURCES.md there).',
  );
  describe.skip(name, fn);
}

/** A validator for a schema of ../shared/schemas (draft-07, formats, not strict). */
export function compileSharedSchema(file: string): ValidateFunction {
  const schema = JSON.parse(readFileSync(path.join(SHARED_SCHEMA_DIR, file), 'utf8')) as Json;
  // Some files name their meta-schema https://json-schema.org/draft-07/schema, which Ajv knows
  // as http://json-schema.org/draft-07/schema#; draft-07 is Ajv's default, so drop the name.
  delete schema.$schema;
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

/** Validation errors as readable lines (empty when valid). */
export function schemaErrors(validate: ValidateFunction, data: unknown): string[] {
  if (validate(data)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

/**
 * A Traefik file-provider file as Traefik reads it: the file is a Go template, and the
 * project's files use one call only, `{{ env "NAME" }}` (the public host names). Renders those
 * in every string of a parsed file with `env`; throws on any other template syntax or a name
 * `env` lacks, so a file that only Traefik could read fails here.
 */
export function renderTraefikTemplates<T>(value: T, env: Record<string, string>): T {
  const render = (text: string): string =>
    text.replace(/\{\{(.*?)\}\}/g, (call, inner: string) => {
      const name = /^\s*env\s+"([A-Za-z_][A-Za-z0-9_]*)"\s*$/.exec(inner)?.[1];
      if (name === undefined) throw new Error(`unsupported template call ${call}`);
      const rendered = env[name];
      if (rendered === undefined) throw new Error(`${call}: ${name} is not set for Traefik`);
      return rendered;
    });
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') return render(node);
    if (Array.isArray(node)) return node.map(walk);
    if (isRecord(node))
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v)]));
    return node;
  };
  return walk(value) as T;
}
