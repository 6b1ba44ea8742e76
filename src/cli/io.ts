/** What a CLI command writes to; tests pass buffers. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Exit codes shared by every command: 0 done, 1 failed or found a problem, 2 usage error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
