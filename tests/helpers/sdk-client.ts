/**
 * The MCP SDK's client side for end-to-end tests: an in-memory `OAuthClientProvider` (what a
 * real MCP client keeps on disk) and the user's part of the flow, driven by
 * {@link TestUserAgent}. The SDK itself does discovery, registration, PKCE, the token
 * exchange, refresh and step-up.
 */
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import type { TestUserAgent } from './user-agent.js';
import { type FlowResult } from './user-agent.js';

export const SDK_REDIRECT_URI = 'http://127.0.0.1:33418/callback';

export const atSdkRedirectUri = (url: URL) => `${url.origin}${url.pathname}` === SDK_REDIRECT_URI;

/** The SDK's client-side storage, in memory; records what the flow produced. */
export class TestOAuthProvider implements OAuthClientProvider {
  authorizationUrl: URL | undefined;
  savedTokens: OAuthTokens | undefined;
  private info: OAuthClientInformationMixed | undefined;
  private verifier = '';
  readonly clientMetadataUrl: string | undefined;

  constructor(options: { clientMetadataUrl?: string } = {}) {
    this.clientMetadataUrl = options.clientMetadataUrl;
  }

  get redirectUrl() {
    return SDK_REDIRECT_URI;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'SDK end-to-end client',
      redirect_uris: [SDK_REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.savedTokens;
  }
  saveTokens(tokens: OAuthTokens) {
    this.savedTokens = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  clientId(): string {
    return String(this.info?.client_id);
  }
}

/**
 * The user's part: follows the authorization URL through login (choosing `provider` when the
 * gateway offers several; an upstream provider logs in by itself; the dev login page is
 * answered with `devUser`) and approves the consent page.
 * Returns the final redirect (with `code`) and the consent page it approved.
 */
export async function userApproves(
  agent: TestUserAgent,
  authorizationUrl: URL,
  devUser = 'alice@example.com',
  /** With several login providers: the one whose button the user clicks. */
  provider?: string,
): Promise<FlowResult & { consentPage: string }> {
  let page = await agent.follow(authorizationUrl, atSdkRedirectUri);
  if (provider && page.status === 200 && page.body.includes('Sign in to continue')) {
    const href = new RegExp(`href="(/interaction/[^"]+/login/${provider})"`).exec(page.body)?.[1];
    if (!href) throw new Error(`no sign-in button for ${provider}`);
    page = await agent.follow(new URL(href, page.url), atSdkRedirectUri);
  }
  if (page.status === 200 && page.body.includes('Development sign-in')) {
    page = await agent.submit(page, { name: 'email', value: devUser }, atSdkRedirectUri);
  }
  if (page.status !== 200 || !page.body.includes('name="decision"')) {
    throw new Error(`expected the consent page, got ${page.status} at ${page.url.href}`);
  }
  const result = await agent.submit(page, { name: 'decision', value: 'approve' }, atSdkRedirectUri);
  return { ...result, consentPage: page.body };
}

/**
 * Calls the test servers' `whoami` tool: the identity headers (and Authorization) of the request
 * that carried the call, as the MCP server received them (tests/helpers/streamable-server.ts).
 */
export async function whoamiOf(client: Client): Promise<Record<string, unknown>> {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  const text = (result.content as { type: string; text?: string }[])[0]?.text ?? '{}';
  return JSON.parse(text) as Record<string, unknown>;
}
