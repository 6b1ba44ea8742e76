/**
 * Keeps a user's access as current as their identity provider: the identity and sealed
 * upstream session are recorded at login, and every refresh of a gateway token checks the
 * user again before a new access token is issued:
 *
 *  1. where the provider kept a session (GitHub's token, an OIDC refresh token), the identity
 *     is read again from the provider: removed from the org or group, disabled, or the app's
 *     access revoked, and the refresh is refused;
 *  2. the access rules (global, and those of the MCP server the token is for) are evaluated
 *     again, against that fresh identity (or the one of the last login), so that an admin's
 *     rule change also takes effect at the next refresh;
 *  3. a dev user no longer listed, or a provider no longer configured, is refused.
 *
 * A refusal is {@link AccessWithdrawn}: the caller revokes the grant (its live access tokens
 * are refused by `/verify` from then on) and answers `invalid_grant`. A provider that cannot
 * be asked ({@link UpstreamUnavailable}) fails the refresh without revoking anything.
 */
import type { GatewayConfig, ResourceConfig } from '../config/schema.js';
import { evaluateLogin, evaluateResourceAccess } from '../policy/access.js';
import type { AccountRecord, AccountStore, Identity } from './accounts.js';
import {
  UpstreamRefused,
  UpstreamUnavailable,
  type LoginProvider,
  type UpstreamLogin,
} from './providers/provider.js';
import type { SessionSealer } from './session-sealer.js';

export class AccessWithdrawn extends Error {
  constructor(
    message: string,
    readonly provider: string,
  ) {
    super(message);
    this.name = 'AccessWithdrawn';
  }
}

export interface ReauthorizationDependencies {
  /** The access rules and the logins (dev users still listed) checked again at refresh. */
  config: Pick<GatewayConfig, 'access' | 'login'>;
  accounts: AccountStore;
  providers: LoginProvider[];
  sealer: SessionSealer;
}

export class Reauthorization {
  private readonly providers: Map<string, LoginProvider>;

  constructor(private readonly deps: ReauthorizationDependencies) {
    this.providers = new Map(deps.providers.map((provider) => [provider.id, provider]));
  }

  /**
   * Whether a failure of {@link atRefresh} withdrew the user's access (the grant is revoked).
   * Asked of the injected instance so that the authorization server needs no value import of
   * the login folder.
   */
  isAccessWithdrawn(error: unknown): error is AccessWithdrawn {
    return error instanceof AccessWithdrawn;
  }

  /** Whether a failure of {@link atRefresh} only means the provider could not be asked. */
  isUpstreamUnavailable(error: unknown): error is UpstreamUnavailable {
    return error instanceof UpstreamUnavailable;
  }

  /** Records who logged in, and seals what the provider keeps for {@link atRefresh}. */
  async recordLogin(login: UpstreamLogin): Promise<void> {
    const record: AccountRecord = {
      ...login.identity,
      sealedSession: login.session ? await this.deps.sealer.seal(login.session) : undefined,
      checkedAt: Math.floor(Date.now() / 1000),
    };
    await this.deps.accounts.save(record);
  }

  /**
   * The user's current identity, or {@link AccessWithdrawn}; `resources` are the MCP servers
   * the refreshed token is for, whose own rules must admit the user too.
   */
  async atRefresh(sub: string, resources: ResourceConfig[] = []): Promise<Identity> {
    const { config, accounts, sealer } = this.deps;
    let record = await accounts.find(sub);
    if (!record) throw new AccessWithdrawn('the account record has expired', 'unknown');
    const { provider: providerId } = record;

    if (providerId === 'dev') {
      const listed = config.login.dev?.users.some((user) => user.email === record!.email);
      if (!listed) throw new AccessWithdrawn('the dev user is no longer listed', providerId);
    } else {
      const provider = this.providers.get(providerId);
      if (!provider) {
        throw new AccessWithdrawn(
          `login provider ${providerId} is no longer configured`,
          providerId,
        );
      }
      if (provider.recheck && record.sealedSession) {
        const session = await sealer.open(record.sealedSession);
        if (!session) {
          throw new AccessWithdrawn(
            'the kept upstream session can no longer be opened',
            providerId,
          );
        }
        let login: UpstreamLogin;
        try {
          login = await provider.recheck(session);
        } catch (error) {
          if (error instanceof UpstreamRefused) {
            throw new AccessWithdrawn(`${provider.name}: ${error.message}`, providerId);
          }
          throw error;
        }
        if (login.identity.sub !== sub) {
          throw new AccessWithdrawn(`${provider.name} answered for another user`, providerId);
        }
        await this.recordLogin(login);
        record = { ...login.identity };
      }
    }

    const decision = evaluateLogin(record, config);
    if (!decision.allowed) throw new AccessWithdrawn(decision.reason, providerId);
    for (const resource of resources) {
      const forResource = evaluateResourceAccess(record, resource);
      if (!forResource.allowed) throw new AccessWithdrawn(forResource.reason, providerId);
    }
    return record;
  }
}
