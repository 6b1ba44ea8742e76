/**
 * The configuration schema: the one place that says which keys exist, what they default to
 * and what values are valid. `docs/configuration.md` documents the same keys; keep the two
 * in step. The parsed result ({@link GatewayConfig}) is the single config object passed down
 * through the service; nothing below `src/main.ts` reads `process.env`.
 */
import ms from 'ms';
import { z } from 'zod';
import { canonicalResourceUrl } from '../oauth/resource-url.js';
import { isLoopbackHostname } from '../net/loopback.js';
import { groupRuleProblem } from '../policy/groups.js';

/** A duration in seconds, written as a number of seconds or a string such as `10m`, `30d`. */
const duration = z.union([z.number().int().positive(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const millis = ms(value as ms.StringValue);
  if (typeof millis !== 'number' || !Number.isFinite(millis) || millis < 1000) {
    ctx.addIssue({
      code: 'custom',
      message: `"${value}" is not a duration (use seconds or e.g. "10m", "12h", "30d")`,
    });
    return z.NEVER;
  }
  return Math.round(millis / 1000);
});

export const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const email = z.email().transform((value) => value.toLowerCase());

const domain = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9-]+\.)+[a-z]{2,}$/i, 'must be a DNS domain such as example.com')
  .transform((value) => value.toLowerCase());

export const scopeToken = z
  .string()
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be a scope token (RFC 6749 §3.3)');

/** A GitHub team, `org/team-slug`. */
const githubTeam = z
  .string()
  .regex(/^[a-z0-9-]+\/[a-z0-9_.-]+$/i, 'must be org/team-slug, e.g. acme/platform')
  .transform((value) => value.toLowerCase());
const githubOrg = z
  .string()
  .regex(/^[a-z0-9-]+$/i, 'must be a GitHub organization login')
  .transform((value) => value.toLowerCase());

/**
 * Who may log in: allow-lists, any one of which admits a user. Email and domain rules match
 * only a verified address.
 */
const accessRules = z.strictObject({
  emails: z.array(email).default([]),
  domains: z.array(domain).default([]),
  /** Members of these GitHub organizations (GitHub login). */
  githubOrgs: z.array(githubOrg).default([]),
  /** Members of these GitHub teams, `org/team-slug` (GitHub login). */
  githubTeams: z.array(githubTeam).default([]),
  /**
   * Members of these groups, each named with its provider: `<provider>:<group>` (`corp:admins`,
   * `github:acme/platform`; src/policy/groups.ts). Exact match.
   */
  groups: z.array(z.string().min(1).max(300)).default([]),
});

const toolRule = z.strictObject({
  /** The token must carry every one of these scopes (more can be obtained by step-up). */
  scopes: z.array(scopeToken).default([]),
  /** The user must be in one of these groups (when not empty), as `<provider>:<group>`. */
  groups: z.array(z.string().min(1)).default([]),
});

export const toolPolicySchema = z.strictObject({
  /**
   * Where `/verify` reads the MCP operation the rules are decided on. `body` (the default):
   * the JSON-RPC body, which the proxy must forward (Traefik forwardAuth `forwardBody: true`);
   * a request that could carry JSON-RPC but reaches `/verify` without a body is refused.
   * `headers`: without a body, the `Mcp-Method`/`Mcp-Name` request headers are believed. They
   * are written by the client, so this is safe only when the MCP server itself refuses a
   * request whose headers do not match its body (MCP 2026-07-28 servers must); it is what
   * proxies that cannot forward a body (Caddy, nginx) allow.
   */
  operationFrom: z.enum(['body', 'headers']).default('body'),
  /** What happens to a tool no rule names. */
  default: z.enum(['allow', 'deny']).default('allow'),
  /** Tool name or glob (`files_*`) → who may call it. The most specific match wins. */
  rules: z.record(z.string().min(1).max(200), toolRule).default({}),
});

export const originSchema = z
  .string()
  .regex(/^https?:\/\/[^/?#]+$/, 'must be an origin such as https://app.example.com (no path)')
  .transform((value) => value.toLowerCase());

export const resourceSchema = z.strictObject({
  /** The MCP server's public canonical URL: the RFC 8707 resource and the token audience. */
  url: httpUrl.transform((value, ctx) => {
    try {
      return canonicalResourceUrl(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  }),
  name: z.string().min(1).max(200),
  /**
   * The baseline scopes of this resource: advertised in its protected resource metadata and
   * 401 challenges, and granted when a client asks for none. Scopes named by tool rules can be
   * granted too (step-up); tokens never carry any other. At least one: an authorization that
   * grants no scope for the resource yields no access token for it (oidc-provider answers
   * `access_denied`), hence the default `mcp`.
   */
  scopes: z.array(scopeToken).min(1).default(['mcp']),
  /** Browser origins allowed to call this MCP server (requests without Origin always pass). */
  allowedOrigins: z.array(originSchema).default([]),
  /** Per-tool authorization for `tools/call`. */
  tools: toolPolicySchema.optional(),
  /**
   * What the MCP server receives in `Authorization`: nothing (`none`), or a short-lived JWT
   * the gateway signs for it (`jwt`), verifiable with the gateway's JWKS. Never the client's
   * token.
   */
  upstreamAuthorization: z.enum(['none', 'jwt']).default('none'),
  /**
   * Narrows the global `access` for this MCP server: a user must pass both. Checked when a
   * client asks for a token for it and at every refresh.
   */
  access: accessRules.optional(),
});

/** A Traefik object name (router, middleware, service, entry point, resolver). */
export const traefikName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'must be letters, digits, - and _ (a Traefik name)');

const redirectUri = z.string().min(1);

const preRegisteredClient = z.strictObject({
  client_id: z.string().min(1).max(200),
  client_secret: z.string().min(16, 'must be at least 16 characters').optional(),
  client_name: z.string().max(200).optional(),
  redirect_uris: z.array(redirectUri).min(1),
  /** Defaults to `client_secret_basic` with a secret and `none` (public client) without. */
  token_endpoint_auth_method: z
    .enum(['none', 'client_secret_basic', 'client_secret_post'])
    .optional(),
  grant_types: z
    .array(z.enum(['authorization_code', 'refresh_token']))
    .default(['authorization_code', 'refresh_token']),
  application_type: z.enum(['web', 'native']).optional(),
  /**
   * Lets this (confidential) client introspect tokens issued to other clients: for resource
   * servers that check tokens at /introspect. Every other client sees only its own tokens.
   */
  allowIntrospection: z.boolean().default(false),
});

/** Authorization request parameters the gateway sets itself; `authorizationParams` cannot. */
const RESERVED_AUTHORIZATION_PARAMS = new Set([
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  // Entra ID and others reject RFC 8707 `resource` on their own authorization endpoint; the
  // gateway's resource indicators are for its own tokens, never sent upstream.
  'resource',
]);

const authorizationParams = z
  .record(z.string().min(1).max(100), z.string().max(500))
  .default({})
  .refine(
    (params) => Object.keys(params).every((key) => !RESERVED_AUTHORIZATION_PARAMS.has(key)),
    `must not set ${[...RESERVED_AUTHORIZATION_PARAMS].join(', ')} (the gateway sets them)`,
  );

const oidcProvider = z.strictObject({
  /** Short identifier used in URLs (`/login/callback/<id>`) and logs. */
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be lowercase letters, digits and -'),
  /** Name shown on the login page. */
  name: z.string().min(1).max(100),
  /** The provider's issuer; its `/.well-known/openid-configuration` is fetched at first use. */
  issuer: httpUrl,
  clientId: z.string().min(1),
  clientSecret: z.string().min(1).optional(),
  scopes: z.array(scopeToken).default(['openid', 'email', 'profile']),
  /**
   * The claim that lists the user's groups (`groups` for Okta, Keycloak and Entra ID; a
   * namespaced claim such as `https://example.com/groups` for Auth0). Unset: no groups.
   */
  groupsClaim: z.string().min(1).max(200).optional(),
  /** The claim with the user's email address. */
  emailClaim: z.string().min(1).max(200).default('email'),
  /**
   * Treat the email claim as verified although the provider sends no `email_verified: true`
   * (Entra ID never sends it). Only for a provider whose tenant owns every address it issues.
   */
  trustEmail: z.boolean().default(false),
  /** Also read claims from the userinfo endpoint (Okta puts groups there by default). */
  fetchUserinfo: z.boolean().default(false),
  /** Extra authorization request parameters (`prompt`, `domain_hint`, Auth0 `audience`). */
  authorizationParams,
});

const githubLogin = z.strictObject({
  /** Name shown on the login page. */
  name: z.string().min(1).max(100).default('GitHub'),
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  /** Only members of one of these organizations may log in with GitHub (needs `read:org`). */
  orgs: z.array(githubOrg).default([]),
  /** Only members of one of these teams (`org/team-slug`) may log in (needs `read:org`). */
  teams: z.array(githubTeam).default([]),
  /** Endpoints; override for GitHub Enterprise Server (`https://HOST/login/oauth/…`, `https://HOST/api/v3`). */
  authorizationUrl: httpUrl.default('https://github.com/login/oauth/authorize'),
  tokenUrl: httpUrl.default('https://github.com/login/oauth/access_token'),
  apiUrl: httpUrl.default('https://api.github.com').transform((value) => value.replace(/\/+$/, '')),
});

const googleLogin = z.strictObject({
  name: z.string().min(1).max(100).default('Google'),
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  /** Only accounts of these Google Workspace domains (the `hd` claim) may log in. */
  hostedDomains: z.array(domain).default([]),
  authorizationUrl: httpUrl.default('https://accounts.google.com/o/oauth2/v2/auth'),
  tokenUrl: httpUrl.default('https://oauth2.googleapis.com/token'),
  userinfoUrl: httpUrl.default('https://openidconnect.googleapis.com/v1/userinfo'),
});

const devUser = z
  .union([
    email.transform((address) => ({ email: address, name: address, groups: [] as string[] })),
    z.strictObject({
      email,
      name: z.string().min(1).max(200).optional(),
      /** Groups, as an enterprise provider's groups claim would give them (for tool rules). */
      groups: z.array(z.string().min(1)).default([]),
    }),
  ])
  .transform((user) => ({ email: user.email, name: user.name ?? user.email, groups: user.groups }));

const devLogin = z.strictObject({
  /**
   * The users the development login offers; each can log in without a password. An entry is
   * an email address, or `{ email, name, groups }`.
   */
  users: z.array(devUser).min(1),
  /** Permit the dev login while listening on a non-loopback address. Never in production. */
  allowNonLoopback: z.boolean().default(false),
});

/** `points` requests per `duration`; over it, blocked for `blockDuration` (default: the window). */
const rateLimit = z.strictObject({
  points: z.number().int().min(1),
  duration: duration,
  blockDuration: duration.optional(),
});

const memoryStore = z.strictObject({
  /**
   * Upper bound on the embedded store's keys. When reached, writes that would create a key are
   * refused (the request fails closed, `store_full` is logged) until entries expire: nothing is
   * evicted, so traffic cannot push out what denies access (bindings, revocations).
   */
  maxEntries: z.number().int().min(1000).default(100_000),
});
const redisStore = z.strictObject({
  url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
  keyPrefix: z.string().default('mcp-gateway:'),
});

export const configSchema = z
  .strictObject({
    /** The public base URL of the auth service; the exact `issuer` in metadata. */
    issuer: httpUrl.transform((value) => value.replace(/\/+$/, '')),
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8787),
      })
      .prefault({}),
    /** Where the embedded default keeps its signing keys and cookie secrets. */
    dataDir: z.string().min(1).default('./data'),
    store: z
      .strictObject({ memory: memoryStore.optional(), redis: redisStore.optional() })
      .refine((store) => !(store.memory && store.redis), 'choose either memory or redis')
      .prefault({}),
    login: z
      .strictObject({
        dev: devLogin.optional(),
        github: githubLogin.optional(),
        google: googleLogin.optional(),
        oidc: z.array(oidcProvider).default([]),
      })
      .prefault({})
      .refine(
        (login) => new Set(login.oidc.map((p) => p.id)).size === login.oidc.length,
        'login.oidc ids must be unique',
      )
      .refine(
        (login) => !login.oidc.some((p) => ['dev', 'github', 'google'].includes(p.id)),
        'login.oidc ids dev, github and google are taken by the built-in logins',
      ),
    /** Who may log in through the upstream providers; no rule = nobody (dev users only). */
    access: accessRules.prefault({}),
    /**
     * The protected MCP servers of this file. More can be added at run time by
     * administrators (`managedServers`); with that turned off at least one is needed here.
     */
    resources: z.array(resourceSchema).default([]),
    clients: z.array(preRegisteredClient).default([]),
    registration: z
      .strictObject({
        /** Dynamic Client Registration (RFC 7591). `dcr: false` is short for `{ enabled: false }`. */
        dcr: z
          .preprocess(
            (value) => (typeof value === 'boolean' ? { enabled: value } : value),
            z.strictObject({
              enabled: z.boolean().default(true),
              /** Registration is refused (HTTP 503) once this many DCR clients exist. */
              maxClients: z.number().int().min(1).default(10_000),
              /** A DCR client is deleted this long after registration or last use. */
              clientTtl: duration.default(30 * 24 * 3600),
            }),
          )
          .prefault({}),
        cimd: z
          .strictObject({
            enabled: z.boolean().default(true),
            /**
             * Hosts (`name` or `name:port`) whose metadata documents may be fetched although
             * they resolve to loopback, private or link-local addresses. Empty by default.
             */
            allowHosts: z.array(z.string().min(1)).default([]),
            /** Hosts whose client ids are refused outright. */
            denyHosts: z.array(z.string().min(1)).default([]),
            /** When not empty, only client ids on these hosts are accepted (an allow-list). */
            onlyHosts: z.array(z.string().min(1)).default([]),
            /**
             * Admin approval for new client hosts: a client id on a host not yet approved is
             * refused and the host is listed as pending until an admin approves it
             * (`mcp-gateway clients approve-host HOST`). Hosts in `onlyHosts` are approved.
             */
            requireApproval: z.boolean().default(false),
          })
          .prefault({}),
      })
      .prefault({}),
    tokens: z
      .strictObject({
        accessTokenTtl: duration.default(600),
        refreshTokenTtl: duration.default(30 * 24 * 3600),
        authorizationCodeTtl: duration.default(60),
        /** How long a started login (interaction) may take. */
        loginTtl: duration.default(600),
        /** How long a user's consent for a client is remembered. */
        consentTtl: duration.default(365 * 24 * 3600),
      })
      .prefault({}),
    keys: z
      .strictObject({
        /** A new signing key is created when the current one is older than this. */
        rotateAfter: duration.default(90 * 24 * 3600),
        /** A JWK Set file (private keys) to use instead of generated keys. */
        file: z.string().optional(),
      })
      .prefault({}),
    tls: z
      .strictObject({
        /** Extra PEM CA certificates trusted for outbound HTTPS (CIMD documents, upstream IdPs). */
        caFiles: z.array(z.string()).default([]),
      })
      .prefault({}),
    cors: z
      .strictObject({
        /**
         * Browser origins allowed to call the token, registration and revocation endpoints
         * (discovery and JWKS are open to every origin). MCP Inspector runs on
         * http://localhost:6274.
         */
        allowedOrigins: z.array(z.string()).default(['http://localhost:6274']),
      })
      .prefault({}),
    /** The forwardAuth decision endpoint. */
    verify: z
      .strictObject({
        /** Clock skew tolerated on `exp`/`nbf` of access tokens, in seconds. */
        clockSkew: z.number().int().min(0).max(300).default(30),
        /** How many verified tokens are remembered (keyed by a hash of the token). */
        cacheSize: z.number().int().min(0).default(100_000),
        /** Largest request body read for JSON-RPC checks (Traefik `maxBodySize`). */
        maxBodySize: z.number().int().min(1024).default(1_048_576),
        /** Lifetime of the JWT handed to MCP servers with `upstreamAuthorization: jwt`. */
        backendTokenTtl: duration.default(60),
        /** How often each replica re-reads revocations, besides being told at once. */
        revocationPollInterval: duration.default(5),
        /**
         * What `/verify` does while the store cannot be read (revocations may be missed):
         * `fail-closed` answers 503 to token decisions once the revocation list is older than
         * two `revocationPollInterval`s (one missed read is tolerated); `serve-cached` keeps
         * verifying signed tokens against the last list read for `storeOutageGrace` more,
         * then answers 503 too.
         */
        storeOutage: z.enum(['fail-closed', 'serve-cached']).default('fail-closed'),
        storeOutageGrace: duration.default(30),
        /**
         * MCP sessions bound to the user and client that first used them (checklist RS-12,
         * src/forward-auth/session-binding.ts): another token presenting the same
         * `Mcp-Session-Id` (or legacy `sessionId`) for the same resource gets 404. `ttl`: how
         * long a binding is kept after the session's first request.
         */
        sessionBinding: z
          .strictObject({
            enabled: z.boolean().default(true),
            ttl: duration.default(86_400),
            /**
             * New MCP sessions one user may start per client and resource within `ttl`;
             * beyond it new sessions get 429. Bindings are never evicted (they keep other
             * users out of a session), so this bounds what one token can store.
             */
            maxPerUser: z.number().int().min(1).default(1000),
          })
          .prefault({}),
      })
      .prefault({}),
    /** Prometheus metrics (prom-client). */
    metrics: z
      .strictObject({
        enabled: z.boolean().default(true),
        /**
         * A separate listener for `/metrics` (e.g. `{ host: 0.0.0.0, port: 9464 }` for a
         * scraper on the container network). Without it, `/metrics` is served on the main
         * listener, only to peers in `allowFrom`.
         */
        listen: z
          .strictObject({
            host: z.string().min(1).default('127.0.0.1'),
            port: z.number().int().min(0).max(65535),
          })
          .optional(),
        /** Peers (CIDRs or `loopback`) allowed to read `/metrics` on the main listener. */
        allowFrom: z.array(z.string()).default(['loopback']),
      })
      .prefault({}),
    /**
     * OpenTelemetry traces of authorize, token and `/verify`, exported over OTLP/HTTP. Off by
     * default; the OpenTelemetry SDK is not even loaded unless this is enabled.
     */
    tracing: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** The OTLP/HTTP traces endpoint (an OpenTelemetry Collector, Jaeger, Tempo). */
        endpoint: httpUrl.default('http://localhost:4318/v1/traces'),
        serviceName: z.string().min(1).default('mcp-gateway'),
        /** Fraction of traces kept (parent-based), 0 to 1. */
        sampleRatio: z.number().min(0).max(1).default(1),
      })
      .prefault({}),
    /**
     * MCP servers administrators add, edit and remove at run time (the admin console's
     * servers page, `mcp-gateway servers …`), kept in the store and applied by every replica
     * without a restart (src/servers/). `resources` of this file stay read-only beside them.
     */
    managedServers: z
      .strictObject({
        enabled: z.boolean().default(true),
        /**
         * Seconds between re-reads of the catalog by each replica. Changes are also announced
         * at once through the store; the re-read catches an announcement a replica missed.
         */
        pollInterval: duration.default(5),
        /** At most this many run-time servers. */
        maxServers: z.number().int().min(1).max(10_000).default(500),
        /** Traefik routing for each run-time server: one file per server (src/servers/traefik-files.ts). */
        traefik: z
          .strictObject({
            /**
             * The file provider's directory (`providers.file.directory` in traefik.yml). Unset:
             * no file is written, and the proxy in front must route the servers itself.
             */
            directory: z.string().min(1).optional(),
            /**
             * SchemaStore's `traefik-v3-file-provider.json`: when set, every file is also
             * validated against it before it is written (the built-in check always runs).
             */
            schemaFile: z.string().min(1).optional(),
            entryPoints: z.array(traefikName).min(1).default(['websecure']),
            /** The certificate resolver of https servers' routers (traefik.yml); `''`: none. */
            certResolver: z.union([traefikName, z.literal('')]).default('letsencrypt'),
            /** Middlewares of the hand-written dynamic configuration the routers use. */
            authMiddleware: traefikName.default('mcp-auth'),
            crowdsecMiddleware: traefikName.default('crowdsec'),
            headersMiddleware: traefikName.default('security-headers'),
            /** The service that reaches the auth service (for the well-known routes). */
            authService: traefikName.default('auth'),
          })
          .prefault({}),
        /** Defaults of the form's rate limits (Traefik `rateLimit`, `inFlightReq`). */
        defaults: z
          .strictObject({
            rateLimitAverage: z.number().int().min(1).default(50),
            rateLimitBurst: z.number().int().min(1).default(100),
            inFlight: z.number().int().min(1).default(20),
          })
          .prefault({}),
      })
      .prefault({}),
    /**
     * Who may use the admin console (`/admin`): a signed-in user whose account has a verified
     * email in `emails` (compared case-insensitively) or a group in `groups` (as
     * `<provider>:<group>`). Empty: nobody.
     */
    admins: z
      .strictObject({
        emails: z.array(email).default([]),
        groups: z.array(z.string().min(1).max(300)).default([]),
      })
      .prefault({}),
    /** The hash-chained audit trail. */
    audit: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Also append every record (one JSON line each) to this file. */
        file: z.string().min(1).optional(),
        /** Records kept in the store (oldest dropped first; the chain stays verifiable). */
        maxRecords: z.number().int().min(1000).default(1_000_000),
      })
      .prefault({}),
    /**
     * The recent activity on the admin console's Activity page: `/verify` decisions and
     * security events, in the store (shared by replicas), written in batches.
     */
    activity: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Entries kept of each (decisions; security events); the oldest are dropped. */
        maxEntries: z.number().int().min(10).max(100_000).default(1000),
      })
      .prefault({}),
    /**
     * Abuse limits inside the service (behind Traefik's): requests per window, per key,
     * shared by every replica through the store. Over a limit: 429 with Retry-After.
     */
    limits: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Client registrations (DCR) per IP. */
        register: rateLimit.prefault({ points: 20, duration: 3600 }),
        /** Authorization requests per IP. */
        authorize: rateLimit.prefault({ points: 120, duration: 60 }),
        /** Token requests per IP, and per client. */
        tokenPerIp: rateLimit.prefault({ points: 300, duration: 60 }),
        tokenPerClient: rateLimit.prefault({ points: 120, duration: 60 }),
        /** Login form posts and upstream callbacks per IP. */
        login: rateLimit.prefault({ points: 60, duration: 60 }),
        /** `/verify` refusals (bad or missing token, refused origin, …) per client IP. */
        verifyFailures: rateLimit.prefault({ points: 300, duration: 60 }),
        /** DCR clients one IP (IPv6: /64) may have registered and not yet expired. */
        maxClientsPerIp: z.number().int().min(1).default(50),
        /** The same per network: IPv4 /24, IPv6 /48 (src/limits/client-quota.ts). */
        maxClientsPerNetwork: z.number().int().min(1).default(100),
      })
      .prefault({}),
    /** Addresses whose X-Forwarded-For / -Proto are believed (CIDRs or names `loopback`). */
    trustedProxies: z.array(z.string()).default(['loopback']),
    log: z
      .strictObject({
        level: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
        /** Also append every security event (one JSON line each) to this file, for CrowdSec. */
        securityEventsFile: z.string().min(1).optional(),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    // MCP requires HTTPS for every authorization server endpoint (checklist AS-09) and for
    // resources; plain http is accepted only on loopback, for development.
    if (config.resources.length === 0 && !config.managedServers.enabled) {
      ctx.addIssue({
        code: 'custom',
        path: ['resources'],
        message:
          'configure at least one protected MCP server (or let administrators add them: managedServers.enabled)',
      });
    }
    if (insecure(config.issuer)) {
      ctx.addIssue({
        code: 'custom',
        path: ['issuer'],
        message: 'must use https (http only on loopback)',
      });
    }
    config.resources.forEach((resource, index) => {
      if (insecure(resource.url)) {
        ctx.addIssue({
          code: 'custom',
          path: ['resources', index, 'url'],
          message: 'must use https (http only on loopback)',
        });
      }
    });
    // Upstream identity providers: their tokens and identities travel over these URLs.
    const upstreamUrls: [string, string[]][] = [
      ...config.login.oidc.map((p, i): [string, string[]] => [
        p.issuer,
        ['login', 'oidc', String(i), 'issuer'],
      ]),
      ...(['github', 'google'] as const).flatMap((kind) => {
        const settings = config.login[kind];
        if (!settings) return [];
        return Object.entries(settings)
          .filter(([key]) => key.endsWith('Url'))
          .map(([key, value]): [string, string[]] => [String(value), ['login', kind, key]]);
      }),
    ];
    for (const [url, path] of upstreamUrls) {
      if (insecure(url)) {
        ctx.addIssue({ code: 'custom', path, message: 'must use https (http only on loopback)' });
      }
    }
    // Every group rule names the provider its group comes from (src/policy/groups.ts).
    const groupRules: { groups: string[]; path: (string | number)[] }[] = [
      { groups: config.access.groups, path: ['access', 'groups'] },
      { groups: config.admins.groups, path: ['admins', 'groups'] },
    ];
    config.resources.forEach((resource, index) => {
      const at = ['resources', index];
      if (resource.access) {
        groupRules.push({ groups: resource.access.groups, path: [...at, 'access', 'groups'] });
      }
      for (const [tool, rule] of Object.entries(resource.tools?.rules ?? {})) {
        groupRules.push({ groups: rule.groups, path: [...at, 'tools', 'rules', tool, 'groups'] });
      }
    });
    for (const { groups, path } of groupRules) {
      groups.forEach((group, index) => {
        const message = groupRuleProblem(group, config.login);
        if (message) ctx.addIssue({ code: 'custom', path: [...path, index], message });
      });
    }
    const urls = config.resources.map((resource) => resource.url);
    urls.forEach((url, index) => {
      if (urls.indexOf(url) !== index) {
        ctx.addIssue({
          code: 'custom',
          path: ['resources', index, 'url'],
          message: `duplicate resource ${url}`,
        });
      }
    });
  });

/**
 * Whether `value` is an http URL to a host other than loopback. Zod runs refinements even when
 * a field already failed its own check; a value that is not a URL at all has its own issue,
 * so it is not judged here.
 */
export function insecure(value: unknown): boolean {
  if (typeof value !== 'string' || !URL.canParse(value)) return false;
  const url = new URL(value);
  return url.protocol === 'http:' && !isLoopbackHostname(url.hostname);
}

export type GatewayConfig = z.output<typeof configSchema>;
export type ResourceConfig = GatewayConfig['resources'][number];
export type OidcProviderConfig = GatewayConfig['login']['oidc'][number];
export type GitHubLoginConfig = NonNullable<GatewayConfig['login']['github']>;
export type GoogleLoginConfig = NonNullable<GatewayConfig['login']['google']>;
export type AccessRules = GatewayConfig['access'];
export type ClientConfig = GatewayConfig['clients'][number];
export type ToolPolicyConfig = NonNullable<ResourceConfig['tools']>;
