/**
 * A throwaway certificate authority for tests that need real HTTPS: a company's identity
 * provider, a reverse proxy, or the gateway itself behind TLS.
 *
 * Why a real CA and not `rejectUnauthorized: false`: the gateway must verify upstream TLS
 * (it trusts the system CAs plus the admin's `tls.caFiles`), so tests have to present a
 * certificate chain that really verifies, and a test that turns verification off would hide
 * exactly the bugs (wrong CA bundle, missing SAN) these tests exist to catch.
 *
 * Everything is made by the real `openssl` CLI (started with `execFile`, no shell) inside one
 * fresh `mkdtemp` directory: its own config file (the system `openssl.cnf` is never read) and
 * `RANDFILE` point there too, so nothing is written anywhere else. The CA is an EC P-256 key
 * with a self-signed certificate (`CA:TRUE`, `keyCertSign`); the server certificate it signs
 * is valid for `localhost` (or the DNS names given), `127.0.0.1` and `::1` (`serverAuth`) for
 * 2 days.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface TestCa {
  /** The temporary directory holding every file below; removed by `cleanup()`. */
  dir: string;
  /** The CA certificate (PEM file): what a client trusts, e.g. the gateway's `tls.caFiles`. */
  caFile: string;
  /** The server certificate (PEM file), signed by the CA. */
  certFile: string;
  /** The server certificate's private key (PEM file, PKCS#8). */
  keyFile: string;
  /** Contents of `certFile`: pass as `cert` to `https.createServer`. */
  cert: string;
  /** Contents of `keyFile`: pass as `key` to `https.createServer`. */
  key: string;
  /** Contents of `caFile`: pass as `ca` to a TLS client (undici `Agent({ connect: { ca } })`). */
  ca: string;
  /** Removes `dir`. Safe to call more than once. */
  cleanup(): Promise<void>;
}

/**
 * Debian's path, else whatever `openssl` is on PATH. (Not `findBinary` from ./binaries.ts: that
 * module imports `@jest/globals`, and this helper is also usable from plain scripts.)
 */
const OPENSSL = existsSync('/usr/bin/openssl') ? '/usr/bin/openssl' : 'openssl';
const VALID_DAYS = '2';
const OPENSSL_TIMEOUT_MS = 20_000;

/** A self-contained OpenSSL config: the extension sections used below, nothing else. */
const opensslConfig = (dnsNames: string[]) => `# Written by tests/helpers/test-ca.ts
[req]
distinguished_name = req_dn
prompt = no

[req_dn]

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${dnsNames.map((name) => `DNS:${name}, `).join('')}IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;

/** A positive 128-bit serial number, as hex (the high bit cleared so it stays positive). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return `0x${bytes.toString('hex')}`;
}

/**
 * Creates a fresh CA and one server certificate signed by it (for `dnsNames`, default
 * `localhost`), in a new temporary directory.
 * Call `cleanup()` when done (e.g. in `afterAll`).
 */
export async function createTestCa(options: { dnsNames?: string[] } = {}): Promise<TestCa> {
  const dnsNames = options.dnsNames ?? ['localhost'];
  if (dnsNames.some((name) => !/^[a-z0-9.-]+$/i.test(name))) {
    throw new Error(`not DNS names: ${dnsNames.join(', ')}`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'mcp-gateway-ca-'));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  const file = (name: string): string => join(dir, name);
  const configFile = file('openssl.cnf');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    OPENSSL_CONF: configFile,
    RANDFILE: file('.rnd'),
    HOME: dir,
  };
  const run = async (args: string[]): Promise<void> => {
    try {
      await execFileAsync(OPENSSL, args, { cwd: dir, env, timeout: OPENSSL_TIMEOUT_MS });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`openssl ${args[0]} failed: ${(error as Error).message}\n${stderr}`);
    }
  };
  const newEcKey = (out: string): Promise<void> =>
    run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out]);

  try {
    await writeFile(configFile, opensslConfig(dnsNames), { mode: 0o600 });
    const caKeyFile = file('ca.key');
    const caFile = file('ca.pem');
    const keyFile = file('server.key');
    const csrFile = file('server.csr');
    const certFile = file('server.pem');

    await newEcKey(caKeyFile);
    await run([
      'req',
      '-config',
      configFile,
      '-x509',
      '-new',
      '-key',
      caKeyFile,
      '-sha256',
      '-days',
      VALID_DAYS,
      '-subj',
      '/O=MCP Gateway tests/CN=MCP Gateway Test CA',
      '-set_serial',
      randomSerial(),
      '-extensions',
      'ca_ext',
      '-out',
      caFile,
    ]);

    await newEcKey(keyFile);
    await run([
      'req',
      '-config',
      configFile,
      '-new',
      '-key',
      keyFile,
      '-subj',
      '/O=MCP Gateway tests/CN=localhost',
      '-out',
      csrFile,
    ]);
    await run([
      'x509',
      '-req',
      '-in',
      csrFile,
      '-CA',
      caFile,
      '-CAkey',
      caKeyFile,
      '-set_serial',
      randomSerial(),
      '-sha256',
      '-days',
      VALID_DAYS,
      '-extfile',
      configFile,
      '-extensions',
      'server_ext',
      '-out',
      certFile,
    ]);

    const [cert, key, ca] = await Promise.all([
      readFile(certFile, 'utf8'),
      readFile(keyFile, 'utf8'),
      readFile(caFile, 'utf8'),
    ]);
    return { dir, caFile, certFile, keyFile, cert, key, ca, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
