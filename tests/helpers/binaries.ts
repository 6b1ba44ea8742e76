import { execFileSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
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

function missingMessage(binary: string): string {
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
