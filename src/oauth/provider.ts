/**
 * The OAuth 2.1 authorization server: oidc-provider configured for MCP.
 *
 * Every option below that differs from oidc-provider's default says why (docs/security.md
 * has the decisions). What oidc-provider does on its
 * own and we rely on: PKCE verification (S256 only), authorization code single use and replay
 * revocation, refresh token rotation and reuse detection, RFC 9207 `iss` in authorization
 * responses, RFC 7591/7592 registration, RFC 7009 revocation, RFC 7662 introspection, JWT
 * access tokens (RFC 9068), and CIMD fetching with its own document checks.
 */
import { randomBytes } from 'node:crypto';
import Provider, {
  errors,
  type ClientMetadata,
  type Configuration,
  type KoaContextWithOIDC,
  type ResourceServer,
} from 'oidc-provider';
import type { GatewayConfig } from '../config/schema.js';
import type { FetchFunction } from '../net/outbound-fetch.js';
import type { SecurityEvents } from '../events/security-events.js';
import type { Logger } from '../logging/logger.js';
import type { AccountStore, Identity } from '../login/accounts.js';
import type { Reauthorization } from '../login/reauthorization.js';
import { evaluateResourceAccess } from '../policy/access.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { ConsentMemory } from './consent-memory.js';
import { ACCOUNT_CLIENT_ID, accountCallbackUrl, ROUTES, SESSION_TTL } from './constants.js';
import { SIGNING_ALG, type KeyMaterial } from '../keys/key-material.js';
import { allowLoopbackPortVariation, redirectUriProblems } from './redirect-uris.js';
import { refreshTokensImplyOfflineAccess } from './refresh-scope.js';
import { grantableScopes, type ResourceRegistry } from '../resources/registry.js';
import { hasQuery } from '../resources/resource-url.js';
import { consentPolicy } from './native-consent.js';
import { cacheableMetadata, urlsFromIssuer } from './issuer-urls.js';
import type { ClientHostApprovals } from '../clients/host-approvals.js';
import { refuseDisabledClients } from './disabled-client-guard.js';
import {
  checkClientMetadataLimit,
  LIMITED_CLIENT_METADATA,
  MAX_CIMD_DOCUMENT_BYTES,
  MAX_JWKS_URI_BYTES,
} from './client-metadata-limits.js';
import { renderErrorPage } from '../web/error-page.js';
import { clientDocumentHelp } from './client-document-help.js';

export interface ProviderDependencies {
  /** The sections the authorization server reads; the resources come as `resources`. */
  config: Pick<GatewayConfig, 'issuer' | 'clients' | 'registration' | 'tokens' | 'cors'>;
  keys: KeyMaterial;
  resources: ResourceRegistry;
  accounts: AccountStore;
  /** Checks the user again at every refresh (src/login/reauthorization.ts). */
  reauthorization: Reauthorization;
  consents: ConsentMemory;
  /** SSRF-guarded fetch for Client ID Metadata Documents. */
  guardedFetch: FetchFunction;
  logger: Logger;
  /** Where `access_denied` and `access_withdrawn` go (the log, the activity feed). */
  events: SecurityEvents;
  /**
   * oidc-provider's storage on the gateway store (src/app/services.ts `createOAuthAdapter`),
   * which tells the revocation list of every revoked grant.
   */
  adapter: Configuration['adapter'];
  metrics?: GatewayMetrics | undefined;
  /** Clients an administrator disabled: refused at every endpoint (disabled-client-guard.ts). */
  disabledClients?: { isDisabledInStore(clientId: string): Promise<boolean> };
  /** Administrator approvals of CIMD hosts (`registration.cimd.requireApproval`). */
  hostApprovals: Pick<ClientHostApprovals, 'check'>;
}

function isRefreshGrant(ctx: KoaContextWithOIDC): boolean {
  return ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'refresh_token';
}

/**
 * The MCP servers a refresh asks a token for: its `resource` parameter, or the resource the
 * refresh token was issued for. Checked before oidc-provider rotates the refresh token, so
 * that a refusal revokes the grant instead of burning the token.
 */
function refreshedResources(ctx: KoaContextWithOIDC, token: unknown): string[] {
  const requested = ctx.oidc.params?.resource ?? (token as { resource?: unknown })?.resource;
  if (typeof requested === 'string') return [requested];
  return Array.isArray(requested) ? requested.map(String) : [];
}

/**
 * 503 `temporarily_unavailable`: nothing was revoked, the client may retry the refresh.
 * oidc-provider answers an error with its `status`; a custom error's is 400, so this one sets
 * its own.
 */
class UpstreamUnavailableError extends errors.CustomOIDCProviderError {
  constructor() {
    super(
      'temporarily_unavailable',
      'the identity provider cannot be reached to check the user; try again later',
    );
    this.status = 503;
    this.statusCode = 503;
  }
}

/** Reads the identity of an account, during an oidc-provider request. */
type IdentityOf = (ctx: KoaContextWithOIDC, accountId: string) => Promise<Identity | undefined>;

/**
 * The identity of `accountId`: the one `findAccount` already read for this request when it is
 * that account, else read from the store.
 */
function identityReader(accounts: AccountStore): IdentityOf {
  return async (ctx, accountId) => {
    const account = ctx.oidc?.account as { accountId?: string; identity?: Identity } | undefined;
    if (account?.accountId === accountId && account.identity) return account.identity;
    return accounts.find(accountId);
  };
}

/**
 * oidc-provider configured for MCP. The short options are set here, each with why; the ones
 * that are policies (features, client metadata, account lookup, token claims, the error page,
 * the patches on the built provider) are the named parts below.
 */
export function createProvider(deps: ProviderDependencies): Provider {
  const { config, resources, consents } = deps;
  const identityOf = identityReader(deps.accounts);
  // The scopes known at start. oidc-provider copies this list; a client's registered `scope`
  // is checked against the copy (and widened to it, see clientMetadataPolicy), and a scope
  // missing from it is not checked against a client's registration at all. So the scopes of
  // MCP servers added at run time (src/servers/) work without being listed: they are granted
  // per resource by getResourceServerInfo; the discovery document lists them from the live
  // registry (see `liveDiscoveryScopes`).
  const knownScopes = [...OIDC_SCOPES, ...resources.allScopes()];

  const configuration: Configuration = {
    adapter: deps.adapter,
    clients: [...config.clients.map(toClientMetadata), accountClientMetadata(config.issuer)],
    jwks: { keys: deps.keys.keys.map((key) => key.jwk) } as Configuration['jwks'],
    cookies: cookieSettings(deps.keys.cookieSecrets, config.issuer.startsWith('https://')),
    routes: ROUTES,
    responseTypes: ['code'],
    // PKCE for every client, confidential ones included (MCP: "PKCE is REQUIRED for all
    // clients"); oidc-provider's default requires it for public clients only.
    pkce: { required: () => true },
    // Exact redirect_uri on every request (OAuth 2.1 §4.1.1).
    allowOmittingSingleRegisteredRedirectUri: false,
    // Every scope the server knows. Resource scopes are granted per resource (see
    // getResourceServerInfo); they are listed here too because clients (the MCP SDK among
    // them) register with `scope`, which oidc-provider checks against this list.
    scopes: knownScopes,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: SIGNING_ALG,
    },
    features: features(deps, identityOf),
    fetch: deps.guardedFetch as Configuration['fetch'],
    // What oidc-provider fetches from client-chosen URLs is bounded (its default for a
    // `jwks_uri` is no bound); `sector_identifier_uri` is refused at registration instead.
    fetchResponseBodyLimits: {
      'client_id metadata document': MAX_CIMD_DOCUMENT_BYTES,
      jwks_uri: MAX_JWKS_URI_BYTES,
      sector_identifier_uri: MAX_CIMD_DOCUMENT_BYTES,
    },
    extraClientMetadata: clientMetadataPolicy(config.clients, knownScopes),
    // MCP clients do not ask for `offline_access` (2026-07-28: servers SHOULD NOT advertise
    // it); every client allowed the refresh_token grant gets a refresh token.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Rotate on every use, for every client (RFC 9700 §4.14.2; MCP requires it for public
    // clients). A reused refresh token revokes the whole grant (oidc-provider default).
    rotateRefreshToken: () => true,
    // MCP clients outlive the browser session they logged in with.
    expiresWithSession: () => false,
    ttl: lifetimes(config),
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      // Remembered consent never sends a public client's code to this computer unasked
      // (RFC 8252 §8.6; native-consent.ts). The account client's redirect is exact.
      policy: consentPolicy(new Set([ACCOUNT_CLIENT_ID])),
    },
    findAccount: accountFinder(deps),
    extraTokenClaims: identityClaims(identityOf),
    loadExistingGrant: async (ctx) => loadOrRememberGrant(ctx, consents),
    // Token and revocation endpoints answer browsers only from configured origins; the
    // answer never carries Access-Control-Allow-Credentials (these endpoints use no cookies).
    clientBasedCORS: (_ctx, origin) => config.cors.allowedOrigins.includes(origin),
    renderError: authorizationErrorPage(config.registration.dcr, deps.logger),
    conformIdTokenClaims: true,
    enabledJWA: {
      idTokenSigningAlgValues: [SIGNING_ALG],
    },
  };

  return adaptProvider(new Provider(config.issuer, configuration), deps);
}

/**
 * The browser cookies. `__Host-`/`__Secure-` prefixes make the browser refuse cookies set over
 * plain http or for another path/domain (checklist AS-10); they need https, so only there.
 */
function cookieSettings(keys: string[], secure: boolean): Configuration['cookies'] {
  return {
    keys,
    names: {
      session: secure ? '__Host-mcpgw_session' : 'mcpgw_session',
      interaction: secure ? '__Secure-mcpgw_interaction' : 'mcpgw_interaction',
      resume: secure ? '__Secure-mcpgw_resume' : 'mcpgw_resume',
    },
    long: { signed: true, httpOnly: true, sameSite: 'lax' },
    short: { signed: true, httpOnly: true, sameSite: 'lax' },
  };
}

/** Every lifetime oidc-provider gives its records, from `tokens` and `registration.dcr`. */
function lifetimes(config: Pick<GatewayConfig, 'tokens' | 'registration'>): Configuration['ttl'] {
  const { tokens } = config;
  return {
    AccessToken: tokens.accessTokenTtl,
    AuthorizationCode: tokens.authorizationCodeTtl,
    IdToken: tokens.accessTokenTtl,
    Interaction: tokens.loginTtl,
    Grant: tokens.refreshTokenTtl,
    Session: SESSION_TTL,
    RefreshToken: tokens.refreshTokenTtl,
    RegistrationAccessToken: config.registration.dcr.clientTtl,
  };
}

/** oidc-provider's features: what is on, what is off, and why. */
function features(
  deps: ProviderDependencies,
  identityOf: IdentityOf,
): NonNullable<Configuration['features']> {
  return {
    devInteractions: { enabled: false },
    // No user-info endpoint: identity reaches MCP servers through the gateway's headers.
    userinfo: { enabled: false },
    registration: {
      enabled: deps.config.registration.dcr.enabled,
      initialAccessToken: false,
      // `dcr_` + 128 random bits: says what kind of client it is in logs and headers, and is
      // short enough never to be taken for a token by the log redaction.
      idFactory: () => `dcr_${randomBytes(16).toString('base64url')}`,
    },
    // A client revokes only its own tokens (RFC 7009 §2.1).
    revocation: {
      enabled: true,
      allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
    },
    introspection: introspectionPolicy(deps),
    rpInitiatedLogout: { enabled: false },
    // Not used by MCP clients; off to keep the attack surface small. (DPoP would also bind
    // access tokens to keys that the forwardAuth decision point would then have to check.)
    pushedAuthorizationRequests: { enabled: false },
    dPoP: { enabled: false },
    resourceIndicators: resourcePolicy(deps, identityOf),
    clientIdMetadataDocument: clientIdMetadataDocuments(deps),
  };
}

type Features = NonNullable<Configuration['features']>;

/**
 * A client introspects only its own tokens, unless the configuration names it a resource
 * server (`clients[].allowIntrospection`); oidc-provider's default would let any confidential
 * client, dynamically registered ones included, read anyone's tokens. A token of a disabled
 * client is inactive, as `/verify` treats it (without this, oidc-provider would look its client
 * up and answer the resource server invalid_client).
 */
function introspectionPolicy(
  deps: ProviderDependencies,
): Exclude<Features['introspection'], { enabled?: false | undefined } | undefined> {
  const introspectors = new Set(
    deps.config.clients
      .filter((client) => client.allowIntrospection)
      .map((client) => client.client_id),
  );
  return {
    enabled: true,
    allowedPolicy: async (_ctx, client, token) =>
      (token.clientId === client.clientId || introspectors.has(client.clientId)) &&
      !(
        token.clientId !== undefined &&
        (await deps.disabledClients?.isDisabledInStore(token.clientId))
      ),
  };
}

/**
 * Resource indicators (RFC 8707): which MCP server a token is for, its scopes and lifetime,
 * and whether the user may have it.
 */
function resourcePolicy(
  deps: ProviderDependencies,
  identityOf: IdentityOf,
): Features['resourceIndicators'] {
  const { config, resources } = deps;
  return {
    enabled: true,
    // Without `resource` a request is bound to the only resource, when there is one;
    // with several, the client must say which (MCP requires clients to send it). The
    // account client never gets a resource.
    defaultResource: (_ctx, client) =>
      client.clientId === ACCOUNT_CLIENT_ID ? undefined : resources.soleResource(),
    useGrantedResource: () => true,
    getResourceServerInfo: async (ctx, indicator, client): Promise<ResourceServer> => {
      if (client.clientId === ACCOUNT_CLIENT_ID) {
        throw new errors.InvalidTarget('the account client cannot obtain resource tokens');
      }
      // RFC 8707 §2 lets a resource carry a query; this gateway's never do
      // (src/resources/resource-url.ts).
      if (hasQuery(indicator)) {
        throw new errors.InvalidTarget(
          'resource indicator must not contain a query component: resource URLs of this gateway have none',
        );
      }
      const resource = resources.find(indicator);
      if (!resource)
        throw new errors.InvalidTarget(`${indicator} is not a resource of this gateway`);
      // Issuing a token (code exchange or refresh): the user must pass this resource's
      // own access rules. The consent step checks them too; this catches a rule changed
      // since, and a grant remembered from before.
      const accountId = ctx.oidc.route === 'token' ? ctx.oidc.account?.accountId : undefined;
      if (accountId) {
        const identity = await identityOf(ctx, accountId);
        const decision = identity
          ? evaluateResourceAccess(identity, resource)
          : ({ allowed: false, reason: 'the account record has expired' } as const);
        if (!decision.allowed) {
          deps.events.emit('access_denied', {
            ip: ctx.ip,
            provider: identity?.provider,
            subject: accountId,
            resource: resource.url,
            reason: decision.reason,
          });
          throw new errors.InvalidGrant(`access to ${resource.url} denied: ${decision.reason}`);
        }
      }
      return {
        scope: grantableScopes(resource).join(' '),
        audience: resource.url,
        accessTokenTTL: config.tokens.accessTokenTtl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: SIGNING_ALG } },
      };
    },
  };
}

/**
 * Client ID Metadata Documents (`registration.cimd`): which hosts' client ids may be used, and
 * what a document must say.
 */
function clientIdMetadataDocuments(
  deps: ProviderDependencies,
): Features['clientIdMetadataDocument'] {
  const { logger } = deps;
  const cimd = deps.config.registration.cimd;
  const cimdHostAllowed = cimdHostPolicy(cimd, deps.hostApprovals, logger);
  return {
    enabled: cimd.enabled,
    ack: 'draft-02',
    allowFetch: (_ctx, clientId) => cimdHostAllowed(clientId),
    // Asked for a fetched document and for every use of a cached one.
    allowClient: async (_ctx, client) => {
      if (!(await cimdHostAllowed(client.clientId))) return false;
      // The MCP spec requires client_name and redirect_uris in the document, and the
      // redirect policy applies to CIMD clients like to any other.
      const problems = redirectUriProblems(client.redirectUris);
      if (!client.clientName || problems.length > 0) {
        logger.warn('CIMD client refused', {
          event: 'cimd_refused',
          clientId: client.clientId,
          problems,
        });
        deps.metrics?.registration('cimd', 'refused');
        return false;
      }
      deps.metrics?.registration('cimd', 'accepted');
      return true;
    },
    cacheDuration: { min: 60, max: 3600 },
  };
}

/**
 * Whether the client ids of `clientId`'s host may be used: deny-list, then allow-list, then
 * (optionally) admin approval, read from the store. Asked before a document is fetched and
 * again at every use of a cached one (oidc-provider keeps a document up to an hour,
 * `cacheDuration`, and checks nothing but `allowClient` when it reuses it), so a withdrawn
 * approval stops the host's clients at their next authorization or refresh, on every
 * replica, without the document cache having to be told.
 */
function cimdHostPolicy(
  cimd: GatewayConfig['registration']['cimd'],
  hostApprovals: ProviderDependencies['hostApprovals'],
  logger: Logger,
): (clientId: string) => Promise<boolean> {
  const cimdDenyHosts = new Set(cimd.denyHosts.map((host) => host.toLowerCase()));
  const cimdOnlyHosts = new Set(cimd.onlyHosts.map((host) => host.toLowerCase()));
  return async (clientId) => {
    const host = new URL(clientId).hostname.toLowerCase();
    if (cimdDenyHosts.has(host)) return false;
    if (cimdOnlyHosts.size > 0 && !cimdOnlyHosts.has(host)) return false;
    if (cimd.requireApproval && !(await hostApprovals.check(host))) {
      logger.warn('CIMD client host pending approval', { event: 'cimd_pending', host });
      return false;
    }
    return true;
  };
}

/**
 * Registered client metadata, checked or adjusted for every registration and every CIMD
 * document before the client is accepted (oidc-provider runs this validator for each listed
 * property):
 *  - `redirect_uris`: the https-or-loopback policy (checklist AS-07);
 *  - `scope`: a client registers the scope it needed at the time (the MCP SDK sends the
 *    401 challenge's), and oidc-provider would then refuse any other scope, which makes
 *    step-up (MCP "Step-Up Authorization Flow") impossible. A registered scope is the
 *    client's own claim and protects nothing, so it is widened to every scope the server
 *    knows; what a token carries stays limited by its resource and the user's consent.
 *  - every field (client-metadata-limits.ts): a size limit, for the metadata of a
 *    registration (the only case with a request context) and of a CIMD document (an
 *    https client id that is not configured), not for the configured clients nor for DCR
 *    clients read back from the store.
 */
function clientMetadataPolicy(
  clients: GatewayConfig['clients'],
  knownScopes: string[],
): Configuration['extraClientMetadata'] {
  // Clients whose metadata is the operator's own: not held to the size limits.
  const configuredClients = new Set([
    ...clients.map((client) => client.client_id),
    ACCOUNT_CLIENT_ID,
  ]);
  const isCimdClientId = (id: unknown) =>
    typeof id === 'string' && /^https:\/\//i.test(id) && !configuredClients.has(id);
  return {
    properties: [...new Set(['redirect_uris', 'scope', ...LIMITED_CLIENT_METADATA])],
    validator(ctx, key, value, metadata) {
      // An absent value is left to oidc-provider, which reports it as a missing property.
      if (value === undefined) return;
      if (ctx !== undefined || isCimdClientId(metadata.client_id)) {
        checkClientMetadataLimit(key, value);
        if (key === 'grant_types' || key === 'response_types') requireCodeFlow(key, value);
      }
      if (key === 'scope') {
        if (typeof value !== 'string') {
          throw new errors.InvalidClientMetadata('scope must be a string');
        }
        metadata.scope = knownScopes.join(' ');
        return;
      }
      if (key !== 'redirect_uris') return;
      const problems = redirectUriProblems(value);
      if (problems.length > 0) throw new errors.InvalidRedirectUri(problems.join('; '));
    },
  };
}

/**
 * oidc-provider's account lookup. At a refresh the user is checked again: the provider
 * re-reads the identity where it can, and the access rules are applied to it. A refusal
 * revokes the whole grant, so the access tokens already issued under it stop working at
 * `/verify` too.
 */
function accountFinder(deps: ProviderDependencies): Configuration['findAccount'] {
  const { accounts, resources, logger } = deps;
  return async (ctx, sub, token) => {
    let identity;
    if (isRefreshGrant(ctx)) {
      try {
        identity = await deps.reauthorization.atRefresh(
          sub,
          refreshedResources(ctx, token).flatMap((url) => resources.find(url) ?? []),
        );
      } catch (error) {
        if (deps.reauthorization.isUpstreamUnavailable(error)) {
          logger.warn('refresh: the identity provider cannot be reached', {
            subject: sub,
            error: error.message,
          });
          throw new UpstreamUnavailableError();
        }
        if (!deps.reauthorization.isAccessWithdrawn(error)) throw error;
        deps.metrics?.accessWithdrawn(error.provider);
        deps.events.emit('access_withdrawn', {
          ip: ctx.ip,
          provider: error.provider,
          subject: sub,
          clientId: ctx.oidc.client?.clientId,
          reason: error.message,
        });
        const grantId = (token as { grantId?: string } | undefined)?.grantId;
        if (grantId) await ctx.oidc.provider.Grant.adapter.revokeByGrantId(grantId);
        throw new errors.InvalidGrant(`access withdrawn: ${error.message}`);
      }
    } else {
      identity = await accounts.find(sub);
    }
    if (!identity) return undefined;
    return {
      accountId: sub,
      // Kept on the account oidc-provider puts on the context, so that the resource check
      // and the token claims of this same request need not read the record again.
      identity,
      claims: () => ({
        sub,
        email: identity.email,
        email_verified: identity.emailVerified,
        name: identity.name,
      }),
    };
  };
}

/** Identity claims carried by JWT access tokens, for the gateway's identity headers. */
function identityClaims(identityOf: IdentityOf): Configuration['extraTokenClaims'] {
  return async (ctx, token) => {
    if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
    const identity = await identityOf(ctx, token.accountId);
    if (!identity) return undefined;
    return {
      email: identity.email,
      name: identity.name,
      groups: identity.groups ?? [],
      idp: identity.provider,
      // The grant, so that the decision point can refuse tokens of a revoked grant.
      gid: token.grantId,
    };
  };
}

/**
 * The page oidc-provider shows the browser for an authorization request it cannot continue
 * (an unknown client, a wrong redirect_uri…), with help for a client document's author; each
 * is logged.
 */
function authorizationErrorPage(
  dcr: GatewayConfig['registration']['dcr'],
  logger: Logger,
): Configuration['renderError'] {
  return (ctx, out, error) => {
    ctx.type = 'html';
    ctx.body = renderErrorPage({
      title: 'Sign-in cannot continue',
      error: out.error,
      description: out.error_description,
      help: clientDocumentHelp({
        clientId: ctx.oidc?.params?.client_id,
        description: out.error_description,
        error,
        dynamicRegistration: dcr.enabled,
      }),
    });
    logger.info('authorization error page', {
      event: 'authorization_error',
      error: out.error,
      description: out.error_description,
      cause: error instanceof Error ? error.message : undefined,
    });
  };
}

/** What the configuration cannot say: patches and middleware on the built provider. */
function adaptProvider(provider: Provider, deps: ProviderDependencies): Provider {
  const { config } = deps;
  // Behind Traefik: X-Forwarded-Proto is honoured (for `secure` cookies). The HTTP layer
  // strips those headers from any peer that is not a trusted proxy. No URL the provider
  // publishes is built from them or from Host: all come from the issuer (issuer-urls.ts).
  provider.proxy = true;
  urlsFromIssuer(provider);
  cacheableMetadata(provider);
  liveDiscoveryScopes(provider, deps.resources);
  allowLoopbackPortVariation(provider.Client as never);
  refreshTokensImplyOfflineAccess(provider.RefreshToken as never);
  exactAccountRedirect(provider.Client as never, accountCallbackUrl(config.issuer));
  const disabled = deps.disabledClients;
  if (disabled) {
    refuseDisabledClients(
      provider.Client,
      (clientId) => disabled.isDisabledInStore(clientId),
      new Set([ACCOUNT_CLIENT_ID]),
    );
  }
  return provider;
}

/**
 * The code flow is the only one this server offers. oidc-provider accepts empty `grant_types`
 * and `response_types`, and then asks for no `redirect_uris` either: it would register a
 * client that can never obtain a token (RFC 7591 §2 lets the server refuse such metadata).
 */
function requireCodeFlow(key: 'grant_types' | 'response_types', value: unknown): void {
  const needed = key === 'grant_types' ? 'authorization_code' : 'code';
  if (Array.isArray(value) && !value.includes(needed)) {
    throw new errors.InvalidClientMetadata(`${key} must include ${needed}`);
  }
}

/** The OpenID Connect scopes every deployment has, before the resources' own. */
const OIDC_SCOPES = ['openid', 'offline_access', 'email', 'profile'];

/**
 * oidc-provider builds `scopes_supported` (RFC 8414 §2) from the scopes known at start; MCP
 * servers added, edited or removed at run time (src/servers/) change the resources' scopes,
 * so the discovery document lists them as they are now. A removed server's scopes leave the
 * list; tokens are never granted by this list anyway (getResourceServerInfo is per resource).
 */
function liveDiscoveryScopes(provider: Provider, resources: { allScopes(): string[] }): void {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== 'discovery') return;
    const body = ctx.body as { scopes_supported?: unknown } | undefined;
    if (body && Array.isArray(body.scopes_supported)) {
      body.scopes_supported = [...new Set([...OIDC_SCOPES, ...resources.allScopes()])];
    }
  });
}

function toClientMetadata(client: GatewayConfig['clients'][number]): ClientMetadata {
  return {
    client_id: client.client_id,
    client_secret: client.client_secret,
    client_name: client.client_name,
    redirect_uris: client.redirect_uris,
    grant_types: client.grant_types,
    response_types: ['code'],
    token_endpoint_auth_method:
      client.token_endpoint_auth_method ?? (client.client_secret ? 'client_secret_basic' : 'none'),
    ...(client.application_type ? { application_type: client.application_type } : {}),
  };
}

/**
 * The account client's code goes to the gateway's own callback and nowhere else: the loopback
 * port rule (a development issuer on `localhost`) must not let another local program take it
 * on another port, as its consent step is skipped.
 */
function exactAccountRedirect(
  clientClass: {
    prototype: { clientId: string; redirectUriAllowed(value: string): boolean };
  },
  callback: string,
): void {
  const allowed = clientClass.prototype.redirectUriAllowed;
  clientClass.prototype.redirectUriAllowed = function redirectUriAllowed(value: string) {
    if (this.clientId === ACCOUNT_CLIENT_ID) return value === callback;
    return allowed.call(this, value);
  };
}

/** The built-in account client (see {@link ACCOUNT_CLIENT_ID}). */
function accountClientMetadata(issuer: string): ClientMetadata {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: 'MCP Gateway account',
    redirect_uris: [accountCallbackUrl(issuer)],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

/**
 * oidc-provider asks for an existing grant before showing the consent prompt. Besides the
 * grant of the current browser session, we honour a consent the user gave this client earlier
 * (see {@link ConsentMemory}) by building a grant from it. A grant found here skips the page
 * except for public clients redirecting to this computer (native-consent.ts).
 */
async function loadOrRememberGrant(ctx: KoaContextWithOIDC, consents: ConsentMemory) {
  const { oidc } = ctx;
  const client = oidc.client;
  const session = oidc.session;
  if (!client || !session?.accountId) return undefined;
  const grantId = oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
  if (grantId) {
    const grant = await oidc.provider.Grant.find(grantId);
    if (grant) return grant;
  }
  const remembered = await consents.find(session.accountId, client.clientId);
  if (!remembered) return undefined;
  const grant = new oidc.provider.Grant({
    accountId: session.accountId,
    clientId: client.clientId,
  });
  if (remembered.oidcScopes.length) grant.addOIDCScope(remembered.oidcScopes.join(' '));
  for (const [resource, scopes] of Object.entries(remembered.resources)) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  await grant.save();
  session.ensureClientContainer(client.clientId);
  session.grantIdFor(client.clientId, grant.jti);
  return grant;
}
