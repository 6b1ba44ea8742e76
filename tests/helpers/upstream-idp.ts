/**
 * A company's identity provider, for tests of the gateway's upstream OIDC login: a second,
 * real oidc-provider instance served over HTTPS with a {@link TestCa} certificate on a free
 * loopback port (issuer `https://localhost:PORT`).
 *
 * Why a real OpenID Provider and not a stub: the gateway's login goes through openid-client
 * (discovery, PKCE, `state`/`nonce`, ID token signature and claim checks, TLS verification
 * against `tls.caFiles`); a stub that only returns canned JSON would pass where a real IdP
 * rejects, e.g. a missing `code_verifier`, a wrong `redirect_uri` or an untrusted certificate.
 *
 * Shape of the IdP:
 *  - one confidential client (`client_secret_post` registered; oidc-provider also accepts
 *    `client_secret_basic` for it), `response_types: ['code']`, PKCE required, a refresh
 *    token with every login; the ID token of a refresh carries the user's claims as they are
 *    then (tests change `users[id].groups`, or delete a user to disable them);
 *  - scopes `openid email profile` (and `groups`); with `conformIdTokenClaims: false` the
 *    ID token itself carries `email`, `email_verified`, `name` and `groups` (the `profile`
 *    scope includes `groups`, so a plain `openid email profile` request gets them);
 *  - ID tokens signed RS256 with a key generated per instance;
 *  - no login form: `/interaction/:uid` signs in whichever user `loginAs()` picked last and
 *    grants every OIDC scope and claim the consent prompt asks for. Until `loginAs()` is
 *    called, the login ends with `access_denied` at the client's redirect URI.
 *
 * The browser side (cookies, redirects) is the caller's: the IdP sets its interaction and
 * session cookies as `Secure` (the socket is TLS), so drive it with a real browser or a
 * cookie jar over https. The IdP keeps an SSO session: a second login in the same browser
 * for the same user needs no login step (so `logins` does not grow). When `loginAs()` has
 * picked a different user, the login step runs again and oidc-provider first ends the old
 * session through a self-submitting POST form (`/session/end/confirm`): a real browser
 * submits it; a fetch-based driver must POST its hidden fields (see `followToRedirectUri` in
 * helpers.test.ts) or use a fresh cookie jar per login.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, {
  interactionPolicy,
  type Adapter,
  type AdapterPayload,
  type Configuration,
  type InteractionResults,
} from 'oidc-provider';
import { listenOn, onFreePort } from './ports.js';
import type { TestCa } from './test-ca.js';

export interface UpstreamUser {
  email: string;
  /** Default `true`. */
  email_verified?: boolean;
  name?: string;
  groups?: string[];
}

export interface StartUpstreamIdpOptions {
  /** The server certificate (for `localhost`) and key come from here. */
  ca: TestCa;
  clientId: string;
  clientSecret: string;
  /** The gateway's callback URL(s), e.g. `https://gateway.test/login/callback/corp`. */
  redirectUris: string[];
  /** By account id (the ID token's `sub`). */
  users: Record<string, UpstreamUser>;
}

export interface UpstreamIdp {
  /** `https://localhost:PORT`, no trailing slash; discovery is at `/.well-known/openid-configuration`. */
  issuer: string;
  /** The user the next login signs in as (until changed). Throws for an unknown user id. */
  loginAs(userId: string): void;
  /** How many logins have completed (login interactions finished for a user). */
  readonly logins: number;
  /** Closes the server and its open connections. Safe to call more than once. */
  stop(): Promise<void>;
}

/** The models `revokeByGrantId` removes (as oidc-provider's own memory adapter does). */
const GRANT_MEMBERS = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

/**
 * oidc-provider's own in-memory adapter prints a "development-only" warning and shares one
 * process-wide store between instances; this one is per IdP and silent. Expiry is ignored:
 * an IdP lives for one test file.
 */
function createMemoryAdapterFactory(): (name: string) => Adapter {
  const store = new Map<string, AdapterPayload>();
  const uidIndex = new Map<string, string>();
  const userCodeIndex = new Map<string, string>();
  return (model: string): Adapter => {
    const key = (id: string): string => `${model}:${id}`;
    return {
      async upsert(id, payload) {
        store.set(key(id), payload);
        if (payload.uid !== undefined) uidIndex.set(payload.uid, id);
        if (payload.userCode !== undefined) userCodeIndex.set(payload.userCode, id);
      },
      async find(id) {
        return store.get(key(id));
      },
      async findByUid(uid) {
        const id = uidIndex.get(uid);
        return id === undefined ? undefined : store.get(key(id));
      },
      async findByUserCode(userCode) {
        const id = userCodeIndex.get(userCode);
        return id === undefined ? undefined : store.get(key(id));
      },
      async consume(id) {
        const payload = store.get(key(id));
        if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        store.delete(key(id));
      },
      async revokeByGrantId(grantId) {
        // Only tokens and codes belong to a grant; an Interaction also carries `grantId` but
        // must survive (the logout before a user switch revokes grants mid-interaction).
        for (const [entryKey, payload] of store) {
          const entryModel = entryKey.slice(0, entryKey.indexOf(':'));
          if (payload.grantId === grantId && GRANT_MEMBERS.has(entryModel)) store.delete(entryKey);
        }
      },
    };
  };
}

function accountClaims(
  userId: string,
  user: UpstreamUser,
): { sub: string } & Record<string, unknown> {
  const claims: { sub: string } & Record<string, unknown> = {
    sub: userId,
    email: user.email,
    email_verified: user.email_verified ?? true,
  };
  if (user.name !== undefined) claims.name = user.name;
  if (user.groups !== undefined) claims.groups = user.groups;
  return claims;
}

/** Starts the IdP; resolves once it listens. */
export function startUpstreamIdp(options: StartUpstreamIdpOptions): Promise<UpstreamIdp> {
  return onFreePort((port) => launch(options, port));
}

async function launch(options: StartUpstreamIdpOptions, port: number): Promise<UpstreamIdp> {
  const { users } = options;
  const issuer = `https://localhost:${port}`;
  let currentUser: string | undefined;
  let logins = 0;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingJwk = {
    ...(await exportJWK(privateKey)),
    kid: randomUUID(),
    alg: 'RS256',
    use: 'sig',
  };

  // A browser keeps its IdP session cookie between logins; without this check a second login
  // in the same browser would silently reuse the first user's session after loginAs() changed.
  const policy = interactionPolicy.base();
  policy
    .get('login')!
    .checks.add(
      new interactionPolicy.Check(
        'test_user_switched',
        'loginAs() chose a different user than the session holds',
        'login_required',
        (ctx) =>
          currentUser !== undefined &&
          ctx.oidc.session?.accountId !== undefined &&
          ctx.oidc.session.accountId !== currentUser,
      ),
    );

  const configuration: Configuration = {
    adapter: createMemoryAdapterFactory(),
    clients: [
      {
        client_id: options.clientId,
        client_secret: options.clientSecret,
        redirect_uris: options.redirectUris,
        response_types: ['code'],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    // A refresh token for every login, as Keycloak gives by default (Okta and Entra ID give
    // one for `offline_access`): the gateway keeps it to re-read the user at its refreshes.
    issueRefreshToken: () => true,
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'groups'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { policy, url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Explicit lifetimes (oidc-provider prints a notice for each default it falls back to).
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      Grant: 3600,
      IdToken: 600,
      Interaction: 600,
      RefreshToken: 3600,
      Session: 3600,
    },
    async findAccount(_ctx, id) {
      const user = users[id];
      if (user === undefined) return undefined;
      return { accountId: id, claims: () => accountClaims(id, user) };
    },
  };
  const provider = new Provider(issuer, configuration);
  const providerCallback = provider.callback();

  /** Finishes the pending interaction without any page: login as `currentUser`, then consent. */
  async function interact(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    const finish = (result: InteractionResults): Promise<void> =>
      provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });

    if (details.prompt.name === 'login') {
      if (currentUser === undefined) {
        await finish({
          error: 'access_denied',
          error_description: 'upstream test IdP: no user chosen (call loginAs first)',
        });
        return;
      }
      await finish({ login: { accountId: currentUser } });
      logins += 1;
      return;
    }

    if (details.prompt.name === 'consent') {
      const accountId = details.session?.accountId;
      if (accountId === undefined) throw new Error('consent prompt without a session');
      const grant =
        details.grantId !== undefined
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId, clientId: String(details.params.client_id) });
      if (grant === undefined) throw new Error(`grant ${details.grantId} not found`);
      const missing = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await finish({ consent: { grantId } });
      return;
    }

    throw new Error(`unexpected prompt ${details.prompt.name}`);
  }

  const server: Server = createServer(
    { cert: options.ca.cert, key: options.ca.key },
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (/^\/interaction\/[^/]+$/.test(path)) {
        interact(req, res).catch((error: unknown) => {
          if (res.headersSent) {
            res.destroy();
            return;
          }
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(`upstream test IdP interaction failed: ${(error as Error).message}`);
        });
        return;
      }
      void providerCallback(req, res);
    },
  );

  await listenOn(server, port);

  let stopped: Promise<void> | undefined;
  return {
    issuer,
    loginAs(userId: string) {
      if (users[userId] === undefined) throw new Error(`unknown upstream user ${userId}`);
      currentUser = userId;
    },
    get logins() {
      return logins;
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}
