// Which workspace files a fine-tune covers when its scope is "changed since the base model": git
// knows (diff against the commit recorded in the model's config.json, plus untracked files);
// without git, file modification times after the model's creation. Which files are source at
// all (gitignore, binaries, secrets) stays with files.ts. Used by the server's and the CLI's fine-tune.
import { execFile } from 'node:child_process';
import { promises as fs, existsSync } from 'node:fs';
import * as path from 'node:path';
import { scanFolder } from './files';

function git(folder: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', ['-C', folder, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

const lines = (out: string) => out.split('\n').map((l) => l.trim()).filter((l) => l !== '');

export interface ChangedFiles {
  files: string[]; // relative to the folder, posix
  how: string; // for the user: what "changed" was measured against
}

/**
 * Files changed since a model was trained: `git diff` against `commit` (working tree, staged or
 * not) plus untracked files; by mtime after `since` when there is no git or no commit.
 */
export async function changedFilesSince(folder: string, commit: string | undefined, since: Date, exclude: string[] = []): Promise<ChangedFiles> {
  if (commit && existsSync(path.join(folder, '.git'))) {
    try {
      const changed = lines(await git(folder, ['diff', '--name-only', '--relative', commit, '--']));
      const untracked = lines(await git(folder, ['ls-files', '--others', '--exclude-standard']));
      return { files: [...new Set([...changed, ...untracked])].sort(), how: `git diff against ${commit.slice(0, 10)} plus untracked files` };
    } catch {
      // The commit may be gone (rebased away): fall back to modification times.
    }
  }
  const scan = await scanFolder(folder, { exclude });
  const changed: string[] = [];
  for (const file of scan.files) {
    const stat = await fs.stat(file.absPath).catch(() => null);
    if (stat && stat.mtimeMs > since.getTime()) changed.push(file.relPath);
  }
  return { files: changed.sort(), how: `files modified after ${since.toISOString()}` };
}
