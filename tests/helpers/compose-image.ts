/**
 * A compose service's image, rebuilt natively for tests/helpers/compose-native.ts: under a temp
 * root standing for the image's file system, its WORKDIR gets the build context's package.json
 * and lock file, `dist/` compiled by the context's `npm run build` (tsc, into that folder) and
 * the repository's node_modules (the same versions, dev dependencies included); the last
 * stage's RUN lines are replayed where they shape the file system (`mkdir -p`, `chmod`,
 * `ln -s`), `npm …` and `chown` are not, and any other command is refused, so that a new one is
 * looked at.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { imageStage } from './compose-model.js';
import { record, type Json } from './config-files.js';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve('.');

/** The context's `npm run build`: `tsc -p FILE`, run into `outDir`. */
async function buildDist(context: string, outDir: string): Promise<void> {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, context, 'package.json'), 'utf8')) as Json;
  const build = String(record(pkg.scripts).build ?? '');
  const project = /^tsc -p (\S+)$/.exec(build)?.[1];
  if (project === undefined) throw new Error(`${context}: build script "${build}" is not tsc -p`);
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const config = path.join(ROOT, context, project);
  await execFileAsync(process.execPath, [tsc, '-p', config, '--outDir', outDir], {
    timeout: 120_000,
  });
}

/** The last stage's RUN commands that shape the file system, replayed under `root`. */
async function replayRun(commands: string[], root: string, workdir: string): Promise<void> {
  const inRoot = (file: string) =>
    path.join(root, file.startsWith('/') ? file : `${workdir}/${file}`);
  for (const command of commands.flatMap((run) => run.split('&&').map((c) => c.trim()))) {
    const [name = '', ...args] = command.split(/\s+/);
    if (name === 'npm' || name === 'chown') continue;
    if (name === 'mkdir' && args[0] === '-p') {
      for (const dir of args.slice(1)) await mkdir(inRoot(dir), { recursive: true });
    } else if (name === 'chmod' && args.length === 2) {
      await chmod(inRoot(args[1] ?? ''), parseInt(args[0] ?? '', 8));
    } else if (name === 'ln' && args[0] === '-s' && args.length === 3) {
      await mkdir(path.dirname(inRoot(args[2] ?? '')), { recursive: true });
      await symlink(inRoot(args[1] ?? ''), inRoot(args[2] ?? ''));
    } else {
      throw new Error(`RUN ${command}: not replayed natively (compose-native.ts)`);
    }
  }
}

/** Builds the image of a context under `root`: WORKDIR's files, dist/, the RUN lines. */
export async function buildImage(context: string, dockerfile: string, root: string): Promise<void> {
  const stage = imageStage(dockerfile);
  const app = path.join(root, stage.workdir);
  await mkdir(app, { recursive: true });
  for (const file of ['package.json', 'package-lock.json']) {
    await copyFile(path.join(ROOT, context, file), path.join(app, file));
  }
  await symlink(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'));
  await buildDist(context, path.join(app, 'dist'));
  await replayRun(stage.run, root, stage.workdir);
}
