/** The audit trail as the service wires it: `/verify` refusals and OAuth events, one chain. */
import { afterAll, beforeAll, expect, it, describe } from '@jest/globals';
import { verifyChain } from '../../src/audit/verify-chain.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { verifyStatus } from '../helpers/provider-login.js';

const RESOURCE = 'http://localhost:3999/mcp';

describe('the service audit trail', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw?.stop());

  it('chains token issues and /verify refusals (not 401s without a token), never a token', async () => {
    const client = await registerClient(gw.url);
    const { token } = await obtainTokens(gw.url, { client, resource: RESOURCE });
    const accessToken = (token.body as { access_token: string }).access_token;
    expect(await verifyStatus(gw.url, RESOURCE, accessToken)).toBe(200);
    expect(await verifyStatus(gw.url, RESOURCE, `${accessToken.slice(0, -4)}AAAA`)).toBe(401);
    const anonymous = await fetch(`${gw.url}/verify`, {
      headers: {
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'localhost:3999',
        'x-forwarded-uri': '/mcp',
        'x-forwarded-method': 'POST',
      },
    });
    expect(anonymous.status).toBe(401);
    await gw.gateway.audit!.flush();

    const records = (await gw.gateway.store.readChained('audit')).map((entry) => entry.record);
    expect(verifyChain(records).ok).toBe(true);
    const kinds = records.map((record) => record.kind);
    expect(kinds).toEqual(
      expect.arrayContaining(['client_registered', 'token_issued', 'verify_denied']),
    );
    const denials = records.filter((record) => record.kind === 'verify_denied');
    expect(denials).toHaveLength(1);
    expect(denials[0]).toMatchObject({ reason: 'signature', resource: RESOURCE, status: 401 });
    expect(JSON.stringify(records)).not.toContain(accessToken.slice(0, 30));
  });
});
