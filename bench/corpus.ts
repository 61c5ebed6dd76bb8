// Benchmark corpora: real code from the npm registry, fetched with `npm pack` into an ignored
// cache on first use. Nothing here is committed; nothing but the npm registry is contacted.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { scanFolder, type SourceFile } from '../models/src/data/files';
import { splitFiles } from '../models/src/data/dataset';
import { DEFAULT_PRESET, loadPreset } from '../models/src/model/config';

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

/**
 * A corpus as the benches hold it out. `heldOut`: the files the default preset's split holds out
 * of `folder`, which the benches score and never give to a trainer. `trainingFolder`: a copy of
 * the rest under `train/`, all that a trainer sees. The pipeline splits that copy afresh (new
 * paths, a new split by path) for its own held-out files: the early stopping, the checkpoint it
 * keeps and the completion mixture's weights are chosen on those, never on the files scored.
 * `ngramFiles`: the copy's training side, which the arms' workspace n-gram counts, and so the
 * 4-gram baseline too.
 */
export interface BenchSplit {
  folder: string;
  files: SourceFile[]; // every source file of the corpus
  heldOut: SourceFile[];
  trainingFolder: string;
  trainingFiles: SourceFile[]; // the copy's files (paths under train/)
  ngramFiles: SourceFile[];
}

export async function benchSplit(spec: string, subdir = 'src'): Promise<BenchSplit> {
  const folder = ensureCorpus(spec, subdir);
  const files = (await scanFolder(folder)).files;
  const { valFraction, seed } = loadPreset(DEFAULT_PRESET).train;
  const { train, val } = splitFiles(files, valFraction, seed);
  const trainingFolder = path.join(CACHE_DIR, `${spec.replace(/[@/]/g, '_')}-training`);
  rmSync(trainingFolder, { recursive: true, force: true });
  for (const file of train) {
    const to = path.join(trainingFolder, 'train', file.relPath);
    mkdirSync(path.dirname(to), { recursive: true });
    cpSync(path.join(folder, file.relPath), to);
  }
  const trainingFiles = (await scanFolder(trainingFolder)).files;
  if (trainingFiles.length !== train.length) throw new Error(`bench split of ${spec}: ${train.length} training files copied, ${trainingFiles.length} scanned in ${trainingFolder}`);
  return { folder, files, heldOut: val, trainingFolder, trainingFiles, ngramFiles: splitFiles(trainingFiles, valFraction, seed).train };
}
