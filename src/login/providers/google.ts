/**
 * Login with Google (consumer accounts and Google Workspace), with `passport-google-oauth20`.
 *
 * The strategy runs the OAuth flow (`state`, PKCE S256, code exchange) and reads Google's
 * OpenID Connect userinfo endpoint with the access token, over TLS from Google itself; the
 * gateway takes `sub`, `email`, `email_verified`, `name` and `hd` from it. `hd` is the
 * Workspace domain of the account, and the only proof of it: an address at a company domain
 * can also be a consumer Google account (an "unmanaged" account), which has no `hd`, so
 * `login.google.hostedDomains` checks `hd`, never the address. One configured domain is also
 * sent as the `hd` authorization parameter, which only preselects the account at Google.
 *
 * Nothing is kept: Google returns a refresh token only for `access_type=offline` with a
 * consent prompt at every login, and the identity Google vouches for (address, domain) does
 * not change the way group membership does. Access rules are still evaluated again, against
 * the identity of the last login, at every refresh (docs/login-providers.md).
 */
import type { Agent as HttpsAgent } from 'node:https';
import type { VerifyCallback } from 'passport-oauth2';
import {
  Strategy as GoogleStrategy,
  type Profile,
  type StrategyOptions as GoogleStrategyOptions,
} from 'passport-google-oauth20';
import type { GoogleLoginConfig } from '../../config/schema.js';
import { finishStrategy, requestStateStore, startStrategy } from './passport-adapter.js';
import {
  UpstreamUnavailable,
  type LoginProvider,
  type PendingUpstreamLogin,
  type UpstreamLogin,
} from './provider.js';

/** What is used of passport-oauth2's node-oauth client. */
interface NodeOAuth2 {
  setAgent(agent: HttpsAgent): void;
  useAuthorizationHeaderforGET(use: boolean): void;
}

/** Google's userinfo answer (OpenID Connect standard claims plus `hd`). */
interface GoogleUserinfo {
  sub?: unknown;
  email?: unknown;
  email_verified?: unknown;
  name?: unknown;
  hd?: unknown;
}

export class GoogleLoginProvider implements LoginProvider {
  readonly id = 'google';
  readonly name: string;
  private readonly strategy: GoogleStrategy;

  constructor(
    private readonly settings: GoogleLoginConfig,
    readonly redirectUri: string,
    httpsAgent?: HttpsAgent,
  ) {
    this.name = settings.name;
    this.strategy = new GoogleStrategy(
      // The typings know `state` only as a string; passport-oauth2 takes `true` with a store.
      {
        clientID: settings.clientId,
        clientSecret: settings.clientSecret,
        callbackURL: redirectUri,
        authorizationURL: settings.authorizationUrl,
        tokenURL: settings.tokenUrl,
        userProfileURL: settings.userinfoUrl,
        state: true,
        pkce: true,
        store: requestStateStore,
      } as unknown as GoogleStrategyOptions,
      (_accessToken: string, _refreshToken: string, profile: Profile, done: VerifyCallback) =>
        done(null, profile),
    );
    const oauth2 = (this.strategy as unknown as { _oauth2: NodeOAuth2 })._oauth2;
    // node-oauth puts the access token in the query string of GET requests by default; in a
    // URL it would end up in proxy and server logs. Send it in the Authorization header.
    oauth2.useAuthorizationHeaderforGET(true);
    if (httpsAgent && new URL(settings.tokenUrl).protocol === 'https:') {
      oauth2.setAgent(httpsAgent);
    }
  }

  start(): Promise<{ url: URL; pending: PendingUpstreamLogin }> {
    const [onlyDomain, ...others] = this.settings.hostedDomains;
    return startStrategy(this.strategy, {
      scope: ['openid', 'email', 'profile'],
      ...(onlyDomain && others.length === 0 ? { hostedDomain: onlyDomain } : {}),
    });
  }

  async finish(callbackUrl: URL, pending: PendingUpstreamLogin): Promise<UpstreamLogin> {
    const profile = (await finishStrategy(this.strategy, callbackUrl, pending)) as Profile;
    const claims = (profile._json ?? {}) as GoogleUserinfo;
    if (typeof claims.sub !== 'string' || claims.sub === '') {
      throw new UpstreamUnavailable('Google returned no subject');
    }
    return {
      identity: {
        sub: `google:${claims.sub}`,
        provider: this.id,
        email: typeof claims.email === 'string' ? claims.email.toLowerCase() : undefined,
        // Google's userinfo says `true`; some older endpoints said `"true"`.
        emailVerified: claims.email_verified === true || claims.email_verified === 'true',
        name: typeof claims.name === 'string' ? claims.name : undefined,
        hostedDomain: typeof claims.hd === 'string' ? claims.hd.toLowerCase() : undefined,
        groups: [],
      },
    };
  }
}
