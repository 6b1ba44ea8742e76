/**
 * `npm run docs:config`: writes the key reference of docs/configuration.md and the editor
 * schema docs/gateway.schema.json from src/config/schema.ts. With `--check` it writes nothing
 * and exits 1 when either file is out of step (as the unit test does).
 *
 * The render is printed as Prettier prints it, without Prettier, so that the unit test stays
 * fast; this script makes sure of it, since `npm run lint` checks the written files.
 */
import { readFile, writeFile } from 'node:fs/promises';
import * as prettier from 'prettier';
import { CONFIG_DOC, EDITOR_SCHEMA, renderConfigDocs, staleConfigDocs } from './config-docs.js';

const check = process.argv.includes('--check');

const rendered = renderConfigDocs(await readFile(CONFIG_DOC, 'utf8'));
for (const file of [CONFIG_DOC, EDITOR_SCHEMA] as const) {
  const options = { ...(await prettier.resolveConfig(file)), filepath: file };
  if (!(await prettier.check(rendered[file], options))) {
    process.stderr.write(
      `${file}: the render is not as Prettier prints it (src/config/reference.ts); ` +
        `compare with npx prettier ${file}\n`,
    );
    process.exitCode = 1;
  }
}

const stale = await staleConfigDocs(rendered);
for (const { file, fresh } of stale) {
  if (check) {
    process.stderr.write(`${file} is out of step with src/config/schema.ts\n`);
  } else {
    await writeFile(file, fresh);
    process.stdout.write(`${file} updated\n`);
  }
}
if (stale.length === 0) process.stdout.write('configuration docs are up to date\n');
else if (check) {
  process.stderr.write('run npm run docs:config\n');
  process.exitCode = 1;
}
