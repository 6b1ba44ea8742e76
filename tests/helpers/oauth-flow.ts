/**
 * A hand-driven OAuth client for attack tests: registers clients, starts authorization
 * requests with chosen (possibly wrong) parameters, walks the dev login and consent with
 * {@link TestUserAgent}, and calls the token endpoint. The end-to-end tests use the MCP SDK's
 * real client instead; this one exists to send what a well-behaved client never would.
 */
import { createHash, randomBytes } from 'node:crypto';
import { TestUserAgent, type FlowResult } from './user-agent.js';

export interface RegisteredClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  registration_access_token?: string;
  registration_client_uri?: string;
}

export const LOOPBACK_REDIRECT = 'http://127.0.0.1:8976/callback';

export async function register(issuer: string, metadata: Record<string, unknown> = {}) {
  const response = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'Attack test client',
      redirect_uris: [LOOPBACK_REDIRECT],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...metadata,
    }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export async function registerClient(
  issuer: string,
  metadata: Record<string, unknown> = {},
): Promise<RegisteredClient> {
  const { status, body } = await register(issuer, metadata);
  if (status !== 201) throw new Error(`registration failed: ${status} ${JSON.stringify(body)}`);
  return body as unknown as RegisteredClient;
}

export function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

export interface AuthorizeOptions {
  clientId: string;
  redirectUri?: string;
  resource?: string | undefined;
  scope?: string | undefined;
  /** `null` sends no code_challenge at all. */
  codeChallenge?: string | null;
  codeChallengeMethod?: string;
  state?: string;
}

export function authorizeUrl(issuer: string, options: AuthorizeOptions): URL {
  const url = new URL(`${issuer}/authorize`);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', options.clientId);
  url.searchParams.set('redirect_uri', options.redirectUri ?? LOOPBACK_REDIRECT);
  url.searchParams.set('state', options.state ?? randomBytes(8).toString('hex'));
  if (options.resource) url.searchParams.set('resource', options.resource);
  if (options.scope) url.searchParams.set('scope', options.scope);
  if (options.codeChallenge !== null && options.codeChallenge !== undefined) {
    url.searchParams.set('code_challenge', options.codeChallenge);
    url.searchParams.set('code_challenge_method', options.codeChallengeMethod ?? 'S256');
  }
  return url;
}

const isRedirectTo = (redirectUri: string) => (url: URL) =>
  `${url.origin}${url.pathname}` === new URL(redirectUri).origin + new URL(redirectUri).pathname;

/**
 * Logs in as a dev user, approves consent when asked, and returns where the browser ended:
 * the client's redirect URI with `code` (or `error`), or a page.
 */
export async function devLogin(
  issuer: string,
  options: AuthorizeOptions & {
    user?: string;
    agent?: TestUserAgent;
    decision?: 'approve' | 'deny';
  },
): Promise<FlowResult & { pagesSeen: ('login' | 'consent')[] }> {
  const agent = options.agent ?? new TestUserAgent();
  const pagesSeen: ('login' | 'consent')[] = [];
  const redirectUri = options.redirectUri ?? LOOPBACK_REDIRECT;
  const stop = isRedirectTo(redirectUri);
  let result = await agent.follow(authorizeUrl(issuer, options), stop);
  for (let step = 0; step < 3 && result.status === 200; step += 1) {
    if (result.body.includes('Development sign-in')) {
      pagesSeen.push('login');
      result = await agent.submit(
        result,
        { name: 'email', value: options.user ?? 'alice@example.com' },
        stop,
      );
    } else if (result.body.includes('name="decision"')) {
      pagesSeen.push('consent');
      result = await agent.submit(
        result,
        { name: 'decision', value: options.decision ?? 'approve' },
        stop,
      );
    } else {
      break;
    }
  }
  return { ...result, pagesSeen };
}

export async function tokenRequest(
  issuer: string,
  params: Record<string, string>,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** Redeems an authorization code as `clientId` (override any parameter to attack). */
export function redeemCode(
  issuer: string,
  options: {
    code: string;
    verifier?: string;
    clientId: string;
    redirectUri?: string;
    resource?: string;
  },
) {
  const params: Record<string, string> = {
    grant_type: 'authorization_code',
    code: options.code,
    redirect_uri: options.redirectUri ?? LOOPBACK_REDIRECT,
    client_id: options.clientId,
  };
  if (options.verifier !== undefined) params.code_verifier = options.verifier;
  if (options.resource !== undefined) params.resource = options.resource;
  return tokenRequest(issuer, params);
}

/** Runs the whole dev flow and redeems the code: returns the token response and inputs. */
export async function obtainTokens(
  issuer: string,
  options: {
    client: Pick<RegisteredClient, 'client_id'>;
    resource: string;
    scope?: string;
    user?: string;
  },
) {
  const { verifier, challenge } = pkcePair();
  const result = await devLogin(issuer, {
    clientId: options.client.client_id,
    resource: options.resource,
    scope: options.scope,
    codeChallenge: challenge,
    user: options.user,
  });
  const code = result.url.searchParams.get('code');
  if (!code)
    throw new Error(`no code: ${result.url.href} ${result.status} ${result.body.slice(0, 300)}`);
  const token = await tokenRequest(issuer, {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: LOOPBACK_REDIRECT,
    client_id: options.client.client_id,
    resource: options.resource,
  });
  return { code, verifier, token, redirect: result.url };
}
