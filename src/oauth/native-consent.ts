/**
 * Consent is asked again, at every authorization, of a public client whose code goes to a
 * loopback address or a private-use URI scheme (RFC 8252 §8.6: a request whose client
 * identity cannot be proven should not be approved without the user).
 *
 * Such a client has no secret and its redirect is any port on this computer (RFC 8252 §7.3),
 * so the authorization request alone does not say which program sent it: any local program
 * can send the client's `client_id` with its own PKCE pair and its own port. If a remembered
 * consent (a grant of the browser session, or consent-memory.ts) approved it silently, that
 * program would get a code, then tokens, with no page in between. The consent page, showing
 * the redirect's host and port, lets the user notice a request they did not start.
 *
 * Confidential clients (the code is useless without their secret) and public clients whose
 * redirect is an exactly registered https URL keep remembered consent. oidc-provider has the
 * same check for `application_type: native` clients (`native_client_prompt`); MCP clients
 * register as "web", hence this one.
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { isLoopbackHostname } from '../net/loopback.js';

export const LOCAL_REDIRECT_REASON = 'local_redirect_prompt';

/** Whether a redirect URI delivers to this computer: http(s) on loopback, or a custom scheme. */
export function isLocalRedirect(redirectUri: string): boolean {
  const url = URL.parse(redirectUri);
  if (!url) return false;
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return true;
  return isLoopbackHostname(url.hostname);
}

/**
 * The interaction policy: oidc-provider's, with a consent check for public clients
 * redirecting to this computer. `exempt` lists clients never asked (the gateway's own).
 */
export function consentPolicy(exempt: ReadonlySet<string>): interactionPolicy.DefaultPolicy {
  const policy = interactionPolicy.base();
  const consent = policy.get('consent');
  if (!consent) throw new Error('oidc-provider has no consent prompt to extend');
  consent.checks.add(
    new interactionPolicy.Check(
      LOCAL_REDIRECT_REASON,
      'a public client redirecting to this computer is asked for consent at every authorization',
      'consent_required',
      (ctx: KoaContextWithOIDC) => {
        const { client, params, result } = ctx.oidc;
        if (!client || exempt.has(client.clientId)) return false;
        if (client.clientAuthMethod !== 'none') return false;
        // The consent given in this very interaction answers it.
        if (result?.consent) return false;
        return typeof params?.redirect_uri === 'string' && isLocalRedirect(params.redirect_uri);
      },
      () => ({ localRedirect: true }),
    ),
    // First, so that its reason leads when it is the only one.
    0,
  );
  return policy;
}
