/**
 * The real CrowdSec (Debian's 1.4.6) run offline from a self-contained configuration in a
 * temporary directory: every path in that directory,
 * `daemonize: false`, no Central API, the Local API on a free loopback port. The hub and the
 * grok patterns are copied from the Debian package; the parsers and scenarios to test are
 * copied into the configuration's parsers/ and scenarios/ directories, as a mount would put
 * them in the container.
 *
 * Two processes: the Local API (`crowdsec -no-cs`), which turns alerts into decisions through
 * the profiles, and the agent replaying a log file (`crowdsec -dsn file://… -type … -no-api`),
 * which parses it, runs the scenarios on the events' own timestamps, pushes alerts to the
 * Local API and exits. Decisions are then read as a bouncer would, from `GET /v1/decisions`.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findBinary } from '../helpers/binaries.js';
import { waitFor } from '../helpers/poll.js';
import { getFreePort } from '../helpers/ports.js';

const run = promisify(execFile);

/** Where Debian's crowdsec package puts the hub snapshot and the grok patterns. */
const DEBIAN_HUB = '/usr/share/crowdsec/hub';
const DEBIAN_PATTERNS = '/etc/crowdsec/patterns';

/** A decision as the bouncer API returns it. */
export interface Decision {
  id: number;
  origin: string;
  scenario: string;
  scope: string;
  type: string;
  value: string;
  /** Time left, as a Go duration ("23h59m58.5s"). */
  duration: string;
}

export interface CrowdSecOptions {
  /** Local parser files by stage (`s01-parse`: [file, …]). */
  parsers: Record<string, string[]>;
  /** Hub parsers by stage, as paths under the hub's parsers/<stage>/ directory. */
  hubParsers: Record<string, string[]>;
  scenarios: string[];
  profiles: string;
  /** acquis.yaml's contents (default: none; `-dsn` replaces it in a replay). */
  acquisition?: string;
  /** Files copied into the data directory: the lists hub scenarios read (`File(...)`). */
  dataFiles?: string[];
}

export interface CrowdSec {
  dir: string;
  lapiUrl: string;
  /** The Local API's output so far (for failure messages). */
  output(): string;
  /** Replays `file` through the parsers and scenarios; resolves when the agent has exited. */
  replay(file: string, type: string, timeoutMs?: number): Promise<string>;
  /** Every active decision (`GET /v1/decisions` with the bouncer key). */
  decisions(): Promise<Decision[]>;
  stop(): Promise<void>;
}

/** A fixed bouncer key keeps the test deterministic (`cscli bouncers add -k`). */
export const BOUNCER_KEY = 'mcp-gateway-test-bouncer-key-0123456789';

function binary(name: string): string {
  const found = findBinary(name);
  if (!found) throw new Error(`${name} not found`);
  return found;
}

/** Hours in a Go duration string such as "3h59m58.123s" or "45m2s". */
export function durationHours(duration: string): number {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:([\d.]+)s)?$/.exec(duration);
  if (!match) throw new Error(`not a Go duration: ${duration}`);
  return Number(match[1] ?? 0) + Number(match[2] ?? 0) / 60 + Number(match[3] ?? 0) / 3600;
}

function configYaml(dir: string, port: number): string {
  const at = (...parts: string[]) => path.join(dir, ...parts);
  return `common:
  daemonize: false
  log_media: stdout
  log_level: info
  working_dir: ${dir}
config_paths:
  config_dir: ${at('config')}/
  data_dir: ${at('data')}/
  simulation_path: ${at('config', 'simulation.yaml')}
  hub_dir: ${at('hub')}/
  index_path: ${at('hub', '.index.json')}
  notification_dir: ${at('config', 'notifications')}/
  plugin_dir: ${at('plugins')}/
crowdsec_service:
  acquisition_path: ${at('config', 'acquis.yaml')}
  parser_routines: 1
cscli:
  output: json
db_config:
  type: sqlite
  db_path: ${at('data', 'crowdsec.db')}
  use_wal: false
api:
  client:
    credentials_path: ${at('config', 'local_api_credentials.yaml')}
  server:
    listen_uri: 127.0.0.1:${port}
    profiles_path: ${at('config', 'profiles.yaml')}
    console_path: ${at('config', 'console.yaml')}
    trusted_ips: [127.0.0.1, '::1']
prometheus:
  enabled: false
`;
}

/** Waits for `child` to exit; kills it (SIGKILL) after `timeoutMs`. */
function exitOf(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Writes the self-contained configuration into `dir` (live-crowdsec.ts uses it too). */
export async function prepare(dir: string, port: number, options: CrowdSecOptions): Promise<void> {
  const config = path.join(dir, 'config');
  await cp(DEBIAN_HUB, path.join(dir, 'hub'), { recursive: true });
  await cp(DEBIAN_PATTERNS, path.join(config, 'patterns'), { recursive: true });
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await mkdir(path.join(config, 'scenarios'), { recursive: true });
  const stages = new Set([...Object.keys(options.parsers), ...Object.keys(options.hubParsers)]);
  for (const stage of stages) await mkdir(path.join(config, 'parsers', stage), { recursive: true });
  for (const [stage, files] of Object.entries(options.hubParsers)) {
    for (const file of files) {
      const source = path.join(DEBIAN_HUB, 'parsers', stage, file);
      await cp(source, path.join(config, 'parsers', stage, path.basename(file)));
    }
  }
  for (const [stage, files] of Object.entries(options.parsers)) {
    for (const file of files) {
      await cp(file, path.join(config, 'parsers', stage, path.basename(file)));
    }
  }
  for (const file of options.scenarios) {
    await cp(file, path.join(config, 'scenarios', path.basename(file)));
  }
  await cp(options.profiles, path.join(config, 'profiles.yaml'));
  await writeFile(path.join(config, 'simulation.yaml'), 'simulation: off\n');
  for (const file of options.dataFiles ?? []) {
    await cp(file, path.join(dir, 'data', path.basename(file)));
  }
  // The agent needs an acquisition file even when -dsn replaces it.
  await writeFile(path.join(config, 'acquis.yaml'), options.acquisition ?? '');
  await writeFile(path.join(config, 'config.yaml'), configYaml(dir, port));
}

/**
 * Prepares the configuration, registers the agent (machine) and the bouncer, and starts the
 * Local API; retries on another port if the one picked was taken meanwhile.
 */
export async function startCrowdSec(options: CrowdSecOptions): Promise<CrowdSec> {
  const root = await mkdtemp(path.join(tmpdir(), 'mcpgw-crowdsec-'));
  const crowdsec = binary('crowdsec');
  const cscli = binary('cscli');
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const dir = path.join(root, `attempt-${attempt}`);
    const port = await getFreePort();
    try {
      await prepare(dir, port, options);
      const configFile = path.join(dir, 'config', 'config.yaml');
      const credentials = path.join(dir, 'config', 'local_api_credentials.yaml');
      await run(
        cscli,
        ['-c', configFile, 'machines', 'add', 'replay', '--auto', '-f', credentials],
        {
          timeout: 30_000,
        },
      );
      await run(cscli, ['-c', configFile, 'bouncers', 'add', 'test-bouncer', '-k', BOUNCER_KEY], {
        timeout: 30_000,
      });
      const started = await startLapi(crowdsec, configFile, port);
      return {
        dir,
        lapiUrl: started.url,
        output: started.output,
        decisions: () => listDecisions(started.url),
        replay: (file, type, timeoutMs = 60_000) =>
          replay(crowdsec, configFile, file, type, timeoutMs),
        stop: async () => {
          await started.stop();
          await rm(root, { recursive: true, force: true });
        },
      };
    } catch (error) {
      lastError = error;
    }
  }
  await rm(root, { recursive: true, force: true });
  throw lastError;
}

async function startLapi(crowdsec: string, configFile: string, port: number) {
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(crowdsec, ['-c', configFile, '-no-cs'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += String(chunk)));
  child.stderr!.on('data', (chunk) => (output += String(chunk)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exitOf(child, 10_000);
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) {
          throw new Error(`the CrowdSec Local API exited (${child.exitCode}):\n${output}`);
        }
        const answer = await fetch(`${url}/v1/decisions`, {
          headers: { 'x-api-key': BOUNCER_KEY },
        }).catch(() => undefined);
        return answer?.status === 200;
      },
      { what: 'the CrowdSec Local API to answer', timeoutMs: 30_000, intervalMs: 100 },
    );
  } catch (error) {
    const exited = child.exitCode !== null;
    await stop();
    throw exited ? error : new Error(`${(error as Error).message}:\n${output}`);
  }
  return { url, stop, output: () => output };
}

async function listDecisions(url: string): Promise<Decision[]> {
  const answer = await fetch(`${url}/v1/decisions`, { headers: { 'x-api-key': BOUNCER_KEY } });
  if (answer.status !== 200) throw new Error(`GET /v1/decisions: ${answer.status}`);
  // The Local API answers `null` when there is no decision.
  return ((await answer.json()) as Decision[] | null) ?? [];
}

async function replay(
  crowdsec: string,
  configFile: string,
  file: string,
  type: string,
  timeoutMs: number,
): Promise<string> {
  const child = spawn(
    crowdsec,
    ['-c', configFile, '-dsn', `file://${file}`, '-type', type, '-no-api'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk) => (output += String(chunk)));
  child.stderr!.on('data', (chunk) => (output += String(chunk)));
  const code = await exitOf(child, timeoutMs);
  if (code !== 0) throw new Error(`the CrowdSec agent's replay failed (${code}):\n${output}`);
  return output;
}
