import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, it } from '@jest/globals';

/**
 * Debian keeps daemons such as nginx and tcpdump in sbin directories, which a non-root user's
 * PATH often lacks; they are searched after PATH.
 */
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** The Debian package that provides each system binary the test suite starts. */
const DEBIAN_PACKAGES: Record<string, string> = {
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  caddy: 'caddy',
  nginx: 'nginx',
  crowdsec: 'crowdsec',
  cscli: 'crowdsec',
  chromium: 'chromium',
  wg: 'wireguard-tools',
  'wireguard-go': 'wireguard-go',
  tcpdump: 'tcpdump',
  ip: 'iproute2',
};

/** Everything the suite uses, in one line (the crowdsec note is in the tooling notes). */
const FULL_INSTALL =
  'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ' +
  'redis-server caddy nginx crowdsec chromium wireguard-tools wireguard-go tcpdump iproute2';

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The absolute path of an executable, like `which`: a name containing `/` is checked as given,
 * otherwise each PATH entry is searched, then the sbin directories.
 */
export function findBinary(name: string): string | undefined {
  if (name.includes('/')) return isExecutableFile(name) ? name : undefined;
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  if (PIP_PROGRAMS.has(name)) dirs.push(...pythonScriptsDir());
  if (GO_PROGRAMS.has(name)) dirs.push(...goBinDir());
  for (const dir of [...dirs, ...SBIN_DIRS]) {
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** Programs installed from PyPI rather than Debian (pinned in scripts/test-requirements.txt). */
const PIP_PROGRAMS = new Set(['schemathesis', 'traefik']);

let scriptsDir: string[] | undefined;

/**
 * Where pip puts programs: on PATH through a pyenv shim only after `pyenv rehash`, so the
 * Python scripts folder is searched too.
 */
function pythonScriptsDir(): string[] {
  if (scriptsDir) return scriptsDir;
  try {
    const dir = execFileSync(
      'python3',
      ['-c', 'import sysconfig; print(sysconfig.get_path("scripts"))'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    ).trim();
    scriptsDir = dir ? [dir] : [];
  } catch {
    scriptsDir = [];
  }
  return scriptsDir;
}

/** Programs built with `go install` (pinned in scripts/test-go-tools.txt). */
const GO_PROGRAMS = new Set(['pebble', 'pebble-challtestsrv']);
const GO_TOOLS_FILE = 'scripts/test-go-tools.txt';

let goBin: string[] | undefined;

/**
 * Where `go install` puts programs (`go env GOBIN`, else the first GOPATH entry's `bin`), which
 * is rarely on PATH; searched too.
 */
function goBinDir(): string[] {
  if (goBin) return goBin;
  try {
    const [gobin = '', gopath = ''] = execFileSync('go', ['env', 'GOBIN', 'GOPATH'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).split('\n');
    const first = gopath.split(delimiter)[0] ?? '';
    goBin = gobin ? [gobin] : first ? [join(first, 'bin')] : [];
  } catch {
    goBin = [];
  }
  return goBin;
}

/** The pinned `go install` argument for a program, from {@link GO_TOOLS_FILE}. */
function goPackage(binary: string): string | undefined {
  try {
    return readFileSync(GO_TOOLS_FILE, 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .find((line) => !line.startsWith('#') && line.includes(`/${binary}@`));
  } catch {
    return undefined;
  }
}

function missingMessage(binary: string): string {
  // Real MCP clients (mcp-remote, the MCP Inspector, Codex) are pinned dev dependencies.
  if (binary.startsWith('node_modules/.bin/')) {
    return `${binary} was not found: it is a pinned dev dependency (package.json). Install it: npm install.`;
  }
  if (GO_PROGRAMS.has(binary)) {
    const where = goBinDir()[0] ?? '$(go env GOPATH)/bin';
    const pkg = goPackage(binary) ?? `the package pinned in ${GO_TOOLS_FILE}`;
    return `${binary} was not found on PATH or in ${where}. Install it (Go): go install ${pkg} (scripts/ensure-test-deps.sh does, from ${GO_TOOLS_FILE}).`;
  }
  if (PIP_PROGRAMS.has(binary)) {
    return `${binary} was not found on PATH. Install it: python3 -m pip install -r scripts/test-requirements.txt.`;
  }
  const pkg = DEBIAN_PACKAGES[binary];
  const single = pkg
    ? `apt-get install -y --no-install-recommends ${pkg}`
    : `install the package that provides it`;
  return (
    `${binary} was not found on PATH or in ${SBIN_DIRS.join(', ')}. ` +
    `Install it (Debian): ${single}. All system tools the tests use: ${FULL_INSTALL}.`
  );
}

/**
 * A describe block that needs a real system binary. Found: runs normally. Missing: in CI
 * (`CI=true`) fails loudly, so a pipeline cannot go green by silently skipping the real-software
 * tests; on a developer machine, skips with a warning naming the package to install.
 */
export function describeWithBinary(binary: string, name: string, fn: () => void): void {
  if (findBinary(binary) !== undefined) {
    describe(name, fn);
    return;
  }
  const message = missingMessage(binary);
  if (process.env.CI === 'true') {
    describe(name, () => {
      it(`requires ${binary}`, () => {
        throw new Error(message);
      });
    });
    return;
  }
  console.warn(`Skipping "${name}": ${message}`);
  describe.skip(name, fn);
}
