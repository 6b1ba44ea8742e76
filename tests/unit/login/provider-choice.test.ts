/**
 * The provider-choice step (src/login/steps/provider-choice.ts): one sign-in method sends the
 * browser straight to it; several are offered on a page, each a link under the interaction.
 */
import { describe, expect, it } from '@jest/globals';
import type { Interaction } from '../../../src/login/steps/interaction.js';
import { providerChoiceStep } from '../../../src/login/steps/provider-choice.js';
import { requestDouble, responseDouble } from '../web/express-test-doubles.js';

const interaction: Interaction = {
  uid: 'uid-1',
  params: { client_id: 'client-1' },
  prompt: { name: 'login', reasons: ['no_session'], details: {} },
};

describe('provider choice step', () => {
  it('redirects to the only sign-in method', async () => {
    const step = providerChoiceStep({ choices: [{ id: 'corp', name: 'Corp SSO' }] });
    const { res, sent } = responseDouble();
    await step(requestDouble(), res, interaction);
    expect(sent.redirect).toEqual({ status: 303, url: '/interaction/uid-1/login/corp' });
    expect(sent.body).toBeUndefined();
  });

  it('offers every method on a page, in order, with names escaped', async () => {
    const step = providerChoiceStep({
      choices: [
        { id: 'dev', name: 'Development login' },
        { id: 'corp sso', name: '<Corp & Co>' },
      ],
    });
    const { res, sent } = responseDouble();
    await step(requestDouble(), res, interaction);
    expect(sent.status).toBe(200);
    expect(sent.headers['Content-Security-Policy']).toContain("frame-ancestors 'none'");
    const body = sent.body ?? '';
    const dev = body.indexOf('href="/interaction/uid-1/login/dev"');
    const corp = body.indexOf('href="/interaction/uid-1/login/corp%20sso"');
    expect(dev).toBeGreaterThan(0);
    expect(corp).toBeGreaterThan(dev);
    expect(body).toContain('Sign in with &lt;Corp &amp; Co&gt;');
    expect(body).not.toContain('<Corp');
  });
});
