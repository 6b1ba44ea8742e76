/**
 * Access tokens for the benchmark without logging in 100 000 times: signed with the auth
 * service's own private key (`<dataDir>/keys.json`, `keys[0].jwk`), carrying exactly the
 * claims of a real access token (oidc-provider's JWT access token plus the gateway's
 * `extraTokenClaims`, src/oauth/provider.ts): header `alg` RS256, `typ` at+jwt, `kid`;
 * `iss`, `sub`, `aud`, `client_id`, `scope`, `iat`, `exp`, `jti`, `email`, `name`, `groups`,
 * `idp`, `gid`. Every token has its own `jti` and `gid`, so every token is distinct.
 *
 * RS256 signing costs about half a millisecond of CPU: the tokens are signed by worker threads.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { JWK } from 'jose';
import { DEV_USER, RESOURCE, RESOURCE_SCOPES } from './processes.js';

export interface TokenClaims {
  issuer: string;
  sub: string;
  audience: string;
  clientId: string;
  scope: string;
  email: string;
  name: string;
  /** Epoch seconds. */
  iat: number;
  exp: number;
}

export interface MintJob {
  jwk: JWK;
  claims: TokenClaims;
  count: number;
}

/** The gateway's current signing key, as it wrote it at start. */
export async function readSigningKey(dataDir: string): Promise<JWK> {
  const material = JSON.parse(await readFile(path.join(dataDir, 'keys.json'), 'utf8')) as {
    keys?: { jwk?: JWK }[];
  };
  const jwk = material.keys?.[0]?.jwk;
  if (!jwk?.d || !jwk.kid) throw new Error(`${dataDir}/keys.json has no private signing key`);
  return jwk;
}

/** The claims of the dev user's token for the benchmark resource, valid for an hour. */
export function benchClaims(issuer: string): TokenClaims {
  const now = Math.floor(Date.now() / 1000);
  return {
    issuer,
    sub: `dev:${DEV_USER.email}`,
    audience: RESOURCE,
    clientId: 'https://client.example.com/oauth/client-metadata.json',
    scope: RESOURCE_SCOPES.join(' '),
    email: DEV_USER.email,
    name: DEV_USER.name,
    iat: now,
    exp: now + 3600,
  };
}

/** Signs `count` distinct tokens on `workers` worker threads. */
export async function mintTokens(
  jwk: JWK,
  claims: TokenClaims,
  count: number,
  workers = 2,
): Promise<string[]> {
  const shares = Array.from(
    { length: workers },
    (_, index) => Math.floor(count / workers) + (index < count % workers ? 1 : 0),
  ).filter((share) => share > 0);
  const threads: Worker[] = [];
  try {
    const parts = await Promise.all(
      shares.map((share) => {
        const job: MintJob = { jwk, claims, count: share };
        const worker = new Worker(new URL('./mint-worker.ts', import.meta.url), {
          workerData: job,
        });
        threads.push(worker);
        return new Promise<string[]>((resolve, reject) => {
          worker.once('message', (joined: string) => resolve(joined.split('\n')));
          worker.once('error', reject);
          worker.once('exit', (code) =>
            reject(new Error(`a minting worker exited (code ${code}) before answering`)),
          );
        });
      }),
    );
    const tokens = parts.flat();
    if (new Set(tokens).size !== count) throw new Error('minted tokens are not all distinct');
    return tokens;
  } finally {
    await Promise.all(threads.map((worker) => worker.terminate()));
  }
}
