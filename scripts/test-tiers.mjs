/**
 * Runs the named Jest tiers (projects of jest.config.js) one after the other, each in its own
 * Jest process so that one tier's load never weighs on another's, and ends with one line for
 * all of them: `Total: N passed, N failed, N skipped`. Stops at the first tier that fails.
 * Arguments after `--` go to every Jest run (a path pattern, `-t`, …).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const split = args.indexOf('--');
const tiers = split === -1 ? args : args.slice(0, split);
const extra = split === -1 ? [] : args.slice(split + 1);
if (tiers.length === 0) {
  console.error('usage: node scripts/test-tiers.mjs <tier>… [-- <jest arguments>]');
  process.exit(2);
}

const outDir = join('.cache', 'test-tiers');
mkdirSync(outDir, { recursive: true });
const total = { passed: 0, failed: 0, skipped: 0 };
let status = 0;
for (const tier of tiers) {
  const outputFile = join(outDir, `${tier}.json`);
  rmSync(outputFile, { force: true });
  const run = spawnSync(
    process.execPath,
    [
      '--experimental-vm-modules',
      '--no-warnings=ExperimentalWarning',
      'node_modules/jest/bin/jest.js',
      '--selectProjects',
      tier,
      '--json',
      '--outputFile',
      outputFile,
      '--passWithNoTests',
      ...extra,
    ],
    { stdio: 'inherit' },
  );
  try {
    const results = JSON.parse(readFileSync(outputFile, 'utf8'));
    total.passed += results.numPassedTests;
    total.failed += results.numFailedTests;
    total.skipped += results.numPendingTests + results.numTodoTests;
  } catch {
    // Jest died before writing its results: its own output says why; the status says it failed.
  }
  status = run.status ?? 1;
  if (status !== 0) break;
}
console.log(`Total: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(status);
