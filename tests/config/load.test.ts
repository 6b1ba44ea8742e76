import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const run = promisify(execFile);

describe('configuration loading', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mcpgw-config-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const write = async (name: string, text: string) => {
    const file = path.join(dir, name);
    await writeFile(file, text);
    return file;
  };

  it('uses the embedded default without a file: loopback, dev login, the demo resource', () => {
    const { config, source } = loadConfig(undefined, {});
    expect(source).toBeUndefined();
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8787 });
    expect(config.issuer).toBe('http://localhost:8787');
    expect(config.login.dev?.users.map((user) => user.email)).toEqual([
      'dev@example.com',
      'guest@example.com',
    ]);
    expect(config.admins.emails).toEqual(['dev@example.com']);
    expect(config.resources.map((resource) => resource.url)).toEqual(['http://localhost:3001/mcp']);
    expect(config.resources[0]!.tools?.rules).toEqual({
      team_report: { scopes: [], groups: ['dev:admins'] },
    });
    expect(config.store.redis).toBeUndefined();
    // DEMO_PORT moves the demo resource; a bad value is refused by name.
    expect(loadConfig(undefined, { DEMO_PORT: '4101' }).config.resources[0]!.url).toBe(
      'http://localhost:4101/mcp',
    );
    expect(() => loadConfig(undefined, { DEMO_PORT: 'x' })).toThrow(/DEMO_PORT/);
  });

  it('lets PORT and HOST override the listen address (and the default issuer follows PORT)', () => {
    const { config } = loadConfig(undefined, { PORT: '9911', HOST: '127.0.0.2' });
    expect(config.listen).toEqual({ host: '127.0.0.2', port: 9911 });
    expect(config.issuer).toBe('http://localhost:9911');
  });

  it('interpolates ${VAR} and reads ${VAR} from VAR_FILE (Docker secrets)', async () => {
    const secretFile = await write('secret.txt', 'from-a-file\n');
    const file = await write(
      'interp.yaml',
      `issuer: https://auth.example.com
resources: [{ url: https://mcp.example.com/mcp, name: A }]
login:
  oidc:
    - { id: corp, name: Corp, issuer: https://idp.example.com, clientId: "\${CLIENT_ID}", clientSecret: "\${CLIENT_SECRET}" }
access: { domains: [example.com] }
`,
    );
    const { config } = loadConfig(file, { CLIENT_ID: 'gw', CLIENT_SECRET_FILE: secretFile });
    expect(config.login.oidc[0]?.clientId).toBe('gw');
    expect(config.login.oidc[0]?.clientSecret).toBe('from-a-file');
  });

  it('canonicalises resource URLs (case, trailing slash)', async () => {
    const file = await write(
      'canon.yaml',
      `issuer: https://auth.example.com\nresources: [{ url: "HTTPS://MCP.Example.com/mcp/", name: A }]\nlogin: { dev: { users: [a@example.com] } }\n`,
    );
    expect(loadConfig(file, {}).config.resources[0]?.url).toBe('https://mcp.example.com/mcp');
  });

  it('reports one line per problem, naming the key', async () => {
    const file = await write(
      'bad.yaml',
      `issuer: not-a-url
resources:
  - { url: http://mcp.example.com/mcp, name: A, scopes: ["bad scope"] }
tokens: { accessTokenTtl: soon }
unknownKey: 1
`,
    );
    let error: unknown;
    try {
      loadConfig(file, {});
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems.some((line) => line.startsWith('issuer:'))).toBe(true);
    expect(problems.some((line) => line.startsWith('resources[0].scopes[0]:'))).toBe(true);
    expect(problems.some((line) => line.startsWith('tokens.accessTokenTtl:'))).toBe(true);
    expect(problems.some((line) => line.includes('unknownKey'))).toBe(true);
  });

  it('refuses http for a non-loopback issuer or resource', async () => {
    const file = await write(
      'http.yaml',
      `issuer: http://auth.example.com\nresources: [{ url: http://mcp.example.com/mcp, name: A }]\nlogin: { dev: { users: [a@example.com] } }\n`,
    );
    expect(() => loadConfig(file, {})).toThrow(
      /issuer: must use https[\s\S]*resources\[0\]\.url: must use https/,
    );
  });

  it('checks the company logins: https endpoints, team names, reserved parameters, ids', async () => {
    const file = await write(
      'logins.yaml',
      `issuer: https://auth.example.com
resources: [{ url: https://mcp.example.com/mcp, name: A, access: { githubTeams: [acme] } }]
login:
  github: { clientId: a, clientSecret: b, apiUrl: "http://ghe.example.com/api/v3" }
  google: { clientId: a, clientSecret: b, hostedDomains: ["not a domain"] }
  oidc:
    - { id: github, name: X, issuer: "https://idp.example.com", clientId: c }
    - id: corp
      name: Corp
      issuer: "https://idp.example.com"
      clientId: c
      authorizationParams: { resource: "https://mcp.example.com/mcp", prompt: login }
`,
    );
    let problems: string[] = [];
    try {
      loadConfig(file, {});
    } catch (caught) {
      problems = (caught as ConfigError).problems;
    }
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^resources\[0\]\.access\.githubTeams\[0\]: must be org\/team-slug/),
        expect.stringMatching(/^login\.google\.hostedDomains\[0\]: must be a DNS domain/),
        expect.stringMatching(/^login\.oidc\[1\]\.authorizationParams: must not set .*resource/),
      ]),
    );
    // Refinements that need the whole block run once the parts are valid.
    const second = await write(
      'logins2.yaml',
      `issuer: https://auth.example.com
resources: [{ url: https://mcp.example.com/mcp, name: A }]
login:
  github: { clientId: a, clientSecret: b, apiUrl: "http://ghe.example.com/api/v3" }
  oidc: [{ id: github, name: X, issuer: "https://idp.example.com", clientId: c }]
`,
    );
    expect(() => loadConfig(second, {})).toThrow(
      /login: login\.oidc ids dev, github and google are taken/,
    );
    const third = await write(
      'logins3.yaml',
      `issuer: https://auth.example.com
resources: [{ url: https://mcp.example.com/mcp, name: A }]
login:
  github: { clientId: a, clientSecret: b, apiUrl: "http://ghe.example.com/api/v3" }
`,
    );
    expect(() => loadConfig(third, {})).toThrow(/login\.github\.apiUrl: must use https/);
  });

  it('names a missing environment variable', async () => {
    const file = await write('missing.yaml', 'issuer: ${NOPE}\n');
    expect(() => loadConfig(file, {})).toThrow(/NOPE \(or NOPE_FILE\) is not set/);
  });

  describe('the mcp-gateway command', () => {
    const cli = ['--import', 'tsx', path.resolve('src/main.ts')];

    it('exits with code 2 and one line per problem for an invalid file', async () => {
      const file = await write('cli-bad.yaml', 'issuer: 42\nresources: 7\n');
      const failure = await run(process.execPath, [...cli, '--config', file]).catch(
        (error: unknown) => error,
      );
      const { code, stderr } = failure as { code: number; stderr: string };
      expect(code).toBe(2);
      const lines = stderr.trim().split('\n');
      expect(lines).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^config: issuer: /),
          expect.stringMatching(/^config: resources: /),
        ]),
      );
      expect(lines.every((line) => line.startsWith('config: '))).toBe(true);
    });

    it('refuses the dev login on a non-loopback address (exit 2)', async () => {
      const file = await write(
        'cli-dev.yaml',
        `issuer: https://auth.example.com\nlisten: { host: 0.0.0.0, port: 0 }\nresources: [{ url: https://mcp.example.com/mcp, name: A }]\nlogin: { dev: { users: [a@example.com] } }\n`,
      );
      const failure = await run(process.execPath, [...cli, '--config', file]).catch(
        (error: unknown) => error,
      );
      expect((failure as { code: number }).code).toBe(2);
      expect((failure as { stderr: string }).stderr).toMatch(/login\.dev .* loopback/);
    });
  });
});
