/**
 * The one interface every upstream login (GitHub, Google, enterprise OIDC) implements, so
 * that the interaction steps and the refresh check know nothing of any particular provider.
 *
 * A login is two steps around a browser redirect: `start` builds the provider's
 * authorization URL and says what must be kept until the callback (`state`, the PKCE
 * verifier, the OIDC `nonce`); `finish` redeems the code from the callback and reads who the
 * user is. `recheck`, where a provider has it, reads the identity again later (at the
 * gateway's refresh) so that a user removed from an org or group loses access then.
 */
import type { Identity } from '../accounts.js';

/** What must survive between the redirect to the provider and its callback. */
export interface PendingUpstreamLogin {
  state: string;
  codeVerifier: string;
  /** OpenID Connect providers only. */
  nonce?: string;
}

/**
 * What a provider keeps to read the identity again (an upstream access or refresh token).
 * Sealed (encrypted) before it is stored, never logged, never sent to a client.
 */
export type UpstreamSession = Record<string, string>;

export interface UpstreamLogin {
  identity: Identity;
  /** Absent when the provider cannot re-read the identity later. */
  session?: UpstreamSession | undefined;
}

export interface LoginProvider {
  /** `github`, `google`, or a `login.oidc[].id`: in URLs, logs and subjects. */
  readonly id: string;
  /** Shown on the login page. */
  readonly name: string;
  /** The callback URL registered at the provider: `<issuer>/login/callback/<id>`. */
  readonly redirectUri: string;
  start(): Promise<{ url: URL; pending: PendingUpstreamLogin }>;
  /** Redeems the code in `callbackUrl` (the provider's redirect back, query included). */
  finish(callbackUrl: URL, pending: PendingUpstreamLogin): Promise<UpstreamLogin>;
  /** Reads the identity again with a kept session; absent when the provider keeps none. */
  recheck?(session: UpstreamSession): Promise<UpstreamLogin>;
}

/**
 * The provider said no: the user cancelled, the provider refused the code, or it no longer
 * accepts the kept session (token revoked, account suspended). The login or refresh ends with
 * `access_denied` / `invalid_grant`.
 */
export class UpstreamRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamRefused';
  }
}

/**
 * The provider could not be asked (network, timeout, 5xx, a malformed answer). A login ends
 * with an error page; a refresh fails without revoking anything, and may be retried.
 */
export class UpstreamUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamUnavailable';
  }
}
