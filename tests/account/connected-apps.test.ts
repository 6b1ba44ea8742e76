/**
 * Grouping a user's grants into connected apps (src/account/connected-apps.ts): one entry per
 * client, in the order of the grants' last use, with what all its grants allow together.
 */
import { describe, expect, it } from '@jest/globals';
import { groupByClient } from '../../src/account/connected-apps.js';
import type { GrantSummary } from '../../src/account/grants.js';

function grant(fields: Partial<GrantSummary> & Pick<GrantSummary, 'grantId' | 'clientId'>) {
  return {
    accountId: 'dev:alice@example.com',
    resources: [],
    oidcScopes: [],
    firstUse: undefined,
    lastUse: undefined,
    expiresAt: undefined,
    ...fields,
  } satisfies GrantSummary;
}

describe('groupByClient', () => {
  it('gives one entry per client, keeping the order of the most recent use', () => {
    const apps = groupByClient([
      grant({ grantId: 'g1', clientId: 'agent-a', lastUse: 300 }),
      grant({ grantId: 'g2', clientId: 'agent-b', lastUse: 200 }),
      grant({ grantId: 'g3', clientId: 'agent-a', lastUse: 100 }),
    ]);
    expect(apps.map((app) => [app.clientId, app.grantIds])).toEqual([
      ['agent-a', ['g1', 'g3']],
      ['agent-b', ['g2']],
    ]);
  });

  it('unites resources, scopes and identity scopes; first use is the earliest, last use the latest', () => {
    const [app] = groupByClient([
      grant({
        grantId: 'g1',
        clientId: 'agent',
        resources: [{ url: 'https://mcp.example.com/crm', scopes: ['crm:read'] }],
        oidcScopes: ['openid'],
        firstUse: 500,
        lastUse: 900,
      }),
      grant({
        grantId: 'g2',
        clientId: 'agent',
        resources: [
          { url: 'https://mcp.example.com/files', scopes: ['files:read'] },
          { url: 'https://mcp.example.com/crm', scopes: ['crm:read', 'crm:write'] },
        ],
        oidcScopes: ['openid', 'email'],
        firstUse: 100,
        lastUse: undefined,
      }),
    ]);
    expect(app).toEqual({
      clientId: 'agent',
      grantIds: ['g1', 'g2'],
      resources: [
        { url: 'https://mcp.example.com/crm', scopes: ['crm:read', 'crm:write'] },
        { url: 'https://mcp.example.com/files', scopes: ['files:read'] },
      ],
      oidcScopes: ['openid', 'email'],
      firstUse: 100,
      lastUse: 900,
    });
  });

  it('gives nothing for no grant', () => {
    expect(groupByClient([])).toEqual([]);
  });
});
