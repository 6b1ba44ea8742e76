/**
 * Measures the tool-definition scanner (src/tool-pinning/scanner.ts) on its two corpora:
 *
 * - tests/fixtures/tool-definitions/attacks.json: published tool-poisoning, shadowing and
 *   rug-pull definitions, each with its source; the share the scanner flags (rug pulls are
 *   also caught by the pin whatever the scanner says: any change is held);
 * - tests/fixtures/tool-definitions/attacks-held-out.json: more of them, written separately
 *   from the rules (and ten tricky honest definitions, `benign`), measured first before any
 *   rule was changed for them (docs/tool-pinning.md gives both measurements);
 * - tests/fixtures/tool-definitions/benign/: the definitions real MCP servers published on npm
 *   list (collected by scripts/collect-tool-definitions.ts); every one flagged is a false
 *   positive.
 *
 * `npx tsx scripts/measure-scanner.ts` prints the rates, the misses and the false positives;
 * docs/tool-pinning.md quotes them. The unit test tests/unit/tool-pinning/scanner-corpus.test.ts
 * keeps them from regressing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { snapshotOf, type DefinitionKind } from '../src/tool-pinning/definitions.js';
import { contextFor, scanDefinition, type Finding } from '../src/tool-pinning/scanner.js';

const FIXTURES = fileURLToPath(new URL('../tests/fixtures/tool-definitions/', import.meta.url));

interface AttackEntry {
  id: string;
  category: string;
  server: string;
  definition: Record<string, unknown>;
  shadows?: string;
  previous?: Record<string, unknown>;
}

interface AttackResult {
  total: number;
  flagged: number;
  /** Flagged, or a rug pull (held by the pin whatever the scanner says). */
  caught: number;
  missed: { id: string; category: string }[];
  byCategory: Record<string, { total: number; flagged: number }>;
}

export interface Measurement {
  attacks: AttackResult;
  heldOut: AttackResult & { benign: number; falsePositives: string[] };
  benign: {
    servers: number;
    definitions: number;
    falsePositives: { server: string; key: string; findings: Finding[] }[];
  };
}

function attackFindings(entry: AttackEntry): Finding[] {
  const snapshot = snapshotOf({ tool: [entry.definition] });
  const definitions = Object.values(snapshot.definitions);
  const others = new Set(entry.shadows ? [entry.shadows] : []);
  return scanDefinition(definitions[0]!, contextFor(definitions, others));
}

function scanAttacks(entries: AttackEntry[]): AttackResult {
  const byCategory: AttackResult['byCategory'] = {};
  const missed: AttackResult['missed'] = [];
  let caught = 0;
  for (const entry of entries) {
    const flagged = attackFindings(entry).length > 0;
    const counts = (byCategory[entry.category] ??= { total: 0, flagged: 0 });
    counts.total += 1;
    if (flagged) counts.flagged += 1;
    else missed.push({ id: entry.id, category: entry.category });
    if (flagged || entry.previous) caught += 1;
  }
  return {
    total: entries.length,
    flagged: entries.length - missed.length,
    caught,
    missed,
    byCategory,
  };
}

function readJson<T>(name: string): T {
  return JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8')) as T;
}

/** Scans the corpora. */
export function measure(): Measurement {
  const attacks = scanAttacks(readJson<{ entries: AttackEntry[] }>('attacks.json').entries);
  const heldOutFile = readJson<{
    entries: AttackEntry[];
    benign: { id: string; definition: Record<string, unknown> }[];
  }>('attacks-held-out.json');
  const heldOutFalse = heldOutFile.benign
    .filter((entry) => attackFindings({ ...entry, category: 'benign', server: '' }).length > 0)
    .map((entry) => entry.id);
  const heldOut = {
    ...scanAttacks(heldOutFile.entries),
    benign: heldOutFile.benign.length,
    falsePositives: heldOutFalse,
  };

  const benignDir = path.join(FIXTURES, 'benign');
  const files = readdirSync(benignDir).filter((name) => name.endsWith('.json'));
  const falsePositives: Measurement['benign']['falsePositives'] = [];
  let definitions = 0;
  for (const file of files) {
    const server = JSON.parse(readFileSync(path.join(benignDir, file), 'utf8')) as Record<
      string,
      unknown
    >;
    const lists: Partial<Record<DefinitionKind, Record<string, unknown>[]>> = {
      tool: (server.tools ?? []) as Record<string, unknown>[],
      prompt: (server.prompts ?? []) as Record<string, unknown>[],
      resourceTemplate: (server.resourceTemplates ?? []) as Record<string, unknown>[],
    };
    const snapshot = snapshotOf(lists);
    const all = Object.values(snapshot.definitions);
    const context = contextFor(all, new Set());
    for (const [key, definition] of Object.entries(snapshot.definitions)) {
      definitions += 1;
      const findings = scanDefinition(definition, context);
      if (findings.length > 0) {
        falsePositives.push({ server: String(server.package ?? file), key, findings });
      }
    }
  }
  return {
    attacks,
    heldOut,
    benign: { servers: files.length, definitions, falsePositives },
  };
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function report(name: string, result: AttackResult): void {
  const percent = (count: number) => ((count / result.total) * 100).toFixed(1);
  say(
    `${name}: ${result.flagged} of ${result.total} flagged by the scanner (${percent(result.flagged)}%), ${result.caught} caught with the pin (${percent(result.caught)}%)`,
  );
  for (const [category, counts] of Object.entries(result.byCategory).sort()) {
    say(`  ${category}: ${counts.flagged}/${counts.total}`);
  }
  for (const miss of result.missed) say(`  missed: ${miss.id} (${miss.category})`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = measure();
  report('attacks.json', result.attacks);
  report('attacks-held-out.json', result.heldOut);
  say(
    `attacks-held-out.json honest definitions: ${result.heldOut.falsePositives.length} of ${result.heldOut.benign} flagged ${result.heldOut.falsePositives.join(' ')}`,
  );
  const { benign } = result;
  say(
    `real servers: ${benign.falsePositives.length} flagged of ${benign.definitions} definitions from ${benign.servers} servers`,
  );
  for (const fp of benign.falsePositives) {
    say(`  false positive: ${fp.server} ${fp.key}: ${JSON.stringify(fp.findings)}`);
  }
}
