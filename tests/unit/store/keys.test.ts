/**
 * The store's key names are a stored format: a running deployment's Redis holds data under
 * them, so a new release must read it under the same strings. Each is pinned here, written out
 * as the gateway wrote it before the names moved to src/store/keys.ts.
 */
import { describe, expect, it } from '@jest/globals';
import * as keys from '../../../src/store/keys.js';

describe('store key names', () => {
  it('keeps every fixed key and channel byte for byte', () => {
    expect({
      DCR_CLIENT_INDEX: keys.DCR_CLIENT_INDEX,
      CIMD_CLIENT_INDEX: keys.CIMD_CLIENT_INDEX,
      DISABLED_CLIENTS_KEY: keys.DISABLED_CLIENTS_KEY,
      DISABLED_CLIENTS_CHANNEL: keys.DISABLED_CLIENTS_CHANNEL,
      APPROVED_CIMD_HOSTS_KEY: keys.APPROVED_CIMD_HOSTS_KEY,
      PENDING_CIMD_HOSTS_KEY: keys.PENDING_CIMD_HOSTS_KEY,
      REVOCATION_LIST_KEY: keys.REVOCATION_LIST_KEY,
      REVOCATIONS_CHANNEL: keys.REVOCATIONS_CHANNEL,
      CLIENTS_BY_IP_PREFIX: keys.CLIENTS_BY_IP_PREFIX,
      CLIENTS_BY_NETWORK_PREFIX: keys.CLIENTS_BY_NETWORK_PREFIX,
      AUDIT_KEY: keys.AUDIT_KEY,
      DECISIONS_KEY: keys.DECISIONS_KEY,
      SECURITY_EVENTS_KEY: keys.SECURITY_EVENTS_KEY,
      SERVER_IDS_KEY: keys.SERVER_IDS_KEY,
      SERVERS_CHANNEL: keys.SERVERS_CHANNEL,
      KEY_MATERIAL_KEY: keys.KEY_MATERIAL_KEY,
    }).toEqual({
      DCR_CLIENT_INDEX: 'oidc:index:dcr-clients',
      CIMD_CLIENT_INDEX: 'oidc:index:cimd-clients',
      DISABLED_CLIENTS_KEY: 'clients:disabled',
      DISABLED_CLIENTS_CHANNEL: 'clients:disabled',
      APPROVED_CIMD_HOSTS_KEY: 'cimd:hosts:approved',
      PENDING_CIMD_HOSTS_KEY: 'cimd:hosts:pending',
      REVOCATION_LIST_KEY: 'revocations:grants',
      REVOCATIONS_CHANNEL: 'revocations',
      CLIENTS_BY_IP_PREFIX: 'limits:dcr-by-ip:',
      CLIENTS_BY_NETWORK_PREFIX: 'limits:dcr-by-net:',
      AUDIT_KEY: 'audit',
      DECISIONS_KEY: 'activity:decisions',
      SECURITY_EVENTS_KEY: 'activity:security',
      SERVER_IDS_KEY: 'servers:ids',
      SERVERS_CHANNEL: 'servers',
      KEY_MATERIAL_KEY: 'keys:material',
    });
  });

  it('builds every per-record key as before', () => {
    expect([
      keys.recordKey('Client', 'c1'),
      keys.grantRecordsKey('g1'),
      keys.sessionUidKey('u1'),
      keys.accountGrantsKey('a1'),
      keys.clientGrantsKey('c1'),
      keys.grantUseKey('g1'),
      keys.cimdClientKey('https://app.example/client.json'),
      keys.accountKey('oidc:corp:123'),
      keys.consentKey('a1', 'c1'),
      keys.upstreamLoginKey('s1'),
      keys.csrfKey('uid1'),
      keys.csrfKey(keys.adminCsrfName('sess1')),
      keys.csrfKey(keys.accountCsrfName('sess1')),
      keys.sessionBindingKey('d1'),
      keys.sessionQuotaKey('d2'),
      keys.rateLimitPrefix('token'),
      keys.serverKey('s1'),
      keys.serverUrlKey('https://mcp.example/a'),
    ]).toEqual([
      'oidc:Client:c1',
      'oidc:grant:g1',
      'oidc:uid:u1',
      'oidc:account-grants:a1',
      'oidc:client-grants:c1',
      'oidc:grant-use:g1',
      'oidc:cimd-client:https://app.example/client.json',
      'account:oidc:corp:123',
      'consent:a1:c1',
      'upstream-login:s1',
      'csrf:uid1',
      'csrf:admin:sess1',
      'csrf:account:sess1',
      'session:d1',
      'session-quota:d2',
      'limits:token',
      'servers:server:s1',
      'servers:url:https://mcp.example/a',
    ]);
  });

  it('lets a full memory store admit exactly the keys that deny access', () => {
    expect([...keys.RESERVED_KEYS].sort()).toEqual(['clients:disabled', 'revocations:grants']);
  });
});
