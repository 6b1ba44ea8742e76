/**
 * Scale-out, shown rather than assumed: two auth service processes on one Redis, behind
 * Traefik, serve the same tokens and the same revocations; the benchmark then measures the
 * decisions per second Traefik gets from one process and from both.
 *
 * - **Redis**: the `redis-server` on PATH (the one the tests use), on 127.0.0.1, no
 *   persistence, `noeviction` as the gateway requires.
 * - **Two processes** of the auth service exactly as deployed (`src/main.ts`), each with its
 *   own port and data directory, one `store.redis` and one issuer; they sign with one JWK Set
 *   (`keys.file`, written here) so that the benchmark can mint tokens without a login.
 * - **Traefik** as the load balancer in front of `/verify`: `/one/verify` goes to the first
 *   process, `/two/verify` round-robin to both (Traefik's default). Its entry point keeps the
 *   X-Forwarded-* headers autocannon sends (`forwardedHeaders.insecure`: they stand for the
 *   edge Traefik's forwardAuth request), as an internal load balancer between an edge Traefik
 *   and the replicas would.
 *
 * Before measuring: a token is allowed by each process; its grant is revoked through the
 * gateway's own revocation list on the shared Redis, and both processes must refuse it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { RevocationList } from '../src/forward-auth/revocations.js';
import { generateSigningKey } from '../src/keys/key-material.js';
import { createLogger } from '../src/logging/logger.js';
import { RedisStore } from '../src/store/redis-store.js';
import { benchClaims, mintTokens } from './mint.js';
import {
  DEV_USER,
  freePort,
  ManagedProcess,
  startGateway,
  writeGatewayConfig,
  type Track,
} from './processes.js';
import { benchRouter, launchTraefik } from './traefik.js';

export const SCALE_ROUTES = { one: '/one/verify', two: '/two/verify' } as const;

export interface ScaleOut {
  replicas: [ManagedProcess, ManagedProcess];
  redis: ManagedProcess;
  balancer: ManagedProcess;
  /** Traefik's entry point, e.g. `http://127.0.0.1:PORT`. */
  url: string;
  /** A valid token (never revoked) for the load. */
  token: string;
  /** How long the second process took to refuse the token revoked at the first, in ms. */
  revocationSeenMs: number;
}

/** The version of the `redis-server` on PATH, or `missing`. */
export function redisServerVersion(): Promise<string> {
  return new Promise((resolve) => {
    execFile('redis-server', ['--version'], (error, stdout) => {
      resolve(error ? 'missing' : (/v=(\S+)/.exec(stdout)?.[1] ?? '?'));
    });
  });
}

/** Starts Redis, the two processes and Traefik, and checks tokens and revocations on both. */
export async function startScaleOut(
  dir: string,
  headers: (token: string) => Record<string, string>,
  track: Track,
): Promise<ScaleOut> {
  await mkdir(dir, { recursive: true });
  const redisPort = await freePort();
  const redis = new ManagedProcess(
    'redis',
    [
      '--port',
      String(redisPort),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxmemory-policy',
      'noeviction',
    ],
    'redis-server',
  );
  track(redis);
  await redis.waitUntilOutput(/Ready to accept connections/);
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`;

  // One issuer and one key for both, as replicas behind one public name have.
  const ports = [await freePort(), await freePort()] as const;
  const issuer = `http://localhost:${ports[0]}`;
  const signing = await generateSigningKey(Math.floor(Date.now() / 1000));
  const keysFile = path.join(dir, 'keys.json');
  await writeFile(
    keysFile,
    JSON.stringify({ keys: [signing.jwk], cookieSecrets: [randomBytes(32).toString('base64url')] }),
    { mode: 0o600 },
  );
  const replicas = (await Promise.all(
    ports.map(async (port, index) => {
      const { configFile } = await writeGatewayConfig(
        path.join(dir, `replica-${index + 1}`),
        port,
        [],
        {
          issuer,
          store: { redis: { url: redisUrl } },
          keys: { file: keysFile },
        },
      );
      return startGateway(port, configFile, track);
    }),
  )) as [ManagedProcess, ManagedProcess];

  const balancerPort = await freePort();
  const url = `http://127.0.0.1:${balancerPort}`;
  const servers = (list: readonly number[]) => ({
    loadBalancer: { servers: list.map((port) => ({ url: `http://127.0.0.1:${port}` })) },
  });
  const balancer = await launchTraefik(
    {
      name: 'traefik (balancer)',
      dir: path.join(dir, 'traefik'),
      port: balancerPort,
      readyPath: '/one/healthz',
      entryPoint: { forwardedHeaders: { insecure: true } },
    },
    {
      http: {
        routers: {
          one: benchRouter(SCALE_ROUTES.one, ['strip'], 'one'),
          two: benchRouter(SCALE_ROUTES.two, ['strip'], 'two'),
        },
        middlewares: { strip: { stripPrefixRegex: { regex: ['^/(one|two)'] } } },
        services: { one: servers([ports[0]]), two: servers(ports) },
      },
    },
    track,
  );

  const [token, revoked] = await mintTokens(signing.jwk, benchClaims(issuer), 2, 1);
  const revocationSeenMs = await checkReplicas(ports, redisUrl, headers, token!, revoked!);
  return { replicas, redis, balancer, url, token: token!, revocationSeenMs };
}

/**
 * Both processes allow both tokens; `revoked`'s grant is then revoked through the first
 * process's store (the gateway's own revocation list, as the revocation endpoint does) and
 * both must refuse it within a few seconds. Returns when the second one did, in ms.
 */
async function checkReplicas(
  ports: readonly number[],
  redisUrl: string,
  headers: (token: string) => Record<string, string>,
  token: string,
  revoked: string,
): Promise<number> {
  const status = async (port: number, bearer: string) => {
    const response = await fetch(`http://127.0.0.1:${port}/verify`, { headers: headers(bearer) });
    await response.arrayBuffer();
    return { status: response.status, email: response.headers.get('x-auth-user-email') };
  };
  for (const port of ports) {
    for (const bearer of [token, revoked]) {
      const answer = await status(port, bearer);
      if (answer.status !== 200 || answer.email !== DEV_USER.email) {
        throw new Error(
          `scale-out: the process on port ${port} answered ${answer.status} to a minted token`,
        );
      }
    }
  }
  const store = new RedisStore({ url: redisUrl });
  const logger = createLogger({ level: 'error' });
  try {
    const grantId = String(decodeJwt(revoked).gid);
    const started = performance.now();
    await new RevocationList(store, 3600, 60, logger).revoke(grantId);
    let seenMs = 0;
    for (const port of ports) {
      for (;;) {
        if ((await status(port, revoked)).status === 401) break;
        if (performance.now() - started > 10_000) {
          throw new Error(
            `scale-out: the process on port ${port} still allows a revoked grant after 10 s`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      seenMs = performance.now() - started;
    }
    for (const port of ports) {
      if ((await status(port, token)).status !== 200) {
        throw new Error(
          `scale-out: the process on port ${port} refused a token that was not revoked`,
        );
      }
    }
    console.log(
      `check (scale-out): both processes allow a minted token; its grant revoked through the shared Redis is refused by both within ${seenMs.toFixed(0)} ms; the other token stays allowed`,
    );
    return seenMs;
  } finally {
    await store.close();
    logger.close();
  }
}
