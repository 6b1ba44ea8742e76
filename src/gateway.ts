/**
 * The composition root: builds every part of the auth service from one validated config and
 * wires them together. Tests use it to run the real service in-process; `main.ts` uses it to
 * run it as a process.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type Express } from 'express';
import type Provider from 'oidc-provider';
import { errors as oidcErrors } from 'oidc-provider';
import type { GatewayConfig } from './config/schema.js';
import { BackendTokenSigner } from './forward-auth/backend-token.js';
import { DecisionPoint, VERIFY_PATH } from './forward-auth/decision-point.js';
import { SessionBindings } from './forward-auth/session-binding.js';
import { protectedResourceMetadataRouter } from './forward-auth/protected-resource-metadata.js';
import { REVOCATION_LIST_KEY, RevocationList } from './forward-auth/revocations.js';
import { DISABLED_CLIENTS_KEY, DisabledClients } from './forward-auth/disabled-clients.js';
import { TokenVerifier } from './forward-auth/token-verifier.js';
import { healthRouter } from './http/health.js';
import { requestContext } from './http/request-context.js';
import { compileTrustedProxies, stripUntrustedForwardedHeaders } from './http/trusted-proxies.js';
import { AccountStore } from './login/accounts.js';
import { CsrfTokens } from './login/csrf.js';
import {
  createInteractionRouter,
  InteractionMismatch,
  sendPage,
  sendSignInExpired,
} from './login/interactions.js';
import { createLoginProviders } from './login/providers/index.js';
import { Reauthorization } from './login/reauthorization.js';
import { SessionSealer } from './login/session-sealer.js';
import { renderErrorPage } from './login/views/error-page.js';
import type { Logger } from './logging/logger.js';
import { logOAuthEvents } from './logging/oauth-events.js';
import { securityEvent } from './logging/security-events.js';
import { isLoopbackHostname } from './net/loopback.js';
import { createGuardedFetch, createTrustedFetch } from './net/outbound-fetch.js';
import { ConsentMemory } from './oauth/consent-memory.js';
import {
  defaultAuthorizeScope,
  registrationBodyLimit,
  registrationCap,
  registrationCors,
} from './oauth/endpoint-guards.js';
import { MAX_REGISTRATION_BYTES } from './oauth/client-metadata-limits.js';
import { loadKeyMaterial, publicJwk, readKeyMaterial, type KeyLocation } from './oauth/keys.js';
import { ACCOUNT_CLIENT_ID, createProvider, ROUTES, SESSION_TTL } from './oauth/provider.js';
import { ResourceRegistry } from './oauth/resources.js';
import { hasAccessRules } from './policy/access.js';
import { MemoryStore } from './store/memory-store.js';
import { RedisStore } from './store/redis-store.js';
import { evictingRedisRefusal } from './store/redis-eviction.js';
import { reportStoreFull } from './store/store-full-report.js';
import type { Store } from './store/store.js';
import { instrumentStore } from './observability/instrumented-store.js';
import { AuditLog } from './audit/audit-log.js';
import { gatewayCheckpointKeys } from './audit/checkpoint.js';
import { ActivityFeed } from './activity/activity-feed.js';
import { auditDecisions } from './audit/decision-audit.js';
import { auditOAuthEvents } from './audit/oauth-audit.js';
import { ClientQuota, reserveFrom } from './limits/client-quota.js';
import { createRateLimits, installLimits } from './limits/rate-limits.js';
import {
  METRICS_PATH,
  metricsHandler,
  startMetricsListener,
} from './observability/metrics-endpoint.js';
import { GatewayMetrics } from './observability/metrics.js';
import { countOAuthEvents } from './observability/oauth-metrics.js';
import { startTracing } from './observability/tracing.js';
import { CimdClientLog, ClientDirectory } from './account/clients.js';
import { GrantDirectory } from './account/grants.js';
import { createAccountRouter } from './account/router.js';
import { createAdminRouter } from './admin/router.js';
import { createDiagnosticsRouter } from './admin/diagnostics-routes.js';
import { trackGrantUse } from './account/usage.js';
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

export async function createGateway(
  config: GatewayConfig,
  options: GatewayOptions,
): Promise<Gateway> {
  const { logger } = options;
  checkStartupPolicy(config, logger);

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
  // Created before anything can raise a security event: it listens on this logger.
  const activity = config.activity.enabled
    ? new ActivityFeed({ store, maxEntries: config.activity.maxEntries, logger })
    : undefined;
  const keyLocation: KeyLocation = config.keys.file
    ? { kind: 'file', file: config.keys.file }
    : config.store.redis
      ? { kind: 'store', store }
      : { kind: 'dataDir', dir: config.dataDir };
  const keyPolicy = {
    rotateAfter: config.keys.rotateAfter,
    maxTokenLifetime:
      Math.max(config.tokens.accessTokenTtl, config.tokens.authorizationCodeTtl) + 300,
  };
  const keys = await loadKeyMaterial(keyLocation, keyPolicy);
  const audit = config.audit.enabled
    ? new AuditLog({
        store,
        maxRecords: config.audit.maxRecords,
        file: config.audit.file,
        // The mirror file's checkpoints are signed with the token key (`<issuer>/jwks`).
        checkpointKeys: gatewayCheckpointKeys({
          issuer: config.issuer,
          signingKey: keys.keys[0]!.jwk,
          publicKeys: keys.keys.map((key) => publicJwk(key.jwk)),
        }),
        logger,
      })
    : undefined;
  if (audit && metrics) metrics.readAuditDropped(() => audit.dropped);

  const revocations = new RevocationList(
    store,
    config.tokens.accessTokenTtl + config.verify.clockSkew,
    config.verify.revocationPollInterval,
    logger,
    config.verify.storeOutage === 'serve-cached' ? config.verify.storeOutageGrace : 0,
  );
  metrics?.readRevocationsAge(() => revocations.ageSeconds());
  await revocations.start();
  const disabledClients = new DisabledClients(store, config.verify.revocationPollInterval, logger);
  await disabledClients.start();

  const resources = new ResourceRegistry(config.resources);
  // Servers added at run time, applied before the authorization server is built (its scope
  // list starts from them) and followed from then on.
  const catalog = config.managedServers.enabled
    ? await createServerCatalog({ config, store, registry: resources, audit, logger })
    : undefined;
  await catalog?.start();
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
    store,
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
    onGrantRevoked: (grantId) => revocations.revoke(grantId),
    metrics,
    disabledClients,
  });
  logOAuthEvents(provider, logger);
  if (metrics) countOAuthEvents(provider, metrics);
  if (audit) auditOAuthEvents(provider, audit);
  const grants = new GrantDirectory(store);
  trackGrantUse(provider, {
    grants,
    cimdClients: new CimdClientLog(store, config.registration.dcr.clientTtl),
    grantTtl: config.tokens.refreshTokenTtl,
    logger,
  });

  const limits = createRateLimits({ config, store: rawStore, logger });
  const clientQuota = new ClientQuota({ config, store, logger });

  const trust = compileTrustedProxies(config.trustedProxies);
  const decisionPoint = new DecisionPoint({
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
      ...(keyLocation.kind === 'store'
        ? {
            reloadKeys: async () =>
              ((await readKeyMaterial(keyLocation)) ?? keys).keys.map((key) => publicJwk(key.jwk)),
          }
        : {}),
    }),
    backendSigner: new BackendTokenSigner(
      config.issuer,
      keys.keys[0]!.jwk,
      config.verify.backendTokenTtl,
    ),
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
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trust);
  app.use(stripUntrustedForwardedHeaders(trust));
  app.use(requestContext(logger));
  app.use(healthRouter(store));
  if (tracing) {
    app.use(ROUTES.authorization, tracing.routeSpans('oauth.authorize'));
    app.use(ROUTES.token, tracing.routeSpans('oauth.token'));
    app.use(ROUTES.registration, tracing.routeSpans('oauth.register'));
  }
  app.use(protectedResourceMetadataRouter(config, resources));
  installLimits(app, provider, limits, clientQuota);
  app.get(ROUTES.authorization, defaultAuthorizeScope(resources));
  app.options(ROUTES.registration, registrationCors);
  app.post(
    ROUTES.registration,
    registrationCors,
    registrationBodyLimit(MAX_REGISTRATION_BYTES),
    registrationCap(store, config.registration.dcr.maxClients, logger, {
      pruneFrom: reserveFrom(config.registration.dcr.maxClients),
    }),
  );
  app.get(`${ROUTES.registration}/:clientId`, registrationCors);
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
      logger,
      disabledClients,
      resources,
      catalog,
    }),
  );
  app.use(interactionErrorHandler(logger));
  app.use(provider.callback());

  const metricsOnMain =
    metrics && !config.metrics.listen
      ? metricsHandler(metrics, compileTrustedProxies(config.metrics.allowFrom), logger)
      : undefined;
  let server: Server | undefined;
  let metricsServer: { server: Server; address: AddressInfo } | undefined;
  return {
    app,
    provider,
    store,
    metrics,
    audit,
    metricsAddress: () => metricsServer?.address,
    listen: async () => {
      if (metrics && config.metrics.listen) {
        metricsServer = await startMetricsListener(metrics, config.metrics.listen, logger);
      }
      return new Promise((resolve, reject) => {
        // `/verify` is answered before Express sees the request (see decision-point.ts).
        server = createServer((req, res) => {
          if (isVerifyRequest(req.url)) decisionPoint.handle(req, res);
          else if (metricsOnMain && isPath(req.url, METRICS_PATH)) metricsOnMain(req, res);
          else app(req, res);
        });
        // Slow or idle clients must not hold sockets forever.
        server.headersTimeout = 20_000;
        server.requestTimeout = 30_000;
        server.keepAliveTimeout = 5_000;
        server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () =>
          resolve(server!.address() as AddressInfo),
        );
      });
    },
    close: async () => {
      if (metricsServer) {
        await new Promise<void>((resolve) => {
          metricsServer!.server.close(() => resolve());
          metricsServer!.server.closeAllConnections();
        });
      }
      if (server) {
        await new Promise<void>((resolve) => {
          server!.close(() => resolve());
          server!.closeAllConnections();
        });
      }
      await revocations.stop();
      await disabledClients.stop();
      await catalog?.stop();
      await tracing?.shutdown();
      await audit?.close();
      await activity?.close();
      if (!options.store) await store.close();
    },
  };
}

/** `path` itself, with or without a query (Caddy keeps the original request's query on it). */
function isPath(url: string | undefined, path: string): boolean {
  return url === path || (url?.startsWith(`${path}?`) ?? false);
}

function isVerifyRequest(url: string | undefined): boolean {
  return isPath(url, VERIFY_PATH);
}

/** The store the configuration names (also used by the CLI to reach a running service's). */
export function createStore(config: GatewayConfig, logger: Logger): Store {
  if (config.store.redis) {
    return new RedisStore({
      url: config.store.redis.url,
      keyPrefix: config.store.redis.keyPrefix,
      onError: (error: Error) => logger.error('redis error', { error: error.message }),
    });
  }
  return new MemoryStore({
    maxEntries: config.store.memory?.maxEntries ?? 100_000,
    // What denies access can always be written, however full other traffic keeps the store.
    reservedKeys: [DISABLED_CLIENTS_KEY, REVOCATION_LIST_KEY],
  });
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

/** Maps failures inside the login/consent pages to a page the user can act on. */
/** The routes a person's browser visits (pages), as opposed to the JSON API. */
function isBrowserRoute(path: string): boolean {
  return /^\/(interaction|login|authorize|account|admin)(\/|$)/.test(path);
}

function interactionErrorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    if (res.headersSent) return next(error);
    if (error instanceof oidcErrors.SessionNotFound || error instanceof InteractionMismatch) {
      securityEvent(logger, 'oauth_error', { ip: req.ip, reason: (error as Error).message });
      return sendSignInExpired(
        res,
        'This sign-in session has expired or belongs to another browser. Start again from your application.',
      );
    }
    // Client errors raised by Express itself (body-parser's 413, malformed bodies, a path
    // whose percent-encoding cannot be decoded): a page for the browser routes, JSON for the
    // API ones (registration, metadata, token…).
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      if (!isBrowserRoute(req.path)) {
        return res
          .status(status)
          .set('Cache-Control', 'no-store')
          .json({ error: 'invalid_request', error_description: 'malformed request' });
      }
      return sendPage(
        res,
        status,
        renderErrorPage({
          title: 'Request refused',
          error: 'invalid_request',
          description: (error as Error).message,
        }),
      );
    }
    logger.error('request failed', { error });
    return sendPage(
      res,
      500,
      renderErrorPage({ title: 'Something went wrong', error: 'server_error' }),
    );
  };
}
