/**
 * `offline_access` in a refresh request.
 *
 * Clients that follow MCP's scope guidance (SEP-2207) add `offline_access` to their
 * authorization request when the server lists it in `scopes_supported`, and some of them (the
 * Codex CLI) send that same `scope` again with every refresh. oidc-provider drops
 * `offline_access` from an authorization request without `prompt=consent` (OpenID Connect
 * Core §11), so the refresh token never carries it, and then refuses such a refresh with
 * `invalid_scope` ("refresh token missing requested scope"): the client can never refresh.
 *
 * The gateway gives every client allowed the refresh_token grant a refresh token, asked for or
 * not (provider.ts `issueRefreshToken`), so holding one is all that `offline_access` means here;
 * it is counted among every refresh token's scopes. It grants nothing at an MCP server: access
 * tokens carry only their resource's scopes, and the refresh token keeps the scope it had.
 */
export const OFFLINE_ACCESS = 'offline_access';

interface ScopedToken {
  scope?: string;
}

/** Makes every refresh token's `scopes` (what a refresh may ask for) include `offline_access`. */
export function refreshTokensImplyOfflineAccess(refreshTokenClass: {
  prototype: ScopedToken;
}): void {
  Object.defineProperty(refreshTokenClass.prototype, 'scopes', {
    configurable: true,
    get(this: ScopedToken) {
      const scopes = new Set((this.scope ?? '').split(' ').filter(Boolean));
      scopes.add(OFFLINE_ACCESS);
      return scopes;
    },
  });
}
