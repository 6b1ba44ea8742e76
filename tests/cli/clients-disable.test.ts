/**
 * Disabling a client across replicas, on a real Redis: two gateways (A and B) share one Redis
 * as two replicas behind one load balancer. A client disabled through A's admin console or
 * with `mcp-gateway clients disable` (the command line on the same Redis) is refused by B's
 * `/verify` within seconds (awaited with a bounded poll) and by B's token endpoint at once;
 * B also catches up by its poll when an announcement was lost. `clients enable` restores the
 * same tokens. Every kind of client: DCR, CIMD (served over https by a test CA), pre-registered.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runClientsCommand } from '../../src/cli/clients-command.js';
import { configSchema } from '../../src/config/schema.js';
import { DISABLED_CLIENTS_KEY } from '../../src/store/keys.js';
import { ACCOUNT_CLIENT_ID } from '../../src/oauth/constants.js';
import { csrfToken, openSignedIn, postFields } from '../helpers/admin-console.js';
import { describeWithBinary } from '../helpers/binaries.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { captureIo, listingRows } from '../helpers/cli-io.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  devLogin,
  LOOPBACK_REDIRECT,
  obtainTokens,
  pkcePair,
  registerClient,
  tokenRequest,
} from '../helpers/oauth-flow.js';
import { eventually } from '../helpers/poll.js';
import { verifyStatus } from '../helpers/provider-login.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { createTestCa, type TestCa } from '../helpers/test-ca.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const RESOURCE = 'http://localhost:3999/mcp';
const ALICE = 'alice@example.com';
const PRE_REGISTERED = 'configured-agent';
/** Seconds between the replicas' re-reads of the list (`verify.revocationPollInterval`). */
const POLL = 1;

describe('mcp-gateway clients disable|enable (usage)', () => {
  const memory = configSchema.parse({
    issuer: 'https://auth.example.com',
    resources: [{ url: 'https://mcp.example.com/mcp', name: 'M' }],
    login: { dev: { users: ['a@example.com'] } },
  });

  it('refuses bad invocations with usage and exit 2, and the memory store with exit 1', async () => {
    for (const argv of [['disable'], ['enable'], ['disable', 'a', 'b'], ['enable', 'bad id']]) {
      const io = captureIo();
      expect(await runClientsCommand(argv, memory, io)).toBe(2);
      expect(io.err).toMatch(/usage|not a client id/);
    }
    const io = captureIo();
    expect(await runClientsCommand(['disable', 'dcr_x'], memory, io)).toBe(1);
    expect(io.err).toContain('in-memory store');
  });
});

describeWithBinary('redis-server', 'disabling a client on two replicas', () => {
  let redis: RedisServer;
  let ca: TestCa;
  let cimd: CimdServer;
  let a: RunningGateway;
  let b: RunningGateway;
  /** B's own address (its configured issuer is A's, as behind one load balancer). */
  let bUrl: string;

  beforeAll(async () => {
    redis = await startRedis();
    ca = await createTestCa();
    cimd = await startCimdServer(ca, 'Published agent');
    const config = (port: number) => (issuer: string) => ({
      // Both replicas answer as the same issuer (behind one load balancer): take A's.
      issuer: port === 0 ? issuer : `http://localhost:${port}`,
      store: { redis: { url: redis.url, keyPrefix: 'disable:' } },
      verify: { revocationPollInterval: POLL },
      admins: { emails: [ALICE] },
      tls: { caFiles: [ca.caFile] },
      registration: { cimd: { allowHosts: [cimd.host] } },
      clients: [
        {
          client_id: PRE_REGISTERED,
          client_name: 'Configured agent',
          redirect_uris: [LOOPBACK_REDIRECT],
        },
      ],
    });
    a = await startGateway(config(0));
    b = await startGateway(config(Number(new URL(a.url).port)));
    bUrl = `http://127.0.0.1:${b.config.listen.port}`;
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await cimd?.stop();
    await ca?.cleanup();
    await redis?.stop();
  });

  /** Alice authorizes `clientId` at A, and the client redeems the code at A. */
  async function connect(clientId: string) {
    const { token } = await obtainTokens(a.url, {
      client: { client_id: clientId },
      resource: RESOURCE,
    });
    expect(token.status).toBe(200);
    return {
      accessToken: String(token.body.access_token),
      refreshToken: String(token.body.refresh_token),
    };
  }

  const verifyAt = (url: string, accessToken: string) => verifyStatus(url, RESOURCE, accessToken);

  /** Whether `url`'s `/verify` answers `status` for the token within `ms` (bounded poll). */
  const answersWithin = (url: string, accessToken: string, status: number, ms: number) =>
    eventually(async () => (await verifyAt(url, accessToken)) === status, ms);

  const refreshAt = (url: string, clientId: string, refreshToken: string) =>
    tokenRequest(url, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: clientId,
    });

  const cli = async (...argv: string[]) => {
    const io = captureIo();
    const code = await runClientsCommand(argv, a.config, io);
    return { code, out: io.out, err: io.err };
  };

  const stateOf = async (clientId: string) =>
    listingRows((await cli('list')).out).find((row) => row.CLIENT_ID === clientId)?.STATE;

  it("a client disabled in A's admin console is refused by B: /verify within seconds, refresh at once", async () => {
    const client = await registerClient(a.url, { client_name: 'Replicated agent' });
    const tokens = await connect(client.client_id);
    expect(await verifyAt(bUrl, tokens.accessToken)).toBe(200);

    const agent = new TestUserAgent();
    const page = await openSignedIn(agent, `${a.url}/admin/clients`, ALICE, { reopen: true });
    const disabled = await postFields(
      agent,
      `${a.url}/admin/clients/disable`,
      { csrf: csrfToken(page.body), client_id: client.client_id },
      a.url,
    );
    expect(disabled.hops[0]).toMatchObject({ status: 303 });

    // B hears the announcement (at the latest at its next poll): bounded by two polls.
    expect(await answersWithin(bUrl, tokens.accessToken, 401, 2 * POLL * 1000 + 500)).toBe(true);
    // B's token endpoint reads the store: refused at once, nothing to wait for.
    const refused = await refreshAt(bUrl, client.client_id, tokens.refreshToken);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe('invalid_client');
    expect(await stateOf(client.client_id)).toBe('disabled');

    // Enabled from the command line: both replicas accept the same token again.
    const enabled = await cli('enable', client.client_id);
    expect(enabled).toMatchObject({ code: 0, err: '' });
    expect(enabled.out).toContain(`enabled ${client.client_id}`);
    expect(await answersWithin(bUrl, tokens.accessToken, 200, 2 * POLL * 1000 + 500)).toBe(true);
    expect(await verifyAt(a.url, tokens.accessToken)).toBe(200);
    expect((await refreshAt(bUrl, client.client_id, tokens.refreshToken)).status).toBe(200);
  });

  it('B catches up by its poll when the announcement is lost', async () => {
    const client = await registerClient(a.url, { client_name: 'Unannounced agent' });
    const tokens = await connect(client.client_id);
    expect(await verifyAt(bUrl, tokens.accessToken)).toBe(200);
    // Written to the list without the announcement (as if pub/sub had dropped it).
    await a.gateway.store.addToSet(DISABLED_CLIENTS_KEY, [client.client_id]);
    expect(await answersWithin(bUrl, tokens.accessToken, 401, 2 * POLL * 1000 + 500)).toBe(true);
    expect(await answersWithin(a.url, tokens.accessToken, 401, 2 * POLL * 1000 + 500)).toBe(true);
    await a.gateway.store.removeFromSet(DISABLED_CLIENTS_KEY, [client.client_id]);
    expect(await answersWithin(bUrl, tokens.accessToken, 200, 2 * POLL * 1000 + 500)).toBe(true);
  });

  it('disables and enables DCR, CIMD and pre-registered clients from the command line, audited', async () => {
    const dcr = await registerClient(a.url, { client_name: 'CLI agent' });
    const kinds = [
      { clientId: dcr.client_id, kind: 'dcr' },
      { clientId: cimd.clientId, kind: 'cimd' },
      { clientId: PRE_REGISTERED, kind: 'pre-registered' },
    ];
    const held = new Map<string, Awaited<ReturnType<typeof connect>>>();
    for (const { clientId } of kinds) held.set(clientId, await connect(clientId));
    // A CIMD client is listed once it has obtained tokens (recorded just after the answer).
    expect(await eventually(async () => (await stateOf(cimd.clientId)) === 'active', 5000)).toBe(
      true,
    );

    for (const { clientId, kind } of kinds) {
      const tokens = held.get(clientId)!;
      const disabled = await cli('disable', clientId);
      expect([kind, disabled.code, disabled.err]).toEqual([kind, 0, '']);
      expect(disabled.out).toContain(`disabled ${clientId}:`);
      expect((await cli('disable', clientId)).out).toBe(`${clientId} was already disabled\n`);
      expect(await stateOf(clientId)).toBe('disabled');

      expect(await answersWithin(bUrl, tokens.accessToken, 401, 2 * POLL * 1000 + 500)).toBe(true);
      expect(await answersWithin(a.url, tokens.accessToken, 401, 2 * POLL * 1000 + 500)).toBe(true);
      expect((await refreshAt(bUrl, clientId, tokens.refreshToken)).body.error).toBe(
        'invalid_client',
      );
      // No new authorization either.
      const again = await devLogin(bUrl, {
        clientId,
        resource: RESOURCE,
        codeChallenge: pkcePair().challenge,
      });
      expect([kind, again.url.searchParams.get('code')]).toEqual([kind, null]);
      expect(again.body).toContain('invalid_client');

      const enabled = await cli('enable', clientId);
      expect([kind, enabled.code]).toEqual([kind, 0]);
      expect((await cli('enable', clientId)).out).toBe(`${clientId} was already enabled\n`);
      expect(await answersWithin(bUrl, tokens.accessToken, 200, 2 * POLL * 1000 + 500)).toBe(true);
      expect(await answersWithin(a.url, tokens.accessToken, 200, 2 * POLL * 1000 + 500)).toBe(true);
      const refreshed = await refreshAt(bUrl, clientId, tokens.refreshToken);
      expect([kind, refreshed.status]).toEqual([kind, 200]);
      expect(await stateOf(clientId)).toBe('active');
    }

    const records = (await a.gateway.store.readChained('audit')).map((entry) => entry.record);
    for (const { clientId, kind } of kinds) {
      for (const change of ['disable-client', 'enable-client']) {
        expect(records).toContainEqual(
          expect.objectContaining({
            kind: 'admin_change',
            change,
            clientId,
            clientKind: kind,
            actor: expect.stringMatching(/^cli:/),
          }),
        );
      }
    }
  });

  it('refuses the built-in account client and unknown clients (exit 1)', async () => {
    const builtIn = await cli('disable', ACCOUNT_CLIENT_ID);
    expect(builtIn.code).toBe(1);
    expect(builtIn.err).toContain('cannot be disabled');
    const unknown = await cli('disable', 'dcr_nobody');
    expect(unknown).toMatchObject({ code: 1, err: 'no such client: dcr_nobody\n' });
    const notDisabled = await cli('enable', 'dcr_nobody');
    expect(notDisabled.code).toBe(1);
    expect(notDisabled.err).toContain('is not disabled');
    // A CIMD client id never seen obtaining tokens is no known client.
    const unseen = await cli('disable', `https://${cimd.host}/other.json`);
    expect(unseen.code).toBe(1);
  });
});
