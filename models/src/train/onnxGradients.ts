// Loss and gradients on the CPU through onnxruntime: runs gradientGraph.ts's graph with the current
// master weights as inputs, on all cores (onnxruntime's own thread pool, MLAS kernels). The trainer
// (train.ts) owns the weights, the optimizer and the schedule; this file adds one micro-batch's
// gradients into the trainer's buffers, and finishes the embedding lookups' backward on the host.
import * as os from 'node:os';
import type * as Ort from 'onnxruntime-node';
import type { GPTConfig } from '../model/config';
import { parameterShapes } from '../model/checkpoint';
import type { Batch } from '../data/dataset';
import { buildGradientGraph, gradientNames } from './gradientGraph';
import { addScaled } from './optim';

type WeightedBatch = { batch: Batch; weight: number };
const NOTHING: ReadonlySet<string> = new Set(); // evaluation: the loss, no gradient

/** onnxruntime's threads for training: one per core, or WLM_TRAIN_THREADS (which also sets tfjs's gradient workers, train.ts). */
export function onnxTrainThreads(): number {
  const fromEnv = Number(process.env.WLM_TRAIN_THREADS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : os.availableParallelism();
}

export class OnnxGradients {
  private readonly sessions = new Map<string, Promise<Ort.InferenceSession>>(); // by batch shape and kind
  private readonly weightFeeds: Record<string, Ort.Tensor>;
  private readonly trained: ReadonlySet<string>; // the graph computes these gradients only

  private constructor(
    private readonly ort: typeof Ort,
    private readonly config: GPTConfig,
    private readonly trainable: string[],
    readonly threads: number,
    master: Map<string, Float32Array>,
  ) {
    this.trained = new Set(trainable);
    // Views of the trainer's master weights: the optimizer updates them in place between runs.
    this.weightFeeds = Object.fromEntries(parameterShapes(config).map(([name, dims]) => [name, new ort.Tensor('float32', master.get(name)!, dims)]));
  }

  /** The engine, or the reason it cannot run here (onnxruntime-node missing or failing to load). */
  static start(config: GPTConfig, master: Map<string, Float32Array>, trainable: string[], threads = onnxTrainThreads()): OnnxGradients | string {
    let ort: typeof Ort;
    try {
      ort = require('onnxruntime-node') as typeof Ort;
    } catch (err) {
      return `onnxruntime-node did not load (${(err as Error).message.split('\n')[0]})`;
    }
    return new OnnxGradients(ort, config, trainable, Math.max(1, threads), master);
  }

  /** Mean loss over weighted micro-batches; their gradients, times each weight, added into `into`. */
  async gradients(batches: WeightedBatch[], into: Map<string, Float32Array>): Promise<number> {
    let loss = 0;
    for (const { batch, weight } of batches) {
      const out = await this.run(batch, true);
      loss += (out[gradientNames.loss].data as Float32Array)[0] * weight;
      for (const name of this.trainable) {
        const g = into.get(name)!;
        if (name === 'wte') {
          addScaled(g, out[gradientNames.wteHead].data as Float32Array, weight);
          scatterRows(g, out[gradientNames.embedded].data as Float32Array, batch.x, weight, this.config.nEmbd);
        } else if (name === 'wpe') {
          sumPositions(g, out[gradientNames.embedded].data as Float32Array, batch, weight, this.config.nEmbd);
        } else {
          addScaled(g, out[gradientNames.grad(name)].data as Float32Array, weight);
        }
      }
    }
    return loss;
  }

  /** Mean loss over the batches (validation). */
  async evaluate(batches: Batch[]): Promise<number> {
    let sum = 0;
    for (const batch of batches) sum += ((await this.run(batch, false))[gradientNames.loss].data as Float32Array)[0];
    return sum / batches.length;
  }

  async close(): Promise<void> {
    const sessions = await Promise.allSettled(this.sessions.values());
    for (const s of sessions) if (s.status === 'fulfilled') await s.value.release();
    this.sessions.clear();
  }

  private async run(batch: Batch, withGradients: boolean): Promise<Ort.InferenceSession.OnnxValueMapType> {
    const { batchSize: B, blockSize: T } = batch;
    const session = await this.session(B, T, withGradients);
    const feeds = {
      ...this.weightFeeds,
      [gradientNames.idx]: new this.ort.Tensor('int64', BigInt64Array.from(batch.x, BigInt), [B, T]),
      [gradientNames.targets]: new this.ort.Tensor('int64', BigInt64Array.from(batch.y, BigInt), [B * T]),
    };
    return session.run(feeds);
  }

  private session(B: number, T: number, withGradients: boolean): Promise<Ort.InferenceSession> {
    const key = `${B}x${T}${withGradients ? '+grad' : ''}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = this.ort.InferenceSession.create(buildGradientGraph(this.config, B, T, withGradients ? this.trained : NOTHING), {
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      this.sessions.set(key, session);
    }
    return session;
  }
}

/** wte's lookup backward: row idx[n] of the gradient gets row n of dEmbedded. */
function scatterRows(into: Float32Array, dEmbedded: Float32Array, idx: Int32Array, scale: number, C: number): void {
  for (let n = 0; n < idx.length; n++) {
    const to = idx[n] * C;
    const from = n * C;
    for (let j = 0; j < C; j++) into[to + j] += dEmbedded[from + j] * scale;
  }
}

/** wpe's lookup backward: position t's row gets the sum of dEmbedded over the batch's rows at t. */
function sumPositions(into: Float32Array, dEmbedded: Float32Array, batch: Batch, scale: number, C: number): void {
  for (let b = 0; b < batch.batchSize; b++) {
    for (let t = 0; t < batch.blockSize; t++) {
      const from = (b * batch.blockSize + t) * C;
      for (let j = 0; j < C; j++) into[t * C + j] += dEmbedded[from + j] * scale;
    }
  }
}
