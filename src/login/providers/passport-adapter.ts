/**
 * Runs a passport OAuth 2.0 strategy (`passport-github2`, `passport-google-oauth20`) for one
 * request, without passport's middleware, sessions or `req.login`.
 *
 * Passport calls a strategy's `authenticate(req)` on an object derived from the strategy that
 * carries the "augmented actions" `redirect`, `success`, `fail`, `error` and `pass`
 * (passport-strategy's documented contract). This module does the same and turns the action
 * the strategy takes into a promise, so that the gateway keeps its own state handling: the
 * strategy's `state` and PKCE verifier go to a per-request state store that hands them to the
 * caller ({@link requestStateStore}), who keeps them in the gateway's store until the callback.
 */
import { randomBytes } from 'node:crypto';
import type { Strategy } from 'passport-strategy';
import { UpstreamRefused, UpstreamUnavailable, type PendingUpstreamLogin } from './provider.js';

/** The request object a strategy sees: only what passport-oauth2 reads. */
export interface StrategyRequest {
  query: Record<string, string>;
  body: Record<string, string>;
  headers: Record<string, string>;
  /** Set by the state store on the way out; read by it on the way back. */
  pending?: PendingUpstreamLogin;
}

type StrategyAction =
  | { kind: 'redirect'; url: string }
  | { kind: 'success'; user: unknown }
  | { kind: 'fail'; message: string }
  | { kind: 'error'; error: Error };

/** passport-oauth2 gives up on nothing by itself (node-oauth has no timeout). */
const STRATEGY_TIMEOUT_MS = 15_000;

function run(
  strategy: Strategy,
  req: StrategyRequest,
  options: Record<string, unknown>,
): Promise<StrategyAction> {
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => resolve({ kind: 'error', error: new Error('the provider did not answer in time') }),
      STRATEGY_TIMEOUT_MS,
    );
    const done = (action: StrategyAction) => {
      clearTimeout(timer);
      resolve(action);
    };
    const actions = Object.create(strategy) as Strategy & Record<string, unknown>;
    actions.redirect = (url: string) => done({ kind: 'redirect', url });
    actions.success = (user: unknown) => done({ kind: 'success', user });
    actions.fail = (challenge?: unknown) =>
      done({
        kind: 'fail',
        message:
          typeof challenge === 'string'
            ? challenge
            : typeof (challenge as { message?: unknown } | undefined)?.message === 'string'
              ? (challenge as { message: string }).message
              : 'the provider refused the sign-in',
      });
    actions.error = (error: unknown) =>
      done({ kind: 'error', error: error instanceof Error ? error : new Error(String(error)) });
    actions.pass = () => done({ kind: 'error', error: new Error('the strategy passed') });
    try {
      actions.authenticate(req as never, options);
    } catch (error) {
      done({ kind: 'error', error: error instanceof Error ? error : new Error(String(error)) });
    }
  });
}

/**
 * A passport-oauth2 state store (the `store` option, used with `state: true, pkce: true`)
 * that keeps nothing itself: `store` puts a fresh `state` and the strategy's PKCE verifier on
 * the request, `verify` compares them with what the caller put back on it.
 */
export const requestStateStore = {
  store(
    req: StrategyRequest,
    verifier: string,
    _state: unknown,
    _meta: unknown,
    callback: (error: Error | null, state?: string) => void,
  ): void {
    const state = randomBytes(32).toString('base64url');
    req.pending = { state, codeVerifier: verifier };
    callback(null, state);
  },
  verify(
    req: StrategyRequest,
    providedState: string,
    callback: (error: Error | null, ok: string | false, info?: unknown) => void,
  ): void {
    const expected = req.pending;
    if (!expected || typeof providedState !== 'string' || providedState !== expected.state) {
      callback(null, false, { message: 'the state does not match this sign-in' });
      return;
    }
    callback(null, expected.codeVerifier, providedState);
  },
};

/** Builds the provider's authorization URL; returns it with what the callback will need. */
export async function startStrategy(
  strategy: Strategy,
  options: Record<string, unknown>,
): Promise<{ url: URL; pending: PendingUpstreamLogin }> {
  const req: StrategyRequest = { query: {}, body: {}, headers: {} };
  const action = await run(strategy, req, options);
  if (action.kind !== 'redirect' || !req.pending) {
    throw new UpstreamUnavailable(
      `could not build the authorization URL (${action.kind === 'error' ? action.error.message : action.kind})`,
    );
  }
  return { url: new URL(action.url), pending: req.pending };
}

/**
 * Redeems the callback: the strategy checks `state` against `pending`, exchanges the code
 * (with the PKCE verifier) and calls its verify function, whose `user` is returned.
 */
export async function finishStrategy(
  strategy: Strategy,
  callbackUrl: URL,
  pending: PendingUpstreamLogin,
): Promise<unknown> {
  const req: StrategyRequest = {
    query: Object.fromEntries(callbackUrl.searchParams),
    body: {},
    headers: {},
    pending,
  };
  const action = await run(strategy, req, {});
  switch (action.kind) {
    case 'success':
      return action.user;
    case 'fail':
      throw new UpstreamRefused(action.message);
    case 'redirect':
      throw new UpstreamRefused('the callback carried no authorization code');
    case 'error': {
      // An error the provider sent back on the redirect (`error=...`) is a refusal; anything
      // else (the code exchange or the profile request failed) is the provider being unable.
      const oauthCode = (action.error as { code?: unknown }).code;
      if (action.error.name === 'AuthorizationError' || typeof oauthCode === 'string') {
        throw new UpstreamRefused(action.error.message || String(oauthCode));
      }
      if (action.error.name === 'TokenError') throw new UpstreamRefused(action.error.message);
      throw new UpstreamUnavailable(action.error.message, { cause: action.error });
    }
  }
}
