/**
 * Validation of the generated Traefik files against SchemaStore's
 * `traefik-v3-file-provider.json` (`managedServers.traefik.schemaFile`): the schema editors
 * and CI use for Traefik's dynamic configuration. It is a data file the deployment provides
 * (docs/admin.md says where to get it); the gateway does not ship a copy.
 */
import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import ajvFormats from 'ajv-formats';
import type { DocumentValidator } from './traefik-files.js';

// ajv-formats is CommonJS with `exports.default`: under NodeNext its default import is typed as
// the module object, while at run time it is the plugin function.
const addFormats = ajvFormats as unknown as typeof ajvFormats.default;

/** A validator for the schema in `file`; rejects when the file is not a JSON schema. */
export async function loadTraefikSchema(file: string): Promise<DocumentValidator> {
  const schema = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  // Some copies name their meta-schema https://json-schema.org/draft-07/schema, which Ajv
  // knows as http://json-schema.org/draft-07/schema#; draft-07 is Ajv's default.
  delete schema.$schema;
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(schema);
  return (document) =>
    validate(document)
      ? []
      : (validate.errors ?? []).map(
          (error) => `${error.instancePath || '(document)'}: ${error.message ?? 'invalid'}`,
        );
}
