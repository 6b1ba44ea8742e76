/**
 * What the configuration schema says about itself, for people and editors: the key reference
 * of docs/configuration.md and the editor JSON Schema docs/gateway.schema.json, both derived
 * from src/config/schema.ts and its descriptions. `npm run docs:config` writes them
 * (scripts/generate-config-docs.ts); a unit test renders them again and fails on drift.
 *
 * Pure: no file, no formatter; src/config/reference-print.ts prints what this module derives.
 */
import { z } from 'zod';
import { configSchema, dcrSettings } from './schema.js';

/** A JSON Schema node as `z.toJSONSchema` writes it (draft 2020-12). */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  format?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  minItems?: number;
  minimum?: number;
  minLength?: number;
  pattern?: string;
  maximum?: number;
  exclusiveMinimum?: number;
  $defs?: Record<string, JsonSchema>;
  [keyword: string]: unknown;
}

/** One key of the reference: its dotted path (`resources[].tools.rules.*.scopes`) and more. */
export interface ReferenceRow {
  key: string;
  type: string;
  default: string;
  description: string;
}

/** One top-level key: its section of docs/configuration.md. */
export interface ReferenceSection {
  key: string;
  /** The key's own description, shown above the table when the table lists its children. */
  description: string | undefined;
  rows: ReferenceRow[];
}

/**
 * The JSON Schema of what the configuration schema accepts (the input side: keys with a
 * default may be left out), from which the reference is rendered.
 */
export function configJsonSchema(): JsonSchema {
  return z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'throw',
    override: ({ zodSchema, jsonSchema }) => {
      const def = zodSchema._zod.def;
      // Zod leaves out the default of a key whose value is transformed, as it is an output;
      // every default here is also a valid input (seconds for a duration), so editors show it.
      if (def.type === 'default' && !('default' in jsonSchema)) {
        jsonSchema.default = JSON.parse(JSON.stringify(def.defaultValue)) as unknown;
      }
      // The preprocess step (a boolean for `{ enabled }`) is a function zod cannot describe.
      if (zodSchema === dcrSettings) {
        const object = { ...jsonSchema };
        for (const keyword of Object.keys(jsonSchema)) delete jsonSchema[keyword];
        jsonSchema.anyOf = [{ type: 'boolean' }, object];
      }
    },
  }) as JsonSchema;
}

/** A string holding a `${NAME}` reference, which src/config/load.ts replaces before the check. */
const INTERPOLATED: JsonSchema = { type: 'string', pattern: '\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}' };

/**
 * The JSON Schema of gateway.yaml for editors (`# yaml-language-server: $schema=…`) and
 * validators. It checks the file as written: a string that must have a form (a URL, an
 * address, a pattern, a least length) may instead hold a `${NAME}` reference, since the value
 * is known, and checked by the service, only after interpolation.
 */
export function editorSchema(): JsonSchema {
  const { $schema, ...rest } = allowInterpolation(configJsonSchema());
  return {
    $schema,
    title: 'MCP Gateway configuration',
    description:
      'The gateway.yaml file of MCP Gateway (docs/configuration.md), generated from ' +
      'src/config/schema.ts. `${NAME}` in a string value is replaced by the environment ' +
      'variable NAME (or the content of the file NAME_FILE names) before the service checks it.',
    ...rest,
  };
}

function allowInterpolation(node: JsonSchema): JsonSchema {
  const result: JsonSchema = { ...node };
  for (const keyword of ['properties', '$defs'] as const) {
    const children = node[keyword];
    if (children) {
      result[keyword] = Object.fromEntries(
        Object.entries(children).map(([key, child]) => [key, allowInterpolation(child)]),
      );
    }
  }
  if (node.items) result.items = allowInterpolation(node.items);
  if (typeof node.additionalProperties === 'object') {
    result.additionalProperties = allowInterpolation(node.additionalProperties);
  }
  if (node.anyOf) result.anyOf = node.anyOf.map(allowInterpolation);
  const formed =
    node.type === 'string' &&
    (node.format !== undefined || node.pattern !== undefined || node.minLength !== undefined);
  if (!formed) return result;
  const { description, default: fallback, ...check } = result;
  return {
    ...(description === undefined ? {} : { description }),
    ...(fallback === undefined ? {} : { default: fallback }),
    anyOf: [check, INTERPOLATED],
  };
}

/** The reference, one section per top-level key, in the schema's order. */
export function referenceSections(schema: JsonSchema = configJsonSchema()): ReferenceSection[] {
  const defs = schema.$defs ?? {};
  return Object.entries(schema.properties ?? {}).map(([key, property]) => {
    const rows = childRows(property, key, defs);
    if (rows.length > 0) return { key, description: property.description, rows };
    return {
      key,
      description: undefined,
      rows: [row(key, property, (schema.required ?? []).includes(key), defs)],
    };
  });
}

/**
 * Rows for the keys below `schema` (objects, list entries, map values, union branches). A key
 * whose keys are those of a sibling shown before it (the rate limits) gets one row that says
 * so instead of the same rows again.
 */
function childRows(
  schema: JsonSchema,
  path: string,
  defs: Record<string, JsonSchema>,
): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  const shownShapes = new Map<string, string>();
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const childPath = `${path}.${key}`;
    const entry = row(childPath, child, (schema.required ?? []).includes(key), defs);
    const below = childRows(child, childPath, defs);
    const shape = JSON.stringify({ ...child, description: undefined, default: undefined });
    const twin = below.length > 0 ? shownShapes.get(shape) : undefined;
    if (twin !== undefined) {
      rows.push({ ...entry, type: `${entry.type}, keys as \`${twin}\`` });
      continue;
    }
    if (below.length > 0) shownShapes.set(shape, childPath);
    rows.push(entry, ...below);
  }
  if (schema.items) rows.push(...childRows(schema.items, `${path}[]`, defs));
  if (typeof schema.additionalProperties === 'object') {
    rows.push(...childRows(schema.additionalProperties, `${path}.*`, defs));
  }
  for (const branch of schema.anyOf ?? []) rows.push(...childRows(branch, path, defs));
  return rows;
}

function row(
  key: string,
  schema: JsonSchema,
  required: boolean,
  defs: Record<string, JsonSchema>,
): ReferenceRow {
  return {
    key,
    type: typeName(schema),
    default: defaultText(schema, required),
    description: schema.description ?? descriptionOf(schema.$ref, defs) ?? '',
  };
}

function descriptionOf(ref: string | undefined, defs: Record<string, JsonSchema>) {
  return ref === undefined ? undefined : defs[refName(ref)]?.description;
}

const refName = (ref: string) => ref.slice(ref.lastIndexOf('/') + 1);

/** A short readable type: `duration`, `integer ≥ 1000`, `list of URL`, `body` or `headers`. */
export function typeName(schema: JsonSchema): string {
  if (schema.$ref) return refName(schema.$ref);
  if (schema.anyOf) return [...new Set(schema.anyOf.map(typeName))].join(' or ');
  if (schema.enum) return alternatives(schema.enum.map((value) => `\`${yamlText(value)}\``));
  if (schema.const !== undefined) return `\`${yamlText(schema.const)}\``;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return alternatives(types.map((type) => singleTypeName(type, schema)));
}

function singleTypeName(type: string | undefined, schema: JsonSchema): string {
  switch (type) {
    case 'string':
      if (schema.format === 'uri') return 'URL';
      if (schema.format === 'email') return 'email';
      return 'string';
    case 'integer':
    case 'number':
      return `${type}${bounds(schema)}`;
    case 'array': {
      const items = schema.items ? typeName(schema.items) : 'anything';
      return `${schema.minItems ? 'non-empty ' : ''}list of ${items}`;
    }
    case 'object':
      if (typeof schema.additionalProperties === 'object') {
        return `map of ${typeName(schema.additionalProperties)}`;
      }
      return 'object';
    default:
      return type ?? 'anything';
  }
}

function bounds(schema: JsonSchema): string {
  const max =
    schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER
      ? schema.maximum
      : undefined;
  if (schema.minimum !== undefined && max !== undefined) return ` ${schema.minimum}–${max}`;
  if (schema.minimum !== undefined) return ` ≥ ${schema.minimum}`;
  if (schema.exclusiveMinimum !== undefined) return ` > ${schema.exclusiveMinimum}`;
  if (max !== undefined) return ` ≤ ${max}`;
  return '';
}

const alternatives = (names: string[]) =>
  names.length <= 1
    ? (names[0] ?? '')
    : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;

function defaultText(schema: JsonSchema, required: boolean): string {
  if (required) return '(required)';
  if (!('default' in schema)) return 'unset';
  const value = schema.default;
  // An object whose keys have rows of their own: its `{}` says nothing the rows do not.
  const hasRows = schema.properties !== undefined || schema.anyOf !== undefined;
  if (hasRows && typeof value === 'object' && value && Object.keys(value).length === 0) return '';
  if (schema.$ref?.endsWith('/duration') && typeof value === 'number') {
    return `\`${durationText(value)}\``;
  }
  return `\`${yamlText(value)}\``;
}

/** Seconds as the largest whole unit a duration may be written in: 2592000 → `30d`. */
function durationText(seconds: number): string {
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return String(seconds);
}

/** A value as it would be written in gateway.yaml's flow style: `[a, b]`, `{ points: 20 }`. */
function yamlText(value: unknown): string {
  if (typeof value === 'string') return value === '' ? "''" : value;
  if (Array.isArray(value)) return `[${value.map(yamlText).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).map(([key, item]) => `${key}: ${yamlText(item)}`);
    return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`;
  }
  return String(value);
}
