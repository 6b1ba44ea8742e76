/**
 * Group rules name the provider their group comes from (src/policy/groups.ts): the
 * configuration refuses an unqualified group wherever a rule lists one, and says how to write
 * it; the server catalog refuses one in a tool rule saved at run time.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { evaluateLogin } from '../../src/policy/access.js';
import { groupRuleProblem, namespacedGroups } from '../../src/policy/groups.js';
import { ServerCatalog, ServerChangeRefused } from '../../src/servers/catalog.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { captureLogger } from '../helpers/captured-logger.js';

const corp = {
  id: 'corp',
  name: 'Corp',
  issuer: 'https://idp.corp.example',
  clientId: 'c',
  groupsClaim: 'groups',
};
const partner = { ...corp, id: 'partner', issuer: 'https://idp.partner.example' };
const login = { oidc: [corp, partner], dev: { users: ['dev@example.com'] } };

function problems(extra: Record<string, unknown>): string[] {
  const parsed = configSchema.safeParse({
    issuer: 'https://auth.example.com',
    login,
    resources: [{ url: 'https://mcp.example.com/mcp', name: 'MCP' }],
    ...extra,
  });
  return parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('group rules in the configuration', () => {
  it('refuses an unqualified group in access, admins, resources[].access and tool rules', () => {
    const found = problems({
      access: { groups: ['admins'] },
      admins: { groups: ['admins'] },
      resources: [
        {
          url: 'https://mcp.example.com/mcp',
          name: 'MCP',
          access: { groups: ['admins'] },
          tools: { rules: { purge: { groups: ['admins'] } } },
        },
      ],
    });
    const hint =
      'group "admins" must name the login provider it comes from, as "<provider>:<group>" ("dev:admins" or "corp:admins" or "partner:admins"); providers with groups: dev, corp, partner';
    expect(found).toEqual([
      `access.groups.0: ${hint}`,
      `admins.groups.0: ${hint}`,
      `resources.0.access.groups.0: ${hint}`,
      `resources.0.tools.rules.purge.groups.0: ${hint}`,
    ]);
  });

  it('refuses a provider that is not configured, gives no groups, or is Google', () => {
    expect(
      problems({
        login: {
          ...login,
          oidc: [corp, { ...partner, groupsClaim: undefined }],
          google: { clientId: 'g', clientSecret: 's' },
        },
        access: { groups: ['okta:admins', 'partner:admins', 'google:admins', ':admins', 'corp:'] },
      }),
    ).toEqual([
      'access.groups.0: group "okta:admins": no login provider "okta" is configured; providers with groups: dev, corp',
      'access.groups.1: group "partner:admins": login.oidc "partner" sets no groupsClaim, so its users have no groups',
      'access.groups.2: group "google:admins": Google logins carry no groups',
      expect.stringContaining('access.groups.3: group ":admins" must name the login provider'),
      expect.stringContaining('access.groups.4: group "corp:" must name the login provider'),
    ]);
  });

  it('accepts groups named with their provider, GitHub orgs and teams included', () => {
    expect(
      problems({
        login: { ...login, github: { clientId: 'g', clientSecret: 's' } },
        access: { groups: ['corp:admins', 'partner:a:b', 'github:acme/platform'] },
        admins: { groups: ['dev:ops'] },
      }),
    ).toEqual([]);
  });

  it('says so when the configuration file is loaded', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-groups-'));
    try {
      const file = path.join(dir, 'gateway.yaml');
      await writeFile(
        file,
        [
          'issuer: https://auth.example.com',
          'login:',
          '  oidc:',
          '    - { id: corp, name: Corp, issuer: "https://idp.corp.example", clientId: c, groupsClaim: groups }',
          'admins:',
          '  groups: [admins]',
          'resources:',
          '  - { url: "https://mcp.example.com/mcp", name: MCP }',
          '',
        ].join('\n'),
      );
      const error = (() => {
        try {
          loadConfig(file, {});
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.join('\n')).toContain('"corp:admins"');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('matching', () => {
  it('keeps two providers’ groups of the same name apart', () => {
    const config = configSchema.parse({
      issuer: 'https://auth.example.com',
      login,
      access: { groups: ['corp:admins'] },
      resources: [{ url: 'https://mcp.example.com/mcp', name: 'MCP' }],
    });
    const user = (provider: string) => ({
      sub: `oidc:${provider}:u`,
      provider,
      email: 'u@example.com',
      groups: namespacedGroups(provider, ['admins']),
    });
    expect(evaluateLogin(user('corp'), config)).toEqual({
      allowed: true,
      rule: 'access: groups',
    });
    expect(evaluateLogin(user('partner'), config).allowed).toBe(false);
    expect(groupRuleProblem('corp:admins', config.login)).toBeUndefined();
  });
});

describe('tool rules of servers added at run time', () => {
  it('refuses an unqualified group, and accepts one naming a configured provider', async () => {
    const store = new MemoryStore({ maxEntries: 100 });
    const catalog = new ServerCatalog({
      store,
      configuredUrls: [],
      maxServers: 10,
      pollInterval: 3600,
      logger: captureLogger().logger,
      groupSources: { oidc: [corp] },
    });
    const server = (groups: string[]) => ({
      name: 'Notes',
      url: 'https://mcp.example.com/notes/mcp',
      upstream: 'http://notes:3000',
      scopes: ['notes'],
      tools: { rules: { purge: { groups } } },
      rateLimitAverage: 50,
      rateLimitBurst: 100,
      inFlight: 10,
      crowdsec: false,
    });
    const refused = await catalog.add(server(['admins']), 'cli:test').catch((error) => error);
    expect(refused).toBeInstanceOf(ServerChangeRefused);
    expect((refused as ServerChangeRefused).problems).toEqual([
      'tools.rules.purge.groups.0: group "admins" must name the login provider it comes from, as "<provider>:<group>" ("corp:admins"); providers with groups: corp',
    ]);
    const added = await catalog.add(server(['corp:admins']), 'cli:test');
    expect(added.tools?.rules.purge?.groups).toEqual(['corp:admins']);
    await store.close();
  });
});
