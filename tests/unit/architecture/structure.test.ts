/**
 * The structural rules of `src/` (docs/architecture.md), checked on the sources with the
 * TypeScript compiler's parser (no type-checking, no program: every file is parsed on its own,
 * which keeps the suite well under a second):
 *
 * - no two folders of `src/` depend on each other through value imports, directly or through
 *   other folders (`import type`, and imports whose named bindings are all `type`, are erased
 *   at compile time and do not count);
 * - no function is longer than 200 lines;
 * - comments stay true: none points at `../shared`, at an issue number (`#14`, `issue 14`) or
 *   at a path outside the repository;
 * - only the composition (src/main.ts, src/gateway.ts, src/app/services.ts, src/config/,
 *   src/cli/) handles the whole `GatewayConfig`: every other module's exported functions,
 *   classes, interfaces and types take the slice they read, `Pick<GatewayConfig, …>` or
 *   `GatewayConfig['section']`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const srcDir = path.join(root, 'src');
const MAX_FUNCTION_LINES = 200;

interface SourceFile {
  /** Path relative to the repository, with `/`. */
  name: string;
  absolute: string;
  ast: ts.SourceFile;
}

function listSources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return listSources(full);
    return /\.(ts|mts|cts)$/.test(entry) && !entry.endsWith('.d.ts') ? [full] : [];
  });
}

const sources: SourceFile[] = listSources(srcDir).map((absolute) => ({
  name: path.relative(root, absolute).split(path.sep).join('/'),
  absolute,
  ast: ts.createSourceFile(absolute, readFileSync(absolute, 'utf8'), ts.ScriptTarget.Latest, true),
}));

/** The folder of `src/` a file belongs to: its first segment, `(root)` for `src/*.ts`. */
function folderOf(absolute: string): string {
  const parts = path.relative(srcDir, absolute).split(path.sep);
  return parts.length === 1 ? '(root)' : (parts[0] as string);
}

/** The file a relative specifier names (`./x.js` is written for `./x.ts`), if it is in src/. */
function resolveSpecifier(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = [
    base,
    base.replace(/\.(m|c)?js$/, '.$1ts'),
    `${base}.ts`,
    path.join(base, 'index.ts'),
  ];
  const found = candidates.find((candidate) => {
    try {
      return statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
  return found && !path.relative(srcDir, found).startsWith('..') ? found : undefined;
}

/** Whether an import or re-export exists at run time (is not erased by the compiler). */
function isValueImport(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) {
    if (node.isTypeOnly) return false;
    const clause = node.exportClause;
    if (clause && ts.isNamedExports(clause) && clause.elements.length > 0) {
      return clause.elements.some((element) => !element.isTypeOnly);
    }
    return true;
  }
  const clause = node.importClause;
  if (!clause) return true; // `import './x.js'`: run for its effects
  if (clause.isTypeOnly) return false;
  if (clause.name) return true;
  const bindings = clause.namedBindings;
  if (!bindings || ts.isNamespaceImport(bindings)) return true;
  // `import {} from` is kept by `verbatimModuleSyntax`; `import { type A, type B }` is not.
  return bindings.elements.length === 0 || bindings.elements.some((element) => !element.isTypeOnly);
}

interface ImportEdge {
  from: string;
  to: string;
  line: number;
}

/** Every value import of a file (static, re-exports and `import()`) that resolves into src/. */
function valueImports(file: SourceFile): ImportEdge[] {
  const edges: ImportEdge[] = [];
  const add = (specifier: ts.Expression, at: ts.Node) => {
    if (!ts.isStringLiteralLike(specifier)) return;
    const target = resolveSpecifier(file.absolute, specifier.text);
    if (!target) return;
    const line = file.ast.getLineAndCharacterOfPosition(at.getStart()).line + 1;
    edges.push({ from: file.absolute, to: target, line });
  };
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      isValueImport(node)
    ) {
      add(node.moduleSpecifier, node);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0]
    ) {
      add(node.arguments[0], node);
    }
    ts.forEachChild(node, visit);
  };
  visit(file.ast);
  return edges;
}

/** Strongly connected components of size > 1 (Tarjan): the groups of folders in a cycle. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const lowlinks = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (node: string): void => {
    indices.set(node, index);
    lowlinks.set(node, index);
    index += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        connect(next);
        lowlinks.set(node, Math.min(lowlinks.get(node)!, lowlinks.get(next)!));
      } else if (onStack.has(next)) {
        lowlinks.set(node, Math.min(lowlinks.get(node)!, indices.get(next)!));
      }
    }
    if (lowlinks.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!indices.has(node)) connect(node);
  return found;
}

/** Every comment of a file, once, with its line. */
function comments(file: SourceFile): { text: string; line: number }[] {
  const text = file.ast.getFullText();
  const seen = new Map<number, ts.CommentRange>();
  const collect = (ranges: ts.CommentRange[] | undefined) => {
    for (const range of ranges ?? []) seen.set(range.pos, range);
  };
  const visit = (node: ts.Node): void => {
    collect(ts.getLeadingCommentRanges(text, node.pos));
    collect(ts.getTrailingCommentRanges(text, node.end));
    ts.forEachChild(node, visit);
  };
  visit(file.ast);
  collect(ts.getLeadingCommentRanges(text, file.ast.endOfFileToken.pos));
  return [...seen.values()]
    .sort((a, b) => a.pos - b.pos)
    .map((range) => ({
      text: text.slice(range.pos, range.end),
      line: file.ast.getLineAndCharacterOfPosition(range.pos).line + 1,
    }));
}

/** Why a comment does not stay true, or `undefined`. */
function commentProblem(file: SourceFile, comment: string): string | undefined {
  if (comment.includes('../shared')) return 'refers to ../shared';
  const issue =
    /(?<![\w&/])#\d+\b|\b(?:issue|issues|ticket|PR)\s+#?\d+\b|\/(?:issues|pull)\/\d+/i.exec(
      comment,
    );
  if (issue) return `refers to an issue number (${issue[0]})`;
  const absolute = /(?:^|[\s('"`])((?:~|\/(?:home|Users|root|work|tmp|mnt))\/[^\s'"`)]*)/.exec(
    comment,
  );
  if (absolute) return `refers to a path outside the repository (${absolute[1]})`;
  for (const match of comment.matchAll(/(?:^|[\s('"`])((?:\.\.\/)+[^\s'"`),;]*)/g)) {
    const target = path.resolve(path.dirname(file.absolute), match[1] as string);
    if (path.relative(root, target).startsWith('..')) {
      return `refers to a path outside the repository (${match[1]})`;
    }
  }
  return undefined;
}

/** A readable name for a function-like node. */
function functionName(node: ts.Node): string {
  const named = node as { name?: ts.Node };
  if (named.name && ts.isIdentifier(named.name)) return named.name.text;
  if (named.name) return named.name.getText();
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) {
    return parent.name.text;
  }
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText();
  return '(anonymous)';
}

/** The functions (declarations, methods, arrows, constructors…) of a file over the limit. */
function longFunctions(file: SourceFile): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = file.ast.getLineAndCharacterOfPosition(node.getStart()).line;
      const end = file.ast.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_FUNCTION_LINES) {
        found.push(`${file.name}:${start + 1} ${functionName(node)}: ${lines} lines`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file.ast);
  return found;
}

/** The modules that compose the service (paths under src/): they may hold the whole config. */
const COMPOSITION = [/^main\.ts$/, /^gateway\.ts$/, /^app\/services\.ts$/, /^config\//, /^cli\//];

function isComposition(file: SourceFile): boolean {
  const name = path.relative(srcDir, file.absolute).split(path.sep).join('/');
  return COMPOSITION.some((pattern) => pattern.test(name));
}

/** The rightmost name of a type reference (`GatewayConfig` of `schema.GatewayConfig`). */
function referencedName(node: ts.TypeReferenceNode): string {
  const name = node.typeName;
  return ts.isIdentifier(name) ? name.text : name.right.text;
}

/**
 * The references to the whole configuration in a declaration's types, function bodies left
 * out: every `GatewayConfig` (or a local name for it) except a slice of it, the object of
 * `GatewayConfig['section']` or the first argument of `Pick<GatewayConfig, …>`.
 */
function wholeConfigReferences(node: ts.Node, names: Set<string>): ts.TypeReferenceNode[] {
  const found: ts.TypeReferenceNode[] = [];
  const sliced = (ref: ts.TypeReferenceNode): boolean => {
    const parent = ref.parent;
    if (ts.isIndexedAccessTypeNode(parent)) return parent.objectType === ref;
    return (
      ts.isTypeReferenceNode(parent) &&
      referencedName(parent) === 'Pick' &&
      parent.typeArguments?.[0] === ref
    );
  };
  const visit = (child: ts.Node): void => {
    const parent = child.parent as ts.Node | undefined;
    if (parent && ts.isFunctionLike(parent) && 'body' in parent && parent.body === child) return;
    if (ts.isTypeReferenceNode(child) && names.has(referencedName(child)) && !sliced(child)) {
      found.push(child);
    }
    ts.forEachChild(child, visit);
  };
  visit(node);
  return found;
}

/** The names a file gives the whole configuration: `GatewayConfig`, import and type aliases. */
function wholeConfigNames(file: SourceFile): Set<string> {
  const names = new Set(['GatewayConfig']);
  for (const statement of file.ast.statements) {
    const bindings = ts.isImportDeclaration(statement)
      ? statement.importClause?.namedBindings
      : undefined;
    if (!bindings || !ts.isNamedImports(bindings)) continue;
    for (const element of bindings.elements) {
      if ((element.propertyName ?? element.name).text === 'GatewayConfig') {
        names.add(element.name.text);
      }
    }
  }
  let grew = true;
  while (grew) {
    grew = false;
    for (const statement of file.ast.statements) {
      if (
        ts.isTypeAliasDeclaration(statement) &&
        !names.has(statement.name.text) &&
        wholeConfigReferences(statement.type, names).length > 0
      ) {
        names.add(statement.name.text);
        grew = true;
      }
    }
  }
  return names;
}

/** A file's exported declarations (`export …`, or named in an `export { … }` of the file). */
function exportedDeclarations(file: SourceFile): ts.Statement[] {
  const listed = new Set<string>();
  for (const statement of file.ast.statements) {
    if (ts.isExportDeclaration(statement) && !statement.moduleSpecifier) {
      const clause = statement.exportClause;
      if (clause && ts.isNamedExports(clause)) {
        for (const element of clause.elements)
          listed.add((element.propertyName ?? element.name).text);
      }
    }
  }
  return file.ast.statements.filter((statement) => {
    const modifiers = ts.canHaveModifiers(statement) ? ts.getModifiers(statement) : undefined;
    if (modifiers?.some((modifier) => modifier.kind === ts.SyntaxKind.ExportKeyword)) return true;
    if (ts.isVariableStatement(statement)) {
      return statement.declarationList.declarations.some(
        (declaration) => ts.isIdentifier(declaration.name) && listed.has(declaration.name.text),
      );
    }
    const named = statement as { name?: ts.Node };
    return (
      (ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement)) &&
      named.name !== undefined &&
      ts.isIdentifier(named.name) &&
      listed.has(named.name.text)
    );
  });
}

/** Exported declarations outside the composition that take or hold the whole configuration. */
function wholeConfigHolders(file: SourceFile): string[] {
  if (isComposition(file)) return [];
  const names = wholeConfigNames(file);
  return exportedDeclarations(file).flatMap((statement) => {
    const declared = ts.isVariableStatement(statement)
      ? statement.declarationList.declarations.map((d) => d.name.getText()).join(', ')
      : functionName(statement);
    return wholeConfigReferences(statement, names).map((ref) => {
      const line = file.ast.getLineAndCharacterOfPosition(ref.getStart()).line + 1;
      const where = ref.parent.getText().split('\n')[0];
      return `${file.name}:${line} ${declared}: the whole configuration (${where})`;
    });
  });
}

describe('src/ structure', () => {
  it('has no import cycles between folders (value imports)', () => {
    const graph = new Map<string, Set<string>>();
    const evidence = new Map<string, string[]>();
    for (const file of sources) {
      for (const edge of valueImports(file)) {
        const from = folderOf(edge.from);
        const to = folderOf(edge.to);
        if (from === to) continue;
        if (!graph.has(from)) graph.set(from, new Set());
        graph.get(from)!.add(to);
        const key = `${from} → ${to}`;
        const where = `${file.name}:${edge.line} → ${path.relative(root, edge.to)}`;
        evidence.set(key, [...(evidence.get(key) ?? []), where]);
      }
    }
    const problems = cycles(graph).map((component) => {
      const members = new Set(component);
      const edges = [...evidence.entries()]
        .filter(([key]) => {
          const [from, to] = key.split(' → ');
          return members.has(from as string) && members.has(to as string);
        })
        .map(([key, where]) => `  ${key}:\n${where.map((w) => `    ${w}`).join('\n')}`);
      return `cycle between ${component.join(', ')}:\n${edges.join('\n')}`;
    });
    expect(problems).toEqual([]);
  });

  it(`has no function longer than ${MAX_FUNCTION_LINES} lines`, () => {
    expect(sources.flatMap(longFunctions)).toEqual([]);
  });

  it('has no comment pointing at ../shared, issue numbers or paths outside the repository', () => {
    const problems: string[] = [];
    for (const file of sources) {
      for (const comment of comments(file)) {
        const problem = commentProblem(file, comment.text);
        if (problem) problems.push(`${file.name}:${comment.line} ${problem}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('gives the whole GatewayConfig to the composition only (others take their slice)', () => {
    expect(sources.flatMap(wholeConfigHolders)).toEqual([]);
  });

  // The checks above must be able to fail: each is run once on a known-bad sample.
  it('recognises the structures it forbids', () => {
    // The checks above read the real tree, not an empty list.
    expect(sources.length).toBeGreaterThan(100);
    expect(sources.map((file) => file.name)).toContain('src/gateway.ts');
    const sample = (name: string, text: string): SourceFile => {
      const absolute = path.join(srcDir, name);
      return {
        name,
        absolute,
        ast: ts.createSourceFile(absolute, text, ts.ScriptTarget.Latest, true),
      };
    };
    const file = sample(
      'oauth/sample.ts',
      [
        "import type { A } from '../store/store.js';",
        "import { type B, type C } from '../store/store.js';",
        "import { Store } from '../store/store.js';",
        "export { StoreFullError } from '../store/store.js';",
        "export type { JsonObject } from '../store/store.js';",
        "const later = () => import('../store/memory-store.js');",
        '// see #14 and ../shared/thing.ts and ../../../elsewhere/notes.md',
      ].join('\n'),
    );
    expect(valueImports(file).map((edge) => edge.line)).toEqual([3, 4, 6]);
    const body = (lines: number) => Array.from({ length: lines - 2 }, () => '  step();');
    const functions = sample(
      'oauth/functions.ts',
      [
        ...['export function long() {', ...body(MAX_FUNCTION_LINES + 1), '}'],
        ...['const fits = () => {', ...body(MAX_FUNCTION_LINES), '};'],
      ].join('\n'),
    );
    expect(longFunctions(functions)).toEqual([`oauth/functions.ts:1 long: 201 lines`]);
    const [comment] = comments(file);
    expect(commentProblem(file, comment!.text)).toBe('refers to ../shared');
    expect(commentProblem(file, '// fixed in issue 14')).toMatch(/issue number/);
    expect(commentProblem(file, '// as #14 asked')).toMatch(/issue number/);
    expect(commentProblem(file, '// github.com/o/r/issues/14')).toMatch(/issue number/);
    expect(commentProblem(file, '// see ../../../notes.md')).toMatch(/outside the repository/);
    expect(commentProblem(file, '// see /work/notes/note.md')).toMatch(/outside the repository/);
    expect(commentProblem(file, '// see ../store/store.ts, RFC 6749 §5.2')).toBeUndefined();
    const configSample = [
      "import type { GatewayConfig, GatewayConfig as Settings } from '../config/schema.js';",
      'type Everything = Readonly<GatewayConfig>;',
      'export interface Deps {',
      '  config: GatewayConfig;',
      "  verify: GatewayConfig['verify'];",
      "  login: Pick<GatewayConfig, 'login' | 'access'>;",
      '}',
      'export function take(config: GatewayConfig | undefined): void {}',
      'export class Holder {',
      '  constructor(private readonly config: Settings) {}',
      '}',
      'export const arrow = (options: { config: Everything }) => options;',
      'function internal(config: GatewayConfig): void {}',
      'export { internal };',
      'function unexported(config: GatewayConfig): void {}',
      "export function sliced(config: Pick<GatewayConfig, 'issuer'>): void {",
      '  const whole: GatewayConfig = load();',
      '}',
    ].join('\n');
    expect(wholeConfigHolders(sample('admin/config-sample.ts', configSample))).toEqual([
      'admin/config-sample.ts:4 Deps: the whole configuration (config: GatewayConfig;)',
      'admin/config-sample.ts:8 take: the whole configuration (GatewayConfig | undefined)',
      'admin/config-sample.ts:10 Holder: the whole configuration (private readonly config: Settings)',
      'admin/config-sample.ts:12 arrow: the whole configuration (config: Everything)',
      'admin/config-sample.ts:13 internal: the whole configuration (config: GatewayConfig)',
    ]);
    // The composition may: the same text as src/gateway.ts, src/app/services.ts or a CLI command.
    expect(wholeConfigHolders(sample('gateway.ts', configSample))).toEqual([]);
    expect(wholeConfigHolders(sample('app/services.ts', configSample))).toEqual([]);
    expect(wholeConfigHolders(sample('cli/clients-command.ts', configSample))).toEqual([]);
    expect(wholeConfigHolders(sample('app/server.ts', configSample))).toHaveLength(5);
    expect(
      cycles(
        new Map([
          ['a', new Set(['b'])],
          ['b', new Set(['c'])],
          ['c', new Set(['a'])],
          ['d', new Set(['a'])],
        ]),
      ),
    ).toEqual([['a', 'b', 'c']]);
  });
});
