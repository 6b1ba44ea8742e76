/**
 * Who may log in: the `access` rules applied to the identity a provider vouched for.
 *
 * Rules are allow-lists: a user is admitted when any rule matches; with no rule at all,
 * nobody is admitted through the upstream providers (deny by default). Email-based rules
 * match only an email address the provider says is verified, since an unverified address
 * proves nothing about who the user is. Users of the development login are admitted
 * because the admin listed them by name.
 */
import type { GatewayConfig } from '../config/schema.js';
import type { Identity } from '../login/accounts.js';

export type AccessDecision = { allowed: true; rule: string } | { allowed: false; reason: string };

export function hasAccessRules(access: GatewayConfig['access']): boolean {
  return access.emails.length > 0 || access.domains.length > 0;
}

export function evaluateAccess(
  identity: Identity,
  access: GatewayConfig['access'],
): AccessDecision {
  if (identity.provider === 'dev') return { allowed: true, rule: 'login.dev.users' };
  if (!hasAccessRules(access)) {
    return {
      allowed: false,
      reason: 'No access rule admits users of this provider (access is empty).',
    };
  }
  const email = identity.email?.toLowerCase();
  if (!email) {
    return { allowed: false, reason: 'Your identity provider did not share an email address.' };
  }
  if (identity.emailVerified !== true) {
    return { allowed: false, reason: `Your identity provider has not verified ${email}.` };
  }
  if (access.emails.includes(email)) return { allowed: true, rule: 'access.emails' };
  const domain = email.slice(email.lastIndexOf('@') + 1);
  if (access.domains.includes(domain)) return { allowed: true, rule: 'access.domains' };
  return {
    allowed: false,
    reason: `${email} is not in access.emails and ${domain} is not in access.domains.`,
  };
}
