// The training loop: schedule and AdamW numbers, overfitting one batch, gradient accumulation,
// stop + resume equal to an uninterrupted run, cancellation keeping the best checkpoint, early
// stopping, the time budget, flat tensor counts. Tiny configs on the cpu backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { GPT } from '../../models/src/model/gpt';
import { selectBackend } from '../../models/src/train/backend';
import { train, learningRateAt, isDecayed, type StepMetrics, type TrainData, type EvalEvent } from '../../models/src/train/train';
import { AdamW } from '../../models/src/train/optim';
import { readWeights } from '../../models/src/model/checkpoint';
import type { GPTConfig } from '../../models/src/model/config';
import { learnableData, shortRunConfig } from './trainFixtures';

const tiny: GPTConfig = { vocabSize: 40, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0 };
let root: string;
let runs = 0;

before(async () => {
  await selectBackend('cpu');
  root = mkdtempSync(path.join(os.tmpdir(), 'wlm-train-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const data = (seed = 1): TrainData => learnableData(tiny.blockSize, seed);
const config = shortRunConfig;

function outDir(): string {
  return path.join(root, `run-${runs++}`);
}

test('learning rate: linear warm-up, cosine decay, floor after maxSteps', () => {
  const c = config({ learningRate: 1, minLearningRate: 0.1, warmupSteps: 4, maxSteps: 14 });
  assert.equal(learningRateAt(0, c), 1 / 5);
  assert.equal(learningRateAt(3, c), 4 / 5);
  assert.equal(learningRateAt(4, c), 1);
  assert.ok(Math.abs(learningRateAt(9, c) - 0.55) < 1e-12); // halfway through the cosine
  assert.ok(Math.abs(learningRateAt(14, c) - 0.1) < 1e-12);
  assert.equal(learningRateAt(100, c), 0.1);
  for (let s = 4; s < 14; s++) assert.ok(learningRateAt(s + 1, c) < learningRateAt(s, c));
});

test('learning rate: a cooldown keeps the peak until the last share of the run, then decays to the floor', () => {
  const c = config({ learningRate: 1, minLearningRate: 0.1, warmupSteps: 4, maxSteps: 14, cooldownFraction: 0.2 });
  assert.equal(learningRateAt(4, c), 1);
  assert.equal(learningRateAt(12, c), 1); // 80% of the way: the cooldown starts here
  assert.ok(Math.abs(learningRateAt(13, c) - 0.55) < 1e-12); // halfway through it
  assert.ok(Math.abs(learningRateAt(14, c) - 0.1) < 1e-12);
});

test('learning rate: a wall-clock budget ends the schedule when it comes before maxSteps', () => {
  const c = config({ learningRate: 1, minLearningRate: 0.1, warmupSteps: 4, maxSteps: 1_000_000, maxMinutes: 10 });
  assert.ok(Math.abs(learningRateAt(5, c, 0) - 1) < 1e-9); // no time spent: still at the peak
  assert.ok(Math.abs(learningRateAt(5, c, 5 * 60_000) - 0.55) < 1e-9); // half the budget: half the cosine
  assert.ok(Math.abs(learningRateAt(5, c, 10 * 60_000) - 0.1) < 1e-12);
  const stepsFirst = config({ learningRate: 1, minLearningRate: 0.1, warmupSteps: 4, maxSteps: 14, maxMinutes: 600 });
  assert.ok(Math.abs(learningRateAt(9, stepsFirst, 60_000) - 0.55) < 1e-12); // maxSteps comes first here
});

test('AdamW: one step by hand; decay on matrices only', () => {
  assert.equal(isDecayed([4, 4]), true);
  assert.equal(isDecayed([4]), false);
  const opt = new AdamW(new Map([['w', 2], ['b', 1]]), { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.5 }, (name) => name === 'w');
  const params = new Map([['w', Float32Array.from([1, -2])], ['b', Float32Array.from([3])]]);
  opt.step(params, new Map([['w', Float32Array.from([0.5, -4])], ['b', Float32Array.from([2])]]), 0.1, 1, 0.5);
  // t = 1: m̂ = g, v̂ = g², so the update is lr * sign(g) (up to eps); decay multiplies by 1 - lr*wd.
  assert.ok(Math.abs(params.get('w')![0] - (1 * 0.95 - 0.1)) < 1e-6);
  assert.ok(Math.abs(params.get('w')![1] - (-2 * 0.95 + 0.1)) < 1e-6);
  assert.ok(Math.abs(params.get('b')![0] - (3 - 0.1)) < 1e-6);
  assert.ok(Math.abs(opt.m.get('w')![1] - 0.1 * -4 * 0.5) < 1e-6); // the clip scale reaches the moments
});

test('overfits one batch to near-zero loss', async () => {
  const model = new GPT(tiny, { seed: 1 });
  const one = data().train.batch(0, 0, 2);
  const losses: number[] = [];
  await train({
    model, config: config({ batchSize: 2, microBatchSize: 2, maxSteps: 150, learningRate: 1e-2, minLearningRate: 1e-2, warmupSteps: 0, evalInterval: 1000, weightDecay: 0 }),
    data: { train: { batch: () => one }, val: { fixedBatches: () => [one] } },
    outDir: outDir(),
    onLog: (m) => losses.push(m.trainLoss),
  });
  assert.ok(losses[0] > 3, `first loss ${losses[0]}`);
  assert.ok(losses.at(-1)! < 0.05, `last loss ${losses.at(-1)}`);
  model.dispose();
});

test('gradient accumulation: 2 micro-batches of 2 give the same step as one batch of 4', async () => {
  const run = async (micro: number): Promise<StepMetrics[]> => {
    const model = new GPT(tiny, { seed: 2 });
    const logs: StepMetrics[] = [];
    await train({ model, config: config({ microBatchSize: micro, maxSteps: 3 }), data: sameRowsFor(micro), outDir: outDir(), onLog: (m) => logs.push(m) });
    model.dispose();
    return logs;
  };
  // Both runs must see the same 4 rows per step: serve micro-batches as slices of one batch of 4.
  const sampler = data().train;
  const sameRowsFor = (micro: number): TrainData => ({
    train: {
      batch: (step, m) => {
        const full = sampler.batch(step, 0, 4);
        const n = micro * tiny.blockSize;
        return { x: full.x.slice(m * n, (m + 1) * n), y: full.y.slice(m * n, (m + 1) * n), batchSize: micro, blockSize: tiny.blockSize };
      },
    },
    val: data().val,
  });
  const [whole, split] = [await run(4), await run(2)];
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(whole[i].trainLoss - split[i].trainLoss) < 1e-5, `step ${i + 1}: ${whole[i].trainLoss} vs ${split[i].trainLoss}`);
    assert.ok(Math.abs(whole[i].gradNorm - split[i].gradNorm) < 1e-4);
  }
});

test('a stopped and resumed run equals the uninterrupted run, step for step', async () => {
  const c = config({ maxSteps: 12, evalInterval: 4 });
  const full: StepMetrics[] = [];
  const fullDir = outDir();
  const a = new GPT(tiny, { seed: 3 });
  await train({ model: a, config: c, data: data(), outDir: fullDir, onLog: (m) => full.push(m) });

  // Stop after step 6 (between evaluations), then resume with a fresh model object.
  const dir = outDir();
  const controller = new AbortController();
  const b = new GPT(tiny, { seed: 3 });
  const first = await train({ model: b, config: c, data: data(), outDir: dir, signal: controller.signal, onLog: (m) => m.step === 6 && controller.abort() });
  assert.equal(first.stopReason, 'cancelled');
  assert.equal(first.step, 6);
  b.dispose();
  const resumed: StepMetrics[] = [];
  const b2 = new GPT(tiny, { seed: 99 }); // weights come from the checkpoint, not the seed
  const second = await train({ model: b2, config: c, data: data(), outDir: dir, resume: true, onLog: (m) => resumed.push(m) });
  assert.equal(second.stopReason, 'maxSteps');
  assert.deepEqual(resumed.map((m) => m.step), [7, 8, 9, 10, 11, 12]);
  for (const m of resumed) {
    const ref = full[m.step - 1];
    assert.ok(Math.abs(m.trainLoss - ref.trainLoss) < 1e-5, `step ${m.step}: ${m.trainLoss} vs ${ref.trainLoss}`);
    assert.equal(m.valLoss === undefined, ref.valLoss === undefined);
    if (m.valLoss !== undefined) assert.ok(Math.abs(m.valLoss - ref.valLoss!) < 1e-5);
  }
  // The metrics file reads like one run, and the final weights are the same.
  const lines = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as StepMetrics);
  assert.deepEqual(lines.map((l) => l.step), [...Array(12).keys()].map((i) => i + 1));
  const [wa, wb] = [await readWeights(fullDir), await readWeights(dir)];
  for (const [name, w] of wa) assert.ok(w.data.every((v, i) => Math.abs(v - wb.get(name)!.data[i]) < 1e-6), `${name} differs`);
  a.dispose();
  b2.dispose();
});

test('cancellation keeps the best checkpoint as it was; callbacks in order', async () => {
  const dir = outDir();
  const controller = new AbortController();
  const events: string[] = [];
  let bestAtEval: Float32Array | undefined;
  const model = new GPT(tiny, { seed: 4 });
  const result = await train({
    model, config: config({ maxSteps: 50, evalInterval: 4 }), data: data(), outDir: dir, signal: controller.signal,
    onLog: (m) => {
      events.push(`log ${m.step}`);
      if (m.step === 6) controller.abort();
    },
    onEval: (e: EvalEvent) => events.push(`eval ${e.step}`),
    onCheckpoint: (step) => events.push(`checkpoint ${step}`),
  });
  assert.equal(result.stopReason, 'cancelled');
  bestAtEval = (await readWeights(dir)).get('wte')!.data;
  assert.deepEqual(events, ['log 1', 'log 2', 'log 3', 'checkpoint 4', 'eval 4', 'log 4', 'log 5', 'log 6', 'checkpoint 6']);
  // The root weights are those of step 4's evaluation, not of step 6.
  const latest = model.getWeights().get('wte')!.data;
  assert.ok(bestAtEval.some((v, i) => v !== latest[i]));
  assert.ok(existsSync(path.join(dir, 'resume', 'state.json')));
  model.dispose();
});

test('early stopping after `patience` evaluations without improvement', async () => {
  const model = new GPT(tiny, { seed: 5 });
  // A learning rate too small to change a float32 weight: validation never improves after the first.
  const evals: EvalEvent[] = [];
  const result = await train({
    model, config: config({ learningRate: 1e-30, minLearningRate: 1e-30, maxSteps: 100, evalInterval: 2, patience: 3 }),
    data: data(), outDir: outDir(), onEval: (e) => evals.push(e),
  });
  assert.equal(result.stopReason, 'earlyStop');
  assert.equal(result.step, 8);
  assert.deepEqual(evals.map((e) => e.improved), [true, false, false, false]);
  model.dispose();
});

test('maxMinutes stops the run early', async () => {
  const model = new GPT(tiny, { seed: 6 });
  const result = await train({ model, config: config({ maxSteps: 1_000_000, maxMinutes: 0.5 / 60, evalInterval: 1_000_000 }), data: data(), outDir: outDir() });
  assert.equal(result.stopReason, 'maxMinutes');
  assert.ok(result.step > 0 && result.step < 1_000_000);
  assert.ok(result.bestValLoss !== null); // the stop still evaluates and checkpoints
  model.dispose();
});

test('tensor count is flat across steps (with accumulation and evaluation)', async () => {
  const model = new GPT(tiny, { seed: 7 });
  const counts: number[] = [];
  await train({ model, config: config({ microBatchSize: 2, maxSteps: 10, evalInterval: 3 }), data: data(), outDir: outDir(), onLog: () => counts.push(tf.memory().numTensors) });
  assert.equal(counts.length, 10);
  assert.ok(counts.every((n) => n === counts[0]), `tensor counts ${counts.join(',')}`);
  model.dispose();
});

test('freezeLayers leaves embeddings and the lowest blocks untouched', async () => {
  const model = new GPT(tiny, { seed: 8 });
  const before = model.getWeights();
  await train({ model, config: config({ maxSteps: 3 }), data: data(), outDir: outDir(), freezeLayers: 1 });
  const afterW = model.getWeights();
  for (const name of ['wte', 'wpe', 'h.0.attn.wqkv', 'h.0.ln2.g']) assert.deepEqual(afterW.get(name)!.data, before.get(name)!.data, name);
  for (const name of ['h.1.attn.wqkv', 'lnf.g']) assert.notDeepEqual(afterW.get(name)!.data, before.get(name)!.data, name);
  model.dispose();
});

test('resume without a saved state is a clear error', async () => {
  const model = new GPT(tiny, { seed: 9 });
  await assert.rejects(train({ model, config: config({}), data: data(), outDir: outDir(), resume: true }), /nothing to resume/);
  model.dispose();
});

// Sharing whole micro-batches (with a stop and resume midway), then rows of one micro-batch.
for (const [microBatchSize, how, stopAt] of [[2, 'whole micro-batches', 4], [4, 'rows of each micro-batch', 0]] as const) {
  test(`two gradient workers (sharing ${how}) give the same run as one thread (losses within 1e-5)${stopAt ? ', with a resume' : ''}`, async () => {
    const c = config({ maxSteps: 6, evalInterval: 3, microBatchSize });
    const single: StepMetrics[] = [];
    const a = new GPT(tiny, { seed: 10 });
    const one = await train({ model: a, config: c, data: data(), outDir: outDir(), workers: 1, onLog: (m) => single.push(m) });
    assert.equal(one.workers, 1);
    const parallel: StepMetrics[] = [];
    const b = new GPT(tiny, { seed: 10 });
    const dir = outDir();
    const controller = new AbortController();
    const first = await train({ model: b, config: c, data: data(), outDir: dir, workers: 2, signal: controller.signal, onLog: (m) => { parallel.push(m); if (m.step === stopAt) controller.abort(); } });
    assert.equal(first.workers, 2, first.workersNote);
    const second = stopAt ? await train({ model: b, config: c, data: data(), outDir: dir, workers: 2, resume: true, onLog: (m) => parallel.push(m) }) : first;
    assert.equal(second.step, 6);
    assert.deepEqual(parallel.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
    for (let i = 0; i < 6; i++) {
      assert.ok(Math.abs(single[i].trainLoss - parallel[i].trainLoss) < 1e-5, `step ${i + 1}: ${single[i].trainLoss} vs ${parallel[i].trainLoss}`);
      assert.ok(Math.abs(single[i].gradNorm - parallel[i].gradNorm) < 1e-4);
    }
    assert.ok(Math.abs(one.bestValLoss! - second.bestValLoss!) < 1e-5);
    // The caller's model ends with the final weights, as without workers.
    const [wa, wb] = [a.getWeights().get('h.1.mlp.wfc')!.data, b.getWeights().get('h.1.mlp.wfc')!.data];
    assert.ok(wa.every((v, i) => Math.abs(v - wb[i]) < 1e-5));
    a.dispose();
    b.dispose();
  });
}

// The CPU engine (backend 'onnxruntime'): the same run as tfjs's own gradients, in each fine-tune mode.
for (const [mode, extra, stopAt] of [
  ['the whole model, with a resume', {}, 3],
  ['the last block (freezeLayers 1)', { freezeLayers: 1 }, 0],
  ['low-rank adapters', { lora: { rank: 2, alpha: 4 } }, 0],
] as const) {
  test(`onnxruntime gradients train ${mode} as tfjs's do (losses within 1e-4)`, async () => {
    const c = config({ maxSteps: 6, evalInterval: 3, microBatchSize: 2 });
    const reference: StepMetrics[] = [];
    const a = new GPT(tiny, { seed: 12 });
    const tfjsRun = await train({ model: a, config: c, data: data(), outDir: outDir(), workers: 1, ...extra, onLog: (m) => reference.push(m) });
    const logs: StepMetrics[] = [];
    const b = new GPT(tiny, { seed: 12 });
    const dir = outDir();
    const controller = new AbortController();
    const first = await train({ model: b, config: c, data: data(), outDir: dir, gradientEngine: 'onnxruntime', ...extra, signal: controller.signal, onLog: (m) => { logs.push(m); if (m.step === stopAt) controller.abort(); } });
    assert.equal(first.workersNote, undefined);
    const second = stopAt ? await train({ model: b, config: c, data: data(), outDir: dir, gradientEngine: 'onnxruntime', resume: true, ...extra, onLog: (m) => logs.push(m) }) : first;
    assert.deepEqual(logs.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
    for (let i = 0; i < 6; i++) {
      assert.ok(Math.abs(reference[i].trainLoss - logs[i].trainLoss) < 1e-4, `step ${i + 1}: ${logs[i].trainLoss} vs ${reference[i].trainLoss}`);
      assert.ok(Math.abs(reference[i].gradNorm - logs[i].gradNorm) < 1e-3 * Math.max(1, reference[i].gradNorm));
    }
    assert.ok(Math.abs(tfjsRun.bestValLoss! - second.bestValLoss!) < 1e-4);
    // The caller's model ends with the final weights, and the saved best weights are the same.
    const [wa, wb] = [a.getWeights().get('h.1.mlp.wfc')!.data, b.getWeights().get('h.1.mlp.wfc')!.data];
    assert.ok(wa.every((v, i) => Math.abs(v - wb[i]) < 1e-4));
    a.dispose();
    b.dispose();
  });
}
