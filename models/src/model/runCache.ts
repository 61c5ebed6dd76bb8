// Where a training run keeps what a model folder must not hold: its token files and its resume
// state, in a cache BESIDE the model folder (`<parent>/.wlm-cache/<model>/`: for the server's models
// folder, `<modelsDir>/.wlm-cache/<name>/`; for `wlm train --out DIR`, next to DIR). runCacheDir()
// is the one owner of that path. The token files go when a run ends; the resume state stays while a
// run can continue (cancelled, killed) and goes once it completes. A model folder written before
// the cache existed keeps data/ and resume/ inside it: they are still read, and removed with the
// cache. It does not write token files or resume state itself (data/dataset.ts, checkpoint.ts do).
import { promises as fs, existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { hasTrainingState, removeTrainingState } from './checkpoint';

/** The cache folder's name inside a models folder (a dot-name: never listed as a model). */
export const RUN_CACHE_FOLDER = '.wlm-cache';
const LEGACY_DATA_DIR = 'data'; // token files inside the model folder, before the cache

/** The run cache of a model folder: `<parent>/.wlm-cache/<model name>`. */
export function runCacheDir(modelDir: string): string {
  const dir = path.resolve(modelDir);
  return path.join(path.dirname(dir), RUN_CACHE_FOLDER, path.basename(dir));
}

/** Where a run writes one of its token files (train.bin, val.bin, scope-train.bin, scope-val.bin). */
export function tokenFile(modelDir: string, name: string): string {
  return path.join(runCacheDir(modelDir), name);
}

/** A token file the model's runs left: in the cache, else in an older folder's data/; null when neither holds it. */
export function existingTokenFile(modelDir: string, name: string): string | null {
  for (const file of [tokenFile(modelDir, name), path.join(modelDir, LEGACY_DATA_DIR, name)]) {
    if (existsSync(file)) return file;
  }
  return null;
}

/**
 * The folder whose resume/ holds the run's state (checkpoint.ts saveTrainingState): the cache, or
 * the model folder itself where an older run saved it there and the cache has none.
 */
export function trainingStateDir(modelDir: string): string {
  const cache = runCacheDir(modelDir);
  return !hasTrainingState(cache) && hasTrainingState(modelDir) ? modelDir : cache;
}

/** Whether a stopped run of this model can continue: resume state in the cache or in an older folder. */
export function hasResumeState(modelDir: string): boolean {
  return hasTrainingState(runCacheDir(modelDir)) || hasTrainingState(modelDir);
}

/** After any run: its token files go (a later run tokenizes again); the resume state stays. */
export async function clearTokenFiles(modelDir: string): Promise<void> {
  const cache = runCacheDir(modelDir);
  if (existsSync(cache)) {
    for (const entry of readdirSync(cache)) if (entry.endsWith('.bin')) await fs.rm(path.join(cache, entry), { force: true });
  }
  await fs.rm(path.join(modelDir, LEGACY_DATA_DIR), { recursive: true, force: true });
  await removeEmpty(cache);
}

/** After a completed run, or with its model: token files and resume state, here and in an older folder. */
export async function clearRunCache(modelDir: string): Promise<void> {
  const cache = runCacheDir(modelDir);
  await fs.rm(cache, { recursive: true, force: true });
  await removeTrainingState(modelDir);
  await fs.rm(path.join(modelDir, LEGACY_DATA_DIR), { recursive: true, force: true });
  await removeEmpty(cache);
}

/** Removes the run's cache folder, then the .wlm-cache folder, where they are empty (never anything above). */
async function removeEmpty(cache: string): Promise<void> {
  for (const dir of [cache, path.dirname(cache)]) {
    // rmdir fails on a folder that still holds something (kept) or is gone already (nothing to do).
    await fs.rmdir(dir).catch(() => undefined);
  }
}
