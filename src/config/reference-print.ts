/**
 * Prints the configuration reference (src/config/reference.ts) into docs/configuration.md's
 * GENERATED blocks, and the editor schema as JSON, exactly as Prettier would print them, so that
 * `prettier --check` passes on the written files without the generator (or the unit test that
 * re-renders them) running Prettier; scripts/generate-config-docs.ts checks that it holds.
 */
import {
  configJsonSchema,
  referenceSections,
  type JsonSchema,
  type ReferenceSection,
} from './reference.js';

/** The Markdown of each section (heading, description, table), by top-level key. */
export function renderReference(schema: JsonSchema = configJsonSchema()): Map<string, string> {
  return new Map(referenceSections(schema).map((section) => [section.key, renderSection(section)]));
}

export const beginMarker = (key: string) => `<!-- BEGIN GENERATED: ${key} -->`;
export const endMarker = (key: string) => `<!-- END GENERATED: ${key} -->`;
/** A generated block, and the blank lines after it (dropped with a block that is removed). */
const BLOCK = /<!-- BEGIN GENERATED: (\S+) -->[\s\S]*?<!-- END GENERATED: \1 -->(\n*)/g;

/**
 * `doc` with every generated block replaced by a fresh render. A key without a block gets one
 * where the schema's order puts it; a block whose key is gone is removed. Everything outside
 * the blocks is left as written.
 */
export function spliceReference(doc: string, sections: Map<string, string>): string {
  const block = (key: string) => `${beginMarker(key)}\n\n${sections.get(key)}\n\n${endMarker(key)}`;
  const present = new Set<string>();
  let result = doc.replace(BLOCK, (_whole, key: string, blankLines: string) => {
    present.add(key);
    return sections.has(key) ? block(key) + blankLines : '';
  });
  if (present.size === 0) {
    throw new Error(`no ${beginMarker('<key>')} … ${endMarker('<key>')} blocks to fill`);
  }
  // A new key goes before the block of the key after it, so that the hand-written notes of the
  // key before it stay with that key; a new last key goes after the last block's notes.
  const keys = [...sections.keys()];
  keys.forEach((key, index) => {
    if (present.has(key)) return;
    const next = keys.slice(index + 1).find((later) => present.has(later));
    let at: number;
    if (next !== undefined) {
      at = result.indexOf(beginMarker(next));
    } else {
      const lastEnd = result.lastIndexOf('<!-- END GENERATED: ');
      const heading = result.slice(lastEnd).search(/\n#{1,2} /);
      at = heading === -1 ? result.length : lastEnd + heading + 1;
    }
    const before = result.slice(0, at).replace(/\n*$/, '\n\n');
    result = `${before}${block(key)}\n\n${result.slice(at)}`;
    present.add(key);
  });
  return result;
}

function renderSection(section: ReferenceSection): string {
  const lines = [`### \`${section.key}\``, ''];
  if (section.description) lines.push(cell(section.description), '');
  const rows = section.rows.map((entry) =>
    [`\`${entry.key}\``, entry.type, entry.default, entry.description].map(cell),
  );
  lines.push(...alignedTable(['key', 'type', 'default', 'description'], rows));
  return lines.join('\n');
}

/**
 * A Markdown table with its columns padded as Prettier pads them (at least 3 wide), so that
 * `prettier --check` leaves the output alone without the generator running Prettier. Widths
 * count code points: every character the descriptions use is one column wide.
 */
function alignedTable(header: string[], rows: string[][]): string[] {
  const width = (text: string) => [...text].length;
  const widths = header.map((title, column) =>
    Math.max(3, width(title), ...rows.map((cells) => width(cells[column] ?? ''))),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((text, column) => text + ' '.repeat(widths[column]! - width(text))).join(' | ')} |`;
  return [line(header), line(widths.map((size) => '-'.repeat(size))), ...rows.map(line)];
}

/**
 * JSON as Prettier prints it (width 100): an object one key a line; an array on one line when it
 * holds no object and fits (`column`: where it starts; `trailing`: what follows it on the line),
 * else one item a line.
 */
export function prettyJson(value: unknown, indent = '', column = 0, trailing = ''): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const flat = `[${value.map((item) => JSON.stringify(item)).join(', ')}]`;
    const holdsObject = value.some((item) => typeof item === 'object' && item !== null);
    if (!holdsObject && column + flat.length + trailing.length <= 100) return flat;
    const items = value.map((item, index) => {
      const comma = index < value.length - 1 ? ',' : '';
      return inner + prettyJson(item, inner, inner.length, comma) + comma;
    });
    return `[\n${items.join('\n')}\n${indent}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}';
    const lines = entries.map(([key, item], index) => {
      const prefix = `${inner}${JSON.stringify(key)}: `;
      const comma = index < entries.length - 1 ? ',' : '';
      return prefix + prettyJson(item, inner, prefix.length, comma) + comma;
    });
    return `{\n${lines.join('\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** Text that stays inside one table cell. */
function cell(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
}
