/**
 * A held change as an administrator reviews it (the CLI's `tools diff`, the admin console's
 * Tools view): each definition added, changed or removed as a unified diff of its JSON, and
 * the scanner's findings beside it.
 */
import { createTwoFilesPatch } from 'diff';
import type { DefinitionChange } from './definitions.js';
import type { PinRecord } from './pin-records.js';

/** One definition's change as a unified diff (approved → listed). */
export function changeDiff(change: DefinitionChange): string {
  const text = (value: unknown) => (value ? `${JSON.stringify(value, null, 2)}\n` : '');
  return createTwoFilesPatch(
    `approved/${change.key}`,
    `listed/${change.key}`,
    text(change.before),
    text(change.after),
    '',
    '',
    { context: 3 },
  ).trimEnd();
}

/** The pending change as a reader reviews it: one unified diff per definition, findings. */
export function describePending(record: PinRecord | undefined): string {
  const pending = record?.pending;
  if (!pending) return 'nothing is waiting for approval\n';
  const out = [
    `fingerprint ${pending.fingerprint}`,
    `detected ${new Date(pending.detectedAt).toISOString()}, ${pending.status}${pending.decidedBy ? ` by ${pending.decidedBy}` : ''}`,
    '',
  ];
  for (const change of pending.changes) {
    out.push(changeDiff(change));
    for (const finding of pending.findings[change.key] ?? []) {
      out.push(`  finding ${finding.rule} at ${finding.where}: ${finding.excerpt}`);
    }
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
