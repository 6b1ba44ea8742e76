/**
 * oidc-provider's events, typed once: which events the gateway listens to and what each
 * listener is given. oidc-provider's own typings declare `on` as dozens of overloads over its
 * full Koa context and model classes; the listeners here read a few optional fields of plain
 * objects (and tests emit such objects from an EventEmitter), so the arguments are described
 * by what the gateway reads, every field optional. {@link onProviderEvent} is the one way
 * modules subscribe: an event name outside {@link ProviderEventMap} does not compile, so a
 * misspelt name cannot silently never fire.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';

/** A token, code or grant among a request's entities, as far as the listeners read it. */
export interface EventEntity {
  accountId?: string;
  clientId?: string;
  grantId?: string;
  /** A grant's id (for a token, the token itself: never recorded). */
  jti?: string;
  /** Expiry, seconds since the epoch. */
  exp?: number;
  scope?: string;
  resourceServer?: { identifier?: () => string };
}

/** A client as oidc-provider's events give it. */
export interface EventClient {
  clientId: string;
  clientName?: string;
  redirectUris?: string[];
  grantTypes?: string[];
  tokenEndpointAuthMethod?: string;
}

/** The Koa context of the request an event happened in (oidc-provider's `ctx`). */
export interface OAuthEventContext {
  /** The client address as Koa sees it (the trusted proxies' X-Forwarded-For applied). */
  ip?: string;
  /** The Node request, the one Express saw before oidc-provider. */
  req?: IncomingMessage;
  oidc?: {
    /** The route name (`token`, `revocation`, …). */
    route?: string;
    client?: EventClient;
    params?: Record<string, unknown>;
    entities?: Record<string, EventEntity | undefined>;
    session?: { accountId?: string };
  };
}

/** An error oidc-provider reports (its OIDCProviderError, or any other error it caught). */
export interface OAuthEventError extends Error {
  /** The OAuth error code (`invalid_grant`, …). */
  error?: string;
  error_description?: string;
  /** The precise reason, never a token (`refresh token already used`, …). */
  error_detail?: string;
}

/** A grant as `grant.saved` gives it (the Grant model). */
export interface SavedGrant {
  jti?: string;
  accountId?: string;
  clientId?: string;
  openid?: { scope?: string };
  /** Scopes per resource indicator. */
  resources?: Record<string, string | undefined>;
}

/** The endpoints whose errors the gateway listens to: `<endpoint>.error` (ctx, error). */
export type ProviderErrorEvent =
  | 'authorization.error'
  | 'grant.error'
  | 'registration_create.error'
  | 'registration_read.error'
  | 'revocation.error'
  | 'introspection.error';

/** Each event the gateway listens to, and its listener's arguments (oidc-provider 9). */
export type ProviderEventMap = {
  /** The token endpoint answered with tokens (a code exchange, a refresh, …). */
  'grant.success': [ctx: OAuthEventContext];
  /** oidc-provider revoked a grant (revocation endpoint, replayed code, reused refresh token). */
  'grant.revoked': [ctx: OAuthEventContext, grantId: string];
  /** The Grant model was saved: consent given or widened. No request context. */
  'grant.saved': [grant: SavedGrant];
  'registration_create.success': [ctx: OAuthEventContext, client: EventClient];
  'registration_update.success': [ctx: OAuthEventContext, client: EventClient];
  'registration_delete.success': [ctx: OAuthEventContext, client: EventClient];
  /** An error no endpoint handler expected (answered 500). */
  server_error: [ctx: OAuthEventContext, error: Error];
} & { [E in ProviderErrorEvent]: [ctx: OAuthEventContext, error: OAuthEventError] };

export type ProviderEventName = keyof ProviderEventMap;

/** Every name of {@link ProviderEventMap}, at run time (a test checks oidc-provider emits each). */
export const PROVIDER_EVENT_NAMES = Object.keys({
  'grant.success': true,
  'grant.revoked': true,
  'grant.saved': true,
  'grant.error': true,
  'authorization.error': true,
  'registration_create.success': true,
  'registration_update.success': true,
  'registration_delete.success': true,
  'registration_create.error': true,
  'registration_read.error': true,
  'revocation.error': true,
  'introspection.error': true,
  server_error: true,
} satisfies Record<ProviderEventName, true>) as ProviderEventName[];

/** What emits oidc-provider's events: the Provider (a Koa app, an EventEmitter), or a test's. */
export type ProviderEventSource = Pick<EventEmitter, 'on'>;

/**
 * Calls `listener` with the arguments of every later `event`. Listeners run synchronously
 * inside the request that emitted the event (what one throws, oidc-provider's `emit` throws):
 * keep them cheap, and start any store write without awaiting it.
 */
export function onProviderEvent<E extends ProviderEventName>(
  provider: ProviderEventSource,
  event: E,
  listener: (...args: ProviderEventMap[E]) => void,
): void {
  provider.on(event, listener);
}
