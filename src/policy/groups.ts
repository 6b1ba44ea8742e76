/**
 * Group names are namespaced by the login provider that vouched for them:
 * `<provider>:<group>` (`corp:admins`, `dev:admins`, `github:acme/platform`). Two providers
 * never share a namespace, so a second, less trusted provider's `admins` group is
 * `partner:admins` and matches no rule written for `corp:admins`. Identities, tokens, the
 * `X-Auth-User-Groups` header and the backend JWT carry groups in this form, and every group
 * rule (`access.groups`, `resources[].access.groups`, tool rules' `groups`, `admins.groups`)
 * must name its provider: an unqualified group is refused when the configuration is loaded,
 * not guessed (a guess would change meaning the day a second provider is added).
 */
import type { GatewayConfig } from '../config/schema.js';

/** `<providerId>:<group>` for each group a provider gave. */
export function namespacedGroups(providerId: string, groups: readonly string[]): string[] {
  return groups.map((group) => `${providerId}:${group}`);
}

/** The logins of a configuration (`login`), as far as groups are concerned. */
export interface GroupSources {
  dev?: unknown;
  github?: unknown;
  google?: unknown;
  oidc: readonly Pick<GatewayConfig['login']['oidc'][number], 'id' | 'groupsClaim'>[];
}

/** The ids of the configured providers whose users can have groups. */
export function groupProviders(login: GroupSources): string[] {
  return [
    ...(login.dev ? ['dev'] : []),
    ...(login.github ? ['github'] : []),
    ...login.oidc.filter((provider) => provider.groupsClaim !== undefined).map((p) => p.id),
  ];
}

/**
 * Why the group rule `group` could never be met under `login` (one sentence saying how to
 * write it), or `undefined` when it names a configured provider that gives groups. The
 * provider id is what precedes the first `:` (provider ids hold none; group names may).
 */
export function groupRuleProblem(group: string, login: GroupSources): string | undefined {
  const providers = groupProviders(login);
  const known = providers.length > 0 ? providers.join(', ') : 'none is configured';
  const separator = group.indexOf(':');
  if (separator <= 0 || separator === group.length - 1) {
    const examples = providers.map((id) => `"${id}:${group}"`).join(' or ');
    return `group "${group}" must name the login provider it comes from, as "<provider>:<group>"${examples ? ` (${examples})` : ''}; providers with groups: ${known}`;
  }
  const providerId = group.slice(0, separator);
  if (providers.includes(providerId)) return undefined;
  if (providerId === 'google' && login.google) {
    return `group "${group}": Google logins carry no groups`;
  }
  if (login.oidc.some((provider) => provider.id === providerId)) {
    return `group "${group}": login.oidc "${providerId}" sets no groupsClaim, so its users have no groups`;
  }
  return `group "${group}": no login provider "${providerId}" is configured; providers with groups: ${known}`;
}
