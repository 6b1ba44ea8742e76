/**
 * Who may log in, and who may use which MCP server: the `access` rules applied to the
 * identity a provider vouched for.
 *
 * Three layers, all of which must admit a user:
 *  1. the provider's own gate: `login.github.orgs`/`teams`, `login.google.hostedDomains`;
 *  2. the global `access` rules (the dev login's users are admitted by being listed);
 *  3. for a given MCP server, its `resources[].access`, which narrows 2.
 *
 * Rules are allow-lists: within one `access` block a user is admitted when any rule matches;
 * an empty block admits nobody (deny by default). Email and domain rules match only an
 * address the provider says is verified, since an unverified address proves nothing about
 * who the user is. Orgs and teams are compared lowercased (GitHub's names are case
 * insensitive); groups exactly (Entra ID's are GUIDs, others are case-sensitive names).
 *
 * Refusals name the rule that refused (shown to the user and logged), not the values the
 * rule lists.
 */
import type { AccessRules, GatewayConfig, ResourceConfig } from '../config/schema.js';
import type { Identity } from '../login/accounts.js';

export type AccessDecision = { allowed: true; rule: string } | { allowed: false; reason: string };

export function hasAccessRules(rules: AccessRules): boolean {
  return (
    rules.emails.length > 0 ||
    rules.domains.length > 0 ||
    rules.githubOrgs.length > 0 ||
    rules.githubTeams.length > 0 ||
    rules.groups.length > 0
  );
}

/**
 * Whether any rule needs GitHub org/team membership (GitHub's own gate, `githubOrgs`,
 * `githubTeams`, or a `github:` group in an access or tool rule): `read:org` is requested
 * only then.
 */
export function needsGitHubMembership(
  config: Pick<GatewayConfig, 'login' | 'access' | 'resources'>,
): boolean {
  const blocks = [config.access, ...config.resources.flatMap((r) => (r.access ? [r.access] : []))];
  const toolGroups = config.resources.flatMap((resource) =>
    Object.values(resource.tools?.rules ?? {}).flatMap((rule) => rule.groups),
  );
  const groups = [...blocks.flatMap((rules) => rules.groups), ...toolGroups];
  return (
    (config.login.github?.orgs.length ?? 0) > 0 ||
    (config.login.github?.teams.length ?? 0) > 0 ||
    blocks.some((rules) => rules.githubOrgs.length > 0 || rules.githubTeams.length > 0) ||
    groups.some((group) => group.startsWith('github:'))
  );
}

/** May this identity log in at all (layers 1 and 2)? */
export function evaluateLogin(
  identity: Identity,
  config: Pick<GatewayConfig, 'login' | 'access'>,
): AccessDecision {
  const gate = providerGate(identity, config.login);
  if (gate) return gate;
  if (identity.provider === 'dev') return { allowed: true, rule: 'login.dev.users' };
  return matchRules(identity, config.access, 'access');
}

/** May this identity get tokens for this MCP server (layer 3)? */
export function evaluateResourceAccess(
  identity: Identity,
  resource: ResourceConfig,
): AccessDecision {
  if (!resource.access) return { allowed: true, rule: 'access' };
  return matchRules(identity, resource.access, `the access rules of ${resource.name}`);
}

function providerGate(
  identity: Identity,
  login: GatewayConfig['login'],
): AccessDecision | undefined {
  const github = login.github;
  if (identity.provider === 'github' && github) {
    const orgs = identity.githubOrgs ?? [];
    const teams = identity.githubTeams ?? [];
    if (github.orgs.length > 0 && !github.orgs.some((org) => orgs.includes(org))) {
      return {
        allowed: false,
        reason:
          'Your GitHub account is not a member of an organization that login.github.orgs allows (or the organization has not approved this app).',
      };
    }
    if (github.teams.length > 0 && !github.teams.some((team) => teams.includes(team))) {
      return {
        allowed: false,
        reason: 'Your GitHub account is not in a team that login.github.teams allows.',
      };
    }
  }
  const google = login.google;
  if (identity.provider === 'google' && google && google.hostedDomains.length > 0) {
    if (!identity.hostedDomain || !google.hostedDomains.includes(identity.hostedDomain)) {
      return {
        allowed: false,
        reason: identity.hostedDomain
          ? `Google Workspace domain ${identity.hostedDomain} is not allowed by login.google.hostedDomains.`
          : 'This Google account belongs to no Google Workspace domain, and login.google.hostedDomains requires one.',
      };
    }
  }
  return undefined;
}

function matchRules(identity: Identity, rules: AccessRules, label: string): AccessDecision {
  if (!hasAccessRules(rules)) {
    return { allowed: false, reason: `No rule in ${label} admits anyone (it is empty).` };
  }
  const email = identity.email?.toLowerCase();
  const verified = email !== undefined && identity.emailVerified === true;
  if (verified) {
    if (rules.emails.includes(email)) return { allowed: true, rule: `${label}: emails` };
    const domain = email.slice(email.lastIndexOf('@') + 1);
    if (rules.domains.includes(domain)) return { allowed: true, rule: `${label}: domains` };
  }
  const orgs = identity.githubOrgs ?? [];
  if (rules.githubOrgs.some((org) => orgs.includes(org))) {
    return { allowed: true, rule: `${label}: githubOrgs` };
  }
  const teams = identity.githubTeams ?? [];
  if (rules.githubTeams.some((team) => teams.includes(team))) {
    return { allowed: true, rule: `${label}: githubTeams` };
  }
  const groups = identity.groups ?? [];
  if (rules.groups.some((group) => groups.includes(group))) {
    return { allowed: true, rule: `${label}: groups` };
  }

  const who = email ?? identity.name ?? identity.sub;
  const tried: string[] = [];
  if (rules.emails.length > 0 || rules.domains.length > 0) {
    tried.push(
      !email
        ? 'emails/domains (your identity provider shared no email address)'
        : !verified
          ? `emails/domains (your identity provider has not verified ${email})`
          : 'emails/domains',
    );
  }
  if (rules.githubOrgs.length > 0) tried.push('githubOrgs');
  if (rules.githubTeams.length > 0) tried.push('githubTeams');
  if (rules.groups.length > 0) tried.push('groups');
  return {
    allowed: false,
    reason: `${who} matches no rule in ${label} (checked: ${tried.join(', ')}).`,
  };
}
