/**
 * Issue 7.3: signing-key rotation under load, no request fails.
 *
 * How the service rotates (src/keys/key-material.ts, src/gateway.ts): only at start-up.
 * `createGateway` calls `loadKeyMaterial` once; when the newest key is older than
 * `keys.rotateAfter` it generates a new key (and a new cookie secret), puts it first and writes
 * the material back (dataDir or Redis). There is no timer: a running replica never rotates, and
 * keeps signing tokens, ID tokens and backend JWTs with, and publishing at /jwks, the keys it
 * started with. The only thing that learns of a rotation at run time is the /verify token
 * verifier on Redis, which re-reads the keys when a token names an unknown `kid` (at most once
 * every 10 s). With one process (memory store) a rotation therefore needs a restart, during
 * which requests fail; with replicas it is a rolling restart.
 *
 * So the test is the rolling restart: replicas A and B on one real redis-server; load runs
 * against both (token issues through the dev login, refreshes, /verify); B is drained, stopped
 * and started again with `rotateAfter: 1 s`, which rotates; load goes on against A and the new
 * B until tokens of both keys have been verified on both replicas. Zero failures allowed.
 * What fails around this (and is a bug) is pinned by the `it.failing` tests at the end.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';
import { RedisStore } from '../../src/store/redis-store.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  obtainTokens,
  pkcePair,
  registerClient,
  tokenRequest,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';
import { pollUntil } from '../helpers/poll.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { forwardedHeaders, limitsOff, waitFor } from './fault-service.js';

const RESOURCE = 'http://localhost:3999/mcp';
const KEY_PREFIX = 'rotation:';

interface Replica {
  name: 'A' | 'B' | 'B2';
  url: string;
  gw: RunningGateway;
  live: boolean;
  inFlight: number;
}

interface IssuedToken {
  token: string;
  kid: string;
}

interface Grant {
  client: RegisteredClient;
  refreshToken: string;
}

interface StoredKeys {
  keys: { createdAt: number; jwk: { kid: string } }[];
  cookieSecrets: string[];
}

const kidOf = (token: string) => String(decodeProtectedHeader(token).kid);

async function jwksKids(url: string): Promise<string[]> {
  const jwks = (await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] };
  return jwks.keys.map((key) => key.kid);
}

async function verifyStatus(url: string, token: string): Promise<number> {
  const response = await fetch(`${url}/verify`, { headers: forwardedHeaders(token) });
  await response.arrayBuffer();
  return response.status;
}

describeWithBinary('redis-server', 'signing-key rotation under load (two replicas)', () => {
  let redis: RedisServer;
  let store: RedisStore;
  let a: Replica;
  let b: Replica;
  /** B after its restart with rotation. */
  let restarted: Replica;
  let issuer: string;
  let oldKid: string;
  let newKid: string;
  /** Replicas to stop at the end (B, then the restarted B, then others). */
  const extra: RunningGateway[] = [];

  /** Raw configuration of a replica: A's issuer (one issuer behind a load balancer). */
  const replicaConfig =
    (prefix: string, more: Record<string, unknown> = {}) =>
    (own: string): Record<string, unknown> => ({
      issuer: issuer ?? own,
      store: { redis: { url: redis.url, keyPrefix: prefix } },
      log: { level: 'info' },
      ...limitsOff(),
      ...more,
    });

  const startReplica = async (
    name: Replica['name'],
    prefix = KEY_PREFIX,
    more: Record<string, unknown> = {},
    port?: number,
  ): Promise<Replica> => {
    const gw = await startGateway(replicaConfig(prefix, more), port ? { port } : {});
    return {
      name,
      gw,
      url: `http://127.0.0.1:${gw.config.listen.port}`,
      live: true,
      inFlight: 0,
    };
  };

  const storedKeys = async (prefix = KEY_PREFIX) => {
    const keyed = new RedisStore({ url: redis.url, keyPrefix: prefix });
    try {
      return (await keyed.get<StoredKeys & Record<string, unknown>>('keys:material'))!;
    } finally {
      await keyed.close();
    }
  };

  beforeAll(async () => {
    redis = await startRedis();
    store = new RedisStore({ url: redis.url, keyPrefix: KEY_PREFIX });
    const first = await startGateway(replicaConfig(KEY_PREFIX));
    issuer = first.url;
    a = { name: 'A', gw: first, url: first.url, live: true, inFlight: 0 };
    b = await startReplica('B');
    extra.push(b.gw);
    oldKid = (await storedKeys()).keys[0]!.jwk.kid;
  }, 60_000);

  afterAll(async () => {
    for (const gw of extra.reverse()) await gw.stop().catch(() => undefined);
    await a?.gw.stop();
    await store?.close();
    await redis?.stop();
  });

  it('rotates by a rolling restart while tokens are issued, refreshed and verified, and no request fails', async () => {
    const replicas: Replica[] = [a, b];
    const live = () => replicas.filter((replica) => replica.live);
    let turn = 0;
    const nextReplica = () => {
      const choices = live();
      turn += 1;
      return choices[turn % choices.length]!;
    };
    /** Runs `work` against a live replica, counted in flight (for draining before a stop). */
    const onReplica = async <T>(work: (replica: Replica) => Promise<T>) => {
      const replica = nextReplica();
      replica.inFlight += 1;
      try {
        return await work(replica);
      } finally {
        replica.inFlight -= 1;
      }
    };

    const failures: string[] = [];
    const verified = new Map<string, number>(); // `${old|new}@${replica}` → 200 answers
    const issued = new Map<string, number>(); // `${old|new}@${replica}` → tokens issued
    const label = (kid: string) => (kid === oldKid ? 'old' : 'new');
    const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
    const tokens: IssuedToken[] = [];
    const addToken = (token: string, replica: Replica) => {
      const kid = kidOf(token);
      tokens.push({ token, kid });
      bump(issued, `${label(kid)}@${replica.name}`);
    };

    // Grants to refresh, created on both replicas before the rotation.
    const grants: Grant[] = [];
    for (const replica of [a, b, a, b]) {
      const client = await registerClient(replica.url);
      const { token } = await obtainTokens(replica.url, { client, resource: RESOURCE });
      expect(token.status).toBe(200);
      addToken(String(token.body.access_token), replica);
      grants.push({ client, refreshToken: String(token.body.refresh_token) });
    }
    expect(new Set(tokens.map((token) => token.kid))).toEqual(new Set([oldKid]));

    let loading = true;
    const verifyLoop = async () => {
      for (let i = 0; loading; i += 1) {
        // Mostly the newest tokens, now and then any earlier one.
        const index = i % 4 === 0 ? i % tokens.length : Math.max(0, tokens.length - 1 - (i % 8));
        const { token, kid } = tokens[index]!;
        await onReplica(async (replica) => {
          const status = await verifyStatus(replica.url, token).catch((e: Error) => e.message);
          if (status === 200) bump(verified, `${label(kid)}@${replica.name}`);
          else failures.push(`verify ${label(kid)}-key token at ${replica.name}: ${status}`);
        });
      }
    };
    const refreshLoop = async (grant: Grant) => {
      while (loading) {
        await onReplica(async (replica) => {
          const answer = await tokenRequest(replica.url, {
            grant_type: 'refresh_token',
            refresh_token: grant.refreshToken,
            client_id: grant.client.client_id,
          }).catch((e: Error) => ({ status: e.message, body: {} as Record<string, unknown> }));
          if (answer.status !== 200) {
            failures.push(
              `refresh at ${replica.name}: ${answer.status} ${JSON.stringify(answer.body)}`,
            );
            return;
          }
          grant.refreshToken = String(answer.body.refresh_token);
          addToken(String(answer.body.access_token), replica);
        });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const issueLoop = async () => {
      while (loading) {
        await onReplica(async (replica) => {
          try {
            const client = await registerClient(replica.url);
            const { token } = await obtainTokens(replica.url, { client, resource: RESOURCE });
            if (token.status !== 200) throw new Error(`token ${token.status}`);
            addToken(String(token.body.access_token), replica);
          } catch (error) {
            failures.push(`issue at ${replica.name}: ${(error as Error).message}`);
          }
        });
      }
    };
    const load = Promise.all([
      verifyLoop(),
      verifyLoop(),
      verifyLoop(),
      verifyLoop(),
      issueLoop(),
      ...grants.map((grant) => refreshLoop(grant)),
    ]);

    try {
      await waitFor('load on both replicas before the rotation', () =>
        ['old@A', 'old@B'].every((key) => (verified.get(key) ?? 0) >= 200),
      );

      // Rolling restart of B: out of rotation, drained, stopped.
      b.live = false;
      await waitFor('B to drain', () => b.inFlight === 0);
      await b.gw.stop();
      // The key must be older than rotateAfter (1 s) for the restart to rotate.
      await waitFor(
        'the signing key to be older than 1 s',
        async () => Date.now() / 1000 - (await storedKeys()).keys[0]!.createdAt >= 1,
      );
      restarted = await startReplica(
        'B2',
        KEY_PREFIX,
        { keys: { rotateAfter: 1 } },
        Number(new URL(b.url).port),
      );
      extra.push(restarted.gw);
      const material = await storedKeys();
      newKid = material.keys[0]!.jwk.kid;
      expect(newKid).not.toBe(oldKid);
      expect(material.keys.map((key) => key.jwk.kid)).toEqual([newKid, oldKid]);
      // The overlap: the restarted replica publishes both keys, newest first.
      expect(await jwksKids(restarted.url)).toEqual([newKid, oldKid]);
      replicas.push(restarted);
      const issuedBefore = issued.get('old@A') ?? 0;

      // Load goes on against A and the restarted B until tokens of both keys, issued and
      // refreshed on both, have been verified on both.
      await waitFor(
        'tokens of both keys verified on both replicas',
        () =>
          ['old@A', 'new@A', 'old@B2', 'new@B2'].every((key) => (verified.get(key) ?? 0) >= 200) &&
          (issued.get('new@B2') ?? 0) >= 20 &&
          (issued.get('old@A') ?? 0) >= issuedBefore + 20,
        30_000,
      );
    } finally {
      loading = false;
      await load;
    }

    console.log(
      `key rotation: ${tokens.length} tokens issued or refreshed (${[...issued].map(([k, n]) => `${k} ${n}`).join(', ')}); ` +
        `verified: ${[...verified].map(([k, n]) => `${k} ${n}`).join(', ')}; failures ${failures.length}`,
    );
    expect(failures).toEqual([]);
    // The restarted replica signs with the new key; A, never restarted, still with the old.
    expect(issued.get('new@B2')).toBeGreaterThan(0);
    expect(issued.get('new@A') ?? 0).toBe(0);
    // Tokens signed with the old key still verify on the rotated replica, and the new ones
    // on the replica that has not restarted (it re-read the keys from Redis).
    expect(verified.get('old@B2')).toBeGreaterThan(0);
    expect(verified.get('new@A')).toBeGreaterThan(0);
    for (const replica of replicas) {
      expect(replica.gw.logRecords().filter((record) => record.level === 'error')).toEqual([]);
    }
  }, 90_000);

  it('lets a login started on the replica with the old cookie secret finish on the restarted one', async () => {
    const client = await registerClient(a.url);
    expect(await continueLoginElsewhere(a.url, restarted.url, client)).toBe(303);
  });

  // ----- Bugs: what fails around a rotation (each test expects the correct behaviour) -----

  // A running replica never learns of the new key for what it publishes and signs: its
  // provider was built with the key material read at its start (gateway.ts → createProvider
  // `jwks`). During the overlap /jwks answers differently per replica, so a relying party (an
  // MCP server checking the backend JWT, `upstreamAuthorization: jwt`, or an ID token) that
  // fetches the JWKS through the load balancer from A cannot verify what B signed.
  it.failing('known bug: a replica that has not restarted publishes the new key too', async () => {
    expect(newKid).toBeDefined();
    expect(await jwksKids(a.url)).toContain(newKid);
  });

  // The cookie secrets rotate with the keys (rotate() puts a new one first); A still knows
  // only the old ones. A login started on the restarted replica (interaction cookie signed
  // with the new secret) that reaches A fails with "Sign-in expired".
  it.failing(
    'known bug: a login started on the restarted replica can finish on the other one',
    async () => {
      const client = await registerClient(restarted.url);
      expect(await continueLoginElsewhere(restarted.url, a.url, client)).toBe(303);
    },
  );

  // A (never restarted) keeps signing with the old key. Once the new key is older than the
  // longest token lifetime (access token TTL + 5 min), the next replica to start retires the
  // old key from Redis (rotate() keeps an older key only while its successor is younger than
  // maxTokenLifetime) — while A still signs with it. Tokens A issues from then on are refused
  // (401 unknown_key) by the new replica, even after it re-reads the keys.
  it.failing(
    'known bug: a replica started after the old key retired accepts the tokens the old replica still signs',
    async () => {
      // Age the new key past the longest token lifetime (as 16 minutes after the rotation).
      const material = await storedKeys();
      material.keys[0]!.createdAt -= 1000;
      await store.set('keys:material', { ...material });
      const late = await startReplica('B2');
      extra.push(late.gw);
      expect((await storedKeys()).keys.map((key) => key.jwk.kid)).toEqual([newKid]);
      const client = await registerClient(a.url);
      const { token } = await obtainTokens(a.url, { client, resource: RESOURCE });
      const accessToken = String(token.body.access_token);
      expect(kidOf(accessToken)).toBe(oldKid);
      expect(await verifyStatus(late.url, accessToken)).toBe(200);
    },
    30_000,
  );

  // Fixed: the verifier re-read the keys on an unknown `kid` at most once every 10 s, and a
  // token with a made-up kid spent that one reload, so a genuine token of a key rotated in
  // since was refused for up to 10 s. Now at most one re-read per second, shared by
  // concurrent requests.
  it('fixed bug: a replica accepts a token of a freshly rotated key right after a forged kid', async () => {
    const prefix = 'rotation-throttle:';
    const x = await startReplica('A', prefix);
    extra.push(x.gw);
    const forged = `${Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: 'forged' })).toString('base64url')}.${Buffer.from('{}').toString('base64url')}.AAAA`;
    expect(await verifyStatus(x.url, forged)).toBe(401);
    await waitFor(
      'the signing key to be older than 1 s',
      async () => Date.now() / 1000 - (await storedKeys(prefix)).keys[0]!.createdAt >= 1,
    );
    const y = await startReplica('B2', prefix, { keys: { rotateAfter: 1 } });
    extra.push(y.gw);
    const client = await registerClient(y.url);
    const { token } = await obtainTokens(y.url, { client, resource: RESOURCE });
    const accessToken = String(token.body.access_token);
    expect(kidOf(accessToken)).toBe((await storedKeys(prefix)).keys[0]!.jwk.kid);
    // Re-reads are at most 200 ms apart: the token is accepted within a second (the bug was
    // up to 10 s), whatever other re-read happened just before on a loaded machine.
    const { value: status } = await pollUntil(
      () => verifyStatus(x.url, accessToken),
      (seen) => seen === 200,
      { what: 'the other instance to accept a token of the new key', timeoutMs: 1000 },
    );
    expect(status).toBe(200);
  }, 30_000);
});

/**
 * Starts an authorization request at `from` and follows its interaction at `to` with the
 * cookies `from` set, as a load balancer without sticky sessions would. Returns the status
 * of the interaction page at `to` (303 onwards to the login step; 400 "Sign-in expired"
 * when `to` cannot read the cookies).
 */
async function continueLoginElsewhere(
  from: string,
  to: string,
  client: RegisteredClient,
): Promise<number> {
  const start = await fetch(
    authorizeUrl(from, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
    }),
    { redirect: 'manual' },
  );
  const location = start.headers.get('location') ?? '';
  expect(start.status).toBe(303);
  expect(location).toMatch(/^\/interaction\//);
  const cookie = start.headers
    .getSetCookie()
    .map((header) => header.split(';')[0])
    .join('; ');
  const next = await fetch(`${to}${location}`, { headers: { cookie }, redirect: 'manual' });
  await next.arrayBuffer();
  return next.status;
}
