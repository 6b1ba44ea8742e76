/**
 * The peer the benchmark compares `/verify` with: oauth2-proxy, pinned in
 * scripts/bench-go-tools.txt and built from the Go module proxy by
 * scripts/install-bench-tools.sh when the Go bin folder lacks that version. Its `/oauth2/auth`
 * is the forwardAuth endpoint in the gateway's position; with `--skip-jwt-bearer-tokens` it
 * validates the benchmark's RS256 access tokens as bearer tokens (signature against the
 * gateway's JWKS, issuer, audience, expiry) on every request: it keeps no cache of verified
 * tokens.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ManagedProcess, ROOT, type Track } from './processes.js';

const run = promisify(execFile);

const TOOLS_FILE = path.join(ROOT, 'scripts', 'bench-go-tools.txt');
const INSTALL_SCRIPT = path.join(ROOT, 'scripts', 'install-bench-tools.sh');
const MODULE = 'github.com/oauth2-proxy/oauth2-proxy/v7';

export interface Peer {
  binary: string;
  version: string;
}

/** The pinned version of oauth2-proxy, from scripts/bench-go-tools.txt. */
async function pinnedVersion(): Promise<string> {
  const lines = (await readFile(TOOLS_FILE, 'utf8')).split('\n');
  const line = lines.find((entry) => entry.startsWith(`${MODULE}@`));
  if (!line) throw new Error(`${TOOLS_FILE} has no ${MODULE}@VERSION line`);
  return line.slice(MODULE.length + 1).trim();
}

/** The Go bin folder `go install` writes to: GOBIN, else the first GOPATH entry's bin. */
async function goBinDir(): Promise<string> {
  const { stdout } = await run('go', ['env', 'GOBIN', 'GOPATH']).catch((error: unknown) => {
    throw new Error(
      `the benchmark's peer, oauth2-proxy, is built with Go (scripts/bench-go-tools.txt), and \`go env\` failed: ${String(error)}`,
    );
  });
  const [gobin, gopath] = stdout.split('\n');
  return gobin?.trim() || path.join((gopath ?? '').split(':')[0]!.trim(), 'bin');
}

/** The module version `go version -m` reports for a Go binary, or undefined. */
async function builtVersion(binary: string): Promise<string | undefined> {
  const { stdout } = await run('go', ['version', '-m', binary]).catch(() => ({ stdout: '' }));
  return new RegExp(`^\\s+mod\\s+${MODULE.replace(/\./g, '\\.')}\\s+(\\S+)`, 'm').exec(stdout)?.[1];
}

/**
 * The oauth2-proxy binary at the pinned version; runs scripts/install-bench-tools.sh (its
 * output shown) when it is missing or another version, and prints how long that took.
 */
export async function ensurePeer(): Promise<Peer> {
  const version = await pinnedVersion();
  const binary = path.join(await goBinDir(), 'oauth2-proxy');
  if ((await builtVersion(binary)) !== version) {
    console.log(`oauth2-proxy ${version} not in ${binary}: running ${INSTALL_SCRIPT}`);
    const start = performance.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn('sh', [INSTALL_SCRIPT], { cwd: ROOT, stdio: 'inherit' });
      child.once('error', reject);
      child.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`${INSTALL_SCRIPT} exited with ${code}`)),
      );
    });
    console.log(`  installed in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    const built = await builtVersion(binary);
    if (built !== version) throw new Error(`${binary} is ${built ?? 'missing'}, not ${version}`);
  }
  return { binary, version };
}

export interface PeerOptions {
  port: number;
  /** The gateway's issuer: oauth2-proxy reads its discovery document and JWKS at start. */
  issuer: string;
  /** The `aud` of the benchmark's tokens (the resource). */
  audience: string;
}

/**
 * The oauth2-proxy flags for the forwardAuth position:
 * - `--skip-jwt-bearer-tokens` with `--extra-jwt-issuers=ISSUER=AUDIENCE`: a request with a
 *   bearer JWT from the gateway is authenticated by the token alone;
 * - an OIDC provider is required to start. It is the running gateway (`--oidc-issuer-url`:
 *   oauth2-proxy fetches its discovery document at start), with the resource as client id, so
 *   the provider's own bearer verifier accepts the tokens first. With any other client id that
 *   verifier would check the RS256 signature, refuse the audience, and the extra issuer's
 *   verifier would check the signature again: two verifications per request. The client
 *   secret is never used (no login happens);
 * - `--set-xauthrequest`: identity headers on the 202, as the gateway sets on its 200;
 * - `--request-logging=false`: no log line per request (the gateway logs errors only).
 */
export function peerArgs(options: PeerOptions): string[] {
  return [
    `--http-address=127.0.0.1:${options.port}`,
    '--provider=oidc',
    `--oidc-issuer-url=${options.issuer}`,
    `--client-id=${options.audience}`,
    '--client-secret=bench-unused',
    `--redirect-url=http://127.0.0.1:${options.port}/oauth2/callback`,
    '--cookie-secret=bench-cookie-secret-32-bytes-xyz',
    '--cookie-secure=false',
    '--email-domain=*',
    '--skip-jwt-bearer-tokens',
    `--extra-jwt-issuers=${options.issuer}=${options.audience}`,
    '--set-xauthrequest',
    '--reverse-proxy',
    '--request-logging=false',
    '--upstream=static://202',
  ];
}

/** Starts oauth2-proxy and waits for its `/ping`. */
export async function startPeer(
  peer: Peer,
  options: PeerOptions,
  track: Track,
): Promise<ManagedProcess> {
  const proxy = new ManagedProcess('oauth2-proxy', peerArgs(options), peer.binary);
  track(proxy);
  await proxy.waitUntilAnswering(`http://127.0.0.1:${options.port}/ping`, 200);
  return proxy;
}
