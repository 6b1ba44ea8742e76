/**
 * Every key, key prefix and channel the gateway writes in its store (src/store/store.ts), in one
 * place.
 *
 * The strings are a stored format: a Redis of a running deployment holds data under them
 * (the store adds its own `store.redis.keyPrefix`), so they must never change
 * (tests/unit/store/keys.test.ts pins them).
 *
 * Neither store evicts anything (a full memory store refuses new keys; the service refuses to
 * start on an evicting Redis, src/store/redis-eviction.ts). Keys marked "never evicted" hold
 * what denies access: losing them would let through what an administrator refused, so a full
 * memory store still admits them ({@link RESERVED_KEYS}).
 *
 * Each TTL named here is the one given at the write (a setting, when it is configured).
 */
import { createHash } from 'node:crypto';
// ---------------------------------------------------------------------------------------------
// The authorization server (oidc-provider's records, src/oauth/store-adapter.ts)

/**
 * One oidc-provider record (`Client`, `Grant`, `AccessToken`, `Session`, `Interaction`, …).
 * TTL: the record's own expiry; a DCR client's is `registration.dcr.clientTtl`, pushed back
 * whenever the client is used.
 */
export const recordKey = (model: string, id: string) => `oidc:${model}:${id}`;

/** Set of the record keys issued under a grant, so it is revoked in one go. TTL: the grant's. */
export const grantRecordsKey = (grantId: string) => `oidc:grant:${grantId}`;

/** `{ id }` of the `Session` record with interaction-session uid `uid`. TTL: the session's. */
export const sessionUidKey = (uid: string) => `oidc:uid:${uid}`;

/** Set of an account's grant ids ("connected apps", src/account/). TTL: the grant's. */
export const accountGrantsKey = (accountId: string) => `oidc:account-grants:${accountId}`;

/** Set of a client's grant ids (`mcp-gateway clients revoke`). TTL: the grant's. */
export const clientGrantsKey = (clientId: string) => `oidc:client-grants:${clientId}`;

/** When a grant last got tokens: `{ at: <epoch seconds> }`. TTL: the grant's. */
export const grantUseKey = (grantId: string) => `oidc:grant-use:${grantId}`;

/** Set of the ids of dynamically registered (DCR) clients. No TTL (members pruned on read). */
export const DCR_CLIENT_INDEX = 'oidc:index:dcr-clients';

/**
 * Set of the CIMD client ids seen obtaining tokens (src/clients/directory.ts). TTL:
 * `registration.dcr.clientTtl`, renewed when a client is seen again.
 */
export const CIMD_CLIENT_INDEX = 'oidc:index:cimd-clients';

/** A CIMD client's name, redirect hosts, first and last seen. TTL as {@link CIMD_CLIENT_INDEX}. */
export const cimdClientKey = (clientId: string) => `oidc:cimd-client:${clientId}`;

// ---------------------------------------------------------------------------------------------
// Client governance (src/clients/)

/** Set of the client ids an administrator disabled. No TTL; never evicted. */
export const DISABLED_CLIENTS_KEY = 'clients:disabled';

/** Channel announcing `+<clientId>` (disabled) and `-<clientId>` (enabled) to every replica. */
export const DISABLED_CLIENTS_CHANNEL = 'clients:disabled';

/** Set of the CIMD hosts an administrator approved (`registration.cimd.requireApproval`). No TTL. */
export const APPROVED_CIMD_HOSTS_KEY = 'cimd:hosts:approved';

/** Set of the CIMD hosts waiting for approval. No TTL. */
export const PENDING_CIMD_HOSTS_KEY = 'cimd:hosts:pending';

// ---------------------------------------------------------------------------------------------
// Revoked grants (src/forward-auth/revocations.ts)

/**
 * Set of revoked grants (`<grantId> <until>` members). TTL: the longest access token lifetime
 * plus clock skew, renewed at each revocation; never evicted.
 */
export const REVOCATION_LIST_KEY = 'revocations:grants';

/** Channel announcing each revoked grant to every replica. */
export const REVOCATIONS_CHANNEL = 'revocations';

// ---------------------------------------------------------------------------------------------
// Users, login and forms

/**
 * An account: the identity of its last login and its sealed upstream session. TTL:
 * `tokens.refreshTokenTtl`.
 */
export const accountKey = (sub: string) => `account:${sub}`;

/** What a user approved for a client (src/oauth/consent-memory.ts). TTL: `tokens.consentTtl`. */
export const consentKey = (accountId: string, clientId: string) =>
  `consent:${accountId}:${clientId}`;

/**
 * The pending upstream login of an interaction, found by the upstream `state`, used once.
 * TTL: `tokens.loginTtl`.
 */
export const upstreamLoginKey = (state: string) => `upstream-login:${state}`;

/**
 * A form's CSRF token (src/web/csrf.ts). `name` is an interaction uid for the login and consent
 * pages (TTL: `tokens.loginTtl`), {@link adminCsrfName} or {@link accountCsrfName} for the admin
 * and account pages (TTL: the browser session's).
 */
export const csrfKey = (name: string) => `csrf:${name}`;

/** The CSRF token name of an admin console session (`csrf:admin:<uid>`). */
export const adminCsrfName = (sessionUid: string) => `admin:${sessionUid}`;

/** The CSRF token name of an account page session (`csrf:account:<uid>`). */
export const accountCsrfName = (sessionUid: string) => `account:${sessionUid}`;

// ---------------------------------------------------------------------------------------------
// `/verify` (src/forward-auth/session-binding.ts)

/**
 * `{ subject, clientId }` an MCP session is bound to; `digest` is the SHA-256 (base64url) of
 * resource and session id. TTL: `verify.sessionBinding.ttl`. Must never be evicted (an evicted
 * binding would let another user take the session): a full store refuses new ones instead.
 */
export const sessionBindingKey = (digest: string) => `session:${digest}`;

/**
 * Counter of the sessions one owner bound on one resource; `digest` as for
 * {@link sessionBindingKey}, of resource and owner. TTL: `verify.sessionBinding.ttl`.
 */
export const sessionQuotaKey = (digest: string) => `session-quota:${digest}`;

// ---------------------------------------------------------------------------------------------
// Limits (src/limits/)

/**
 * Prefix of rate-limiter-flexible's counters of one limit (`limits:<limit>:<key>`). TTL: the
 * limit's window.
 */
export const rateLimitPrefix = (limit: string) => `limits:${limit}`;

/**
 * Prefix of the sets of DCR clients registered per address. TTL: `registration.dcr.clientTtl`,
 * renewed by every registration.
 */
export const CLIENTS_BY_IP_PREFIX = 'limits:dcr-by-ip:';

/** Prefix of the sets of DCR clients registered per network. TTL as {@link CLIENTS_BY_IP_PREFIX}. */
export const CLIENTS_BY_NETWORK_PREFIX = 'limits:dcr-by-net:';

// ---------------------------------------------------------------------------------------------
// Audit and activity

/**
 * The audit trail: a hash chain (`Store.appendChained`; the store keeps its head at
 * `audit:head`). No TTL, bounded by `audit.maxRecords`.
 */
export const AUDIT_KEY = 'audit';

/** Recent `/verify` decisions for the admin console's feed: a bounded list. No TTL. */
export const DECISIONS_KEY = 'activity:decisions';

/** Recent security events for the admin console's feed: a bounded list. No TTL. */
export const SECURITY_EVENTS_KEY = 'activity:security';

// ---------------------------------------------------------------------------------------------
// MCP servers added at run time (src/servers/catalog.ts)

/** Set of the ids of the run-time MCP servers. No TTL. */
export const SERVER_IDS_KEY = 'servers:ids';

/** One run-time MCP server. No TTL. */
export const serverKey = (id: string) => `servers:server:${id}`;

/** `{ id }` of the run-time server with canonical URL `url` (one server per URL). No TTL. */
export const serverUrlKey = (url: string) => `servers:url:${url}`;

/** Channel announcing a changed server's id to every replica. */
export const SERVERS_CHANNEL = 'servers';

// ---------------------------------------------------------------------------------------------
// Tool definition pinning (src/tool-pinning/)

/**
 * The pinned state of one MCP server (approved snapshot, pending change, last listing), keyed
 * by a SHA-256 of its canonical URL. No TTL.
 */
export const toolPinsKey = (resource: string) =>
  `tool-pins:${createHash('sha256').update(resource).digest('hex')}`;

/** Channel announcing the resource URL whose pins changed (an approval, a new change). */
export const TOOL_PINS_CHANNEL = 'tool-pins';

// ---------------------------------------------------------------------------------------------
// Signing keys (src/keys/key-material.ts)

/** The signing keys and cookie secrets, when kept in a shared store. No TTL. */
export const KEY_MATERIAL_KEY = 'keys:material';

// ---------------------------------------------------------------------------------------------

/**
 * The fixed keys a full memory store still admits: those that hold what denies access, so that
 * an administrator can still disable a client or revoke a grant while other traffic keeps the
 * store full.
 */
export const RESERVED_KEYS: readonly string[] = [DISABLED_CLIENTS_KEY, REVOCATION_LIST_KEY];
