/**
 * The consent step (src/login/steps/consent.ts), with test doubles for oidc-provider's grants
 * and the interaction's outcome: the page names the client and what it asks; the form, once
 * its token passes, records exactly what was missing or ends the authorization on deny.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import type { InteractionResults } from 'oidc-provider';
import type { ResourceConfig } from '../../../src/config/schema.js';
import type {
  SecurityEventDetails,
  SecurityEventKind,
} from '../../../src/events/security-events.js';
import type { AccessRefusal } from '../../../src/login/steps/access-refusal.js';
import {
  consentConfirmStep,
  consentPageStep,
  type ConsentGrant,
} from '../../../src/login/steps/consent.js';
import type { Interaction } from '../../../src/login/steps/interaction.js';
import type { FormCheck } from '../../../src/web/form-check.js';
import { requestDouble, responseDouble } from '../web/express-test-doubles.js';

const RESOURCE = 'https://mcp.example.com/crm';

/** A grant double: records what the step adds and whether it was saved. */
class GrantDouble implements ConsentGrant {
  oidcScopes: string[] = [];
  claims: string[] = [];
  resources: Record<string, string> = {};
  saves = 0;
  constructor(
    readonly owner: { accountId: string; clientId: string },
    public jti?: string,
  ) {}
  addOIDCScope(scope: string) {
    this.oidcScopes.push(scope);
  }
  addOIDCClaims(claims: string[]) {
    this.claims.push(...claims);
  }
  addResourceScope(resource: string, scope: string) {
    this.resources[resource] = scope;
  }
  async save() {
    this.saves += 1;
    this.jti ??= 'grant-new';
    return this.jti;
  }
}

function consentInteraction(details: Record<string, unknown>, grantId?: string): Interaction {
  return {
    uid: 'uid-1',
    params: {
      client_id: 'client-1',
      redirect_uri: 'http://127.0.0.1:8765/callback',
      resource: RESOURCE,
      scope: 'openid email mcp:tools',
    },
    prompt: { name: 'consent', reasons: ['op_scopes_missing'], details },
    session: { accountId: 'dev:alice@example.com' },
    grantId,
  };
}

describe('consent confirmation', () => {
  let created: GrantDouble[];
  let existing: GrantDouble;
  let finished: InteractionResults[];
  let remembered: unknown[];
  let discarded: string[];
  let emitted: [SecurityEventKind, SecurityEventDetails][];
  let logged: unknown[];
  let formAllowed: boolean;

  const checkForm: FormCheck = async (_req, res) => {
    if (!formAllowed) res.status(403).send('refused');
    return formAllowed;
  };
  const step = () =>
    consentConfirmStep({
      checkForm,
      csrf: { discard: async (uid) => void discarded.push(uid) },
      grants: {
        find: async (grantId) => (grantId === existing.jti ? existing : undefined),
        create: (owner) => {
          const grant = new GrantDouble(owner);
          created.push(grant);
          return grant;
        },
      },
      consents: { remember: async (...args) => void remembered.push(args) },
      outcome: { finish: async (_req, _res, result) => void finished.push(result) },
      events: { emit: (kind, details) => emitted.push([kind, details]) },
      logger: { info: (...args: unknown[]) => logged.push(args) } as never,
    });

  beforeEach(() => {
    created = [];
    existing = new GrantDouble(
      { accountId: 'dev:alice@example.com', clientId: 'client-1' },
      'grant-1',
    );
    finished = [];
    remembered = [];
    discarded = [];
    emitted = [];
    logged = [];
    formAllowed = true;
  });

  const approve = (decision = 'approve') =>
    requestDouble({ body: { csrf: 'token', decision }, ip: '198.51.100.4' });

  it('adds what was missing to a new grant, remembers it, and finishes with its id', async () => {
    const interaction = consentInteraction({
      missingOIDCScope: ['openid', 'email'],
      missingOIDCClaims: ['email_verified'],
      missingResourceScopes: { [RESOURCE]: ['mcp:tools', 'mcp:read'] },
    });
    await step()(approve(), responseDouble().res, interaction);
    expect(discarded).toEqual(['uid-1']);
    expect(created).toHaveLength(1);
    const grant = created[0]!;
    expect(grant.owner).toEqual({ accountId: 'dev:alice@example.com', clientId: 'client-1' });
    expect(grant.oidcScopes).toEqual(['openid email']);
    expect(grant.claims).toEqual(['email_verified']);
    expect(grant.resources).toEqual({ [RESOURCE]: 'mcp:tools mcp:read' });
    expect(grant.saves).toBe(1);
    expect(remembered).toEqual([
      [
        'dev:alice@example.com',
        'client-1',
        { resources: { [RESOURCE]: ['mcp:tools', 'mcp:read'] }, oidcScopes: ['openid', 'email'] },
      ],
    ]);
    expect(finished).toEqual([{ consent: { grantId: 'grant-new' } }]);
    expect(logged).toEqual([
      ['consent', { event: 'consent', clientId: 'client-1', subject: 'dev:alice@example.com' }],
    ]);
    expect(emitted).toEqual([]);
  });

  it('approving again with nothing missing keeps the grant as it is (loopback re-consent)', async () => {
    await step()(approve(), responseDouble().res, consentInteraction({}, 'grant-1'));
    expect(created).toEqual([]);
    expect(existing.saves).toBe(0);
    expect(remembered).toEqual([]);
    expect(finished).toEqual([{ consent: { grantId: 'grant-1' } }]);
  });

  it('ends the authorization with access_denied on deny, and raises consent_denied', async () => {
    const interaction = consentInteraction({ missingOIDCScope: ['openid'] });
    await step()(approve('deny'), responseDouble().res, interaction);
    expect(emitted).toEqual([
      [
        'consent_denied',
        { ip: '198.51.100.4', clientId: 'client-1', subject: 'dev:alice@example.com' },
      ],
    ]);
    expect(finished).toEqual([
      { error: 'access_denied', error_description: 'the user denied the request' },
    ]);
    expect(created).toEqual([]);
    expect(discarded).toEqual(['uid-1']);
  });

  it('does nothing when the form check refuses the post', async () => {
    formAllowed = false;
    const { res, sent } = responseDouble();
    await step()(approve(), res, consentInteraction({ missingOIDCScope: ['openid'] }));
    expect(sent.status).toBe(403);
    expect(finished).toEqual([]);
    expect(discarded).toEqual([]);
    expect(created).toEqual([]);
  });
});

describe('consent page', () => {
  const resource = {
    url: RESOURCE,
    name: 'CRM <prod>',
    scopes: ['mcp:tools'],
  } as unknown as ResourceConfig;
  const noRefusal: AccessRefusal = {
    refusingResource: () => undefined,
    refuse: async () => {
      throw new Error('not refused in this test');
    },
  };

  it('names the client, where the code goes, the resource and scopes, with a CSRF token', async () => {
    const step = consentPageStep({
      findClient: async () => ({
        clientName: 'Evil & <Co>',
        redirectUris: ['http://127.0.0.1:8765/callback'],
      }),
      accounts: {
        find: async () => ({
          sub: 'dev:alice@example.com',
          provider: 'dev',
          email: 'alice@example.com',
        }),
      },
      resources: {
        find: (url) => (url === RESOURCE ? resource : undefined),
        soleResource: () => RESOURCE,
      },
      csrf: { issue: async (uid) => `token-for-${uid}` },
      access: noRefusal,
    });
    const { res, sent } = responseDouble();
    const interaction = consentInteraction({
      missingOIDCScope: ['openid', 'email'],
      missingResourceScopes: { [RESOURCE]: ['mcp:tools'] },
    });
    await step(requestDouble(), res, interaction);
    expect(sent.status).toBe(200);
    const body = sent.body ?? '';
    expect(body).toContain('Allow <em>Evil &amp; &lt;Co&gt;</em>');
    expect(body).toContain('<dd>127.0.0.1:8765</dd>');
    expect(body).toContain('<dd>alice@example.com</dd>');
    expect(body).toContain('<strong>CRM &lt;prod&gt;</strong>');
    expect(body).toContain('<code>mcp:tools</code>');
    expect(body).toContain('Your identity: email');
    expect(body).toContain('action="/interaction/uid-1/confirm"');
    expect(body).toContain('name="csrf" value="token-for-uid-1"');
    // Every redirect URI is on loopback: the page warns that another local program could pose as it.
    expect(body).toContain('Any program on this computer could pose as it');
  });
});
