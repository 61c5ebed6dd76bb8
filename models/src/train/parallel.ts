// Data-parallel gradients on worker threads: the wasm backend runs one thread under Node, so a
// second core is used by a second copy of the model. Each worker holds a GPT, reads the current
// weights from shared memory, computes the loss and gradient of its share of the step (whole
// micro-batches, or rows of them) and writes the gradient to its own shared region; the trainer
// sums the regions and steps the optimizer. Validation losses are shared out the same way. This
// file is also the worker's entry (built as dist/parallel.js next to the bundles). It does not
// schedule, clip, optimise or checkpoint (train.ts does).
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { GPTConfig } from '../model/config';
import type { Batch } from '../data/dataset';
import { GPT, type AttentionKernel } from '../model/gpt';
import { selectBackend, type BackendName } from './backend';

const WORKER_KIND = 'wlm-gradient-worker';

/** Where each parameter lives in the shared weights buffer. */
interface Layout {
  names: string[]; // every parameter, canonical order
  shapes: number[][];
  offsets: number[]; // in floats
  total: number;
  trainable: string[]; // the ones whose gradients are wanted, in order
  gradOffsets: number[]; // in floats, within one worker's gradient region
  gradTotal: number;
}

interface WorkerInit {
  kind: typeof WORKER_KIND;
  model: GPTConfig;
  backend: BackendName;
  attention: AttentionKernel;
  layout: Layout;
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer; // this worker's region only
}

type WeightedRows = { x: Int32Array; y: Int32Array; batchSize: number; blockSize: number; weight: number };
// 'step': loss and gradients (written to the shared region); 'eval': loss only.
type ToWorker = { type: 'step' | 'eval'; batches: WeightedRows[] } | { type: 'close' };
type FromWorker = { type: 'ready' } | { type: 'done'; loss: number } | { type: 'error'; message: string };

/** The script a worker runs: this file from sources (tsx), or parallel.js next to the bundle. */
function workerScript(): string | undefined {
  const candidates = [path.basename(__filename).startsWith('parallel.') ? __filename : '', path.join(__dirname, 'parallel.js')];
  return candidates.find((file) => file && existsSync(file));
}

export class GradientWorkers {
  /** The master weights, shared with the workers: the optimizer updates these views in place. */
  readonly weights = new Map<string, Float32Array>();
  private readonly gradRegions: Float32Array[];

  private constructor(private readonly workers: Worker[], private readonly layout: Layout, weightsBuffer: SharedArrayBuffer, gradBuffers: SharedArrayBuffer[]) {
    const all = new Float32Array(weightsBuffer);
    layout.names.forEach((name, i) => this.weights.set(name, all.subarray(layout.offsets[i], layout.offsets[i] + size(layout.shapes[i]))));
    this.gradRegions = gradBuffers.map((b) => new Float32Array(b));
  }

  /**
   * Starts `count` workers with copies of `model` on `backend`. Returns a reason instead when they
   * cannot run here (no worker script in this build, or a worker failed to start).
   */
  static async start(count: number, model: GPT, backend: BackendName, trainable: string[]): Promise<GradientWorkers | string> {
    const script = workerScript();
    if (!script) return `no worker script (parallel.js) next to ${__dirname}`;
    const current = model.getWeights();
    const names = [...current.keys()];
    const shapes = names.map((n) => current.get(n)!.shape);
    const offsets: number[] = [];
    let total = 0;
    for (const s of shapes) { offsets.push(total); total += size(s); }
    const gradOffsets: number[] = [];
    let gradTotal = 0;
    for (const name of trainable) { gradOffsets.push(gradTotal); gradTotal += size(current.get(name)!.shape); }
    const layout: Layout = { names, shapes, offsets, total, trainable, gradOffsets, gradTotal };

    const weightsBuffer = new SharedArrayBuffer(total * 4);
    const all = new Float32Array(weightsBuffer);
    names.forEach((name, i) => all.set(current.get(name)!.data, offsets[i]));
    const gradBuffers = Array.from({ length: count }, () => new SharedArrayBuffer(gradTotal * 4));
    const workers: Worker[] = [];
    try {
      for (const grads of gradBuffers) {
        const init: WorkerInit = { kind: WORKER_KIND, model: model.config, backend, attention: model.attention, layout, weights: weightsBuffer, grads };
        // From sources the worker needs tsx's loader, which workers do not inherit from --import.
        workers.push(script.endsWith('.ts')
          ? new Worker(`require('tsx/cjs'); require(${JSON.stringify(script)});`, { eval: true, workerData: init })
          : new Worker(script, { workerData: init }));
      }
      await Promise.all(workers.map((worker) => reply(worker, 'ready')));
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      return `worker failed to start: ${(err as Error).message}`;
    }
    return new GradientWorkers(workers, layout, weightsBuffer, gradBuffers);
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * The mean loss and gradient over `batches` (each weighted by its share of the step), spread
   * evenly across the workers. Gradients are summed into `into` in a fixed order: deterministic.
   */
  async gradients(batches: { batch: Batch; weight: number }[], into: Map<string, Float32Array>): Promise<number> {
    const loss = await this.run('step', batches);
    this.layout.trainable.forEach((name, i) => {
      const g = into.get(name)!;
      const at = this.layout.gradOffsets[i];
      for (const region of this.gradRegions) {
        const part = region.subarray(at, at + g.length);
        for (let k = 0; k < g.length; k++) g[k] += part[k];
      }
    });
    return loss;
  }

  /** The mean loss over `batches` with the current shared weights. */
  async evaluate(batches: Batch[]): Promise<number> {
    return this.run('eval', batches.map((batch) => ({ batch, weight: 1 / batches.length })));
  }

  private async run(type: 'step' | 'eval', batches: { batch: Batch; weight: number }[]): Promise<number> {
    const parts = this.workers.map(() => [] as WeightedRows[]);
    // Whole micro-batches round-robin when they divide evenly (bigger matmuls per worker);
    // otherwise every micro-batch's rows are shared out.
    if (batches.length % this.workers.length === 0) {
      batches.forEach(({ batch, weight }, i) => parts[i % this.workers.length].push({ ...batch, weight }));
    } else {
      for (const { batch, weight } of batches) {
        let start = 0;
        splitRows(batch.batchSize, this.workers.length).forEach((n, w) => {
          if (n === 0) return;
          const [from, to] = [start * batch.blockSize, (start + n) * batch.blockSize];
          parts[w].push({ x: batch.x.slice(from, to), y: batch.y.slice(from, to), batchSize: n, blockSize: batch.blockSize, weight: (weight * n) / batch.batchSize });
          start += n;
        });
      }
    }
    const losses = await Promise.all(this.workers.map(async (worker, w) => {
      worker.postMessage({ type, batches: parts[w] } satisfies ToWorker);
      return ((await reply(worker, 'done')) as Extract<FromWorker, { type: 'done' }>).loss;
    }));
    return losses.reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** n rows over k workers, as evenly as possible (the first ones get the remainder). */
function splitRows(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

function rowsToTensors(b: WeightedRows): [tf.Tensor2D, tf.Tensor2D] {
  const shape: [number, number] = [b.batchSize, b.blockSize];
  return [tf.tensor2d(b.x, shape, 'int32'), tf.tensor2d(b.y, shape, 'int32')];
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The next message of the expected type; an error message or a worker exit rejects. */
function reply(worker: Worker, type: FromWorker['type']): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: FromWorker): void => {
      cleanup();
      if (msg.type === 'error') reject(new Error(`gradient worker: ${msg.message}`));
      else if (msg.type !== type) reject(new Error(`gradient worker: expected ${type}, got ${msg.type}`));
      else resolve(msg);
    };
    const onError = (err: Error): void => { cleanup(); reject(err); };
    const onExit = (code: number): void => { cleanup(); reject(new Error(`gradient worker exited with code ${code}`)); };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

// ---------------------------------------------------------------------------------------------
// The worker side.

async function workerMain(init: WorkerInit): Promise<void> {
  const port = parentPort!;
  const post = (msg: FromWorker): void => port.postMessage(msg);
  try {
    await selectBackend(init.backend);
    const model = new GPT(init.model, { attention: init.attention });
    const { layout } = init;
    const weights = new Float32Array(init.weights);
    const grads = new Float32Array(init.grads);
    const variables = layout.trainable.map((name) => model.params.get(name)!);
    port.on('message', (msg: ToWorker) => {
      if (msg.type === 'close') return port.close();
      try {
        layout.names.forEach((name, i) => model.setParam(name, weights.subarray(layout.offsets[i], layout.offsets[i] + size(layout.shapes[i]))));
        let loss = 0;
        if (msg.type === 'eval') {
          for (const b of msg.batches) {
            const value = tf.tidy(() => model.loss(...rowsToTensors(b)));
            loss += value.dataSync()[0] * b.weight;
            value.dispose();
          }
          post({ type: 'done', loss });
          return;
        }
        grads.fill(0);
        for (const b of msg.batches) {
          const [x, y] = rowsToTensors(b);
          const { value, grads: g } = tf.variableGrads(() => model.loss(x, y), variables);
          loss += value.dataSync()[0] * b.weight;
          variables.forEach((v, i) => {
            const data = g[v.name].dataSync() as Float32Array;
            const at = layout.gradOffsets[i];
            for (let k = 0; k < data.length; k++) grads[at + k] += data[k] * b.weight;
          });
          tf.dispose([x, y, value, ...Object.values(g)]);
        }
        post({ type: 'done', loss });
      } catch (err) {
        post({ type: 'error', message: (err as Error).message });
      }
    });
    post({ type: 'ready' });
  } catch (err) {
    post({ type: 'error', message: (err as Error).message });
  }
}

if (!isMainThread && (workerData as WorkerInit | undefined)?.kind === WORKER_KIND) {
  void workerMain(workerData as WorkerInit);
}
