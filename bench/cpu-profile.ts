/**
 * Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and lists where the time went: the
 * `/verify` decision path (`handle` in src/forward-auth/decision-point.ts and everything it
 * calls: the decision, src/forward-auth/decide.ts, and the answer's write), and self time per
 * function for the whole process.
 *
 * V8 samples on a wall-clock timer: a thread that waits for a CPU inside a system call (the
 * socket write, on a machine where the benchmark client competes for the same cores) is charged
 * to that call. The socket write is therefore shown apart from the rest of the decision path.
 *
 * Usage on its own: `npx tsx bench/cpu-profile.ts FILE.cpuprofile [REQUESTS]`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ROOT } from './processes.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  location: string;
  /** Milliseconds. */
  ms: number;
}

export interface ProfileSummary {
  /** Milliseconds of samples. */
  totalMs: number;
  idleMs: number;
  gcMs: number;
  /** `decide` and its callees. */
  decideMs: number;
  /** Of which in the socket write (`writeLatin1String`). */
  decideWriteMs: number;
  /** Functions called (directly or not) by `decide`, time including their callees, without the socket write. */
  decisionPath: FunctionTime[];
  /** Self time over the whole process. */
  self: FunctionTime[];
}

const PSEUDO = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);
const SOCKET_WRITE = 'writeLatin1String';

const isDecide = (frame: CallFrame) =>
  frame.functionName === 'handle' && frame.url.endsWith('/src/forward-auth/decision-point.ts');

const keyOf = (frame: CallFrame) =>
  `${frame.functionName || '(anonymous)'}\u0000${frame.url}:${frame.lineNumber}`;

function shortLocation(frame: CallFrame): string {
  if (!frame.url) return '(native)';
  let file = frame.url.startsWith('file://') ? fileURLToPath(frame.url) : frame.url;
  if (file.startsWith(ROOT)) file = file.slice(ROOT.length);
  file = file.replace(/^.*node_modules\//, 'node_modules/');
  // Sources run through tsx: line numbers are those of the transpiled module.
  return file.endsWith('.ts') ? file : `${file}:${frame.lineNumber + 1}`;
}

function top(
  times: Map<string, { frame: CallFrame; us: number }>,
  count: number,
  keep: (frame: CallFrame) => boolean = () => true,
): FunctionTime[] {
  return [...times.values()]
    .filter(({ frame }) => keep(frame))
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map(({ frame, us }) => ({
      name: frame.functionName || '(anonymous)',
      location: shortLocation(frame),
      ms: us / 1000,
    }));
}

export async function summarizeProfile(file: string, count = 25): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }

  // Microseconds per sampled node: the delta that follows a sample is attributed to it.
  const sampled = new Map<number, number>();
  profile.samples.forEach((id, index) => {
    sampled.set(id, (sampled.get(id) ?? 0) + (profile.timeDeltas[index + 1] ?? 0));
  });

  const self = new Map<string, { frame: CallFrame; us: number }>();
  const decisionPath = new Map<string, { frame: CallFrame; us: number }>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  let decide = 0;
  let decideWrite = 0;
  for (const [id, us] of sampled) {
    const leaf = byId.get(id)!.callFrame;
    total += us;
    if (leaf.functionName === '(idle)') idle += us;
    if (leaf.functionName === '(garbage collector)') gc += us;
    const selfKey = keyOf(leaf);
    const entry = self.get(selfKey) ?? { frame: leaf, us: 0 };
    entry.us += us;
    self.set(selfKey, entry);

    // The stack from the leaf up to the outermost `decide`.
    const stack: CallFrame[] = [];
    let decideDepth = -1;
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
      const frame = byId.get(cursor)!.callFrame;
      stack.push(frame);
      if (isDecide(frame)) decideDepth = stack.length - 1;
    }
    if (decideDepth < 0) continue;
    decide += us;
    if (leaf.functionName === SOCKET_WRITE) {
      decideWrite += us;
      continue;
    }
    const seen = new Set<string>();
    for (const frame of stack.slice(0, decideDepth)) {
      const frameKey = keyOf(frame);
      if (seen.has(frameKey)) continue;
      seen.add(frameKey);
      const inclusive = decisionPath.get(frameKey) ?? { frame, us: 0 };
      inclusive.us += us;
      decisionPath.set(frameKey, inclusive);
    }
  }

  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    gcMs: gc / 1000,
    decideMs: decide / 1000,
    decideWriteMs: decideWrite / 1000,
    decisionPath: top(decisionPath, count),
    self: top(self, count, (frame) => !PSEUDO.has(frame.functionName)),
  };
}

/** `requests`: how many requests the profiled process answered, for per-request figures. */
export function formatSummary(summary: ProfileSummary, requests?: number): string {
  const perRequest = (ms: number) =>
    requests ? `${((ms * 1000) / requests).toFixed(2).padStart(6)} µs/req` : '';
  const share = (ms: number, of: number) => `${((ms / of) * 100).toFixed(1).padStart(5)}%`;
  const rest = summary.decideMs - summary.decideWriteMs;
  return [
    `${(summary.totalMs / 1000).toFixed(1)} s sampled (start-up and warm-up included): idle ${share(summary.idleMs, summary.totalMs)}, GC ${share(summary.gcMs, summary.totalMs)}`,
    '',
    `decide (the /verify handler: \`handle\` in src/forward-auth/decision-point.ts): ${share(summary.decideMs, summary.totalMs)} of all samples ${perRequest(summary.decideMs)}`,
    `  the socket write of the answer (${SOCKET_WRITE}: system call, and waiting for a CPU): ${share(summary.decideWriteMs, summary.decideMs)} of decide ${perRequest(summary.decideWriteMs)}`,
    `  everything else: ${share(rest, summary.decideMs)} of decide ${perRequest(rest)}; by function, time including callees, share of that rest:`,
    ...summary.decisionPath.map(
      (row) => `    ${share(row.ms, rest)} ${perRequest(row.ms)}  ${row.name}  ${row.location}`,
    ),
    '',
    'Self time, whole process (share of all samples):',
    ...summary.self.map(
      (row) => `  ${share(row.ms, summary.totalMs)}  ${row.name}  ${row.location}`,
    ),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, requests] = process.argv.slice(2);
  if (!file) {
    console.error('usage: tsx bench/cpu-profile.ts FILE.cpuprofile [REQUESTS]');
    process.exit(2);
  }
  const summary = await summarizeProfile(file, 30);
  console.log(formatSummary(summary, requests ? Number(requests) : undefined));
}
