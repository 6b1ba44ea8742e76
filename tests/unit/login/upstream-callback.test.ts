/**
 * The upstream callback steps (src/login/steps/upstream-callback.ts) with a test double of
 * the kept records and of an upstream provider: the first step moves the browser under its
 * interaction or says the link expired; the second matches the record to the interaction
 * and says why a login failed.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import type {
  SecurityEventDetails,
  SecurityEventKind,
} from '../../../src/events/security-events.js';
import {
  UpstreamRefused,
  type LoginProvider,
  type UpstreamLogin,
} from '../../../src/login/providers/provider.js';
import { InteractionMismatch, type Interaction } from '../../../src/login/steps/interaction.js';
import { callbackRelocation, callbackStep } from '../../../src/login/steps/upstream-callback.js';
import type { UpstreamLoginRecord } from '../../../src/login/steps/upstream-logins.js';
import { requestDouble, responseDouble } from '../web/express-test-doubles.js';

const record: UpstreamLoginRecord = {
  uid: 'uid-1',
  providerId: 'corp',
  pending: { state: 'state-1', codeVerifier: 'verifier' },
};
const interaction: Interaction = {
  uid: 'uid-1',
  params: { client_id: 'client-1' },
  prompt: { name: 'login', reasons: [], details: {} },
};

let kept: Map<string, UpstreamLoginRecord>;
let emitted: [SecurityEventKind, SecurityEventDetails][];
const events = {
  emit: (kind: SecurityEventKind, details: SecurityEventDetails) =>
    void emitted.push([kind, details]),
};
const pending = {
  peek: async (state: string) => kept.get(state),
  take: async (state: string) => {
    const found = kept.get(state);
    kept.delete(state);
    return found;
  },
};

beforeEach(() => {
  kept = new Map([['state-1', record]]);
  emitted = [];
});

describe('callback relocation (step 1)', () => {
  const relocate = () => callbackRelocation({ pending, events });

  it('sends the browser under its interaction with the query as received', async () => {
    const { res, sent } = responseDouble();
    await relocate()(
      requestDouble({
        params: { providerId: 'corp' },
        query: { state: 'state-1', code: 'c' },
        originalUrl: '/login/callback/corp?state=state-1&code=c',
      }),
      res,
    );
    expect(sent.redirect).toEqual({
      status: 303,
      url: '/interaction/uid-1/callback/corp?state=state-1&code=c',
    });
    expect(kept.has('state-1')).toBe(true);
    expect(emitted).toEqual([]);
  });

  it('answers an unknown state, or another provider’s, with the expired page and an event', async () => {
    for (const [providerId, state] of [
      ['corp', 'unknown'],
      ['other', 'state-1'],
    ] as const) {
      const { res, sent } = responseDouble();
      await relocate()(
        requestDouble({ params: { providerId }, query: { state }, ip: '203.0.113.9' }),
        res,
      );
      expect(sent.status).toBe(400);
      expect(sent.body).toContain('Sign-in expired');
    }
    expect(emitted).toEqual([
      ['upstream_state_invalid', { ip: '203.0.113.9', provider: 'corp' }],
      ['upstream_state_invalid', { ip: '203.0.113.9', provider: 'other' }],
    ]);
  });
});

describe('callback (step 2)', () => {
  let finish: (url: URL) => Promise<UpstreamLogin>;
  let completed: UpstreamLogin[];
  let denied: string[];
  const upstream: LoginProvider = {
    id: 'corp',
    name: 'Corp SSO',
    redirectUri: 'https://auth.example.com/login/callback/corp',
    start: async () => {
      throw new Error('not started in this test');
    },
    finish: async (url) => finish(url),
  };
  const step = () =>
    callbackStep({
      upstreams: new Map([['corp', upstream]]),
      pending,
      outcome: {
        deny: async (_req, _res, _interaction, description) => {
          denied.push(description);
          return { url: 'https://app.example/cb?error=access_denied', clientName: 'App' };
        },
      },
      completeLogin: async (_req, _res, _interaction, login) => void completed.push(login),
      events,
    });
  const callback = (query: string, uid = 'uid-1') =>
    requestDouble({
      params: { uid, providerId: 'corp' },
      query: Object.fromEntries(new URLSearchParams(query)),
      originalUrl: `/interaction/${uid}/callback/corp?${query}`,
      ip: '203.0.113.9',
    });

  beforeEach(() => {
    completed = [];
    denied = [];
  });

  it('redeems the code at the registered callback URL and completes the login, once', async () => {
    const identity = { sub: 'oidc:corp:1', provider: 'corp' };
    finish = async (url) => {
      expect(url.href).toBe('https://auth.example.com/login/callback/corp?state=state-1&code=c');
      return { identity };
    };
    await step()(callback('state=state-1&code=c'), responseDouble().res, interaction);
    expect(completed).toEqual([{ identity }]);
    expect(kept.has('state-1')).toBe(false);
    await expect(
      step()(callback('state=state-1&code=c'), responseDouble().res, interaction),
    ).rejects.toBeInstanceOf(InteractionMismatch);
    expect(emitted).toEqual([['upstream_state_invalid', { ip: '203.0.113.9', provider: 'corp' }]]);
  });

  it('refuses a record of another interaction, and uses it up', async () => {
    await expect(
      step()(callback('state=state-1', 'uid-2'), responseDouble().res, {
        ...interaction,
        uid: 'uid-2',
      }),
    ).rejects.toBeInstanceOf(InteractionMismatch);
    expect(kept.has('state-1')).toBe(false);
    expect(completed).toEqual([]);
  });

  it('says the sign-in was cancelled (401) and tells the application', async () => {
    finish = async () => {
      throw new UpstreamRefused('access_denied');
    };
    const { res, sent } = responseDouble();
    await step()(callback('state=state-1&error=access_denied'), res, interaction);
    expect(sent.status).toBe(401);
    expect(sent.body).toContain('The sign-in was cancelled at Corp SSO.');
    expect(sent.body).toContain('href="https://app.example/cb?error=access_denied"');
    expect(denied).toEqual(['the user cancelled the sign-in']);
    expect(emitted).toEqual([
      ['login_failed', { ip: '203.0.113.9', provider: 'corp', reason: 'access_denied' }],
    ]);
  });

  it('answers 502 when the provider could not be reached', async () => {
    finish = async () => {
      throw new Error('connect ECONNREFUSED');
    };
    const { res, sent } = responseDouble();
    await step()(callback('state=state-1&code=c'), res, interaction);
    expect(sent.status).toBe(502);
    expect(sent.body).toContain('Corp SSO could not be reached to complete the sign-in.');
    expect(denied).toEqual(['the sign-in failed']);
  });
});
