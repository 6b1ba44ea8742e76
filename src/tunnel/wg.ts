/**
 * Applying a registry change to the running interface at once, with `wg set` (wireguard-tools).
 * Only when the interface is reachable from here and carries the gateway's own public key: on a
 * host where it is not (wg not installed, the interface inside a container with userspace
 * WireGuard), the `wireguard` container's reload loop applies wg0.conf within its interval.
 * No private key is ever passed on a command line: `wg set … private-key` takes a file.
 */
import { execFile } from 'node:child_process';

const WG_TIMEOUT_MS = 5_000;

export type PeerChange =
  | { kind: 'add'; publicKey: string; address: string }
  | { kind: 'remove'; publicKey: string }
  | { kind: 'replace'; oldPublicKey: string; publicKey: string; address: string }
  | { kind: 'hub-key'; keyFile: string };

export type ApplyResult = { applied: true } | { applied: false; reason: string };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  missing: boolean;
}

function run(command: string[], args: string[]): Promise<Run> {
  const [file, ...prefix] = command;
  if (file === undefined) throw new Error('empty wg command');
  return new Promise((resolve) => {
    execFile(
      file,
      [...prefix, ...args],
      { timeout: WG_TIMEOUT_MS, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        const missing = (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';
        resolve({ code, stdout, stderr, missing });
      },
    );
  });
}

/**
 * Applies `change` to `iface` when it exists here with the public key `hubPublicKey` (the
 * key before the change, for `hub-key`). `wg` is the command to run, e.g. `['wg']` or
 * `['ip', 'netns', 'exec', 'NS', 'wg']`.
 */
export async function applyChange(
  wg: string[],
  iface: string,
  hubPublicKey: string,
  change: PeerChange,
): Promise<ApplyResult> {
  const shown = await run(wg, ['show', iface, 'public-key']);
  if (shown.missing) return { applied: false, reason: `${wg[0]} is not installed here` };
  if (shown.code !== 0) return { applied: false, reason: `interface ${iface} is not up here` };
  if (shown.stdout.trim() !== hubPublicKey) {
    return {
      applied: false,
      reason: `interface ${iface} here has another key than this tunnel state (left alone)`,
    };
  }
  const commands: string[][] = [];
  if (change.kind === 'add') {
    commands.push(['peer', change.publicKey, 'allowed-ips', `${change.address}/32`]);
  } else if (change.kind === 'remove') {
    commands.push(['peer', change.publicKey, 'remove']);
  } else if (change.kind === 'replace') {
    commands.push(['peer', change.oldPublicKey, 'remove']);
    commands.push(['peer', change.publicKey, 'allowed-ips', `${change.address}/32`]);
  } else {
    commands.push(['private-key', change.keyFile]);
  }
  for (const args of commands) {
    const result = await run(wg, ['set', iface, ...args]);
    if (result.code !== 0) {
      const detail = result.stderr.trim().split('\n')[0] ?? '';
      return { applied: false, reason: `wg set failed: ${detail || `exit code ${result.code}`}` };
    }
  }
  return { applied: true };
}
