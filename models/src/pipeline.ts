// The main job, end to end: folder of code → tokenizer → token files → GPT trained → model folder
// (config, tokenizer, weights, metrics, model.onnx). Used by the CLI and the language server's
// worker; it reports through one `onEvent` callback and knows nothing about terminals or LSP.
// trainOnFolder reads as the list of its steps; each is a helper below it, in the order called.
// It decides what a run records, not how any file is written: config.json is checkpoint.ts's.
import { promises as fs, existsSync } from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DEFAULT_PRESET, DEFAULT_TRAIN, loadPreset, validateGPTConfig, validateTrainConfig, type GPTConfig, type Preset, type PresetName, type TrainConfig } from './model/config';
import { scanFolder, readSourceText, type ScanResult, type SourceFile } from './data/files';
import { CodeTokenizer } from './data/tokenizer';
import { splitFiles, tokenizeFiles, openTokenStream, BatchSampler, type TokenizeResult, type TokenStream } from './data/dataset';
import { selectBackend, type BackendChoice, type BackendName } from './train/backend';
import { GPT } from './model/gpt';
import { train, type StepMetrics, type TrainResult } from './train/train';
import { MODEL_FORMAT_VERSION, readModelConfig, readWeights, updateModelConfig, writeModelConfig, type ModelFolderConfig } from './model/checkpoint';
import { exportOnnx } from './model/onnx';
import { CompletionSession } from './infer/session';
import { UserError } from './util/errors';

export interface TrainOnFolderOptions {
  folder: string; // the code to learn from
  outDir: string; // the model folder to create (or resume)
  preset?: PresetName | string; // default DEFAULT_PRESET (model/config.ts)
  backend?: BackendName; // force a backend; default: best available
  steps?: number; // override the preset's maxSteps
  minutes?: number; // override the preset's wall-clock budget (0 = none)
  resume?: boolean; // continue the run saved in outDir
  exclude?: string[]; // extra globs to leave out, on top of .gitignore
  files?: string[]; // train on these files only (relative to folder), e.g. a fine-tune scope
  init?: string; // fine-tune: start from this model folder's weights and tokenizer
  freezeLayers?: number; // fine-tune: keep the lowest K blocks (and embeddings) fixed
  learningRate?: number; // override the peak learning rate
  summaryRate?: number; // override the share of documented definitions mixed in as summary examples
  fimRate?: number; // override the share of documents rewritten as fill-in-the-middle examples
  name?: string; // display name stored in config.json
  skipExport?: boolean; // leave model.onnx to first use (benchmarks of training alone)
  signal?: AbortSignal;
  onEvent?: (event: PipelineEvent) => void;
}

export type PipelineEvent =
  | { type: 'status'; message: string }
  | { type: 'scan'; files: number; bytes: number; skipped: Record<string, number> }
  | { type: 'backend'; name: string; device: string; fallbacks: string[] }
  | { type: 'log'; metrics: StepMetrics; maxSteps: number }
  | { type: 'export'; file: string; bytes: number; ms: number }
  | { type: 'mixture'; ms: number };

export interface TrainOnFolderResult {
  modelDir: string;
  config: ModelFolderConfig;
  result: TrainResult;
}

export async function trainOnFolder(opts: TrainOnFolderOptions): Promise<TrainOnFolderResult> {
  const job: Job = { opts, folder: path.resolve(opts.folder), outDir: path.resolve(opts.outDir), emit: opts.onEvent ?? (() => {}) };
  const plan = await resolveRunConfig(job);
  const sources = await scanAndSplit(job, plan);
  const tokenizer = await prepareTokenizer(job, plan, sources);
  const tokens = await tokenizeSplits(job, plan, sources, tokenizer);
  const backend = await startEngine(job);
  await writeInitialConfig(job, plan, sources, tokens, backend);
  const gpt = await startModel(plan);
  const { result, trainMs } = await runTraining(job, plan, gpt, tokens);
  const config = await recordResult(job, result, trainMs);
  if (result.stopReason !== 'cancelled' && !opts.skipExport) await exportForServing(job);
  return { modelDir: job.outDir, config, result };
}

/** What every step is handed: the options, the resolved folders, and where events go. */
interface Job {
  opts: TrainOnFolderOptions;
  folder: string;
  outDir: string;
  emit: (event: PipelineEvent) => void;
}

/** What the run will be: preset, architecture, training settings, and what it continues from. */
interface RunPlan {
  preset: Preset;
  model: GPTConfig;
  train: TrainConfig;
  previous?: ModelFolderConfig; // the run being resumed: outDir's own config
  parentDir?: string; // fine-tune: the model folder whose tokenizer and weights we start from
}

/** 1. Configuration: preset, parent model (fine-tune) or the run being resumed. */
async function resolveRunConfig({ opts, outDir }: Job): Promise<RunPlan> {
  const parentDir = opts.init ? path.resolve(opts.init) : undefined;
  const parent = parentDir ? await readModelConfig(parentDir) : undefined;
  const previous = opts.resume ? await readModelConfig(outDir) : undefined;
  const preset = loadPreset(previous?.preset ?? parent?.preset ?? opts.preset ?? DEFAULT_PRESET);
  const model: GPTConfig = previous?.model ?? parent?.model ?? preset.model;
  const train: TrainConfig = { ...DEFAULT_TRAIN, ...(previous?.train ?? preset.train) }; // settings added since an old run take their defaults
  if (!previous) {
    if (opts.steps !== undefined) train.maxSteps = opts.steps;
    if (opts.minutes !== undefined) train.maxMinutes = opts.minutes;
    if (opts.learningRate !== undefined) {
      train.minLearningRate = (train.minLearningRate / train.learningRate) * opts.learningRate;
      train.learningRate = opts.learningRate;
    }
    if (opts.summaryRate !== undefined) train.summaryRate = opts.summaryRate;
    if (opts.fimRate !== undefined) train.fimRate = opts.fimRate;
    if (opts.steps !== undefined) train.warmupSteps = Math.min(train.warmupSteps, Math.max(1, Math.floor(opts.steps / 10)));
  }
  validateGPTConfig(model);
  validateTrainConfig(train);
  return { preset, model, train, previous, parentDir };
}

interface Sources {
  scan: ScanResult;
  chosen: SourceFile[]; // what this run learns from: the scan, or the files asked for
  split: { train: SourceFile[]; val: SourceFile[] };
}

/** 2. Data: which files, split by file. */
async function scanAndSplit({ opts, folder, emit }: Job, plan: RunPlan): Promise<Sources> {
  emit({ type: 'status', message: `scanning ${folder}` });
  const scan = await scanFolder(folder, { exclude: opts.exclude });
  const chosen = opts.files ? selectFiles(scan, opts.files) : scan.files;
  emit({ type: 'scan', files: chosen.length, bytes: totalBytes(chosen), skipped: scan.skipped });
  if (chosen.length === 0) {
    throw new UserError(`no source files to train on in ${folder} (skipped: ${describeSkipped(scan.skipped)})`);
  }
  return { scan, chosen, split: splitFiles(chosen, plan.train.valFraction, plan.train.seed) };
}

/** A tokenizer in outDir: the resumed run's own, the parent's (fine-tune), or a new BPE trained on the training files. */
async function prepareTokenizer({ outDir, emit }: Job, plan: RunPlan, sources: Sources): Promise<CodeTokenizer> {
  await fs.mkdir(outDir, { recursive: true });
  const tokenizerFile = path.join(outDir, 'tokenizer.json');
  let tokenizer: CodeTokenizer;
  if (plan.previous) {
    tokenizer = await CodeTokenizer.load(tokenizerFile);
  } else if (plan.parentDir) {
    tokenizer = await CodeTokenizer.load(path.join(plan.parentDir, 'tokenizer.json'));
    await tokenizer.save(tokenizerFile);
  } else {
    emit({ type: 'status', message: `training a ${plan.model.vocabSize}-token BPE tokenizer on ${sources.split.train.length} files` });
    tokenizer = await CodeTokenizer.train(readTexts(sources.split.train), plan.model.vocabSize);
    await tokenizer.save(tokenizerFile);
  }
  if (tokenizer.vocabSize !== plan.model.vocabSize) {
    throw new UserError(`tokenizer has ${tokenizer.vocabSize} tokens but the model expects ${plan.model.vocabSize}`);
  }
  return tokenizer;
}

interface Tokens {
  train: TokenizeResult;
  val: TokenizeResult;
  summaryPairs: { mined: number; mixed: number; tokens: number };
  trainStream: TokenStream;
  valStream: TokenStream; // the training stream when the held-out files are too short
}

/** Token files on disk (data/train.bin, data/val.bin), opened as streams. */
async function tokenizeSplits({ opts, folder, outDir, emit }: Job, plan: RunPlan, sources: Sources, tokenizer: CodeTokenizer): Promise<Tokens> {
  const { model, train: trainConfig } = plan;
  const dataDir = path.join(outDir, 'data');
  emit({ type: 'status', message: 'tokenizing' });
  // Summary examples come from the training files only: held-out doc comments stay unseen for evaluation.
  const train = await tokenizeFiles(sources.split.train, tokenizer, path.join(dataDir, 'train.bin'), {
    fimRate: trainConfig.fimRate, summaryRate: trainConfig.summaryRate, blockSize: model.blockSize, seed: trainConfig.seed, signal: opts.signal,
  });
  const summaryPairs = train.summaries ?? { mined: 0, mixed: 0, tokens: 0 };
  if (trainConfig.summaryRate > 0) {
    emit({ type: 'status', message: `summary examples: ${summaryPairs.mixed} of ${summaryPairs.mined} documented definitions (${summaryPairs.tokens} tokens)` });
  }
  const val = await tokenizeFiles(sources.split.val, tokenizer, path.join(dataDir, 'val.bin'), { seed: trainConfig.seed, signal: opts.signal });
  const trainStream = openTokenStream(path.join(dataDir, 'train.bin'));
  // A workspace whose held-out files are too short to fill one window validates on training data;
  // the figures then say less, so the event says so.
  let valStream = openTokenStream(path.join(dataDir, 'val.bin'));
  if (valStream.length < model.blockSize + 1) {
    emit({ type: 'status', message: `validation files hold only ${valStream.length} tokens; validating on training data` });
    valStream = trainStream;
  }
  if (trainStream.length < model.blockSize + 1) {
    throw new UserError(`only ${trainStream.length} training tokens in ${folder}; need at least ${model.blockSize + 1} for one window of the ${plan.preset.name} preset`);
  }
  return { train, val, summaryPairs, trainStream, valStream };
}

/** 3. Engine and model: the backend first, since the GPT's tensors live on it. */
async function startEngine({ opts, emit }: Job): Promise<BackendChoice> {
  const backend = await selectBackend(opts.backend);
  emit({ type: 'backend', name: backend.name, device: backend.device, fallbacks: backend.fallbacks });
  return backend;
}

/** config.json as the run starts; a resumed run keeps its own, with this run's backend. */
async function writeInitialConfig({ opts, folder, outDir }: Job, plan: RunPlan, sources: Sources, tokens: Tokens, backend: BackendChoice): Promise<void> {
  const config: ModelFolderConfig = plan.previous ?? {
    formatVersion: MODEL_FORMAT_VERSION,
    kind: 'workspace-lm-model',
    name: opts.name ?? path.basename(outDir),
    createdAt: new Date().toISOString(),
    preset: plan.preset.name,
    model: plan.model,
    train: plan.train,
    step: 0,
    bestValLoss: null,
    backend: { name: backend.name, device: backend.device },
    data: {
      root: folder,
      files: { train: sources.split.train.length, val: sources.split.val.length },
      tokens: { train: tokens.train.tokens, val: tokens.val.tokens },
      bytes: totalBytes(sources.chosen),
      skipped: sources.scan.skipped,
      gitCommit: gitCommit(folder),
      // (code, summary) pairs: found in the training files, and mixed into train.bin at train.summaryRate.
      summaryPairs: tokens.summaryPairs,
    },
    timings: {},
    parent: plan.parentDir,
  };
  config.backend = { name: backend.name, device: backend.device };
  await writeModelConfig(outDir, config);
}

/** The GPT from the seed; a fine-tune then takes its parent's weights (a resumed run loads its own in train.ts). */
async function startModel(plan: RunPlan): Promise<GPT> {
  const gpt = new GPT(plan.model, { seed: plan.train.seed });
  if (plan.parentDir && !plan.previous) gpt.loadWeights(await readWeights(plan.parentDir));
  return gpt;
}

/** 4. Train. */
async function runTraining({ opts, outDir, emit }: Job, plan: RunPlan, gpt: GPT, tokens: Tokens): Promise<{ result: TrainResult; trainMs: number }> {
  const { model, train: trainConfig } = plan;
  const started = Date.now();
  const result = await train({
    model: gpt,
    config: trainConfig,
    data: { train: new BatchSampler(tokens.trainStream, model.blockSize, trainConfig.seed), val: new BatchSampler(tokens.valStream, model.blockSize, trainConfig.seed + 1) },
    outDir,
    signal: opts.signal,
    resume: Boolean(plan.previous),
    freezeLayers: opts.freezeLayers,
    onLog: (metrics) => emit({ type: 'log', metrics, maxSteps: trainConfig.maxSteps }),
  });
  gpt.dispose();
  if (result.workersNote) emit({ type: 'status', message: `trained on ${result.workers} thread(s): ${result.workersNote}` });
  return { result, trainMs: Date.now() - started };
}

/** 5. Record what happened in config.json. */
async function recordResult({ outDir }: Job, result: TrainResult, trainMs: number): Promise<ModelFolderConfig> {
  return updateModelConfig(outDir, {
    step: result.step,
    bestValLoss: result.bestValLoss,
    timings: { trainMs, tokensPerSecond: result.tokensPerSecond, gradientWorkers: result.workers },
    stopReason: result.stopReason,
  });
}

/** Then export for serving: model.onnx, and the completion mixture. */
async function exportForServing({ opts, outDir, emit }: Job): Promise<void> {
  const exported = await exportOnnx(outDir);
  emit({ type: 'export', ...exported });
  // What the editor serves: the GPT mixed with the workspace n-gram and the open-files cache,
  // weights fitted on the held-out tokens (mixture.ts).
  emit({ type: 'status', message: 'fitting the completion mixture (GPT + workspace n-gram + cache)' });
  const mixtureStarted = Date.now();
  await CompletionSession.buildMixture(outDir, { signal: opts.signal });
  emit({ type: 'mixture', ms: Date.now() - mixtureStarted });
}

function totalBytes(files: SourceFile[]): number {
  return files.reduce((n, f) => n + f.bytes, 0);
}

function selectFiles(scan: ScanResult, wanted: string[]): SourceFile[] {
  const set = new Set(wanted.map((f) => f.split(path.sep).join('/')));
  return scan.files.filter((f) => set.has(f.relPath));
}

async function* readTexts(files: SourceFile[]): AsyncGenerator<string> {
  for (const file of files) {
    const text = await readSourceText(file);
    if (text !== null) yield text;
  }
}

export function describeSkipped(skipped: Record<string, number>): string {
  const parts = Object.entries(skipped).filter(([, n]) => n > 0).map(([reason, n]) => `${n} ${reason}`);
  return parts.length ? parts.join(', ') : 'nothing';
}

/** The commit the workspace was at, so a later fine-tune can train on what changed since. */
function gitCommit(folder: string): string | undefined {
  if (!existsSync(path.join(folder, '.git'))) return undefined;
  try {
    return execFileSync('git', ['-C', folder, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}
