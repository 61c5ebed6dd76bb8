// The model folder on disk: config.json, the weights (model.json manifest + weights.bin) and the
// trainer's resume state (resume/: latest weights, a LoRA run's adapters, Adam moments, step,
// counters). It is the only module that reads or writes config.json. Pure Node, no tfjs, so the
// ONNX exporter and the server can read weights without a training engine. It does not know how a
// model computes; parameterShapes() is the one place names and shapes are listed.
import { promises as fs, existsSync } from 'node:fs';
import * as path from 'node:path';
import { validateGPTConfig, type GPTConfig, type LoraConfig, type TrainConfig } from './config';
import { writeFileAtomic } from '../util/atomicFiles';
import { UserError, jsonParseProblem } from '../util/errors';

const WEIGHTS_FORMAT = 'wlm-gpt';
const WEIGHTS_FORMAT_VERSION = 1;
export const MODEL_FORMAT_VERSION = 1;
const RESUME_DIR = 'resume';
const ADAPTERS_DIR = 'adapters'; // in a resume state: a LoRA run's adapters
const CONFIG_FILE = 'config.json';

export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

/** config.json of a model folder. */
export interface ModelFolderConfig {
  formatVersion: number;
  kind: 'workspace-lm-model';
  name: string;
  createdAt: string;
  preset: string;
  model: GPTConfig;
  train: TrainConfig;
  step: number;
  bestValLoss: number | null;
  backend: { name: string; device: string };
  data: {
    root: string;
    exclude?: string[]; // the globs the run left out on top of .gitignore: a rescan of root (evaluation) leaves them out too
    files: { train: number; val: number } | number;
    tokens: { train: number; val: number } | number;
    bytes?: number;
    skipped: Record<string, number>;
    gitCommit?: string;
    summaryPairs?: { mined: number; mixed: number; tokens: number }; // found in the training files, mixed into train.bin
    // A run on some files only (a fine-tune's scope): the whole workspace's split, which the
    // completion mixture's n-gram counts and its weights are fitted on (files and tokens above: the GPT's).
    workspace?: { files: { train: number; val: number }; tokens: { train: number; val: number } };
  };
  timings: Record<string, number>;
  parent?: string; // the model folder whose tokenizer and weights the run started from (the base, or a fine-tune's model)
  start?: RunStart;
  fineTune?: FineTuneMode; // what a run from a parent (the base, or a model) trained; absent: a run from scratch (everything)
  stopReason?: string; // train.ts's, or 'noTraining' for a folder made from the base without a gradient step
}

/** Where a run's tokenizer and weights came from, and why: said to the user and kept in config.json. */
export interface RunStart {
  from: 'base' | 'model' | 'scratch'; // the pre-trained base, another model folder (fine-tune), or a workspace tokenizer and random weights
  reason: string;
  baseLanguageShare?: number; // share of the workspace's bytes in the base's languages, where the base was weighed
}

/**
 * What a fine-tune trains: the whole model, the blocks above the lowest `freezeLayers` (embeddings
 * fixed too), or low-rank adapters on every block's matrices with the parent's weights fixed,
 * merged into the weights when saved (train/lora.ts). Kept in config.json, so a resume trains the same.
 */
export type FineTuneMode =
  | { mode: 'full' }
  | { mode: 'lastLayers'; freezeLayers: number }
  | ({ mode: 'lora' } & LoraConfig);

/** model.json: which tensor lies where in weights.bin (float32 little-endian, in this order). */
interface WeightsManifest {
  format: typeof WEIGHTS_FORMAT;
  formatVersion: number;
  model?: GPTConfig;
  byteLength: number;
  weights: { name: string; shape: number[] }[];
}

/**
 * Every parameter of the GPT with its shape, in the canonical order (the CONTRACT in gpt.ts).
 * The output head is tied to wte, so it has no entry of its own.
 */
export function parameterShapes(c: GPTConfig): [string, number[]][] {
  const d = c.nEmbd;
  const shapes: [string, number[]][] = [
    ['wte', [c.vocabSize, d]],
    ['wpe', [c.blockSize, d]],
  ];
  for (let i = 0; i < c.nLayer; i++) {
    shapes.push(
      [`h.${i}.ln1.g`, [d]], [`h.${i}.ln1.b`, [d]],
      [`h.${i}.attn.wqkv`, [d, 3 * d]], [`h.${i}.attn.bqkv`, [3 * d]],
      [`h.${i}.attn.wo`, [d, d]], [`h.${i}.attn.bo`, [d]],
      [`h.${i}.ln2.g`, [d]], [`h.${i}.ln2.b`, [d]],
      [`h.${i}.mlp.wfc`, [d, 4 * d]], [`h.${i}.mlp.bfc`, [4 * d]],
      [`h.${i}.mlp.wproj`, [4 * d, d]], [`h.${i}.mlp.bproj`, [d]],
    );
  }
  shapes.push(['lnf.g', [d]], ['lnf.b', [d]]);
  return shapes;
}

export class CorruptModelError extends Error {}

function corrupt(dir: string, what: string): CorruptModelError {
  return new CorruptModelError(`corrupt model folder ${dir}: ${what}`);
}

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const sameShape = (a: number[], b: number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

// ---------------------------------------------------------------------------------------------
// config.json

/** Whether the folder holds a config.json: a model, or a run that has started writing one. */
export function hasModelConfig(dir: string): boolean {
  return existsSync(path.join(dir, CONFIG_FILE));
}

export async function readModelConfig(dir: string): Promise<ModelFolderConfig> {
  const file = path.join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    if (!existsSync(dir)) throw new CorruptModelError(`model folder ${dir} does not exist (hint: train a model first, or check the path)`);
    throw corrupt(dir, 'missing config.json (hint: is this a Workspace LM model folder?)');
  }
  let config: ModelFolderConfig;
  try {
    config = JSON.parse(text) as ModelFolderConfig;
  } catch (err) {
    throw corrupt(dir, `config.json is not valid JSON (${jsonParseProblem(err)})`);
  }
  if (config === null || typeof config !== 'object') throw corrupt(dir, 'config.json is not an object');
  if (config.kind !== 'workspace-lm-model') throw corrupt(dir, `config.json kind is ${JSON.stringify(config.kind)}, expected "workspace-lm-model"`);
  if (config.formatVersion !== MODEL_FORMAT_VERSION) {
    throw corrupt(dir, `config.json formatVersion ${config.formatVersion} is not supported (this version reads ${MODEL_FORMAT_VERSION}; hint: retrain the model)`);
  }
  if (!config.model || typeof config.model !== 'object') throw corrupt(dir, 'config.json has no "model" section');
  try {
    validateGPTConfig(config.model);
  } catch (err) {
    throw corrupt(dir, (err as Error).message);
  }
  return config;
}

/** Writes config.json atomically: a reader sees the old file or the new one, never half of one. */
export async function writeModelConfig(dir: string, config: ModelFolderConfig): Promise<void> {
  await writeFileAtomic(path.join(dir, CONFIG_FILE), JSON.stringify(config, null, 2));
}

/** Reads config.json (validated), applies `patch` and writes it back; returns what was written. */
export async function updateModelConfig(dir: string, patch: Partial<ModelFolderConfig>): Promise<ModelFolderConfig> {
  const config: ModelFolderConfig = { ...(await readModelConfig(dir)), ...patch };
  await writeModelConfig(dir, config);
  return config;
}

/**
 * Keeps config.json (when the folder has one) in step with the checkpoint: a killed run still says
 * where it was. A bare training run (tests, benchmarks) has no config.json and records nothing.
 */
export async function recordProgress(dir: string, step: number, bestValLoss: number | null): Promise<void> {
  if (!hasModelConfig(dir)) return;
  try {
    await updateModelConfig(dir, { step, bestValLoss });
  } catch (err) {
    // A config.json we cannot read is reported by readModelConfig when the folder is loaded.
    if (!(err instanceof CorruptModelError)) throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// weights: model.json + weights.bin

/** Writes weights.bin, then model.json (each atomically). `model` is recorded for validation. */
export async function writeWeights(dir: string, weights: Map<string, WeightTensor>, model?: GPTConfig): Promise<void> {
  let byteLength = 0;
  const entries: { name: string; shape: number[] }[] = [];
  for (const [name, tensor] of weights) {
    if (tensor.data.length !== size(tensor.shape)) {
      throw new Error(`writeWeights: ${name} has ${tensor.data.length} values but shape [${tensor.shape}] needs ${size(tensor.shape)}`);
    }
    entries.push({ name, shape: [...tensor.shape] });
    byteLength += tensor.data.length * 4;
  }
  const bin = Buffer.alloc(byteLength);
  let offset = 0;
  for (const tensor of weights.values()) {
    // Float32Array is host-endian; every platform we ship on is little-endian, as the format says.
    bin.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength), offset);
    offset += tensor.data.byteLength;
  }
  const manifest: WeightsManifest = { format: WEIGHTS_FORMAT, formatVersion: WEIGHTS_FORMAT_VERSION, model, byteLength, weights: entries };
  await writeFileAtomic(path.join(dir, 'weights.bin'), bin);
  await writeFileAtomic(path.join(dir, 'model.json'), JSON.stringify(manifest, null, 1));
}

/**
 * Reads and validates the weights of a model folder (or of its resume/ subfolder). The expected
 * names and shapes come from config.json when the folder has one, else from the manifest's own
 * model section; any mismatch, a missing file or a short weights.bin is a CorruptModelError.
 */
export async function readWeights(dir: string): Promise<Map<string, WeightTensor>> {
  const manifestFile = path.join(dir, 'model.json');
  const binFile = path.join(dir, 'weights.bin');
  if (!existsSync(dir)) throw new CorruptModelError(`model folder ${dir} does not exist (hint: check the path)`);
  if (!existsSync(manifestFile)) throw corrupt(dir, 'missing model.json (hint: training may not have reached its first checkpoint)');
  if (!existsSync(binFile)) throw corrupt(dir, 'missing weights.bin');

  let manifest: WeightsManifest;
  try {
    manifest = JSON.parse(await fs.readFile(manifestFile, 'utf8')) as WeightsManifest;
  } catch (err) {
    throw corrupt(dir, `model.json is not valid JSON (${jsonParseProblem(err)})`);
  }
  if (manifest?.format !== WEIGHTS_FORMAT) throw corrupt(dir, `model.json format is ${JSON.stringify(manifest?.format)}, expected "${WEIGHTS_FORMAT}"`);
  if (manifest.formatVersion !== WEIGHTS_FORMAT_VERSION) {
    throw corrupt(dir, `model.json formatVersion ${manifest.formatVersion} is not supported (this version reads ${WEIGHTS_FORMAT_VERSION})`);
  }
  if (!Array.isArray(manifest.weights)) throw corrupt(dir, 'model.json has no weights list');

  let expected: GPTConfig | undefined = manifest.model;
  if (hasModelConfig(dir)) expected = (await readModelConfig(dir)).model;
  if (expected) {
    const want = parameterShapes(expected);
    const got = new Map(manifest.weights.map((w) => [w.name, w.shape]));
    for (const [name, shape] of want) {
      const have = got.get(name);
      if (!have) throw corrupt(dir, `weights lack ${name} (expected shape [${shape}])`);
      if (!sameShape(have, shape)) throw corrupt(dir, `${name} has shape [${have}] but config.json says [${shape}]`);
    }
    if (got.size !== want.length) {
      const extra = [...got.keys()].filter((n) => !want.some(([w]) => w === n));
      throw corrupt(dir, `weights hold unexpected tensors: ${extra.slice(0, 5).join(', ')}`);
    }
  }

  const bin = await fs.readFile(binFile);
  const needBytes = manifest.weights.reduce((n, w) => n + size(w.shape) * 4, 0);
  if (bin.byteLength !== needBytes) {
    throw corrupt(dir, `weights.bin has ${bin.byteLength} bytes but model.json describes ${needBytes} (truncated or mismatched)`);
  }
  const weights = new Map<string, WeightTensor>();
  let offset = 0;
  for (const { name, shape } of manifest.weights) {
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d > 0)) throw corrupt(dir, `${name} has an invalid shape ${JSON.stringify(shape)}`);
    const count = size(shape);
    // Copy into a fresh, aligned buffer: the file buffer's offset need not be a multiple of 4.
    const data = new Float32Array(count);
    new Uint8Array(data.buffer).set(bin.subarray(offset, offset + count * 4));
    offset += count * 4;
    // A diverged run or a damaged file: served, it would only ever complete nothing.
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw corrupt(dir, `${name} holds ${Number.isNaN(data[bad]) ? 'NaN' : 'infinite'} values (first at index ${bad}); training diverged or weights.bin is damaged (hint: retrain, or resume from an earlier checkpoint)`);
    weights.set(name, { shape: [...shape], data });
  }
  return weights;
}

// ---------------------------------------------------------------------------------------------
// resume state: what a stopped run needs to continue exactly as if it had never stopped

/** Trainer bookkeeping saved next to the optimizer moments. */
export interface TrainerCounters {
  step: number; // optimizer steps completed
  tokens: number; // training tokens seen
  bestValLoss: number | null;
  evalsWithoutImprovement: number;
  elapsedMs: number; // training wall time before this run
}

export interface TrainingState extends TrainerCounters {
  weights: Map<string, WeightTensor>; // the latest weights (not necessarily the best); a LoRA run's W0, unmerged
  adapters?: Map<string, WeightTensor>; // a LoRA run's A and B (train/lora.ts), kept apart in resume/adapters/
  adamM: Map<string, Float32Array>;
  adamV: Map<string, Float32Array>;
}

interface StateFile extends TrainerCounters {
  format: 'wlm-train-state';
  formatVersion: 1;
  moments: { name: string; length: number }[];
}

/**
 * Writes resume/ as a whole: into a temporary sibling first, then swapped in by renames, so a crash
 * leaves either the old state or the new one (resume.old/ is read when the swap was cut short).
 */
export async function saveTrainingState(dir: string, state: TrainingState, model?: GPTConfig): Promise<void> {
  const finalDir = path.join(dir, RESUME_DIR);
  const tmpDir = path.join(dir, `.${RESUME_DIR}.${process.pid}.tmp`);
  const oldDir = path.join(dir, `${RESUME_DIR}.old`);
  await fs.rm(tmpDir, { recursive: true, force: true });
  await fs.mkdir(tmpDir, { recursive: true });
  try {
    await writeStateFiles(tmpDir, state, model);
  } catch (err) {
    // A full disk: the half-written state goes, the last complete one stays in resume/.
    await fs.rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
    throw new UserError(`cannot save the checkpoint of step ${state.step} in ${dir}: the disk is full (${code}); the last checkpoint saved before it is kept, and the run resumes from there (hint: free some space, then resume)`);
  }
  await fs.rm(oldDir, { recursive: true, force: true });
  if (existsSync(finalDir)) await fs.rename(finalDir, oldDir);
  await fs.rename(tmpDir, finalDir);
  await fs.rm(oldDir, { recursive: true, force: true });
}

/** The files of one resume state: weights, Adam moments, counters. */
async function writeStateFiles(tmpDir: string, state: TrainingState, model?: GPTConfig): Promise<void> {
  await writeWeights(tmpDir, state.weights, model);
  if (state.adapters) {
    await fs.mkdir(path.join(tmpDir, ADAPTERS_DIR));
    await writeWeights(path.join(tmpDir, ADAPTERS_DIR), state.adapters);
  }
  const names = [...state.adamM.keys()];
  const total = names.reduce((n, k) => n + state.adamM.get(k)!.length, 0);
  const moments = new Float32Array(2 * total);
  let offset = 0;
  for (const name of names) {
    moments.set(state.adamM.get(name)!, offset);
    moments.set(state.adamV.get(name)!, total + offset);
    offset += state.adamM.get(name)!.length;
  }
  await writeFileAtomic(path.join(tmpDir, 'moments.bin'), new Uint8Array(moments.buffer));
  const file: StateFile = {
    format: 'wlm-train-state', formatVersion: 1,
    step: state.step, tokens: state.tokens, bestValLoss: state.bestValLoss,
    evalsWithoutImprovement: state.evalsWithoutImprovement, elapsedMs: state.elapsedMs,
    moments: names.map((name) => ({ name, length: state.adamM.get(name)!.length })),
  };
  await writeFileAtomic(path.join(tmpDir, 'state.json'), JSON.stringify(file, null, 1));
}

export function hasTrainingState(dir: string): boolean {
  return existsSync(path.join(dir, RESUME_DIR, 'state.json')) || existsSync(path.join(dir, `${RESUME_DIR}.old`, 'state.json'));
}

/** Removes the resume state of `dir` (resume/, resume.old/, a temporary one left by a kill): the run completed. */
export async function removeTrainingState(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const stale = (await fs.readdir(dir)).filter((e) => e === RESUME_DIR || e === `${RESUME_DIR}.old` || (e.startsWith(`.${RESUME_DIR}.`) && e.endsWith('.tmp')));
  for (const entry of stale) await fs.rm(path.join(dir, entry), { recursive: true, force: true });
}

export async function loadTrainingState(dir: string): Promise<TrainingState> {
  let stateDir = path.join(dir, RESUME_DIR);
  if (!existsSync(path.join(stateDir, 'state.json'))) stateDir = path.join(dir, `${RESUME_DIR}.old`);
  if (!existsSync(path.join(stateDir, 'state.json'))) {
    throw corrupt(dir, `no resume state (${RESUME_DIR}/state.json) to continue from (hint: start a new run instead of resuming)`);
  }
  let file: StateFile;
  try {
    file = JSON.parse(await fs.readFile(path.join(stateDir, 'state.json'), 'utf8')) as StateFile;
  } catch (err) {
    throw corrupt(dir, `${RESUME_DIR}/state.json is not valid JSON (${jsonParseProblem(err)})`);
  }
  if (file.format !== 'wlm-train-state' || file.formatVersion !== 1) throw corrupt(dir, `${RESUME_DIR}/state.json has an unknown format`);
  const weights = await readWeights(stateDir);
  const adapters = existsSync(path.join(stateDir, ADAPTERS_DIR)) ? await readWeights(path.join(stateDir, ADAPTERS_DIR)) : undefined;
  const bin = await fs.readFile(path.join(stateDir, 'moments.bin'));
  const total = file.moments.reduce((n, m) => n + m.length, 0);
  if (bin.byteLength !== 2 * total * 4) {
    throw corrupt(dir, `${RESUME_DIR}/moments.bin has ${bin.byteLength} bytes, expected ${2 * total * 4}`);
  }
  const all = new Float32Array(2 * total);
  new Uint8Array(all.buffer).set(bin);
  const adamM = new Map<string, Float32Array>();
  const adamV = new Map<string, Float32Array>();
  let offset = 0;
  for (const { name, length } of file.moments) {
    adamM.set(name, all.slice(offset, offset + length));
    adamV.set(name, all.slice(total + offset, total + offset + length));
    offset += length;
  }
  return {
    step: file.step, tokens: file.tokens, bestValLoss: file.bestValLoss,
    evalsWithoutImprovement: file.evalsWithoutImprovement, elapsedMs: file.elapsedMs,
    weights, ...(adapters ? { adapters } : {}), adamM, adamV,
  };
}
