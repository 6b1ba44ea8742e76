/**
 * The authorization code flow through an upstream login (GitHub, Google, OIDC), driven by a
 * {@link TestUserAgent}: the gateway's login page (choosing `provider` when several are
 * offered), the provider's redirect back, the gateway's consent page; then the code exchange.
 */
import { authorizeUrl, LOOPBACK_REDIRECT, pkcePair, tokenRequest } from './oauth-flow.js';
import { TestUserAgent, type FlowResult } from './user-agent.js';

export const atLoopbackRedirect = (url: URL) => url.href.startsWith(LOOPBACK_REDIRECT);

export interface ProviderLoginResult {
  /** Where the flow ended: the client's redirect URI, or a gateway page. */
  result: FlowResult;
  code: string | null;
  verifier: string;
  /** The gateway pages passed on the way. */
  pages: ('choice' | 'consent')[];
}

export async function loginThroughProvider(
  issuer: string,
  options: { clientId: string; resource: string; provider?: string; agent?: TestUserAgent },
): Promise<ProviderLoginResult> {
  const agent = options.agent ?? new TestUserAgent();
  const { verifier, challenge } = pkcePair();
  const pages: ProviderLoginResult['pages'] = [];
  let result = await agent.follow(
    authorizeUrl(issuer, {
      clientId: options.clientId,
      resource: options.resource,
      codeChallenge: challenge,
    }),
    atLoopbackRedirect,
  );
  if (result.status === 200 && result.body.includes('Sign in to continue')) {
    pages.push('choice');
    const href = new RegExp(
      `href="(/interaction/[^"]+/login/${options.provider ?? ''}[^"]*)"`,
    ).exec(result.body)?.[1];
    if (!href) throw new Error(`no login link for ${options.provider}: ${result.body}`);
    result = await agent.follow(new URL(href, result.url), atLoopbackRedirect);
  }
  if (result.status === 200 && result.body.includes('name="decision"')) {
    pages.push('consent');
    result = await agent.submit(result, { name: 'decision', value: 'approve' }, atLoopbackRedirect);
  }
  const code = atLoopbackRedirect(result.url) ? result.url.searchParams.get('code') : null;
  return { result, code, verifier, pages };
}

/** Redeems the code of a {@link loginThroughProvider} (public client, PKCE). */
export function redeem(
  issuer: string,
  login: ProviderLoginResult,
  options: { clientId: string; resource: string },
) {
  return tokenRequest(issuer, {
    grant_type: 'authorization_code',
    code: login.code ?? '',
    code_verifier: login.verifier,
    redirect_uri: LOOPBACK_REDIRECT,
    client_id: options.clientId,
    resource: options.resource,
  });
}

export function refresh(issuer: string, refreshToken: string, clientId: string) {
  return tokenRequest(issuer, {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: clientId,
  });
}

/** Asks `/verify` about a GET to `resource` with `token`, as a forward-auth proxy would. */
export async function verifyStatus(issuer: string, resource: string, token: string) {
  const url = new URL(resource);
  const response = await fetch(`${issuer}/verify`, {
    headers: {
      'x-forwarded-proto': url.protocol.slice(0, -1),
      'x-forwarded-host': url.host,
      'x-forwarded-uri': url.pathname,
      'x-forwarded-method': 'GET',
      authorization: `Bearer ${token}`,
    },
  });
  await response.body?.cancel();
  return response.status;
}
