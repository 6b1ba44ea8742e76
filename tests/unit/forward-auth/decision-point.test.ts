/**
 * The `node:http` adapter of `/verify` (src/forward-auth/decision-point.ts), with stand-ins for
 * the request and the response (no server): it writes each decision in one `writeHead`/`end`,
 * synchronously for a cached token, counts refusals against the client's address except the
 * normal ones, tells the observers what they are told, answers 500 on a failure and nothing
 * to a client that hung up.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { GatewayConfig } from '../../../src/config/schema.js';
import type { BackendTokenSigner } from '../../../src/forward-auth/backend-token.js';
import type { DecisionOutcome } from '../../../src/forward-auth/decision-observer.js';
import {
  DecisionPoint,
  type DecisionPointDependencies,
} from '../../../src/forward-auth/decision-point.js';
import { captureLogger } from '../../helpers/captured-logger.js';
import {
  accessToken,
  CLIENT,
  decisionParts,
  forwardedHeaders,
  PLAIN,
  PROXY,
  signingKey,
  testVerifier,
  TOOLS,
  type SigningKey,
} from './fixtures.js';

let key: SigningKey;

beforeAll(async () => {
  key = await signingKey('k1');
});

/** What the adapter wrote to the response stand-in. */
interface Written {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  ended: boolean;
  destroyed: boolean;
}

function response(): { res: ServerResponse; written: Written } {
  const written: Written = { ended: false, destroyed: false };
  const res = {
    get headersSent() {
      return written.status !== undefined;
    },
    writeHead(status: number, headers: Record<string, string>) {
      written.status = status;
      written.headers = headers;
      return res;
    },
    end(body?: string) {
      written.body = body;
      written.ended = true;
      return res;
    },
    destroy() {
      written.destroyed = true;
      return res;
    },
  };
  return { res: res as unknown as ServerResponse, written };
}

function incoming(headers: Record<string, string>, body?: Readable): IncomingMessage {
  const req = body ?? Readable.from([]);
  return Object.assign(req, {
    headers: { ...forwardedHeaders(), ...headers },
    socket: { remoteAddress: PROXY },
  }) as unknown as IncomingMessage;
}

function decisionPoint(overrides: Partial<DecisionPointDependencies> = {}) {
  const outcomes: DecisionOutcome[] = [];
  const failures: string[] = [];
  const captured = captureLogger('debug');
  const point = new DecisionPoint({
    config: { verify: { maxBodySize: 1024 } } as GatewayConfig,
    ...decisionParts(key, testVerifier(key).tokens),
    events: { emit: () => undefined },
    logger: captured.logger,
    observers: [{ decided: (outcome) => outcomes.push(outcome) }],
    failureLimiter: {
      active: false,
      isBlocked: () => 0,
      recordFailure: (ip) => failures.push(ip),
    },
    ...overrides,
  });
  return { point, outcomes, failures, captured };
}

/** Resolves once `condition` holds (checked every event-loop turn); fails after 10 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('the condition never held');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Resolves once `written` has an answer or was destroyed. */
const answered = (written: Written) => until(() => written.ended || written.destroyed);

describe('DecisionPoint.handle', () => {
  it('answers a cached token within the call, and tells the observers who and where', async () => {
    const { point, outcomes, failures } = decisionPoint();
    const authorization = `Bearer ${await accessToken(key)}`;
    const first = response();
    point.handle(incoming({ authorization }), first.res);
    await answered(first.written);
    expect(first.written.status).toBe(200);

    const cached = response();
    point.handle(incoming({ authorization }), cached.res);
    // No await: the cached path writes before handle returns.
    expect(cached.written).toMatchObject({ status: 200, ended: true });
    expect(cached.written.headers).toMatchObject({
      'X-Auth-User-Id': 'alice',
      'X-Auth-Client-Id': 'client-1',
      Authorization: '',
      'Content-Length': '0',
    });
    expect(outcomes).toHaveLength(2);
    const outcome = outcomes[1]!;
    expect(outcome).toMatchObject({
      status: 200,
      reason: 'allowed',
      resource: PLAIN,
      subject: 'alice',
      clientId: 'client-1',
      tool: undefined,
    });
    expect(outcome.clientIp()).toBe(CLIENT);
    expect(outcome.seconds).toBeGreaterThanOrEqual(0);
    expect(failures).toEqual([]);
  });

  it('writes a denial as challenges.ts answers it, and counts it against the client', async () => {
    const { point, outcomes, failures } = decisionPoint();
    const foreign = `Bearer ${await accessToken(key, { aud: TOOLS })}`;
    const { res, written } = response();
    point.handle(incoming({ authorization: foreign }), res);
    await answered(written);
    expect(written.status).toBe(401);
    expect(written.headers?.['WWW-Authenticate']).toMatch(/^Bearer error="invalid_token"/);
    expect(JSON.parse(written.body!)).toMatchObject({ error: 'invalid_token' });
    expect(written.headers?.['Content-Length']).toBe(String(Buffer.byteLength(written.body!)));
    expect(failures).toEqual([CLIENT]);
    expect(outcomes[0]).toMatchObject({ status: 401, reason: 'audience', resource: PLAIN });
  });

  it('does not count a request without a token (the normal first step)', () => {
    const { point, outcomes, failures } = decisionPoint();
    const { res, written } = response();
    point.handle(incoming({}), res);
    expect(written.status).toBe(401);
    expect(failures).toEqual([]);
    expect(outcomes[0]).toMatchObject({ status: 401, reason: 'no_token' });
  });

  it('answers 500 when the decision fails, and tells the observers', async () => {
    const { point, outcomes, captured } = decisionPoint({
      backendSigner: {
        tokenFor: () => Promise.reject(new Error('no key')),
      } as unknown as BackendTokenSigner,
    });
    const { res, written } = response();
    const bearer = await accessToken(key, { aud: 'https://mcp.example.com/backend' });
    point.handle(
      incoming({ authorization: `Bearer ${bearer}`, 'x-forwarded-uri': '/backend' }),
      res,
    );
    await answered(written);
    expect(written).toMatchObject({ status: 500, body: '{"error":"server_error"}' });
    expect(outcomes[0]).toMatchObject({ status: 500, reason: 'error', subject: 'alice' });
    expect(captured.records().some((record) => record.message === 'verify failed')).toBe(true);
  });

  it('drops the connection of a client that hung up mid-body, telling no observer', async () => {
    const { point, outcomes, failures } = decisionPoint();
    const body = new Readable({ read() {} });
    body.push('{"jsonrpc":');
    const req = incoming(
      {
        authorization: `Bearer ${await accessToken(key, { aud: TOOLS })}`,
        'x-forwarded-uri': '/tools',
        'content-length': '100',
      },
      body,
    );
    const { res, written } = response();
    point.handle(req, res);
    // Once the body is being read, the client hangs up (node:http's 'aborted').
    await until(() => body.listenerCount('aborted') > 0);
    body.emit('aborted');
    await answered(written);
    expect(written).toMatchObject({ destroyed: true, ended: false });
    expect(outcomes).toEqual([]);
    expect(failures).toEqual([]);
  });
});
