/**
 * Issue #14 item 6 at the store level: writes an attacker can drive (here, one session key per
 * `Mcp-Session-Id`, as `/verify` makes) must never evict what denies access. With the memory
 * store's old LRU eviction, 1,500 such keys evicted the disabled-clients set, and the disabled
 * client's tokens were accepted again after the next poll. Now a full store keeps every entry
 * and refuses the new ones.
 */
import { describe, expect, it } from '@jest/globals';
import { DisabledClients } from '../../src/clients/disabled-clients.js';
import { RevocationList } from '../../src/forward-auth/revocations.js';
import { createAdapterFactory } from '../../src/oauth/store-adapter.js';
import { DISABLED_CLIENTS_KEY, recordKey } from '../../src/store/keys.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { StoreFullError } from '../../src/store/store.js';
import { captureLogger } from '../helpers/captured-logger.js';

const BOUND = 1000;

describe('a full memory store keeps what denies access', () => {
  it('keeps a disabled client and a revoked grant while other traffic fills it, and refuses that traffic', async () => {
    const store = new MemoryStore({ maxEntries: BOUND });
    const { logger } = captureLogger();
    const disabled = new DisabledClients(store, 60, logger);
    const revocations = new RevocationList(store, 3600, 60, logger);
    await disabled.start();
    await revocations.start();
    try {
      await disabled.disable('mallory-client');
      await revocations.revoke('stolen-grant');

      // Other traffic: 1,500 distinct session ids from one ordinary token, each one a key
      // with a TTL, as the session binding writes them.
      const refused: unknown[] = [];
      for (let i = 0; i < 1500; i += 1) {
        await store
          .setIfAbsent(`session:attacker-${i}`, { subject: 'eve', clientId: 'eve-app' }, 3600)
          .catch((error: unknown) => refused.push(error));
      }
      // The two deny lists took two slots: the rest went to the attacker, then refusals.
      expect(refused).toHaveLength(1500 - (BOUND - 2));
      expect(refused.every((error) => error instanceof StoreFullError)).toBe(true);

      // After the next poll (a fresh replica reading the store) the client is still disabled
      // and the grant still revoked.
      await expect(store.setMembers(DISABLED_CLIENTS_KEY)).resolves.toStrictEqual([
        'mallory-client',
      ]);
      await disabled.refresh();
      expect(disabled.isDisabled('mallory-client')).toBe(true);
      const freshRevocations = new RevocationList(store, 3600, 60, logger);
      await freshRevocations.start();
      expect(freshRevocations.isRevoked('stolen-grant')).toBe(true);
      await freshRevocations.stop();

      // Writes to what exists still work while full: another client can be disabled.
      await disabled.disable('second-client');
      await disabled.refresh();
      expect(disabled.isDisabled('second-client')).toBe(true);
    } finally {
      await disabled.stop();
      await revocations.stop();
      await store.close();
    }
  });

  it('announces a revocation it cannot record, so that every replica still refuses the grant', async () => {
    const store = new MemoryStore({ maxEntries: 10 });
    const { logger } = captureLogger();
    const replicaA = new RevocationList(store, 3600, 60, logger);
    const replicaB = new RevocationList(store, 3600, 60, logger);
    await replicaA.start();
    await replicaB.start();
    try {
      for (let i = 0; i < 10; i += 1) await store.set(`other:${i}`, { i });
      await expect(replicaA.revoke('stolen-grant')).rejects.toThrow(StoreFullError);
      expect(replicaA.isRevoked('stolen-grant')).toBe(true);
      expect(replicaB.isRevoked('stolen-grant')).toBe(true);
      // A re-read of the (unchanged) store does not make either forget it.
      await replicaA.refresh();
      await replicaB.refresh();
      expect(replicaA.isRevoked('stolen-grant')).toBe(true);
      expect(replicaB.isRevoked('stolen-grant')).toBe(true);
    } finally {
      await replicaA.stop();
      await replicaB.stop();
      await store.close();
    }
  });

  it("deletes a grant's tokens even when its revocation cannot be recorded", async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const full = new StoreFullError('full');
    const Adapter = createAdapterFactory(store, {
      dcrClientTtl: 3600,
      onGrantRevoked: () => Promise.reject(full),
    });
    try {
      const refreshTokens = new Adapter('RefreshToken');
      await refreshTokens.upsert('rt-1', { grantId: 'g-1', accountId: 'alice' }, 600);
      await new Adapter('Grant').upsert('g-1', { accountId: 'alice', clientId: 'app' }, 600);
      await expect(refreshTokens.revokeByGrantId('g-1')).rejects.toBe(full);
      await expect(store.get(recordKey('RefreshToken', 'rt-1'))).resolves.toBeUndefined();
      await expect(store.get(recordKey('Grant', 'g-1'))).resolves.toBeUndefined();
      await expect(refreshTokens.find('rt-1')).resolves.toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
