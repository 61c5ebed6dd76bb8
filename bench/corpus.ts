// Benchmark corpora: real code from the npm registry, fetched with `npm pack` into an ignored
// cache on first use. Nothing here is committed; nothing but the npm registry is contacted.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';

export const CACHE_DIR = path.resolve('.bench-cache');

/** Returns the folder holding `subdir` of the package, e.g. rxjs@7.8.2's src/. */
export function ensureCorpus(spec: string, subdir = 'src'): string {
  const folder = path.join(CACHE_DIR, spec.replace(/[@/]/g, '_'));
  const target = path.join(folder, 'package', subdir);
  if (existsSync(target)) return target;
  mkdirSync(folder, { recursive: true });
  const tarball = execFileSync('npm', ['pack', spec, '--silent'], { cwd: folder, encoding: 'utf8' }).trim().split('\n').pop()!;
  execFileSync('tar', ['xzf', tarball], { cwd: folder });
  if (!existsSync(target)) throw new Error(`${spec} has no ${subdir}/ folder`);
  return target;
}
