/** Running the command-line tools in a test: buffered output, and their tab-separated listings. */
import type { ServersCommandIo } from '../../src/cli/servers-command.js';

/** An io that keeps what a command writes (`out`, `err`) and reads `stdin` from a string. */
export function captureIo(stdin = ''): ServersCommandIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout: (text: string) => void (io.out += text),
    stderr: (text: string) => void (io.err += text),
    stdin: () => Promise.resolve(stdin),
  };
  return io;
}

/** A listing's rows as objects keyed by its header. */
export function listingRows(out: string): Record<string, string>[] {
  const [header, ...lines] = out.trimEnd().split('\n');
  const keys = header!.split('\t');
  return lines.map((line) => Object.fromEntries(line.split('\t').map((v, i) => [keys[i], v])));
}
