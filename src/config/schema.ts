/**
 * The configuration schema: the one place that says which keys exist, what they default to,
 * what values are valid and what each one means. Every key carries its description
 * (`.describe()`, last in its chain, so that it sits on the schema its object holds); from them
 * `npm run docs:config` writes the key reference of docs/configuration.md and the editor schema
 * docs/gateway.schema.json (src/config/reference.ts), and a unit test fails when either drifts.
 * The parsed result ({@link GatewayConfig}) is validated once and held whole only by the
 * composition (src/main.ts, src/gateway.ts, src/app/services.ts, the CLI commands), which hands
 * each module the slice it reads (`Pick<GatewayConfig, …>`, `GatewayConfig['section']`;
 * tests/unit/architecture/structure.test.ts checks it); nothing below `src/main.ts` reads
 * `process.env`.
 */
import ms from 'ms';
import { z } from 'zod';
import { canonicalResourceUrl } from '../resources/resource-url.js';
import { isLoopbackHostname } from '../net/loopback.js';
import { groupRuleProblem } from '../policy/groups.js';

/**
 * A duration in seconds, written as a number of seconds or a string such as `10m`, `30d`. Its
 * `id` puts it once in the editor schema's `$defs`, and names its type in the reference.
 */
const duration = z
  .union([z.number().int().positive(), z.string()])
  .transform((value, ctx) => {
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
  })
  .meta({
    id: 'duration',
    description: 'A number of seconds (`600`), or a string such as `"10m"`, `"12h"`, `"30d"`.',
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

/** Who may log in: allow-lists, any one of which admits a user (global and per resource). */
const accessRules = z.strictObject({
  emails: z
    .array(email)
    .default([])
    .describe('Exact addresses (case-insensitive); only an address the provider verified.'),
  domains: z
    .array(domain)
    .default([])
    .describe(
      'Email domains (`example.com`; subdomains are not included); only an address the ' +
        'provider verified.',
    ),
  githubOrgs: z
    .array(githubOrg)
    .default([])
    .describe('Members of these GitHub organizations (GitHub login; lowercased).'),
  githubTeams: z
    .array(githubTeam)
    .default([])
    .describe('Members of these GitHub teams, `org/team-slug` (GitHub login; lowercased).'),
  groups: z
    .array(z.string().min(1).max(300))
    .default([])
    .describe(
      'Members of these groups, each named with its login provider (exact match): `corp:eng` ' +
        '(`login.oidc` `corp`), `dev:eng`, `github:<org>`, `github:<org>/<team>`.',
    ),
});

const toolRule = z.strictObject({
  scopes: z
    .array(scopeToken)
    .default([])
    .describe(
      'The call needs every one of these scopes (403 `insufficient_scope` otherwise, so the ' +
        'client can step up).',
    ),
  groups: z
    .array(z.string().min(1))
    .default([])
    .describe(
      'When not empty, the user must be in one of these groups, as `<provider>:<group>` (a 403 ' +
        'JSON-RPC error otherwise).',
    ),
});

export const toolPolicySchema = z.strictObject({
  operationFrom: z
    .enum(['body', 'headers'])
    .default('body')
    .describe(
      'Where `/verify` reads the MCP operation the rules judge. `body`: the JSON-RPC body the ' +
        'proxy forwards (Traefik `forwardBody: true`); a request that could carry JSON-RPC but ' +
        'arrives without a body is refused, so behind Caddy or nginx every `tools/call` is ' +
        'refused. `headers`: without a body, the `Mcp-Method`/`Mcp-Name` request headers are ' +
        'believed. The client writes them, so this is an explicit opt-in for proxies that ' +
        'cannot forward a body, safe only when the MCP server itself refuses requests whose ' +
        'headers do not match their body (MCP 2026-07-28 servers do). ' +
        '`mcp-gateway config check` prints what each resource’s choice needs.',
    ),
  default: z
    .enum(['allow', 'deny'])
    .default('allow')
    .describe('What happens to a `tools/call` of a tool no rule names.'),
  rules: z
    .record(z.string().min(1).max(200), toolRule)
    .default({})
    .describe(
      'Tool name or glob (`files_*`) → who may call it. Exact names win over globs; among ' +
        'globs, the one with the most literal characters.',
    ),
});

export const originSchema = z
  .string()
  .regex(/^https?:\/\/[^/?#]+$/, 'must be an origin such as https://app.example.com (no path)')
  .transform((value) => value.toLowerCase());

/** Tool definition pinning of one MCP server (src/tool-pinning/, docs/tool-pinning.md). */
const toolDefinitionsSchema = z
  .strictObject({
    mode: z
      .enum(['off', 'monitor', 'enforce'])
      .default('monitor')
      .describe(
        '`enforce`: while definitions are new, changed or flagged and not yet approved, ' +
          '`/verify` refuses `tools/call` of those tools and the server’s `tools/list`; ' +
          '`monitor`: everything is allowed, every change or flag is a security event; `off`: ' +
          'not listed at all. `monitor` by default: an administrator must be there to approve, ' +
          'and a server update should not cut users off until one turns `enforce` on.',
      ),
    recheck: duration
      .default(300)
      .describe('How often the definitions are listed again (also at start and on new sessions).'),
    authorizationEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
      .optional()
      .describe(
        'An environment variable whose value the gateway sends as `Authorization` when it ' +
          'lists the server (a credential of its own). Unset: the gateway’s JWT with ' +
          '`upstreamAuthorization: jwt`, else nothing.',
      ),
  })
  .default({ mode: 'monitor', recheck: 300 })
  .describe(
    'Pinning of the server’s tool definitions (needs `upstream`): listed, hashed, scanned, and ' +
      'held for an administrator when they change or look poisoned.',
  );

export const resourceSchema = z.strictObject({
  url: httpUrl
    .transform((value, ctx) => {
      try {
        return canonicalResourceUrl(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    })
    .describe(
      'The MCP server’s public canonical URL: the RFC 8707 `resource`, the token audience, ' +
        'and the prefix `/verify` matches requests against (longest prefix wins; a legacy SSE ' +
        'server is one resource such as `https://mcp.example.com/servers/a` covering ' +
        '`/servers/a/sse` and `/servers/a/messages`). Stored canonically (lowercase scheme and ' +
        'host, no trailing slash); requests may use any spelling of it. `https`, or `http` on ' +
        'loopback; no query and no fragment.',
    ),
  name: z
    .string()
    .min(1)
    .max(200)
    .describe('Shown on the consent page and as `resource_name` in its metadata.'),
  scopes: z
    .array(scopeToken)
    .min(1)
    .default(['mcp'])
    .describe(
      'The baseline scopes: advertised in the protected resource metadata and the 401 ' +
        'challenge, asked for when a client sends no `scope`, required of every token at ' +
        '`/verify`. Scopes named by tool rules can be granted too (step-up); tokens never carry ' +
        'any other. At least one, hence the default: an authorization that grants no scope for ' +
        'the resource yields no access token for it (oidc-provider answers `access_denied`).',
    ),
  allowedOrigins: z
    .array(originSchema)
    .default([])
    .describe(
      'Browser origins (`https://app.example.com`) allowed to call this MCP server; a request ' +
        'with another `Origin` gets 403 before any token check. Requests without `Origin` ' +
        '(every non-browser client) are not affected.',
    ),
  tools: toolPolicySchema
    .optional()
    .describe('Per-tool authorization of `tools/call`. Unset: every tool is allowed.'),
  upstreamAuthorization: z
    .enum(['none', 'jwt'])
    .default('none')
    .describe(
      'What the MCP server receives in `Authorization`: nothing (`none`), or a JWT signed by ' +
        'the gateway (`jwt`, `typ: mcp-gateway+jwt`, `aud` = this resource, lifetime ' +
        '`verify.backendTokenTtl`), verifiable with `<issuer>/jwks`. Never the client’s token.',
    ),
  upstream: httpUrl
    .optional()
    .describe(
      'Where the gateway itself reaches this MCP server (its MCP endpoint on the internal ' +
        'network, as the proxy forwards to it), to list and pin its tool definitions ' +
        '(`toolDefinitions`). Unset: the definitions are not pinned. Servers added at run time ' +
        'always have one.',
    ),
  toolDefinitions: toolDefinitionsSchema,
  access: accessRules
    .optional()
    .describe(
      'Narrows the global `access` for this MCP server, with the same keys: a user must pass ' +
        'both. Checked at login and consent, and whenever a token is issued for it (code ' +
        'exchange and every refresh).',
    ),
});

/** A Traefik object name (router, middleware, service, entry point, resolver). */
export const traefikName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'must be letters, digits, - and _ (a Traefik name)');

const redirectUri = z.string().min(1);

const preRegisteredClient = z.strictObject({
  client_id: z
    .string()
    .min(1)
    .max(200)
    .describe(
      'The client’s id. `mcp-gateway-account` is taken: it is the gateway’s own client for ' +
        'the connected apps page.',
    ),
  client_secret: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe('At least 16 characters; makes the client confidential.'),
  client_name: z.string().max(200).optional().describe('Shown on the consent page.'),
  redirect_uris: z
    .array(redirectUri)
    .min(1)
    .describe('Where authorization responses may be sent: https, or http on loopback.'),
  token_endpoint_auth_method: z
    .enum(['none', 'client_secret_basic', 'client_secret_post'])
    .optional()
    .describe(
      'How the client authenticates at the token endpoint. Unset: `client_secret_basic` with ' +
        'a secret, `none` (a public client) without.',
    ),
  grant_types: z
    .array(z.enum(['authorization_code', 'refresh_token']))
    .default(['authorization_code', 'refresh_token'])
    .describe('The grants the client may use.'),
  application_type: z
    .enum(['web', 'native'])
    .optional()
    .describe('`web` or `native` (RFC 8252 apps). Unset: `web`.'),
  allowIntrospection: z
    .boolean()
    .default(false)
    .describe(
      'Lets this (confidential) client introspect tokens issued to other clients: for ' +
        'resource servers that check tokens at `/introspect`. Every other client sees only its ' +
        'own tokens.',
    ),
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
  )
  .describe(
    'Extra authorization request parameters (`prompt`, `domain_hint`, Auth0 `audience`). ' +
      `May not set ${[...RESERVED_AUTHORIZATION_PARAMS].map((name) => `\`${name}\``).join(', ')}: ` +
      'the gateway sets them (and never sends its own `resource` upstream).',
  );

/** A login's name on the login page; the built-in logins default to their provider's name. */
const loginName = (fallback?: string) => {
  const name = z.string().min(1).max(100);
  return (fallback === undefined ? name : name.default(fallback)).describe(
    'Name shown on the login page.',
  );
};

const oidcProvider = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be lowercase letters, digits and -')
    .describe(
      'Short identifier used in URLs and logs: 1–32 lowercase letters, digits and `-`, unique, ' +
        'not `dev`, `github` or `google`. The callback URL to register at the provider is ' +
        '`<issuer>/login/callback/<id>`.',
    ),
  name: loginName(),
  issuer: httpUrl.describe(
    'The provider’s issuer; its `/.well-known/openid-configuration` is fetched at the first ' +
      'login, and again after a failure. `https` (http only for a provider on loopback).',
  ),
  clientId: z.string().min(1).describe('The gateway’s client id at the provider.'),
  clientSecret: z
    .string()
    .min(1)
    .optional()
    .describe('The gateway’s client secret at the provider (write it as `${VAR}`).'),
  scopes: z
    .array(scopeToken)
    .default(['openid', 'email', 'profile'])
    .describe(
      'Requested scopes; add `offline_access` so that the identity is re-read at every refresh.',
    ),
  groupsClaim: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe(
      'The claim that lists the user’s groups (`groups` for Okta, Keycloak and Entra ID, ' +
        '`roles`, or a namespaced claim such as `https://example.com/groups` for Auth0). ' +
        'Unset: no groups.',
    ),
  emailClaim: z
    .string()
    .min(1)
    .max(200)
    .default('email')
    .describe('The claim with the user’s email address.'),
  trustEmail: z
    .boolean()
    .default(false)
    .describe(
      'Treat the address as verified although the provider sends no `email_verified: true` ' +
        '(Entra ID never sends it). Only for a provider whose tenant owns every address it ' +
        'issues.',
    ),
  fetchUserinfo: z
    .boolean()
    .default(false)
    .describe(
      'Also read the userinfo endpoint and merge its claims over the ID token’s (Okta puts ' +
        'groups there by default).',
    ),
  authorizationParams,
});

const githubLogin = z.strictObject({
  name: loginName('GitHub'),
  clientId: z.string().min(1).describe('The OAuth App’s client id.'),
  clientSecret: z.string().min(1).describe('The OAuth App’s client secret (write it as `${VAR}`).'),
  orgs: z
    .array(githubOrg)
    .default([])
    .describe(
      'Only members of one of these organizations may log in with GitHub (lowercased; ' +
        'requests `read:org`).',
    ),
  teams: z
    .array(githubTeam)
    .default([])
    .describe(
      'Only members of one of these teams, `org/team-slug`, may log in with GitHub ' +
        '(lowercased; requests `read:org`).',
    ),
  authorizationUrl: httpUrl
    .default('https://github.com/login/oauth/authorize')
    .describe(
      'The authorization endpoint; for GitHub Enterprise Server ' +
        '`https://HOST/login/oauth/authorize`.',
    ),
  tokenUrl: httpUrl
    .default('https://github.com/login/oauth/access_token')
    .describe(
      'The token endpoint; for GitHub Enterprise Server `https://HOST/login/oauth/access_token`.',
    ),
  apiUrl: httpUrl
    .default('https://api.github.com')
    .transform((value) => value.replace(/\/+$/, ''))
    .describe(
      'The REST API; for GitHub Enterprise Server `https://HOST/api/v3` (a trailing slash is ' +
        'removed).',
    ),
});

const googleLogin = z.strictObject({
  name: loginName('Google'),
  clientId: z.string().min(1).describe('The OAuth client’s id.'),
  clientSecret: z.string().min(1).describe('The OAuth client’s secret (write it as `${VAR}`).'),
  hostedDomains: z
    .array(domain)
    .default([])
    .describe(
      'Only accounts of these Google Workspace domains may log in (the `hd` claim, not the ' +
        'address); a single configured domain is also sent as the `hd` hint.',
    ),
  authorizationUrl: httpUrl
    .default('https://accounts.google.com/o/oauth2/v2/auth')
    .describe('Google’s authorization endpoint.'),
  tokenUrl: httpUrl
    .default('https://oauth2.googleapis.com/token')
    .describe('Google’s token endpoint.'),
  userinfoUrl: httpUrl
    .default('https://openidconnect.googleapis.com/v1/userinfo')
    .describe('Google’s userinfo endpoint.'),
});

const devUser = z
  .union([
    email.transform((address) => ({ email: address, name: address, groups: [] as string[] })),
    z.strictObject({
      email: email.describe('The user’s address.'),
      name: z.string().min(1).max(200).optional().describe('Shown on pages. Unset: the address.'),
      groups: z
        .array(z.string().min(1))
        .default([])
        .describe(
          'Groups, as an enterprise provider’s groups claim would give them; rules name them ' +
            '`dev:<group>`.',
        ),
    }),
  ])
  .transform((user) => ({ email: user.email, name: user.name ?? user.email, groups: user.groups }));

const devLogin = z.strictObject({
  users: z
    .array(devUser)
    .min(1)
    .describe(
      'The users offered on the login page; each can log in without a password. An entry is ' +
        'an email address, or `{ email, name, groups }`.',
    ),
  allowNonLoopback: z
    .boolean()
    .default(false)
    .describe(
      'Allow the development login while listening on a non-loopback address. The service ' +
        'refuses to start otherwise; with `true` it logs a loud warning at start-up. Never in ' +
        'production.',
    ),
});

/** `points` requests per `duration`; over it, blocked for `blockDuration` (default: the window). */
const rateLimit = z.strictObject({
  points: z.number().int().min(1).describe('Requests allowed per `duration`.'),
  duration: duration.describe('The window the points are counted over.'),
  blockDuration: duration
    .optional()
    .describe('How long a key over the limit is refused. Unset: the rest of the window.'),
});

const memoryStore = z.strictObject({
  maxEntries: z
    .number()
    .int()
    .min(1000)
    .default(100_000)
    .describe(
      'Upper bound on the embedded store’s keys. When reached, writes that would create a key ' +
        'are refused (the request fails closed, `store_full` is logged) until entries expire: ' +
        'nothing is evicted, so traffic cannot push out what denies access (bindings, ' +
        'revocations).',
    ),
});
const redisStore = z.strictObject({
  url: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .describe('`redis://host:6379/0`, or `rediss://` for TLS.'),
  keyPrefix: z.string().default('mcp-gateway:').describe('Prefix of every key the gateway writes.'),
});

/** The listening address; `PORT` and `HOST` override it (src/config/load.ts). */
const listenSettings = z.strictObject({
  host: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe(
      'Address to listen on (`0.0.0.0` in a container behind Traefik). `HOST` overrides it.',
    ),
  port: z.number().int().min(0).max(65535).default(8787).describe('TCP port. `PORT` overrides it.'),
});

const storeSettings = z
  .strictObject({
    memory: memoryStore
      .optional()
      .describe('The embedded in-memory store (the default), with another bound.'),
    redis: redisStore
      .optional()
      .describe(
        'Redis, shared by every replica: required for several replicas. It must run with ' +
          '`maxmemory-policy noeviction`.',
      ),
  })
  .refine((store) => !(store.memory && store.redis), 'choose either memory or redis');

const loginSettings = z
  .strictObject({
    dev: devLogin.optional().describe('A development login with no password.'),
    github: githubLogin
      .optional()
      .describe(
        'Login with GitHub (github.com or GitHub Enterprise Server) through an OAuth App; the ' +
          'callback URL is `<issuer>/login/callback/github`.',
      ),
    google: googleLogin
      .optional()
      .describe(
        'Login with Google (Workspace and consumer accounts); the callback URL is ' +
          '`<issuer>/login/callback/google`.',
      ),
    oidc: z
      .array(oidcProvider)
      .default([])
      .describe(
        'OpenID Connect providers (Entra ID, Okta, Keycloak, Auth0…), one entry each, each ' +
          'found by discovery.',
      ),
  })
  .prefault({})
  .refine(
    (login) => new Set(login.oidc.map((p) => p.id)).size === login.oidc.length,
    'login.oidc ids must be unique',
  )
  .refine(
    (login) => !login.oidc.some((p) => ['dev', 'github', 'google'].includes(p.id)),
    'login.oidc ids dev, github and google are taken by the built-in logins',
  );

/** Dynamic Client Registration; a boolean is short for `{ enabled }` (the editor schema says so). */
export const dcrSettings = z.preprocess(
  (value) => (typeof value === 'boolean' ? { enabled: value } : value),
  z.strictObject({
    enabled: z.boolean().default(true).describe('Whether clients may register.'),
    maxClients: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe(
        'Registration answers 503 `temporarily_unavailable` (with `Retry-After`) once this ' +
          'many DCR clients exist.',
      ),
    clientTtl: duration
      .default(30 * 24 * 3600)
      .describe('A DCR client is deleted this long after its registration or last use.'),
  }),
);

const cimdSettings = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe('Whether a `client_id` may be the https URL of a metadata document.'),
  allowHosts: z
    .array(z.string().min(1))
    .default([])
    .describe(
      'Hosts (`name` or `name:port`) whose documents may be fetched although they resolve to ' +
        'loopback, private or link-local addresses. Every other host must resolve only to ' +
        'public addresses.',
    ),
  denyHosts: z
    .array(z.string().min(1))
    .default([])
    .describe('Hosts whose client ids are refused without fetching.'),
  onlyHosts: z
    .array(z.string().min(1))
    .default([])
    .describe('When not empty, only client ids on these hosts are accepted (an allow-list).'),
  requireApproval: z
    .boolean()
    .default(false)
    .describe(
      'A client id on a host no administrator has approved is refused and the host listed as ' +
        'pending (`mcp-gateway clients pending-hosts`, `clients approve-host HOST`; needs the ' +
        'Redis store to reach a running service). Hosts in `onlyHosts` count as approved.',
    ),
});

const registrationSettings = z.strictObject({
  dcr: dcrSettings
    .prefault({})
    .describe(
      'Dynamic Client Registration (RFC 7591, read per RFC 7592). `dcr: false` is short for ' +
        '`{ enabled: false }`.',
    ),
  cimd: cimdSettings
    .prefault({})
    .describe(
      'Client ID Metadata Documents: a `client_id` that is an https URL, whose document the ' +
        'service fetches.',
    ),
});

const tokenSettings = z.strictObject({
  accessTokenTtl: duration.default(600).describe('Access token (and ID token) lifetime.'),
  refreshTokenTtl: duration
    .default(30 * 24 * 3600)
    .describe('Refresh token and grant lifetime; refresh tokens rotate on every use.'),
  authorizationCodeTtl: duration.default(60).describe('Authorization code lifetime.'),
  loginTtl: duration
    .default(600)
    .describe('How long a started login (interaction, upstream state, CSRF token) may take.'),
  consentTtl: duration
    .default(365 * 24 * 3600)
    .describe('How long a user’s consent for a client is remembered.'),
});

const keySettings = z.strictObject({
  rotateAfter: duration
    .default(90 * 24 * 3600)
    .describe(
      'A new signing key is created at start-up when the newest is older than this; older ' +
        'keys stay published until every token they signed has expired.',
    ),
  file: z
    .string()
    .optional()
    .describe(
      'A JWK Set file with private keys (and optionally `cookieSecrets`) to use instead of ' +
        'generated keys; never rotated by the service.',
    ),
});

const tlsSettings = z.strictObject({
  caFiles: z
    .array(z.string())
    .default([])
    .describe(
      'Extra PEM CA certificates trusted for outbound HTTPS (CIMD documents, upstream ' +
        'providers), e.g. a company CA.',
    ),
});

const corsSettings = z.strictObject({
  allowedOrigins: z
    .array(z.string())
    .default(['http://localhost:6274'])
    .describe(
      'Browser origins allowed at the token, revocation and introspection endpoints. The ' +
        'default is MCP Inspector’s.',
    ),
});

/** Checklist RS-12 (docs/spec-compliance.md), applied by src/forward-auth/session-binding.ts. */
const sessionBindingSettings = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe(
      'Bind each MCP session (`Mcp-Session-Id`, or a legacy server’s `sessionId`/`session_id` ' +
        'in any spelling) to the user and client that first used it; another token on it gets ' +
        '404, a request naming several sessions 400.',
    ),
  ttl: duration
    .default(86_400)
    .describe('How long a session’s binding is kept after its first request.'),
  maxPerUser: z
    .number()
    .int()
    .min(1)
    .default(1000)
    .describe(
      'New MCP sessions one user may start per client and resource within `ttl`; beyond it a ' +
        'new session gets 429 (`Retry-After`). Bindings are never evicted to make room (they ' +
        'keep others out of a session), so this bounds what one token can store.',
    ),
});

const verifySettings = z.strictObject({
  clockSkew: z
    .number()
    .int()
    .min(0)
    .max(300)
    .default(30)
    .describe('Seconds of clock skew tolerated on `exp`/`nbf` of access tokens.'),
  cacheSize: z
    .number()
    .int()
    .min(0)
    .default(100_000)
    .describe(
      'Verified tokens remembered (keyed by a SHA-256 of the token; each entry dropped at the ' +
        'token’s `exp`).',
    ),
  maxBodySize: z
    .number()
    .int()
    .min(1024)
    .default(1_048_576)
    .describe(
      'Largest request body, in bytes, read for JSON-RPC checks; larger gets 413 (match ' +
        'Traefik’s `maxBodySize`).',
    ),
  backendTokenTtl: duration
    .default(60)
    .describe('Lifetime of the JWT given to MCP servers with `upstreamAuthorization: jwt`.'),
  revocationPollInterval: duration
    .default(5)
    .describe(
      'How often each replica re-reads the revocation list, besides being told at once over ' +
        'the store’s pub/sub.',
    ),
  storeOutage: z
    .enum(['fail-closed', 'serve-cached'])
    .default('fail-closed')
    .describe(
      'What `/verify` does while the store cannot be read (revocations may be missed): ' +
        '`fail-closed` answers 503 to token decisions once the revocation list is older than ' +
        'two `revocationPollInterval`s (one missed read is tolerated); `serve-cached` keeps ' +
        'verifying signed tokens against the last list read for `storeOutageGrace` more, then ' +
        'answers 503 too.',
    ),
  storeOutageGrace: duration
    .default(30)
    .describe('How long `serve-cached` may go on after a missed read.'),
  sessionBinding: sessionBindingSettings
    .prefault({})
    .describe(
      'MCP sessions bound to the user and client that first used them: another token ' +
        'presenting the same session for the same resource gets 404.',
    ),
});

const metricsSettings = z.strictObject({
  enabled: z.boolean().default(true).describe('Serve Prometheus metrics at `/metrics`.'),
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1').describe('Address of the metrics listener.'),
      port: z.number().int().min(0).max(65535).describe('TCP port of the metrics listener.'),
    })
    .optional()
    .describe(
      'A separate listener serving only `/metrics` (e.g. `{ host: 0.0.0.0, port: 9464 }` for ' +
        'a scraper on the container network). Unset: `/metrics` is served on the main ' +
        'listener, only to peers in `allowFrom`.',
    ),
  allowFrom: z
    .array(z.string())
    .default(['loopback'])
    .describe(
      'Without `listen`: peers (CIDRs or `loopback`) that may read `/metrics` on the main ' +
        'listener; others get 404.',
    ),
});

const tracingSettings = z.strictObject({
  enabled: z
    .boolean()
    .default(false)
    .describe('Export OpenTelemetry spans; the SDK is loaded only then.'),
  endpoint: httpUrl
    .default('http://localhost:4318/v1/traces')
    .describe('The OTLP/HTTP traces endpoint (an OpenTelemetry Collector, Jaeger, Tempo).'),
  serviceName: z.string().min(1).default('mcp-gateway').describe('`service.name` of the spans.'),
  sampleRatio: z
    .number()
    .min(0)
    .max(1)
    .default(1)
    .describe('Fraction of root traces kept (parent-based), 0 to 1.'),
});

/** Traefik routing of the run-time servers: one file per server (src/servers/traefik-files.ts). */
const managedTraefikSettings = z.strictObject({
  directory: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Traefik’s file provider directory (`providers.file.directory` in traefik.yml): one ' +
        '`mcpgw-<id>.yaml` per server; must be writable. Unset: no file is written, and the ' +
        'proxy in front must route the servers itself.',
    ),
  schemaFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      'SchemaStore’s `traefik-v3-file-provider.json`: when set, every file is also validated ' +
        'against it before it is written (the built-in check always runs).',
    ),
  entryPoints: z
    .array(traefikName)
    .min(1)
    .default(['websecure'])
    .describe('Entry points of the generated routers.'),
  certResolver: z
    .union([traefikName, z.literal('')])
    .default('letsencrypt')
    .describe("The certificate resolver of `https` servers’ routers (traefik.yml); `''`: none."),
  authMiddleware: traefikName
    .default('mcp-auth')
    .describe('The forwardAuth middleware of the hand-written dynamic configuration.'),
  crowdsecMiddleware: traefikName
    .default('crowdsec')
    .describe('The CrowdSec bouncer middleware (used when a server has CrowdSec on).'),
  headersMiddleware: traefikName
    .default('security-headers')
    .describe('The response headers middleware.'),
  authService: traefikName
    .default('auth')
    .describe('The service that reaches the auth service (for the discovery routes).'),
});

const managedServerDefaults = z.strictObject({
  rateLimitAverage: z
    .number()
    .int()
    .min(1)
    .default(50)
    .describe('The form’s default rate limit (requests per second per client address).'),
  rateLimitBurst: z.number().int().min(1).default(100).describe('The form’s default burst.'),
  inFlight: z
    .number()
    .int()
    .min(1)
    .default(20)
    .describe('The form’s default concurrent requests per client address.'),
});

const managedServerSettings = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe('Whether administrators may add servers at run time.'),
  pollInterval: duration
    .default(5)
    .describe(
      'How often each replica re-reads the catalog. Changes are also announced at once ' +
        'through the store; the re-read catches an announcement a replica missed.',
    ),
  maxServers: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(500)
    .describe('At most this many run-time servers.'),
  traefik: managedTraefikSettings
    .prefault({})
    .describe('Traefik routing for each run-time server: one file per server.'),
  defaults: managedServerDefaults
    .prefault({})
    .describe('Defaults of the form’s rate limits (Traefik `rateLimit`, `inFlightReq`).'),
});

const adminSettings = z.strictObject({
  emails: z
    .array(email)
    .default([])
    .describe('Administrators’ addresses (case-insensitive); only a verified address.'),
  groups: z
    .array(z.string().min(1).max(300))
    .default([])
    .describe('Administrators’ groups, as `<provider>:<group>` (`corp:admins`), exact match.'),
});

const auditSettings = z.strictObject({
  enabled: z.boolean().default(true).describe('Keep the hash-chained audit trail.'),
  file: z
    .string()
    .min(1)
    .optional()
    .describe('Mirror the chain to this file (JSON lines, mode 0600, signed checkpoints).'),
  maxRecords: z
    .number()
    .int()
    .min(1000)
    .default(1_000_000)
    .describe('Records kept in the store; the oldest are trimmed (the chain stays verifiable).'),
});

const activitySettings = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe(
      'Record them (in the store, shared by replicas). `false`: nothing is recorded and the ' +
        'page says so.',
    ),
  maxEntries: z
    .number()
    .int()
    .min(10)
    .max(100_000)
    .default(1000)
    .describe(
      'Decisions kept, and security events kept (two lists, each this long); the oldest are ' +
        'dropped.',
    ),
});

const limitSettings = z.strictObject({
  enabled: z.boolean().default(true).describe('Apply the limits below.'),
  register: rateLimit
    .prefault({ points: 20, duration: 3600 })
    .describe('Client registrations (DCR) per IP.'),
  authorize: rateLimit
    .prefault({ points: 120, duration: 60 })
    .describe('Authorization requests per IP.'),
  tokenPerIp: rateLimit.prefault({ points: 300, duration: 60 }).describe('Token requests per IP.'),
  tokenPerClient: rateLimit
    .prefault({ points: 120, duration: 60 })
    .describe('Token requests per client.'),
  login: rateLimit
    .prefault({ points: 60, duration: 60 })
    .describe('Login form posts and upstream callbacks per IP.'),
  verifyFailures: rateLimit
    .prefault({ points: 300, duration: 60 })
    .describe('`/verify` refusals (bad or missing token, refused origin, …) per client IP.'),
  maxClientsPerIp: z
    .number()
    .int()
    .min(1)
    .default(50)
    .describe('Live DCR clients one address (IPv6: its /64) may have registered.'),
  maxClientsPerNetwork: z
    .number()
    .int()
    .min(1)
    .default(100)
    .describe('The same per network: IPv4 /24, IPv6 /48 (src/limits/client-quota.ts).'),
});

const logSettings = z.strictObject({
  level: z
    .enum(['error', 'warn', 'info', 'debug'])
    .default('info')
    .describe('The least severe level written.'),
  securityEventsFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Also append every security event (one JSON line each, nothing else) to this file, for ' +
        'CrowdSec. Several replicas may share it; the service never rotates it (rotate it ' +
        'with logrotate `copytruncate`).',
    ),
});

/** Every key of the file, before the rules that relate one key to another. */
/** An external classifier of tool definitions, beside the built-in scanner. */
const toolPinningSettings = z.strictObject({
  classifier: z
    .strictObject({
      url: httpUrl.describe(
        'Where each new or changed definition is POSTed as JSON `{ resource, kind, name, ' +
          'definition }`; it answers `{ "flagged": true|false, "reason": "…" }`.',
      ),
      timeout: duration
        .default(5)
        .describe('How long one answer may take; then `failPolicy` decides.'),
      failPolicy: z
        .enum(['flag', 'pass'])
        .default('flag')
        .describe(
          'A definition the classifier could not judge (timeout, error, an answer that is not ' +
            'the expected JSON): `flag` holds it (fail closed), `pass` leaves it to the ' +
            'built-in scanner.',
        ),
      authorizationEnv: z
        .string()
        .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
        .optional()
        .describe('An environment variable whose value is sent as `Authorization`.'),
    })
    .optional()
    .describe('An optional external classifier (an HTTP service). Unset: the scanner alone.'),
});

const configObject = z.strictObject({
  issuer: httpUrl
    .transform((value) => value.replace(/\/+$/, ''))
    .describe(
      'The public base URL of the auth service, byte-exact `issuer` in its metadata (a ' +
        'trailing slash is removed). Must be `https`, except on loopback hosts (`localhost`, ' +
        '`127.0.0.1`, `[::1]`) for development.',
    ),
  listen: listenSettings.prefault({}).describe('Where the service listens.'),
  dataDir: z
    .string()
    .min(1)
    .default('./data')
    .describe(
      'Where the embedded (memory) store keeps signing keys and cookie secrets (`keys.json`, ' +
        'mode 0600), so that a restart keeps tokens valid. Not used with Redis or `keys.file`.',
    ),
  store: storeSettings
    .prefault({})
    .describe(
      'Where state lives: the embedded in-memory store (the default, bounded to 100 000 ' +
        'entries), or Redis. One of `memory` and `redis`, not both.',
    ),
  login: loginSettings.describe(
    'How users log in: the development login, GitHub, Google, OpenID Connect providers. At ' +
      'least one is required.',
  ),
  access: accessRules
    .prefault({})
    .describe(
      'Who may log in through the upstream providers: a user is admitted when any rule ' +
        'matches. No rule means nobody (the service says so at start-up); development-login ' +
        'users are admitted because they are listed by name.',
    ),
  resources: z
    .array(resourceSchema)
    .default([])
    .describe(
      'The protected MCP servers of this file. At least one when `managedServers.enabled` is ' +
        'false; otherwise administrators can add more at run time.',
    ),
  clients: z.array(preRegisteredClient).default([]).describe('Pre-registered clients.'),
  registration: registrationSettings
    .prefault({})
    .describe('How clients register: Dynamic Client Registration, Client ID Metadata Documents.'),
  tokens: tokenSettings.prefault({}).describe('Lifetimes of what the authorization server issues.'),
  keys: keySettings.prefault({}).describe('The signing keys.'),
  tls: tlsSettings.prefault({}).describe('Outbound TLS.'),
  cors: corsSettings
    .prefault({})
    .describe(
      'Cross-origin requests to the authorization server. Discovery and JWKS answer every ' +
        'origin; registration reflects any origin.',
    ),
  verify: verifySettings.prefault({}).describe('The forwardAuth decision endpoint `/verify`.'),
  metrics: metricsSettings.prefault({}).describe('Prometheus metrics (prom-client).'),
  tracing: tracingSettings
    .prefault({})
    .describe(
      'OpenTelemetry traces of authorize, token and `/verify`, exported over OTLP/HTTP. Off by ' +
        'default: the OpenTelemetry SDK is not even loaded unless this is enabled.',
    ),
  managedServers: managedServerSettings
    .prefault({})
    .describe(
      'MCP servers administrators add, edit and remove at run time (the admin console’s ' +
        'servers page, `mcp-gateway servers …`), kept in the store and applied by every ' +
        'replica without a restart, beside this file’s `resources`.',
    ),
  toolPinning: toolPinningSettings
    .prefault({})
    .describe(
      'Settings of tool definition pinning shared by every MCP server (each server’s own are ' +
        'its `toolDefinitions`): docs/tool-pinning.md.',
    ),
  admins: adminSettings
    .prefault({})
    .describe(
      'Who may use the admin console at `/admin`: a signed-in user with a verified address in ' +
        '`emails` or a group in `groups`. Both empty: nobody.',
    ),
  audit: auditSettings.prefault({}).describe('The hash-chained audit trail.'),
  activity: activitySettings
    .prefault({})
    .describe(
      'The recent `/verify` decisions and security events on the admin console’s Activity ' +
        'page, kept in the store (shared by replicas) and written in batches.',
    ),
  limits: limitSettings
    .prefault({})
    .describe(
      'Abuse limits inside the service (behind Traefik’s): requests per window, per key, ' +
        'shared by every replica through the store. Over a limit: 429 with `Retry-After`.',
    ),
  trustedProxies: z
    .array(z.string())
    .default(['loopback'])
    .describe(
      'Peers whose `X-Forwarded-*` headers are believed (CIDRs, or `loopback`, `linklocal`, ' +
        '`uniquelocal`). From any other peer these headers are removed before anything reads ' +
        'them, and `/verify` answers 400. Set it to Traefik’s network (e.g. `172.16.0.0/12` ' +
        'in Docker).',
    ),
  log: logSettings.prefault({}).describe('Logging: JSON lines on stdout.'),
});

/** The whole file: every key, then the rules that relate keys to one another. */
export const configSchema = configObject.superRefine(checkRelations);

/**
 * Rules across keys. MCP requires HTTPS for every authorization server endpoint (checklist
 * AS-09 in docs/spec-compliance.md) and for resources; plain http is accepted only on
 * loopback, for development.
 */
function checkRelations(config: z.output<typeof configObject>, ctx: z.RefinementCtx): void {
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
}

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
