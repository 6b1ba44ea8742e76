/**
 * The MCP SDK's own client (1.32.2, `StreamableHTTPClientTransport` with an
 * `OAuthClientProvider`) with the person in real Chromium, against the product as deployed:
 * the real Traefik from the shipped files in front of an SDK MCP server, the gateway behind it
 * on both hosts (the issuer is the auth host through Traefik).
 *
 * tests/e2e/sdk-flow.test.ts runs the SDK's flow in depth (DCR and CIMD, an upstream identity
 * provider, token claims) with the scripted user agent; this is the same client once through
 * a real browser, from the MCP URL alone to tools, a refresh when the gateway starts refusing
 * the access token (`tokens.accessTokenTtl: 5` here), and what it does after the user revokes
 * it: the refresh is refused; the SDK asks the application's storage to forget the tokens
 * (`invalidateCredentials('tokens')`), starts a new authorization for the same client and
 * throws `UnauthorizedError`; the application has the person consent again and calls
 * `finishAuth`, as at the first sign-in. (A provider without `invalidateCredentials` gets
 * `InvalidGrantError` from every call instead, until the application drops its tokens itself:
 * tests/admin/admin-browser.test.ts.)
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { BrowserContext } from 'playwright-core';
import { describeWithBinary } from '../helpers/binaries.js';
import { authorizeInBrowser, revokeOnAccountPage } from '../helpers/chromium.js';
import type { RunningGateway } from '../helpers/gateway.js';
import { eventually } from '../helpers/poll.js';
import {
  atSdkRedirectUri,
  SDK_REDIRECT_URI,
  TestOAuthProvider,
  whoamiOf,
} from '../helpers/sdk-client.js';
import { grantCount, type TokenGrant } from '../helpers/token-grants.js';
import { startClientStack, type ClientStack } from '../helpers/client-stack.js';

const USER = 'alice@example.com';
const CLIENT_NAME = 'SDK end-to-end client';

/** An application's storage as the SDK's interface asks: it forgets what the SDK says is dead. */
class ForgettingProvider extends TestOAuthProvider {
  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery') {
    if (scope === 'all' || scope === 'tokens') this.savedTokens = undefined;
  }
}

describeWithBinary('traefik', 'the MCP SDK client behind the real Traefik', () =>
  describeWithBinary('chromium', 'with the person in Chromium', () => {
    let stack: ClientStack;
    let gw: RunningGateway;
    let mcpUrl: string;
    let issuer: string;
    let context: BrowserContext;
    let grants: TokenGrant[];

    beforeAll(async () => {
      stack = await startClientStack(() => ({
        login: { dev: { users: [USER] } },
        tokens: { accessTokenTtl: 5 },
        verify: { clockSkew: 0 },
      }));
      ({ gw, mcpUrl, grants, context } = stack);
      issuer = gw.config.issuer;
    });

    afterAll(async () => {
      await stack?.stop();
    });

    const securityEvents = (kind: string) =>
      gw.logRecords().filter((record) => record.security_event === kind);

    it('signs in through the browser from the MCP URL alone, refreshes when the token is refused, and asks the person again after a revoke', async () => {
      const provider = new ForgettingProvider();
      const transport = () =>
        new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
      const connect = async () => {
        const client = new Client({ name: 'sdk-chromium', version: '1.0.0' });
        await client.connect(transport());
        return client;
      };
      /** The person's part in the browser, then the application's `finishAuth`. */
      const personApproves = async () => {
        const person = await authorizeInBrowser(context, provider.authorizationUrl!, {
          isCallback: atSdkRedirectUri,
        });
        expect(person.callback.searchParams.get('iss')).toBe(issuer);
        await transport().finishAuth(person.callback.searchParams.get('code')!);
        return person;
      };

      // Discovery and DCR from the MCP URL alone; the SDK stops at the authorization URL.
      await expect(connect()).rejects.toBeInstanceOf(UnauthorizedError);
      const request = provider.authorizationUrl!;
      expect(`${request.origin}${request.pathname}`).toBe(`${issuer}/authorize`);
      expect(Object.fromEntries(request.searchParams)).toMatchObject({
        client_id: provider.clientId(),
        redirect_uri: SDK_REDIRECT_URI,
        code_challenge_method: 'S256',
        resource: mcpUrl,
        scope: 'mcp:tools',
      });
      expect(securityEvents('client_registered')).toEqual([
        expect.objectContaining({ clientId: provider.clientId(), clientName: CLIENT_NAME }),
      ]);
      const first = await personApproves();
      expect(first.signedIn).toBe(true);
      expect(first.consent?.details).toEqual({
        Application: CLIENT_NAME,
        'Client ID': provider.clientId(),
        'Redirects to': new URL(SDK_REDIRECT_URI).host,
        'Signed in as': USER,
      });
      expect(first.consent?.warnings).toEqual([
        expect.stringMatching(/receives the authorization on your own computer/),
      ]);

      const client = await connect();
      const tools = await client.listTools();
      expect(tools.tools.map((tool) => tool.name).sort()).toEqual(['echo', 'whoami']);
      expect(await whoamiOf(client)).toMatchObject({
        'x-auth-client-id': provider.clientId(),
        'x-auth-user-id': `dev:${USER}`,
        authorization: '',
      });
      const count = (grantType: string) => grantCount(grants, provider.clientId(), grantType);
      expect(count('authorization_code')).toBe(1);

      // Refresh: once the gateway refuses the access token, the SDK refreshes by itself.
      const issued = provider.savedTokens!;
      const refused = async () =>
        (
          await fetch(mcpUrl, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${issued.access_token}`,
              'content-type': 'application/json',
            },
            body: '{}',
          })
        ).status === 401;
      expect(await eventually(refused, 10_000, 200)).toBe(true);
      const refreshes = count('refresh_token');
      const echoed = await client.callTool({ name: 'echo', arguments: { text: 'refreshed' } });
      expect(echoed.content).toEqual([{ type: 'text', text: 'refreshed' }]);
      expect(count('refresh_token')).toBe(refreshes + 1);
      expect(count('authorization_code')).toBe(1);
      expect(provider.savedTokens!.refresh_token).not.toBe(issued.refresh_token);

      // Revoked on /account: the next call's refresh is refused; the SDK starts over.
      await revokeOnAccountPage(context, issuer, provider.clientId());
      const before = provider.authorizationUrl;
      await expect(
        client.callTool({ name: 'echo', arguments: { text: 'after revoke' } }),
      ).rejects.toBeInstanceOf(UnauthorizedError);
      expect(securityEvents('oauth_error')).toContainEqual(
        expect.objectContaining({
          clientId: provider.clientId(),
          grantType: 'refresh_token',
          error: 'invalid_grant',
        }),
      );
      expect(provider.savedTokens).toBeUndefined();
      expect(provider.authorizationUrl).not.toBe(before);
      expect(provider.authorizationUrl!.searchParams.get('client_id')).toBe(provider.clientId());
      await client.close();

      const again = await personApproves();
      expect(again.signedIn).toBe(false);
      expect(again.consent?.details['Client ID']).toBe(provider.clientId());
      const reconnected = await connect();
      const after = await reconnected.callTool({ name: 'echo', arguments: { text: 'back' } });
      expect(after.content).toEqual([{ type: 'text', text: 'back' }]);
      expect(count('authorization_code')).toBe(2);
      await reconnected.close();
    });
  }),
);
