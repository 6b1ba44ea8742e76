/** Counts what oidc-provider reports through its events (tokens, registrations, refusals). */
import type Provider from 'oidc-provider';
import type { GatewayMetrics } from './metrics.js';

export function countOAuthEvents(provider: Provider, metrics: GatewayMetrics): void {
  const on = provider.on.bind(provider) as (
    event: string,
    listener: (ctx: { oidc?: { params?: Record<string, unknown> } }, error?: unknown) => void,
  ) => void;
  on('grant.success', (ctx) => metrics.tokenIssued(String(ctx.oidc?.params?.grant_type ?? '')));
  on('grant.error', (_ctx, error) =>
    metrics.tokenError(String((error as { error?: unknown } | undefined)?.error ?? 'other')),
  );
  on('registration_create.success', () => metrics.registration('dcr', 'accepted'));
  on('registration_create.error', () => metrics.registration('dcr', 'refused'));
}
