/** Counts what oidc-provider reports through its events (tokens, registrations, refusals). */
import { onProviderEvent, type ProviderEventSource } from '../events/provider-events.js';
import type { GatewayMetrics } from './metrics.js';

export function countOAuthEvents(provider: ProviderEventSource, metrics: GatewayMetrics): void {
  onProviderEvent(provider, 'grant.success', (ctx) =>
    metrics.tokenIssued(String(ctx.oidc?.params?.grant_type ?? '')),
  );
  onProviderEvent(provider, 'grant.error', (_ctx, error) =>
    metrics.tokenError(String(error?.error ?? 'other')),
  );
  onProviderEvent(provider, 'registration_create.success', () =>
    metrics.registration('dcr', 'accepted'),
  );
  onProviderEvent(provider, 'registration_create.error', () =>
    metrics.registration('dcr', 'refused'),
  );
}
