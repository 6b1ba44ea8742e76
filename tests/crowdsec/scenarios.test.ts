/**
 * The CrowdSec parser and scenarios in crowdsec/ against the real thing: the auth service
 * runs as a process with `log.securityEventsFile`, a scripted attack against it over HTTP
 * produces the security event lines (none is written by hand), and the real CrowdSec 1.4.6
 * (Debian) replays that file through crowdsec/parsers and crowdsec/scenarios into a Local API
 * that applies crowdsec/profiles.yaml. The test then reads the decisions as the Traefik
 * bouncer would: each attacker's address is banned by the scenario meant for it, for the
 * duration the profiles give it, and the normal client's address is not.
 *
 * Addresses: /verify believes X-Forwarded-For from its trusted proxy (loopback here, Traefik
 * in production), and so does Express on the OAuth endpoints, so every request below says
 * which client it comes from with X-Forwarded-For. The browser part of each login (the dev
 * login and consent pages) comes from loopback, the "proxy" itself, which must get no
 * decision either.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { pollUntil } from '../helpers/poll.js';
import {
  devLogin,
  LOOPBACK_REDIRECT,
  pkcePair,
  tokenRequest,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { durationHours, startCrowdSec, type CrowdSec } from './crowdsec.js';

const RESOURCE = 'http://localhost:3999/mcp';
const CROWDSEC_DIR = path.resolve('crowdsec');

/** Documentation addresses (RFC 5737), one per actor. */
const IP = {
  /** presents 20 bad bearer tokens at /verify */
  tokenScanner: '203.0.113.7',
  /** registers 15 OAuth clients */
  registrationFlood: '198.51.100.23',
  /** presents a rotated refresh token a second time */
  refreshReuse: '192.0.2.44',
  /** calls a tool its user may not use, 12 times */
  toolProber: '203.0.113.80',
  /** sends Mcp-Name headers that contradict the JSON-RPC body, once */
  headerSmuggler: '198.51.100.66',
  /** an ambiguous path, a request naming two sessions, a body with case-folded keys */
  requestSmuggler: '203.0.113.120',
  /** starts 8 authorization requests for a client that does not exist */
  authorizationFailures: '192.0.2.99',
  /** a normal client: one registration, a login, MCP calls, a refresh, two stale tokens */
  normal: '192.0.2.10',
};

/** Which scenario must ban which address, and for how long (crowdsec/profiles.yaml). */
const EXPECTED: Record<string, { scenario: string; hours: number }> = {
  [IP.tokenScanner]: { scenario: 'mcp-gateway/token-scanning', hours: 4 },
  [IP.registrationFlood]: { scenario: 'mcp-gateway/registration-flood', hours: 4 },
  [IP.refreshReuse]: { scenario: 'mcp-gateway/refresh-token-reuse', hours: 24 },
  [IP.toolProber]: { scenario: 'mcp-gateway/denied-tool-calls', hours: 4 },
  [IP.headerSmuggler]: { scenario: 'mcp-gateway/header-body-mismatch', hours: 24 },
  [IP.requestSmuggler]: { scenario: 'mcp-gateway/request-smuggling', hours: 24 },
  [IP.authorizationFailures]: { scenario: 'mcp-gateway/authorization-failures', hours: 4 },
};

const toolCall = (name: string, id = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {} },
});

describeWithBinary('crowdsec', 'CrowdSec scenarios on the auth service’s security events', () => {
  let work: string;
  let eventsFile: string;
  let gw: GatewayProcess;
  let crowdsec: CrowdSec | undefined;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'mcpgw-crowdsec-events-'));
    eventsFile = path.join(work, 'security-events.log');
    gw = await startGatewayProcess((issuer, port, dataDir) => ({
      issuer,
      listen: { host: '127.0.0.1', port },
      dataDir,
      login: { dev: { users: ['alice@example.com', 'mallory@example.com'] } },
      resources: [
        {
          url: RESOURCE,
          name: 'Files',
          scopes: ['mcp:tools'],
          tools: { default: 'allow', rules: { purge_everything: { groups: ['dev:admins'] } } },
        },
      ],
      log: { level: 'warn', securityEventsFile: eventsFile },
    }));
  });

  afterAll(async () => {
    await crowdsec?.stop();
    await gw?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** /verify as Traefik's forwardAuth asks it, for a client at `ip`. */
  const verify = async (
    ip: string,
    token: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ) => {
    const response = await fetch(`${gw.url}/verify`, {
      method: options.body === undefined ? 'GET' : 'POST',
      headers: {
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'localhost:3999',
        'x-forwarded-uri': '/mcp',
        'x-forwarded-method': 'POST',
        'x-forwarded-for': ip,
        authorization: `Bearer ${token}`,
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    await response.arrayBuffer();
    return response.status;
  };

  /** Dynamic Client Registration from a client at `ip`. */
  const register = async (ip: string) => {
    const response = await fetch(`${gw.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
      body: JSON.stringify({
        client_name: 'CrowdSec test client',
        redirect_uris: [LOOPBACK_REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      }),
    });
    const body = (await response.json()) as RegisteredClient;
    expect(response.status).toBe(201);
    return body;
  };

  /** Login (browser part from loopback) and code redemption from the client at `ip`. */
  const login = async (ip: string, client: RegisteredClient, user: string) => {
    const { verifier, challenge } = pkcePair();
    const result = await devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: challenge,
      user,
    });
    const code = result.url.searchParams.get('code');
    if (!code) throw new Error(`no code: ${result.url.href} ${result.status}`);
    const token = await tokenRequest(
      gw.url,
      {
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: LOOPBACK_REDIRECT,
        client_id: client.client_id,
        resource: RESOURCE,
      },
      { 'x-forwarded-for': ip },
    );
    expect(token.status).toBe(200);
    return {
      accessToken: String(token.body.access_token),
      refreshToken: String(token.body.refresh_token),
    };
  };

  const refresh = (ip: string, client: RegisteredClient, refreshToken: string) =>
    tokenRequest(
      gw.url,
      { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.client_id },
      { 'x-forwarded-for': ip },
    );

  const readEvents = async () =>
    (await readFile(eventsFile, 'utf8').catch(() => ''))
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  const count = (events: Record<string, unknown>[], ip: string, kind: string) =>
    events.filter((event) => event.ip === ip && event.security_event === kind).length;

  it('bans each attacker by the scenario meant for it, and never the normal client', async () => {
    // --- The normal client: below every threshold. -------------------------------------
    const normalClient = await register(IP.normal);
    const normal = await login(IP.normal, normalClient, 'alice@example.com');
    for (let call = 1; call <= 5; call += 1) {
      expect(
        await verify(IP.normal, normal.accessToken, { body: toolCall('read_file', call) }),
      ).toBe(200);
    }
    // Two requests with a token that is no longer good (as after an expiry), then a refresh.
    expect(await verify(IP.normal, `${normal.accessToken.slice(0, -4)}AAAA`)).toBe(401);
    expect(await verify(IP.normal, 'stale-token')).toBe(401);
    const refreshed = await refresh(IP.normal, normalClient, normal.refreshToken);
    expect(refreshed.status).toBe(200);
    expect(
      await verify(IP.normal, String(refreshed.body.access_token), { body: toolCall('read_file') }),
    ).toBe(200);

    // --- Token scanning: 20 bad tokens from one address. ----------------------------------
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const forged = `eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.${attempt.toString(16).padStart(8, '0')}`;
      expect(await verify(IP.tokenScanner, forged)).toBe(401);
    }

    // --- Registration flood: 15 clients from one address. --------------------------------
    for (let attempt = 0; attempt < 15; attempt += 1) await register(IP.registrationFlood);

    // --- Refresh token reuse: the rotated refresh token presented again. -----------------
    const victimClient = await register(IP.refreshReuse);
    const victim = await login(IP.refreshReuse, victimClient, 'alice@example.com');
    expect((await refresh(IP.refreshReuse, victimClient, victim.refreshToken)).status).toBe(200);
    const reuse = await refresh(IP.refreshReuse, victimClient, victim.refreshToken);
    expect(reuse.body.error).toBe('invalid_grant');

    // --- Denied tool calls: one client and user calling a tool only admins may use. -------
    const proberClient = await register(IP.toolProber);
    const prober = await login(IP.toolProber, proberClient, 'mallory@example.com');
    for (let call = 1; call <= 12; call += 1) {
      expect(
        await verify(IP.toolProber, prober.accessToken, {
          body: toolCall('purge_everything', call),
        }),
      ).toBe(403);
    }

    // --- Header/body mismatch: headers name an allowed tool, the body another. -----------
    const smugglerClient = await register(IP.headerSmuggler);
    const smuggler = await login(IP.headerSmuggler, smugglerClient, 'mallory@example.com');
    expect(
      await verify(IP.headerSmuggler, smuggler.accessToken, {
        headers: { 'mcp-method': 'tools/call', 'mcp-name': 'read_file' },
        body: toolCall('purge_everything'),
      }),
    ).toBe(400);

    // --- Request smuggling: three requests built to be read differently elsewhere. --------
    const smuggler2Client = await register(IP.requestSmuggler);
    const smuggler2 = await login(IP.requestSmuggler, smuggler2Client, 'mallory@example.com');
    expect(
      await verify(IP.requestSmuggler, smuggler2.accessToken, {
        headers: { 'x-forwarded-uri': '/mcp/..%2fother/mcp' },
      }),
    ).toBe(400);
    expect(
      await verify(IP.requestSmuggler, smuggler2.accessToken, {
        headers: { 'x-forwarded-uri': '/mcp?sessionId=a&session_id=b' },
      }),
    ).toBe(400);
    expect(
      await verify(IP.requestSmuggler, smuggler2.accessToken, {
        body: { ...toolCall('read_file'), params: { name: 'read_file', Name: 'purge_everything' } },
      }),
    ).toBe(400);

    // --- Authorization failures: authorization requests for a client that does not exist.
    for (let attempt = 0; attempt < 8; attempt += 1) {
      const authorize = new URL(`${gw.url}/authorize`);
      authorize.search = new URLSearchParams({
        response_type: 'code',
        client_id: `dcr_no_such_client_${attempt}`,
        redirect_uri: LOOPBACK_REDIRECT,
        code_challenge: pkcePair().challenge,
        code_challenge_method: 'S256',
        state: String(attempt),
      }).toString();
      const response = await fetch(authorize, {
        headers: { 'x-forwarded-for': IP.authorizationFailures },
        redirect: 'manual',
      });
      await response.arrayBuffer();
      expect(response.status).toBe(400);
    }

    // The service writes the file asynchronously: wait (bounded) until every line is there.
    const wanted: [string, string, number][] = [
      [IP.normal, 'client_registered', 1],
      [IP.normal, 'invalid_token', 2],
      [IP.tokenScanner, 'invalid_token', 20],
      [IP.registrationFlood, 'client_registered', 15],
      [IP.refreshReuse, 'refresh_token_reuse', 1],
      [IP.toolProber, 'tool_denied', 12],
      [IP.headerSmuggler, 'header_body_mismatch', 1],
      [IP.requestSmuggler, 'ambiguous_path', 1],
      [IP.requestSmuggler, 'ambiguous_session', 1],
      [IP.requestSmuggler, 'unreadable_body', 1],
      [IP.authorizationFailures, 'oauth_error', 8],
    ];
    const missingFrom = (seen: Record<string, unknown>[]) =>
      wanted.filter(([ip, kind, n]) => count(seen, ip, kind) < n);
    const { value: events } = await pollUntil(
      readEvents,
      (seen) => missingFrom(seen).length === 0,
      {
        what: `every expected security event in ${eventsFile}`,
        timeoutMs: 10_000,
        intervalMs: 100,
        detail: () => `service output:\n${gw.output()}`,
      },
    );
    // The normal client caused nothing else; the loopback "proxy" caused nothing at all.
    expect(events.filter((event) => event.ip === IP.normal)).toHaveLength(3);
    expect(events.filter((event) => String(event.ip).includes('127.0.0.1'))).toEqual([]);
    // tool_denied carries the client and the user the scenario groups by.
    expect(events.find((event) => event.security_event === 'tool_denied')).toMatchObject({
      clientId: proberClient.client_id,
      subject: 'dev:mallory@example.com',
      tool: 'purge_everything',
    });

    // --- Replay through the real CrowdSec. -----------------------------------------------
    const scenarios = (await readdir(path.join(CROWDSEC_DIR, 'scenarios')))
      .filter((file) => file.endsWith('.yaml'))
      .map((file) => path.join(CROWDSEC_DIR, 'scenarios', file));
    crowdsec = await startCrowdSec({
      hubParsers: {
        // crowdsecurity/non-syslog (evt.Parsed.message, evt.Parsed.program) is in this file.
        's00-raw': ['crowdsecurity/syslog-logs.yaml'],
        // evt.StrTime -> the event time the buckets use in replay.
        's02-enrich': ['crowdsecurity/dateparse-enrich.yaml'],
      },
      parsers: {
        's01-parse': [
          path.join(CROWDSEC_DIR, 'parsers', 's01-parse', 'mcp-gateway-security-events.yaml'),
        ],
      },
      scenarios,
      profiles: path.join(CROWDSEC_DIR, 'profiles.yaml'),
    });
    const agentOutput = await crowdsec.replay(eventsFile, 'mcp-gateway');
    const context = () =>
      `agent:\n${agentOutput}\nLocal API:\n${crowdsec?.output() ?? ''}\nevents:\n${JSON.stringify(events)}`;

    // Alerts reach the Local API asynchronously: wait (bounded) for every expected ban.
    const { value: decisions } = await pollUntil(
      () => crowdsec!.decisions(),
      (seen) => {
        const banned = new Set(seen.map((decision) => decision.value));
        return Object.keys(EXPECTED).every((ip) => banned.has(ip));
      },
      { what: 'every expected ban', timeoutMs: 20_000, intervalMs: 200, detail: context },
    );

    for (const [ip, { scenario, hours }] of Object.entries(EXPECTED)) {
      const forIp = decisions.filter((decision) => decision.value === ip);
      expect(forIp).toHaveLength(1);
      expect(forIp[0]).toMatchObject({ scenario, scope: 'Ip', type: 'ban', origin: 'crowdsec' });
      // Counted from the last event, a few seconds ago.
      const left = durationHours(forIp[0]!.duration);
      expect(left).toBeGreaterThan(hours - 0.1);
      expect(left).toBeLessThanOrEqual(hours);
    }
    // Nobody else: not the normal client, not the loopback proxy.
    expect(decisions.map((decision) => decision.value).sort()).toEqual(
      Object.keys(EXPECTED).sort(),
    );
  }, 120_000);
});
