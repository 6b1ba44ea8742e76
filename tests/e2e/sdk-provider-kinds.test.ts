/**
 * The MCP SDK's end-to-end flow (tests/e2e/sdk-flow.test.ts runs it with enterprise OIDC)
 * once per other provider kind: GitHub and Google, each a fake of the provider written from
 * its public API docs. The SDK client starts from the MCP URL behind real Caddy
 * `forward_auth`, the user picks the provider on the gateway's login page, and the MCP server
 * sees the identity the provider vouched for.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { describeWithBinary } from '../helpers/binaries.js';
import { startCaddy, type RunningProxy } from '../helpers/caddy.js';
import { startFakeGitHub, type FakeGitHub } from '../helpers/fake-github.js';
import { startFakeGoogle, type FakeGoogle } from '../helpers/fake-google.js';
import { startGatewayBehind, type RunningGateway } from '../helpers/gateway.js';
import { TestOAuthProvider, userApproves } from '../helpers/sdk-client.js';
import { startStreamableServer, type StreamableServer } from '../helpers/streamable-server.js';
import { TestUserAgent } from '../helpers/user-agent.js';

describeWithBinary('caddy', 'MCP SDK client with GitHub and Google login (Caddy)', () => {
  let github: FakeGitHub;
  let google: FakeGoogle;
  let gw: RunningGateway;
  let server: StreamableServer;
  let caddy: RunningProxy;
  let mcpUrl: string;

  beforeAll(async () => {
    server = await startStreamableServer();
    // The fakes and Caddy name the gateway's port before it binds it: all again on a taken one.
    ({ gw } = await startGatewayBehind(
      async (authUrl, port) => {
        const issuer = `http://localhost:${port}`;
        github = await startFakeGitHub({
          clientId: 'gh',
          clientSecret: 'gh-secret-0123456789',
          redirectUri: `${issuer}/login/callback/github`,
          users: [
            {
              id: 7,
              login: 'hubber',
              name: 'Hub Ber',
              emails: [{ email: 'hubber@example.com', primary: true, verified: true }],
              orgs: ['acme'],
            },
          ],
        });
        google = await startFakeGoogle({
          clientId: 'goog',
          clientSecret: 'goog-secret-0123456789',
          redirectUri: `${issuer}/login/callback/google`,
          users: [
            {
              sub: '77',
              email: 'gail@example.com',
              email_verified: true,
              name: 'Gail',
              hd: 'example.com',
            },
          ],
        });
        caddy = await startCaddy({ authUrl, routes: [{ path: '/mcp', upstream: server.url }] });
        mcpUrl = `${caddy.url}/mcp`;
        const started = { github, google, caddy };
        return {
          stop: async () => {
            await started.caddy.stop();
            await started.google.stop();
            await started.github.stop();
          },
        };
      },
      () => () => ({
        login: {
          github: {
            clientId: 'gh',
            clientSecret: 'gh-secret-0123456789',
            authorizationUrl: github.authorizationUrl,
            tokenUrl: github.tokenUrl,
            apiUrl: github.apiUrl,
          },
          google: {
            clientId: 'goog',
            clientSecret: 'goog-secret-0123456789',
            hostedDomains: ['example.com'],
            authorizationUrl: google.authorizationUrl,
            tokenUrl: google.tokenUrl,
            userinfoUrl: google.userinfoUrl,
          },
        },
        access: { githubOrgs: ['acme'], domains: ['example.com'] },
        resources: [{ url: mcpUrl, name: 'Provider kinds MCP', scopes: ['mcp:tools'] }],
      }),
    ));
  });

  afterAll(async () => {
    await gw?.stop();
    await caddy?.stop();
    await server?.stop();
    await github?.stop();
    await google?.stop();
  });

  async function sdkSession(providerId: 'github' | 'google') {
    const provider = new TestOAuthProvider();
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
      authProvider: provider,
    });
    await expect(new Client({ name: 'e2e', version: '1' }).connect(transport)).rejects.toThrow(
      UnauthorizedError,
    );
    const result = await userApproves(
      new TestUserAgent(),
      provider.authorizationUrl!,
      undefined,
      providerId,
    );
    await transport.finishAuth(result.url.searchParams.get('code')!);
    const client = new Client({ name: 'e2e', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }),
    );
    return { client, provider };
  }

  it.each([
    ['github', 'github:7', 'hubber@example.com'],
    ['google', 'google:77', 'gail@example.com'],
  ] as const)(
    '%s: discovers, logs in, calls tools as the user and refreshes',
    async (kind, sub, email) => {
      if (kind === 'github') github.loginAs('hubber');
      else google.loginAs('gail@example.com');
      const { client, provider } = await sdkSession(kind);
      expect(decodeJwt(provider.savedTokens!.access_token)).toMatchObject({
        sub,
        email,
        aud: mcpUrl,
      });
      const whoami = await client.callTool({ name: 'whoami', arguments: {} });
      expect(JSON.stringify(whoami.content)).toContain(email);
      expect(JSON.stringify(whoami.content)).toContain(sub);
      await client.close();

      // The SDK refreshes by itself when its access token is refused.
      const first = provider.savedTokens!;
      provider.savedTokens = { ...first, access_token: 'expired' };
      const again = new Client({ name: 'e2e', version: '1' });
      await again.connect(
        new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }),
      );
      const echoed = await again.callTool({
        name: 'echo',
        arguments: { text: `${kind} refreshed` },
      });
      expect(JSON.stringify(echoed.content)).toContain(`${kind} refreshed`);
      expect(provider.savedTokens!.refresh_token).not.toBe(first.refresh_token);
      await again.close();
    },
  );
});
