/**
 * `mcp-gateway clients list|revoke` on a real Redis, against a running gateway on the same
 * Redis: every kind of client is listed (pre-registered, DCR, CIMD seen obtaining tokens),
 * and revoking a client ends its grants for the service at once (refresh refused, `/verify`
 * refuses its access tokens) and deletes a DCR registration; both are audited.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runClientsCommand } from '../../src/cli/clients-command.js';
import { configSchema } from '../../src/config/schema.js';
import { ACCOUNT_CLIENT_ID } from '../../src/oauth/constants.js';
import { DCR_CLIENT_INDEX } from '../../src/store/keys.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { captureIo, listingRows } from '../helpers/cli-io.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { pollUntil } from '../helpers/poll.js';
import {
  devLogin,
  LOOPBACK_REDIRECT,
  obtainTokens,
  pkcePair,
  registerClient,
  tokenRequest,
} from '../helpers/oauth-flow.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { verifyStatus } from '../helpers/provider-login.js';

const RESOURCE = 'http://localhost:3999/mcp';
const PRE_REGISTERED = 'configured-agent';

describe('mcp-gateway clients list|revoke (usage)', () => {
  const memory = configSchema.parse({
    issuer: 'https://auth.example.com',
    resources: [{ url: 'https://mcp.example.com/mcp', name: 'M' }],
    login: { dev: { users: ['a@example.com'] } },
  });

  it('refuses bad invocations with usage and exit 2, and the memory store with exit 1', async () => {
    for (const argv of [['revoke'], ['list', 'x'], ['revoke', 'a', 'b'], ['revoke', 'bad id']]) {
      const io = captureIo();
      expect(await runClientsCommand(argv, memory, io)).toBe(2);
      expect(io.err).toMatch(/usage|not a client id/);
    }
    const io = captureIo();
    expect(await runClientsCommand(['list'], memory, io)).toBe(1);
    expect(io.err).toContain('in-memory store');
  });
});

describeWithBinary('redis-server', 'mcp-gateway clients list|revoke', () => {
  let redis: RedisServer;
  let ca: TestCa;
  let cimd: CimdServer;
  let gw: RunningGateway;

  beforeAll(async () => {
    redis = await startRedis();
    ca = await createTestCa();
    cimd = await startCimdServer(ca, 'Published agent');
    gw = await startGateway(() => ({
      store: { redis: { url: redis.url, keyPrefix: 'clients-cli:' } },
      tls: { caFiles: [ca.caFile] },
      registration: { cimd: { allowHosts: [cimd.host] } },
      clients: [
        {
          client_id: PRE_REGISTERED,
          client_name: 'Configured agent',
          redirect_uris: [LOOPBACK_REDIRECT],
        },
      ],
    }));
  });
  afterAll(async () => {
    await gw?.stop();
    await cimd?.stop();
    await ca?.cleanup();
    await redis?.stop();
  });

  /** Alice authorizes `clientId` and it redeems the code. */
  async function connect(clientId: string) {
    const { token } = await obtainTokens(gw.url, {
      client: { client_id: clientId },
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    return {
      accessToken: String(token.body.access_token),
      refreshToken: String(token.body.refresh_token),
    };
  }

  const verify = (accessToken: string) =>
    verifyStatus(gw.url, 'http://localhost:3999/mcp', accessToken);

  /** Polls `/verify` until it refuses, at most one revocation poll interval. */
  async function refusedWithinPoll(accessToken: string) {
    const { value: status } = await pollUntil(
      () => verify(accessToken),
      (seen) => seen !== 200,
      {
        what: '/verify to refuse the token',
        timeoutMs: gw.config.verify.revocationPollInterval * 1000,
        intervalMs: 10,
      },
    );
    return status;
  }

  const refresh = (refreshToken: string, clientId: string) =>
    tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: clientId,
    });

  it('lists every kind of client with name, redirect hosts, created, last used and grants', async () => {
    // A name with a terminal escape sequence and a tab: printed harmless. Registration refuses
    // such a name now (src/oauth/client-metadata-limits.ts); a client registered before that
    // may still have one, as this one is made to.
    const dcr = await registerClient(gw.url, { client_name: 'Shell agent' });
    const record = await gw.gateway.store.get(`oidc:Client:${dcr.client_id}`);
    await gw.gateway.store.set(
      `oidc:Client:${dcr.client_id}`,
      { ...record, client_name: 'Shell\u001b[2J agent\tx' },
      gw.config.registration.dcr.clientTtl,
    );
    const unused = await registerClient(gw.url, { client_name: 'Never used' });
    await connect(dcr.client_id);
    await connect(cimd.clientId);

    // Token use is recorded just after the token answer: wait for it to show.
    const { value: listed } = await pollUntil(
      async () => {
        const io = captureIo();
        expect(await runClientsCommand(['list'], gw.config, io)).toBe(0);
        expect(io.out.split('\n')[0]).toBe(
          'KIND\tCLIENT_ID\tNAME\tREDIRECT_HOSTS\tCREATED\tLAST_USED\tGRANTS\tEXPIRES\tSTATE',
        );
        return listingRows(io.out);
      },
      (rows) => rows.some((row) => row.KIND === 'cimd' && row.GRANTS === '1'),
      { what: 'the CIMD client listed with its grant', timeoutMs: 5000 },
    );
    const byId = new Map(listed.map((row) => [row.CLIENT_ID, row]));
    const iso = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(byId.get(PRE_REGISTERED)).toEqual({
      KIND: 'pre-registered',
      CLIENT_ID: PRE_REGISTERED,
      NAME: 'Configured agent',
      REDIRECT_HOSTS: '127.0.0.1:8976',
      CREATED: '-',
      LAST_USED: '-',
      GRANTS: '0',
      EXPIRES: '-',
      STATE: 'active',
    });
    expect(byId.get(dcr.client_id)).toEqual({
      KIND: 'dcr',
      CLIENT_ID: dcr.client_id,
      NAME: 'Shell?[2J agent?x',
      REDIRECT_HOSTS: '127.0.0.1:8976',
      CREATED: iso,
      LAST_USED: iso,
      GRANTS: '1',
      EXPIRES: iso,
      STATE: 'active',
    });
    expect(byId.get(unused.client_id)).toMatchObject({ KIND: 'dcr', GRANTS: '0' });
    expect(byId.get(cimd.clientId)).toEqual({
      KIND: 'cimd',
      CLIENT_ID: cimd.clientId,
      NAME: 'Published agent',
      REDIRECT_HOSTS: '127.0.0.1:8976',
      CREATED: iso,
      LAST_USED: iso,
      GRANTS: '1',
      EXPIRES: '-',
      STATE: 'active',
    });
    // The gateway's own account client is no client to govern.
    expect(byId.has(ACCOUNT_CLIENT_ID)).toBe(false);
  });

  it('revokes a DCR client: grants end for the service at once, the registration is deleted, audited', async () => {
    const dcr = await registerClient(gw.url, { client_name: 'Doomed agent' });
    const first = await connect(dcr.client_id);
    const second = await connect(dcr.client_id);
    const other = await connect((await registerClient(gw.url)).client_id);
    expect(await verify(first.accessToken)).toBe(200);

    const io = captureIo();
    expect(await runClientsCommand(['revoke', dcr.client_id], gw.config, io)).toBe(0);
    expect(io.out).toBe(`revoked 2 grants of ${dcr.client_id} and deleted its registration\n`);

    // The running service (another process would be the same: it is all in Redis).
    expect(await refusedWithinPoll(first.accessToken)).toBe(401);
    expect(await refusedWithinPoll(second.accessToken)).toBe(401);
    expect((await refresh(first.refreshToken, dcr.client_id)).body.error).toMatch(
      /invalid_grant|invalid_client/,
    );
    expect(await verify(other.accessToken)).toBe(200);
    // The registration is gone: no new authorization, no longer listed or counted.
    const again = await devLogin(gw.url, {
      clientId: dcr.client_id,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
    });
    expect(again.url.searchParams.get('code')).toBeNull();
    expect(await gw.gateway.store.setMembers(DCR_CLIENT_INDEX)).not.toContain(dcr.client_id);
    const listing = captureIo();
    await runClientsCommand(['list'], gw.config, listing);
    expect(listingRows(listing.out).map((row) => row.CLIENT_ID)).not.toContain(dcr.client_id);

    const records = (await gw.gateway.store.readChained('audit')).map((entry) => entry.record);
    expect(records).toContainEqual(
      expect.objectContaining({
        kind: 'admin_change',
        change: 'revoke-client',
        clientId: dcr.client_id,
        clientKind: 'dcr',
        grants: 2,
        registrationDeleted: true,
        actor: expect.stringMatching(/^cli:/),
      }),
    );
    expect(
      records.filter(
        (record) =>
          record.kind === 'grant_revoked' &&
          record.clientId === dcr.client_id &&
          record.reason === 'admin',
      ),
    ).toHaveLength(2);

    // Again: nothing left of it.
    const twice = captureIo();
    expect(await runClientsCommand(['revoke', dcr.client_id], gw.config, twice)).toBe(1);
    expect(twice.err).toBe(`no such client: ${dcr.client_id}\n`);
  });

  it('revokes the grants of a pre-registered client, which stays configured', async () => {
    const tokens = await connect(PRE_REGISTERED);
    const io = captureIo();
    expect(await runClientsCommand(['revoke', PRE_REGISTERED], gw.config, io)).toBe(0);
    expect(io.out).toContain(`revoked 1 grant of ${PRE_REGISTERED}; it stays configured`);
    expect(await refusedWithinPoll(tokens.accessToken)).toBe(401);
    expect((await refresh(tokens.refreshToken, PRE_REGISTERED)).body.error).toBe('invalid_grant');
    // It can still be authorized anew, with the user's consent.
    const again = await devLogin(gw.url, {
      clientId: PRE_REGISTERED,
      resource: RESOURCE,
      codeChallenge: pkcePair().challenge,
    });
    expect(again.pagesSeen).toContain('consent');
    expect(again.url.searchParams.get('code')).toEqual(expect.any(String));
  });

  it('refuses unknown clients and the built-in account client', async () => {
    let io = captureIo();
    expect(await runClientsCommand(['revoke', 'dcr_nobody'], gw.config, io)).toBe(1);
    expect(io.err).toContain('no such client');
    io = captureIo();
    expect(await runClientsCommand(['revoke', ACCOUNT_CLIENT_ID], gw.config, io)).toBe(1);
    expect(io.err).toContain('cannot be revoked');
  });
});
