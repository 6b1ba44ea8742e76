/**
 * Login with GitHub (github.com or GitHub Enterprise Server), with `passport-github2`.
 *
 * The strategy runs the OAuth flow (authorization URL with `state` and PKCE S256, code
 * exchange) and reads `/user`. The gateway then reads, with the same token:
 *  - `/user/emails`: the primary address and whether GitHub verified it (`/user`'s `email`
 *    is the public profile address, which the user types in and GitHub does not verify);
 *  - `/user/orgs` and `/user/teams`, only when a rule needs them: `read:org` is requested
 *    only then, so a gateway without org or team rules asks for no more than `read:user
 *    user:email`.
 *
 * The subject is GitHub's numeric user id (`github:<id>`): logins can be renamed and then
 * taken by someone else, ids cannot. The OAuth app's token does not expire; it is kept sealed
 * with the account so that each refresh of a gateway token re-reads the user's orgs and
 * teams ({@link GitHubLoginProvider.recheck}): removed from the org, refused at the next
 * refresh. Org and team names are compared lowercased (GitHub treats them so).
 *
 * Organizations that restrict OAuth app access hide their membership from apps they have not
 * approved: an org owner must approve the gateway's OAuth app (docs/login-providers.md).
 */
import type { Agent as HttpsAgent } from 'node:https';
import type { VerifyCallback } from 'passport-oauth2';
import {
  Strategy as GitHubStrategy,
  type Profile,
  type StrategyOptions as GitHubStrategyOptions,
} from 'passport-github2';
import type { GitHubLoginConfig } from '../../config/schema.js';
import type { FetchFunction } from '../../net/outbound-fetch.js';
import { namespacedGroups } from '../../policy/groups.js';
import type { Identity } from '../accounts.js';
import { finishStrategy, requestStateStore, startStrategy } from './passport-adapter.js';
import {
  UpstreamRefused,
  UpstreamUnavailable,
  type LoginProvider,
  type PendingUpstreamLogin,
  type UpstreamLogin,
  type UpstreamSession,
} from './provider.js';

const API_TIMEOUT_MS = 10_000;
/** 100 per page (GitHub's maximum) × 10 pages: a user in more than 1 000 orgs is cut off. */
const PAGE_SIZE = 100;
const MAX_PAGES = 10;

interface GitHubUser {
  id: number;
  login: string;
  name?: string | null;
}
interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}
interface GitHubOrg {
  login: string;
}
interface GitHubTeam {
  slug: string;
  organization: { login: string };
}

export class GitHubLoginProvider implements LoginProvider {
  readonly id = 'github';
  readonly name: string;
  private readonly strategy: GitHubStrategy;
  private readonly scopes: string[];

  constructor(
    private readonly settings: GitHubLoginConfig,
    readonly redirectUri: string,
    private readonly fetch: FetchFunction,
    /** Whether any rule looks at orgs or teams: only then is `read:org` requested. */
    private readonly readsMembership: boolean,
    httpsAgent?: HttpsAgent,
  ) {
    this.name = settings.name;
    this.scopes = ['read:user', 'user:email', ...(readsMembership ? ['read:org'] : [])];
    this.strategy = new GitHubStrategy(
      // The typings know `state` only as a string; passport-oauth2 takes `true` with a store.
      {
        clientID: settings.clientId,
        clientSecret: settings.clientSecret,
        callbackURL: redirectUri,
        authorizationURL: settings.authorizationUrl,
        tokenURL: settings.tokenUrl,
        userProfileURL: `${settings.apiUrl}/user`,
        userAgent: 'mcp-gateway',
        // No `scope` here: passport-github2 would then fetch /user/emails itself and parse
        // the answer outside any try/catch. The scope is passed per request instead.
        state: true,
        pkce: true,
        store: requestStateStore,
      } as unknown as GitHubStrategyOptions,
      // The verify callback: keep the token for the identity reads below.
      (accessToken: string, _refreshToken: string, profile: Profile, done: VerifyCallback) =>
        done(null, { accessToken, profile }),
    );
    if (httpsAgent && new URL(settings.tokenUrl).protocol === 'https:') {
      (
        this.strategy as unknown as { _oauth2: { setAgent(agent: HttpsAgent): void } }
      )._oauth2.setAgent(httpsAgent);
    }
  }

  start(): Promise<{ url: URL; pending: PendingUpstreamLogin }> {
    return startStrategy(this.strategy, { scope: this.scopes });
  }

  async finish(callbackUrl: URL, pending: PendingUpstreamLogin): Promise<UpstreamLogin> {
    const { accessToken } = (await finishStrategy(this.strategy, callbackUrl, pending)) as {
      accessToken: string;
    };
    return this.readIdentity(accessToken);
  }

  recheck(session: UpstreamSession): Promise<UpstreamLogin> {
    if (!session.accessToken) throw new UpstreamRefused('no GitHub token was kept');
    return this.readIdentity(session.accessToken);
  }

  private async readIdentity(accessToken: string): Promise<UpstreamLogin> {
    const user = await this.api<GitHubUser>(accessToken, '/user');
    if (typeof user.id !== 'number' || typeof user.login !== 'string') {
      throw new UpstreamUnavailable('GitHub returned a user without id or login');
    }
    const emails = await this.api<GitHubEmail[]>(accessToken, '/user/emails');
    const primary = Array.isArray(emails) ? emails.find((entry) => entry.primary) : undefined;
    let orgs: string[] = [];
    let teams: string[] = [];
    if (this.readsMembership) {
      orgs = (await this.pages<GitHubOrg>(accessToken, '/user/orgs')).map((org) =>
        org.login.toLowerCase(),
      );
      teams = (await this.pages<GitHubTeam>(accessToken, '/user/teams')).map((team) =>
        `${team.organization.login}/${team.slug}`.toLowerCase(),
      );
    }
    return {
      identity: {
        sub: `github:${user.id}`,
        provider: this.id,
        email: primary?.email.toLowerCase(),
        emailVerified: primary?.verified === true,
        name: user.name || user.login,
        githubLogin: user.login,
        githubOrgs: orgs,
        githubTeams: teams,
        // Orgs and teams double as groups, namespaced like every provider's (`github:acme`,
        // `github:acme/platform`): anyone can create a GitHub org named like a company's IdP
        // group, and `github:` keeps it from matching `corp:admins`.
        groups: namespacedGroups(this.id, [...orgs, ...teams]),
      } satisfies Identity,
      session: { accessToken },
    };
  }

  private async pages<T>(accessToken: string, path: string): Promise<T[]> {
    const all: T[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const items = await this.api<T[]>(accessToken, `${path}?per_page=${PAGE_SIZE}&page=${page}`);
      if (!Array.isArray(items)) throw new UpstreamUnavailable(`GitHub ${path} is not a list`);
      all.push(...items);
      if (items.length < PAGE_SIZE) break;
    }
    return all;
  }

  private async api<T>(accessToken: string, path: string): Promise<T> {
    let response: Response;
    try {
      response = await this.fetch(`${this.settings.apiUrl}${path}`, {
        headers: {
          authorization: `Bearer ${accessToken}`,
          accept: 'application/vnd.github+json',
          'user-agent': 'mcp-gateway',
          'x-github-api-version': '2022-11-28',
        },
        redirect: 'error',
        signal: AbortSignal.timeout(API_TIMEOUT_MS),
      });
    } catch (error) {
      throw new UpstreamUnavailable(`GitHub ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (response.status === 401) {
      await response.body?.cancel();
      throw new UpstreamRefused(
        'GitHub no longer accepts the token (revoked or the app was removed)',
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new UpstreamUnavailable(`GitHub ${path} answered ${response.status}`);
    }
    try {
      return (await response.json()) as T;
    } catch (error) {
      throw new UpstreamUnavailable(`GitHub ${path} returned malformed JSON`, { cause: error });
    }
  }
}
