/**
 * Login through an enterprise OpenID Connect provider (Entra ID, Okta, Keycloak, Auth0, …),
 * with openid-client: discovery, authorization code with PKCE (S256), `state` and `nonce`,
 * and ID token validation (issuer, audience, signature, expiry, nonce) by the library.
 *
 * The upstream tokens are used once, to read the identity, and dropped: they are never
 * stored and never reach an MCP client.
 */
import * as client from 'openid-client';
import type { OidcProviderConfig } from '../../config/schema.js';
import { isLoopbackHostname } from '../../net/loopback.js';
import type { FetchFunction } from '../../net/outbound-fetch.js';
import type { Identity } from '../accounts.js';

/** What must survive between the redirect to the provider and its callback. */
export interface PendingUpstreamLogin {
  codeVerifier: string;
  state: string;
  nonce: string;
}

export class OidcLoginProvider {
  readonly id: string;
  readonly name: string;
  private configuration: Promise<client.Configuration> | undefined;

  constructor(
    private readonly settings: OidcProviderConfig,
    /** The callback URL registered at the provider: `<issuer>/login/callback/<id>`. */
    readonly redirectUri: string,
    private readonly fetch: FetchFunction,
  ) {
    this.id = settings.id;
    this.name = settings.name;
  }

  /**
   * Discovery runs on first use and is retried on the next login when it failed, so a
   * provider that is briefly unreachable at start-up does not keep the service down.
   */
  private discover(): Promise<client.Configuration> {
    if (!this.configuration) {
      const issuer = new URL(this.settings.issuer);
      // http is tolerated only for a provider on this machine (development, tests).
      const execute =
        issuer.protocol === 'http:' && isLoopbackHostname(issuer.hostname)
          ? [client.allowInsecureRequests]
          : [];
      this.configuration = client
        .discovery(issuer, this.settings.clientId, this.settings.clientSecret, undefined, {
          [client.customFetch]: this.fetch as client.CustomFetch,
          execute,
          timeout: 10,
        })
        .catch((error: unknown) => {
          this.configuration = undefined;
          throw error;
        });
    }
    return this.configuration;
  }

  async start(): Promise<{ url: URL; pending: PendingUpstreamLogin }> {
    const configuration = await this.discover();
    const codeVerifier = client.randomPKCECodeVerifier();
    const pending: PendingUpstreamLogin = {
      codeVerifier,
      state: client.randomState(),
      nonce: client.randomNonce(),
    };
    const url = client.buildAuthorizationUrl(configuration, {
      redirect_uri: this.redirectUri,
      scope: this.settings.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    return { url, pending };
  }

  /** Exchanges the code from the callback URL and returns who logged in. */
  async finish(callbackUrl: URL, pending: PendingUpstreamLogin): Promise<Identity> {
    const configuration = await this.discover();
    const tokens = await client.authorizationCodeGrant(configuration, callbackUrl, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) throw new Error('the provider returned no ID token');
    return {
      sub: `oidc:${this.id}:${claims.sub}`,
      provider: this.id,
      email: typeof claims.email === 'string' ? claims.email.toLowerCase() : undefined,
      emailVerified: claims.email_verified === true,
      name: typeof claims.name === 'string' ? claims.name : undefined,
    };
  }
}
