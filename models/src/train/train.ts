// The training loop, one flat loop (nanoGPT's train.py): learning rate → step (micro-batches,
// clip, AdamW) → evaluate → checkpoint → log; its setup and the bodies of those steps are the
// helpers below it, in the order they are called. It knows the GPT and the model folder (through
// checkpoint.ts), and hears of data only through batch sources; progress leaves only through
// callbacks and metrics.jsonl. It does not read source files, tokenize, or pick a backend.
import * as tf from '@tensorflow/tfjs-core';
import { promises as fs, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LoraConfig, TrainConfig } from '../model/config';
import type { Batch } from '../data/dataset';
import type { GPT } from '../model/gpt';
import { AdamW, addScaled, globalNorm } from './optim';
import { LowRankAdapters } from './lora';
import { hasTrainingState, loadTrainingState, recordProgress, saveTrainingState, writeWeights, type WeightTensor } from '../model/checkpoint';
import { writeFileAtomic, appendJsonLine } from '../util/atomicFiles';
import { GradientWorkers } from './parallel';
import { OnnxGradients } from './onnxGradients';
import { readMetricsLog, type StepMetrics } from './metricsLog';

export type { StepMetrics }; // metrics.jsonl's record, declared with its reader in metricsLog.ts

export interface EvalEvent {
  step: number;
  valLoss: number;
  bestValLoss: number;
  improved: boolean; // the best weights were saved
}

export type StopReason = 'maxSteps' | 'maxMinutes' | 'earlyStop' | 'cancelled';

export interface TrainResult {
  step: number;
  tokens: number;
  bestValLoss: number | null;
  lastTrainLoss: number | null;
  tokensPerSecond: number; // this run's training tokens over its step time
  stopReason: StopReason;
  elapsedMs: number;
  workers: number; // threads computing gradients: tfjs's worker threads (1: this thread), or onnxruntime's
  workersNote?: string; // why fewer workers than asked for
}

export interface TrainData {
  train: { batch(step: number, micro: number, size: number): Batch };
  val: { fixedBatches(count: number, size: number): Batch[] };
}

export interface TrainOptions {
  model: GPT;
  config: TrainConfig;
  data: TrainData;
  outDir: string; // the model folder: best weights at its root, resume state in resume/
  signal?: AbortSignal; // stops between steps; the last good checkpoint stays as it was
  resume?: boolean; // continue from outDir/resume exactly where it stopped
  stateDir?: string; // where resume/ lives instead of outDir: a pipeline run keeps it in the run cache beside the model folder (model/runCache.ts)
  freezeLayers?: number; // fine-tune: embeddings and the lowest K blocks are not updated
  lora?: LoraConfig; // fine-tune: low-rank adapters on every block's matrices are trained, the weights stay (lora.ts); the weights saved are merged
  workers?: number; // data-parallel gradient threads; default 2 on wasm with 2+ cores (WLM_TRAIN_THREADS overrides, as it sets onnxruntime's threads), else 1
  // 'onnxruntime': loss and gradients from onnxruntime on the CPU's cores (onnxGradients.ts), the
  // backend 'onnxruntime' of backend.ts; 'tfjs' (default): from the GPT's tfjs backend.
  gradientEngine?: 'onnxruntime' | 'tfjs';
  onLog?(m: StepMetrics): void;
  onEval?(e: EvalEvent): void;
  onCheckpoint?(step: number): void;
}

/**
 * Linear warm-up from 0, the peak rate, then a cosine decay to minLearningRate over the last
 * cooldownFraction of the run (1: from the end of warm-up on). The run ends at maxSteps or when
 * the wall-clock budget (maxMinutes) is spent, whichever comes first: a schedule planned for more
 * steps than the budget allows would never decay. `elapsedMs` is the training time so far.
 */
export function learningRateAt(step: number, c: TrainConfig, elapsedMs = 0): number {
  if (step < c.warmupSteps) return (c.learningRate * (step + 1)) / (c.warmupSteps + 1);
  const bySteps = (step - c.warmupSteps) / Math.max(1, c.maxSteps - c.warmupSteps);
  const byTime = c.maxMinutes > 0 ? elapsedMs / (c.maxMinutes * 60_000) : 0;
  const progress = Math.min(1, Math.max(bySteps, byTime));
  const cooldown = Math.max(0, progress - (1 - c.cooldownFraction)) / Math.max(c.cooldownFraction, 1e-9); // 0 → 1 over the cooldown
  return c.minLearningRate + 0.5 * (1 + Math.cos(Math.PI * cooldown)) * (c.learningRate - c.minLearningRate);
}

/**
 * Weight decay goes to the matrices, embeddings included (as in nanoGPT: the tied wte is also the
 * output layer), never to biases or LayerNorm parameters.
 */
export function isDecayed(shape: readonly number[]): boolean {
  return shape.length === 2;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const c = opts.config;
  const run = await startRun(opts);
  try {
    const budgetMs = c.maxMinutes > 0 ? c.maxMinutes * 60_000 : Infinity;
    let stopReason: StopReason = 'maxSteps';
    for (;;) {
      if (run.step >= c.maxSteps) { stopReason = 'maxSteps'; break; }
      if (opts.signal?.aborted) { stopReason = 'cancelled'; break; }
      if (elapsed(run) >= budgetMs) { stopReason = 'maxMinutes'; break; } // the budget spans resumes, like the schedule

      const lr = learningRateAt(run.step, c, elapsed(run));
      const step = await optimizerStep(run, lr);
      const valLoss = run.step % c.evalInterval === 0 ? await evaluateAndCheckpoint(run) : undefined;
      if (run.step % c.logInterval === 0 || valLoss !== undefined) await logStep(run, step, lr, valLoss);
      if (valLoss !== undefined && c.patience > 0 && run.evalsWithoutImprovement >= c.patience) { stopReason = 'earlyStop'; break; }
    }
    return await finishRun(run, stopReason);
  } finally {
    await run.pool?.close();
    await run.onnx?.close();
  }
}

/** What one call of train() works on and counts; the counters go into the resume state. */
interface Run extends Counters {
  opts: TrainOptions;
  metricsFile: string;
  shapes: Map<string, number[]>; // of every parameter
  master: Map<string, Float32Array>; // host copies of the weights: AdamW updates them, then the tfjs variables
  trainable: string[]; // the parameters whose gradients are computed
  lora?: LowRankAdapters; // LoRA: AdamW updates these instead, merged into `master` after each step
  optimizer: AdamW;
  grads: Map<string, Float32Array>; // reused every step
  valBatches: Batch[]; // the same windows at every evaluation
  pool?: GradientWorkers;
  onnx?: OnnxGradients; // the 'onnxruntime' engine: reads `master` itself
  workersNote?: string; // why fewer workers than asked for
  started: number; // when this run's loop began (Date.now())
  lastEvalStep: number;
  stepMsTotal: number; // this run's step time, evaluation excluded
  tokensThisRun: number;
  lastTrainLoss: number | null;
}

interface Counters {
  step: number; // optimizer steps completed, across resumes
  tokens: number; // training tokens seen, across resumes
  bestValLoss: number | null;
  evalsWithoutImprovement: number;
  elapsedBefore: number; // training wall time before this run
}

const elapsed = (run: Run): number => run.elapsedBefore + (Date.now() - run.started);

/** Master weights and optimizer, restored from resume/ or started afresh; then the gradient workers. */
async function startRun(opts: TrainOptions): Promise<Run> {
  const { model, config: c, outDir } = opts;
  const metricsFile = path.join(outDir, 'metrics.jsonl');
  await fs.mkdir(outDir, { recursive: true });

  // Host copies of the weights are the master copy: AdamW updates them, then the tfjs variables.
  const weights = await model.readWeights();
  const master = new Map<string, Float32Array>([...weights].map(([name, w]) => [name, w.data]));
  if (opts.lora && opts.freezeLayers) throw new Error('train: freezeLayers and lora are two fine-tune modes; choose one');
  const lora = opts.lora ? new LowRankAdapters(opts.lora, weights, c.seed) : undefined;
  const trainable = lora ? lora.adapted : [...model.params.keys()].filter((name) => !isFrozen(name, opts.freezeLayers ?? 0));
  const optimized = lora ? lora.params : new Map(trainable.map((name) => [name, master.get(name)!])); // what AdamW updates
  const optimizer = new AdamW(
    new Map([...optimized].map(([name, p]) => [name, p.length])),
    { beta1: c.beta1, beta2: c.beta2, eps: 1e-8, weightDecay: c.weightDecay },
    (name) => isDecayed(lora?.shapes.get(name) ?? weights.get(name)!.shape),
  );
  const counters = opts.resume ? await resumeCounters(opts, master, optimizer, metricsFile, lora) : await freshCounters(metricsFile);
  const valBatches = opts.data.val.fixedBatches(c.evalBatches, c.microBatchSize);
  const grads = new Map(trainable.map((name) => [name, new Float32Array(master.get(name)!.length)]));

  // What computes the gradients: onnxruntime on every core, or tfjs, either in data-parallel
  // workers (each takes a share of every micro-batch's rows) or in this thread.
  const { onnx, note: onnxNote } = opts.gradientEngine === 'onnxruntime' ? startOnnx(model, master, trainable) : {};
  const { pool, note: workersNote } = onnx ? {} : await startWorkers(opts.workers ?? defaultWorkers(), model, c, trainable);
  if (pool) for (const [name, data] of pool.weights) master.set(name, data); // shared: AdamW's updates reach the workers
  return {
    ...counters, opts, metricsFile, shapes: new Map([...weights].map(([name, w]) => [name, w.shape])), master, trainable, lora, optimizer, grads, valBatches,
    pool, onnx, workersNote: [onnxNote, workersNote].filter(Boolean).join('; ') || undefined, started: Date.now(), lastEvalStep: opts.resume ? counters.step : -1, stepMsTotal: 0, tokensThisRun: 0, lastTrainLoss: null,
  };
}

/** Loads resume/ into the model, the master weights, the adapters and the optimizer; returns its counters. */
async function resumeCounters(opts: TrainOptions, master: Map<string, Float32Array>, optimizer: AdamW, metricsFile: string, lora?: LowRankAdapters): Promise<Counters> {
  const stateDir = opts.stateDir ?? opts.outDir;
  if (!hasTrainingState(stateDir)) throw new Error(`nothing to resume in ${stateDir}: no resume/ state (hint: start a new run)`);
  const state = await loadTrainingState(stateDir);
  if (Boolean(lora) !== Boolean(state.adapters)) {
    throw new Error(`the run saved in ${stateDir} ${state.adapters ? 'trained low-rank adapters' : 'trained the weights themselves'}: resume it the same way`);
  }
  opts.model.loadWeights(state.weights);
  for (const [name, w] of state.weights) master.get(name)!.set(w.data);
  if (lora) {
    lora.restore(state.weights, state.adapters!); // resume/ holds W0 and the adapters apart
    lora.merge(master);
    for (const name of lora.adapted) opts.model.setParam(name, master.get(name)!);
  }
  optimizer.loadState(state.adamM, state.adamV);
  await truncateMetrics(metricsFile, state.step); // lines logged after the checkpoint are redone
  const { step, tokens, bestValLoss, evalsWithoutImprovement, elapsedMs } = state;
  return { step, tokens, bestValLoss, evalsWithoutImprovement, elapsedBefore: elapsedMs };
}

async function freshCounters(metricsFile: string): Promise<Counters> {
  await fs.rm(metricsFile, { force: true });
  return { step: 0, tokens: 0, bestValLoss: null, evalsWithoutImprovement: 0, elapsedBefore: 0 };
}

async function startWorkers(count: number, model: GPT, c: TrainConfig, trainable: string[]): Promise<{ pool?: GradientWorkers; note?: string }> {
  if (count <= 1) return {};
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'cpu') return { note: `worker threads are for CPU backends, not ${backend}` };
  if (c.microBatchSize < count) return { note: `microBatchSize ${c.microBatchSize} has fewer rows than ${count} workers` };
  const pool = await GradientWorkers.start(count, model, backend, trainable);
  return typeof pool === 'string' ? { note: pool } : { pool };
}

function startOnnx(model: GPT, master: Map<string, Float32Array>, trainable: string[]): { onnx?: OnnxGradients; note?: string } {
  const onnx = OnnxGradients.start(model.config, master, trainable);
  return typeof onnx === 'string' ? { note: `${onnx}; gradients from tfjs instead` } : { onnx };
}

/** Two gradient threads when tfjs runs on wasm (one thread each) and the machine has 2+ cores. */
function defaultWorkers(): number {
  const fromEnv = Number(process.env.WLM_TRAIN_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return tf.getBackend() === 'wasm' && os.availableParallelism() >= 2 ? 2 : 1;
}

interface StepTaken {
  loss: number; // mean over the step's batch
  gradNorm: number; // before clipping
  stepMs: number; // compute time of the step
  stepTokens: number;
}

/** One optimizer step: gradients summed over micro-batches, clipped, AdamW; then the counters. */
async function optimizerStep(run: Run, lr: number): Promise<StepTaken> {
  const { model, config: c, data } = run.opts;
  const { master, grads, pool, onnx, trainable } = run;
  const accumulation = c.batchSize / c.microBatchSize;
  const stepStart = performance.now();
  for (const g of grads.values()) g.fill(0);
  const micro = Array.from({ length: accumulation }, (_, m) => ({ batch: data.train.batch(run.step, m, c.microBatchSize), weight: 1 / accumulation }));
  const loss = onnx ? await onnx.gradients(micro, grads) : pool ? await pool.gradients(micro, grads) : await localGradients(model, trainable, micro, grads);
  // With LoRA the adapters are what is trained (and clipped): their gradients come from the merged matrices'.
  run.lora?.gradients(grads);
  const [params, trained] = run.lora ? [run.lora.params, run.lora.grads] : [master, grads];
  const gradNorm = globalNorm(trained.values());
  const clipScale = c.gradClip > 0 && gradNorm > c.gradClip ? c.gradClip / (gradNorm + 1e-6) : 1;
  run.optimizer.step(params, trained, lr, run.step + 1, clipScale);
  run.lora?.merge(master);
  if (!pool && !onnx) for (const name of trainable) model.setParam(name, master.get(name)!); // the engines read `master` itself
  const stepMs = performance.now() - stepStart;
  run.step++;
  const stepTokens = c.batchSize * model.config.blockSize;
  run.tokens += stepTokens;
  run.tokensThisRun += stepTokens;
  run.stepMsTotal += stepMs;
  run.lastTrainLoss = loss;
  if (!Number.isFinite(loss)) {
    throw new Error(`training diverged at step ${run.step}: loss is ${loss} (hint: lower the learning rate, now ${c.learningRate})`);
  }
  return { loss, gradNorm, stepMs, stepTokens };
}

/** Mean loss and gradients over weighted micro-batches, in this thread; gradients added into `into`. */
async function localGradients(model: GPT, trainable: string[], batches: { batch: Batch; weight: number }[], into: Map<string, Float32Array>): Promise<number> {
  const variables = trainable.map((name) => model.params.get(name)!);
  let loss = 0;
  for (const { batch, weight } of batches) {
    const [x, y] = tensors(batch);
    const { value, grads } = tf.variableGrads(() => model.loss(x, y), variables);
    loss += (await value.data())[0] * weight;
    for (const [k, name] of trainable.entries()) addScaled(into.get(name)!, (await grads[variables[k].name].data()) as Float32Array, weight);
    tf.dispose([x, y, value, ...Object.values(grads)]);
  }
  return loss;
}

function tensors(batch: Batch): [tf.Tensor2D, tf.Tensor2D] {
  const shape: [number, number] = [batch.batchSize, batch.blockSize];
  return [tf.tensor2d(batch.x, shape, 'int32'), tf.tensor2d(batch.y, shape, 'int32')];
}

/** Evaluate, keep the best weights as THE model, save the resume state. Returns the val loss. */
async function evaluateAndCheckpoint(run: Run): Promise<number> {
  const { model, outDir } = run.opts;
  const valLoss = await evaluate(run);
  const improved = run.bestValLoss === null || valLoss < run.bestValLoss;
  if (improved) {
    run.bestValLoss = valLoss;
    run.evalsWithoutImprovement = 0;
    await writeWeights(outDir, hostWeights(run), model.config);
  } else {
    run.evalsWithoutImprovement++;
  }
  run.lastEvalStep = run.step;
  await checkpoint(run);
  run.opts.onEval?.({ step: run.step, valLoss, bestValLoss: run.bestValLoss!, improved });
  return valLoss;
}

/** Mean loss over the validation batches. Reads are asynchronous throughout: WebGPU under Node has no synchronous readback. */
async function evaluate(run: Run): Promise<number> {
  if (run.onnx) return run.onnx.evaluate(run.valBatches);
  if (run.pool) return run.pool.evaluate(run.valBatches);
  const model = run.opts.model;
  let sum = 0;
  for (const batch of run.valBatches) {
    const loss = tf.tidy(() => model.loss(...tensors(batch)));
    sum += (await loss.data())[0];
    loss.dispose();
  }
  return sum / run.valBatches.length;
}

/** Saves resume/, and the step in config.json (checkpoint.ts recordProgress). */
async function checkpoint(run: Run): Promise<void> {
  const { model, outDir } = run.opts;
  await saveTrainingState(run.opts.stateDir ?? outDir, {
    step: run.step, tokens: run.tokens, bestValLoss: run.bestValLoss, evalsWithoutImprovement: run.evalsWithoutImprovement, elapsedMs: elapsed(run),
    weights: hostWeights(run, run.lora?.frozen), ...(run.lora ? { adapters: run.lora.weights() } : {}), adamM: run.optimizer.m, adamV: run.optimizer.v,
  }, model.config);
  await recordProgress(outDir, run.step, run.bestValLoss);
  run.opts.onCheckpoint?.(run.step);
}

/** The master weights; `replaced`: some of them from elsewhere (a LoRA run's unmerged W0). */
function hostWeights(run: Run, replaced?: Map<string, Float32Array>): Map<string, WeightTensor> {
  return new Map([...run.master].map(([name, data]) => [name, { shape: run.shapes.get(name)!, data: replaced?.get(name) ?? data }]));
}

/** Appends the step to metrics.jsonl, then tells the caller. */
async function logStep(run: Run, step: StepTaken, lr: number, valLoss: number | undefined): Promise<void> {
  const metrics: StepMetrics = {
    step: run.step, tokens: run.tokens, trainLoss: step.loss, ...(valLoss !== undefined ? { valLoss } : {}),
    lr, gradNorm: step.gradNorm, tokensPerSecond: step.stepTokens / (step.stepMs / 1000), elapsedMs: elapsed(run),
  };
  await appendJsonLine(run.metricsFile, metrics);
  run.opts.onLog?.(metrics);
}

/** After the loop: evaluate and checkpoint where the last step did not, and sum the run up. */
async function finishRun(run: Run, stopReason: StopReason): Promise<TrainResult> {
  if (stopReason === 'cancelled') {
    // Keep the best weights untouched; save where we are so a resume loses no work.
    if (run.step !== run.lastEvalStep) await checkpoint(run);
  } else if (run.step !== run.lastEvalStep && run.step > 0) {
    await evaluateAndCheckpoint(run);
  }
  if (run.pool || run.onnx) for (const name of run.trainable) run.opts.model.setParam(name, run.master.get(name)!); // the caller's model ends with the final weights
  return {
    step: run.step, tokens: run.tokens, bestValLoss: run.bestValLoss, lastTrainLoss: run.lastTrainLoss, stopReason, elapsedMs: elapsed(run),
    tokensPerSecond: run.stepMsTotal > 0 ? run.tokensThisRun / (run.stepMsTotal / 1000) : 0,
    workers: run.onnx?.threads ?? run.pool?.size ?? 1, ...(run.workersNote ? { workersNote: run.workersNote } : {}),
  };
}

function isFrozen(name: string, freezeLayers: number): boolean {
  if (freezeLayers <= 0) return false;
  if (name === 'wte' || name === 'wpe') return true;
  const block = /^h\.(\d+)\./.exec(name);
  return block !== null && Number(block[1]) < freezeLayers;
}

/** Drops metrics lines past `step` (logged after the checkpoint a resumed run starts from). */
async function truncateMetrics(file: string, step: number): Promise<void> {
  if (!existsSync(file)) return;
  const kept = readMetricsLog(await fs.readFile(file, 'utf8')).metrics.filter((m) => m.step <= step);
  await writeFileAtomic(file, kept.map((m) => JSON.stringify(m) + '\n').join(''));
}
