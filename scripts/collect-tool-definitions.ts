/**
 * `npx tsx scripts/collect-tool-definitions.ts [package ...]`: builds the benign corpus that the
 * tool-poisoning scanner is measured on for false positives. It installs each MCP server of
 * SERVERS at its pinned version into .cache/tool-corpus/, starts it over stdio with the MCP SDK's
 * client, lists its tools, prompts and resource templates, and writes what the server answered to
 * tests/fixtures/tool-definitions/benign/<package, with "/" as "__">.json.
 *
 * Definitions are kept exactly as the server sent them (every field, key order as sent): the
 * corpus is only worth something if it is what a gateway would see. Servers run without accounts:
 * dummy tokens where a server checks for one at start, a temporary HOME and working directory so
 * that nothing on this machine leaks in, and telemetry turned off where a server has the switch.
 *
 * With package names as arguments only those servers are collected. Exits 1 when any server
 * failed to install, start or list.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ErrorCode, McpError, ResultSchema } from '@modelcontextprotocol/sdk/types.js';
import * as prettier from 'prettier';

/** One server of the corpus, pinned to an exact published version. */
interface ServerSpec {
  readonly package: string;
  readonly version: string;
  /** Why it is in the corpus. */
  readonly reason: string;
  /** The package's bin to run when it has more than one. */
  readonly bin?: string;
  /** Command-line arguments; `dir` is an empty temporary directory the server may use. */
  readonly args?: (dir: string) => string[];
  /** Extra environment: dummy credentials, telemetry and update-check switches. */
  readonly env?: (dir: string) => Record<string, string>;
  /**
   * Shell scripts put first on PATH under these command names, for a server that runs a helper
   * program at start which listing does not need (and which would fetch unpinned code).
   */
  readonly stubCommands?: Record<string, string>;
}

const SERVERS: readonly ServerSpec[] = [
  {
    package: '@modelcontextprotocol/server-filesystem',
    version: '2026.8.31',
    reason: 'reference server: file tools with long, instruction-like descriptions',
    args: (dir) => [dir],
  },
  {
    package: '@modelcontextprotocol/server-memory',
    version: '2026.8.31',
    reason: 'reference server: knowledge-graph tools with nested object schemas',
    env: (dir) => ({ MEMORY_FILE_PATH: path.join(dir, 'memory.jsonl') }),
  },
  {
    package: '@modelcontextprotocol/server-everything',
    version: '2026.8.31',
    reason: 'reference server exercising every protocol feature: prompts, templates, annotations',
    args: () => ['stdio'],
  },
  {
    package: '@modelcontextprotocol/server-sequential-thinking',
    version: '2026.8.31',
    reason: 'reference server: one tool whose description tells the model how to think',
  },
  {
    package: '@modelcontextprotocol/server-github',
    version: '2025.4.8',
    reason: 'archived reference server, still widely installed: many API-wrapping tools',
    env: () => ({ GITHUB_PERSONAL_ACCESS_TOKEN: 'dummy-token-not-used' }),
  },
  {
    package: '@playwright/mcp',
    version: '0.0.86',
    reason: 'popular browser automation server; all optional capabilities enabled',
    args: (dir) => [
      '--headless',
      '--isolated',
      '--caps=vision,pdf,devtools',
      `--output-dir=${path.join(dir, 'output')}`,
    ],
  },
  {
    package: 'chrome-devtools-mcp',
    version: '1.11.0',
    reason: 'popular browser debugging server with performance and network tools',
    bin: 'chrome-devtools-mcp',
    args: () => ['--headless', '--isolated', '--no-usage-statistics'],
    // Without the second switch it starts a detached npm registry version check.
    env: () => ({
      CHROME_DEVTOOLS_MCP_NO_USAGE_STATISTICS: '1',
      CHROME_DEVTOOLS_MCP_NO_UPDATE_CHECKS: '1',
    }),
  },
  {
    package: '@upstash/context7-mcp',
    version: '4.1.1',
    reason: 'popular documentation-lookup server whose descriptions steer tool order',
  },
  {
    package: '@notionhq/notion-mcp-server',
    version: '2.5.2',
    reason: 'official Notion server: tools generated from an OpenAPI document',
    env: () => ({ NOTION_TOKEN: 'ntn_dummy_token_not_used' }),
  },
  {
    package: 'tavily-mcp',
    version: '0.2.22',
    reason: 'popular web search server with long parameter descriptions',
    env: () => ({ TAVILY_API_KEY: 'tvly-dummy-key-not-used' }),
  },
  {
    package: 'firecrawl-mcp',
    version: '3.26.0',
    reason: 'popular scraping server with usage guidance in its descriptions',
    env: () => ({ FIRECRAWL_API_KEY: 'fc-dummy-key-not-used' }),
  },
  {
    package: '@heroku/mcp-server',
    // 1.2.6 to 1.2.8 import SDK paths without ".js" and fail to start under Node's ESM loader.
    version: '1.2.0',
    reason: 'official Heroku server: app, dyno, add-on and Postgres tools',
    env: () => ({ HEROKU_API_KEY: 'dummy-key-not-used' }),
    // At start it runs `npx -y heroku@latest --repl` and exits when that is missing; the stub
    // answers the version check and then idles, so no CLI is downloaded. Without a `heroku` on
    // PATH its plugin check finds no AI plugin, so the AI tools are not listed.
    stubCommands: {
      npx: 'if [ "$1" = --version ]; then echo 10.0.0; else exec cat >/dev/null; fi',
    },
  },
  {
    package: 'mcp-server-kubernetes',
    version: '4.1.7',
    reason: 'popular cluster management server with destructive-operation tools',
  },
  {
    package: '@supabase/mcp-server-supabase',
    version: '0.13.0',
    reason: 'official Supabase server: database, branching, functions and storage tools',
    // Every feature but "docs", whose tool description is fetched from Supabase when listing.
    args: () => [
      '--access-token=dummy-token-not-used',
      '--features=account,database,debugging,development,functions,branching,storage',
    ],
  },
  {
    package: '@browserbasehq/mcp-server-browserbase',
    version: '2.4.3',
    reason: 'official Browserbase server: cloud browser tools',
    env: () => ({
      BROWSERBASE_API_KEY: 'bb_dummy_key_not_used',
      BROWSERBASE_PROJECT_ID: 'dummy-project',
      GEMINI_API_KEY: 'dummy-key-not-used',
    }),
  },
];

const ROOT = path.resolve(import.meta.dirname, '..');
const PREFIX = path.join(ROOT, '.cache', 'tool-corpus');
const OUT_DIR = path.join(ROOT, 'tests', 'fixtures', 'tool-definitions', 'benign');
const SERVER_TIMEOUT_MS = 60_000;
/** A server that hands out cursors forever is a bug, not a corpus. */
const MAX_PAGES = 50;

/** Keeps install scripts from fetching browsers; the corpus needs none. */
const INSTALL_ENV = {
  ...process.env,
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1',
  PUPPETEER_SKIP_DOWNLOAD: '1',
};

type Definition = Record<string, unknown>;

interface Collected {
  tools: Definition[];
  prompts: Definition[];
  resourceTemplates: Definition[];
}

const run = promisify(execFile);

async function installedVersion(pkg: string): Promise<string | undefined> {
  try {
    const manifest = JSON.parse(
      await readFile(path.join(PREFIX, 'node_modules', pkg, 'package.json'), 'utf8'),
    ) as { version?: string };
    return manifest.version;
  } catch {
    return undefined;
  }
}

async function install(spec: ServerSpec): Promise<void> {
  if ((await installedVersion(spec.package)) === spec.version) return;
  await mkdir(PREFIX, { recursive: true });
  await run(
    'npm',
    [
      'install',
      '--prefix',
      PREFIX,
      '--no-audit',
      '--no-fund',
      '--save-exact',
      `${spec.package}@${spec.version}`,
    ],
    { env: INSTALL_ENV, maxBuffer: 16 * 1024 * 1024 },
  );
  const got = await installedVersion(spec.package);
  if (got !== spec.version) throw new Error(`installed ${got ?? 'nothing'}, not ${spec.version}`);
}

/** The absolute path of the script the package's bin entry points at. */
async function binPath(spec: ServerSpec): Promise<string> {
  const dir = path.join(PREFIX, 'node_modules', spec.package);
  const manifest = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as {
    bin?: string | Record<string, string>;
  };
  const { bin } = manifest;
  if (typeof bin === 'string') return path.join(dir, bin);
  const entries = Object.entries(bin ?? {});
  const chosen = spec.bin === undefined ? entries : entries.filter(([name]) => name === spec.bin);
  if (chosen.length !== 1 || chosen[0] === undefined) {
    throw new Error(`cannot choose a bin among ${entries.map(([name]) => name).join(', ')}`);
  }
  return path.join(dir, chosen[0][1]);
}

/**
 * Lists one kind of definition, page by page. The result is parsed with the SDK's loose result
 * schema so that the definitions come back as sent, not trimmed to the SDK's own Tool type.
 * A server may declare the resources capability without supporting templates; "method not
 * found" for prompts or templates then means none.
 */
async function listAll(
  client: Client,
  method: 'tools/list' | 'prompts/list' | 'resources/templates/list',
  key: 'tools' | 'prompts' | 'resourceTemplates',
  timeout: number,
): Promise<Definition[]> {
  const all: Definition[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    let result;
    try {
      result = await client.request(
        { method, params: cursor === undefined ? {} : { cursor } },
        ResultSchema,
        { timeout },
      );
    } catch (error) {
      const unsupported = error instanceof McpError && error.code === ErrorCode.MethodNotFound;
      if (unsupported && method !== 'tools/list' && page === 0) return [];
      throw error;
    }
    const items = (result as Record<string, unknown>)[key];
    if (!Array.isArray(items)) throw new Error(`${method}: no ${key} array in the result`);
    all.push(...(items as Definition[]));
    const next = (result as Record<string, unknown>).nextCursor;
    if (typeof next !== 'string' || next === '') return all;
    if (seen.has(next)) throw new Error(`${method}: cursor ${next} repeated`);
    seen.add(next);
    cursor = next;
  }
  throw new Error(`${method}: more than ${MAX_PAGES} pages`);
}

async function collect(spec: ServerSpec): Promise<Collected> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tool-corpus-'));
  const env: Record<string, string> = { HOME: dir, DO_NOT_TRACK: '1', ...spec.env?.(dir) };
  if (spec.stubCommands) {
    const stubs = path.join(dir, 'stub-bin');
    await mkdir(stubs);
    for (const [name, script] of Object.entries(spec.stubCommands)) {
      await writeFile(path.join(stubs, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    }
    env.PATH = `${stubs}${path.delimiter}${process.env.PATH ?? ''}`;
  }
  const stderr: string[] = [];
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [await binPath(spec), ...(spec.args?.(dir) ?? [])],
    env,
    cwd: dir,
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString('utf8'));
    if (stderr.length > 50) stderr.shift();
  });
  const client = new Client({ name: 'collect-tool-definitions', version: '1.0.0' });
  const deadline = Date.now() + SERVER_TIMEOUT_MS;
  const left = (): number => Math.max(1, deadline - Date.now());
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${SERVER_TIMEOUT_MS} ms`)),
      SERVER_TIMEOUT_MS,
    );
  });
  try {
    const work = (async (): Promise<Collected> => {
      await client.connect(transport, { timeout: left() });
      const caps = client.getServerCapabilities() ?? {};
      return {
        tools: caps.tools ? await listAll(client, 'tools/list', 'tools', left()) : [],
        prompts: caps.prompts ? await listAll(client, 'prompts/list', 'prompts', left()) : [],
        resourceTemplates: caps.resources
          ? await listAll(client, 'resources/templates/list', 'resourceTemplates', left())
          : [],
      };
    })();
    // Once timed out, closing the client fails `work` too; that failure is already reported.
    work.catch(() => undefined);
    return await Promise.race([work, timedOut]);
  } catch (error) {
    const tail = stderr.join('').trim().split('\n').slice(-15).join('\n');
    throw new Error(`${(error as Error).message}${tail ? `\n--- server stderr ---\n${tail}` : ''}`);
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function writeFixture(spec: ServerSpec, collected: Collected): Promise<string> {
  const file = path.join(OUT_DIR, `${spec.package.replaceAll('/', '__')}.json`);
  const body = {
    package: spec.package,
    version: spec.version,
    collectedWith: 'scripts/collect-tool-definitions.ts',
    ...collected,
  };
  // Written as Prettier prints it, since `npm run lint` checks JSON too.
  const options = { ...(await prettier.resolveConfig(file)), filepath: file };
  await writeFile(file, await prettier.format(JSON.stringify(body), options));
  return file;
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !SERVERS.some((spec) => spec.package === name));
if (unknown.length > 0) {
  process.stderr.write(`not in SERVERS: ${unknown.join(', ')}\n`);
  process.exit(2);
}
const chosen = SERVERS.filter((spec) => wanted.length === 0 || wanted.includes(spec.package));

await mkdir(OUT_DIR, { recursive: true });
const started = Date.now();
const totals = { tools: 0, prompts: 0, resourceTemplates: 0 };
const failed: string[] = [];
const width = Math.max(...chosen.map((spec) => `${spec.package}@${spec.version}`.length));
for (const spec of chosen) {
  const label = `${spec.package}@${spec.version}`;
  try {
    await install(spec);
    const collected = await collect(spec);
    await writeFixture(spec, collected);
    totals.tools += collected.tools.length;
    totals.prompts += collected.prompts.length;
    totals.resourceTemplates += collected.resourceTemplates.length;
    process.stdout.write(
      `${label.padEnd(width)}  tools ${String(collected.tools.length).padStart(3)}` +
        `  prompts ${String(collected.prompts.length).padStart(2)}` +
        `  templates ${String(collected.resourceTemplates.length).padStart(2)}\n`,
    );
  } catch (error) {
    failed.push(spec.package);
    process.stdout.write(`${label.padEnd(width)}  FAILED: ${(error as Error).message}\n`);
  }
}
const seconds = ((Date.now() - started) / 1000).toFixed(1);
process.stdout.write(
  `${chosen.length - failed.length}/${chosen.length} servers: ${totals.tools} tools, ` +
    `${totals.prompts} prompts, ${totals.resourceTemplates} resource templates in ${seconds} s\n`,
);
if (failed.length > 0) {
  process.stderr.write(`failed: ${failed.join(', ')}\n`);
  process.exitCode = 1;
}
