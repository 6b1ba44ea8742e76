/**
 * Signing keys and cookie secrets: created on first start, kept, rotated without breaking a
 * live token.
 *
 * Where they are kept:
 *  - an explicit JWK Set file (`keys.file`): used as given, never rotated by us;
 *  - the embedded default (memory store): `<dataDir>/keys.json`, mode 0600, so a restart
 *    keeps tokens valid and browser sessions signed;
 *  - Redis: in the store itself, so every replica signs with and publishes the same keys.
 *    Replicas starting together race with `setIfAbsent`; the loser adopts the winner's keys.
 *
 * Rotation: when the newest key is older than `keys.rotateAfter`, a new key is generated
 * and put first (oidc-provider signs with the first key of an algorithm). Older keys stay in
 * the JWKS until no token they signed can still be valid (newest key's age must exceed the
 * longest token lifetime before an older key is dropped), so rotation never invalidates a
 * live token.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { KEY_MATERIAL_KEY } from '../store/keys.js';
import type { Store } from '../store/store.js';

/** Access tokens and ID tokens are signed with RS256 (verification is cheap for `/verify`). */
export const SIGNING_ALG = 'RS256';

export interface StoredKey {
  jwk: JWK;
  /** Epoch seconds. */
  createdAt: number;
}

export interface KeyMaterial {
  /** Private signing keys, newest first. */
  keys: StoredKey[];
  /** Secrets for signing cookies, newest first (oidc-provider `cookies.keys`). */
  cookieSecrets: string[];
}

export type KeyLocation =
  | { kind: 'file'; file: string }
  | { kind: 'dataDir'; dir: string }
  | { kind: 'store'; store: Store };

export interface KeyPolicy {
  rotateAfter: number;
  /** The longest lifetime of anything signed: older keys stay published this long. */
  maxTokenLifetime: number;
}

export async function generateSigningKey(now: number): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, {
    extractable: true,
    modulusLength: 2048,
  });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  jwk.alg = SIGNING_ALG;
  jwk.use = 'sig';
  return { jwk, createdAt: now };
}

function newCookieSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Returns what to sign with, creating or rotating keys as the policy says and persisting the
 * result where the location says.
 */
export async function loadKeyMaterial(
  location: KeyLocation,
  policy: KeyPolicy,
  now = Math.floor(Date.now() / 1000),
): Promise<KeyMaterial> {
  if (location.kind === 'file') return readJwksFile(location.file);

  const existing = await readMaterial(location);
  if (!existing) {
    const created: KeyMaterial = {
      keys: [await generateSigningKey(now)],
      cookieSecrets: [newCookieSecret()],
    };
    return writeMaterial(location, created, undefined);
  }
  const rotated = await rotate(existing, policy, now);
  if (rotated === existing) return existing;
  return writeMaterial(location, rotated, existing);
}

/**
 * Reads the current keys without creating or rotating any (for verifiers on replicas that
 * must learn of a rotation another replica made).
 */
export async function readKeyMaterial(location: KeyLocation): Promise<KeyMaterial | undefined> {
  if (location.kind === 'file') return readJwksFile(location.file);
  return readMaterial(location);
}

/** The rotation rule, pure apart from key generation (exported for tests). */
export async function rotate(
  material: KeyMaterial,
  policy: KeyPolicy,
  now: number,
): Promise<KeyMaterial> {
  const newest = material.keys[0];
  let keys = material.keys;
  let cookieSecrets = material.cookieSecrets;
  if (!newest || now - newest.createdAt >= policy.rotateAfter) {
    keys = [await generateSigningKey(now), ...keys];
    cookieSecrets = [newCookieSecret(), ...cookieSecrets].slice(0, 3);
  }
  // A key is retired once its successor has been signing longer than any token lives.
  const retained = keys.filter((key, index) => {
    if (index === 0) return true;
    const successor = keys[index - 1]!;
    return now - successor.createdAt < policy.maxTokenLifetime;
  });
  if (retained.length === material.keys.length && keys === material.keys) return material;
  return { keys: retained, cookieSecrets };
}

async function readMaterial(
  location: Exclude<KeyLocation, { kind: 'file' }>,
): Promise<KeyMaterial | undefined> {
  if (location.kind === 'store') {
    return (
      (await location.store.get<KeyMaterial & Record<string, unknown>>(KEY_MATERIAL_KEY)) ??
      undefined
    );
  }
  try {
    return JSON.parse(await readFile(path.join(location.dir, 'keys.json'), 'utf8')) as KeyMaterial;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(
      `cannot read ${path.join(location.dir, 'keys.json')}: ${(error as Error).message}`,
    );
  }
}

async function writeMaterial(
  location: Exclude<KeyLocation, { kind: 'file' }>,
  material: KeyMaterial,
  previous: KeyMaterial | undefined,
): Promise<KeyMaterial> {
  if (location.kind === 'store') {
    if (!previous) {
      const won = await location.store.setIfAbsent(KEY_MATERIAL_KEY, { ...material });
      if (!won) return (await readMaterial(location))!;
      return material;
    }
    await location.store.set(KEY_MATERIAL_KEY, { ...material });
    return material;
  }
  await mkdir(location.dir, { recursive: true, mode: 0o700 });
  const file = path.join(location.dir, 'keys.json');
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(material, null, 2), { mode: 0o600 });
  await rename(temporary, file);
  return material;
}

async function readJwksFile(file: string): Promise<KeyMaterial> {
  const parsed = JSON.parse(await readFile(file, 'utf8')) as {
    keys?: JWK[];
    cookieSecrets?: string[];
  };
  if (!Array.isArray(parsed.keys) || parsed.keys.length === 0) {
    throw new Error(`${file}: must be a JWK Set with at least one private key`);
  }
  return {
    keys: parsed.keys.map((jwk) => ({ jwk, createdAt: 0 })),
    cookieSecrets: parsed.cookieSecrets ?? [newCookieSecret()],
  };
}

/** The public part of a private JWK (what the JWKS publishes and verifiers use). */
export function publicJwk(jwk: JWK): JWK {
  const { kty, kid, alg, use, n, e, crv, x, y } = jwk;
  return Object.fromEntries(
    Object.entries({ kty, kid, alg, use, n, e, crv, x, y }).filter(
      ([, value]) => value !== undefined,
    ),
  ) as JWK;
}
