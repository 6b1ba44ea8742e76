/**
 * The OAuth endpoints' chains as declared (src/oauth/endpoints.ts): which steps run, in which
 * order, for each path and method, with and without the guards, and that mounting them gives
 * Express the same order. Pure: stub handlers record their names; no server listens.
 */
import { describe, expect, it } from '@jest/globals';
import type { Express, RequestHandler } from 'express';
import { mountPipelines, oauthPipelines, type Pipeline } from '../../../src/oauth/endpoints.js';

const stub = (name: string): RequestHandler => Object.assign(() => undefined, { stub: name });

const limits = {
  authorize: stub('limit authorize'),
  token: stub('limit token'),
  register: stub('limit register'),
  login: stub('limit login'),
};
const clientQuota = { middleware: stub('client quota') };
const guards = {
  defaultScope: stub('default scope'),
  registrationBodyLimit: stub('body limit'),
  registrationCap: stub('cap'),
};

/** `path method` → the step names of its chain, in order. */
function chains(pipelines: Pipeline[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const pipeline of pipelines) {
    for (const method of ['use', 'get', 'post', 'options'] as const) {
      const steps = pipeline[method];
      if (steps?.length) out[`${method} ${pipeline.path}`] = steps.map((step) => step.name);
    }
  }
  return out;
}

describe('the OAuth endpoint chains', () => {
  it('declare, per path and method, the steps in the order they run', () => {
    const span = (name: string) => stub(`span ${name}`);
    expect(chains(oauthPipelines({ span, limits, clientQuota, guards }))).toEqual({
      'use /authorize': ['trace oauth.authorize'],
      'get /authorize': ['limit authorize', 'default scope'],
      'post /authorize': ['limit authorize'],
      'use /token': ['trace oauth.token'],
      'post /token': ['limit tokenPerIp, tokenPerClient'],
      'use /register': ['trace oauth.register'],
      'options /register': ['registration CORS'],
      'post /register': [
        'registration CORS',
        'limit register',
        'client quota',
        'registration body limit',
        'registration cap',
      ],
      'get /register/:clientId': ['registration CORS'],
      'post /interaction/:uid/login/dev': ['limit login'],
      'get /login/callback/:providerId': ['limit login'],
      'get /interaction/:uid/callback/:providerId': ['limit login'],
    });
  });

  it('hold the limits alone (with the CORS a 429 needs) when no guards are given', () => {
    expect(chains(oauthPipelines({ limits, clientQuota }))).toEqual({
      'get /authorize': ['limit authorize'],
      'post /authorize': ['limit authorize'],
      'post /token': ['limit tokenPerIp, tokenPerClient'],
      'post /register': ['registration CORS', 'limit register', 'client quota'],
      'post /interaction/:uid/login/dev': ['limit login'],
      'get /login/callback/:providerId': ['limit login'],
      'get /interaction/:uid/callback/:providerId': ['limit login'],
    });
  });

  it('give each step its own handler', () => {
    const [authorize] = oauthPipelines({ limits, clientQuota, guards });
    expect(authorize?.get?.map((step) => step.handler)).toEqual([
      limits.authorize,
      guards.defaultScope,
    ]);
  });

  it('are mounted in the declared order', () => {
    const mounted: string[] = [];
    const app = {
      use: (path: string, ...handlers: RequestHandler[]) =>
        mounted.push(`use ${path} ${handlers.length}`),
      get: (path: string, ...handlers: RequestHandler[]) =>
        mounted.push(`get ${path} ${handlers.length}`),
      post: (path: string, ...handlers: RequestHandler[]) =>
        mounted.push(`post ${path} ${handlers.length}`),
      options: (path: string, ...handlers: RequestHandler[]) =>
        mounted.push(`options ${path} ${handlers.length}`),
    } as unknown as Express;
    mountPipelines(app, oauthPipelines({ limits, clientQuota, guards }));
    expect(mounted).toEqual([
      'get /authorize 2',
      'post /authorize 1',
      'post /token 1',
      'post /register 5',
      'options /register 1',
      'get /register/:clientId 1',
      'post /interaction/:uid/login/dev 1',
      'get /login/callback/:providerId 1',
      'get /interaction/:uid/callback/:providerId 1',
    ]);
  });
});
