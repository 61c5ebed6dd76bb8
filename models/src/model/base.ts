// The pre-trained base model (DESIGN.md, "Pre-trained base, then fine-tuning"): where its folder
// lies — the one bundled next to the code, or one named by WLM_BASE_MODEL or by the caller (the
// server's initialization options) — whether it is there and whole, whether a preset has its
// architecture, and whether a workspace is written in the languages it was pre-trained on. It
// reads the folder through checkpoint.ts and never writes it; how a run starts from it is
// pipeline.ts's decision.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { CorruptModelError, readModelConfig, type ModelFolderConfig } from './checkpoint';
import type { GPTConfig } from './config';

/** An environment variable naming a base model folder to use instead of the bundled one. */
export const BASE_MODEL_ENV = 'WLM_BASE_MODEL';

// The shipped base was pre-trained on TypeScript and JavaScript from the npm registry
// (models/pretrain/manifest.json); a workspace mostly in another language trains from scratch.
export const BASE_LANGUAGE_NAME = 'TypeScript/JavaScript';
export const BASE_EXTENSIONS: readonly string[] = ['.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs'];
// Below this share of the workspace's source bytes, a workspace tokenizer and a model of its own
// serve it better than a vocabulary and weights learnt on other code (the probe: the base's
// tokenizer already spends 42% more tokens on a workspace in its own language).
export const MIN_BASE_LANGUAGE_SHARE = 0.5;

// What a base folder must hold: what pretrain.ts ships (model.onnx is exported where it serves).
const BASE_FILES = ['config.json', 'tokenizer.json', 'model.json', 'weights.bin'];

/** The bundled base: models/base from the sources (models/src/model), dist/../models/base from the bundle. */
export function bundledBaseDir(): string {
  const fromSources = path.resolve(__dirname, '..', '..', 'base');
  const fromBundle = path.resolve(__dirname, '..', 'models', 'base');
  const ordered = path.basename(__dirname) === 'dist' ? [fromBundle, fromSources] : [fromSources, fromBundle];
  return ordered.find((dir) => existsSync(dir)) ?? ordered[0];
}

/**
 * Where the base model is looked for: `override` when given (null: no base at all), else
 * $WLM_BASE_MODEL when set, else the bundled folder. The folder need not exist (findBaseModel says).
 */
export function baseModelDir(override?: string | null): string | null {
  if (override === null) return null;
  if (override) return path.resolve(override);
  const fromEnv = process.env[BASE_MODEL_ENV];
  return fromEnv ? path.resolve(fromEnv) : bundledBaseDir();
}

export interface BaseModel {
  dir: string;
  config: ModelFolderConfig;
}

/**
 * The base model at `dir`, or null when there is none (no such folder, or none asked for); a
 * folder that is there but broken is a CorruptModelError that names it, never a silent fallback.
 */
export async function findBaseModel(dir: string | null = baseModelDir()): Promise<BaseModel | null> {
  if (dir === null || !existsSync(dir)) return null;
  const missing = BASE_FILES.filter((file) => !existsSync(path.join(dir, file)));
  if (missing.length > 0) {
    throw new CorruptModelError(`base model folder ${dir} lacks ${missing.join(', ')} (hint: npm run pretrain writes models/base; ${BASE_MODEL_ENV} may name another folder)`);
  }
  return { dir, config: await readModelConfig(dir) };
}

/** Whether weights of one architecture load into the other: same context, depth, heads and width (the vocabulary comes with the tokenizer). */
export function sameArchitecture(a: GPTConfig, b: GPTConfig): boolean {
  return a.blockSize === b.blockSize && a.nLayer === b.nLayer && a.nHead === b.nHead && a.nEmbd === b.nEmbd;
}

/** The share of the files' bytes in the base's languages (0 for no files). */
export function baseLanguageShare(files: readonly { relPath: string; bytes: number }[]): number {
  let known = 0;
  let total = 0;
  for (const file of files) {
    total += file.bytes;
    if (BASE_EXTENSIONS.includes(path.extname(file.relPath).toLowerCase())) known += file.bytes;
  }
  return total > 0 ? known / total : 0;
}
