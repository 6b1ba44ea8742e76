/**
 * The composition root: builds every part of the auth service from one validated config and
 * wires them together. Tests use it to run the real service in-process; `main.ts` uses it to
 * run it as a process.
 *
 * In order: the shared parts (built in src/app/services.ts, as the CLI builds them), the
 * authorization server, the limits, the `/verify` decision point, the Express application
 * (each OAuth endpoint's chain declared in src/oauth/endpoints.ts, the pages, the one error
 * handler of src/app/error-handler.ts, oidc-provider last), and the HTTP servers
 * (src/app/server.ts).
 */
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import type Provider from 'oidc-provider';
import type { GatewayConfig } from './config/schema.js';
import { BackendTokenSigner } from './forward-auth/backend-token.js';
import { DecisionPoint } from './forward-auth/decision-point.js';
import { SessionBindings } from './forward-auth/session-binding.js';
import { protectedResourceMetadataRouter } from './forward-auth/protected-resource-metadata.js';
import { TokenVerifier } from './forward-auth/token-verifier.js';
import { healthRouter } from './http/health.js';
import { requestContext } from './http/request-context.js';
import { compileTrustedProxies, stripUntrustedForwardedHeaders } from './http/trusted-proxies.js';
import { AccountStore } from './login/accounts.js';
import { CsrfTokens } from './web/csrf.js';
import { createInteractionRouter } from './login/interactions.js';
import { createLoginProviders } from './login/providers/index.js';
import type { LoginProvider } from './login/providers/provider.js';
import { Reauthorization } from './login/reauthorization.js';
import { SessionSealer } from './login/session-sealer.js';
import type { Logger } from './logging/logger.js';
import { logOAuthEvents } from './events/oauth-events.js';
import { loggedSecurityEvents, type SecurityEventEmitter } from './events/security-events.js';
import { isLoopbackHostname } from './net/loopback.js';
import { createGuardedFetch, createTrustedFetch } from './net/outbound-fetch.js';
import { ConsentMemory } from './oauth/consent-memory.js';
import {
  defaultAuthorizeScope,
  registrationBodyLimit,
  registrationCap,
} from './oauth/endpoint-guards.js';
import { mountPipelines, oauthPipelines } from './oauth/endpoints.js';
import { MAX_REGISTRATION_BYTES } from './oauth/client-metadata-limits.js';
import {
  publicJwk,
  readKeyMaterial,
  type KeyLocation,
  type KeyMaterial,
} from './keys/key-material.js';
import { createProvider } from './oauth/provider.js';
import { ClientHostApprovals } from './clients/host-approvals.js';
import { ACCOUNT_CLIENT_ID, SESSION_TTL } from './oauth/constants.js';
import { ResourceRegistry } from './resources/registry.js';
import type { ToolPinning } from './tool-pinning/pinning.js';
import { createToolPinning } from './tool-pinning/setup.js';
import { hasAccessRules } from './policy/access.js';
import { RedisStore } from './store/redis-store.js';
import { evictingRedisRefusal } from './store/redis-eviction.js';
import { reportStoreFull } from './store/store-full-report.js';
import type { Store } from './store/store.js';
import { instrumentStore } from './observability/instrumented-store.js';
import type { AuditLog } from './audit/audit-log.js';
import {
  createAuditLog,
  createDisabledClients,
  createOAuthAdapter,
  createRevocationList,
  createStore,
  keyLocation,
  loadKeys,
} from './app/services.js';
import type { DisabledClients } from './clients/disabled-clients.js';
import type { RevocationList } from './forward-auth/revocations.js';
import { errorHandler } from './app/error-handler.js';
import { serve } from './app/server.js';
import { ActivityFeed } from './activity/activity-feed.js';
import { auditDecisions } from './audit/decision-audit.js';
import { auditOAuthEvents } from './audit/oauth-audit.js';
import { ClientQuota, reserveFrom } from './limits/client-quota.js';
import { createRateLimits, type RateLimits } from './limits/rate-limits.js';
import { GatewayMetrics } from './observability/metrics.js';
import { countOAuthEvents } from './observability/oauth-metrics.js';
import { startTracing, type Tracing } from './observability/tracing.js';
import { CimdClientLog, ClientDirectory } from './clients/directory.js';
import { GrantDirectory } from './account/grants.js';
import { createAccountRouter } from './account/router.js';
import { createAdminRouter } from './admin/router.js';
import { createDiagnosticsRouter } from './admin/diagnostics-routes.js';
import { trackGrantUse } from './account/usage.js';
import type { ServerCatalog } from './servers/catalog.js';
import { createServerCatalog } from './servers/setup.js';

export interface Gateway {
  app: Express;
  provider: Provider;
  store: Store;
  /** Absent with `metrics.enabled: false`. */
  metrics: GatewayMetrics | undefined;
  /** Absent with `audit.enabled: false`. */
  audit: AuditLog | undefined;
  /** The `/metrics` listener's address, when `metrics.listen` is set (after `listen()`). */
  metricsAddress(): AddressInfo | undefined;
  /** Starts listening on `config.listen`; resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  logger: Logger;
  /** Use this store instead of building one from the config (tests). */
  store?: Store;
}

/** A configuration that must not run, found before anything listens. */
export class StartupRefused extends Error {}

/** Builds the service from `config`, in the order above; nothing listens until `listen()`. */
export async function createGateway(
  config: GatewayConfig,
  options: GatewayOptions,
): Promise<Gateway> {
  const { logger } = options;
  checkStartupPolicy(config, logger);
  // Every module that raises security events is given this emitter; the log is its first sink.
  const events = loggedSecurityEvents(logger);

  const parts = await buildSharedParts(config, options, events);
  const oauth = buildAuthorizationServer(parts);
  const limits = createRateLimits({ config, store: parts.rawStore, logger, events });
  const clientQuota = new ClientQuota({ config, store: parts.store, logger, events });
  const trust = compileTrustedProxies(config.trustedProxies);
  const decisionPoint = buildDecisionPoint(parts, trust, limits);
  const app = buildApp(parts, oauth, trust, limits, clientQuota);
  const { store, metrics, audit } = parts;
  return {
    app,
    provider: oauth.provider,
    store,
    metrics,
    audit,
    ...serve({
      config,
      logger,
      metrics,
      app,
      verify: decisionPoint,
      stops: shutdownOrder(parts, !options.store),
    }),
  };
}

/** The parts every surface shares, built once from the configuration. */
interface SharedParts {
  config: GatewayConfig;
  logger: Logger;
  events: SecurityEventEmitter;
  metrics: GatewayMetrics | undefined;
  tracing: Tracing | undefined;
  /** The store as built: the limits' counters use its own Redis connection. */
  rawStore: Store;
  /** The store every other part uses: full-store reports, metrics. */
  store: Store;
  activity: ActivityFeed | undefined;
  keysAt: KeyLocation;
  keys: KeyMaterial;
  audit: AuditLog | undefined;
  revocations: RevocationList;
  disabledClients: DisabledClients;
  resources: ResourceRegistry;
  catalog: ServerCatalog | undefined;
  /** The JWTs MCP servers receive (`upstreamAuthorization: jwt`), and tool pinning's own. */
  backendSigner: BackendTokenSigner;
  pins: ToolPinning;
}

/**
 * Observability, the store (refused if Redis would evict), the keys, the audit log, the lists
 * `/verify` reads (revoked grants, disabled clients) and the protected resources.
 */
async function buildSharedParts(
  config: GatewayConfig,
  options: GatewayOptions,
  events: SecurityEventEmitter,
): Promise<SharedParts> {
  const { logger } = options;
  const metrics = config.metrics.enabled ? new GatewayMetrics() : undefined;
  const tracing = await startTracing(config.tracing, logger);
  const rawStore = options.store ?? createStore(config, logger);
  const evicting =
    rawStore instanceof RedisStore ? await evictingRedisRefusal(rawStore, logger) : undefined;
  if (evicting !== undefined) {
    if (!options.store) await rawStore.close();
    throw new StartupRefused(evicting);
  }
  // A full store refuses writes; said once in the log, not once per refused request.
  const reported = reportStoreFull(rawStore, logger);
  const store = metrics ? instrumentStore(reported, metrics) : reported;
  // Created before anything can raise a security event: it is a sink of `events`.
  const activity = config.activity.enabled
    ? new ActivityFeed({ store, maxEntries: config.activity.maxEntries, events, logger })
    : undefined;
  const keysAt = keyLocation(config, store);
  const keys = await loadKeys(config, keysAt);
  const audit = createAuditLog(config, store, logger, keys);
  if (audit && metrics) metrics.readAuditDropped(() => audit.dropped);

  const revocations = createRevocationList(config, store, logger);
  metrics?.readRevocationsAge(() => revocations.ageSeconds());
  await revocations.start();
  const disabledClients = createDisabledClients(config.verify, store, logger);
  await disabledClients.start();

  const resources = new ResourceRegistry(config.resources);
  // Servers added at run time, applied before the authorization server is built (its scope
  // list starts from them) and followed from then on.
  const catalog = config.managedServers.enabled
    ? await createServerCatalog({ config, store, registry: resources, audit, logger })
    : undefined;
  await catalog?.start();
  const backendSigner = new BackendTokenSigner(
    config.issuer,
    keys.keys[0]!.jwk,
    config.verify.backendTokenTtl,
  );
  const pins = createToolPinning({
    settings: config.toolPinning,
    store,
    resources,
    signer: backendSigner,
    events,
    logger,
    audit,
    env: process.env,
  });
  metrics?.readToolPins(() => pins.gauges());
  await pins.start();
  return {
    config,
    logger,
    events,
    metrics,
    tracing,
    rawStore,
    store,
    activity,
    keysAt,
    keys,
    audit,
    revocations,
    disabledClients,
    resources,
    catalog,
    backendSigner,
    pins,
  };
}

/** The authorization server and what its login and account pages share with it. */
interface AuthorizationServer {
  provider: Provider;
  accounts: AccountStore;
  upstreams: LoginProvider[];
  reauthorization: Reauthorization;
  consents: ConsentMemory;
  grants: GrantDirectory;
}

/**
 * oidc-provider configured for MCP (src/oauth/provider.ts), with what listens to its events:
 * the log, the metrics, the audit and the grants' last use.
 */
function buildAuthorizationServer(parts: SharedParts): AuthorizationServer {
  const { config, store, keys, resources, logger, metrics, audit, events } = parts;
  const { revocations, disabledClients } = parts;
  const accounts = new AccountStore(store, config.tokens.refreshTokenTtl);
  const upstreams = createLoginProviders(config, createTrustedFetch(config.tls.caFiles));
  const reauthorization = new Reauthorization({
    config,
    accounts,
    providers: upstreams,
    sealer: new SessionSealer(keys.cookieSecrets),
  });
  const consents = new ConsentMemory(store, config.tokens.consentTtl);
  const provider = createProvider({
    config,
    keys,
    resources,
    accounts,
    reauthorization,
    consents,
    guardedFetch: createGuardedFetch({
      caFiles: config.tls.caFiles,
      allowHosts: config.registration.cimd.allowHosts,
    }),
    logger,
    events,
    adapter: createOAuthAdapter(config.registration.dcr, store, (grantId) =>
      revocations.revoke(grantId),
    ),
    metrics,
    disabledClients,
    hostApprovals: new ClientHostApprovals(store, config.registration.cimd.onlyHosts),
  });
  logOAuthEvents(provider, { events, logger });
  if (metrics) countOAuthEvents(provider, metrics);
  if (audit) auditOAuthEvents(provider, audit);
  const grants = new GrantDirectory(store);
  trackGrantUse(provider, {
    grants,
    cimdClients: new CimdClientLog(store, config.registration.dcr.clientTtl),
    grantTtl: config.tokens.refreshTokenTtl,
    logger,
  });
  return { provider, accounts, upstreams, reauthorization, consents, grants };
}

/** The `/verify` decision point and what it is told of each decision. */
function buildDecisionPoint(
  parts: SharedParts,
  trust: ReturnType<typeof compileTrustedProxies>,
  limits: RateLimits,
): DecisionPoint {
  const { config, resources, keys, keysAt, revocations, disabledClients, store } = parts;
  const { metrics, tracing, audit, activity, events, logger } = parts;
  return new DecisionPoint({
    config,
    resources,
    trust,
    verifier: new TokenVerifier({
      issuer: config.issuer,
      publicKeys: keys.keys.map((key) => publicJwk(key.jwk)),
      clockSkew: config.verify.clockSkew,
      cacheSize: config.verify.cacheSize,
      revocations,
      disabledClients,
      // Another replica may have rotated the keys since this one started.
      ...(keysAt.kind === 'store'
        ? {
            reloadKeys: async () =>
              ((await readKeyMaterial(keysAt)) ?? keys).keys.map((key) => publicJwk(key.jwk)),
          }
        : {}),
    }),
    backendSigner: parts.backendSigner,
    events,
    logger,
    observers: [
      ...(metrics ? [metrics] : []),
      ...(tracing ? [tracing.decisions] : []),
      ...(audit ? [auditDecisions(audit)] : []),
      ...(activity ? [activity] : []),
    ],
    revocations,
    sessions: config.verify.sessionBinding.enabled
      ? new SessionBindings({
          store,
          ttlSeconds: config.verify.sessionBinding.ttl,
          cacheSize: config.verify.cacheSize,
          maxPerOwner: config.verify.sessionBinding.maxPerUser,
        })
      : undefined,
    failureLimiter: limits.verifyFailures,
    pins: parts.pins,
  });
}

/**
 * The Express application, in the order a request meets it: forwarded headers from trusted
 * proxies only, the request context, health, protected resource metadata, each OAuth
 * endpoint's chain (src/oauth/endpoints.ts), the pages (login, account, diagnostics, admin),
 * the one error handler, and oidc-provider last.
 */
function buildApp(
  parts: SharedParts,
  oauth: AuthorizationServer,
  trust: ReturnType<typeof compileTrustedProxies>,
  limits: RateLimits,
  clientQuota: ClientQuota,
): Express {
  const { config, store, resources, tracing, events, logger } = parts;
  const { provider } = oauth;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trust);
  app.use(stripUntrustedForwardedHeaders(trust));
  app.use(requestContext(logger));
  app.use(healthRouter(store));
  app.use(protectedResourceMetadataRouter(config, resources));
  // Each OAuth endpoint's chain (tracing, limits, guards), declared in oauth/endpoints.ts.
  mountPipelines(
    app,
    oauthPipelines({
      span: tracing?.routeSpans,
      limits,
      clientQuota,
      guards: {
        defaultScope: defaultAuthorizeScope(resources),
        registrationBodyLimit: registrationBodyLimit(MAX_REGISTRATION_BYTES),
        registrationCap: registrationCap(store, config.registration.dcr.maxClients, events, {
          pruneFrom: reserveFrom(config.registration.dcr.maxClients),
        }),
      },
    }),
  );
  limits.attach(provider);
  clientQuota.attach(provider);
  mountPages(app, parts, oauth);
  app.use(errorHandler(logger, events));
  app.use(provider.callback());
  return app;
}

/** The browser pages: the login steps, connected apps, diagnostics and the admin console. */
function mountPages(app: Express, parts: SharedParts, oauth: AuthorizationServer): void {
  const { config, store, resources, metrics, audit, activity, events, logger } = parts;
  const { disabledClients, catalog } = parts;
  const { provider, accounts, consents, upstreams, reauthorization, grants } = oauth;
  app.use(
    createInteractionRouter({
      config,
      provider,
      store,
      accounts,
      consents,
      csrf: new CsrfTokens(store, config.tokens.loginTtl),
      resources,
      devUsers: config.login.dev?.users,
      upstreams,
      reauthorization,
      metrics,
      events,
      logger,
    }),
  );
  app.use(
    createAccountRouter({
      config,
      provider,
      accounts,
      consents,
      // One token per browser session, valid as long as the session.
      csrf: new CsrfTokens(store, SESSION_TTL),
      resources,
      grants,
      clients: new ClientDirectory(store, config),
      audit,
      events,
      logger,
    }),
  );
  app.use(
    createDiagnosticsRouter({
      config,
      provider,
      accounts,
      csrf: new CsrfTokens(store, SESSION_TTL),
      resources,
      events,
      logger,
    }),
  );
  app.use(
    createAdminRouter({
      config,
      provider,
      store,
      accounts,
      consents,
      csrf: new CsrfTokens(store, SESSION_TTL),
      audit,
      activity,
      events,
      logger,
      disabledClients,
      resources,
      catalog,
      pins: parts.pins,
    }),
  );
}

/** What the service stops once no request can arrive any more, in this order. */
function shutdownOrder(
  parts: SharedParts,
  ownsStore: boolean,
): (() => Promise<void> | undefined)[] {
  return [
    () => parts.revocations.stop(),
    () => parts.disabledClients.stop(),
    () => parts.catalog?.stop(),
    () => parts.pins.stop(),
    () => parts.tracing?.shutdown(),
    () => parts.audit?.close(),
    () => parts.activity?.close(),
    () => (ownsStore ? parts.store.close() : undefined),
  ];
}

/**
 * Refuses configurations that would be unsafe to run and says loudly what is merely risky.
 */
function checkStartupPolicy(config: GatewayConfig, logger: Logger): void {
  if (config.clients.some((client) => client.client_id === ACCOUNT_CLIENT_ID)) {
    throw new StartupRefused(
      `clients: the client id ${ACCOUNT_CLIENT_ID} is the gateway's own (the /account page); choose another`,
    );
  }
  const dev = config.login.dev;
  if (dev) {
    const loopback = isLoopbackHostname(config.listen.host);
    if (!loopback && !dev.allowNonLoopback) {
      throw new StartupRefused(
        `login.dev is enabled but the service listens on ${config.listen.host}: the development login has no password and is allowed only on loopback (or set login.dev.allowNonLoopback: true, never in production)`,
      );
    }
    if (!loopback) {
      logger.warn(
        '!!! DEVELOPMENT LOGIN EXPOSED: login.dev.allowNonLoopback is true and the service listens on a non-loopback address; anyone who reaches it can log in as the dev users without a password !!!',
        { event: 'startup_warning' },
      );
    }
  }
  const upstream =
    config.login.oidc.length > 0 ||
    config.login.github !== undefined ||
    config.login.google !== undefined;
  if (!dev && !upstream) {
    throw new StartupRefused(
      'no login provider is configured: add login.github, login.google, login.oidc or login.dev',
    );
  }
  if (upstream && !hasAccessRules(config.access)) {
    logger.warn(
      'access has no rules: nobody can log in through the upstream providers (only dev users)',
      {
        event: 'startup_warning',
      },
    );
  }
}
