/**
 * The audit trail as the service wires it: `/verify` refusals and OAuth events, one chain,
 * mirrored to a file whose checkpoints are signed with the service's own key.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, describe } from '@jest/globals';
import { runAuditCommand } from '../../src/audit/cli.js';
import { verifyChain } from '../../src/audit/verify-chain.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { obtainTokens, registerClient } from '../helpers/oauth-flow.js';
import { verifyStatus } from '../helpers/provider-login.js';

const RESOURCE = 'http://localhost:3999/mcp';

describe('the service audit trail', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw?.stop());

  it('chains token issues and /verify refusals (not 401s without a token), never a token', async () => {
    const client = await registerClient(gw.url);
    const { token } = await obtainTokens(gw.url, { client, resource: RESOURCE });
    const accessToken = (token.body as { access_token: string }).access_token;
    expect(await verifyStatus(gw.url, RESOURCE, accessToken)).toBe(200);
    expect(await verifyStatus(gw.url, RESOURCE, `${accessToken.slice(0, -4)}AAAA`)).toBe(401);
    const anonymous = await fetch(`${gw.url}/verify`, {
      headers: {
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'localhost:3999',
        'x-forwarded-uri': '/mcp',
        'x-forwarded-method': 'POST',
      },
    });
    expect(anonymous.status).toBe(401);
    await gw.gateway.audit!.flush();

    const records = (await gw.gateway.store.readChained('audit')).map((entry) => entry.record);
    expect(verifyChain(records).ok).toBe(true);
    const kinds = records.map((record) => record.kind);
    expect(kinds).toEqual(
      expect.arrayContaining(['client_registered', 'token_issued', 'verify_denied']),
    );
    const denials = records.filter((record) => record.kind === 'verify_denied');
    expect(denials).toHaveLength(1);
    expect(denials[0]).toMatchObject({ reason: 'signature', resource: RESOURCE, status: 401 });
    expect(JSON.stringify(records)).not.toContain(accessToken.slice(0, 30));
  });
});

describe('the service audit mirror file', () => {
  let gw: RunningGateway;
  let dir: string;
  let mirror: string;
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-gw-mirror-'));
    mirror = path.join(dir, 'audit.jsonl');
    gw = await startGateway(() => ({ audit: { file: mirror } }));
    // What an operator runs against the same configuration: keys come from its dataDir.
    config = path.join(dir, 'gateway.yaml');
    await writeFile(
      config,
      JSON.stringify({
        issuer: gw.url,
        dataDir: gw.config.dataDir,
        login: { dev: { users: ['alice@example.com'] } },
        resources: [{ url: RESOURCE, name: 'Test MCP' }],
        audit: { file: mirror },
      }),
    );
  });
  afterAll(async () => {
    await gw?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function verify(): Promise<{ code: number; stdout: string }> {
    let stdout = '';
    const code = await runAuditCommand(['verify', '--config', config], {
      stdout: (text) => {
        stdout += text;
      },
      stderr: () => undefined,
      env: {},
    });
    return { code, stdout };
  }

  it('is signed with the service key, verifiable from its configuration; a cut start is found', async () => {
    const client = await registerClient(gw.url);
    await obtainTokens(gw.url, { client, resource: RESOURCE });
    await gw.gateway.audit!.flush();
    const intact = await verify();
    expect(intact.code).toBe(0);
    expect(intact.stdout).toMatch(new RegExp(`intact: \\d+ records .* by ${gw.url} \\(key `));

    const lines = (await readFile(mirror, 'utf8')).split('\n').filter((line) => line !== '');
    await writeFile(mirror, `${lines.slice(1).join('\n')}\n`);
    const cut = await verify();
    expect(cut.code).toBe(1);
    expect(cut.stdout).toContain('start_cut');
  });
});
