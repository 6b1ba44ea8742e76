/**
 * When a grant was last used, for the "connected apps" page and `mcp-gateway clients list`:
 * oidc-provider's `grant.success` (the token endpoint issued tokens: a code exchange or a
 * refresh) is recorded against the grant, with the grant's remaining lifetime. Access tokens
 * presented at `/verify` are not counted: that is the hot path, and a client that keeps
 * working keeps refreshing (access tokens live minutes).
 *
 * CIMD clients that obtain tokens are recorded here too ({@link CimdClientLog}).
 */
import { onProviderEvent, type ProviderEventSource } from '../events/provider-events.js';
import type { Logger } from '../logging/logger.js';
import { StoreFullError } from '../store/store.js';
import type { CimdClientLog } from '../clients/directory.js';
import type { GrantDirectory } from './grants.js';

export function trackGrantUse(
  provider: ProviderEventSource,
  deps: {
    grants: GrantDirectory;
    cimdClients: CimdClientLog;
    /** Used when the grant's own expiry is not at hand. */
    grantTtl: number;
    logger: Logger;
  },
): void {
  onProviderEvent(provider, 'grant.success', (ctx) => {
    const entities = ctx.oidc?.entities ?? {};
    const grant = entities.Grant;
    const grantId =
      grant?.jti ??
      entities.AccessToken?.grantId ??
      entities.RefreshToken?.grantId ??
      entities.AuthorizationCode?.grantId;
    const now = Math.floor(Date.now() / 1000);
    const ttl = typeof grant?.exp === 'number' ? grant.exp - now : deps.grantTtl;
    const client = ctx.oidc?.client;
    void (async () => {
      if (grantId && ttl > 0) await deps.grants.recordUse(grantId, ttl);
      if (client) await deps.cimdClients.seen(client);
    })().catch((error: unknown) => {
      // A full store is logged once where it refuses (store-full-report.ts), not per token.
      if (error instanceof StoreFullError) return;
      deps.logger.warn('cannot record grant use', { error: (error as Error).message });
    });
  });
}
