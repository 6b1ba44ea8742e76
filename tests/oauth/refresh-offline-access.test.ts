/**
 * A refresh that repeats `offline_access` (src/oauth/refresh-scope.ts). Clients that add
 * `offline_access` to their authorization request (the server lists it in `scopes_supported`)
 * may send the same `scope` with every refresh; the Codex CLI 0.171.0 does. oidc-provider
 * grants no `offline_access` without `prompt=consent`, so without the rule such a client could
 * never refresh (`invalid_scope`, "refresh token missing requested scope").
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt } from 'jose';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  obtainTokens,
  registerClient,
  tokenRequest,
  type RegisteredClient,
} from '../helpers/oauth-flow.js';

const RESOURCE = 'http://localhost:3999/mcp';

describe('offline_access in a refresh request', () => {
  let gw: RunningGateway;
  let client: RegisteredClient;

  beforeAll(async () => {
    gw = await startGateway();
    client = await registerClient(gw.url, { scope: 'mcp:tools offline_access' });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  /** A fresh grant asked for as Codex does; its refresh token. */
  const login = async () => {
    const { token } = await obtainTokens(gw.url, {
      client,
      resource: RESOURCE,
      scope: 'mcp:tools offline_access',
    });
    expect(token.status).toBe(200);
    // What was granted: the resource's scope only.
    expect(token.body.scope).toBe('mcp:tools');
    return String(token.body.refresh_token);
  };
  const refresh = (refreshToken: string, scope: string) =>
    tokenRequest(gw.url, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: client.client_id,
      resource: RESOURCE,
      scope,
    });

  it("is accepted, and the new access token carries the resource's scope only", async () => {
    const first = await refresh(await login(), 'mcp:tools offline_access');
    expect(first.status).toBe(200);
    expect(first.body.scope).toBe('mcp:tools');
    expect(decodeJwt(String(first.body.access_token))).toMatchObject({
      aud: RESOURCE,
      scope: 'mcp:tools',
    });
    // And again with the rotated refresh token, as a client refreshes every time.
    const second = await refresh(String(first.body.refresh_token), 'mcp:tools offline_access');
    expect(second.status).toBe(200);
    expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
  });

  it('asks for nothing more: offline_access alone gives a token without any scope', async () => {
    const answer = await refresh(await login(), 'offline_access');
    expect(answer.status).toBe(200);
    expect(decodeJwt(String(answer.body.access_token)).scope).toBeUndefined();
  });

  it('still refuses a scope the grant does not have', async () => {
    const answer = await refresh(await login(), 'mcp:tools email');
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({
      error: 'invalid_scope',
      error_description: 'refresh token missing requested scope',
      scope: 'email',
    });
  });

  it('still revokes the grant when a used refresh token comes back', async () => {
    const refreshToken = await login();
    expect((await refresh(refreshToken, 'mcp:tools offline_access')).status).toBe(200);
    const reused = await refresh(refreshToken, 'mcp:tools offline_access');
    expect(reused.status).toBe(400);
    expect(reused.body.error).toBe('invalid_grant');
  });
});
