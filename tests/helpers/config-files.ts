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
