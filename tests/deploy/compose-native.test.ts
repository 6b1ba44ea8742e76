/**
 * compose.yaml proven without a container engine: its services run natively from the same
 * files (tests/helpers/compose-native.ts: the images' commands and environment, compose's
 * command, environment and mounts, one address map), the MCP SDK's client goes through the
 * whole stack, and then what actually ran, read from /proc and from the running Redis, is
 * compared with what compose.yaml and the Dockerfiles declare (./compose-native-check.ts); the
 * comparison is also run against copies broken on purpose, so it is known to fail when compose
 * changes and the native run does not follow. docs/deployment.md, "What the tests prove without
 * Docker", says what this shows and what only a container run can.
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  truncateSync,
} from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { parse } from 'yaml';
import { describeWithBinary } from '../helpers/binaries.js';
import { imageStage, mountsOf } from '../helpers/compose-model.js';
import {
  LOOPBACK,
  nativePath,
  startNativeStack,
  type Declared,
  type NativeStack,
} from '../helpers/compose-native.js';
import { record, strings, type Json } from '../helpers/config-files.js';
import { eventually } from '../helpers/poll.js';
import { getFreePort } from '../helpers/ports.js';
import { nativeRunProblems, observe, type Observed } from '../helpers/compose-native-check.js';
import { TestOAuthProvider, userApproves } from '../helpers/sdk-client.js';
import { TestUserAgent } from '../helpers/user-agent.js';

const USERS = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Example' },
};

interface Identity {
  userId: string;
  email: string;
  clientId: string;
  scopes: string[];
  backendToken: string;
}

type AuthTransport = Transport & { finishAuth(code: string): Promise<void> };

/** Redis and Traefik are the two programs of the stack the machine must have. */
const describeWithStack = (name: string, fn: () => void) =>
  describeWithBinary('redis-server', name, () => describeWithBinary('traefik', 'on Traefik', fn));

describeWithStack('compose.yaml run natively', () => {
  let stack: NativeStack;
  let agent: TestUserAgent;
  let observed: Observed;

  beforeAll(async () => {
    stack = await startNativeStack({ users: USERS });
    stack.idp.loginAs('alice');
    agent = new TestUserAgent({ dispatcher: stack.dispatcher });
    observed = await observe(stack);
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  /** The SDK's whole flow from the MCP URL alone, then `whoami`. */
  async function whoami(makeTransport: (provider: TestOAuthProvider) => AuthTransport) {
    const provider = new TestOAuthProvider();
    // The transport that got the 401 knows the resource metadata URL it named: it finishes.
    const first = makeTransport(provider);
    const refused = new Client({ name: 'compose-native', version: '1' }).connect(first);
    await expect(refused).rejects.toThrow(UnauthorizedError);
    const approved = await userApproves(agent, provider.authorizationUrl!);
    const code = approved.url.searchParams.get('code');
    expect(code).toBeTruthy();
    await first.finishAuth(code!);
    const client = new Client({ name: 'compose-native', version: '1' });
    await client.connect(makeTransport(provider));
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    await client.close();
    const text = (result.content as { type: string; text: string }[])[0]?.text ?? '';
    return { identity: JSON.parse(text) as Identity, provider };
  }

  it('serves the SDK client through Traefik, forwardAuth and the auth service (mcp-example)', async () => {
    const url = new URL(`${stack.mcpOrigin}/mcp`);
    const { identity, provider } = await whoami(
      (authProvider) =>
        new StreamableHTTPClientTransport(url, { authProvider, fetch: stack.fetch }),
    );
    expect(identity).toEqual({
      userId: 'oidc:sso:alice',
      email: 'alice@example.com',
      name: 'Alice Example',
      groups: [],
      clientId: provider.clientId(),
      scopes: ['mcp'],
      backendToken: 'absent',
    });
  });

  it('serves the legacy SSE server under its BASE_PATH with a backend token (mcp-legacy)', async () => {
    const url = new URL(`${stack.mcpOrigin}/servers/legacy/sse`);
    const { identity } = await whoami(
      (authProvider) => new SSEClientTransport(url, { authProvider, fetch: stack.fetch }),
    );
    expect(identity).toMatchObject({ userId: 'oidc:sso:alice', backendToken: 'present' });
    // The shipped files, as the native run gave them, load without a complaint.
    expect(stack.traefik.errors()).toEqual([]);
  });

  it('ran exactly what compose.yaml and the Dockerfiles declare, through the address map', () => {
    expect(nativeRunProblems(stack.declared, stack.places, observed)).toEqual([]);
    // The observation is of real processes: each mapped address has its listener.
    expect(Object.keys(observed.listeners).sort()).toEqual([
      'auth:8787',
      'mcp-example:3001',
      'mcp-legacy:3002',
      'redis:6379',
      'traefik:443',
    ]);
    expect(observed.redisConfig).toMatchObject({
      appendonly: 'yes',
      'maxmemory-policy': 'noeviction',
    });
  });

  /** A copy of the declared files with one thing changed by `edit`. */
  function broken(edit: (d: Declared) => void): Declared {
    const copy: Declared = {
      compose: structuredClone(stack.declared.compose),
      dockerfiles: { ...stack.declared.dockerfiles },
      read: stack.declared.read,
    };
    edit(copy);
    return copy;
  }
  const svc = (d: Declared, name: string) => record(record(d.compose.services)[name]);
  const env = (d: Declared, name: string) => record(svc(d, name).environment);
  const mount = (d: Declared, name: string, index: number) =>
    record((svc(d, name).volumes as unknown[])[index]);
  const lastStage = (text: string, from: string, to: string) => {
    const index = text.lastIndexOf(from);
    return text.slice(0, index) + to + text.slice(index + from.length);
  };

  // Each case changes compose.yaml or a Dockerfile without the native run following.
  const cases: [string, (d: Declared) => void, RegExp][] = [
    [
      "redis's command (AOF off)",
      (d) => (svc(d, 'redis').command = ['redis-server', '--appendonly', 'no']),
      /redis appendonly: ran "yes", declared "no"/,
    ],
    [
      "redis's command (a new setting)",
      (d) => (svc(d, 'redis').command as string[]).push('--maxmemory', '64mb'),
      /redis maxmemory: ran "0", declared "64mb"/,
    ],
    [
      'an auth environment value',
      (d) => (env(d, 'auth').ALLOWED_EMAIL_DOMAIN = 'other.example'),
      /auth environment: .*other\.example/,
    ],
    [
      'a new auth environment variable',
      (d) => (env(d, 'auth').LOG_LEVEL = 'debug'),
      /auth environment: .*LOG_LEVEL/,
    ],
    [
      "another file mounted as the auth service's configuration",
      (d) => (mount(d, 'auth', 0).source = './traefik/traefik.yml'),
      /auth file .*gateway\.yaml: ran/,
    ],
    [
      "the auth service's configuration mounted elsewhere",
      (d) => (mount(d, 'auth', 0).target = '/etc/mcp-gateway/config.yaml'),
      /auth: was given no file .*config\.yaml/,
    ],
    [
      'another auth port',
      (d) => (svc(d, 'auth').expose = ['8788']),
      /compose declares auth:8788, which the native run does not serve/,
    ],
    [
      'another mcp-example PORT',
      (d) => (env(d, 'mcp-example').PORT = '3005'),
      /mcp-example environment: .*"PORT":"3005"/,
    ],
    [
      'another mcp-legacy command',
      (d) => (svc(d, 'mcp-legacy').command = ['node', 'dist/streamable-http.js']),
      /mcp-legacy command: .*streamable-http/,
    ],
    [
      'another CMD in the auth image',
      (d) => {
        d.dockerfiles['.'] = d.dockerfiles['.']!.replace(
          '"--experimental-async-context-frame", ',
          '',
        );
      },
      /auth command: /,
    ],
    [
      'another ENV in the auth image',
      (d) => {
        d.dockerfiles['.'] = lastStage(d.dockerfiles['.']!, 'USER node', 'ENV TZ=UTC\nUSER node');
      },
      /auth environment: .*"TZ":"UTC"/,
    ],
    [
      "another WORKDIR in the examples' image",
      (d) => {
        const key = 'examples/mcp-servers';
        d.dockerfiles[key] = lastStage(d.dockerfiles[key]!, 'WORKDIR /app', 'WORKDIR /srv');
      },
      /mcp-example cwd: /,
    ],
    [
      'another public host for Traefik',
      (d) => (env(d, 'traefik').AUTH_HOST = 'login.${DOMAIN}'),
      /traefik AUTH_HOST: ran "auth\.example\.com", declared "login\.example\.com"/,
    ],
    [
      "another file mounted as Traefik's dynamic configuration",
      (d) => (mount(d, 'traefik', 1).source = './deploy/gateway.yaml'),
      /traefik dynamic configuration: /,
    ],
    [
      'another port published by Traefik',
      (d) => (svc(d, 'traefik').ports as string[]).push('8443:8443'),
      /compose declares traefik:8443, which the native run does not serve/,
    ],
    [
      'a new service',
      (d) => (record(d.compose.services).extra = { image: 'nginx:1.27.3', expose: ['80'] }),
      /compose declares extra:80, which the native run does not serve/,
    ],
    [
      'an excluded service removed',
      (d) => delete record(d.compose.services).wireguard,
      /wireguard is excluded from the native run but is no compose service/,
    ],
  ];
  it.each(cases)('notices %s', (_name, edit, problem) => {
    expect(nativeRunProblems(broken(edit), stack.places, observed).join('\n')).toMatch(problem);
  });

  /** A program run to its end with the given environment, in `cwd`, `input` on stdin. */
  function run(
    program: string,
    args: string[],
    options: { env: Record<string, string>; cwd: string; input?: string },
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(program, args, { env: options.env, cwd: options.cwd });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += String(chunk)));
      child.stderr.on('data', (chunk) => (stderr += String(chunk)));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(options.input ?? '');
    });
  }

  it('has the CLI in the auth image as documented: on the PATH, MCP_GATEWAY_CONFIG, stdin `-`', async () => {
    const stage = imageStage(stack.declared.dockerfiles['.']!);
    const cmd = stage.cmd ?? [];
    // The image's MCP_GATEWAY_CONFIG is the file its CMD names, which compose mounts.
    expect(stage.env.MCP_GATEWAY_CONFIG).toBe(cmd[cmd.indexOf('--config') + 1]);
    const targets = mountsOf(svc(stack.declared, 'auth')).map((mount) => mount.target);
    expect(targets).toContain(stage.env.MCP_GATEWAY_CONFIG);
    // The replayed image: package.json's bin, linked into /usr/local/bin, on the image's PATH.
    const root = stack.places.imageRoots['.']!;
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> };
    expect(realpathSync(path.join(root, 'usr/local/bin/mcp-gateway'))).toBe(
      path.join(root, stage.workdir, pkg.bin['mcp-gateway']!),
    );
    const auth = stack.processes.auth!;
    expect(auth.env.PATH!.split(':')).toContain(path.join(root, 'usr/local/bin'));
    const cli = (args: string[], input?: string) =>
      run('mcp-gateway', args, { env: auth.env, cwd: auth.cwd, input });

    const help = await cli(['--help']);
    expect(help).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('servers list|add FILE|-|'),
    });
    const usage = await cli(['servers', 'add']);
    expect(usage).toMatchObject({ code: 2, stderr: expect.stringContaining('servers add FILE|-') });

    // No --config: the file MCP_GATEWAY_CONFIG names, on the stack's Redis.
    const listed = await cli(['servers', 'list']);
    expect(listed).toMatchObject({
      code: 0,
      stdout: expect.stringContaining(`${stack.mcpOrigin}/mcp`),
    });
    const url = `${stack.mcpOrigin}/servers/from-stdin`;
    const upstream = `http://${LOOPBACK}:${stack.places.addresses['mcp-example:3001']}`;
    const added = await cli(
      ['servers', 'add', '-'],
      `name: From stdin\nurl: ${url}\nupstream: ${upstream}\ncrowdsec: false\n`,
    );
    expect(added).toMatchObject({ code: 0 });
    expect((await cli(['servers', 'list'])).stdout).toContain(url);
    // Its Traefik file lands in the traefik-dynamic volume, which Traefik watches.
    const dynamic = stack.places.volumes['traefik-dynamic']!;
    const serverFiles = () => readdirSync(dynamic).filter((name) => name.startsWith('mcpgw-'));
    expect(await eventually(async () => serverFiles().length === 1, 5_000)).toBe(true);
    expect(await cli(['servers', 'remove', url])).toMatchObject({ code: 0 });
    expect(await eventually(async () => serverFiles().length === 0, 5_000)).toBe(true);
  });

  /** A health check command through the address map: its own `127.0.0.1:PORT`, `node`. */
  function mappedCheck(service: string, command: string[]): string[] {
    const ports = Object.entries(stack.places.addresses).filter(([address]) =>
      address.startsWith(`${service}:`),
    );
    return command.map((arg, index) => {
      if (index === 0 && arg === 'node') return process.execPath;
      return ports.reduce(
        (text, [address, port]) =>
          text.replaceAll(`${LOOPBACK}:${address.split(':')[1]}`, `${LOOPBACK}:${port}`),
        arg,
      );
    });
  }

  it("passes compose's and the images' health checks, and fails them where nothing listens", async () => {
    const authStage = imageStage(stack.declared.dockerfiles['.']!);
    const authCheck = strings(record(svc(stack.declared, 'auth').healthcheck).test);
    // compose.yaml states the image's check again (for depends_on): the same command.
    expect(authCheck).toEqual(['CMD', ...(authStage.healthcheck ?? [])]);
    const examples = imageStage(stack.declared.dockerfiles['examples/mcp-servers']!);
    const checks: [string, string[]][] = [
      ['auth', authCheck.slice(1)],
      ['mcp-example', examples.healthcheck ?? []],
      ['mcp-legacy', examples.healthcheck ?? []],
    ];
    for (const [service, command] of checks) {
      const { env, cwd } = stack.processes[service]!;
      const [program = '', ...args] = mappedCheck(service, command);
      expect(await run(program, args, { env, cwd })).toMatchObject({ code: 0 });
      // The same check against a port where nothing listens fails.
      const closed = await getFreePort();
      const failing = args.map((arg) => arg.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${closed}`));
      const failingEnv = { ...env, ...(env.PORT ? { PORT: String(closed) } : {}) };
      expect(await run(program, failing, { env: failingEnv, cwd })).toMatchObject({ code: 1 });
    }
    // redis: `redis-cli ping | grep -q PONG` in the container, on its default 127.0.0.1:6379.
    const [kind, script = ''] = strings(record(svc(stack.declared, 'redis').healthcheck).test);
    expect(kind).toBe('CMD-SHELL');
    const port = stack.places.addresses['redis:6379'];
    const mapped = script.replace(/\bredis-cli\b/, `redis-cli -p ${port}`);
    expect(
      await run('sh', ['-c', mapped], { env: { PATH: process.env.PATH ?? '' }, cwd: '/' }),
    ).toMatchObject({ code: 0 });
  });

  it('keeps writing security events to a file rotated with copytruncate (docs/deployment.md)', async () => {
    const gateway = parse(readFileSync('deploy/gateway.yaml', 'utf8')) as {
      log: { securityEventsFile: string };
    };
    const file = nativePath(stack.compose, stack.places, 'auth', gateway.log.securityEventsFile);
    expect(readFileSync(file, 'utf8')).toContain('"security_event":"client_registered"');
    // logrotate's copytruncate: copy, then truncate in place.
    copyFileSync(file, `${file}.1`);
    truncateSync(file, 0);
    const metadata = (await (
      await stack.fetch(`${stack.authOrigin}/.well-known/oauth-authorization-server`)
    ).json()) as { registration_endpoint: string };
    const registered = await stack.fetch(metadata.registration_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'after the rotation',
        redirect_uris: ['http://127.0.0.1:33418/callback'],
        token_endpoint_auth_method: 'none',
      }),
    });
    expect(registered.status).toBe(201);
    // Appended at the new end of the truncated file: no hole of NUL bytes before it.
    const written = await eventually(async () => readFileSync(file, 'utf8') !== '', 5_000);
    expect(written).toBe(true);
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith('{')).toBe(true);
    expect(text).not.toContain('\0');
    expect(
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Json),
    ).toEqual(
      expect.arrayContaining([expect.objectContaining({ security_event: 'client_registered' })]),
    );
  });

  it("reopens Traefik's access log on USR1 after it was moved aside (docs/deployment.md)", async () => {
    const log = nativePath(stack.compose, stack.places, 'traefik', '/var/log/traefik/access.log');
    expect(readFileSync(log, 'utf8')).toContain('/.well-known/oauth-protected-resource');
    renameSync(log, `${log}.1`);
    process.kill(observed.listeners['traefik:443']!.pid, 'SIGUSR1');
    const reopened = await eventually(
      async () => {
        const response = await stack.fetch(
          `${stack.mcpOrigin}/.well-known/oauth-protected-resource/mcp`,
        );
        await response.body?.cancel();
        return (
          existsSync(log) && readFileSync(log, 'utf8').includes('oauth-protected-resource/mcp')
        );
      },
      10_000,
      200,
    );
    expect(reopened).toBe(true);
  });
});
