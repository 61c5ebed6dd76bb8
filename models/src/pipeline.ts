// The main job, end to end: folder of code → tokenizer → token files → GPT trained → model folder
// (config, tokenizer, weights, metrics, model.onnx, the completion mixture). Used by the CLI and
// the language server's worker; it reports through one `onEvent` callback and knows nothing about
// terminals or LSP. trainOnFolder reads as the list of its steps; each is a helper below it, in
// the order called. It decides how a run starts (the base model, a model being fine-tuned, or
// scratch) and what a run records, not how any file is written: config.json is checkpoint.ts's.
import { promises as fs, existsSync } from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DEFAULT_PRESET, DEFAULT_TRAIN, loadPreset, loraConfig, validateGPTConfig, validateLoraConfig, validateTrainConfig, type GPTConfig, type Preset, type PresetName, type TrainConfig } from './model/config';
import { scanFolder, readSourceText, type ScanResult, type SourceFile } from './data/files';
import { CodeTokenizer } from './data/tokenizer';
import { splitFiles, tokenizeFiles, openTokenStream, BatchSampler, type TokenizeResult, type TokenStream } from './data/dataset';
import { selectBackend, type BackendChoice, type BackendName } from './train/backend';
import { GPT } from './model/gpt';
import { train, type StepMetrics, type StopReason, type TrainResult } from './train/train';
import { MODEL_FORMAT_VERSION, hasModelConfig, readModelConfig, readWeights, updateModelConfig, writeModelConfig, type FineTuneMode, type ModelFolderConfig, type RunStart } from './model/checkpoint';
import { clearRunCache, clearTokenFiles, hasResumeState, tokenFile, trainingStateDir } from './model/runCache';
import { BASE_LANGUAGE_NAME, MIN_BASE_LANGUAGE_SHARE, baseLanguageShare, findBaseModel, sameArchitecture, type BaseModel } from './model/base';
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
  files?: string[]; // train the GPT on these files only (relative to folder), e.g. a fine-tune scope; the n-gram still counts the whole workspace
  init?: string; // fine-tune: start from this model folder's weights and tokenizer
  base?: string | null; // a base model folder (model/base.ts baseModelDir()) to start from when the preset has its architecture and the workspace its languages; absent: from scratch
  fromScratch?: boolean; // a workspace tokenizer and random weights, even where the base would do
  noTraining?: boolean; // no gradient step: the base's (or init's) tokenizer and weights as they are, with the workspace's n-gram and mixture (wlm train --minutes 0)
  freezeLayers?: number; // fine-tune: keep the lowest K blocks (and embeddings) fixed
  loraRank?: number; // fine-tune: train low-rank adapters of this rank instead, the weights fixed, merged into them when saved (train/lora.ts); not with freezeLayers
  learningRate?: number; // override the peak learning rate
  summaryRate?: number; // override the share of documented definitions mixed in as summary examples
  fimRate?: number; // override the share of documents rewritten as fill-in-the-middle examples
  patience?: number; // override the evaluations without improvement that end a run early (0: never)
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

/** train.ts's result; a folder made without training stops for reason 'noTraining' at step 0. */
export type RunResult = Omit<TrainResult, 'stopReason'> & { stopReason: StopReason | 'noTraining' };

export interface TrainOnFolderResult {
  modelDir: string;
  config: ModelFolderConfig;
  result: RunResult;
}

export async function trainOnFolder(opts: TrainOnFolderOptions): Promise<TrainOnFolderResult> {
  const job: Job = { opts, folder: path.resolve(opts.folder), outDir: path.resolve(opts.outDir), emit: opts.onEvent ?? (() => {}) };
  const plan = await resolveRunConfig(job);
  // The engine before any scanning: a backend that cannot load is refused at once, with its
  // reason, and leaves no folder behind. A folder made without training needs none.
  const backend = opts.noTraining ? null : await startEngine(job);
  const sources = await scanAndSplit(job, plan);
  chooseStart(job, plan, sources);
  try {
    const tokenizer = await prepareTokenizer(job, plan, sources);
    const tokens = await tokenizeSplits(job, plan, sources, tokenizer);
    if (!backend) {
      const made = await keepParentWeights(job, plan, sources, tokens);
      await clearRunCache(job.outDir);
      return made;
    }
    capFineTunePasses(job, plan, tokens);
    await writeInitialConfig(job, plan, sources, tokens, backend);
    const gpt = await startModel(plan);
    const { result, trainMs } = await runTraining(job, plan, gpt, tokens, backend);
    const config = await recordResult(job, result, trainMs);
    if (result.stopReason !== 'cancelled') {
      if (!opts.skipExport) await exportForServing(job, plan, tokens);
      await clearRunCache(job.outDir); // complete: nothing left to resume
    }
    return { modelDir: job.outDir, config, result };
  } finally {
    // The model folder holds no training data: token files go however the run ends (a later run
    // tokenizes again); a stopped run's resume state stays in the run cache (model/runCache.ts).
    await clearTokenFiles(job.outDir);
  }
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
  restart?: boolean; // resumed, but killed before its first checkpoint: step 0 again, as config.json planned it
  parentDir?: string; // the model folder whose tokenizer and weights we start from: a fine-tune's, or the base (chooseStart)
  parent?: ModelFolderConfig; // its config.json
  base: BaseModel | null; // the base model, where one was given and may be started from
  start: RunStart;
  fineTune?: FineTuneMode; // what a run from a parent trains (kept in config.json); absent: from scratch, everything
}

/** 1. Configuration: preset, parent model (fine-tune), the base, or the run being resumed. */
async function resolveRunConfig({ opts, outDir }: Job): Promise<RunPlan> {
  const parentDir = opts.init ? path.resolve(opts.init) : undefined;
  const parent = parentDir ? await readModelConfig(parentDir) : undefined;
  // A run killed before it wrote config.json left nothing to resume: it starts again as the options
  // say (an outDir that does not exist is still an error, from readModelConfig).
  const previous = opts.resume && (hasModelConfig(outDir) || !existsSync(outDir)) ? await readModelConfig(outDir) : undefined;
  if (opts.noTraining && (opts.resume || opts.files || opts.fromScratch)) {
    throw new UserError('a folder made without training serves the base (or the model given) as it is, over the whole workspace: it does not resume, take a scope or start from scratch');
  }
  if (opts.loraRank !== undefined && opts.freezeLayers) throw new UserError('fine-tune the last layers or low-rank adapters, not both');
  if (opts.loraRank !== undefined && (opts.fromScratch || opts.noTraining)) {
    throw new UserError(`low-rank adapters need pre-trained weights to adapt, and ${opts.fromScratch ? 'a run from scratch has none' : 'a folder made without training trains nothing'}`);
  }
  const base = previous || parent || opts.fromScratch || !opts.base ? null : await findBaseModel(path.resolve(opts.base));
  if (opts.loraRank !== undefined && !previous && !parent && !base) {
    throw new UserError(`low-rank adapters need pre-trained weights to adapt, and this run has none (${opts.base ? `no base model at ${path.resolve(opts.base)}` : 'no base model given'}); hint: leave out the adapters to train from scratch`);
  }
  if (opts.noTraining && !parent && !base) {
    throw new UserError(`no base model to serve without training${opts.base ? ` (none at ${path.resolve(opts.base)})` : ''}; hint: train for some minutes instead, or point WLM_BASE_MODEL at a base model folder`);
  }
  // Without training the base's own preset describes the folder; a preset asked for must match it.
  const preset = loadPreset(previous?.preset ?? parent?.preset ?? opts.preset ?? (opts.noTraining ? base!.config.preset : DEFAULT_PRESET));
  if (opts.noTraining && base && !sameArchitecture(preset.model, base.config.model)) {
    throw new UserError(`the ${preset.name} preset is not the base model's architecture (${describeArchitecture(base.config)}); a folder made without training keeps the base's`);
  }
  const model: GPTConfig = previous?.model ?? parent?.model ?? preset.model;
  const train: TrainConfig = { ...DEFAULT_TRAIN, ...(previous?.train ?? preset.train) }; // settings added since an old run take their defaults
  if (!previous) {
    if (opts.steps !== undefined) planSteps(train, opts.steps);
    if (opts.minutes !== undefined) train.maxMinutes = opts.minutes;
    if (opts.learningRate !== undefined) setPeakRate(train, opts.learningRate);
    if (opts.summaryRate !== undefined) train.summaryRate = opts.summaryRate;
    if (opts.fimRate !== undefined) train.fimRate = opts.fimRate;
    if (opts.patience !== undefined) train.patience = opts.patience;
  }
  validateGPTConfig(model);
  validateTrainConfig(train);
  const scratch = opts.fromScratch ? 'asked for' : opts.base ? `no base model at ${path.resolve(opts.base)}` : 'no base model given';
  const start: RunStart = previous?.start ?? (parent ? { from: 'model', reason: `fine-tuning ${parentDir}` } : { from: 'scratch', reason: scratch });
  const resumable = previous !== undefined && hasResumeState(outDir);
  // A completed run left no resume state: run again, it would start over and overwrite the model.
  if (previous && !resumable && previous.stopReason !== undefined && previous.stopReason !== 'cancelled') {
    throw new UserError(`${outDir} holds a finished run (${previous.stopReason} at step ${previous.step}): there is nothing to resume; hint: fine-tune it, or train into a new folder`);
  }
  const restart = previous !== undefined && !resumable;
  // A resumed run trains what it trained; a fine-tune of the base is decided once chooseStart takes it.
  const fineTune = previous ? previous.fineTune : parent && !opts.noTraining ? fineTuneMode(opts, model) : undefined;
  if (fineTune && !previous) fineTuneRate(train, fineTune, opts);
  return { preset, model, train, previous, restart, parentDir, parent, base, start, fineTune };
}

/** The run's steps set to `steps`, its warm-up no more than a tenth of them. */
function planSteps(train: TrainConfig, steps: number): void {
  train.maxSteps = steps;
  train.warmupSteps = Math.min(train.warmupSteps, Math.max(1, Math.floor(steps / 10)));
}

/** The peak learning rate set to `peak`, its floor moved in proportion. */
function setPeakRate(train: TrainConfig, peak: number): void {
  train.minLearningRate = (train.minLearningRate / train.learningRate) * peak;
  train.learningRate = peak;
}

/**
 * A run that trains pre-trained weights (the whole model or its last layers) peaks at the preset's
 * fineTuneLearningRate, unless a rate was asked for: at the from-scratch rate the base forgets
 * faster than a small workspace teaches it, and learns it by heart within a few passes. The
 * small preset's base fine-tuned 1,429 steps (5 minutes on 2 cores) on the rxjs files the bench
 * trains on (215 files, 220k tokens; 20 more held out), best held-out loss by peak rate: 0.002
 * 2.620, 0.0007 2.413, 0.0003 2.372, 0.00015 2.362 (flat from step 600 on), 0.00008 2.353 (still
 * falling, and 0.08 behind 0.00015 at step 300: too slow for a short run).
 * Adapters start from zero and keep learningRate.
 */
function fineTuneRate(train: TrainConfig, fineTune: FineTuneMode, opts: TrainOnFolderOptions): void {
  if (opts.learningRate === undefined && fineTune.mode !== 'lora') setPeakRate(train, train.fineTuneLearningRate);
}

/** What a run from a parent trains, as asked: low-rank adapters, the blocks above the frozen ones, or everything. */
function fineTuneMode(opts: TrainOnFolderOptions, model: GPTConfig): FineTuneMode {
  if (opts.loraRank !== undefined) {
    const lora = loraConfig(opts.loraRank);
    validateLoraConfig(lora, model);
    return { mode: 'lora', ...lora };
  }
  return opts.freezeLayers ? { mode: 'lastLayers', freezeLayers: opts.freezeLayers } : { mode: 'full' };
}

function describeArchitecture(config: ModelFolderConfig): string {
  const m = config.model;
  return `the ${config.preset} preset's: context ${m.blockSize}, ${m.nLayer} layers, ${m.nHead} heads, width ${m.nEmbd}`;
}

interface Sources {
  scan: ScanResult;
  chosen: SourceFile[]; // what the GPT learns from: the scan, or the files asked for
  split: { train: SourceFile[]; val: SourceFile[] };
  // When the GPT learns from some files only: the whole scan's split, for the n-gram and the mixture.
  workspace?: { train: SourceFile[]; val: SourceFile[] };
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
  const split = (files: SourceFile[]) => splitFiles(files, plan.train.valFraction, plan.train.seed);
  // A scoped run updates the completion mixture's n-gram with its files by counting the whole
  // workspace again, not by adding the scope to the parent's counts: a changed file's old version
  // (already in the parent's counts) and a deleted file then count for nothing, and tokenizing and
  // counting a workspace takes seconds next to the fine-tune's minutes.
  return { scan, chosen, split: split(chosen), workspace: opts.files ? split(scan.files) : undefined };
}

/**
 * 3. Where the weights start, and why, said once and kept in config.json: the run resumed or the
 * model fine-tuned as they are; else the base, where the preset has its architecture and the
 * workspace is mostly in its languages; else from scratch. A folder made without training takes
 * the base whatever the language: the mixture's fit on held-out tokens weighs its GPT.
 */
function chooseStart({ opts, emit }: Job, plan: RunPlan, sources: Sources): void {
  const base = plan.base;
  if (!base) {
    if (opts.base && !plan.previous && !plan.parentDir && !opts.fromScratch) emit({ type: 'status', message: `training from scratch with a tokenizer of its own: ${plan.start.reason}` });
    return;
  }
  const share = baseLanguageShare(sources.workspace ? sources.scan.files : sources.chosen);
  const percent = `${Math.round(100 * share)}%`;
  let scratch: string | null = null;
  if (!sameArchitecture(plan.preset.model, base.config.model)) {
    scratch = `the ${plan.preset.name} preset is not the base model's architecture (${describeArchitecture(base.config)})`;
  } else if (share < MIN_BASE_LANGUAGE_SHARE && !opts.noTraining) {
    scratch = `${percent} of this workspace's source bytes are ${BASE_LANGUAGE_NAME}, the languages the base model was pre-trained on (it needs ${Math.round(100 * MIN_BASE_LANGUAGE_SHARE)}%)`;
  }
  if (scratch) {
    if (opts.loraRank !== undefined) throw new UserError(`low-rank adapters need pre-trained weights to adapt, and this run cannot start from the base: ${scratch}; hint: leave out the adapters to train from scratch`);
    plan.start = { from: 'scratch', reason: scratch, baseLanguageShare: share };
    emit({ type: 'status', message: `training from scratch with a tokenizer of its own: ${scratch}` });
    return;
  }
  plan.parentDir = base.dir;
  plan.parent = base.config;
  plan.model = base.config.model;
  if (!opts.noTraining) {
    plan.fineTune = fineTuneMode(opts, plan.model);
    fineTuneRate(plan.train, plan.fineTune, opts);
  }
  const verb = opts.noTraining ? 'serving the pre-trained base as it is' : 'fine-tuning the pre-trained base';
  const note = share < MIN_BASE_LANGUAGE_SHARE ? `; only ${percent} of this workspace is ${BASE_LANGUAGE_NAME}, so the completion mixture's fit decides how far its GPT is trusted` : '';
  plan.start = { from: 'base', reason: `${verb} (${base.dir})${note}`, baseLanguageShare: share };
  emit({ type: 'status', message: plan.start.reason });
}

/** A tokenizer in outDir: the resumed run's own, the parent's (fine-tune, base), or a new BPE trained on the training files. */
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
  train: TokenizeResult; // the GPT's training files
  val: TokenizeResult;
  workspace?: { train: TokenizeResult; val: TokenizeResult }; // a scoped run: the whole workspace's, for the n-gram
  summaryPairs: { mined: number; mixed: number; tokens: number };
  trainStream: TokenStream;
  valStream: TokenStream; // the training stream when the held-out files are too short
}

/**
 * Token files in the run cache beside the model folder (model/runCache.ts), opened as streams.
 * train.bin and val.bin are the workspace's split: the completion mixture's n-gram counts the one
 * and its weights are fitted on the other. A scoped run's GPT learns from scope-train.bin and
 * scope-val.bin instead. They go when the run ends.
 */
async function tokenizeSplits({ opts, folder, outDir, emit }: Job, plan: RunPlan, sources: Sources, tokenizer: CodeTokenizer): Promise<Tokens> {
  const { model, train: trainConfig } = plan;
  // Summary and FIM examples are for a GPT to learn from; without training the n-gram counts plain code.
  const fimRate = opts.noTraining ? 0 : trainConfig.fimRate;
  const summaryRate = opts.noTraining ? 0 : trainConfig.summaryRate;
  const tokenize = async (split: { train: SourceFile[]; val: SourceFile[] }, prefix: string) => ({
    // Summary examples come from the training files only: held-out doc comments stay unseen for evaluation.
    train: await tokenizeFiles(split.train, tokenizer, tokenFile(outDir, `${prefix}train.bin`), {
      fimRate, summaryRate, blockSize: model.blockSize, seed: trainConfig.seed, signal: opts.signal,
    }),
    val: await tokenizeFiles(split.val, tokenizer, tokenFile(outDir, `${prefix}val.bin`), { seed: trainConfig.seed, signal: opts.signal }),
  });
  emit({ type: 'status', message: 'tokenizing' });
  const prefix = sources.workspace ? 'scope-' : '';
  const { train, val } = await tokenize(sources.split, prefix);
  const summaryPairs = train.summaries ?? { mined: 0, mixed: 0, tokens: 0 };
  if (summaryRate > 0) {
    emit({ type: 'status', message: `summary examples: ${summaryPairs.mixed} of ${summaryPairs.mined} documented definitions (${summaryPairs.tokens} tokens)` });
  }
  let workspace: Tokens['workspace'];
  if (sources.workspace) {
    emit({ type: 'status', message: `tokenizing the whole workspace (${sources.workspace.train.length + sources.workspace.val.length} files) for the completion mixture's n-gram` });
    workspace = await tokenize(sources.workspace, '');
  }
  const trainStream = openTokenStream(tokenFile(outDir, `${prefix}train.bin`));
  let valStream = openTokenStream(tokenFile(outDir, `${prefix}val.bin`));
  if (opts.noTraining) {
    if (trainStream.length === 0) throw new UserError(`no tokens to count in ${folder}: the workspace's training files are empty`);
    return { train, val, summaryPairs, trainStream, valStream };
  }
  // A workspace whose held-out files are too short to fill one window validates on training data;
  // the figures then say less, so the event says so.
  if (valStream.length < model.blockSize + 1) {
    emit({ type: 'status', message: `validation files hold only ${valStream.length} tokens; validating on training data` });
    valStream = trainStream;
  }
  if (trainStream.length < model.blockSize + 1) {
    throw new UserError(`only ${trainStream.length} training tokens in ${folder}; need at least ${model.blockSize + 1} for one window of the ${plan.preset.name} preset`);
  }
  return { train, val, workspace, summaryPairs, trainStream, valStream };
}

/**
 * 4 without training (wlm train --minutes 0): the parent's weights, byte for byte, beside its
 * tokenizer and the workspace's token files; then the same export as a trained run.
 */
async function keepParentWeights(job: Job, plan: RunPlan, sources: Sources, tokens: Tokens): Promise<TrainOnFolderResult> {
  const { opts, outDir, emit } = job;
  const started = Date.now();
  await writeInitialConfig(job, plan, sources, tokens, { name: 'none', device: 'none (no gradient step)' });
  for (const file of ['model.json', 'weights.bin']) {
    const partial = path.join(outDir, `.${file}.${process.pid}.tmp`);
    await fs.copyFile(path.join(plan.parentDir!, file), partial);
    await fs.rename(partial, path.join(outDir, file));
  }
  emit({ type: 'status', message: `kept the weights of ${plan.parentDir} (no gradient step)` });
  if (!opts.skipExport) await exportForServing(job, plan, tokens);
  const config = await updateModelConfig(outDir, { stopReason: 'noTraining', timings: { prepareMs: Date.now() - started } });
  const result: RunResult = { step: 0, tokens: 0, bestValLoss: null, lastTrainLoss: null, tokensPerSecond: 0, stopReason: 'noTraining', elapsedMs: 0, workers: 0 };
  return { modelDir: outDir, config, result };
}

/** The training engine, chosen before anything is read or written (the GPT's tensors live on it). */
async function startEngine({ opts, emit }: Job): Promise<BackendChoice> {
  const backend = await selectBackend(opts.backend);
  emit({ type: 'backend', name: backend.name, device: backend.device, fallbacks: backend.fallbacks });
  return backend;
}

/** config.json as the run starts; a resumed run keeps its own, with this run's backend. */
async function writeInitialConfig({ opts, folder, outDir }: Job, plan: RunPlan, sources: Sources, tokens: Tokens, backend: { name: string; device: string }): Promise<void> {
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
      exclude: opts.exclude?.length ? opts.exclude : undefined,
      files: { train: sources.split.train.length, val: sources.split.val.length },
      tokens: { train: tokens.train.tokens, val: tokens.val.tokens },
      bytes: totalBytes(sources.chosen),
      skipped: sources.scan.skipped,
      gitCommit: gitCommit(folder),
      // (code, summary) pairs: found in the training files, and mixed into train.bin at train.summaryRate.
      summaryPairs: tokens.summaryPairs,
      workspace: sources.workspace && tokens.workspace ? {
        files: { train: sources.workspace.train.length, val: sources.workspace.val.length },
        tokens: { train: tokens.workspace.train.tokens, val: tokens.workspace.val.tokens },
      } : undefined,
    },
    timings: {},
    parent: plan.parentDir,
    start: plan.start,
    fineTune: plan.fineTune,
  };
  // Without training, the folder's GPT knows what its parent's learnt: FIM and summaries included.
  if (opts.noTraining && plan.parent) config.train = { ...config.train, fimRate: plan.parent.train.fimRate, summaryRate: plan.parent.train.summaryRate };
  config.backend = { name: backend.name, device: backend.device };
  await writeModelConfig(outDir, config);
}

/** The GPT from the seed; a fine-tune (of a model, or of the base) then takes its parent's weights (a resumed run loads its own in train.ts). */
async function startModel(plan: RunPlan): Promise<GPT> {
  const gpt = new GPT(plan.model, { seed: plan.train.seed });
  // A restarted run starts from the parent its config.json names (a fine-tune's model, the base).
  const from = plan.previous ? (plan.restart ? plan.previous.parent : undefined) : plan.parentDir;
  if (from) gpt.loadWeights(await readWeights(from));
  return gpt;
}

// A fine-tune of the whole model on the whole workspace plans at most this many passes over its
// training tokens: the schedule's cooldown then comes before the workspace is learnt by heart, and
// a small workspace's run ends sooner. At the fine-tune rate the base's held-out loss bottomed out after
// about 10 passes on both bench workspaces (rxjs 240k tokens: step 1,150 of a 15-minute plan,
// 9.8 passes; msw 90k: step 500, 11.4 passes) and climbed after. On rxjs the 15-minute run so
// planned ends at step 1,173 instead of stopping early at 1,650 at its peak rate, 0.003 bits per
// byte lower; on all 1,752 held-out lines the editor's line-start edit similarity is 0.84 ± 0.30
// higher and its mid-line exact match 0.9 ± 0.3 points lower, the other figures unchanged.
const FINE_TUNE_MAX_PASSES = 10;

/** A fine-tune's steps cut to FINE_TUNE_MAX_PASSES over the workspace's training tokens, once they are counted (the cooldown is planned on them). */
function capFineTunePasses({ emit }: Job, plan: RunPlan, tokens: Tokens): void {
  // Measured for the whole model only: the last layers and adapters learn less per step. A resumed
  // run keeps its plan; a run scoped to some files (changed, chosen) trains on them as asked.
  if (plan.fineTune?.mode !== 'full' || plan.previous || tokens.workspace) return;
  const { train } = plan;
  const tokensPerStep = train.batchSize * plan.model.blockSize;
  const cap = Math.max(1, Math.ceil((FINE_TUNE_MAX_PASSES * tokens.trainStream.length) / tokensPerStep));
  if (cap >= train.maxSteps) return;
  emit({ type: 'status', message: `training at most ${cap} steps (${FINE_TUNE_MAX_PASSES} passes over the ${tokens.trainStream.length.toLocaleString('en-US')} training tokens), not ${train.maxSteps}: a fine-tune learns a workspace this size by heart after that` });
  planSteps(train, cap);
}

/** 4. Train. */
async function runTraining({ opts, outDir, emit }: Job, plan: RunPlan, gpt: GPT, tokens: Tokens, backend: BackendChoice): Promise<{ result: TrainResult; trainMs: number }> {
  const { model, train: trainConfig } = plan;
  if (plan.fineTune?.mode === 'lora') {
    emit({ type: 'status', message: `training low-rank adapters of rank ${plan.fineTune.rank} on every block's attention and MLP matrices; the weights stay fixed and take the adapters in when saved` });
  }
  const started = Date.now();
  const result = await train({
    model: gpt,
    config: trainConfig,
    data: { train: new BatchSampler(tokens.trainStream, model.blockSize, trainConfig.seed), val: new BatchSampler(tokens.valStream, model.blockSize, trainConfig.seed + 1) },
    outDir,
    stateDir: trainingStateDir(outDir),
    signal: opts.signal,
    resume: Boolean(plan.previous) && !plan.restart,
    freezeLayers: plan.fineTune?.mode === 'lastLayers' ? plan.fineTune.freezeLayers : undefined,
    lora: plan.fineTune?.mode === 'lora' ? { rank: plan.fineTune.rank, alpha: plan.fineTune.alpha } : undefined,
    gradientEngine: backend.name === 'onnxruntime' ? 'onnxruntime' : 'tfjs',
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
async function exportForServing({ opts, outDir, emit }: Job, plan: RunPlan, tokens: Tokens): Promise<void> {
  const exported = await exportOnnx(outDir);
  emit({ type: 'export', ...exported });
  // What the editor serves: the GPT mixed with the workspace n-gram and the open-files cache,
  // weights fitted on the workspace's held-out tokens (mixture.ts).
  const heldOut = (tokens.workspace ?? tokens).val.tokens;
  if (heldOut < plan.model.blockSize + 1) {
    emit({ type: 'status', message: `no completion mixture: the held-out files hold ${heldOut} tokens, too few to fit its weights on; the GPT serves alone` });
    return;
  }
  emit({ type: 'status', message: 'fitting the completion mixture (GPT + workspace n-gram + cache)' });
  const mixtureStarted = Date.now();
  await CompletionSession.buildMixture(outDir, { signal: opts.signal, tokens: { train: tokenFile(outDir, 'train.bin'), val: tokenFile(outDir, 'val.bin') } });
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
