/**
 * A worker thread of bench/mint.ts: signs `count` access tokens with the gateway's private
 * key and posts them back as one newline-separated string.
 */
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { importJWK, SignJWT } from 'jose';
import type { MintJob } from './mint.js';

/** Signatures in flight per worker: WebCrypto signs on libuv's pool, so overlap JS and RSA. */
const IN_FLIGHT = 8;

const job = workerData as MintJob;
const key = await importJWK(job.jwk, 'RS256');

// oidc-provider's ids (jti, grant ids) are 43 base64url characters; so are these.
const id = () => randomBytes(32).toString('base64url');

function sign(): Promise<string> {
  const { claims } = job;
  return new SignJWT({
    client_id: claims.clientId,
    scope: claims.scope,
    email: claims.email,
    name: claims.name,
    groups: [],
    idp: 'dev',
    gid: id(),
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: job.jwk.kid! })
    .setIssuer(claims.issuer)
    .setSubject(claims.sub)
    .setAudience(claims.audience)
    .setIssuedAt(claims.iat)
    .setExpirationTime(claims.exp)
    .setJti(id())
    .sign(key);
}

const tokens: string[] = [];
while (tokens.length < job.count) {
  const batch = Math.min(IN_FLIGHT, job.count - tokens.length);
  tokens.push(...(await Promise.all(Array.from({ length: batch }, sign))));
}
parentPort!.postMessage(tokens.join('\n'));
