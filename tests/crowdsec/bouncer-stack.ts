/**
 * The compose stack's CrowdSec path on one machine: the real auth service (a process, writing
 * `log.securityEventsFile`) behind the real Traefik (the shipped files, addresses changed, its
 * access log where CrowdSec reads it), the real CrowdSec running live on both files with the
 * project's acquisition, parser, scenarios and profiles, and, when its source is there, the
 * bouncer plugin inside Traefik in the shipped `crowdsec` middleware pulling decisions from that
 * CrowdSec's Local API.
 *
 * AppSec needs CrowdSec 1.6, which the test hosts cannot have (Debian ships 1.4.6; the Go module
 * proxy here serves neither CrowdSec nor the plugin): the shipped middleware asks AppSec about
 * every request and refuses the request when AppSec is unreachable, so the plugin is pointed at a
 * stand-in that allows everything and keeps what it was asked (a recording server).
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { onFreePort } from '../helpers/ports.js';
import { hostPort } from '../helpers/proxy-process.js';
import {
  rawRequest,
  startRecordingServer,
  type RawAnswer,
  type RecordingServer,
} from '../helpers/recording-server.js';
import { startTraefik, type RunningTraefik } from '../helpers/traefik.js';
import { startLiveCrowdSec, type LiveCrowdSec } from './live-crowdsec.js';

const CROWDSEC_DIR = path.resolve('crowdsec');
const DEBIAN_DATA = '/usr/share/crowdsec/data';

/** The hub items of `crowdsecurity/traefik` this stack uses, from Debian's hub snapshot. */
const HUB_PARSERS = {
  // crowdsecurity/non-syslog (from crowdsecurity/linux): the raw line and the label.
  's00-raw': ['crowdsecurity/syslog-logs.yaml'],
  's01-parse': ['crowdsecurity/traefik-logs.yaml'],
  's02-enrich': ['crowdsecurity/dateparse-enrich.yaml', 'crowdsecurity/http-logs.yaml'],
};
/** One of the collection's scenarios on Traefik's access log, with the list it reads. */
const HUB_SCENARIO = '/usr/share/crowdsec/hub/scenarios/crowdsecurity/http-bad-user-agent.yaml';
const HUB_DATA = ['bad_user_agents.regex.txt'];

export interface BouncerStack {
  crowdsec: LiveCrowdSec;
  traefik: RunningTraefik;
  gateway: GatewayProcess;
  /** The MCP server behind Traefik: what reached it. */
  backend: RecordingServer;
  /** The AppSec stand-in: what the plugin asked it. */
  appsec: RecordingServer;
  /** A valid access token for the MCP route. */
  token: string;
  eventsFile: string;
  /** A JSON-RPC call to the MCP host's `/mcp` from `address`. */
  mcpCall(address: string, bearer: string, headers?: Record<string, string>): Promise<RawAnswer>;
  /** The auth host's metadata document, from `address`. */
  authCall(address: string, headers?: Record<string, string>): Promise<RawAnswer>;
  stop(): Promise<void>;
}

/**
 * crowdsec/acquis.yaml with each file source's path replaced by the test's file for its label
 * type, and the AppSec source left out (CrowdSec 1.4.6 has none). A file source whose type has
 * no test file is an error: the test must read every log the deployment reads.
 */
export async function testAcquisition(files: Record<string, string>): Promise<string> {
  const shipped = parseAllDocuments(await readFile(path.join(CROWDSEC_DIR, 'acquis.yaml'), 'utf8'));
  const sources = shipped
    .map((document) => document.toJS() as Record<string, unknown>)
    .filter((source) => source.source !== 'appsec');
  for (const source of sources) {
    const type = (source.labels as { type: string }).type;
    const file = files[type];
    if (file === undefined) throw new Error(`acquis.yaml reads type ${type}: no test file for it`);
    source.filenames = [file];
  }
  return sources.map((source) => stringify(source)).join('---\n');
}

/** Starts everything; `pluginSource` runs the shipped `crowdsec` middleware in Traefik. */
export async function startBouncerStack(pluginSource: string | undefined): Promise<BouncerStack> {
  const work = await mkdtemp(path.join(tmpdir(), 'mcpgw-bouncer-'));
  const eventsFile = path.join(work, 'security-events.log');
  const accessLog = path.join(work, 'access.log');
  // Both exist before CrowdSec starts, so that it tails them from their (empty) end.
  await writeFile(eventsFile, '');
  await writeFile(accessLog, '');
  const stoppers: (() => Promise<void>)[] = [() => rm(work, { recursive: true, force: true })];
  const stop = async () => {
    for (const stopper of stoppers.reverse()) await stopper();
  };
  try {
    const scenarios = (await readdir(path.join(CROWDSEC_DIR, 'scenarios')))
      .filter((file) => file.endsWith('.yaml'))
      .map((file) => path.join(CROWDSEC_DIR, 'scenarios', file));
    const crowdsec = await startLiveCrowdSec({
      files: [eventsFile, accessLog],
      acquisition: await testAcquisition({ traefik: accessLog, 'mcp-gateway': eventsFile }),
      hubParsers: HUB_PARSERS,
      parsers: {
        's01-parse': [
          path.join(CROWDSEC_DIR, 'parsers', 's01-parse', 'mcp-gateway-security-events.yaml'),
        ],
      },
      scenarios: [...scenarios, HUB_SCENARIO],
      profiles: path.join(CROWDSEC_DIR, 'profiles.yaml'),
      dataFiles: HUB_DATA.map((file) => path.join(DEBIAN_DATA, file)),
    });
    stoppers.push(() => crowdsec.dispose());
    const appsec = await startRecordingServer('appsec');
    stoppers.push(() => appsec.stop());
    const backend = await startRecordingServer('mcp');
    stoppers.push(() => backend.stop());

    // Traefik names the gateway's port before the gateway binds it: both again on a taken one.
    const { traefik, gateway } = await onFreePort(async (gatewayPort) => {
      const authUrl = `http://127.0.0.1:${gatewayPort}`;
      const traefik = await startTraefik({
        authUrl,
        routes: [{ path: '/mcp', upstream: backend.url }],
        ...(pluginSource
          ? {
              crowdsec: {
                pluginSource,
                lapiHost: crowdsec.lapiHost,
                apiKeyFile: crowdsec.bouncerKeyFile,
                appsecHost: hostPort(appsec.url, 'the AppSec stand-in'),
              },
            }
          : {}),
        // Where the test's CrowdSec reads it (compose: the shared /var/log/traefik volume).
        staticConfig: (config) => {
          config.accessLog.filePath = accessLog;
        },
      });
      try {
        const resource = `${traefik.url}/mcp`;
        const gateway = await startGatewayProcess(
          (issuer, port, dataDir) => ({
            issuer,
            listen: { host: '127.0.0.1', port },
            dataDir,
            login: { dev: { users: ['alice@example.com'] } },
            resources: [{ url: resource, name: 'MCP', scopes: ['mcp:tools'] }],
            log: { level: 'warn', securityEventsFile: eventsFile },
          }),
          {},
          gatewayPort,
        );
        return { traefik, gateway };
      } catch (error) {
        await traefik.stop();
        throw error;
      }
    });
    stoppers.push(() => traefik.stop());
    stoppers.push(() => gateway.stop());
    const resource = `${traefik.url}/mcp`;
    const client = await registerClient(gateway.url);
    const tokens = await obtainTokens(gateway.url, { client, resource });
    const token = String(tokens.token.body.access_token);

    return {
      crowdsec,
      traefik,
      gateway,
      backend,
      appsec,
      token,
      eventsFile,
      mcpCall: (address, bearer, headers = {}) =>
        rawRequest(traefik.port, {
          method: 'POST',
          path: '/mcp',
          localAddress: address,
          headers: {
            authorization: `Bearer ${bearer}`,
            accept: 'application/json, text/event-stream',
            ...headers,
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
        }),
      authCall: (address, headers = {}) =>
        rawRequest(traefik.port, {
          path: '/.well-known/oauth-authorization-server',
          host: `localhost:${traefik.port}`,
          localAddress: address,
          headers,
        }),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
