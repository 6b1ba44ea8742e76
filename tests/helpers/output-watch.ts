/**
 * What a real client prints (its stderr, where MCP clients tell the person to open a URL),
 * collected as it comes, so a test can wait for a line while the client runs and read
 * everything afterwards.
 */
import type { Readable } from 'node:stream';
import { eventually } from './poll.js';

export class OutputWatch {
  private collected = '';
  private ended = false;

  constructor(stream: Readable | null | undefined) {
    stream?.on('data', (chunk: Buffer | string) => {
      this.collected += chunk.toString();
    });
    stream?.on('close', () => {
      this.ended = true;
    });
  }

  /** Everything printed so far. */
  get text(): string {
    return this.collected;
  }

  /** Where the text printed so far ends: pass to {@link waitFor} to see only what comes next. */
  mark(): number {
    return this.collected.length;
  }

  /**
   * Waits (at most `timeoutMs`) until `pattern` matches what was printed after `from`; throws
   * when the time is up or the stream closed without it.
   */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    let match: RegExpExecArray | null = null;
    await eventually(async () => {
      const ended = this.ended;
      match = pattern.exec(this.collected.slice(from));
      return match !== null || ended;
    }, timeoutMs);
    if (match === null) {
      const why = this.ended ? 'before the output closed' : `within ${timeoutMs} ms`;
      throw new Error(`no ${pattern} ${why}; printed:\n${this.collected.slice(from).slice(-4000)}`);
    }
    return match;
  }
}
