/**
 * The access rules (src/policy/access.ts) as a table: which identity each layer admits, and
 * that every refusal names the rule that refused.
 */
import { describe, expect, it } from '@jest/globals';
import { configSchema, type GatewayConfig } from '../../src/config/schema.js';
import type { Identity } from '../../src/login/accounts.js';
import {
  evaluateLogin,
  evaluateResourceAccess,
  needsGitHubMembership,
} from '../../src/policy/access.js';

function config(extra: Record<string, unknown>): GatewayConfig {
  return configSchema.parse({
    issuer: 'https://auth.example.com',
    resources: [{ url: 'https://mcp.example.com/mcp', name: 'MCP' }],
    ...extra,
  });
}

const github = (overrides: Partial<Identity> = {}): Identity => ({
  sub: 'github:42',
  provider: 'github',
  email: 'octo@example.com',
  emailVerified: true,
  githubOrgs: ['acme'],
  githubTeams: ['acme/platform'],
  groups: ['github:acme', 'github:acme/platform'],
  ...overrides,
});

const githubLogin = { clientId: 'id', clientSecret: 'secret' };

describe('evaluateLogin', () => {
  it('admits nobody from an upstream provider when access is empty (deny by default)', () => {
    const decision = evaluateLogin(github(), config({ login: { github: githubLogin } }));
    expect(decision).toEqual({
      allowed: false,
      reason: 'No rule in access admits anyone (it is empty).',
    });
  });

  it('admits by any one rule and names it', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ emails: ['octo@example.com'] }, 'access: emails'],
      [{ domains: ['example.com'] }, 'access: domains'],
      [{ githubOrgs: ['ACME'] }, 'access: githubOrgs'],
      [{ githubTeams: ['Acme/Platform'] }, 'access: githubTeams'],
      [{ groups: ['github:acme/platform'] }, 'access: groups'],
    ];
    for (const [access, rule] of cases) {
      expect(evaluateLogin(github(), config({ login: { github: githubLogin }, access }))).toEqual({
        allowed: true,
        rule,
      });
    }
  });

  it('keeps GitHub orgs apart from IdP groups: a groups rule matches only github:-prefixed names', () => {
    const corp = { id: 'corp', name: 'Corp', issuer: 'https://idp.example.com', clientId: 'c' };
    const cfg = config({
      login: { github: githubLogin, oidc: [{ ...corp, groupsClaim: 'groups' }] },
      access: { groups: ['corp:acme'] },
    });
    // Anyone can create a GitHub org called "acme"; it must not pass for the IdP group.
    expect(evaluateLogin(github(), cfg).allowed).toBe(false);
  });

  it('never matches email or domain rules on an unverified address, and says so', () => {
    const decision = evaluateLogin(
      github({ emailVerified: false }),
      config({ login: { github: githubLogin }, access: { domains: ['example.com'] } }),
    );
    expect(decision).toEqual({
      allowed: false,
      reason:
        'octo@example.com matches no rule in access (checked: emails/domains (your identity provider has not verified octo@example.com)).',
    });
  });

  it('refuses a user outside the orgs, teams and groups without listing the allowed values', () => {
    const decision = evaluateLogin(
      github({ githubOrgs: ['other'], githubTeams: [], groups: [] }),
      config({
        login: { github: githubLogin },
        access: { githubOrgs: ['acme'], githubTeams: ['acme/secret'], groups: ['github:admins'] },
      }),
    );
    expect(decision.allowed).toBe(false);
    const reason = (decision as { reason: string }).reason;
    expect(reason).toBe(
      'octo@example.com matches no rule in access (checked: githubOrgs, githubTeams, groups).',
    );
    expect(reason).not.toContain('acme');
  });

  it('applies the provider gates before the access rules', () => {
    const gated = config({
      login: {
        github: { ...githubLogin, orgs: ['acme'], teams: ['acme/platform'] },
        google: { clientId: 'g', clientSecret: 's', hostedDomains: ['example.com'] },
      },
      access: { domains: ['example.com', 'gmail.com'] },
    });
    expect(evaluateLogin(github(), gated).allowed).toBe(true);
    expect(evaluateLogin(github({ githubOrgs: ['other'] }), gated)).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('login.github.orgs'),
    });
    expect(evaluateLogin(github({ githubTeams: ['acme/other'] }), gated)).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('login.github.teams'),
    });
    const google = (hostedDomain?: string, email = 'ann@example.com'): Identity => ({
      sub: 'google:1',
      provider: 'google',
      email,
      emailVerified: true,
      hostedDomain,
    });
    expect(evaluateLogin(google('example.com'), gated).allowed).toBe(true);
    // A consumer account at the company's domain has no `hd`: refused although the address
    // matches access.domains.
    expect(evaluateLogin(google(undefined), gated)).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('belongs to no Google Workspace domain'),
    });
    expect(evaluateLogin(google('other.example', 'ann@gmail.com'), gated)).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('other.example is not allowed'),
    });
  });

  it('admits dev users by their listing, but still applies per-resource rules to them', () => {
    const cfg = config({
      login: { dev: { users: ['dev@example.com'] } },
      resources: [
        {
          url: 'https://mcp.example.com/mcp',
          name: 'Finance MCP',
          access: { groups: ['dev:finance'] },
        },
      ],
    });
    const dev: Identity = {
      sub: 'dev:dev@example.com',
      provider: 'dev',
      email: 'dev@example.com',
      emailVerified: true,
      groups: [],
    };
    expect(evaluateLogin(dev, cfg)).toEqual({ allowed: true, rule: 'login.dev.users' });
    expect(evaluateResourceAccess(dev, cfg.resources[0]!)).toEqual({
      allowed: false,
      reason:
        'dev@example.com matches no rule in the access rules of Finance MCP (checked: groups).',
    });
    expect(evaluateResourceAccess({ ...dev, groups: ['dev:finance'] }, cfg.resources[0]!)).toEqual({
      allowed: true,
      rule: 'the access rules of Finance MCP: groups',
    });
  });
});

describe('needsGitHubMembership', () => {
  it('is true only when some rule looks at orgs or teams (read:org is requested only then)', () => {
    expect(needsGitHubMembership(config({ login: { github: githubLogin } }))).toBe(false);
    expect(
      needsGitHubMembership(
        config({ login: { github: githubLogin }, access: { githubOrgs: ['a'] } }),
      ),
    ).toBe(true);
    expect(
      needsGitHubMembership(config({ login: { github: { ...githubLogin, teams: ['a/b'] } } })),
    ).toBe(true);
    expect(
      needsGitHubMembership(
        config({
          login: { github: githubLogin },
          resources: [
            { url: 'https://mcp.example.com/mcp', name: 'M', access: { githubTeams: ['a/b'] } },
          ],
        }),
      ),
    ).toBe(true);
    // A tool rule naming a GitHub team needs the membership too.
    expect(
      needsGitHubMembership(
        config({
          login: { github: githubLogin },
          resources: [
            {
              url: 'https://mcp.example.com/mcp',
              name: 'M',
              tools: { rules: { deploy: { groups: ['github:acme/platform'] } } },
            },
          ],
        }),
      ),
    ).toBe(true);
  });
});
