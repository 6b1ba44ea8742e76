/**
 * `mcp-gateway tunnel …` (src/tunnel/): the gateway side's state directory, without WireGuard
 * running (tests/tunnel/tunnel.test.ts runs the same commands against real interfaces). A
 * stand-in `wg` script records what the CLI would apply to a running interface.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { runTunnelCommand, type TunnelOptions } from '../../src/tunnel/command.js';
import { generateKeyPair, isKeyText, publicKeyOf } from '../../src/tunnel/keys.js';
import { describeWithBinary } from '../helpers/binaries.js';

interface CliRun {
  code: number;
  out: string;
  err: string;
}

let root: string;
let dir: string;
let counter = 0;
/** Every private key the tests know of, and every line the CLI printed. */
const privateKeys: string[] = [];
const printed: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mcpgw-tunnel-cli-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));
beforeEach(() => {
  counter += 1;
  dir = path.join(root, `state-${counter}`);
});
afterEach(async () => {
  // Whatever gateway key the test left, for the check at the end.
  const key = await readFile(path.join(dir, 'hub.key'), 'utf8').catch(() => '');
  if (key.trim() !== '') privateKeys.push(key.trim());
});

/** A wg stand-in that is never installed: the CLI must still work, and say so. */
const NO_WG = ['/nonexistent/wg'];

async function cli(argv: string[], options: Partial<TunnelOptions> = {}): Promise<CliRun> {
  const io = { out: '', err: '' };
  const code = await runTunnelCommand(
    argv,
    { stdout: (t) => void (io.out += t), stderr: (t) => void (io.err += t) },
    { dir, wg: NO_WG, now: () => new Date('2026-01-02T03:04:05Z'), ...options },
  );
  printed.push(io.out, io.err);
  return { code, ...io };
}

function siteKey(): string {
  const pair = generateKeyPair();
  privateKeys.push(pair.privateKey);
  return pair.publicKey;
}

async function hubKey(): Promise<string> {
  const key = (await readFile(path.join(dir, 'hub.key'), 'utf8')).trim();
  privateKeys.push(key);
  return key;
}

async function registry(): Promise<{
  hubPublicKey: string;
  nextHost: number;
  sites: { name: string; address: string; publicKey: string }[];
}> {
  return JSON.parse(await readFile(path.join(dir, 'sites.json'), 'utf8'));
}

const first = (key: string, extra: string[] = []) => [
  'add-site',
  'office',
  '--public-key',
  key,
  '--endpoint',
  'gw.example.com',
  ...extra,
];

describe('WireGuard keys from node:crypto', () => {
  it('are base64 of 32 bytes, distinct, and derive their public half', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    for (const key of [a.privateKey, a.publicKey, b.privateKey, b.publicKey]) {
      expect(isKeyText(key)).toBe(true);
      expect(Buffer.from(key, 'base64')).toHaveLength(32);
    }
    expect(a.privateKey).not.toBe(b.privateKey);
    expect(publicKeyOf(a.privateKey)).toBe(a.publicKey);
    expect(isKeyText('A'.repeat(43) + '=')).toBe(false); // all zero
    expect(isKeyText('short=')).toBe(false);
  });
});

describeWithBinary('wg', 'WireGuard keys against wireguard-tools', () => {
  it('give the public key `wg pubkey` computes', () => {
    for (let i = 0; i < 5; i += 1) {
      const pair = generateKeyPair();
      const fromWg = execFileSync('wg', ['pubkey'], { input: `${pair.privateKey}\n` });
      expect(fromWg.toString().trim()).toBe(pair.publicKey);
    }
  });

  it('site-init makes the site key in a 0600 file and prints only its public half', async () => {
    const state = path.join(root, 'site-init');
    const script = path.resolve('site/wireguard/mcp-tunnel.sh');
    const env = { ...process.env, TUNNEL_STATE: state };
    const once = execFileSync('sh', [script, 'site-init'], { env, stdio: 'pipe' })
      .toString()
      .trim();
    const privateKey = (await readFile(path.join(state, 'private.key'), 'utf8')).trim();
    privateKeys.push(privateKey);
    expect((await stat(path.join(state, 'private.key'))).mode & 0o777).toBe(0o600);
    expect(once).toBe(publicKeyOf(privateKey));
    const again = execFileSync('sh', [script, 'site-init'], { env, stdio: 'pipe' });
    expect(again.toString().trim()).toBe(once);
    const rotated = execFileSync('sh', [script, 'site-init', '--rotate'], { env, stdio: 'pipe' });
    const newKey = (await readFile(path.join(state, 'private.key'), 'utf8')).trim();
    privateKeys.push(newKey);
    expect(rotated.toString().trim()).toBe(publicKeyOf(newKey));
    expect(newKey).not.toBe(privateKey);
  });
});

describe('mcp-gateway tunnel add-site', () => {
  it('without a public key tells how the site makes its key, and registers nothing', async () => {
    const run = await cli(['add-site', 'office']);
    expect(run.code).toBe(2);
    expect(run.err).toContain('docker compose run --rm wireguard site-init');
    expect(run.err).toContain('mcp-gateway tunnel add-site office --public-key');
    expect(run.out).toBe('');
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
  });

  it('needs --endpoint the first time', async () => {
    const run = await cli(['add-site', 'office', '--public-key', siteKey()]);
    expect(run.code).toBe(2);
    expect(run.err).toContain('the first add-site needs --endpoint');
    await expect(stat(path.join(dir, 'sites.json'))).rejects.toThrow(/ENOENT/);
  });

  it("writes the gateway's peer with the site's public key only, and prints the site configuration", async () => {
    const key = siteKey();
    const run = await cli(first(key));
    expect(run.code).toBe(0);
    const state = await registry();
    const hub = await hubKey();
    expect(publicKeyOf(hub)).toBe(state.hubPublicKey);

    // stdout is the site's state/tunnel.conf: its address, the gateway's key and endpoint.
    expect(run.out).toContain('[Interface]\nAddress = 10.77.0.2/32\n');
    expect(run.out).toContain(`PublicKey = ${state.hubPublicKey}\n`);
    expect(run.out).toContain('Endpoint = gw.example.com:51820\n');
    expect(run.out).toContain('AllowedIPs = 10.77.0.1/32\n');
    expect(run.out).toContain('PersistentKeepalive = 25\n');
    expect(run.out).not.toMatch(/^PrivateKey/m);
    expect(run.err).toContain('site office registered at 10.77.0.2');
    expect(run.err).toContain('not applied here (/nonexistent/wg is not installed here)');

    // The gateway side: wg setconf format, the site's /32 as its only AllowedIPs.
    const conf = await readFile(path.join(dir, 'wg0.conf'), 'utf8');
    expect(conf).toContain(`[Interface]\nPrivateKey = ${hub}\nListenPort = 51820\n`);
    expect(conf).toContain(`[Peer]\nPublicKey = ${key}\nAllowedIPs = 10.77.0.2/32\n`);
    expect(conf).not.toMatch(/^(Address|PostUp|DNS)/m);
    expect(await readFile(path.join(dir, 'hub.env'), 'utf8')).toContain(
      'TUNNEL_INTERFACE=wg0\nTUNNEL_ADDRESS=10.77.0.1/24\n',
    );
    for (const file of ['wg0.conf', 'hub.key', 'sites.json', 'hub.env']) {
      expect((await stat(path.join(dir, file))).mode & 0o777).toBe(0o600);
    }
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('gives each site the next address, never one a removed site had', async () => {
    expect((await cli(first(siteKey()))).code).toBe(0);
    expect((await cli(['add-site', 'lab', '--public-key', siteKey()])).out).toContain(
      'Address = 10.77.0.3/32',
    );
    expect((await cli(['remove-site', 'office'])).code).toBe(0);
    expect((await cli(['add-site', 'branch', '--public-key', siteKey()])).out).toContain(
      'Address = 10.77.0.4/32',
    );
    const state = await registry();
    expect(state.sites.map((s) => [s.name, s.address])).toEqual([
      ['lab', '10.77.0.3'],
      ['branch', '10.77.0.4'],
    ]);
  });

  it('takes the subnet, listen port and interface the first time, and refuses to change them later', async () => {
    const run = await cli(
      first(siteKey(), [
        '--subnet',
        '192.168.77.0/24',
        '--listen-port',
        '41820',
        '--interface',
        'wgsites',
      ]),
    );
    expect(run.code).toBe(0);
    expect(run.out).toContain('Address = 192.168.77.2/32');
    expect(run.out).toContain('AllowedIPs = 192.168.77.1/32');
    expect(run.out).toContain('Endpoint = gw.example.com:41820');
    expect(await readFile(path.join(dir, 'wg0.conf'), 'utf8')).toContain('ListenPort = 41820');
    for (const [option, value] of [
      ['--subnet', '10.77.0.0/24'],
      ['--endpoint', 'other.example.com'],
      ['--interface', 'wg0'],
      ['--listen-port', '51820'],
    ]) {
      const again = await cli(['add-site', 'two', '--public-key', siteKey(), option!, value!]);
      expect(again.code).toBe(2);
      expect(again.err).toContain(`${option} differs from the existing tunnel state`);
    }
    // The same values again are fine.
    const same = await cli([
      'add-site',
      'two',
      '--public-key',
      siteKey(),
      '--subnet',
      '192.168.77.0/24',
    ]);
    expect(same.code).toBe(0);
  });

  it.each([
    ['10.77.0.0/16', 'must be an IPv4 /24'],
    ['10.77.0.5/24', 'must be an IPv4 /24'],
    ['8.8.8.0/24', 'not private address space'],
  ])('refuses the subnet %s', async (subnet, message) => {
    const run = await cli(first(siteKey(), ['--subnet', subnet]));
    expect(run.code).toBe(2);
    expect(run.err).toContain(message);
  });

  it.each(['Office', '-office', 'office-', 'off_ice', 'off.ice', 'a'.repeat(64), ''])(
    'refuses the site name %j',
    async (name) => {
      const run = await cli(first(siteKey()).map((arg) => (arg === 'office' ? name : arg)));
      expect(run.code).toBe(2);
      // ("-office" is taken for an option by the argument parser, and refused as one.)
      expect(run.err).toMatch(/not a valid site name|a site NAME is required|Unknown option/);
      await expect(stat(path.join(dir, 'sites.json'))).rejects.toThrow(/ENOENT/);
    },
  );

  it.each(['a', 'office-2', 'x'.repeat(63)])('accepts the site name %j', async (name) => {
    const run = await cli(first(siteKey()).map((arg) => (arg === 'office' ? name : arg)));
    expect(run.code).toBe(0);
    expect((await registry()).sites.map((s) => s.name)).toEqual([name]);
  });

  it('refuses a duplicate name, a key already in use, the gateway key and a malformed key', async () => {
    const key = siteKey();
    expect((await cli(first(key))).code).toBe(0);
    const duplicateName = await cli(['add-site', 'office', '--public-key', siteKey()]);
    expect(duplicateName).toMatchObject({ code: 1 });
    expect(duplicateName.err).toContain('a site named office exists already');
    const duplicateKey = await cli(['add-site', 'other', '--public-key', key]);
    expect(duplicateKey).toMatchObject({ code: 1 });
    expect(duplicateKey.err).toContain('belongs to site office already');
    const hubPublic = (await registry()).hubPublicKey;
    const gatewayKey = await cli(['add-site', 'other', '--public-key', hubPublic]);
    expect(gatewayKey).toMatchObject({ code: 2 });
    expect(gatewayKey.err).toContain("the gateway's own key");
    for (const bad of ['not-a-key', `${key.slice(0, -2)}=`, `${key}x`]) {
      const malformed = await cli(['add-site', 'other', '--public-key', bad]);
      expect(malformed).toMatchObject({ code: 2 });
      expect(malformed.err).toContain('not a WireGuard public key');
    }
    expect((await registry()).sites).toHaveLength(1);
  });

  it('runs concurrent add-site commands one after the other (lock): distinct addresses, none lost', async () => {
    expect((await cli(first(siteKey()))).code).toBe(0);
    const runs = await Promise.all(
      ['a1', 'a2', 'a3', 'a4', 'a5'].map((name) =>
        cli(['add-site', name, '--public-key', siteKey()]),
      ),
    );
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0, 0]);
    const addresses = (await registry()).sites.map((s) => s.address);
    expect(new Set(addresses).size).toBe(6);
    const conf = await readFile(path.join(dir, 'wg0.conf'), 'utf8');
    expect(conf.match(/\[Peer\]/g)).toHaveLength(6);
  });

  it('says when the subnet has no address left', async () => {
    expect((await cli(first(siteKey()))).code).toBe(0);
    const state = JSON.parse(await readFile(path.join(dir, 'sites.json'), 'utf8'));
    state.nextHost = 255;
    await writeFile(path.join(dir, 'sites.json'), JSON.stringify(state));
    const run = await cli(['add-site', 'full', '--public-key', siteKey()]);
    expect(run.code).toBe(1);
    expect(run.err).toContain('no tunnel address left in 10.77.0.0/24');
  });
});

describe('mcp-gateway tunnel list, show-site, remove-site, rotate-site, rotate-hub', () => {
  it('lists the sites as a table and as JSON', async () => {
    const empty = await cli(['list']);
    expect(empty).toMatchObject({ code: 0, out: '' });
    expect(empty.err).toContain('no sites');
    const key = siteKey();
    await cli(first(key));
    const table = await cli(['list']);
    expect(table.code).toBe(0);
    expect(table.out.split('\n')[0]).toMatch(/^NAME\s+ADDRESS\s+PUBLIC KEY\s+ADDED$/);
    expect(table.out).toMatch(
      new RegExp(`^office\\s+10\\.77\\.0\\.2\\s+${escape(key)}\\s+2026-01-02`, 'm'),
    );
    const json = JSON.parse((await cli(['list', '--json'])).out);
    expect(json).toMatchObject({
      subnet: '10.77.0.0/24',
      gatewayAddress: '10.77.0.1',
      endpoint: 'gw.example.com:51820',
      sites: [{ name: 'office', address: '10.77.0.2', publicKey: key }],
    });
  });

  it('prints a site configuration again', async () => {
    const added = await cli(first(siteKey()));
    const shown = await cli(['show-site', 'office']);
    expect(shown).toMatchObject({ code: 0, out: added.out });
    expect(await cli(['show-site', 'nobody'])).toMatchObject({ code: 1 });
  });

  it('removes a site: its peer leaves wg0.conf, and a second removal fails', async () => {
    const key = siteKey();
    await cli(first(key));
    await cli(['add-site', 'lab', '--public-key', siteKey()]);
    const run = await cli(['remove-site', 'office']);
    expect(run.code).toBe(0);
    expect(run.err).toContain('site office removed (10.77.0.2, never handed out again)');
    const conf = await readFile(path.join(dir, 'wg0.conf'), 'utf8');
    expect(conf).not.toContain(key);
    expect(conf).toContain('AllowedIPs = 10.77.0.3/32');
    expect((await registry()).sites.map((s) => s.name)).toEqual(['lab']);
    expect(await cli(['remove-site', 'office'])).toMatchObject({ code: 1 });
    expect(await cli(['remove-site', 'Bad_Name'])).toMatchObject({ code: 2 });
  });

  it('rotates a site key in place: same address, only the new key in wg0.conf', async () => {
    const oldKey = siteKey();
    await cli(first(oldKey));
    const newKey = siteKey();
    const run = await cli(['rotate-site', 'office', '--public-key', newKey]);
    expect(run.code).toBe(0);
    const conf = await readFile(path.join(dir, 'wg0.conf'), 'utf8');
    expect(conf).toContain(`PublicKey = ${newKey}\nAllowedIPs = 10.77.0.2/32`);
    expect(conf).not.toContain(oldKey);
    expect(await cli(['rotate-site', 'office', '--public-key', newKey])).toMatchObject({ code: 1 });
    expect(await cli(['rotate-site', 'office'])).toMatchObject({ code: 2 });
  });

  it('rotates the gateway key: new hub.key and wg0.conf, every site configuration shows the new key', async () => {
    await cli(first(siteKey()));
    const before = await hubKey();
    const oldPublic = (await registry()).hubPublicKey;
    const run = await cli(['rotate-hub']);
    expect(run.code).toBe(0);
    expect(run.err).toContain('Every site is cut until it gets its configuration again');
    const after = await hubKey();
    expect(after).not.toBe(before);
    expect(await readFile(path.join(dir, 'wg0.conf'), 'utf8')).toContain(`PrivateKey = ${after}`);
    const shown = await cli(['show-site', 'office']);
    expect(shown.out).toContain(`PublicKey = ${publicKeyOf(after)}`);
    expect(shown.out).not.toContain(oldPublic);
  });

  it('refuses unknown commands and options, and options that do not apply', async () => {
    expect(await cli([])).toMatchObject({ code: 2 });
    expect(await cli(['frobnicate'])).toMatchObject({ code: 2 });
    expect(await cli(['list', '--frob'])).toMatchObject({ code: 2 });
    expect(await cli(['list', 'extra'])).toMatchObject({ code: 2 });
    expect(await cli(['remove-site', 'office', '--public-key', siteKey()])).toMatchObject({
      code: 2,
    });
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('mcp-gateway tunnel add-site NAME --public-key KEY');
  });

  it('fails clearly on a registry that is not one', async () => {
    await cli(first(siteKey()));
    await writeFile(path.join(dir, 'sites.json'), '{"version": 2}');
    const run = await cli(['list']);
    expect(run.code).toBe(1);
    expect(run.err).toContain('is not a tunnel registry');
  });
});

describe('applying a change to the running interface (wg set)', () => {
  let fakeWg: string;
  let log: string;
  let shownKey: string;

  beforeAll(async () => {
    // Answers `show IFACE public-key` with the key in $KEY_FILE (exit 1 when that file is
    // missing: no such interface), records every call.
    fakeWg = path.join(root, 'fake-wg.sh');
    log = path.join(root, 'fake-wg.log');
    shownKey = path.join(root, 'fake-wg.key');
    await writeFile(
      fakeWg,
      `#!/bin/sh\necho "$*" >> '${log}'\nif [ "$1" = show ]; then cat '${shownKey}' 2>/dev/null || exit 1; fi\n`,
    );
    await chmod(fakeWg, 0o755);
  });

  const calls = async () =>
    (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');

  beforeEach(async () => {
    await rm(log, { force: true });
    await rm(shownKey, { force: true });
  });

  it('leaves a missing interface alone and says the container will reload', async () => {
    const run = await cli(first(siteKey()), { wg: [fakeWg] });
    expect(run.err).toContain('interface wg0 is not up here');
    expect(run.err).toContain(`wg syncconf wg0 ${path.join(dir, 'wg0.conf')}`);
    expect(await calls()).toEqual(['show wg0 public-key']);
  });

  it('leaves an interface with another key alone', async () => {
    await writeFile(shownKey, `${siteKey()}\n`);
    const run = await cli(first(siteKey()), { wg: [fakeWg] });
    expect(run.err).toContain('has another key than this tunnel state (left alone)');
    expect(await calls()).toEqual(['show wg0 public-key']);
  });

  it('adds, replaces and removes peers on its own interface at once', async () => {
    const key = siteKey();
    await cli(first(key));
    await writeFile(shownKey, `${(await registry()).hubPublicKey}\n`);
    const key2 = siteKey();
    const added = await cli(['add-site', 'lab', '--public-key', key2], { wg: [fakeWg] });
    expect(added.err).toContain('applied to wg0 now');
    const key3 = siteKey();
    await cli(['rotate-site', 'lab', '--public-key', key3], { wg: [fakeWg] });
    const removed = await cli(['remove-site', 'office'], { wg: [fakeWg] });
    expect(removed.err).toContain('applied to wg0 now');
    await cli(['rotate-hub'], { wg: [fakeWg] });
    expect(await calls()).toEqual([
      'show wg0 public-key',
      `set wg0 peer ${key2} allowed-ips 10.77.0.3/32`,
      'show wg0 public-key',
      `set wg0 peer ${key2} remove`,
      `set wg0 peer ${key3} allowed-ips 10.77.0.3/32`,
      'show wg0 public-key',
      `set wg0 peer ${key} remove`,
      'show wg0 public-key',
      `set wg0 private-key ${path.resolve(dir, 'hub.key')}`,
    ]);
    // No private key on a command line: only the path of the file holding it.
    const hub = await hubKey();
    expect((await calls()).join('\n')).not.toContain(hub);
  });
});

describe('private keys', () => {
  it('never appear in anything the CLI printed', () => {
    expect(privateKeys.length).toBeGreaterThan(20);
    const all = printed.join('\n');
    expect(all).toContain('PublicKey = '); // the outputs are really there
    for (const key of privateKeys) expect(all).not.toContain(key);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
