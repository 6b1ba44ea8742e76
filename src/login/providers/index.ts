/** The configured upstream logins, in the order the login page lists them. */
import type { GatewayConfig } from '../../config/schema.js';
import { createHttpsAgent, type FetchFunction } from '../../net/outbound-fetch.js';
import { needsGitHubMembership } from '../../policy/access.js';
import { GitHubLoginProvider } from './github.js';
import { GoogleLoginProvider } from './google.js';
import { OidcLoginProvider } from './oidc.js';
import type { LoginProvider } from './provider.js';

/**
 * One provider per configured login, with its callback under `issuer`; `access`, `resources`
 * and `login` say whether GitHub is asked for `read:org` (needsGitHubMembership).
 */
export function createLoginProviders(
  config: Pick<GatewayConfig, 'issuer' | 'tls' | 'login' | 'access' | 'resources'>,
  trustedFetch: FetchFunction,
): LoginProvider[] {
  const callback = (id: string) => `${config.issuer}/login/callback/${id}`;
  // passport's node-oauth makes its own requests: give it the configured CAs too.
  const httpsAgent = createHttpsAgent(config.tls.caFiles);
  const { github, google, oidc } = config.login;
  return [
    ...(github
      ? [
          new GitHubLoginProvider(
            github,
            callback('github'),
            trustedFetch,
            needsGitHubMembership(config),
            httpsAgent,
          ),
        ]
      : []),
    ...(google ? [new GoogleLoginProvider(google, callback('google'), httpsAgent)] : []),
    ...oidc.map((settings) => new OidcLoginProvider(settings, callback(settings.id), trustedFetch)),
  ];
}
