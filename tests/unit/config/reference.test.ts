/**
 * The configuration reference and the editor schema stay in step with the schema: every key is
 * described, the committed docs/configuration.md and docs/gateway.schema.json are what
 * `npm run docs:config` writes, and the editor schema accepts the shipped configurations and
 * refuses what the service refuses by shape.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from '@jest/globals';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { embeddedDefault } from '../../../src/config/load.js';
import { beginMarker, endMarker, spliceReference } from '../../../src/config/reference-print.js';
import {
  configJsonSchema,
  editorSchema,
  referenceSections,
} from '../../../src/config/reference.js';
import { configSchema } from '../../../src/config/schema.js';
import { CONFIG_DOC, staleConfigDocs } from '../../../scripts/config-docs.js';

/** Every key below `schema` (dotted, `[]` for list entries, `*` for map values). */
function keysOf(schema: z.ZodType, path: string, found: Map<string, string | undefined>) {
  if (schema instanceof z.ZodObject) {
    for (const [key, child] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
      const childPath = path ? `${path}.${key}` : key;
      found.set(childPath, child.description);
      keysOf(child, childPath, found);
    }
  } else if (
    schema instanceof z.ZodOptional ||
    schema instanceof z.ZodDefault ||
    schema instanceof z.ZodPrefault
  ) {
    keysOf(schema.unwrap() as z.ZodType, path, found);
  } else if (schema instanceof z.ZodPipe) {
    keysOf(schema.in as z.ZodType, path, found);
    keysOf(schema.out as z.ZodType, path, found);
  } else if (schema instanceof z.ZodArray) {
    keysOf(schema.element as z.ZodType, `${path}[]`, found);
  } else if (schema instanceof z.ZodRecord) {
    keysOf(schema.valueType as z.ZodType, `${path}.*`, found);
  } else if (schema instanceof z.ZodUnion) {
    for (const option of schema.options as z.ZodType[]) keysOf(option, path, found);
  }
  return found;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const validator = () => addFormats(new Ajv2020({ allErrors: true, strict: true }));
const minimal = {
  issuer: 'https://auth.example.com',
  resources: [{ url: 'https://mcp.example.com/mcp', name: 'A' }],
  login: { dev: { users: ['a@example.com'] } },
};

describe('the configuration reference', () => {
  it('describes every key of the schema', () => {
    const keys = keysOf(configSchema, '', new Map());
    // The walk reaches into lists, maps and unions, not only the top level.
    expect(keys.size).toBeGreaterThan(150);
    expect(keys.has('resources[].tools.rules.*.groups')).toBe(true);
    expect(keys.has('registration.dcr.clientTtl')).toBe(true);
    const undescribed = [...keys].filter(([, text]) => !text?.trim()).map(([key]) => key);
    expect(undescribed).toEqual([]);
    // ...and it would notice a key without one.
    const bare = z.strictObject({ a: z.strictObject({ b: z.string() }).describe('A.') });
    expect([...keysOf(bare, '', new Map())].filter(([, text]) => !text)).toEqual([
      ['a.b', undefined],
    ]);
  });

  it('is committed as npm run docs:config writes it (docs/configuration.md, gateway.schema.json)', async () => {
    const stale = await staleConfigDocs();
    if (stale.length > 0) {
      throw new Error(
        `${stale.map(({ file }) => file).join(' and ')} out of step with src/config/schema.ts: ` +
          'run npm run docs:config',
      );
    }
    const doc = await readFile(CONFIG_DOC, 'utf8');
    for (const section of referenceSections()) {
      expect(doc).toContain(beginMarker(section.key));
    }
  });

  it('renders types, defaults and required keys readably', () => {
    const rows = new Map(
      referenceSections()
        .flatMap((section) => section.rows)
        .map((row) => [row.key, row]),
    );
    expect(rows.get('issuer')).toMatchObject({ type: 'URL', default: '(required)' });
    expect(rows.get('verify.clockSkew')).toMatchObject({ type: 'integer 0–300', default: '`30`' });
    expect(rows.get('tokens.refreshTokenTtl')).toMatchObject({
      type: 'duration',
      default: '`30d`',
    });
    expect(rows.get('registration.dcr')?.type).toBe('boolean or object');
    expect(rows.get('log.level')?.type).toBe('`error`, `warn`, `info` or `debug`');
    expect(rows.get('limits.register')?.default).toBe('`{ points: 20, duration: 3600 }`');
    expect(rows.get('resources[].tools.rules.*.scopes')?.default).toBe('`[]`');
    expect(rows.get('metrics.listen')?.default).toBe('unset');
  });

  it('keeps hand-written text, adds a block for a new key and drops a block for a gone one', () => {
    const block = (key: string, text: string) =>
      `${beginMarker(key)}\n\n${text}\n\n${endMarker(key)}`;
    const sections = new Map([
      ['a', 'A table'],
      ['b', 'B table'],
      ['c', 'C table'],
      ['d', 'D table'],
    ]);
    const doc =
      `# Intro\n\n${block('a', 'old A')}\n\nNotes on a.\n\n${block('gone', 'x')}\n\n` +
      `${block('c', 'old C')}\n\nNotes on c.\n\n## Afterwards\n`;
    expect(spliceReference(doc, sections)).toBe(
      `# Intro\n\n${block('a', 'A table')}\n\nNotes on a.\n\n${block('b', 'B table')}\n\n` +
        `${block('c', 'C table')}\n\nNotes on c.\n\n${block('d', 'D table')}\n\n## Afterwards\n`,
    );
    expect(() => spliceReference('# No blocks\n', sections)).toThrow(/no <!-- BEGIN GENERATED/);
  });
});

describe('the editor schema', () => {
  const validate = validator().compile(editorSchema());

  it.each(['gateway.example.yaml', 'deploy/gateway.yaml'])(
    'accepts %s as written',
    async (file) => {
      const valid = validate(parseYaml(await readFile(file, 'utf8')));
      expect(validate.errors ?? []).toEqual([]);
      expect(valid).toBe(true);
    },
  );

  it('accepts the embedded default and the short forms', () => {
    expect(validate(embeddedDefault(8787))).toBe(true);
    expect(validate({ ...minimal, registration: { dcr: false }, tokens: { loginTtl: '5m' } })).toBe(
      true,
    );
  });

  it('refuses what the schema refuses by shape', () => {
    const refused = [
      { ...minimal, isuer: 'https://auth.example.com' },
      { ...minimal, issuer: 'not a url' },
      { ...minimal, listen: { port: '8787' } },
      { ...minimal, log: { level: 'trace' } },
      { ...minimal, store: { redis: { url: 'http://redis' } } },
      { ...minimal, registration: { dcr: 'x' } },
      { ...minimal, resources: [{ url: 'https://mcp.example.com/mcp' }] },
    ];
    for (const raw of refused) {
      expect([validate(raw), configSchema.safeParse(raw).success]).toEqual([false, false]);
    }
  });

  it('lets a checked string hold a ${NAME} reference, as the service interpolates first', () => {
    expect(validate({ ...minimal, issuer: 'https://auth.${DOMAIN}' })).toBe(true);
    // The reference renders the schema without that allowance.
    const issuer = configJsonSchema().properties?.issuer;
    expect(issuer).toMatchObject({ type: 'string', format: 'uri' });
  });
});
