import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, jwtVerify } from 'jose';
import {
  generateSigningKey,
  loadKeyMaterial,
  rotate,
  type KeyMaterial,
} from '../../src/keys/key-material.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { startGateway } from '../helpers/gateway.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';

const DAY = 24 * 3600;
const policy = { rotateAfter: 90 * DAY, maxTokenLifetime: 900 };

describe('signing keys', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-keys-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('creates keys on first start, keeps them (mode 0600) and reuses them', async () => {
    const first = await loadKeyMaterial({ kind: 'dataDir', dir }, policy);
    const file = path.join(dir, 'keys.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = await loadKeyMaterial({ kind: 'dataDir', dir }, policy);
    expect(second.keys.map((key) => key.jwk.kid)).toEqual(first.keys.map((key) => key.jwk.kid));
    expect(JSON.parse(await readFile(file, 'utf8')).keys[0].jwk.d).toEqual(expect.any(String));
  });

  it('lets the first of several replicas create the keys in the store', async () => {
    const store = new MemoryStore({ maxEntries: 1000 });
    const results = await Promise.all(
      Array.from({ length: 4 }, () => loadKeyMaterial({ kind: 'store', store }, policy)),
    );
    const kids = new Set(results.map((material) => material.keys[0]!.jwk.kid));
    expect(kids.size).toBe(1);
  });

  it('rotates an old key and keeps the old one published until its tokens expired', async () => {
    const now = 1_000_000_000;
    const old: KeyMaterial = {
      keys: [await generateSigningKey(now - 100 * DAY)],
      cookieSecrets: ['s'],
    };
    const rotated = await rotate(old, policy, now);
    expect(rotated.keys).toHaveLength(2);
    expect(rotated.keys[0]!.createdAt).toBe(now);
    expect(rotated.keys[1]!.jwk.kid).toBe(old.keys[0]!.jwk.kid);
    // Still within the longest token lifetime after rotation: the old key stays.
    expect((await rotate(rotated, policy, now + 600)).keys).toHaveLength(2);
    // Past it: retired.
    const later = await rotate(rotated, policy, now + 901);
    expect(later.keys.map((key) => key.jwk.kid)).toEqual([rotated.keys[0]!.jwk.kid]);
  });

  it('keeps a token valid across a restart with rotation', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'mcpgw-rotate-'));
    const first = await startGateway(() => ({ dataDir }));
    let token;
    try {
      const client = await registerClient(first.url);
      ({ token } = await obtainTokens(first.url, {
        client,
        resource: 'http://localhost:3999/mcp',
      }));
    } finally {
      await first.stop();
    }
    // Age the key past keys.rotateAfter (90 days by default), then restart on the same data.
    const file = path.join(dataDir, 'keys.json');
    const material = JSON.parse(await readFile(file, 'utf8')) as KeyMaterial;
    material.keys[0]!.createdAt -= 100 * DAY;
    await writeFile(file, JSON.stringify(material));
    const second = await startGateway(() => ({ dataDir }));
    try {
      const jwks = (await (await fetch(`${second.url}/jwks`)).json()) as {
        keys: { kid: string }[];
      };
      expect(jwks.keys).toHaveLength(2);
      const { payload } = await jwtVerify(
        String(token.body.access_token),
        createLocalJWKSet(jwks as never),
        {
          audience: 'http://localhost:3999/mcp',
        },
      );
      expect(payload.sub).toBe('dev:alice@example.com');
      // New tokens are signed with the new key.
      const client = await registerClient(second.url);
      const fresh = await obtainTokens(second.url, {
        client,
        resource: 'http://localhost:3999/mcp',
      });
      const header = JSON.parse(
        Buffer.from(String(fresh.token.body.access_token).split('.')[0]!, 'base64url').toString(),
      );
      expect(header.kid).toBe(jwks.keys[0]!.kid);
      expect(header.kid).not.toBe(material.keys[0]!.jwk.kid);
    } finally {
      await second.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
