/**
 * The real CrowdSec (Debian's 1.4.6) running live, as the compose stack runs it: one process is
 * both the agent, which tails the acquisition's files as they grow, parses each new line and
 * runs the scenarios on it, and the Local API, which turns the agent's alerts into decisions
 * through the profiles and serves them to bouncers. The configuration is crowdsec.ts's
 * self-contained one (temporary directory, no Central API, loopback port).
 *
 * Two bouncers are registered: the one under test, whose key is in a file (as the Docker
 * secret gives it to Traefik), and an observer the test reads the decision stream with. The
 * stream is per bouncer (`startup=false` answers what changed since that bouncer's last pull),
 * so the test's reads never change what the bouncer under test is told.
 */
import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findBinary } from '../helpers/binaries.js';
import { eventually } from '../helpers/poll.js';
import { getFreePort } from '../helpers/ports.js';
import { spawnWatched, type WatchedProcess } from '../helpers/watched-process.js';
import { BOUNCER_KEY, prepare, type CrowdSecOptions, type Decision } from './crowdsec.js';

const run = promisify(execFile);

/** The bouncer under test's key (a fixed value keeps runs alike). */
const TESTED_BOUNCER_KEY = 'mcp-gateway-traefik-bouncer-key-9876543210';
const START_TIMEOUT_MS = 30_000;

/** What `GET /v1/decisions/stream` answers: decisions added and removed. */
export interface DecisionStream {
  new: Decision[];
  deleted: Decision[];
}

export interface LiveCrowdSec {
  /** `127.0.0.1:PORT`, the Local API (`crowdsecLapiHost`). */
  lapiHost: string;
  /** A file holding the tested bouncer's key (`crowdsecLapiKeyFile`). */
  bouncerKeyFile: string;
  /** What CrowdSec printed (its last 16 KiB). */
  output(): string;
  /** The decision stream as the observer bouncer pulls it. */
  stream(startup: boolean): Promise<DecisionStream>;
  /** Runs `cscli` on this configuration; resolves with its standard output. */
  cscli(...args: string[]): Promise<string>;
  /** Stops the process: the Local API is unreachable until {@link start}. */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once the agent tails every file again. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

function binary(name: string): string {
  const found = findBinary(name);
  if (!found) throw new Error(`${name} not found`);
  return found;
}

/**
 * Whether the agent reads each of `files`: a probe line is appended to each file the agent's
 * counters (`cs_filesource_hits_total`) show no line of yet. A file is tailed from its end, so a
 * line written before the tail began is never read: hence a new probe until one is counted.
 * The probe is no JSON and no access log line: no parser takes it.
 */
async function tailsAll(metricsUrl: string, files: string[]): Promise<boolean> {
  const answer = await fetch(metricsUrl).catch(() => undefined);
  if (answer?.status !== 200) return false;
  const counters = (await answer.text())
    .split('\n')
    .filter((line) => line.startsWith('cs_filesource_hits_total{'));
  const read = (file: string) =>
    counters.some(
      (line) => line.includes(`source="${file}"`) && Number(line.split(' ').at(-1)) > 0,
    );
  const unread = files.filter((file) => !read(file));
  for (const file of unread) await appendFile(file, 'crowdsec test probe\n');
  return unread.length === 0;
}

/**
 * Starts CrowdSec with `options.acquisition` (which must name `files`); resolves once the
 * Local API answers and the agent tails each of `files`, so that every line written after this
 * is read.
 */
export async function startLiveCrowdSec(
  options: CrowdSecOptions & { files: string[] },
): Promise<LiveCrowdSec> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-crowdsec-live-'));
  const configFile = path.join(dir, 'config', 'config.yaml');
  const bouncerKeyFile = path.join(dir, 'bouncer-key');
  const port = await getFreePort();
  const lapiUrl = `http://127.0.0.1:${port}`;
  const metricsPort = await getFreePort();
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  const cscli = async (...args: string[]) =>
    (await run(binary('cscli'), ['-c', configFile, ...args], { timeout: 30_000 })).stdout;
  let running: WatchedProcess | undefined;

  const pull = async (key: string, startup: boolean): Promise<DecisionStream> => {
    const answer = await fetch(`${lapiUrl}/v1/decisions/stream?startup=${startup}`, {
      headers: { 'x-api-key': key, 'user-agent': 'mcp-gateway-test-observer/v1.0.0' },
    });
    if (answer.status !== 200) throw new Error(`GET /v1/decisions/stream: ${answer.status}`);
    const body = (await answer.json()) as Partial<Record<keyof DecisionStream, Decision[] | null>>;
    return { new: body.new ?? [], deleted: body.deleted ?? [] };
  };

  const start = async () => {
    const started = spawnWatched(binary('crowdsec'), ['-c', configFile]);
    running = started;
    const up = await eventually(
      async () => {
        if (started.exitInfo() !== undefined) return true;
        if (!(await pull(BOUNCER_KEY, false).catch(() => undefined))) return false;
        return tailsAll(metricsUrl, options.files);
      },
      START_TIMEOUT_MS,
      200,
    );
    if (!up || started.exitInfo() !== undefined) {
      await started.stop(10_000);
      const why = started.exitInfo() ?? 'timeout';
      throw new Error(`CrowdSec did not start (${why}):\n${started.output()}`);
    }
  };

  try {
    await prepare(dir, port, options);
    // Prometheus on: its per-file line counters say when the agent tails each file.
    const config = await readFile(configFile, 'utf8');
    const off = 'prometheus:\n  enabled: false\n';
    if (!config.includes(off)) throw new Error(`no "${off}" in ${configFile}`);
    const on = `prometheus:\n  enabled: true\n  level: full\n  listen_addr: 127.0.0.1\n  listen_port: ${metricsPort}\n`;
    await writeFile(configFile, config.replace(off, on));
    await cscli(
      'machines',
      'add',
      'agent',
      '--auto',
      '-f',
      path.join(dir, 'config', 'local_api_credentials.yaml'),
    );
    await cscli('bouncers', 'add', 'observer', '-k', BOUNCER_KEY);
    await cscli('bouncers', 'add', 'traefik', '-k', TESTED_BOUNCER_KEY);
    await writeFile(bouncerKeyFile, `${TESTED_BOUNCER_KEY}\n`, { mode: 0o600 });
    await start();
  } catch (error) {
    await running?.stop(10_000);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  const stop = async () => {
    await running?.stop(10_000);
  };
  return {
    lapiHost: `127.0.0.1:${port}`,
    bouncerKeyFile,
    output: () => running?.output() ?? '',
    stream: (startup) => pull(BOUNCER_KEY, startup),
    cscli,
    stop,
    start,
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
