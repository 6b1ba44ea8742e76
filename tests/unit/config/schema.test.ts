/**
 * The configuration schema as the service applies it: which files are refused with which
 * lines (the ones `mcp-gateway` prints), what a minimal file defaults to, and the embedded
 * default. Pure: no file is read but the schema's own.
 */
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';

const minimal = {
  issuer: 'https://auth.example.com',
  resources: [{ url: 'https://mcp.example.com/mcp', name: 'A' }],
  login: { dev: { users: ['a@example.com'] } },
};

/** The problem lines `parseConfig` refuses `raw` with (none: accepted). */
function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

const invalid: [string, unknown, string[]][] = [
  ['a mapping is needed', 42, ['(top level): Invalid input: expected object, received number']],
  ['a misspelt key', { ...minimal, isuer: 1 }, ['(top level): Unrecognized key: "isuer"']],
  ['an issuer that is not a URL', { ...minimal, issuer: 'x' }, ['issuer: must be an http(s) URL']],
  [
    'http on a non-loopback issuer',
    { ...minimal, issuer: 'http://auth.example.com' },
    ['issuer: must use https (http only on loopback)'],
  ],
  [
    'a duration that is not one',
    { ...minimal, tokens: { accessTokenTtl: 'soon' } },
    ['tokens.accessTokenTtl: "soon" is not a duration (use seconds or e.g. "10m", "12h", "30d")'],
  ],
  [
    'a scope with a space',
    { ...minimal, resources: [{ url: 'https://mcp.example.com/mcp', name: 'A', scopes: ['a b'] }] },
    ['resources[0].scopes[0]: must be a scope token (RFC 6749 §3.3)'],
  ],
  [
    'a resource URL with a query',
    { ...minimal, resources: [{ url: 'https://mcp.example.com/mcp?x=1', name: 'A' }] },
    [
      'resources[0].url: "https://mcp.example.com/mcp?x=1" must not contain a query: a resource ' +
        'URL is scheme, host, port and path only (requests are matched on the path; give each ' +
        'MCP server its own path instead)',
    ],
  ],
  [
    'the same resource twice, spelt differently',
    {
      ...minimal,
      resources: [
        { url: 'https://mcp.example.com/mcp', name: 'A' },
        { url: 'https://MCP.example.com/mcp/', name: 'B' },
      ],
    },
    ['resources[1].url: duplicate resource https://mcp.example.com/mcp'],
  ],
  [
    'no resource with run-time servers off',
    { ...minimal, resources: [], managedServers: { enabled: false } },
    [
      'resources: configure at least one protected MCP server (or let administrators add them: ' +
        'managedServers.enabled)',
    ],
  ],
  [
    'both stores',
    { ...minimal, store: { memory: {}, redis: { url: 'redis://redis:6379' } } },
    ['store: choose either memory or redis'],
  ],
  [
    'a memory store bound under 1000',
    { ...minimal, store: { memory: { maxEntries: 5 } } },
    ['store.memory.maxEntries: Too small: expected number to be >=1000'],
  ],
  [
    'a group that names no provider',
    { ...minimal, access: { groups: ['admins'] } },
    [
      'access.groups[0]: group "admins" must name the login provider it comes from, as ' +
        '"<provider>:<group>" ("dev:admins"); providers with groups: dev',
    ],
  ],
  [
    'an OIDC id and a parameter the gateway sets',
    {
      ...minimal,
      login: {
        oidc: [
          {
            id: 'Corp',
            name: 'x',
            issuer: 'https://idp.example.com',
            clientId: 'c',
            authorizationParams: { state: 'x' },
          },
        ],
      },
    },
    [
      'login.oidc[0].id: must be lowercase letters, digits and -',
      'login.oidc[0].authorizationParams: must not set client_id, redirect_uri, response_type, ' +
        'response_mode, scope, state, nonce, code_challenge, code_challenge_method, resource ' +
        '(the gateway sets them)',
    ],
  ],
  [
    'two OIDC providers with one id',
    {
      ...minimal,
      login: {
        oidc: ['Corp A', 'Corp B'].map((name) => ({
          id: 'corp',
          name,
          issuer: 'https://idp.example.com',
          clientId: 'c',
        })),
      },
    },
    ['login: login.oidc ids must be unique'],
  ],
  [
    'http for a GitHub endpoint',
    {
      ...minimal,
      login: { github: { clientId: 'a', clientSecret: 'b', tokenUrl: 'http://ghe.example.com/t' } },
    },
    ['login.github.tokenUrl: must use https (http only on loopback)'],
  ],
  [
    'a development login without users',
    { ...minimal, login: { dev: { users: [] } } },
    ['login.dev.users: Too small: expected array to have >=1 items'],
  ],
  [
    'a short client secret',
    {
      ...minimal,
      clients: [
        { client_id: 'c', client_secret: 'short', redirect_uris: ['https://app.example.com/cb'] },
      ],
    },
    ['clients[0].client_secret: must be at least 16 characters'],
  ],
  [
    'registration.dcr neither a boolean nor an object',
    { ...minimal, registration: { dcr: 'x' } },
    ['registration.dcr: Invalid input: expected object, received string'],
  ],
  [
    'values outside their choices and bounds',
    {
      ...minimal,
      listen: { port: 70000 },
      verify: { storeOutage: 'maybe' },
      log: { level: 'trace' },
    },
    [
      'listen.port: Too big: expected number to be <=65535',
      'verify.storeOutage: Invalid option: expected one of "fail-closed"|"serve-cached"',
      'log.level: Invalid option: expected one of "error"|"warn"|"info"|"debug"',
    ],
  ],
];

describe('the configuration schema', () => {
  it.each(invalid)('refuses %s, one line per problem naming the key', (_name, raw, lines) => {
    expect(problems(raw)).toEqual(lines);
  });

  it('accepts the short forms: a dev user by address, dcr: false, durations as text', () => {
    const config = parseConfig({
      ...minimal,
      registration: { dcr: false },
      tokens: { accessTokenTtl: '5m', refreshTokenTtl: '12h' },
      login: { dev: { users: ['Dev@Example.com', { email: 'b@example.com', groups: ['x'] }] } },
    });
    expect(config.registration.dcr).toEqual({
      enabled: false,
      maxClients: 10_000,
      clientTtl: 2_592_000,
    });
    expect(config.tokens.accessTokenTtl).toBe(300);
    expect(config.tokens.refreshTokenTtl).toBe(43_200);
    expect(config.login.dev?.users).toEqual([
      { email: 'dev@example.com', name: 'dev@example.com', groups: [] },
      { email: 'b@example.com', name: 'b@example.com', groups: ['x'] },
    ]);
  });

  it('gives a minimal file every default', () => {
    expect(parseConfig(minimal)).toEqual({
      issuer: 'https://auth.example.com',
      listen: { host: '127.0.0.1', port: 8787 },
      dataDir: './data',
      store: {},
      login: {
        dev: {
          users: [{ email: 'a@example.com', name: 'a@example.com', groups: [] }],
          allowNonLoopback: false,
        },
        oidc: [],
      },
      access: { emails: [], domains: [], githubOrgs: [], githubTeams: [], groups: [] },
      resources: [
        {
          url: 'https://mcp.example.com/mcp',
          name: 'A',
          scopes: ['mcp'],
          allowedOrigins: [],
          upstreamAuthorization: 'none',
          toolDefinitions: { mode: 'monitor', recheck: 300 },
        },
      ],
      clients: [],
      registration: {
        dcr: { enabled: true, maxClients: 10_000, clientTtl: 2_592_000 },
        cimd: {
          enabled: true,
          allowHosts: [],
          denyHosts: [],
          onlyHosts: [],
          requireApproval: false,
        },
      },
      tokens: {
        accessTokenTtl: 600,
        refreshTokenTtl: 2_592_000,
        authorizationCodeTtl: 60,
        loginTtl: 600,
        consentTtl: 31_536_000,
      },
      keys: { rotateAfter: 7_776_000 },
      tls: { caFiles: [] },
      cors: { allowedOrigins: ['http://localhost:6274'] },
      verify: {
        clockSkew: 30,
        cacheSize: 100_000,
        maxBodySize: 1_048_576,
        backendTokenTtl: 60,
        revocationPollInterval: 5,
        storeOutage: 'fail-closed',
        storeOutageGrace: 30,
        sessionBinding: { enabled: true, ttl: 86_400, maxPerUser: 1000 },
      },
      metrics: { enabled: true, allowFrom: ['loopback'] },
      tracing: {
        enabled: false,
        endpoint: 'http://localhost:4318/v1/traces',
        serviceName: 'mcp-gateway',
        sampleRatio: 1,
      },
      managedServers: {
        enabled: true,
        pollInterval: 5,
        maxServers: 500,
        traefik: {
          entryPoints: ['websecure'],
          certResolver: 'letsencrypt',
          authMiddleware: 'mcp-auth',
          crowdsecMiddleware: 'crowdsec',
          headersMiddleware: 'security-headers',
          authService: 'auth',
        },
        defaults: { rateLimitAverage: 50, rateLimitBurst: 100, inFlight: 20 },
      },
      toolPinning: {},
      admins: { emails: [], groups: [] },
      audit: { enabled: true, maxRecords: 1_000_000 },
      activity: { enabled: true, maxEntries: 1000 },
      limits: {
        enabled: true,
        register: { points: 20, duration: 3600 },
        authorize: { points: 120, duration: 60 },
        tokenPerIp: { points: 300, duration: 60 },
        tokenPerClient: { points: 120, duration: 60 },
        login: { points: 60, duration: 60 },
        verifyFailures: { points: 300, duration: 60 },
        maxClientsPerIp: 50,
        maxClientsPerNetwork: 100,
      },
      trustedProxies: ['loopback'],
      log: { level: 'info' },
    });
  });

  it('accepts the embedded default: loopback, the dev login, the demo resource', () => {
    const { config, source } = loadConfig(undefined, {});
    expect(source).toBeUndefined();
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8787 });
    expect(config.login.dev?.users.map((user) => user.groups)).toEqual([['admins'], []]);
    expect(config.resources.map((resource) => resource.url)).toEqual(['http://localhost:3001/mcp']);
  });
});
