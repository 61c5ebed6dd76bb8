// The training loop, one flat function (nanoGPT's train.py): learning rate → step (micro-batches,
// clip, AdamW) → evaluate → checkpoint → log. It knows the GPT and the model folder, and hears of
// data only through batch sources; progress leaves only through callbacks and metrics.jsonl.
// It does not read files, tokenize, or pick a backend.
import * as tf from '@tensorflow/tfjs-core';
import { promises as fs, existsSync } from 'node:fs';
import * as path from 'node:path';
import type { TrainConfig } from '../model/config';
import type { Batch } from '../data/dataset';
import type { GPT } from '../model/gpt';
import { AdamW, globalNorm } from './optim';
import { hasTrainingState, loadTrainingState, saveTrainingState, writeWeights, type WeightTensor } from '../model/checkpoint';
import { writeFileAtomic, appendJsonLine } from '../util/atomicFiles';
import { GradientWorkers } from './parallel';
import * as os from 'node:os';

export interface StepMetrics {
  step: number; // optimizer steps completed
  tokens: number; // training tokens seen so far
  trainLoss: number; // mean loss over this step's batch
  valLoss?: number; // present when this step ended with an evaluation
  lr: number;
  gradNorm: number; // global L2 norm before clipping
  tokensPerSecond: number; // this step's tokens over its compute time (evaluation excluded)
  elapsedMs: number; // training wall time, across resumes
}

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
  workers: number; // gradient worker threads used (1: computed in this thread)
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
  freezeLayers?: number; // fine-tune: embeddings and the lowest K blocks are not updated
  workers?: number; // data-parallel gradient threads; default 2 on wasm with 2+ cores (WLM_TRAIN_WORKERS overrides), else 1
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
  const { model, config: c, data, outDir, signal } = opts;
  const metricsFile = path.join(outDir, 'metrics.jsonl');
  await fs.mkdir(outDir, { recursive: true });

  // Host copies of the weights are the master copy: AdamW updates them, then the tfjs variables.
  const weights = await model.readWeights();
  const master = new Map<string, Float32Array>([...weights].map(([name, w]) => [name, w.data]));
  const trainable = [...model.params.keys()].filter((name) => !isFrozen(name, opts.freezeLayers ?? 0));
  const optimizer = new AdamW(
    new Map(trainable.map((name) => [name, master.get(name)!.length])),
    { beta1: c.beta1, beta2: c.beta2, eps: 1e-8, weightDecay: c.weightDecay },
    (name) => isDecayed(weights.get(name)!.shape),
  );

  let step = 0;
  let tokens = 0;
  let bestValLoss: number | null = null;
  let evalsWithoutImprovement = 0;
  let elapsedBefore = 0;
  if (opts.resume) {
    if (!hasTrainingState(outDir)) throw new Error(`nothing to resume in ${outDir}: no resume/ state (hint: start a new run)`);
    const state = await loadTrainingState(outDir);
    model.loadWeights(state.weights);
    for (const [name, w] of state.weights) master.get(name)!.set(w.data);
    optimizer.loadState(state.adamM, state.adamV);
    ({ step, tokens, bestValLoss, evalsWithoutImprovement } = state);
    elapsedBefore = state.elapsedMs;
    await truncateMetrics(metricsFile, step); // lines logged after the checkpoint are redone
  } else {
    await fs.rm(metricsFile, { force: true });
  }

  // Data-parallel workers: each computes the gradient of a share of every micro-batch's rows.
  const { pool, note: workersNote } = await startWorkers(opts.workers ?? defaultWorkers(), model, c, trainable);
  if (pool) for (const [name, data] of pool.weights) master.set(name, data); // shared: AdamW's updates reach the workers
  try {
    const valBatches = data.val.fixedBatches(c.evalBatches, c.microBatchSize);
    const accumulation = c.batchSize / c.microBatchSize;
    const grads = new Map(trainable.map((name) => [name, new Float32Array(master.get(name)!.length)])); // reused every step
    const started = Date.now();
    const budgetMs = c.maxMinutes > 0 ? c.maxMinutes * 60_000 : Infinity;
    let stepMsTotal = 0;
    let tokensThisRun = 0;
    let lastTrainLoss: number | null = null;
    let lastEvalStep = opts.resume ? step : -1;
    let stopReason: StopReason = 'maxSteps';
    const elapsed = (): number => elapsedBefore + (Date.now() - started);

    // Reads are asynchronous throughout: WebGPU under Node has no synchronous readback.
    const evaluate = async (): Promise<number> => {
      if (pool) return pool.evaluate(valBatches);
      let sum = 0;
      for (const batch of valBatches) {
        const loss = tf.tidy(() => model.loss(...tensors(batch)));
        sum += (await loss.data())[0];
        loss.dispose();
      }
      return sum / valBatches.length;
    };

    const hostWeights = (): Map<string, WeightTensor> =>
      new Map([...master].map(([name, data]) => [name, { shape: weights.get(name)!.shape, data }]));

    const checkpoint = async (): Promise<void> => {
      await saveTrainingState(outDir, {
        step, tokens, bestValLoss, evalsWithoutImprovement, elapsedMs: elapsed(),
        weights: hostWeights(), adamM: optimizer.m, adamV: optimizer.v,
      }, model.config);
      await recordProgress(outDir, step, bestValLoss);
      opts.onCheckpoint?.(step);
    };

    /** Evaluate, keep the best weights as THE model, save the resume state. Returns the val loss. */
    const evaluateAndCheckpoint = async (): Promise<number> => {
      const valLoss = await evaluate();
      const improved = bestValLoss === null || valLoss < bestValLoss;
      if (improved) {
        bestValLoss = valLoss;
        evalsWithoutImprovement = 0;
        await writeWeights(outDir, hostWeights(), model.config);
      } else {
        evalsWithoutImprovement++;
      }
      lastEvalStep = step;
      await checkpoint();
      opts.onEval?.({ step, valLoss, bestValLoss: bestValLoss!, improved });
      return valLoss;
    };

    for (;;) {
      if (step >= c.maxSteps) { stopReason = 'maxSteps'; break; }
      if (signal?.aborted) { stopReason = 'cancelled'; break; }
      if (elapsed() >= budgetMs) { stopReason = 'maxMinutes'; break; } // the budget spans resumes, like the schedule

      // One optimizer step: gradients summed over micro-batches, clipped, AdamW.
      const lr = learningRateAt(step, c, elapsed());
      const stepStart = performance.now();
      for (const g of grads.values()) g.fill(0);
      const micro = Array.from({ length: accumulation }, (_, m) => ({ batch: data.train.batch(step, m, c.microBatchSize), weight: 1 / accumulation }));
      const loss = pool ? await pool.gradients(micro, grads) : await localGradients(model, trainable, micro, grads);
      const gradNorm = globalNorm(grads.values());
      const clipScale = c.gradClip > 0 && gradNorm > c.gradClip ? c.gradClip / (gradNorm + 1e-6) : 1;
      optimizer.step(master, grads, lr, step + 1, clipScale);
      if (!pool) for (const name of trainable) model.setParam(name, master.get(name)!); // the workers read `master` itself
      const stepMs = performance.now() - stepStart;
      step++;
      const stepTokens = c.batchSize * model.config.blockSize;
      tokens += stepTokens;
      tokensThisRun += stepTokens;
      stepMsTotal += stepMs;
      lastTrainLoss = loss;
      if (!Number.isFinite(loss)) {
        throw new Error(`training diverged at step ${step}: loss is ${loss} (hint: lower the learning rate, now ${c.learningRate})`);
      }

      let valLoss: number | undefined;
      if (step % c.evalInterval === 0) valLoss = await evaluateAndCheckpoint();
      if (step % c.logInterval === 0 || valLoss !== undefined) {
        const metrics: StepMetrics = {
          step, tokens, trainLoss: loss, ...(valLoss !== undefined ? { valLoss } : {}),
          lr, gradNorm, tokensPerSecond: stepTokens / (stepMs / 1000), elapsedMs: elapsed(),
        };
        await appendJsonLine(metricsFile, metrics);
        opts.onLog?.(metrics);
      }
      if (valLoss !== undefined && c.patience > 0 && evalsWithoutImprovement >= c.patience) { stopReason = 'earlyStop'; break; }
    }

    if (stopReason === 'cancelled') {
      // Keep the best weights untouched; save where we are so a resume loses no work.
      if (step !== lastEvalStep) await checkpoint();
    } else if (step !== lastEvalStep && step > 0) {
      await evaluateAndCheckpoint();
    }
    if (pool) for (const name of trainable) model.setParam(name, master.get(name)!); // the caller's model ends with the final weights
    return {
      step, tokens, bestValLoss, lastTrainLoss, stopReason, elapsedMs: elapsed(),
      tokensPerSecond: stepMsTotal > 0 ? tokensThisRun / (stepMsTotal / 1000) : 0,
      workers: pool?.size ?? 1, ...(workersNote ? { workersNote } : {}),
    };
  } finally {
    await pool?.close();
  }
}

async function startWorkers(count: number, model: GPT, c: TrainConfig, trainable: string[]): Promise<{ pool?: GradientWorkers; note?: string }> {
  if (count <= 1) return {};
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'cpu') return { note: `worker threads are for CPU backends, not ${backend}` };
  if (c.microBatchSize < count) return { note: `microBatchSize ${c.microBatchSize} has fewer rows than ${count} workers` };
  const pool = await GradientWorkers.start(count, model, backend, trainable);
  return typeof pool === 'string' ? { note: pool } : { pool };
}

/** Two gradient threads when tfjs runs on wasm (one thread each) and the machine has 2+ cores. */
function defaultWorkers(): number {
  const fromEnv = Number(process.env.WLM_TRAIN_WORKERS);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
  return tf.getBackend() === 'wasm' && os.availableParallelism() >= 2 ? 2 : 1;
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

function addScaled(into: Float32Array, from: Float32Array, scale: number): void {
  for (let i = 0; i < into.length; i++) into[i] += from[i] * scale;
}

function isFrozen(name: string, freezeLayers: number): boolean {
  if (freezeLayers <= 0) return false;
  if (name === 'wte' || name === 'wpe') return true;
  const block = /^h\.(\d+)\./.exec(name);
  return block !== null && Number(block[1]) < freezeLayers;
}

/** Keeps config.json (when the folder has one) in step with the checkpoint: a killed run still says where it was. */
async function recordProgress(dir: string, step: number, bestValLoss: number | null): Promise<void> {
  const file = path.join(dir, 'config.json');
  if (!existsSync(file)) return;
  try {
    const config = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFileAtomic(file, JSON.stringify({ ...config, step, bestValLoss }, null, 2));
  } catch {
    // A config.json we cannot parse is reported by readModelConfig when the folder is loaded.
  }
}

/** Drops metrics lines past `step` (logged after the checkpoint a resumed run starts from). */
async function truncateMetrics(file: string, step: number): Promise<void> {
  if (!existsSync(file)) return;
  const lines = (await fs.readFile(file, 'utf8')).split('\n').filter((line) => {
    if (!line.trim()) return false;
    try {
      return (JSON.parse(line) as StepMetrics).step <= step;
    } catch {
      return false;
    }
  });
  await writeFileAtomic(file, lines.map((l) => l + '\n').join(''));
}
