// The main job, end to end: folder of code → tokenizer → token files → GPT trained → model folder
// (config, tokenizer, weights, metrics, model.onnx). Used by the CLI and the language server's
// worker; it reports through one `onEvent` callback and knows nothing about terminals or LSP.
import { promises as fs, existsSync } from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DEFAULT_TRAIN, loadPreset, validateGPTConfig, validateTrainConfig, type GPTConfig, type TrainConfig, type PresetName } from './model/config';
import { scanFolder, readSourceText, type ScanResult, type SourceFile } from './data/files';
import { CodeTokenizer } from './data/tokenizer';
import { splitFiles, tokenizeFiles, openTokenStream, BatchSampler } from './data/dataset';
import { selectBackend, type BackendName } from './train/backend';
import { GPT } from './model/gpt';
import { train, type StepMetrics, type TrainResult } from './train/train';
import { readModelConfig, readWeights, type ModelFolderConfig } from './model/checkpoint';
import { exportOnnx } from './model/onnx';
import { CompletionSession } from './infer/session';
import { writeFileAtomic } from './util/atomicFiles';
import { UserError } from './util/errors';

export interface TrainOnFolderOptions {
  folder: string; // the code to learn from
  outDir: string; // the model folder to create (or resume)
  preset?: PresetName | string; // default 'small'
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

export { UserError };

export async function trainOnFolder(opts: TrainOnFolderOptions): Promise<TrainOnFolderResult> {
  const emit = opts.onEvent ?? (() => {});
  const folder = path.resolve(opts.folder);
  const outDir = path.resolve(opts.outDir);

  // 1. Configuration: preset, parent model (fine-tune) or the run being resumed.
  const parent = opts.init ? await readModelConfig(path.resolve(opts.init)) : undefined;
  const previous = opts.resume ? await readModelConfig(outDir) : undefined;
  const preset = loadPreset(previous?.preset ?? parent?.preset ?? opts.preset ?? 'small');
  const model: GPTConfig = previous?.model ?? parent?.model ?? preset.model;
  const trainConfig: TrainConfig = { ...DEFAULT_TRAIN, ...(previous?.train ?? preset.train) }; // settings added since an old run take their defaults
  if (!previous) {
    if (opts.steps !== undefined) trainConfig.maxSteps = opts.steps;
    if (opts.minutes !== undefined) trainConfig.maxMinutes = opts.minutes;
    if (opts.learningRate !== undefined) {
      trainConfig.minLearningRate = (trainConfig.minLearningRate / trainConfig.learningRate) * opts.learningRate;
      trainConfig.learningRate = opts.learningRate;
    }
    if (opts.summaryRate !== undefined) trainConfig.summaryRate = opts.summaryRate;
    if (opts.fimRate !== undefined) trainConfig.fimRate = opts.fimRate;
    if (opts.steps !== undefined) trainConfig.warmupSteps = Math.min(trainConfig.warmupSteps, Math.max(1, Math.floor(opts.steps / 10)));
  }
  validateGPTConfig(model);
  validateTrainConfig(trainConfig);

  // 2. Data: which files, split by file, a tokenizer, token files on disk.
  emit({ type: 'status', message: `scanning ${folder}` });
  const scan = await scanFolder(folder, { exclude: opts.exclude });
  const chosen = opts.files ? selectFiles(scan, opts.files) : scan.files;
  emit({ type: 'scan', files: chosen.length, bytes: chosen.reduce((n, f) => n + f.bytes, 0), skipped: scan.skipped });
  if (chosen.length === 0) {
    throw new UserError(`no source files to train on in ${folder} (skipped: ${describeSkipped(scan.skipped)})`);
  }
  const split = splitFiles(chosen, trainConfig.valFraction, trainConfig.seed);

  await fs.mkdir(outDir, { recursive: true });
  const tokenizerFile = path.join(outDir, 'tokenizer.json');
  let tokenizer: CodeTokenizer;
  if (previous) {
    tokenizer = await CodeTokenizer.load(tokenizerFile);
  } else if (opts.init) {
    tokenizer = await CodeTokenizer.load(path.join(path.resolve(opts.init), 'tokenizer.json'));
    await tokenizer.save(tokenizerFile);
  } else {
    emit({ type: 'status', message: `training a ${model.vocabSize}-token BPE tokenizer on ${split.train.length} files` });
    tokenizer = await CodeTokenizer.train(readTexts(split.train), model.vocabSize);
    await tokenizer.save(tokenizerFile);
  }
  if (tokenizer.vocabSize !== model.vocabSize) {
    throw new UserError(`tokenizer has ${tokenizer.vocabSize} tokens but the model expects ${model.vocabSize}`);
  }

  const dataDir = path.join(outDir, 'data');
  emit({ type: 'status', message: 'tokenizing' });
  // Summary examples come from the training files only: held-out doc comments stay unseen for evaluation.
  const trainTokens = await tokenizeFiles(split.train, tokenizer, path.join(dataDir, 'train.bin'), {
    fimRate: trainConfig.fimRate, summaryRate: trainConfig.summaryRate, blockSize: model.blockSize, seed: trainConfig.seed, signal: opts.signal,
  });
  const summaryPairs = trainTokens.summaries ?? { mined: 0, mixed: 0, tokens: 0 };
  if (trainConfig.summaryRate > 0) {
    emit({ type: 'status', message: `summary examples: ${summaryPairs.mixed} of ${summaryPairs.mined} documented definitions (${summaryPairs.tokens} tokens)` });
  }
  const valTokens = await tokenizeFiles(split.val, tokenizer, path.join(dataDir, 'val.bin'), { seed: trainConfig.seed, signal: opts.signal });
  const trainStream = openTokenStream(path.join(dataDir, 'train.bin'));
  // A workspace whose held-out files are too short to fill one window validates on training data;
  // the figures then say less, so the event says so.
  let valStream = openTokenStream(path.join(dataDir, 'val.bin'));
  if (valStream.length < model.blockSize + 1) {
    emit({ type: 'status', message: `validation files hold only ${valStream.length} tokens; validating on training data` });
    valStream = trainStream;
  }
  if (trainStream.length < model.blockSize + 1) {
    throw new UserError(`only ${trainStream.length} training tokens in ${folder}; need at least ${model.blockSize + 1} for one window of the ${preset.name} preset`);
  }

  // 3. Engine and model.
  const backend = await selectBackend(opts.backend);
  emit({ type: 'backend', name: backend.name, device: backend.device, fallbacks: backend.fallbacks });
  const gpt = new GPT(model, { seed: trainConfig.seed });

  const data = {
    root: folder,
    files: { train: split.train.length, val: split.val.length },
    tokens: { train: trainTokens.tokens, val: valTokens.tokens },
    bytes: chosen.reduce((n, f) => n + f.bytes, 0),
    skipped: scan.skipped,
    gitCommit: gitCommit(folder),
    // (code, summary) pairs: found in the training files, and mixed into train.bin at train.summaryRate.
    summaryPairs,
  };
  const config: ModelFolderConfig = previous ?? {
    formatVersion: 1,
    kind: 'workspace-lm-model',
    name: opts.name ?? path.basename(outDir),
    createdAt: new Date().toISOString(),
    preset: preset.name,
    model,
    train: trainConfig,
    step: 0,
    bestValLoss: null,
    backend: { name: backend.name, device: backend.device },
    data,
    timings: {},
    parent: opts.init ? path.resolve(opts.init) : undefined,
  };
  config.backend = { name: backend.name, device: backend.device };
  await writeFileAtomic(path.join(outDir, 'config.json'), JSON.stringify(config, null, 2));

  if (opts.init && !previous) {
    const weights = await readWeights(path.resolve(opts.init));
    gpt.loadWeights(weights);
  }

  // 4. Train.
  const started = Date.now();
  const result = await train({
    model: gpt,
    config: trainConfig,
    data: { train: new BatchSampler(trainStream, model.blockSize, trainConfig.seed), val: new BatchSampler(valStream, model.blockSize, trainConfig.seed + 1) },
    outDir,
    signal: opts.signal,
    resume: Boolean(previous),
    freezeLayers: opts.freezeLayers,
    onLog: (metrics) => emit({ type: 'log', metrics, maxSteps: trainConfig.maxSteps }),
  });
  gpt.dispose();
  if (result.workersNote) emit({ type: 'status', message: `trained on ${result.workers} thread(s): ${result.workersNote}` });

  // 5. Record what happened, then export for serving.
  const final: ModelFolderConfig = {
    ...(await readModelConfig(outDir)),
    step: result.step,
    bestValLoss: result.bestValLoss,
    timings: { trainMs: Date.now() - started, tokensPerSecond: result.tokensPerSecond, gradientWorkers: result.workers },
    stopReason: result.stopReason,
  };
  await writeFileAtomic(path.join(outDir, 'config.json'), JSON.stringify(final, null, 2));
  if (result.stopReason !== 'cancelled' && !opts.skipExport) {
    const exported = await exportOnnx(outDir);
    emit({ type: 'export', ...exported });
    // What the editor serves: the GPT mixed with the workspace n-gram and the open-files cache,
    // weights fitted on the held-out tokens (mixture.ts).
    emit({ type: 'status', message: 'fitting the completion mixture (GPT + workspace n-gram + cache)' });
    const mixtureStarted = Date.now();
    await CompletionSession.buildMixture(outDir, { signal: opts.signal });
    emit({ type: 'mixture', ms: Date.now() - mixtureStarted });
  }
  return { modelDir: outDir, config: final, result };
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
