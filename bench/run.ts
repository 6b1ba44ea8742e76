/**
 * `npm run bench`: how fast the forwardAuth decision (`/verify`) answers, next to a bare
 * `node:http` server and to oauth2-proxy's `/oauth2/auth` (bench/peer.ts), directly and
 * through Traefik (bench/traefik.ts), on the same machine. See docs/performance.md for what
 * each scenario measures and the targets.
 *
 *   --quick         `npm run bench -- --quick`: a check of the harness in under a minute
 *                   (2 s per scenario after a 1 s warm-up, 5 000 tokens, no controls (bare-h),
 *                   (b-s), (t-gw-16k) and (t-0)); the variables below still apply
 *   BENCH_DURATION  seconds measured per scenario (default 10; each also gets a 2 s warm-up)
 *   BENCH_TOKENS    distinct tokens for scenarios (c-cold), (c) and (p-c) (default 100000)
 *   BENCH_PIN       1: autocannon on CPU 0, the servers on CPU 1 (taskset), so that the load
 *                   generator and the server measured never compete for a core and the CPU
 *                   columns show each request's own cost; 0 (default): the scheduler places
 *                   them, as in the reference figures
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
import { fmt, report, statusLine, type Row } from './report.js';
import { redisServerVersion, SCALE_ROUTES, startScaleOut } from './scale-out.js';
import { CONNECTIONS, PIPELINING, runLoad, TokenRotation, type LoadOptions } from './load.js';
import { benchClaims, mintTokens, readSigningKey } from './mint.js';
import { ensurePeer, startPeer, type Peer } from './peer.js';
import {
  NO_BODY_HEADER,
  SMALL_BODY_HEADER,
  startTraefik,
  TRAEFIK_ROUTES,
  traefikVersion,
} from './traefik.js';
import {
  DEV_USER,
  freePort,
  pinToCpu,
  RESOURCE,
  ROOT,
  startBackend,
  startBareServer,
  startGateway,
  writeGatewayConfig,
  type ManagedProcess,
} from './processes.js';

/** `npm run bench -- --quick`: short runs, fewer tokens, no controls. */
const QUICK = process.argv.slice(2).includes('--quick');
const DURATION = positiveNumber('BENCH_DURATION', QUICK ? 2 : 10);
const WARMUP = QUICK ? 1 : 2;
const TOKENS = positiveNumber('BENCH_TOKENS', QUICK ? 5_000 : 100_000);
/** Cold tokens for the warm-up of (c-cold), so that its measured pass starts JIT-warm. */
const COLD_WARMUP_TOKENS = Math.min(10_000, Math.ceil(TOKENS / 10));
/** The gateway's `verify.cacheSize` default (src/config/schema.ts); the config leaves it. */
const CACHE_SIZE = 100_000;
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

async function machineLine(): Promise<string> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? '?';
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || cpus().length;
  return `Node ${process.version}, ${model} (${cores} cores, ${process.platform} ${process.arch}), ${new Date().toISOString()}`;
}

/** The versions of what is measured and of the load generator. */
async function versionsLine(peer: Peer, traefik: string): Promise<string> {
  const autocannon = JSON.parse(
    await readFile(path.join(ROOT, 'node_modules', 'autocannon', 'package.json'), 'utf8'),
  ) as { version: string };
  const gateway = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  return `mcp-gateway ${gateway.version} (Node ${process.version}), oauth2-proxy ${peer.version} (${peer.binary}), Traefik ${traefik}, autocannon ${autocannon.version}`;
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

/** CPU time of one or more server processes, as one. */
class ProcessGroup {
  readonly name: string;

  constructor(private readonly members: ManagedProcess[]) {
    this.name = members.map((member) => member.name).join(' + ');
  }

  async cpuTime(): Promise<{ user: number; system: number; each: number[] }> {
    const times = await Promise.all(this.members.map((member) => member.cpuTime()));
    return {
      user: times.reduce((sum, time) => sum + time.user, 0),
      system: times.reduce((sum, time) => sum + time.system, 0),
      each: times.map((time) => time.user + time.system),
    };
  }

  /** `' [traefik 20, …]'`: each member's µs per request, when there is more than one. */
  parts(before: { each: number[] }, after: { each: number[] }, requests: number): string {
    if (this.members.length < 2) return '';
    const each = this.members.map(
      (member, index) =>
        `${member.name} ${fmt.int(((after.each[index]! - before.each[index]!) * 1e6) / requests)}`,
    );
    return ` [${each.join(', ')}]`;
  }
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

  /**
   * A warm-up (not counted, statuses still checked) then the measured run. With several
   * server processes (Traefik, its backend and an auth server) the server CPU is their sum,
   * and each one's is printed.
   */
  async scenario(
    id: string,
    description: string,
    servers: ManagedProcess | ManagedProcess[],
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
    const measured = Array.isArray(servers) ? servers : [servers];
    const server = new ProcessGroup(measured);
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
      `  CPU per request: ${server.name} ${fmt.int(serverCpuUs)} µs${server.parts(serverBefore, serverAfter, result.requests)} (user ${fmt.int((serverUser * 1e6) / result.requests)}, system ${fmt.int((serverSystem * 1e6) / result.requests)}), autocannon ${fmt.int(clientCpuUs)} µs; busy cores: ${server.name} ${(serverCpu / wall).toFixed(2)}, autocannon ${(clientCpu / wall).toFixed(2)}, everything else (kernel softirq, other processes) ${otherCores.toFixed(2)}`,
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

/** What the scenarios need: the running servers, their URLs and the minted tokens. */
interface Setup {
  /** The run's temporary directory (removed at the end). */
  dir: string;
  bare: ManagedProcess;
  gateway: ManagedProcess;
  /** Undefined under BENCH_CPU_PROF, which measures the gateway alone. */
  peer: ManagedProcess | undefined;
  /** oauth2-proxy's version (`v7.15.6`), or '' without it. */
  peerVersion: string;
  bareUrl: string;
  verifyUrl: string;
  peerUrl: string;
  /** Traefik and its backend; undefined when `traefik` is not on PATH, or under a profile. */
  traefik: { proxy: ManagedProcess; backend: ManagedProcess; url: string } | undefined;
  single: string;
  /** A token for the MCP server as Traefik forwards it to /verify (its own resource URL). */
  traefikToken: string;
  coldWarmup: string[];
  rotation: string[];
}

/** Starts the servers, mints the tokens and checks that each server accepts them. */
async function setUp(bench: Bench): Promise<Setup> {
  const peerBinary = PROFILE_DIR ? undefined : await ensurePeer();
  const traefikAt = PROFILE_DIR ? 'missing' : await traefikVersion();
  console.log(`MCP Gateway /verify benchmark${QUICK ? ' (--quick: checks the harness)' : ''}`);
  console.log(`Machine: ${await machineLine()}`);
  if (peerBinary) console.log(`Versions: ${await versionsLine(peerBinary, traefikAt)}`);
  if (!PROFILE_DIR && traefikAt === 'missing') {
    console.log('WARNING: traefik is not on PATH: the Traefik scenarios are left out');
  }
  console.log(`load average (1 min) before starting: ${await loadAverage()}`);
  console.log(
    `autocannon: ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${DURATION} s measured per scenario after a ${WARMUP} s warm-up`,
  );

  const dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-bench-'));
  bench.onCleanup(() => rm(dir, { recursive: true, force: true }));

  const [barePort, gatewayPort, peerPort, traefikPort, backendPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  // The MCP server as Traefik describes it to /verify (X-Forwarded-Proto/-Host/-Uri).
  const traefikResource = `http://127.0.0.1:${traefikPort}${TRAEFIK_ROUTES.gateway}`;
  const { configFile, dataDir } = await writeGatewayConfig(dir, gatewayPort, [traefikResource]);
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
  // oauth2-proxy reads the gateway's discovery document at start: after the gateway.
  const peer = peerBinary
    ? await startPeer(peerBinary, { port: peerPort, issuer, audience: RESOURCE }, track)
    : undefined;
  if (peer) console.log(`oauth2-proxy pid ${peer.pid} on 127.0.0.1:${peerPort}`);
  let traefik: Setup['traefik'];
  if (peer && traefikAt !== 'missing') {
    const backend = await startBackend(backendPort, track);
    const proxy = await startTraefik(
      {
        port: traefikPort,
        dir: path.join(dir, 'traefik'),
        backendUrl: `http://127.0.0.1:${backendPort}`,
        gatewayUrl: `http://127.0.0.1:${gatewayPort}`,
        peerUrl: `http://127.0.0.1:${peerPort}`,
      },
      track,
    );
    traefik = { proxy, backend, url: `http://127.0.0.1:${traefikPort}` };
    console.log(
      `traefik pid ${proxy.pid} on 127.0.0.1:${traefikPort}, MCP backend pid ${backend.pid} on 127.0.0.1:${backendPort}`,
    );
  }

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
  const [traefikToken] = traefik
    ? await mintTokens(jwk, { ...claims, audience: traefikResource }, 1, 1)
    : [''];
  if (PIN) {
    const others = [peer, traefik?.proxy, traefik?.backend].filter((entry) => entry !== undefined);
    await pinProcesses(bare, gateway, ...others);
  }
  const setup: Setup = {
    dir,
    bare,
    gateway,
    peer,
    peerVersion: peerBinary?.version ?? '',
    bareUrl: `http://127.0.0.1:${barePort}/`,
    verifyUrl: `http://127.0.0.1:${gatewayPort}/verify`,
    peerUrl: `http://127.0.0.1:${peerPort}/oauth2/auth`,
    traefik,
    single: minted[0]!,
    traefikToken: traefikToken!,
    coldWarmup: minted.slice(1, 1 + COLD_WARMUP_TOKENS),
    rotation: minted.slice(1 + COLD_WARMUP_TOKENS),
  };
  await checkAnswers(setup);
  return setup;
}

/** Before measuring anything: a minted token must be accepted as the real ones are. */
async function checkAnswers(setup: Setup): Promise<void> {
  const withToken = { ...forwarded('GET'), authorization: `Bearer ${setup.single}` };
  const check = await verifyOnce(setup.verifyUrl, withToken);
  if (check.status !== 200 || check.headers.get('x-auth-user-email') !== DEV_USER.email) {
    throw new Error(
      `a minted token was not accepted by /verify: ${check.status} ${check.headers.get('www-authenticate') ?? ''}\n${setup.gateway.output()}`,
    );
  }
  const refused = await verifyOnce(setup.verifyUrl, forwarded('POST'));
  if (refused.status !== 401) throw new Error(`/verify without a token answered ${refused.status}`);
  console.log(
    `check: a minted token gets 200 from /verify (X-Auth-User-Email ${DEV_USER.email}); no token gets 401`,
  );
  if (!setup.peer) return;
  const accepted = await verifyOnce(setup.peerUrl, withToken);
  if (accepted.status !== 202 || accepted.headers.get('x-auth-request-email') !== DEV_USER.email) {
    throw new Error(
      `a minted token was not accepted by oauth2-proxy's /oauth2/auth: ${accepted.status}\n${setup.peer.output()}`,
    );
  }
  const peerRefused = await verifyOnce(setup.peerUrl, forwarded('GET'));
  if (peerRefused.status !== 401) {
    throw new Error(`oauth2-proxy's /oauth2/auth without a token answered ${peerRefused.status}`);
  }
  console.log(
    `check: the same token gets 202 from oauth2-proxy's /oauth2/auth (X-Auth-Request-Email ${DEV_USER.email}); no token gets 401`,
  );
}

/** A small MCP `tools/call`, as a Streamable HTTP client POSTs it. */
const TOOLS_CALL = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'echo', arguments: { text: 'hello' } },
});

function mcpPost(token: string | undefined): Pick<LoadOptions, 'method' | 'headers' | 'body'> {
  return {
    method: 'POST',
    body: TOOLS_CALL,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-11-25',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
  };
}

/** Through Traefik: each route must reach the backend with a token and stop without one. */
async function checkTraefik(setup: Setup): Promise<void> {
  const { url } = setup.traefik!;
  const routes = [
    [TRAEFIK_ROUTES.gateway, setup.traefikToken, {}],
    [TRAEFIK_ROUTES.gateway, setup.traefikToken, NO_BODY_HEADER],
    [TRAEFIK_ROUTES.gateway, setup.traefikToken, SMALL_BODY_HEADER],
    [TRAEFIK_ROUTES.peer, setup.single, {}],
  ] as const;
  for (const [route, token, extra] of routes) {
    const post = (bearer: string | undefined) => {
      const { method, headers, body } = mcpPost(bearer);
      return fetch(`${url}${route}`, { method, headers: { ...headers, ...extra }, body });
    };
    const allowed = await post(token);
    const answer = await allowed.text();
    if (allowed.status !== 200 || !answer.includes('"result"')) {
      throw new Error(
        `a tools/call through Traefik's ${route} got ${allowed.status} ${answer}
${setup.traefik!.proxy.output()}`,
      );
    }
    const refused = await post(undefined);
    await refused.arrayBuffer();
    if (refused.status !== 401) {
      throw new Error(`Traefik's ${route} without a token answered ${refused.status}`);
    }
  }
  console.log(
    `check: a tools/call through Traefik reaches the backend with a token (gateway and oauth2-proxy routes), 401 without`,
  );
}

/**
 * A small MCP `tools/call` POSTed through Traefik to the backend: alone, through the gateway's
 * forwardAuth (with the body: `forwardBody`) and through oauth2-proxy's. The server CPU is
 * that of Traefik, the backend and the auth server together.
 */
async function traefikScenarios(bench: Bench, setup: Setup): Promise<void> {
  const { proxy, backend, url } = setup.traefik!;
  await checkTraefik(setup);
  const auth = [proxy, backend, setup.gateway];
  // The controls: the gateway's hop without `forwardBody` (like oauth2-proxy's, which reads no
  // body: what sending the body costs Traefik and the gateway), with a 16 KiB `maxBodySize`
  // (the price of the buffer Traefik allocates for every body), and the same settings against
  // the backend itself, which allows anything (the hop's cost in Traefik whatever answers it).
  // --quick keeps the like-for-like row (t-gw-nb) only.
  const rows: {
    id: string;
    description: string;
    servers: ManagedProcess[];
    route: string;
    token: string;
    extra?: Record<string, string>;
    quick: boolean;
  }[] = [
    {
      id: 't',
      description: 'Traefik alone → backend, POST tools/call → 200',
      servers: [proxy, backend],
      route: TRAEFIK_ROUTES.alone,
      token: setup.single,
      quick: true,
    },
    {
      id: 't-gw',
      description: 'Traefik + the gateway forwardAuth (forwardBody) → backend → 200',
      servers: auth,
      route: TRAEFIK_ROUTES.gateway,
      token: setup.traefikToken,
      quick: true,
    },
    {
      id: 't-gw-nb',
      description:
        'Traefik + the gateway forwardAuth without forwardBody (control) → backend → 200',
      servers: auth,
      route: TRAEFIK_ROUTES.gateway,
      token: setup.traefikToken,
      extra: NO_BODY_HEADER,
      quick: true,
    },
    {
      id: 't-gw-16k',
      description:
        'Traefik + the gateway forwardAuth with maxBodySize 16 KiB (control) → backend → 200',
      servers: auth,
      route: TRAEFIK_ROUTES.gateway,
      token: setup.traefikToken,
      extra: SMALL_BODY_HEADER,
      quick: false,
    },
    {
      id: 't-0',
      description:
        'Traefik + the same forwardAuth to the backend, which allows anything (control) → backend → 200',
      servers: [proxy, backend],
      route: TRAEFIK_ROUTES.zero,
      token: setup.traefikToken,
      quick: false,
    },
    {
      id: 't-p',
      description: 'Traefik + oauth2-proxy forwardAuth → backend → 200',
      servers: [proxy, backend, setup.peer!],
      route: TRAEFIK_ROUTES.peer,
      token: setup.single,
      quick: true,
    },
  ];
  for (const row of rows) {
    if (QUICK && !row.quick) continue;
    const { headers, ...post } = mcpPost(row.token);
    await bench.scenario(row.id, row.description, row.servers, {
      url: `${url}${row.route}`,
      ...post,
      headers: { ...headers, ...row.extra },
      expected: 200,
      duration: DURATION,
    });
  }
}

/**
 * (s-1) and (s-2): decisions per second Traefik gets from one auth service process and from
 * two on one Redis (bench/scale-out.ts), after checking that both serve the same tokens and
 * revocations. Left out, with a warning, without `redis-server`.
 */
async function scaleOutScenarios(bench: Bench, setup: Setup): Promise<void> {
  const redisAt = await redisServerVersion();
  if (redisAt === 'missing') {
    console.log('\nWARNING: redis-server is not on PATH: the scale-out scenarios are left out');
    return;
  }
  const withToken = (token: string) => ({
    ...forwarded('GET'),
    authorization: `Bearer ${token}`,
  });
  const scale = await startScaleOut(
    path.join(setup.dir, 'scale-out'),
    withToken,
    (process) => void bench.track(process),
  );
  console.log(
    `scale-out: redis-server ${redisAt} pid ${scale.redis.pid}, auth service pids ${scale.replicas.map((replica) => replica.pid).join(' and ')}, traefik (balancer) pid ${scale.balancer.pid}`,
  );
  const load = (route: string) => ({
    url: `${scale.url}${route}`,
    headers: withToken(scale.token),
    expected: 200,
    duration: DURATION,
  });
  await bench.scenario(
    's-1',
    'one auth service process behind Traefik, on Redis, one valid token → 200',
    [scale.balancer, scale.replicas[0], scale.redis],
    load(SCALE_ROUTES.one),
  );
  await bench.scenario(
    's-2',
    'two auth service processes behind Traefik, on one Redis, one valid token → 200',
    [scale.balancer, ...scale.replicas, scale.redis],
    load(SCALE_ROUTES.two),
  );
}

/** BENCH_CPU_PROF: scenario (b) alone under `--cpu-prof`, and the profile's summary. */
async function profile(bench: Bench, setup: Setup): Promise<void> {
  const withToken = { ...forwarded('GET'), authorization: `Bearer ${setup.single}` };
  const profiled = await bench.scenario(
    'b',
    'valid token (cached), under --cpu-prof',
    setup.gateway,
    {
      url: setup.verifyUrl,
      headers: withToken,
      expected: 200,
      duration: DURATION,
    },
  );
  await setup.gateway.stop();
  const files = (await readdir(PROFILE_DIR)).filter((name) => name.endsWith('.cpuprofile'));
  const newest = files.sort().at(-1);
  if (!newest) throw new Error(`the gateway wrote no .cpuprofile into ${PROFILE_DIR}`);
  const file = path.join(PROFILE_DIR, newest);
  console.log(`\nCPU profile of the auth service: ${file}\n`);
  // The two checks, the warm-up and the measured run.
  const requests = 2 + profiled.warmupRequests + profiled.result.requests;
  console.log(formatSummary(await summarizeProfile(file, 25), requests));
}

/** The gateway's scenarios and the bare server's, in the order docs/performance.md lists. */
async function gatewayScenarios(bench: Bench, setup: Setup): Promise<string> {
  const { bare, gateway, bareUrl, verifyUrl, single } = setup;
  const withToken = { ...forwarded('GET'), authorization: `Bearer ${single}` };
  await bench.scenario('bare', 'bare node:http, GET /', bare, {
    url: bareUrl,
    expected: 200,
    duration: DURATION,
  });
  // A control, not a target: the bare server is sent the requests of (b) (X-Forwarded-*, a
  // 900-byte Authorization), which cost autocannon and the HTTP parser more than a bare GET /.
  if (!QUICK) {
    await bench.scenario('bare-h', 'bare node:http, GET / with the headers of (b)', bare, {
      url: bareUrl,
      headers: withToken,
      expected: 200,
      duration: DURATION,
    });
  }
  await bench.scenario('a', 'no token → 401', gateway, {
    url: verifyUrl,
    headers: forwarded('POST'),
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
  if (!QUICK) {
    await bench.scenario('b-s', 'one valid token on one MCP session (bound) → 200', gateway, {
      url: verifyUrl,
      headers: { ...withToken, 'mcp-session-id': 'bench-session-0123456789abcdef' },
      expected: 200,
      duration: DURATION,
    });
  }

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
  const coldPass = new TokenRotation(setup.rotation);
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
      setupRequest: new TokenRotation(setup.coldWarmup).setupRequest,
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

  await bench.scenario(
    'c',
    `${fmt.int(TOKENS)} distinct tokens in rotation (cached) → 200`,
    gateway,
    {
      url: verifyUrl,
      headers: forwarded('GET'),
      expected: 200,
      duration: DURATION,
      setupRequest: new TokenRotation(setup.rotation).setupRequest,
    },
  );
  return cacheNote;
}

/**
 * oauth2-proxy's `/oauth2/auth` with the same requests as (b) and (c). It verifies every
 * token on every request (no cache), so one token and many cost the same work; (p-c) uses
 * `setupRequest` as (c) does, so it compares with (c) and (b-dyn).
 */
async function peerScenarios(bench: Bench, setup: Setup): Promise<void> {
  const peer = setup.peer!;
  await bench.scenario('p-b', 'oauth2-proxy /oauth2/auth, one valid token → 202', peer, {
    url: setup.peerUrl,
    headers: { ...forwarded('GET'), authorization: `Bearer ${setup.single}` },
    expected: 202,
    duration: DURATION,
  });
  await bench.scenario(
    'p-c',
    `oauth2-proxy /oauth2/auth, ${fmt.int(TOKENS)} distinct tokens in rotation → 202`,
    peer,
    {
      url: setup.peerUrl,
      headers: forwarded('GET'),
      expected: 202,
      duration: DURATION,
      setupRequest: new TokenRotation(setup.rotation).setupRequest,
    },
  );
}

async function main(bench: Bench): Promise<void> {
  const setup = await setUp(bench);
  if (PROFILE_DIR) {
    await profile(bench, setup);
    return;
  }
  const cacheNote = await gatewayScenarios(bench, setup);
  await peerScenarios(bench, setup);
  if (setup.traefik) await traefikScenarios(bench, setup);
  if (setup.traefik) await scaleOutScenarios(bench, setup);

  // The machine may have changed under the run (another tenant of the host, CPU steal that a
  // VM does not report): the bare server once more tells.
  await bench.scenario('bare-end', 'bare node:http again (drift check)', setup.bare, {
    url: setup.bareUrl,
    expected: 200,
    duration: DURATION,
  });
  report(bench.rows, {
    cacheNote,
    machine: await machineLine(),
    tokens: TOKENS,
    quick: QUICK,
    duration: DURATION,
    peerVersion: setup.peerVersion,
  });
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
