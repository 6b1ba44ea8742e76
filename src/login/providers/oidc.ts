/**
 * Login through an enterprise OpenID Connect provider (Entra ID, Okta, Keycloak, Auth0, …),
 * with openid-client: discovery, authorization code with PKCE (S256), `state` and `nonce`,
 * and ID token validation (issuer, audience, signature, expiry, nonce) by the library.
 *
 * What enterprise providers differ in is configuration, not code (docs/login-providers.md):
 * which claim carries groups (`groupsClaim`), which carries the address (`emailClaim`),
 * whether the address can be trusted without `email_verified` (`trustEmail`, Entra ID),
 * whether claims live in userinfo rather than the ID token (`fetchUserinfo`, Okta), and extra
 * authorization parameters (`authorizationParams`). The gateway never sends RFC 8707
 * `resource` upstream: Entra ID's v2 endpoint rejects it, and it belongs to the gateway's
 * own tokens.
 *
 * Upstream tokens are used to read the identity. When the provider issues a refresh token
 * (ask for `offline_access` in `scopes`), it is kept sealed with the account, and each refresh
 * of a gateway token redeems it for a fresh ID token: a user removed from a group, disabled
 * or with revoked sessions is refused at the next refresh. No upstream token ever reaches an
 * MCP client.
 */
import * as client from 'openid-client';
import type { OidcProviderConfig } from '../../config/schema.js';
import { isLoopbackHostname } from '../../net/loopback.js';
import type { FetchFunction } from '../../net/outbound-fetch.js';
import { namespacedGroups } from '../../policy/groups.js';
import type { Identity } from '../accounts.js';
import {
  UpstreamRefused,
  UpstreamUnavailable,
  type LoginProvider,
  type PendingUpstreamLogin,
  type UpstreamLogin,
  type UpstreamSession,
} from './provider.js';

type Claims = Record<string, unknown>;

export class OidcLoginProvider implements LoginProvider {
  readonly id: string;
  readonly name: string;
  private configuration: Promise<client.Configuration> | undefined;

  constructor(
    private readonly settings: OidcProviderConfig,
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
          throw new UpstreamUnavailable(`discovery failed: ${(error as Error).message}`, {
            cause: error,
          });
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
      ...this.settings.authorizationParams,
      redirect_uri: this.redirectUri,
      scope: this.settings.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce!,
    });
    return { url, pending };
  }

  /** Exchanges the code from the callback URL and returns who logged in. */
  async finish(callbackUrl: URL, pending: PendingUpstreamLogin): Promise<UpstreamLogin> {
    const configuration = await this.discover();
    const tokens = await upstreamCall(() =>
      client.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      }),
    );
    const claims = tokens.claims();
    if (!claims) throw new UpstreamRefused('the provider returned no ID token');
    return {
      identity: this.identityFrom(await this.withUserinfo(configuration, tokens, claims)),
      session: tokens.refresh_token ? { refreshToken: tokens.refresh_token } : undefined,
    };
  }

  /** Redeems the kept refresh token for a fresh ID token (or userinfo) and reads it again. */
  async recheck(session: UpstreamSession): Promise<UpstreamLogin> {
    if (!session.refreshToken) throw new UpstreamRefused('no refresh token was kept');
    const configuration = await this.discover();
    const tokens = await upstreamCall(() =>
      // The original scopes again: Entra ID's v2 token endpoint expects `scope` on a refresh.
      client.refreshTokenGrant(configuration, session.refreshToken!, {
        scope: this.settings.scopes.join(' '),
      }),
    );
    // A refresh response need not carry an ID token; userinfo then says who it is for.
    let claims: Claims | undefined = tokens.claims();
    if (!claims) {
      claims = await upstreamCall(() =>
        client.fetchUserInfo(configuration, tokens.access_token, client.skipSubjectCheck),
      );
    } else {
      claims = await this.withUserinfo(configuration, tokens, claims);
    }
    return {
      identity: this.identityFrom(claims),
      // Providers that rotate refresh tokens send a new one; others keep the old one valid.
      session: { refreshToken: tokens.refresh_token ?? session.refreshToken },
    };
  }

  private async withUserinfo(
    configuration: client.Configuration,
    tokens: client.TokenEndpointResponse,
    idClaims: Claims,
  ): Promise<Claims> {
    if (!this.settings.fetchUserinfo) return idClaims;
    const userinfo = await upstreamCall(() =>
      client.fetchUserInfo(configuration, tokens.access_token, String(idClaims.sub)),
    );
    return { ...idClaims, ...userinfo };
  }

  private identityFrom(claims: Claims): Identity {
    if (typeof claims.sub !== 'string' || claims.sub === '') {
      throw new UpstreamRefused('the provider named no subject');
    }
    const { emailClaim, groupsClaim, trustEmail } = this.settings;
    const email = claims[emailClaim];
    return {
      sub: `oidc:${this.id}:${claims.sub}`,
      provider: this.id,
      email: typeof email === 'string' ? email.toLowerCase() : undefined,
      emailVerified: trustEmail || claims.email_verified === true,
      name: typeof claims.name === 'string' ? claims.name : undefined,
      // Namespaced (`<id>:<group>`): another provider's group of the same name is not this one.
      groups: groupsClaim ? namespacedGroups(this.id, groupsFrom(claims[groupsClaim])) : [],
    };
  }
}

/**
 * A groups claim as a list of strings. Anything else (absent, or Entra ID's "overage" when a
 * user is in more than 200 groups and the claim is replaced by `_claim_names`) is no groups:
 * group rules then refuse rather than guess.
 */
function groupsFrom(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  return value.filter((entry): entry is string => typeof entry === 'string');
}

/** oauth4webapi's codes for a response that arrived but must not be believed. */
const VALIDATION_FAILURES = new Set([
  'OAUTH_INVALID_RESPONSE',
  'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
  'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED',
  'OAUTH_JWT_TIMESTAMP_CHECK_FAILED',
  'OAUTH_JWS_SIGNATURE_VERIFICATION_FAILED',
  'OAUTH_UNSUPPORTED_OPERATION',
]);

/**
 * Classifies openid-client's failures: an OAuth error from the provider (`error=` on the
 * callback, `invalid_grant` from the token endpoint) or a response that fails validation
 * (state, nonce, ID token signature, issuer, audience) is a refusal; anything else (network,
 * timeout, 5xx) is the provider being unavailable.
 */
async function upstreamCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof UpstreamRefused || error instanceof UpstreamUnavailable) throw error;
    if (
      error instanceof client.AuthorizationResponseError ||
      error instanceof client.ResponseBodyError
    ) {
      if (error instanceof client.ResponseBodyError && error.status >= 500) {
        throw new UpstreamUnavailable(`the provider answered ${error.status}`, { cause: error });
      }
      throw new UpstreamRefused(
        `${error.error}${error.error_description ? `: ${error.error_description}` : ''}`,
      );
    }
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && VALIDATION_FAILURES.has(code)) {
      throw new UpstreamRefused((error as Error).message);
    }
    throw new UpstreamUnavailable((error as Error).message, { cause: error });
  }
}
