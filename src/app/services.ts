/**
 * The shared parts of the gateway, built from the configuration in one place: the store, the
 * signing keys, the audit log, the revocation list, the disabled-clients list and
 * oidc-provider's storage adapter. The service (src/gateway.ts) and the command line
 * (src/cli/) both build them here, so that a change made from a terminal is made exactly as the
 * running service would make it.
 */
import { AuditLog } from '../audit/audit-log.js';
import { gatewayCheckpointKeys } from '../audit/checkpoint.js';
import { DisabledClients } from '../clients/disabled-clients.js';
import type { GatewayConfig } from '../config/schema.js';
import { RevocationList } from '../forward-auth/revocations.js';
import {
  loadKeyMaterial,
  publicJwk,
  type KeyLocation,
  type KeyMaterial,
} from '../keys/key-material.js';
import type { Logger } from '../logging/logger.js';
import { ACCOUNT_CLIENT_ID } from '../oauth/constants.js';
import { createAdapterFactory } from '../oauth/store-adapter.js';
import { RESERVED_KEYS } from '../store/keys.js';
import { MemoryStore } from '../store/memory-store.js';
import { RedisStore } from '../store/redis-store.js';
import type { Store } from '../store/store.js';

/** The store the configuration names (also used by the CLI to reach a running service's). */
export function createStore(config: Pick<GatewayConfig, 'store'>, logger: Logger): Store {
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
    reservedKeys: RESERVED_KEYS,
  });
}

/**
 * Where the signing keys are kept: the configured file, else the store when it is shared
 * (Redis: every replica signs with the same keys), else `dataDir`.
 */
export function keyLocation(
  config: Pick<GatewayConfig, 'keys' | 'store' | 'dataDir'>,
  store: Store,
): KeyLocation {
  if (config.keys.file) return { kind: 'file', file: config.keys.file };
  if (config.store.redis) return { kind: 'store', store };
  return { kind: 'dataDir', dir: config.dataDir };
}

/**
 * Loads (creating or rotating as due) the signing keys and cookie secrets. An older key is kept
 * while a token it signed can still be valid: the longest token lifetime, plus five minutes.
 */
export function loadKeys(
  config: Pick<GatewayConfig, 'keys' | 'tokens'>,
  location: KeyLocation,
): Promise<KeyMaterial> {
  return loadKeyMaterial(location, {
    rotateAfter: config.keys.rotateAfter,
    maxTokenLifetime:
      Math.max(config.tokens.accessTokenTtl, config.tokens.authorizationCodeTtl) + 300,
  });
}

/**
 * The audit log (`audit.enabled`), or `undefined`. With `keys` (the service), records are also
 * mirrored to `audit.file` with checkpoints signed by the token key (`<issuer>/jwks`); without
 * (the CLI), they go to the store only and the service's mirror picks them up.
 */
export function createAuditLog(
  config: Pick<GatewayConfig, 'audit' | 'issuer'>,
  store: Store,
  logger: Logger,
  keys?: KeyMaterial,
): AuditLog | undefined {
  if (!config.audit.enabled) return undefined;
  if (!keys) return new AuditLog({ store, maxRecords: config.audit.maxRecords, logger });
  return new AuditLog({
    store,
    maxRecords: config.audit.maxRecords,
    file: config.audit.file,
    checkpointKeys: gatewayCheckpointKeys({
      issuer: config.issuer,
      signingKey: keys.keys[0]!.jwk,
      publicKeys: keys.keys.map((key) => publicJwk(key.jwk)),
    }),
    logger,
  });
}

/**
 * The revoked grants list. An entry is kept as long as an access token of the grant can be
 * valid: the access token lifetime plus the verifier's clock skew. With
 * `verify.storeOutage: serve-cached` the list may be used for `storeOutageGrace` seconds after
 * a missed read; otherwise the decision point fails closed at once.
 */
export function createRevocationList(
  config: Pick<GatewayConfig, 'tokens' | 'verify'>,
  store: Store,
  logger: Logger,
): RevocationList {
  const { verify } = config;
  return new RevocationList(
    store,
    config.tokens.accessTokenTtl + verify.clockSkew,
    verify.revocationPollInterval,
    logger,
    verify.storeOutage === 'serve-cached' ? verify.storeOutageGrace : 0,
  );
}

/** The clients an administrator disabled, re-read as often as the revocation list. */
export function createDisabledClients(
  verify: GatewayConfig['verify'],
  store: Store,
  logger: Logger,
): DisabledClients {
  return new DisabledClients(store, verify.revocationPollInterval, logger);
}

/**
 * oidc-provider's storage adapter on the gateway store. Every grant it revokes is told to
 * `onGrantRevoked` (the revocation list, so that `/verify` refuses the grant's access tokens);
 * the account page client's grants are kept out of the indexes (store-adapter.ts).
 */
export function createOAuthAdapter(
  dcr: GatewayConfig['registration']['dcr'],
  store: Store,
  onGrantRevoked?: (grantId: string) => Promise<void>,
): ReturnType<typeof createAdapterFactory> {
  return createAdapterFactory(store, {
    dcrClientTtl: dcr.clientTtl,
    ...(onGrantRevoked ? { onGrantRevoked } : {}),
    unindexedClients: [ACCOUNT_CLIENT_ID],
  });
}
