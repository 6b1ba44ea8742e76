/**
 * What runs in front of oidc-provider for each OAuth endpoint, declared in one place and in
 * order: for every path, per method, the named steps a request goes through before
 * oidc-provider (mounted last, src/gateway.ts) or the interaction pages answer it.
 *
 * The order within a chain is the point of it:
 * - tracing first, so that a span covers every answer, refusals included;
 * - the abuse limits (src/limits/) next: a refused request must cost as little as possible,
 *   so they run before anything reads the body or the store;
 * - on `/register`, the registration CORS before the limits, so that a browser-based client
 *   can read a 429 (and its `Retry-After`);
 * - then the rules oidc-provider has no option for (endpoint-guards.ts).
 *
 * A step refuses by answering (the limits: 429) or by passing a typed error on (the guards,
 * src/http/errors.ts), which the surface's one error handler answers (src/app/error-handler.ts).
 * Endpoints without steps of their own (`/revoke`, `/introspect`, `/jwks`, the metadata) go
 * straight to oidc-provider.
 */
import type { Express, RequestHandler } from 'express';
import type { ClientQuota } from '../limits/client-quota.js';
import type { RateLimits } from '../limits/rate-limits.js';
import { ROUTES } from './constants.js';
import { registrationCors } from './endpoint-guards.js';

/** One step of a chain; the name says what it is in the docs' words. */
export interface Step {
  name: string;
  handler: RequestHandler;
}

/**
 * A path and its chains. `use` runs for every method on the path and everything under it (as
 * `app.use`), before the chain of the request's method.
 */
export interface Pipeline {
  path: string;
  use?: Step[];
  get?: Step[];
  post?: Step[];
  options?: Step[];
}

export interface EndpointSteps {
  /** A tracing span per endpoint (`tracing.enabled`); absent: none. */
  span?: ((name: string) => RequestHandler) | undefined;
  limits: Pick<RateLimits, 'authorize' | 'token' | 'register' | 'login'>;
  clientQuota: Pick<ClientQuota, 'middleware'>;
  /** The rules of endpoint-guards.ts; absent, only the limits are mounted (their tests). */
  guards?: {
    /** GET /authorize without `scope` asks for its resources' scopes. */
    defaultScope: RequestHandler;
    /** The client metadata document's size (411 without Content-Length). */
    registrationBodyLimit: RequestHandler;
    /** At most `registration.dcr.maxClients` registered clients (503). */
    registrationCap: RequestHandler;
  };
}

/** Every OAuth endpoint's chain, in mount order. */
export function oauthPipelines(steps: EndpointSteps): Pipeline[] {
  const { limits, guards } = steps;
  const trace = (name: string): Step[] =>
    steps.span ? [{ name: `trace ${name}`, handler: steps.span(name) }] : [];
  const cors: Step = { name: 'registration CORS', handler: registrationCors };
  const login: Step = { name: 'limit login', handler: limits.login };
  return [
    {
      path: ROUTES.authorization,
      use: trace('oauth.authorize'),
      get: [
        { name: 'limit authorize', handler: limits.authorize },
        ...(guards ? [{ name: 'default scope', handler: guards.defaultScope }] : []),
      ],
      post: [{ name: 'limit authorize', handler: limits.authorize }],
    },
    {
      path: ROUTES.token,
      use: trace('oauth.token'),
      // Per IP, then per client (the client's count comes from oidc-provider's events).
      post: [{ name: 'limit tokenPerIp, tokenPerClient', handler: limits.token }],
    },
    {
      // The span covers `/register/:clientId` (RFC 7592) too.
      path: ROUTES.registration,
      use: trace('oauth.register'),
      ...(guards ? { options: [cors] } : {}),
      post: [
        cors,
        { name: 'limit register', handler: limits.register },
        { name: 'client quota', handler: steps.clientQuota.middleware },
        ...(guards
          ? [
              { name: 'registration body limit', handler: guards.registrationBodyLimit },
              { name: 'registration cap', handler: guards.registrationCap },
            ]
          : []),
      ],
    },
    ...(guards ? [{ path: `${ROUTES.registration}/:clientId`, get: [cors] }] : []),
    // The login steps, before the interaction router that answers them.
    { path: '/interaction/:uid/login/dev', post: [login] },
    { path: '/login/callback/:providerId', get: [login] },
    { path: '/interaction/:uid/callback/:providerId', get: [login] },
  ];
}

/** Mounts `pipelines` on `app` in order; call it before the routers and oidc-provider. */
export function mountPipelines(app: Express, pipelines: Pipeline[]): void {
  const handlers = (chain: Step[]) => chain.map((step) => step.handler);
  for (const { path, use, get, post, options } of pipelines) {
    if (use?.length) app.use(path, ...handlers(use));
    if (get?.length) app.get(path, ...handlers(get));
    if (post?.length) app.post(path, ...handlers(post));
    if (options?.length) app.options(path, ...handlers(options));
  }
}
