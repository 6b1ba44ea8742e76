import { writeSync } from 'node:fs';

/**
 * Prints one plain closing line as the run's very last output, for example
 * `Tests: 1033 passed, 0 failed, 4 skipped`, so that a reader or a CI log scanner that knows
 * nothing of Jest's layout can tell how many tests ran. Jest's own summary puts the counts in
 * another order, omits zero counts and is followed by other notices, hence the line is written
 * when the process exits.
 */
export default class ClosingLineReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const line = `Tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`;
    process.once('exit', () => writeSync(process.stderr.fd, line));
  }
}
