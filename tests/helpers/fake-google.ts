/**
 * Google's OAuth 2.0 / OpenID Connect endpoints for tests of the gateway's Google login:
 * discovery, authorization, token (code and refresh grants) and userinfo, served over plain
 * HTTP on a free loopback port (the discovery `issuer` is that base URL).
 *
 * Written from Google's public docs ("Using OAuth 2.0 for Web Server Applications",
 * "OpenID Connect") rather than from the gateway's code, so that a gateway relying on
 * something Google does not do fails here too:
 *  - the redirect URI must match the registered one exactly, at authorization (else an error
 *    page at Google, no redirect) and again at the code exchange;
 *  - PKCE `S256` and `plain` (Google's default when `code_challenge_method` is left out),
 *    checked with a real SHA-256;
 *  - a refresh token only for `access_type=offline`, and a refresh answers a new access token
 *    without a new refresh token;
 *  - the token's `scope` lists the granted scopes as Google spells them (`email` and
 *    `profile` become their `https://www.googleapis.com/auth/userinfo.*` URLs), and userinfo
 *    returns only the claims of those scopes;
 *  - `hd` is only a hint at authorization: the account's Workspace domain comes back in
 *    userinfo (and only there), absent for consumer accounts.
 *
 * No ID tokens are issued (the JWKS is empty): the gateway reads userinfo instead.
 *
 * No login page: the authorization request signs in whichever user {@link FakeGoogle.loginAs}
 * chose and consents at once (or cancels, for `null`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOn, onFreePort } from './ports.js';
import {
  parseParams,
  basicCredentials,
  sameSecret,
  s256,
  randomToken,
  sendJson,
  sendText,
  answerWith,
  receive,
  type RecordedRequest,
} from './fake-http.js';

export interface FakeGoogleUser {
  sub: string;
  email: string;
  email_verified: boolean;
  name?: string;
  /** Workspace domain; absent for consumer accounts. */
  hd?: string;
}

export type FakeGoogleRequest = RecordedRequest;

export interface FakeGoogle {
  /** http://127.0.0.1:PORT (also the `issuer` in discovery) */
  url: string;
  /** `${url}/o/oauth2/v2/auth` */
  authorizationUrl: string;
  /** `${url}/token` */
  tokenUrl: string;
  /** `${url}/v1/userinfo` */
  userinfoUrl: string;
  /**
   * The account the next authorization signs in as; null = the user cancels (redirect with
   * error=access_denied). Throws for an unknown address.
   */
  loginAs(email: string | null): void;
  /** Account suspended/deleted by the Workspace admin: its refresh tokens answer invalid_grant, userinfo 401. */
  suspend(email: string): void;
  /** Every request received, oldest first. */
  requests: FakeGoogleRequest[];
  /** Query parameters of the last /o/oauth2/v2/auth request. */
  lastAuthorization: URLSearchParams | undefined;
  /** Closes the server and its open connections. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartFakeGoogleOptions {
  clientId: string;
  clientSecret: string;
  /** The OAuth client's authorized redirect URI. */
  redirectUri: string;
  users: FakeGoogleUser[];
}

const CODE_TTL_MS = 10 * 60 * 1000;
/** Google's access tokens live an hour; the answer says 3599 seconds. */
const ACCESS_TOKEN_TTL_S = 3599;
const EMAIL_SCOPE = 'https://www.googleapis.com/auth/userinfo.email';
const PROFILE_SCOPE = 'https://www.googleapis.com/auth/userinfo.profile';
/** The short scope names Google accepts, and how it spells them in the token answer. */
const SCOPE_ALIASES: Record<string, string> = { email: EMAIL_SCOPE, profile: PROFILE_SCOPE };
const REALM = 'Bearer realm="https://accounts.google.com/"';

interface IssuedCode {
  email: string;
  scopes: string[];
  redirectUri: string;
  codeChallenge: string | undefined;
  codeChallengeMethod: 'plain' | 'S256';
  offline: boolean;
  expiresAt: number;
}

interface IssuedAccessToken {
  email: string;
  scopes: string[];
  expiresAt: number;
}

interface IssuedRefreshToken {
  email: string;
  scopes: string[];
}

/** A token endpoint error: its HTTP status and Google's JSON body. */
class TokenError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(`${error}: ${description}`);
  }
}

/** Starts the fake; resolves once it listens. */
export function startFakeGoogle(options: StartFakeGoogleOptions): Promise<FakeGoogle> {
  return onFreePort((port) => launch(options, port));
}

async function launch(options: StartFakeGoogleOptions, port: number): Promise<FakeGoogle> {
  const url = `http://127.0.0.1:${port}`;
  const authorizationUrl = `${url}/o/oauth2/v2/auth`;
  const tokenUrl = `${url}/token`;
  const userinfoUrl = `${url}/v1/userinfo`;
  const users = new Map(options.users.map((user) => [user.email, user]));
  const suspended = new Set<string>();
  const codes = new Map<string, IssuedCode>();
  const accessTokens = new Map<string, IssuedAccessToken>();
  const refreshTokens = new Map<string, IssuedRefreshToken>();
  const requests: FakeGoogleRequest[] = [];
  let currentEmail: string | null = null;
  let lastAuthorization: URLSearchParams | undefined;

  function userOrThrow(email: string): FakeGoogleUser {
    const user = users.get(email);
    if (user === undefined) throw new Error(`fake Google: unknown user ${email}`);
    return user;
  }

  const discovery = {
    issuer: url,
    authorization_endpoint: authorizationUrl,
    token_endpoint: tokenUrl,
    userinfo_endpoint: userinfoUrl,
    jwks_uri: `${url}/oauth2/v3/certs`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    scopes_supported: ['openid', 'email', 'profile'],
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    claims_supported: ['sub', 'email', 'email_verified', 'name', 'given_name', 'picture', 'hd'],
    code_challenge_methods_supported: ['plain', 'S256'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
  };

  function authorize(query: URLSearchParams, res: ServerResponse): void {
    lastAuthorization = query;
    // Errors about the client or its redirect URI stay on Google's page: redirecting to an
    // unverified URI would make Google an open redirector.
    if (query.get('client_id') !== options.clientId) {
      sendText(res, 401, 'Error 401: invalid_client\nThe OAuth client was not found.');
      return;
    }
    const redirectUri = query.get('redirect_uri');
    if (redirectUri !== options.redirectUri) {
      sendText(
        res,
        400,
        "Error 400: redirect_uri_mismatch\nYou can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy.",
      );
      return;
    }
    const back = new URL(redirectUri);
    const state = query.get('state');
    const redirect = (params: Record<string, string>): void => {
      for (const [name, value] of Object.entries(params)) back.searchParams.set(name, value);
      if (state !== null) back.searchParams.set('state', state);
      res.writeHead(302, { location: back.href });
      res.end();
    };
    const problem = checkAuthorizationParameters(query);
    if (problem !== undefined) {
      redirect(problem);
      return;
    }
    const user = currentEmail === null ? undefined : users.get(currentEmail);
    // A suspended account cannot sign in either: the user ends up cancelling.
    if (user === undefined || suspended.has(user.email)) {
      redirect({ error: 'access_denied' });
      return;
    }
    const scopes = grantedScopes(query.get('scope') ?? '');
    const code = `4/0${randomToken(32)}`;
    const method = query.get('code_challenge_method') === 'S256' ? 'S256' : 'plain';
    codes.set(code, {
      email: user.email,
      scopes,
      redirectUri,
      codeChallenge: query.get('code_challenge') ?? undefined,
      codeChallengeMethod: method,
      offline: query.get('access_type') === 'offline',
      expiresAt: Date.now() + CODE_TTL_MS,
    });
    // Google also tells the client the granted scopes and the account's domain here.
    redirect({
      code,
      scope: scopes.join(' '),
      authuser: '0',
      ...(user.hd !== undefined ? { hd: user.hd } : {}),
    });
  }

  function token(req: IncomingMessage, body: string): Record<string, unknown> {
    const params = parseParams(req, body);
    const basic = basicCredentials(req.headers.authorization);
    const clientId = basic?.id ?? params.get('client_id');
    const clientSecret = basic?.secret ?? params.get('client_secret') ?? '';
    if (clientId === null) {
      throw new TokenError(400, 'invalid_request', 'Could not determine client ID from request.');
    }
    if (clientId !== options.clientId) {
      throw new TokenError(401, 'invalid_client', 'The OAuth client was not found.');
    }
    if (!sameSecret(clientSecret, options.clientSecret)) {
      throw new TokenError(401, 'invalid_client', 'Unauthorized');
    }
    const grantType = params.get('grant_type');
    if (grantType === 'authorization_code') return redeemCode(params);
    if (grantType === 'refresh_token') return refresh(params);
    if (grantType === null) {
      throw new TokenError(400, 'invalid_request', 'Missing required parameter: grant_type');
    }
    throw new TokenError(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType}`);
  }

  function redeemCode(params: URLSearchParams): Record<string, unknown> {
    const code = params.get('code');
    if (code === null)
      throw new TokenError(400, 'invalid_request', 'Missing required parameter: code');
    const issued = codes.get(code);
    // Single use: the first attempt spends the code, whether or not it succeeds.
    codes.delete(code);
    if (issued === undefined || issued.expiresAt <= Date.now() || suspended.has(issued.email)) {
      throw new TokenError(400, 'invalid_grant', 'Bad Request');
    }
    const redirectUri = params.get('redirect_uri');
    if (redirectUri === null) {
      throw new TokenError(400, 'invalid_request', 'Missing required parameter: redirect_uri');
    }
    if (redirectUri !== issued.redirectUri) {
      throw new TokenError(400, 'redirect_uri_mismatch', 'Bad Request');
    }
    if (issued.codeChallenge !== undefined) {
      const verifier = params.get('code_verifier');
      if (verifier === null) throw new TokenError(400, 'invalid_grant', 'Missing code verifier.');
      const computed = issued.codeChallengeMethod === 'S256' ? s256(verifier) : verifier;
      if (computed !== issued.codeChallenge) {
        throw new TokenError(400, 'invalid_grant', 'Invalid code verifier.');
      }
    }
    const answer = issueAccessToken(issued.email, issued.scopes);
    if (!issued.offline) return answer;
    const refreshToken = `1//0${randomToken(48)}`;
    refreshTokens.set(refreshToken, { email: issued.email, scopes: issued.scopes });
    return { ...answer, refresh_token: refreshToken };
  }

  function refresh(params: URLSearchParams): Record<string, unknown> {
    const refreshToken = params.get('refresh_token');
    if (refreshToken === null) {
      throw new TokenError(400, 'invalid_request', 'Missing required parameter: refresh_token');
    }
    const issued = refreshTokens.get(refreshToken);
    if (issued === undefined || suspended.has(issued.email)) {
      throw new TokenError(400, 'invalid_grant', 'Token has been expired or revoked.');
    }
    return issueAccessToken(issued.email, issued.scopes);
  }

  function issueAccessToken(email: string, scopes: string[]): Record<string, unknown> {
    const accessToken = `ya29.${randomToken(48)}`;
    accessTokens.set(accessToken, {
      email,
      scopes,
      expiresAt: Date.now() + ACCESS_TOKEN_TTL_S * 1000,
    });
    return {
      access_token: accessToken,
      expires_in: ACCESS_TOKEN_TTL_S,
      scope: scopes.join(' '),
      token_type: 'Bearer',
    };
  }

  function userinfo(req: IncomingMessage, res: ServerResponse): void {
    const match = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1]) {
      sendJson(
        res,
        401,
        {
          error: 'invalid_request',
          error_description:
            'Request is missing required authentication credential. Expected OAuth 2 access token.',
        },
        { 'www-authenticate': REALM },
      );
      return;
    }
    const issued = accessTokens.get(match[1]);
    const user = issued && users.get(issued.email);
    if (
      issued === undefined ||
      user === undefined ||
      issued.expiresAt <= Date.now() ||
      suspended.has(user.email)
    ) {
      sendJson(
        res,
        401,
        { error: 'invalid_token', error_description: 'Invalid Credentials' },
        { 'www-authenticate': `${REALM}, error="invalid_token"` },
      );
      return;
    }
    sendJson(res, 200, userinfoClaims(user, issued.scopes, url));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body, requestUrl, path } = await receive(req, url, requests);
    const route = `${req.method} ${path}`;
    if (route === 'GET /.well-known/openid-configuration') {
      sendJson(res, 200, discovery);
    } else if (route === 'GET /oauth2/v3/certs') {
      sendJson(res, 200, { keys: [] });
    } else if (route === 'GET /o/oauth2/v2/auth') {
      authorize(requestUrl.searchParams, res);
    } else if (route === 'POST /token') {
      sendTokenAnswer(res, () => token(req, body));
    } else if (route === 'GET /v1/userinfo' || route === 'POST /v1/userinfo') {
      userinfo(req, res);
    } else {
      sendText(res, 404, 'Not Found');
    }
  }

  const server = createServer(answerWith(handle, 'fake Google'));
  await listenOn(server, port);

  let stopped: Promise<void> | undefined;
  return {
    url,
    authorizationUrl,
    tokenUrl,
    userinfoUrl,
    loginAs(email) {
      if (email !== null) userOrThrow(email);
      currentEmail = email;
    },
    suspend(email) {
      userOrThrow(email);
      suspended.add(email);
    },
    requests,
    get lastAuthorization() {
      return lastAuthorization;
    },
    stop() {
      stopped ??= closeServer(server);
      return stopped;
    },
  };
}

/**
 * The checks after the redirect URI is known good; a failure goes back to the client as an
 * `error` parameter (RFC 6749 §4.1.2.1).
 */
function checkAuthorizationParameters(query: URLSearchParams): Record<string, string> | undefined {
  const invalid = (description: string) => ({
    error: 'invalid_request',
    error_description: description,
  });
  if (query.get('response_type') !== 'code') {
    return {
      error: 'unsupported_response_type',
      error_description: `Unsupported response_type: ${query.get('response_type') ?? ''}`,
    };
  }
  if (!query.get('scope')) return invalid('Missing required parameter: scope');
  const accessType = query.get('access_type');
  if (accessType !== null && accessType !== 'online' && accessType !== 'offline') {
    return invalid(`Invalid access_type: ${accessType}`);
  }
  const challenge = query.get('code_challenge');
  const method = query.get('code_challenge_method');
  if (method !== null && challenge === null) {
    return invalid('code_challenge_method requires a code_challenge');
  }
  if (method !== null && method !== 'plain' && method !== 'S256') {
    return invalid(`Invalid code_challenge_method: ${method}`);
  }
  if (challenge !== null && !/^[A-Za-z0-9._~-]{43,128}$/.test(challenge)) {
    return invalid('Invalid code_challenge');
  }
  return undefined;
}

/** The requested scopes as Google grants them: short names spelled out, duplicates dropped. */
function grantedScopes(scope: string): string[] {
  const scopes = scope.split(' ').filter((entry) => entry !== '');
  return [...new Set(scopes.map((entry) => SCOPE_ALIASES[entry] ?? entry))];
}

/** Userinfo: `sub` always, the address with `email`, the name and picture with `profile`. */
function userinfoClaims(
  user: FakeGoogleUser,
  scopes: string[],
  baseUrl: string,
): Record<string, unknown> {
  const claims: Record<string, unknown> = { sub: user.sub };
  if (scopes.includes(PROFILE_SCOPE)) {
    if (user.name !== undefined) {
      claims.name = user.name;
      claims.given_name = user.name.split(' ')[0];
    }
    claims.picture = `${baseUrl}/avatars/${user.sub}`;
  }
  if (scopes.includes(EMAIL_SCOPE)) {
    claims.email = user.email;
    claims.email_verified = user.email_verified;
    if (user.hd !== undefined) claims.hd = user.hd;
  }
  return claims;
}

/** Token endpoint answers: JSON, never cached, errors with their status. */
function sendTokenAnswer(res: ServerResponse, answer: () => Record<string, unknown>): void {
  const headers = { 'cache-control': 'no-cache, no-store, max-age=0', pragma: 'no-cache' };
  try {
    sendJson(res, 200, answer(), headers);
  } catch (error) {
    if (!(error instanceof TokenError)) throw error;
    sendJson(
      res,
      error.status,
      { error: error.error, error_description: error.description },
      headers,
    );
  }
}
