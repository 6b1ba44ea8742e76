/**
 * The authorization server's names that other modules need without needing the server: its
 * endpoint paths, its own first-party client and its browser session lifetime.
 */

/** Paths of the OAuth endpoints. `/authorize`, `/token` and `/register` are also the 2025-03-26 fallbacks. */
export const ROUTES = {
  authorization: '/authorize',
  token: '/token',
  registration: '/register',
  revocation: '/revoke',
  introspection: '/introspect',
  jwks: '/jwks',
  end_session: '/logout',
  userinfo: '/userinfo',
} as const;

/**
 * The gateway's own first-party client: the "connected apps" page (`/account`, src/account/)
 * signs its user in through the same login as every MCP client. Public, PKCE, code flow only,
 * `openid` only and never any resource (so it never holds a token for an MCP server); its
 * consent step is skipped (src/login/steps/account-consent.ts).
 */
export const ACCOUNT_CLIENT_ID = 'mcp-gateway-account';

/** Where the account client's authorization responses go. */
export function accountCallbackUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/account/callback`;
}

/** How long an oidc-provider browser session (the gateway's single sign-on) lasts, seconds. */
export const SESSION_TTL = 14 * 24 * 3600;
