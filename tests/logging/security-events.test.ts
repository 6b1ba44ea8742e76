/**
 * Security events are produced by the running service under a scripted attack: one JSON line
 * per event, with the client's address and what is known of client and subject, never a token.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import winston from 'winston';
import { loggedSecurityEvents } from '../../src/events/security-events.js';
import { createLogger } from '../../src/logging/logger.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  devLogin,
  obtainTokens,
  pkcePair,
  redeemCode,
  registerClient,
  tokenRequest,
} from '../helpers/oauth-flow.js';

const RESOURCE = 'http://localhost:3999/mcp';

describe('security events', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw.stop());

  const events = (kind: string) =>
    gw.logRecords().filter((record) => record.security_event === kind);

  it('records registrations, code replay, refresh token reuse and PKCE failures with the client', async () => {
    const client = await registerClient(gw.url);
    expect(client.client_id).toMatch(/^dcr_[A-Za-z0-9_-]{22}$/);
    expect(events('client_registered').some((event) => event.clientId === client.client_id)).toBe(
      true,
    );

    const first = await obtainTokens(gw.url, { client, resource: RESOURCE });
    await redeemCode(gw.url, {
      code: first.code,
      verifier: first.verifier,
      clientId: client.client_id,
    });
    expect(events('code_replay')[0]).toMatchObject({ clientId: client.client_id });
    expect(String(events('code_replay')[0]!.ip)).toMatch(/127\.0\.0\.1$/);

    const second = await obtainTokens(gw.url, { client, resource: RESOURCE });
    const refresh = {
      grant_type: 'refresh_token',
      refresh_token: String(second.token.body.refresh_token),
      client_id: client.client_id,
    };
    await tokenRequest(gw.url, refresh);
    await tokenRequest(gw.url, refresh);
    expect(events('refresh_token_reuse')[0]).toMatchObject({ clientId: client.client_id });

    const { verifier, challenge } = pkcePair();
    expect(verifier).not.toBe('');
    const login = await devLogin(gw.url, {
      clientId: client.client_id,
      resource: RESOURCE,
      codeChallenge: challenge,
    });
    const pkce = await redeemCode(gw.url, {
      code: login.url.searchParams.get('code')!,
      verifier: pkcePair().verifier,
      clientId: client.client_id,
    });
    expect(pkce.body.error).toBe('invalid_grant');
    expect(events('pkce_failed').length).toBeGreaterThan(0);

    const log = gw.logs.join('\n');
    for (const secret of [
      second.token.body.access_token,
      second.token.body.refresh_token,
      first.code,
    ]) {
      expect(log).not.toContain(String(secret));
    }
  });

  it("records /verify refusals with the client's address from the trusted proxy", async () => {
    await fetch(`${gw.url}/verify`, {
      headers: {
        authorization: 'Bearer not-a-token',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'localhost:3999',
        'x-forwarded-uri': '/mcp',
        'x-forwarded-method': 'POST',
        'x-forwarded-for': '198.51.100.23',
      },
    });
    expect(events('invalid_token').at(-1)).toMatchObject({
      ip: '198.51.100.23',
      resource: RESOURCE,
      level: 'warn',
    });
  });

  it('writes security events, and only those, to the security events file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-events-'));
    const file = path.join(dir, 'security.log');
    const logger = createLogger({
      level: 'info',
      console: false,
      securityEventsFile: file,
      transports: [new winston.transports.Console({ silent: true })],
    });
    logger.info('an ordinary line');
    loggedSecurityEvents(logger).emit('invalid_token', { ip: '192.0.2.1', reason: 'expired' });
    await new Promise<void>((resolve) => {
      logger.on('finish', resolve);
      logger.end();
    });
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      security_event: 'invalid_token',
      ip: '192.0.2.1',
      message: 'invalid_token',
    });
    await rm(dir, { recursive: true, force: true });
  });
});
