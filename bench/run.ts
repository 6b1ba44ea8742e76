/**
 * `npm run bench`: how fast the forwardAuth decision (`/verify`) answers, next to a bare
 * `node:http` server on the same machine. See docs/performance.md for what each scenario
 * measures and the targets.
 *
 *   BENCH_DURATION  seconds measured per scenario (default 10; each also gets a 2 s warm-up)
 *   BENCH_TOKENS    distinct tokens for scenarios (c-cold) and (c) (default 100000)
 *   BENCH_PIN       1: autocannon on CPU 0, the servers on CPU 1 (taskset), so that the load
 *                   generator and the server measured never compete for a core and the CPU
 *                   columns show each request's own cost; 0 (default): the scheduler places
 *                   them, as in the issue's reference figures
 *   BENCH_CPU_PROF  a directory: instead of the benchmark, run scenario (b) against a gateway
 *                   started with `node --cpu-prof`, keep the profile there and summarise it
 *
 * Exit status: 0 when every scenario ran without errors (whether or not the targets are met:
 * this is a measurement, not a test), 1 when something broke.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { formatSummary, summarizeProfile } from './cpu-profile.js';
import {
  CONNECTIONS,
  PIPELINING,
  runLoad,
  TokenRotation,
  type LoadOptions,
  type Measurement,
} from './load.js';
import { benchClaims, mintTokens, readSigningKey } from './mint.js';
import {
  DEV_USER,
  freePort,
  pinToCpu,
  RESOURCE,
  startBareServer,
  startGateway,
  writeGatewayConfig,
  type ManagedProcess,
} from './processes.js';

const DURATION = positiveNumber('BENCH_DURATION', 10);
const WARMUP = 2;
const TOKENS = positiveNumber('BENCH_TOKENS', 100_000);
/** Cold tokens for the warm-up of (c-cold), so that its measured pass starts JIT-warm. */
const COLD_WARMUP_TOKENS = Math.min(10_000, Math.ceil(TOKENS / 10));
/** The gateway's `verify.cacheSize` default (src/config/schema.ts); the config leaves it. */
const CACHE_SIZE = 100_000;
/** Cores of "other load" (not the server, not autocannon) above which a row is flagged. */
const OTHER_LOAD_LIMIT = 0.2;
/** Change of the bare server's req/s between the first and the last scenario that is flagged. */
const DRIFT_LIMIT = 0.1;
/** Pin the load generator and the servers to separate CPUs (see `pinProcesses`). */
const PIN = process.env.BENCH_PIN === '1';
const PROFILE_DIR = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : '';

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

/** X-Forwarded-* as Traefik's forwardAuth sends them for a request to the MCP server. */
function forwarded(method: string): Record<string, string> {
  const url = new URL(RESOURCE);
  return {
    'x-forwarded-proto': url.protocol.slice(0, -1),
    'x-forwarded-host': url.host,
    'x-forwarded-uri': url.pathname,
    'x-forwarded-method': method,
  };
}

interface Row {
  id: string;
  description: string;
  expected: number;
  result: Measurement;
  warmupRequests: number;
  warmupErrors: number;
  /** CPU time of the server process per request of the measured run, µs (all its threads). */
  serverCpuUs: number;
  /** CPU time of this process (autocannon) per request, µs. */
  clientCpuUs: number;
  /** Cores kept busy by anything but the server and autocannon (kernel softirq, other work). */
  otherCores: number;
}

const fmt = {
  int: (value: number) => Math.round(value).toLocaleString('en-US'),
  ms: (value: number) => value.toFixed(2),
  ratio: (value: number) => `${value.toFixed(2)}×`,
  seconds: (ms: number) => `${(ms / 1000).toFixed(1)} s`,
};

function statusLine(statuses: Record<string, number>): string {
  return (
    Object.entries(statuses)
      .map(([code, count]) => `${code}: ${fmt.int(count)}`)
      .join(', ') || 'none'
  );
}

async function machineLine(): Promise<string> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? '?';
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || cpus().length;
  return `Node ${process.version}, ${model} (${cores} cores, ${process.platform} ${process.arch}), ${new Date().toISOString()}`;
}

/** CPU seconds all cores have spent busy since boot (/proc/stat); `NaN` without /proc. */
async function machineBusySeconds(): Promise<number> {
  const stat = await readFile('/proc/stat', 'utf8').catch(() => '');
  const [user, nice, system, , , irq, softirq, steal] = (/^cpu\s+(.*)$/m.exec(stat)?.[1] ?? '')
    .split(/\s+/)
    .map(Number);
  return ((user ?? NaN) + nice! + system! + irq! + softirq! + steal!) / 100;
}

/** The 1-minute load average: other work on the machine skews every number here. */
async function loadAverage(): Promise<string> {
  const loadavg = await readFile('/proc/loadavg', 'utf8').catch(() => '');
  return loadavg.split(' ')[0] ?? '?';
}

class Bench {
  private readonly cleanups: (() => Promise<unknown>)[] = [];
  private readonly processes: ManagedProcess[] = [];
  readonly rows: Row[] = [];
  broken: string[] = [];

  onCleanup(task: () => Promise<unknown>): void {
    this.cleanups.push(task);
  }

  track(process: ManagedProcess): ManagedProcess {
    this.processes.push(process);
    this.onCleanup(() => process.stop());
    return process;
  }

  assertRunning(): void {
    for (const process of this.processes) process.assertRunning();
  }

  /** Runs every cleanup once, newest first, even if some fail. */
  async cleanup(): Promise<void> {
    while (this.cleanups.length > 0) {
      const task = this.cleanups.pop()!;
      await task().catch((error: unknown) => console.error(`cleanup failed: ${String(error)}`));
    }
  }

  /** A warm-up (not counted, statuses still checked) then the measured run. */
  async scenario(
    id: string,
    description: string,
    server: ManagedProcess,
    load: LoadOptions,
    warmup: LoadOptions | false = load,
  ): Promise<Row> {
    this.assertRunning();
    console.log(`\n(${id}) ${description}`);
    let warmupErrors = 0;
    let warmupRequests = 0;
    if (warmup) {
      const warm = await runLoad({ ...warmup, duration: WARMUP, amount: undefined });
      warmupErrors = warm.errors;
      warmupRequests = warm.requests;
      console.log(
        `  warm-up ${WARMUP} s: ${fmt.int(warm.rps)} req/s; statuses ${statusLine(warm.statuses)}`,
      );
    }
    this.assertRunning();
    const serverBefore = await server.cpuTime();
    const clientBefore = process.cpuUsage();
    const machineBefore = await machineBusySeconds();
    const wallStart = performance.now();
    const result = await runLoad(load);
    const wall = (performance.now() - wallStart) / 1000;
    const client = process.cpuUsage(clientBefore);
    const serverAfter = await server.cpuTime();
    const serverUser = serverAfter.user - serverBefore.user;
    const serverSystem = serverAfter.system - serverBefore.system;
    const serverCpu = serverUser + serverSystem;
    const machineCpu = (await machineBusySeconds()) - machineBefore;
    const clientCpu = (client.user + client.system) / 1e6;
    const serverCpuUs = (serverCpu * 1e6) / result.requests;
    const clientCpuUs = (clientCpu * 1e6) / result.requests;
    const otherCores = (machineCpu - serverCpu - clientCpu) / wall;
    this.assertRunning();
    console.log(
      `  measured ${result.seconds.toFixed(1)} s: ${fmt.int(result.requests)} requests, ${fmt.int(result.rps)} req/s, p50 ${fmt.ms(result.p50)} ms, p99 ${fmt.ms(result.p99)} ms`,
    );
    console.log(
      `  CPU per request: ${server.name} ${fmt.int(serverCpuUs)} µs (user ${fmt.int((serverUser * 1e6) / result.requests)}, system ${fmt.int((serverSystem * 1e6) / result.requests)}), autocannon ${fmt.int(clientCpuUs)} µs; busy cores: ${server.name} ${(serverCpu / wall).toFixed(2)}, autocannon ${(clientCpu / wall).toFixed(2)}, everything else (kernel softirq, other processes) ${otherCores.toFixed(2)}`,
    );
    console.log(
      `  statuses ${statusLine(result.statuses)} (expected ${load.expected}); connection errors/timeouts ${result.connectionErrors}`,
    );
    const row = {
      id,
      description,
      expected: load.expected,
      result,
      warmupRequests,
      warmupErrors,
      serverCpuUs,
      clientCpuUs,
      otherCores,
    };
    this.rows.push(row);
    if (result.errors > 0 || warmupErrors > 0) {
      this.broken.push(
        `(${id}): ${result.errors} errors (${warmupErrors} in the warm-up): answers other than ${load.expected} or connection errors`,
      );
    }
    return row;
  }
}

async function verifyOnce(url: string, headers: Record<string, string>) {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  return response;
}

function table(rows: Row[]): string {
  const bare = rows.find((row) => row.id === 'bare')!.result;
  const lines = [
    '| scenario | req/s (mean) | p50 ms | p99 ms | errors | req/s ÷ bare | p99 ÷ bare p99 | server CPU µs/req | autocannon CPU µs/req | other load (cores) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(({ id, description, result, serverCpuUs, clientCpuUs, otherCores }) =>
      [
        `(${id}) ${description}`,
        fmt.int(result.rps),
        fmt.ms(result.p50),
        fmt.ms(result.p99),
        String(result.errors),
        fmt.ratio(result.rps / bare.rps),
        fmt.ratio(result.p99 / bare.p99),
        fmt.int(serverCpuUs),
        fmt.int(clientCpuUs),
        otherCores.toFixed(2),
      ].join(' | '),
    ),
  ];
  return lines.map((line) => (line.startsWith('|') ? line : `| ${line} |`)).join('\n');
}

function targets(rows: Row[]): string[] {
  const get = (id: string) => rows.find((row) => row.id === id)?.result;
  const bare = get('bare')!;
  const b = get('b')!;
  const c = get('c')!;
  const bDyn = get('b-dyn')!;
  const signedPercent = (ratio: number) =>
    `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(0)}%`;
  const check = (met: boolean, text: string) => `  [${met ? 'met' : 'MISSED'}] ${text}`;
  return [
    check(
      b.rps >= 0.7 * bare.rps,
      `(b) valid token req/s ≥ 70% of bare: ${fmt.int(b.rps)} vs ${fmt.int(bare.rps)} = ${((b.rps / bare.rps) * 100).toFixed(0)}%`,
    ),
    check(
      b.p99 <= 2 * bare.p99,
      `(b) p99 ≤ 2× bare p99: ${fmt.ms(b.p99)} ms vs ${fmt.ms(bare.p99)} ms = ${fmt.ratio(b.p99 / bare.p99)}`,
    ),
    check(
      Math.abs(c.rps - b.rps) <= 0.2 * b.rps,
      `(c) req/s within 20% of (b): ${fmt.int(c.rps)} vs ${fmt.int(b.rps)} = ${signedPercent(c.rps / b.rps)}`,
    ),
    `  (control, not a target) (c) against (b-dyn), the same autocannon work per request: ${fmt.int(c.rps)} vs ${fmt.int(bDyn.rps)} = ${signedPercent(c.rps / bDyn.rps)}`,
  ];
}

/**
 * Unpinned on two cores, autocannon and the server measured share both: the scheduler moves
 * them around and each wake-up of one preempts the other, which costs the bare server more
 * than half of its CPU per request (docs/performance.md, "Pinned"). With autocannon on one CPU
 * and the servers on the other (only one server is under load at a time), each side has a core
 * of its own, as with a load generator on another machine, and the server CPU column is the
 * request's own cost. Done after minting, whose worker threads use both CPUs.
 */
async function pinProcesses(...servers: ManagedProcess[]): Promise<void> {
  if (cpus().length < 2) throw new Error('BENCH_PIN=1 needs at least 2 CPUs');
  await pinToCpu(process.pid, 0);
  for (const server of servers) await pinToCpu(server.pid!, 1);
  console.log(`pinned (BENCH_PIN=1): autocannon on CPU 0, the servers on CPU 1 (taskset -a)`);
}

async function main(bench: Bench): Promise<void> {
  console.log(`MCP Gateway /verify benchmark`);
  console.log(`Machine: ${await machineLine()}`);
  console.log(`load average (1 min) before starting: ${await loadAverage()}`);
  console.log(
    `autocannon: ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${DURATION} s measured per scenario after a ${WARMUP} s warm-up`,
  );

  const dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-bench-'));
  bench.onCleanup(() => rm(dir, { recursive: true, force: true }));

  const [barePort, gatewayPort] = [await freePort(), await freePort()];
  const { configFile, dataDir } = await writeGatewayConfig(dir, gatewayPort);
  const issuer = `http://localhost:${gatewayPort}`;
  if (PROFILE_DIR) await mkdir(PROFILE_DIR, { recursive: true });
  const profileOptions = PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, '--cpu-prof-interval=200']
    : [];
  const track = (process: ManagedProcess) => void bench.track(process);
  const [bare, gateway] = await Promise.all([
    startBareServer(barePort, track),
    startGateway(gatewayPort, configFile, track, profileOptions),
  ]);
  console.log(`bare server pid ${bare.pid} on 127.0.0.1:${barePort}`);
  console.log(`auth service pid ${gateway.pid} on 127.0.0.1:${gatewayPort} (issuer ${issuer})`);

  // The gateway created its signing key at start; sign the benchmark's tokens with it.
  const jwk = await readSigningKey(dataDir);
  const claims = benchClaims(issuer);
  const count = PROFILE_DIR ? 1 : 1 + COLD_WARMUP_TOKENS + TOKENS;
  const mintStart = performance.now();
  const minted = await mintTokens(jwk, claims, count, 2);
  const mintMs = performance.now() - mintStart;
  console.log(
    `minted ${fmt.int(count)} access tokens (RS256, kid ${jwk.kid}) on 2 worker threads in ${fmt.seconds(mintMs)} (${fmt.int(count / (mintMs / 1000))}/s)`,
  );
  if (PIN) await pinProcesses(bare, gateway);
  const single = minted[0]!;
  const coldWarmup = minted.slice(1, 1 + COLD_WARMUP_TOKENS);
  const rotation = minted.slice(1 + COLD_WARMUP_TOKENS);

  const verifyUrl = `http://127.0.0.1:${gatewayPort}/verify`;
  const noToken = forwarded('POST');
  const withToken = { ...forwarded('GET'), authorization: `Bearer ${single}` };

  // Before measuring anything: one minted token must be accepted as the real ones are.
  const check = await verifyOnce(verifyUrl, withToken);
  if (check.status !== 200 || check.headers.get('x-auth-user-email') !== DEV_USER.email) {
    throw new Error(
      `a minted token was not accepted by /verify: ${check.status} ${check.headers.get('www-authenticate') ?? ''}\n${gateway.output()}`,
    );
  }
  const refused = await verifyOnce(verifyUrl, noToken);
  if (refused.status !== 401) throw new Error(`/verify without a token answered ${refused.status}`);
  console.log(
    `check: a minted token gets 200 from /verify (X-Auth-User-Email ${DEV_USER.email}); no token gets 401`,
  );

  if (PROFILE_DIR) {
    const profiled = await bench.scenario('b', 'valid token (cached), under --cpu-prof', gateway, {
      url: verifyUrl,
      headers: withToken,
      expected: 200,
      duration: DURATION,
    });
    await gateway.stop();
    const files = (await readdir(PROFILE_DIR)).filter((name) => name.endsWith('.cpuprofile'));
    const newest = files.sort().at(-1);
    if (!newest) throw new Error(`the gateway wrote no .cpuprofile into ${PROFILE_DIR}`);
    const file = path.join(PROFILE_DIR, newest);
    console.log(`\nCPU profile of the auth service: ${file}\n`);
    // The two checks above, the warm-up and the measured run.
    const requests = 2 + profiled.warmupRequests + profiled.result.requests;
    console.log(formatSummary(await summarizeProfile(file, 25), requests));
    return;
  }

  await bench.scenario('bare', 'bare node:http, GET /', bare, {
    url: `http://127.0.0.1:${barePort}/`,
    expected: 200,
    duration: DURATION,
  });
  // A control, not a target: the bare server is sent the requests of (b) (X-Forwarded-*, a
  // 900-byte Authorization), which cost autocannon and the HTTP parser more than a bare GET /.
  await bench.scenario('bare-h', 'bare node:http, GET / with the headers of (b)', bare, {
    url: `http://127.0.0.1:${barePort}/`,
    headers: withToken,
    expected: 200,
    duration: DURATION,
  });
  await bench.scenario('a', 'no token → 401', gateway, {
    url: verifyUrl,
    headers: noToken,
    expected: 401,
    duration: DURATION,
  });
  await bench.scenario('b', 'one valid token (cached) → 200', gateway, {
    url: verifyUrl,
    headers: withToken,
    expected: 200,
    duration: DURATION,
  });

  // (b) on a Streamable HTTP session (MCP up to 2025-11-25): the session binding check
  // (verify.sessionBinding) is one cached lookup per request once the session is bound.
  await bench.scenario('b-s', 'one valid token on one MCP session (bound) → 200', gateway, {
    url: verifyUrl,
    headers: { ...withToken, 'mcp-session-id': 'bench-session-0123456789abcdef' },
    expected: 200,
    duration: DURATION,
  });

  // A control for (c): the same single token, but set per request by `setupRequest` as (c)
  // does, so that autocannon rebuilds every request. The difference between (b) and (b-dyn) is
  // autocannon's, not the gateway's; (c) against (b-dyn) isolates the cache.
  await bench.scenario(
    'b-dyn',
    'one valid token set per request like (c) (control) → 200',
    gateway,
    {
      url: verifyUrl,
      headers: forwarded('GET'),
      expected: 200,
      duration: DURATION,
      setupRequest: new TokenRotation([single]).setupRequest,
    },
  );

  // Every token of the rotation is presented here for the first time: each request pays for
  // the jose verification. The pass presents each exactly once, which also fills the cache
  // for (c). Its warm-up uses other, equally fresh tokens.
  const coldPass = new TokenRotation(rotation);
  await bench.scenario(
    'c-cold',
    `${fmt.int(TOKENS)} distinct tokens, each seen for the first time (jose verification) → 200`,
    gateway,
    {
      url: verifyUrl,
      headers: forwarded('GET'),
      expected: 200,
      amount: TOKENS,
      setupRequest: coldPass.setupRequest,
    },
    {
      url: verifyUrl,
      headers: forwarded('GET'),
      expected: 200,
      setupRequest: new TokenRotation(coldWarmup).setupRequest,
    },
  );
  const cold = bench.rows.at(-1)!.result;
  if (coldPass.used !== TOKENS || cold.statuses['200'] !== TOKENS) {
    bench.broken.push(
      `(c-cold) should present each of ${TOKENS} tokens once and get 200 for each: presented ${coldPass.used}, 200 × ${cold.statuses['200'] ?? 0}`,
    );
  }
  const cacheNote =
    TOKENS <= CACHE_SIZE
      ? `cache warm: the (c-cold) pass verified each of the ${fmt.int(TOKENS)} tokens once (all 200), so all are in the verified-token cache (verify.cacheSize ${fmt.int(CACHE_SIZE)}, the default) before (c)`
      : `WARNING: ${fmt.int(TOKENS)} tokens do not fit the verified-token cache (${fmt.int(CACHE_SIZE)}): (c) measures cache misses`;
  console.log(`  ${cacheNote}`);

  const warmRotation = new TokenRotation(rotation);
  await bench.scenario(
    'c',
    `${fmt.int(TOKENS)} distinct tokens in rotation (cached) → 200`,
    gateway,
    {
      url: verifyUrl,
      headers: forwarded('GET'),
      expected: 200,
      duration: DURATION,
      setupRequest: warmRotation.setupRequest,
    },
  );

  // The machine may have changed under the run (another tenant of the host, CPU steal that a
  // VM does not report): the bare server once more tells.
  await bench.scenario('bare-end', 'bare node:http again (drift check)', bare, {
    url: `http://127.0.0.1:${barePort}/`,
    expected: 200,
    duration: DURATION,
  });

  console.log(`\nResults (${await machineLine()})\n`);
  console.log(table(bench.rows));
  console.log(`\n${cacheNote}.`);
  console.log(
    `(c-cold) is one pass of ${fmt.int(TOKENS)} requests (about ${bench.rows.find((row) => row.id === 'c-cold')!.result.seconds.toFixed(1)} s) rather than a fixed duration, so that no token is presented twice.`,
  );
  const disturbed = bench.rows.filter((row) => row.otherCores > OTHER_LOAD_LIMIT);
  if (disturbed.length > 0) {
    console.log(
      `\nWARNING: other work kept up to ${Math.max(...disturbed.map((row) => row.otherCores)).toFixed(2)} cores busy during ${disturbed.map((row) => `(${row.id})`).join(', ')} ("other load" column): the machine was not quiet, so those numbers are low and the ratios unreliable; rerun on a quiet machine.`,
    );
  }
  const first = bench.rows.find((row) => row.id === 'bare')!.result.rps;
  const last = bench.rows.find((row) => row.id === 'bare-end')!.result.rps;
  if (Math.abs(last / first - 1) > DRIFT_LIMIT) {
    console.log(
      `\nWARNING: the bare server did ${fmt.int(first)} req/s at the start and ${fmt.int(last)} at the end (${((last / first - 1) * 100).toFixed(0)}%): the machine's speed changed during the run, so rows far apart compare badly; rerun.`,
    );
  }
  console.log('\nTargets:');
  for (const line of targets(bench.rows)) console.log(line);
}

const bench = new Bench();
let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true;
  console.error('\ninterrupted: stopping the servers');
  void bench.cleanup().finally(() => process.exit(130));
});

try {
  await main(bench);
} catch (error) {
  if (!interrupted) bench.broken.push((error as Error).stack ?? String(error));
} finally {
  await bench.cleanup();
}
if (bench.broken.length > 0) {
  console.error('\nBROKEN:');
  for (const problem of bench.broken) console.error(`  ${problem}`);
  process.exitCode = 1;
} else {
  console.log('\nNo errors in any scenario.');
}
