/**
 * The browser session of the gateway's own pages (`/account`, `/admin`): the oidc-provider
 * session and the sign-in through the built-in account client (their forms are checked by
 * src/web/form-check.ts). One implementation, shared by both routers (see src/account/router.ts
 * for how the sign-in works and why).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type Provider from 'oidc-provider';
import type { GatewayConfig } from '../config/schema.js';
import { ACCOUNT_CLIENT_ID, accountCallbackUrl, ROUTES } from '../oauth/constants.js';

export const ACCOUNT_PATH = '/account';

/**
 * Where the callback sends the browser after sign-in: a fixed set (never a URL taken from
 * the request), named by a short word kept in the state cookie.
 */
export const RETURN_PATHS = { account: ACCOUNT_PATH, admin: '/admin' } as const;
export type ReturnTarget = keyof typeof RETURN_PATHS;

export const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

export interface PageSessions {
  /** The signed-in oidc-provider session, or `undefined`. */
  current(req: Request, res: Response): Promise<PageSession | undefined>;
  /** Sends the browser to sign in, then back to `target`. */
  startSignIn(res: Response, target?: ReturnTarget): void;
  /** The state cookie's name and options (path `/account`: only the callback reads it). */
  stateCookie: string;
  stateCookieOptions: { httpOnly: true; sameSite: 'lax'; secure: boolean; path: string };
}

export interface PageSession {
  uid: string;
  accountId: string;
  destroy(): Promise<void>;
}

export function createPageSessions(
  config: Pick<GatewayConfig, 'issuer' | 'tokens'>,
  provider: Provider,
): PageSessions {
  const secure = config.issuer.startsWith('https://');
  const callbackUrl = accountCallbackUrl(config.issuer);
  // `__Secure-`: on https the browser refuses it over plain http or without `Secure`.
  const stateCookie = secure ? '__Secure-mcpgw_account_login' : 'mcpgw_account_login';
  const stateCookieOptions = {
    httpOnly: true,
    sameSite: 'lax',
    secure,
    path: ACCOUNT_PATH,
  } as const;

  return {
    stateCookie,
    stateCookieOptions,
    async current(req, res) {
      const session = await provider.Session.get(provider.createContext(req, res));
      return session.accountId ? (session as unknown as PageSession) : undefined;
    },
    startSignIn(res, target = 'account') {
      const state = randomBytes(24).toString('base64url');
      const verifier = randomBytes(32).toString('base64url');
      // base64url has no `.`: `<state>.<verifier>[.<target>]`.
      const value = `${state}.${verifier}${target === 'account' ? '' : `.${target}`}`;
      res.cookie(stateCookie, value, {
        ...stateCookieOptions,
        maxAge: config.tokens.loginTtl * 1000,
      });
      const params = new URLSearchParams({
        response_type: 'code',
        client_id: ACCOUNT_CLIENT_ID,
        redirect_uri: callbackUrl,
        scope: 'openid',
        state,
        code_challenge: s256(verifier),
        code_challenge_method: 'S256',
      });
      res.set('Cache-Control', 'no-store');
      res.redirect(303, `${ROUTES.authorization}?${params.toString()}`);
    },
  };
}
