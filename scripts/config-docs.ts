/**
 * The files `npm run docs:config` writes, rendered from the configuration schema
 * (src/config/reference.ts). The generator writes them; a unit test renders them again and
 * compares.
 */
import { readFile } from 'node:fs/promises';
import { prettyJson, renderReference, spliceReference } from '../src/config/reference-print.js';
import { editorSchema } from '../src/config/reference.js';

/** The hand-written guide whose GENERATED blocks hold the key reference. */
export const CONFIG_DOC = 'docs/configuration.md';
/** The editor JSON Schema for gateway.yaml. */
export const EDITOR_SCHEMA = 'docs/gateway.schema.json';

export interface ConfigDocs {
  [CONFIG_DOC]: string;
  [EDITOR_SCHEMA]: string;
}

/** Both files as they should be, given the current text of docs/configuration.md. */
export function renderConfigDocs(currentDoc: string): ConfigDocs {
  return {
    [CONFIG_DOC]: spliceReference(currentDoc, renderReference()),
    [EDITOR_SCHEMA]: `${prettyJson(editorSchema())}\n`,
  };
}

/** The committed files that differ from `fresh` (by default a fresh render); empty: in step. */
export async function staleConfigDocs(
  fresh?: ConfigDocs,
): Promise<{ file: string; fresh: string }[]> {
  fresh ??= renderConfigDocs(await readFile(CONFIG_DOC, 'utf8'));
  const stale: { file: string; fresh: string }[] = [];
  for (const [file, text] of Object.entries(fresh)) {
    const committed = await readFile(file, 'utf8').catch(() => undefined);
    if (committed !== text) stale.push({ file, fresh: text });
  }
  return stale;
}
