/**
 * Pebble, Let's Encrypt's ACME test server (pinned in scripts/test-go-tools.txt), on free
 * loopback ports: a test CA for Traefik's shipped ACME resolver, which validates challenges for
 * real.
 *
 * - Names: every name resolves to 127.0.0.1 (A records only) through Pebble's companion DNS
 *   server, `pebble-challtestsrv`, which Pebble uses instead of the system resolver.
 * - TLS-ALPN-01: Pebble's validation authority connects to a loopback forwarder, which
 *   `validateAt(port)` points at the TLS server that answers the challenges (Traefik's
 *   `websecure`, once its port is known and before it orders certificates). HTTP-01 cannot
 *   succeed (port 0): the shipped resolver answers TLS-ALPN-01 only.
 * - Pebble's own HTTPS (the ACME directory and the management API) uses a certificate from a
 *   fresh test CA (./test-ca.ts), not the one in Pebble's source tree, which expires in
 *   October 2027. The ACME client must trust that CA (lego, in Traefik: LEGO_CA_CERTIFICATES).
 * - Deterministic: no random sleep before validating (PEBBLE_VA_NOSLEEP), no nonce refused on
 *   purpose (PEBBLE_WFE_NONCEREJECT=0; by default Pebble refuses 5% to exercise client
 *   retries).
 * - What it issues chains to a root Pebble generates at each start: `root`, read from the
 *   management API (`/roots/0`), which the test's clients trust.
 */
import { Resolver } from 'node:dns/promises';
import { request } from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary } from './binaries.js';
import { getFreePort, isPortTaken } from './ports.js';
import { startTcpForwarder } from './tcp-forwarder.js';
import { createTestCa, type TestCa } from './test-ca.js';
import { spawnWatched, waitUntilReady, type WatchedProcess } from './watched-process.js';

export interface RunningPebble {
  /** The ACME directory, `https://127.0.0.1:PORT/dir`: the resolver's `caServer`. */
  directoryUrl: string;
  /** PEM file of the CA that signed Pebble's HTTPS certificate (for LEGO_CA_CERTIFICATES). */
  directoryCaFile: string;
  /** Its contents. */
  directoryCa: string;
  /** PEM of the root every certificate Pebble issues chains to (new at each start). */
  root: string;
  /** Sends TLS-ALPN-01 validations to `127.0.0.1:port` from now on. */
  validateAt(port: number): void;
  /** Validation connections that reached the port given to `validateAt`. */
  validations(): number;
  /** What Pebble and its DNS server printed so far. */
  output(): string;
  /** Stops both processes (SIGTERM, SIGKILL after a bound), removes the temp files. Idempotent. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 50;
const STOP_TIMEOUT_MS = 10_000;
const LAUNCH_ATTEMPTS = 3;

/** Pebble's configuration file. */
function pebbleConfig(listen: number, management: number, tlsPort: number, ca: TestCa): object {
  return {
    pebble: {
      listenAddress: `127.0.0.1:${listen}`,
      managementListenAddress: `127.0.0.1:${management}`,
      certificate: ca.certFile,
      privateKey: ca.keyFile,
      httpPort: 0,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      // Seconds a client is told to wait before polling an authorization or order again.
      retryAfter: { authz: 1, order: 1 },
      keyAlgorithm: 'ecdsa',
      profiles: { default: { description: 'Test profile', validityPeriod: 7_776_000 } },
    },
  };
}

/** GET over https trusting `ca` only: the status and body, or `undefined` if nothing answers. */
function httpsGet(url: string, ca: string): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    // Pebble refuses requests without a User-Agent (as ACME servers may, RFC 8555 6.1).
    const headers = { 'user-agent': 'mcp-gateway-tests' };
    const req = request(url, { ca, headers, timeout: 1_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(undefined));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(undefined));
    req.end();
  });
}

/** Polls `ready` (its result once defined) until the bound; fails early if the process ended. */
async function awaitReady<T>(
  name: string,
  watched: WatchedProcess,
  ready: () => Promise<T | undefined>,
): Promise<T> {
  let result: T | undefined;
  await waitUntilReady(watched, async () => (result = await ready()) !== undefined, {
    what: `${name} to answer`,
    timeoutMs: READY_TIMEOUT_MS,
    intervalMs: POLL_INTERVAL_MS,
  });
  return result!;
}

/** The DNS server: A 127.0.0.1 for every name, no AAAA, its challenge servers off. */
async function startDns(binary: string): Promise<{ watched: WatchedProcess; address: string }> {
  const [dnsPort, managementPort] = [await getFreePort(), await getFreePort()];
  const address = `127.0.0.1:${dnsPort}`;
  const watched = spawnWatched(binary, [
    ...['-dnsserver', address, '-management', `127.0.0.1:${managementPort}`],
    ...['-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
    ...['-http01', '', '-https01', '', '-tlsalpn01', '', '-doh', ''],
  ]);
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([address]);
  const answers = async () => {
    const found = await resolver.resolve4('ready.gateway.test').catch((): string[] => []);
    return found.includes('127.0.0.1') ? true : undefined;
  };
  await awaitReady('pebble-challtestsrv', watched, answers);
  return { watched, address };
}

/** Runs `launch` again (on new ports) when a port it picked was taken meanwhile. */
async function retryOnPortTaken<T>(launch: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await launch();
    } catch (error) {
      if (!isPortTaken(error) || attempt >= LAUNCH_ATTEMPTS) throw error;
    }
  }
}

/** Pebble itself, validating on `tlsPort` with names from `dnsAddress`; its directory and root. */
async function launchPebble(
  binary: string,
  dir: string,
  ca: TestCa,
  tlsPort: number,
  dnsAddress: string,
): Promise<{ watched: WatchedProcess; directoryUrl: string; root: string }> {
  const [listen, management] = [await getFreePort(), await getFreePort()];
  const configFile = join(dir, 'pebble-config.json');
  await writeFile(configFile, JSON.stringify(pebbleConfig(listen, management, tlsPort, ca)));
  const watched = spawnWatched(
    binary,
    ['-config', configFile, '-dnsserver', dnsAddress],
    { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
    dir,
  );
  const directoryUrl = `https://127.0.0.1:${listen}/dir`;
  const root = await awaitReady('pebble', watched, async () => {
    if ((await httpsGet(directoryUrl, ca.ca))?.status !== 200) return undefined;
    const answer = await httpsGet(`https://127.0.0.1:${management}/roots/0`, ca.ca);
    return answer?.status === 200 && answer.body.includes('BEGIN CERTIFICATE')
      ? answer.body
      : undefined;
  });
  return { watched, directoryUrl, root };
}

/** Starts the DNS server and Pebble; resolves once Pebble's directory and root answer. */
export async function startPebble(): Promise<RunningPebble> {
  const binary = findBinary('pebble');
  const dnsBinary = findBinary('pebble-challtestsrv');
  if (binary === undefined || dnsBinary === undefined) {
    throw new Error('pebble or pebble-challtestsrv is not installed');
  }
  const processes: WatchedProcess[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      for (const watched of processes.reverse()) await watched.stop(STOP_TIMEOUT_MS);
      for (const cleanup of cleanups.reverse()) await cleanup();
    })();
    return stopped;
  };
  try {
    const ca = await createTestCa();
    cleanups.push(() => ca.cleanup());
    const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-pebble-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const forwarder = await startTcpForwarder();
    cleanups.push(() => forwarder.close());
    const dns = await retryOnPortTaken(() => startDns(dnsBinary));
    processes.push(dns.watched);
    const pebble = await retryOnPortTaken(() =>
      launchPebble(binary, dir, ca, forwarder.port, dns.address),
    );
    processes.push(pebble.watched);
    return {
      directoryUrl: pebble.directoryUrl,
      directoryCaFile: ca.caFile,
      directoryCa: ca.ca,
      root: pebble.root,
      validateAt: (port) => forwarder.forwardTo(port),
      validations: () => forwarder.forwarded(),
      output: () => `${dns.watched.output()}\n${pebble.watched.output()}`,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
