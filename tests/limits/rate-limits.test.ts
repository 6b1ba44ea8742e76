/**
 * The abuse limits (src/limits/): per-IP and per-client limits answered with 429 and
 * Retry-After, shared by replicas through the store, the per-IP registered-clients quota, and
 * the `/verify` failure limiter. The middlewares run on plain Express apps with stub handlers
 * standing in for oidc-provider (and, once, in front of the real gateway, to show that reading
 * the token request's client_id leaves the body intact for oidc-provider).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import express, { type Express } from 'express';
import { Redis } from 'ioredis';
import request from 'supertest';
import { configSchema, type GatewayConfig } from '../../src/config/schema.js';
import { loggedSecurityEvents } from '../../src/events/security-events.js';
import { ClientQuota } from '../../src/limits/client-quota.js';
import {
  createRateLimits,
  installLimits,
  limitKeyForIp,
  type RateLimits,
} from '../../src/limits/rate-limits.js';
import type { Logger } from '../../src/logging/logger.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type { Store } from '../../src/store/store.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { captureLogger } from '../helpers/captured-logger.js';
import { waitFor as poll } from '../helpers/poll.js';

/** Polls `condition` until it holds; fails naming `description` after `timeoutMs`. */
async function waitFor(
  condition: () => boolean | Promise<boolean>,
  description: string,
  timeoutMs = 5000,
): Promise<void> {
  await poll(condition, { what: description, timeoutMs, intervalMs: 20 });
}

function limitsConfig(limits: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return configSchema.parse({
    issuer: 'http://localhost:8787',
    login: { dev: { users: ['alice@example.com'] } },
    resources: [{ url: 'http://localhost:3999/mcp', name: 'Test MCP', scopes: ['mcp:tools'] }],
    limits,
    ...extra,
  });
}

interface CapturedLogger {
  logger: Logger;
  events(kind: string): Record<string, unknown>[];
}

function capturedLogger(): CapturedLogger {
  const { logger, records } = captureLogger();
  return {
    logger,
    events: (kind) => records().filter((record) => record.security_event === kind),
  };
}

interface Replica {
  app: Express;
  limits: RateLimits;
  quota: ClientQuota;
  /** Stands in for oidc-provider's events. */
  provider: EventEmitter;
  log: CapturedLogger;
}

/**
 * An Express app with the limits installed and stub handlers behind them. The stubs act as
 * oidc-provider would for what the limits observe: /register stores a client record and
 * emits `registration_create.success`; /token reads the raw body from the stream (as
 * oidc-provider does), emits `grant.success` or, for `client_secret=wrong`,
 * `grant.error(invalid_client)`, and echoes the body it read.
 */
function replica(config: GatewayConfig, store: Store): Replica {
  const log = capturedLogger();
  const events = loggedSecurityEvents(log.logger);
  const limits = createRateLimits({ config, store, logger: log.logger, events });
  const quota = new ClientQuota({ config, store, logger: log.logger, events });
  const provider = new EventEmitter();
  const app = express();
  // Tests pick the client address with X-Forwarded-For.
  app.set('trust proxy', true);
  installLimits(app, provider, limits, quota);
  app.post('/register', async (req, res) => {
    const clientId = `dcr_${randomUUID()}`;
    await store.set(`oidc:Client:${clientId}`, { client_id: clientId }, 3600);
    provider.emit('registration_create.success', { req }, { clientId });
    res.status(201).json({ client_id: clientId });
  });
  app.all('/authorize', (_req, res) => {
    res.status(200).send('authorize');
  });
  app.post('/token', async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const params = new URLSearchParams(body);
    const clientId = params.get('client_id') ?? 'confidential-client';
    const ctx = { oidc: { client: { clientId } } };
    if (params.get('client_secret') === 'wrong') {
      provider.emit('grant.error', ctx, { error: 'invalid_client' });
      res.status(401).json({ error: 'invalid_client', body });
      return;
    }
    provider.emit('grant.success', ctx);
    res.status(200).json({ body });
  });
  app.use((_req, res) => {
    res.status(200).send('other');
  });
  return { app, limits, quota, provider, log };
}

const FORM = 'application/x-www-form-urlencoded';

function tokenRequest(app: Express, ip: string, clientId: string, extra = '') {
  return request(app)
    .post('/token')
    .set('X-Forwarded-For', ip)
    .type(FORM)
    .send(`grant_type=refresh_token&refresh_token=rt&client_id=${clientId}${extra}`);
}

describe('abuse limits with the memory store', () => {
  let store: MemoryStore;

  beforeAll(() => {
    store = new MemoryStore({ maxEntries: 10_000 });
  });

  afterAll(async () => {
    await store.close();
  });

  it('limits registrations per IP: 429, Retry-After within the window, one event', async () => {
    const { app, log } = replica(
      limitsConfig({ register: { points: 2, duration: 600 }, maxClientsPerIp: 100 }),
      store,
    );
    const register = (ip: string) =>
      request(app)
        .post('/register')
        .set('X-Forwarded-For', ip)
        .set('Origin', 'http://localhost:6274')
        .send({ redirect_uris: ['http://127.0.0.1/cb'] });
    await register('198.51.100.1').expect(201);
    await register('198.51.100.1').expect(201);
    const refused = await register('198.51.100.1').expect(429);
    expect(refused.body).toEqual({
      error: 'too_many_requests',
      error_description: expect.stringContaining('registrations'),
    });
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(590);
    expect(retryAfter).toBeLessThanOrEqual(600);
    expect(refused.headers['cache-control']).toBe('no-store');
    // The registration CORS ran first, so a browser-based client can read the refusal.
    expect(refused.headers['access-control-allow-origin']).toBe('http://localhost:6274');
    expect(refused.headers['access-control-expose-headers']).toBe('Retry-After');
    await register('198.51.100.1').expect(429);
    // Another address has its own allowance.
    await register('198.51.100.2').expect(201);

    const events = log.events('rate_limited');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      ip: '198.51.100.1',
      route: '/register',
      keyType: 'ip',
      limit: 'register',
    });
  });

  it('limits GET and POST /authorize per IP on one count, not other routes', async () => {
    const { app } = replica(limitsConfig({ authorize: { points: 3, duration: 60 } }), store);
    const ip = '198.51.100.10';
    await request(app).get('/authorize?client_id=a').set('X-Forwarded-For', ip).expect(200);
    await request(app).post('/authorize').set('X-Forwarded-For', ip).expect(200);
    await request(app).get('/authorize').set('X-Forwarded-For', ip).expect(200);
    const refused = await request(app).post('/authorize').set('X-Forwarded-For', ip).expect(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    await request(app).get('/authorize').set('X-Forwarded-For', ip).expect(429);
    // The interaction resume route under /authorize/ and other routes are not counted.
    await request(app).get('/authorize/some-uid').set('X-Forwarded-For', ip).expect(200);
    await request(app).get('/jwks').set('X-Forwarded-For', ip).expect(200);
  });

  it('limits the login steps per IP, and only those', async () => {
    const { app, log } = replica(limitsConfig({ login: { points: 3, duration: 60 } }), store);
    const ip = '198.51.100.20';
    await request(app).post('/interaction/u1/login/dev').set('X-Forwarded-For', ip).expect(200);
    await request(app).get('/login/callback/github?state=s').set('X-Forwarded-For', ip).expect(200);
    await request(app)
      .get('/interaction/u1/callback/github?code=c')
      .set('X-Forwarded-For', ip)
      .expect(200);
    const refused = await request(app)
      .post('/interaction/u2/login/dev')
      .set('X-Forwarded-For', ip)
      .expect(429);
    expect(refused.headers['content-type']).toMatch(/application\/json/);
    expect(refused.body.error).toBe('too_many_requests');
    // The consent page and the login page itself are not login attempts.
    await request(app).get('/interaction/u2').set('X-Forwarded-For', ip).expect(200);
    await request(app).post('/interaction/u2/confirm').set('X-Forwarded-For', ip).expect(200);
    expect(log.events('rate_limited')[0]).toMatchObject({
      route: '/interaction/u2/login/dev',
      limit: 'login',
    });
  });

  it('limits token requests per IP', async () => {
    const { app } = replica(
      limitsConfig({
        tokenPerIp: { points: 2, duration: 60 },
        tokenPerClient: { points: 100, duration: 60 },
      }),
      store,
    );
    await tokenRequest(app, '198.51.100.30', 'c1').expect(200);
    await tokenRequest(app, '198.51.100.30', 'c2').expect(200);
    const refused = await tokenRequest(app, '198.51.100.30', 'c3').expect(429);
    expect(refused.body.error_description).toMatch(/from this address/);
    await tokenRequest(app, '198.51.100.31', 'c3').expect(200);
  });

  it('limits token requests per client named in the body, leaving the body to the endpoint', async () => {
    const { app, log } = replica(
      limitsConfig(
        { tokenPerIp: { points: 100, duration: 60 }, tokenPerClient: { points: 2, duration: 60 } },
        { cors: { allowedOrigins: ['http://localhost:6274'] } },
      ),
      store,
    );
    const client = `dcr_${randomUUID()}`;
    // The endpoint behind the limit reads the same bytes the client sent.
    const first = await tokenRequest(app, '198.51.100.40', client, '&resource=x').expect(200);
    expect(first.body.body).toBe(
      `grant_type=refresh_token&refresh_token=rt&client_id=${client}&resource=x`,
    );
    // The client's limit follows it across addresses.
    await tokenRequest(app, '198.51.100.41', client).expect(200);
    const refused = await tokenRequest(app, '198.51.100.42', client)
      .set('Origin', 'http://localhost:6274')
      .expect(429);
    expect(refused.body.error_description).toMatch(/for this client/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(refused.headers['access-control-allow-origin']).toBe('http://localhost:6274');
    expect(refused.headers['access-control-expose-headers']).toBe('Retry-After');
    // An origin that may not call the token endpoint gets no CORS header on the refusal.
    const foreign = await tokenRequest(app, '198.51.100.42', client)
      .set('Origin', 'https://evil.example')
      .expect(429);
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    // Other clients are unaffected.
    await tokenRequest(app, '198.51.100.42', `dcr_${randomUUID()}`).expect(200);
    expect(log.events('rate_limited')).toEqual([
      expect.objectContaining({ keyType: 'client', clientId: client, limit: 'tokenPerClient' }),
    ]);
  });

  it('counts only authenticated token requests per client, and reads HTTP Basic ids', async () => {
    const { app } = replica(
      limitsConfig({
        tokenPerIp: { points: 100, duration: 60 },
        tokenPerClient: { points: 2, duration: 60 },
      }),
      store,
    );
    const client = `dcr_${randomUUID()}`;
    // Failed client authentication (invalid_client) does not use up the client's allowance.
    for (let i = 0; i < 4; i += 1) {
      await tokenRequest(app, '198.51.100.50', client, '&client_secret=wrong').expect(401);
    }
    await tokenRequest(app, '198.51.100.50', client).expect(200);
    await tokenRequest(app, '198.51.100.50', client).expect(200);
    await tokenRequest(app, '198.51.100.50', client).expect(429);
    // HTTP Basic: the stub counts "confidential-client"; the header names it.
    const basic = (id: string) =>
      request(app)
        .post('/token')
        .set('X-Forwarded-For', '198.51.100.51')
        .set('Authorization', `Basic ${Buffer.from(`${id}:secret`).toString('base64')}`)
        .type(FORM)
        .send('grant_type=refresh_token&refresh_token=rt');
    await basic('confidential-client').expect(200);
    await basic('confidential-client').expect(200);
    await basic('confidential-client').expect(429);
    await basic('someone-else').expect(200);
  });

  it('does not limit Client ID Metadata Document clients per client', async () => {
    const { app } = replica(
      limitsConfig({
        tokenPerIp: { points: 100, duration: 60 },
        tokenPerClient: { points: 1, duration: 60 },
      }),
      store,
    );
    const cimd = encodeURIComponent('https://app.example.com/client.json');
    for (let i = 0; i < 3; i += 1) {
      await tokenRequest(app, `198.51.100.${60 + i}`, cimd).expect(200);
    }
    await tokenRequest(app, '198.51.100.70', 'dcr_x1').expect(200);
    await tokenRequest(app, '198.51.100.70', 'dcr_x1').expect(429);
  });

  it('applies blockDuration once a client reaches its limit', async () => {
    const { app } = replica(
      limitsConfig({
        tokenPerIp: { points: 100, duration: 60 },
        tokenPerClient: { points: 1, duration: 5, blockDuration: 900 },
      }),
      store,
    );
    await tokenRequest(app, '198.51.100.80', 'dcr_blocked').expect(200);
    let retryAfter = 0;
    // The block is written after the counted request's answer: poll for it.
    await waitFor(async () => {
      const res = await tokenRequest(app, '198.51.100.80', 'dcr_blocked');
      retryAfter = Number(res.headers['retry-after'] ?? 0);
      return res.status === 429 && retryAfter > 800;
    }, 'the block');
    expect(retryAfter).toBeLessThanOrEqual(900);
  });

  it('caps the live clients one IP has registered, freeing a slot when a client is gone', async () => {
    const { app, quota, log } = replica(
      limitsConfig({ register: { points: 100, duration: 60 }, maxClientsPerIp: 2 }),
      store,
    );
    const register = (ip: string) =>
      request(app)
        .post('/register')
        .set('X-Forwarded-For', ip)
        .send({ redirect_uris: ['http://127.0.0.1/cb'] });
    const first = await register('203.0.113.1').expect(201);
    await register('203.0.113.1').expect(201);
    await waitFor(async () => (await quota.count('203.0.113.1')) === 2, 'two recorded clients');
    const refused = await register('203.0.113.1').expect(429);
    expect(refused.headers['retry-after']).toBe('3600');
    expect(refused.body.error).toBe('too_many_requests');
    expect(log.events('registration_refused')).toEqual([
      expect.objectContaining({ ip: '203.0.113.1', limit: 'maxClientsPerIp' }),
    ]);
    // A refused registration took no slot; another address has its own quota.
    expect(await quota.count('203.0.113.1')).toBe(2);
    await register('203.0.113.2').expect(201);
    // One of the address's clients expires (or is deleted): its slot is free again.
    await store.delete(`oidc:Client:${first.body.client_id as string}`);
    await register('203.0.113.1').expect(201);
    await register('203.0.113.1').expect(429);
  });

  it('counts an IPv6 host by its /64', async () => {
    expect(limitKeyForIp('192.0.2.7')).toBe('192.0.2.7');
    expect(limitKeyForIp('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(limitKeyForIp('2001:db8:0:1:aaaa::1')).toBe('2001:db8:0:1::/64');
    expect(limitKeyForIp('2001:DB8:0:1::2')).toBe('2001:db8:0:1::/64');
    expect(limitKeyForIp('2001:0db8:0000:0001:ffff:ffff:ffff:ffff')).toBe('2001:db8:0:1::/64');
    expect(limitKeyForIp('::1')).toBe('0:0:0:0::/64');
    expect(limitKeyForIp('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(limitKeyForIp('2001:db8::')).toBe('2001:db8:0:0::/64');
    expect(limitKeyForIp('::2001:db8:1:2')).toBe('0:0:0:0::/64');

    const { app } = replica(limitsConfig({ authorize: { points: 2, duration: 60 } }), store);
    await request(app).get('/authorize').set('X-Forwarded-For', '2001:db8:5:6::1').expect(200);
    await request(app).get('/authorize').set('X-Forwarded-For', '2001:db8:5:6::2').expect(200);
    await request(app).get('/authorize').set('X-Forwarded-For', '2001:db8:5:6:ff::9').expect(429);
    await request(app).get('/authorize').set('X-Forwarded-For', '2001:db8:5:7::1').expect(200);
  });

  it('blocks /verify failures past the limit, then unblocks after the window', async () => {
    const log = capturedLogger();
    const limits = createRateLimits({
      config: limitsConfig({ verifyFailures: { points: 3, duration: 1 } }),
      store,
      logger: log.logger,
      events: loggedSecurityEvents(log.logger),
    });
    const verify = limits.verifyFailures;
    const ip = '192.0.2.50';
    expect(verify.active).toBe(false);
    expect(verify.isBlocked(ip)).toBe(0);
    for (let i = 0; i < 3; i += 1) verify.recordFailure(ip);
    // Three failures are within the limit: give the counting time to land, still not blocked.
    await new Promise((resolve) => setImmediate(resolve));
    expect(verify.isBlocked(ip)).toBe(0);
    verify.recordFailure(ip);
    await waitFor(() => verify.isBlocked(ip) > 0, 'the IP to be blocked');
    expect(verify.active).toBe(true);
    expect(verify.isBlocked(ip)).toBeLessThanOrEqual(1);
    expect(verify.isBlocked('192.0.2.51')).toBe(0);
    expect(log.events('rate_limited')).toEqual([
      expect.objectContaining({ ip, route: '/verify', keyType: 'ip', limit: 'verifyFailures' }),
    ]);
    await waitFor(() => verify.isBlocked(ip) === 0, 'the IP to be unblocked', 3000);
    // A new window: the IP is counted from zero again.
    verify.recordFailure(ip);
    await new Promise((resolve) => setImmediate(resolve));
    expect(verify.isBlocked(ip)).toBe(0);
  });

  it('does nothing with limits.enabled: false', async () => {
    const config = limitsConfig({
      enabled: false,
      register: { points: 1, duration: 60 },
      authorize: { points: 1, duration: 60 },
      tokenPerIp: { points: 1, duration: 60 },
      tokenPerClient: { points: 1, duration: 60 },
      login: { points: 1, duration: 60 },
      verifyFailures: { points: 1, duration: 60 },
      maxClientsPerIp: 1,
    });
    const { app, limits } = replica(config, store);
    const ip = '192.0.2.99';
    for (let i = 0; i < 3; i += 1) {
      await request(app).post('/register').set('X-Forwarded-For', ip).send({}).expect(201);
      await request(app).get('/authorize').set('X-Forwarded-For', ip).expect(200);
      await tokenRequest(app, ip, 'dcr_same').expect(200);
      await request(app).post('/interaction/u/login/dev').set('X-Forwarded-For', ip).expect(200);
      limits.verifyFailures.recordFailure(ip);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(limits.verifyFailures.active).toBe(false);
    expect(limits.verifyFailures.isBlocked(ip)).toBe(0);
  });
});

describe('the token limit in front of the real oidc-provider', () => {
  let gw: RunningGateway;
  let outer: Express;
  let server: Server;

  beforeAll(async () => {
    gw = await startGateway(() => ({
      limits: {
        tokenPerIp: { points: 100, duration: 60 },
        tokenPerClient: { points: 2, duration: 60 },
      },
    }));
    const logger = capturedLogger().logger;
    const events = loggedSecurityEvents(logger);
    const deps = { config: gw.config, store: gw.gateway.store, logger, events };
    const limits = createRateLimits(deps);
    const quota = new ClientQuota(deps);
    outer = express();
    installLimits(outer, gw.gateway.provider, limits, quota);
    outer.use(gw.gateway.app);
    server = outer.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await gw?.stop();
  });

  async function registerClient(metadata: Record<string, unknown>) {
    const res = await request(outer)
      .post('/register')
      .send({ redirect_uris: ['http://127.0.0.1:33418/callback'], ...metadata })
      .expect(201);
    return res.body as { client_id: string; client_secret?: string };
  }

  const codeExchange = (clientId: string) =>
    new URLSearchParams({
      grant_type: 'authorization_code',
      code: 'not-a-code',
      redirect_uri: 'http://127.0.0.1:33418/callback',
      code_verifier: 'v'.repeat(43),
      client_id: clientId,
    }).toString();

  it('leaves the body for oidc-provider, counts the client, then refuses it', async () => {
    const { client_id: clientId } = await registerClient({ token_endpoint_auth_method: 'none' });
    // invalid_grant (not invalid_request: "no client authentication mechanism provided")
    // shows oidc-provider read client_id, grant_type and code from the body.
    for (let i = 0; i < 2; i += 1) {
      const res = await request(outer).post('/token').type(FORM).send(codeExchange(clientId));
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    }
    await waitFor(async () => {
      const res = await request(outer).post('/token').type(FORM).send(codeExchange(clientId));
      return res.status === 429;
    }, 'the client to be refused');
  });

  it('puts a body that arrives in several pieces back whole', async () => {
    const { client_id: clientId } = await registerClient({ token_endpoint_auth_method: 'none' });
    const body = codeExchange(clientId);
    const { port } = server.address() as AddressInfo;
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/token',
          headers: { 'Content-Type': FORM, 'Content-Length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk) => (text += String(chunk)));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 20));
      req.flushHeaders();
      setTimeout(() => {
        req.write(body.slice(20, 60));
        setTimeout(() => req.end(body.slice(60)), 50);
      }, 50);
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_grant' });
  });

  it('does not count failed client authentication against a confidential client', async () => {
    const client = await registerClient({ token_endpoint_auth_method: 'client_secret_basic' });
    const basic = (secret: string) =>
      request(outer)
        .post('/token')
        .set(
          'Authorization',
          `Basic ${Buffer.from(`${client.client_id}:${secret}`).toString('base64')}`,
        )
        .type(FORM)
        .send(
          new URLSearchParams({
            grant_type: 'authorization_code',
            code: 'not-a-code',
            redirect_uri: 'http://127.0.0.1:33418/callback',
            code_verifier: 'v'.repeat(43),
          }).toString(),
        );
    for (let i = 0; i < 4; i += 1) {
      const res = await basic('wrong-secret');
      expect(res.status).toBe(401);
      expect(res.body.error).toBe('invalid_client');
    }
    // With its real secret the client still has its whole allowance.
    const res = await basic(client.client_secret!);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });
});

describeWithBinary('redis-server', 'abuse limits shared by replicas through Redis', () => {
  let server: RedisServer;
  const opened: RedisStore[] = [];

  beforeAll(async () => {
    server = await startRedis();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  afterAll(async () => {
    await server?.stop();
  });

  function redisStore(keyPrefix: string, url = server.url): RedisStore {
    const store = new RedisStore({ url, keyPrefix, onError: () => undefined });
    opened.push(store);
    return store;
  }

  /**
   * Two replicas: each its own RedisStore connection and limiters, one Redis. Connected before
   * use: until its connection is ready, a replica limits in its own memory (the insurance).
   */
  async function twoReplicas(config: GatewayConfig): Promise<[Replica, Replica, string]> {
    const prefix = `test:${randomUUID()}:`;
    const stores = [redisStore(prefix), redisStore(prefix)] as const;
    await Promise.all(stores.map((store) => store.ping()));
    return [replica(config, stores[0]), replica(config, stores[1]), prefix];
  }

  it('shares the per-IP count between replicas, under the store prefix', async () => {
    const [a, b, prefix] = await twoReplicas(
      limitsConfig({ authorize: { points: 3, duration: 60 } }),
    );
    const ip = '198.51.100.100';
    await request(a.app).get('/authorize').set('X-Forwarded-For', ip).expect(200);
    await request(b.app).get('/authorize').set('X-Forwarded-For', ip).expect(200);
    await request(a.app).get('/authorize').set('X-Forwarded-For', ip).expect(200);
    const refused = await request(b.app).get('/authorize').set('X-Forwarded-For', ip).expect(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    await request(a.app).get('/authorize').set('X-Forwarded-For', ip).expect(429);

    const raw = new Redis(server.url);
    try {
      await expect(raw.get(`${prefix}limits:authorize:${ip}`)).resolves.toBe('5');
      const ttl = await raw.ttl(`${prefix}limits:authorize:${ip}`);
      expect(ttl).toBeGreaterThan(55);
      expect(ttl).toBeLessThanOrEqual(60);
    } finally {
      raw.disconnect();
    }
  });

  it('shares the per-client token count: counted on one replica, refused on the other', async () => {
    const [a, b] = await twoReplicas(
      limitsConfig({
        tokenPerIp: { points: 100, duration: 60 },
        tokenPerClient: { points: 2, duration: 60 },
      }),
    );
    const client = `dcr_${randomUUID()}`;
    await tokenRequest(a.app, '198.51.100.110', client).expect(200);
    await tokenRequest(a.app, '198.51.100.110', client).expect(200);
    await waitFor(
      async () => (await tokenRequest(b.app, '198.51.100.111', client)).status === 429,
      'replica b to refuse the client',
    );
  });

  it('shares the registered-clients quota between replicas', async () => {
    const [a, b] = await twoReplicas(
      limitsConfig({ register: { points: 100, duration: 60 }, maxClientsPerIp: 2 }),
    );
    const register = (app: Express) =>
      request(app).post('/register').set('X-Forwarded-For', '203.0.113.50').send({});
    await register(a.app).expect(201);
    await register(b.app).expect(201);
    await waitFor(async () => (await a.quota.count('203.0.113.50')) === 2, 'both recorded');
    await register(a.app).expect(429);
    await register(b.app).expect(429);
  });

  it('spreads a /verify block to every replica on its next failure', async () => {
    const [a, b] = await twoReplicas(limitsConfig({ verifyFailures: { points: 2, duration: 30 } }));
    const ip = '192.0.2.200';
    a.limits.verifyFailures.recordFailure(ip);
    a.limits.verifyFailures.recordFailure(ip);
    a.limits.verifyFailures.recordFailure(ip);
    await waitFor(() => a.limits.verifyFailures.isBlocked(ip) > 0, 'replica a to block');
    expect(a.limits.verifyFailures.isBlocked(ip)).toBeGreaterThan(25);
    expect(b.limits.verifyFailures.active).toBe(false);
    // Replica b has seen none of those failures; its first one finds the shared count over.
    b.limits.verifyFailures.recordFailure(ip);
    await waitFor(() => b.limits.verifyFailures.isBlocked(ip) > 0, 'replica b to block');
  });

  it('keeps limiting in each process while Redis is unreachable', async () => {
    const down = await startRedis();
    const store = redisStore(`test:${randomUUID()}:`, down.url);
    const { app } = replica(limitsConfig({ authorize: { points: 2, duration: 60 } }), store);
    await down.stop();
    await waitFor(() => store.client.status !== 'ready', 'the connection to drop');
    const ip = '198.51.100.200';
    const answers: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      answers.push((await request(app).get('/authorize').set('X-Forwarded-For', ip)).status);
    }
    expect(answers).toEqual([200, 200, 429]);
  });
});
