/**
 * GitHub for tests of the gateway's GitHub login: an OAuth app's authorization and token
 * endpoints and the four REST API calls the gateway makes, served over plain HTTP on a free
 * loopback port in the GitHub Enterprise Server layout (`/login/oauth/*`, API under
 * `/api/v3`), so the gateway's configurable URLs point straight at it.
 *
 * Written from GitHub's public docs ("Authorizing OAuth apps", "Troubleshooting OAuth app
 * access token request errors", REST API reference) rather than from the gateway's code, so
 * that a gateway relying on something GitHub does not do fails here too:
 *  - the token endpoint answers errors with HTTP 200 and an `error` field, and answers
 *    form-encoded unless the `Accept` header asks for JSON;
 *  - PKCE is S256 only (GitHub refuses `plain`), checked with a real SHA-256;
 *  - the token carries exactly the scopes asked for at authorization (GitHub grants all of
 *    them: the user sees them on the consent page and accepts or cancels), and each API call
 *    checks the scope it needs (`/user/emails` without `user:email` is a 404, as at GitHub);
 *  - `/user/orgs` and `/user/teams` are paginated (`per_page`, `page`, `Link` header);
 *  - the API refuses requests without a `User-Agent` header.
 *
 * No login page: the authorization request signs in whichever user {@link FakeGitHub.loginAs}
 * chose and approves at once (or cancels, for `null`). Memberships are read from the user
 * record at each call, so {@link FakeGitHub.setMembership} also changes what tokens issued
 * earlier see, like a removal from an org at GitHub.
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

export interface FakeGitHubUser {
  id: number;
  login: string;
  name?: string;
  /** As GET /user/emails returns them. */
  emails: { email: string; primary: boolean; verified: boolean }[];
  /** Organization logins the user is a member of. */
  orgs?: string[];
  /** Teams: org login + team slug. */
  teams?: { org: string; slug: string }[];
}

export type FakeGitHubRequest = RecordedRequest;

export interface FakeGitHub {
  /** Base URL, http://127.0.0.1:PORT */
  url: string;
  /** `${url}/login/oauth/authorize` */
  authorizationUrl: string;
  /** `${url}/login/oauth/access_token` */
  tokenUrl: string;
  /** `${url}/api/v3` (GitHub Enterprise Server layout) */
  apiUrl: string;
  /**
   * The user the next authorization signs in as; null = the user clicks "Cancel" (redirect
   * with error=access_denied). Throws for an unknown login.
   */
  loginAs(login: string | null): void;
  /** Replace a user's orgs/teams (membership removed/added at GitHub). */
  setMembership(
    login: string,
    membership: { orgs?: string[]; teams?: { org: string; slug: string }[] },
  ): void;
  /** Revoke every token issued for this user (API answers 401 Bad credentials). */
  revokeTokens(login: string): void;
  /** Make every API call answer 503 (GitHub down) while true. */
  setApiDown(down: boolean): void;
  /** Every request received, oldest first. */
  requests: FakeGitHubRequest[];
  /** Query parameters of the last /login/oauth/authorize request. */
  lastAuthorization: URLSearchParams | undefined;
  /** Closes the server and its open connections. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface StartFakeGitHubOptions {
  clientId: string;
  clientSecret: string;
  /** The OAuth app's registered callback URL. */
  redirectUri: string;
  users: FakeGitHubUser[];
}

/** "The temporary code will expire after 10 minutes." */
const CODE_TTL_MS = 10 * 60 * 1000;
const DEFAULT_PER_PAGE = 30;
const MAX_PER_PAGE = 100;
const API_PREFIX = '/api/v3';
const DOCS = 'https://docs.github.com/rest';

/**
 * Scopes that include others (GitHub's scope hierarchy): a token with `user` may read the
 * addresses, one with `admin:org` the memberships.
 */
const IMPLIED_SCOPES: Record<string, string[]> = {
  user: ['read:user', 'user:email', 'user:follow'],
  'admin:org': ['write:org', 'read:org'],
  'write:org': ['read:org'],
};

interface IssuedCode {
  login: string;
  scopes: string[];
  redirectUri: string;
  /** S256 challenge, when the authorization request sent one. */
  codeChallenge: string | undefined;
  expiresAt: number;
}

interface IssuedToken {
  login: string;
  scopes: string[];
}

type ApiAnswer = { status: number; body: unknown; headers?: Record<string, string> };

/** Starts the fake; resolves once it listens. */
export function startFakeGitHub(options: StartFakeGitHubOptions): Promise<FakeGitHub> {
  return onFreePort((port) => launch(options, port));
}

async function launch(options: StartFakeGitHubOptions, port: number): Promise<FakeGitHub> {
  const url = `http://127.0.0.1:${port}`;
  const apiUrl = `${url}${API_PREFIX}`;
  // Copies: setMembership() must not change the objects the test passed in.
  const users = new Map(
    options.users.map((user) => [
      user.login,
      { ...user, orgs: [...(user.orgs ?? [])], teams: [...(user.teams ?? [])] },
    ]),
  );
  const codes = new Map<string, IssuedCode>();
  const tokens = new Map<string, IssuedToken>();
  const requests: FakeGitHubRequest[] = [];
  const ids = numericIds();
  let currentLogin: string | null = null;
  let apiDown = false;
  let lastAuthorization: URLSearchParams | undefined;

  function userOrThrow(login: string) {
    const user = users.get(login);
    if (user === undefined) throw new Error(`fake GitHub: unknown user ${login}`);
    return user;
  }

  function authorize(query: URLSearchParams, res: ServerResponse): void {
    lastAuthorization = query;
    if (query.get('client_id') !== options.clientId) {
      sendText(res, 400, 'fake GitHub: unknown client_id (the OAuth app does not exist)');
      return;
    }
    // GitHub falls back to the registered callback URL when redirect_uri is left out.
    const redirectUri = query.get('redirect_uri') ?? options.redirectUri;
    if (redirectUri !== options.redirectUri) {
      sendText(res, 400, 'fake GitHub: redirect_uri_mismatch (not the registered callback URL)');
      return;
    }
    const pkceProblem = checkPkceParameters(query);
    if (pkceProblem !== undefined) {
      sendText(res, 400, `fake GitHub: ${pkceProblem}`);
      return;
    }
    const codeChallenge = query.get('code_challenge') ?? undefined;
    const back = new URL(redirectUri);
    const state = query.get('state');
    if (currentLogin === null) {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user has denied your application access.');
      back.searchParams.set(
        'error_uri',
        '/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied',
      );
    } else {
      const code = randomToken(15);
      codes.set(code, {
        login: currentLogin,
        scopes: parseScopes(query.get('scope')),
        redirectUri,
        codeChallenge,
        expiresAt: Date.now() + CODE_TTL_MS,
      });
      back.searchParams.set('code', code);
    }
    if (state !== null) back.searchParams.set('state', state);
    res.writeHead(302, { location: back.href });
    res.end();
  }

  /** The code exchange; every error is an HTTP 200 with an `error` field, as at GitHub. */
  function accessToken(req: IncomingMessage, body: string, res: ServerResponse): void {
    const params = parseParams(req, body);
    const answer = (fields: Record<string, string>) => sendTokenAnswer(req, res, fields);
    const client = basicCredentials(req.headers.authorization) ?? {
      id: params.get('client_id') ?? '',
      secret: params.get('client_secret') ?? '',
    };
    if (client.id !== options.clientId || !sameSecret(client.secret, options.clientSecret)) {
      answer(githubError('incorrect_client_credentials'));
      return;
    }
    const code = params.get('code') ?? '';
    const issued = codes.get(code);
    // Single use: the first attempt spends the code, whether or not it succeeds.
    codes.delete(code);
    if (issued === undefined || issued.expiresAt <= Date.now()) {
      answer(githubError('bad_verification_code'));
      return;
    }
    const redirectUri = params.get('redirect_uri');
    if (redirectUri !== null && redirectUri !== issued.redirectUri) {
      answer(githubError('redirect_uri_mismatch'));
      return;
    }
    if (issued.codeChallenge !== undefined) {
      const verifier = params.get('code_verifier');
      if (verifier === null || s256(verifier) !== issued.codeChallenge) {
        answer(githubError('bad_verification_code'));
        return;
      }
    }
    const token = `gho_${randomToken(27)}`;
    tokens.set(token, { login: issued.login, scopes: issued.scopes });
    answer({ access_token: token, token_type: 'bearer', scope: issued.scopes.join(',') });
  }

  function api(req: IncomingMessage, path: string, query: URLSearchParams): ApiAnswer {
    if (apiDown) return { status: 503, body: { message: 'Service unavailable' } };
    if (!req.headers['user-agent']) {
      return {
        status: 403,
        body: {
          message:
            'Request forbidden by administrative rules. Please make sure your request has a User-Agent header',
        },
      };
    }
    const route = req.method === 'GET' ? apiRoutes[path] : undefined;
    if (route === undefined) return notFound();
    const tokenValue = apiToken(req.headers.authorization);
    if (tokenValue === undefined) {
      return { status: 401, body: { message: 'Requires authentication', documentation_url: DOCS } };
    }
    const token = tokens.get(tokenValue);
    const user = token && users.get(token.login);
    if (token === undefined || user === undefined) {
      return { status: 401, body: { message: 'Bad credentials', documentation_url: DOCS } };
    }
    const answer = route(user, grantedScopes(token.scopes), query, `${apiUrl}${path}`);
    return {
      ...answer,
      headers: { 'x-oauth-scopes': token.scopes.join(', '), ...answer.headers },
    };
  }

  type Route = (
    user: FakeGitHubUser & { orgs: string[]; teams: { org: string; slug: string }[] },
    scopes: Set<string>,
    query: URLSearchParams,
    selfUrl: string,
  ) => ApiAnswer;

  const apiRoutes: Record<string, Route> = {
    '/user': (user) => ({
      status: 200,
      body: {
        login: user.login,
        id: user.id,
        node_id: Buffer.from(`04:User${user.id}`).toString('base64'),
        avatar_url: `${url}/avatars/u/${user.id}`,
        html_url: `${url}/${user.login}`,
        type: 'User',
        name: user.name ?? null,
        email: null,
      },
    }),
    '/user/emails': (user, scopes) => {
      if (!scopes.has('user:email')) return notFound();
      return {
        status: 200,
        body: user.emails.map((entry) => ({ ...entry, visibility: 'private' })),
      };
    },
    '/user/orgs': (user, scopes, query, selfUrl) => {
      if (!scopes.has('read:org') && !scopes.has('user')) {
        return forbidden('You need at least read:org scope or user scope to list your orgs.');
      }
      const orgs = user.orgs.map((login) => ({
        login,
        id: ids.of(`org:${login}`),
        url: `${apiUrl}/orgs/${login}`,
      }));
      return paginate(orgs, query, selfUrl);
    },
    '/user/teams': (user, scopes, query, selfUrl) => {
      if (!scopes.has('read:org') && !scopes.has('user') && !scopes.has('repo')) {
        return forbidden('You need at least read:org, repo or user scope to list your teams.');
      }
      const teams = user.teams.map(({ org, slug }) => ({
        id: ids.of(`team:${org}/${slug}`),
        slug,
        name: slug,
        organization: { login: org, id: ids.of(`org:${org}`) },
      }));
      return paginate(teams, query, selfUrl);
    },
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body, requestUrl, path } = await receive(req, url, requests);
    if (path === '/login/oauth/authorize' && req.method === 'GET') {
      authorize(requestUrl.searchParams, res);
    } else if (path === '/login/oauth/access_token' && req.method === 'POST') {
      accessToken(req, body, res);
    } else if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
      const answer = api(req, path.slice(API_PREFIX.length), requestUrl.searchParams);
      sendJson(res, answer.status, answer.body, answer.headers);
    } else {
      sendText(res, 404, 'Not Found');
    }
  }

  const server = createServer(answerWith(handle, 'fake GitHub'));
  await listenOn(server, port);

  let stopped: Promise<void> | undefined;
  return {
    url,
    authorizationUrl: `${url}/login/oauth/authorize`,
    tokenUrl: `${url}/login/oauth/access_token`,
    apiUrl,
    loginAs(login) {
      if (login !== null) userOrThrow(login);
      currentLogin = login;
    },
    setMembership(login, membership) {
      const user = userOrThrow(login);
      if (membership.orgs !== undefined) user.orgs = [...membership.orgs];
      if (membership.teams !== undefined) user.teams = [...membership.teams];
    },
    revokeTokens(login) {
      userOrThrow(login);
      for (const [token, issued] of tokens) if (issued.login === login) tokens.delete(token);
    },
    setApiDown(down) {
      apiDown = down;
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

/** Stable made-up numeric ids for orgs and teams, which the test only names. */
function numericIds() {
  const assigned = new Map<string, number>();
  return {
    of(key: string): number {
      let id = assigned.get(key);
      if (id === undefined) {
        id = 9000 + assigned.size;
        assigned.set(key, id);
      }
      return id;
    },
  };
}

/**
 * GitHub's PKCE rules: `code_challenge` and `code_challenge_method` come together, the method
 * is `S256` ("plain" is not supported) and the challenge a 43-character SHA-256 hash.
 */
function checkPkceParameters(query: URLSearchParams): string | undefined {
  const challenge = query.get('code_challenge');
  const method = query.get('code_challenge_method');
  if (challenge === null && method === null) return undefined;
  if (method !== 'S256') return `code_challenge_method must be S256, not ${method ?? 'absent'}`;
  if (challenge === null || !/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
    return 'code_challenge must be a base64url SHA-256 hash (43 characters)';
  }
  return undefined;
}

/** GitHub accepts scopes separated by spaces or by commas. Duplicates are dropped. */
function parseScopes(scope: string | null): string[] {
  return [...new Set((scope ?? '').split(/[\s,]+/).filter((entry) => entry !== ''))];
}

function grantedScopes(scopes: string[]): Set<string> {
  const granted = new Set<string>();
  const add = (scope: string): void => {
    if (granted.has(scope)) return;
    granted.add(scope);
    for (const implied of IMPLIED_SCOPES[scope] ?? []) add(implied);
  };
  scopes.forEach(add);
  return granted;
}

/** `token X` (GitHub's own form) or `Bearer X`. */
function apiToken(header: string | undefined): string | undefined {
  const match = /^(?:token|bearer)\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}

/** One page of `items`, with GitHub's `Link` header when there is more than one page. */
function paginate(items: unknown[], query: URLSearchParams, selfUrl: string): ApiAnswer {
  const perPage = clampedInteger(query.get('per_page'), DEFAULT_PER_PAGE, MAX_PER_PAGE);
  const page = clampedInteger(query.get('page'), 1, Number.MAX_SAFE_INTEGER);
  const lastPage = Math.max(1, Math.ceil(items.length / perPage));
  const body = items.slice((page - 1) * perPage, page * perPage);
  const pageUrl = (target: number): string => {
    const link = new URL(selfUrl);
    for (const [name, value] of query) link.searchParams.append(name, value);
    link.searchParams.set('per_page', String(perPage));
    link.searchParams.set('page', String(target));
    return link.href;
  };
  const links: string[] = [];
  if (page > 1) {
    links.push(`<${pageUrl(Math.min(page - 1, lastPage))}>; rel="prev"`);
    links.push(`<${pageUrl(1)}>; rel="first"`);
  }
  if (page < lastPage) {
    links.push(`<${pageUrl(page + 1)}>; rel="next"`);
    links.push(`<${pageUrl(lastPage)}>; rel="last"`);
  }
  return { status: 200, body, headers: links.length > 0 ? { link: links.join(', ') } : {} };
}

/** A positive integer query parameter: the default when absent or invalid, at most `max`. */
function clampedInteger(value: string | null, fallback: number, max: number): number {
  const parsed = Number(value);
  if (value === null || !Number.isInteger(parsed) || parsed < 1) return fallback;
  return Math.min(parsed, max);
}

function notFound(): ApiAnswer {
  return { status: 404, body: { message: 'Not Found', documentation_url: DOCS } };
}

function forbidden(message: string): ApiAnswer {
  return { status: 403, body: { message, documentation_url: DOCS } };
}

/** The token endpoint's error bodies, worded as in GitHub's troubleshooting page. */
function githubError(
  error: 'incorrect_client_credentials' | 'bad_verification_code' | 'redirect_uri_mismatch',
): Record<string, string> {
  const page = '/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors';
  const details = {
    incorrect_client_credentials: {
      error_description: 'The client_id and/or client_secret passed are incorrect.',
      error_uri: `${page}/#incorrect-client-credentials`,
    },
    bad_verification_code: {
      error_description: 'The code passed is incorrect or expired.',
      error_uri: `${page}/#bad-verification-code`,
    },
    redirect_uri_mismatch: {
      error_description:
        'The redirect_uri MUST match the registered callback URL for this application.',
      error_uri:
        '/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch2',
    },
  };
  return { error, ...details[error] };
}

/** JSON when the client asks for it, else form-encoded: GitHub's default answer format. */
function sendTokenAnswer(
  req: IncomingMessage,
  res: ServerResponse,
  fields: Record<string, string>,
): void {
  if ((req.headers.accept ?? '').includes('application/json')) {
    sendJson(res, 200, fields);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
  res.end(new URLSearchParams(fields).toString());
}
