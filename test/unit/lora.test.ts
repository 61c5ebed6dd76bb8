// Low-rank adapters (train/lora.ts): the merged weights compute what the unmerged adapters do
// (float64 reference forward), the adapters' gradients against finite differences, a LoRA step
// moves nothing but the adapters, the exported ONNX of a LoRA run matches tfjs, a stopped LoRA run
// resumes exactly (and as LoRA, from config.json, through the pipeline), and the wlm flags. Tiny
// configs on the cpu backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { GPT } from '../../models/src/model/gpt';
import { selectBackend } from '../../models/src/train/backend';
import { LowRankAdapters, isAdapted } from '../../models/src/train/lora';
import { train, type EvalEvent, type StepMetrics, type TrainData } from '../../models/src/train/train';
import { loadTrainingState, readWeights, type WeightTensor } from '../../models/src/model/checkpoint';
import { buildOnnxModel, onnxNames } from '../../models/src/model/onnx';
import { loraConfig, type GPTConfig, type LoraConfig } from '../../models/src/model/config';
import { randomWeights } from './testWeights';
import { learnableData, shortRunConfig } from './trainFixtures';
import { wlm, assertCleanError } from './cliRunner';
import { makeStandInBase, sampleProject } from './baseStandIn';
import { trainOnFolder } from '../../models/src/pipeline';

const tiny: GPTConfig = { vocabSize: 40, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0 };
const lora: LoraConfig = loraConfig(4);
let root: string;
let runs = 0;

before(async () => {
  await selectBackend('cpu');
  root = mkdtempSync(path.join(os.tmpdir(), 'wlm-lora-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

const outDir = (): string => path.join(root, `run-${runs++}`);

/** Adapters on `weights` with B drawn too (it starts at zero), so that they change the model. */
function nonzeroAdapters(weights: Map<string, WeightTensor>, seed: number): LowRankAdapters {
  const adapters = new LowRankAdapters(lora, weights, seed);
  let s = seed;
  for (const [name, p] of adapters.params) {
    if (!name.endsWith('.loraB')) continue;
    for (let i = 0; i < p.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      p[i] = (s / 2 ** 32 - 0.5) * 0.5;
    }
  }
  return adapters;
}

/** The weights with the adapters merged in (lora.ts merge), as tensors. */
function merged(weights: Map<string, WeightTensor>, adapters: LowRankAdapters): Map<string, WeightTensor> {
  const host = new Map([...weights].map(([name, w]) => [name, w.data.slice()]));
  adapters.merge(host);
  return new Map([...weights].map(([name, w]) => [name, { shape: w.shape, data: host.get(name)! }]));
}

/**
 * Logits (T, V) of one sequence in float64, straight from the architecture, with every adapted
 * matrix applied unmerged: x·W0 + s·(x·A)·B. W0 and the adapters come from `adapters`, the rest from `weights`.
 */
function unmergedLogits(c: GPTConfig, weights: Map<string, WeightTensor>, adapters: LowRankAdapters, ids: number[]): number[] {
  const d = c.nEmbd, hs = d / c.nHead, r = adapters.config.rank;
  const W = (n: string): Float32Array => weights.get(n)!.data;
  const matVec = (x: ArrayLike<number>, m: Float32Array, rows: number, cols: number): Float64Array => {
    const out = new Float64Array(cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j] += x[i] * m[i * cols + j];
    return out;
  };
  const linear = (x: Float64Array, name: string, bias: string): Float64Array => {
    const [inDim, outDim] = weights.get(name)!.shape;
    const y = matVec(x, adapters.frozen.get(name)!, inDim, outDim);
    const delta = matVec(matVec(x, adapters.params.get(`${name}.loraA`)!, inDim, r), adapters.params.get(`${name}.loraB`)!, r, outDim);
    return y.map((v, j) => v + adapters.scale * delta[j] + W(bias)[j]);
  };
  const layerNorm = (x: Float64Array, g: string, b: string): Float64Array => {
    const mean = x.reduce((a, v) => a + v, 0) / x.length;
    const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
    return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * W(g)[i] + W(b)[i]);
  };
  const gelu = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  let xs = ids.map((id, t) => Float64Array.from({ length: d }, (_, i) => W('wte')[id * d + i] + W('wpe')[t * d + i]));
  for (let l = 0; l < c.nLayer; l++) {
    const p = `h.${l}`;
    const qkv = xs.map((x) => linear(layerNorm(x, `${p}.ln1.g`, `${p}.ln1.b`), `${p}.attn.wqkv`, `${p}.attn.bqkv`));
    const heads = xs.map((_, t) => {
      const y = new Float64Array(d);
      for (let h = 0; h < c.nHead; h++) {
        const scores = Array.from({ length: t + 1 }, (_, u) => {
          let dot = 0;
          for (let k = 0; k < hs; k++) dot += qkv[t][h * hs + k] * qkv[u][d + h * hs + k];
          return dot / Math.sqrt(hs);
        });
        const top = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - top));
        const sum = e.reduce((a, v) => a + v, 0);
        for (let u = 0; u <= t; u++) for (let k = 0; k < hs; k++) y[h * hs + k] += (e[u] / sum) * qkv[u][2 * d + h * hs + k];
      }
      return y;
    });
    xs = xs.map((x, t) => x.map((v, i) => v + linear(heads[t], `${p}.attn.wo`, `${p}.attn.bo`)[i]));
    xs = xs.map((x) => {
      const hidden = linear(layerNorm(x, `${p}.ln2.g`, `${p}.ln2.b`), `${p}.mlp.wfc`, `${p}.mlp.bfc`).map(gelu);
      const out = linear(hidden, `${p}.mlp.wproj`, `${p}.mlp.bproj`);
      return x.map((v, i) => v + out[i]);
    });
  }
  return xs.flatMap((x) => Array.from(matVec(layerNorm(x, 'lnf.g', 'lnf.b'), transpose(W('wte'), c.vocabSize, d), d, c.vocabSize)));
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(m.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = m[i * cols + j];
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function tfjsLogits(model: GPT, ids: number[]): Float32Array {
  return tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], 'int32')).dataSync() as Float32Array);
}

const ids = [3, 17, 0, 39, 9, 9, 21, 26];

test('the adapted matrices: attention qkv and output, MLP fc and proj of every block', () => {
  const adapters = new LowRankAdapters(lora, randomWeights(tiny, 1), 1);
  assert.deepEqual(adapters.adapted, ['h.0.attn.wqkv', 'h.0.attn.wo', 'h.0.mlp.wfc', 'h.0.mlp.wproj', 'h.1.attn.wqkv', 'h.1.attn.wo', 'h.1.mlp.wfc', 'h.1.mlp.wproj']);
  assert.equal(isAdapted('wte') || isAdapted('h.0.attn.bqkv') || isAdapted('h.0.ln1.g'), false);
  assert.equal(adapters.scale, 2); // alpha = 2 * rank
  assert.deepEqual(adapters.shapes.get('h.0.mlp.wproj.loraA'), [4 * tiny.nEmbd, 4]);
  assert.deepEqual(adapters.shapes.get('h.0.mlp.wproj.loraB'), [4, tiny.nEmbd]);
  // B starts at zero: the merged weights are the parent's, bit for bit.
  const weights = randomWeights(tiny, 1);
  for (const [name, w] of merged(weights, adapters)) assert.deepEqual(w.data, weights.get(name)!.data, name);
});

test('merged weights give the logits of the unmerged adapters (float64 reference, 1e-4)', () => {
  const weights = randomWeights(tiny, 2);
  const adapters = nonzeroAdapters(weights, 2);
  const model = new GPT(tiny, { seed: 2 });
  model.loadWeights(merged(weights, adapters));
  const expected = unmergedLogits(tiny, weights, adapters, ids);
  const withoutAdapters = new GPT(tiny, { seed: 2 });
  withoutAdapters.loadWeights(weights);
  const diff = maxAbsDiff(tfjsLogits(model, ids), expected);
  assert.ok(diff < 1e-4, `max abs diff ${diff}`);
  assert.ok(maxAbsDiff(tfjsLogits(withoutAdapters, ids), expected) > 0.1, 'the adapters change the logits');
  model.dispose();
  withoutAdapters.dispose();
});

test('adapter gradients match finite differences of the loss along random directions', () => {
  const weights = randomWeights(tiny, 3);
  const adapters = nonzeroAdapters(weights, 3);
  const model = new GPT(tiny, { seed: 3 });
  const setAdapters = (): void => {
    for (const [name, w] of merged(weights, adapters)) if (isAdapted(name)) model.setParam(name, w.data);
  };
  model.loadWeights(merged(weights, adapters));
  const x = tf.tensor2d([ids, [5, 6, 7, 8, 9, 10, 11, 12]], [2, 8], 'int32');
  const y = tf.tensor2d([[17, 0, 39, 9, 9, 21, 26, 1], [6, 7, 8, 9, 10, 11, 12, 13]], [2, 8], 'int32');
  const variables = adapters.adapted.map((name) => model.params.get(name)!);
  const { value, grads } = tf.variableGrads(() => model.loss(x, y), variables);
  value.dispose();
  adapters.gradients(new Map(adapters.adapted.map((name, k) => [name, grads[variables[k].name].dataSync() as Float32Array])));
  tf.dispose(Object.values(grads));
  const lossAt = (): number => {
    setAdapters();
    return tf.tidy(() => model.loss(x, y).dataSync()[0]);
  };
  let seed = 77;
  const rand = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647 - 0.5;
  };
  const eps = 1e-2;
  for (const name of ['h.0.attn.wqkv.loraA', 'h.0.attn.wqkv.loraB', 'h.1.attn.wo.loraB', 'h.0.mlp.wfc.loraA', 'h.1.mlp.wproj.loraA', 'h.1.mlp.wproj.loraB']) {
    const p = adapters.params.get(name)!;
    const start = p.slice();
    const direction = Float32Array.from(p, () => rand());
    const norm = Math.sqrt(direction.reduce((s, v) => s + v * v, 0));
    const analytic = adapters.grads.get(name)!.reduce((s, g, i) => s + (g * direction[i]) / norm, 0);
    p.set(start.map((v, i) => v + (eps * direction[i]) / norm));
    const up = lossAt();
    p.set(start.map((v, i) => v - (eps * direction[i]) / norm));
    const down = lossAt();
    p.set(start);
    const numeric = (up - down) / (2 * eps);
    assert.ok(Math.abs(numeric - analytic) < 2e-4 + 0.01 * Math.abs(analytic), `${name}: numeric ${numeric} vs analytic ${analytic}`);
  }
  tf.dispose([x, y]);
  model.dispose();
});

const data = (seed = 1): TrainData => learnableData(tiny.blockSize, seed);
const config = shortRunConfig;

test('a LoRA run moves only the adapters: the rest of the weights stay bit for bit, resume/ keeps W0 and the adapters apart, the ONNX export matches', async () => {
  const parent = randomWeights(tiny, 4);
  const model = new GPT(tiny, { seed: 4 });
  model.loadWeights(parent);
  const dir = outDir();
  const evals: EvalEvent[] = [];
  const losses: number[] = [];
  await train({ model, config: config({ maxSteps: 4, evalInterval: 4 }), data: data(), outDir: dir, workers: 1, lora, onEval: (e) => evals.push(e), onLog: (m) => losses.push(m.trainLoss) });
  const trained = model.getWeights();
  for (const [name, w] of parent) {
    if (isAdapted(name)) assert.ok(maxAbsDiff(trained.get(name)!.data, w.data) > 1e-4, `${name} moved`);
    else assert.deepEqual(trained.get(name)!.data, w.data, `${name} is not trained`);
  }
  assert.ok(losses.at(-1)! < losses[0], `loss ${losses[0]} → ${losses.at(-1)}`);

  // The resume state: the parent's weights unmerged, and adapters that merge into the trained ones.
  const state = await loadTrainingState(dir);
  for (const [name, w] of parent) assert.deepEqual(state.weights.get(name)!.data, w.data, `${name}: resume/ holds W0`);
  assert.deepEqual([...state.adamM.keys()].sort(), [...state.adapters!.keys()].sort(), 'Adam moments are the adapters\'');
  const adapters = new LowRankAdapters(lora, parent, 0);
  adapters.restore(state.weights, state.adapters!);
  for (const [name, w] of merged(parent, adapters)) assert.ok(maxAbsDiff(w.data, trained.get(name)!.data) < 1e-6, `${name}: merged = trained`);

  // What serves: weights.bin is the merged model (the last evaluation improved), exported to ONNX.
  assert.equal(evals.at(-1)!.improved, true);
  const saved = await readWeights(dir);
  for (const [name, w] of trained) assert.deepEqual(saved.get(name)!.data, w.data, `${name}: weights.bin is merged`);
  const session = await ort.InferenceSession.create(buildOnnxModel(tiny, saved));
  const feeds: Record<string, ort.Tensor> = {
    [onnxNames.inputIds]: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    [onnxNames.logitPositions]: new ort.Tensor('int64', BigInt64Array.from(ids, (_, i) => BigInt(i)), [ids.length]),
  };
  for (let l = 0; l < tiny.nLayer; l++) {
    for (const name of [onnxNames.pastKey(l), onnxNames.pastValue(l)]) feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, tiny.nHead, 0, tiny.nEmbd / tiny.nHead]);
  }
  const onnxLogits = (await session.run(feeds))[onnxNames.logits].data as Float32Array;
  const toTfjs = maxAbsDiff(onnxLogits, tfjsLogits(model, ids));
  const toUnmerged = maxAbsDiff(onnxLogits, unmergedLogits(tiny, parent, adapters, ids));
  assert.ok(toTfjs < 1e-4 && toUnmerged < 1e-4, `ONNX vs tfjs ${toTfjs}, vs the unmerged adapters ${toUnmerged}`);
  await session.release();
  model.dispose();
});

test('a stopped and resumed LoRA run, and one on two gradient workers, equal the uninterrupted run; a LoRA state resumes only as LoRA', async () => {
  const parent = randomWeights(tiny, 5);
  const c = config({ maxSteps: 8, evalInterval: 4 });
  const run = async (dir: string, opts: { stopAt?: number; resume?: boolean; seed?: number }): Promise<StepMetrics[]> => {
    const model = new GPT(tiny, { seed: opts.seed ?? 5 });
    model.loadWeights(parent);
    const logs: StepMetrics[] = [];
    const controller = new AbortController();
    await train({ model, config: c, data: data(), outDir: dir, workers: 1, lora, resume: opts.resume, signal: controller.signal, onLog: (m) => { logs.push(m); if (m.step === opts.stopAt) controller.abort(); } });
    model.dispose();
    return logs;
  };
  const full = await run(outDir(), {});
  const dir = outDir();
  assert.deepEqual((await run(dir, { stopAt: 6 })).map((m) => m.step), [1, 2, 3, 4, 5, 6]);
  const resumed = await run(dir, { resume: true, seed: 99 });
  assert.deepEqual(resumed.map((m) => m.step), [7, 8]);
  for (const m of resumed) assert.ok(Math.abs(m.trainLoss - full[m.step - 1].trainLoss) < 1e-5, `step ${m.step}: ${m.trainLoss} vs ${full[m.step - 1].trainLoss}`);

  // Two gradient workers read the merged weights from shared memory: the same run.
  const parallel: StepMetrics[] = [];
  const shared = new GPT(tiny, { seed: 5 });
  shared.loadWeights(parent);
  const result = await train({ model: shared, config: c, data: data(), outDir: outDir(), workers: 2, lora, onLog: (m) => parallel.push(m) });
  assert.equal(result.workers, 2, result.workersNote);
  for (const m of parallel) assert.ok(Math.abs(m.trainLoss - full[m.step - 1].trainLoss) < 1e-5, `2 workers, step ${m.step}: ${m.trainLoss} vs ${full[m.step - 1].trainLoss}`);
  shared.dispose();

  const model = new GPT(tiny, { seed: 5 });
  await assert.rejects(train({ model, config: c, data: data(), outDir: dir, workers: 1, resume: true }), /trained low-rank adapters: resume it the same way/);
  await assert.rejects(train({ model, config: c, data: data(), outDir: dir, workers: 1, lora: loraConfig(2), resume: true }), /adapters do not match: h\.0\.attn\.wqkv\.loraA is \[16,4\], this run needs \[16,2\]/);
  model.dispose();
});

test('wlm fine-tune --lora: bad ranks and mixed modes are clean errors; a LoRA fine-tune records its mode and keeps the parent outside the adapted matrices', async () => {
  const first = path.join(root, 'first');
  const made = wlm('train', sampleProject, '--preset', 'tiny', '--steps', '4', '--out', first, '--from-scratch');
  assert.equal(made.code, 0, made.stderr);
  assertCleanError(wlm('fine-tune', first, sampleProject, '--scope', 'folder', '--lora', '0'), /--lora must be a positive integer, got "0"/);
  assertCleanError(wlm('fine-tune', first, sampleProject, '--scope', 'folder', '--lora', '999'), /--lora must be a rank from 1 to \d+ \(the model's width\)/);
  assertCleanError(wlm('fine-tune', first, sampleProject, '--scope', 'folder', '--lora', '4', '--freeze-layers', '1'), /--lora or --freeze-layers, not both/);
  assertCleanError(wlm('train', sampleProject, '--lora', '4', '--from-scratch', '--out', path.join(root, 'never')), /low-rank adapters need pre-trained weights to adapt, and a run from scratch has none/);

  const tuned = path.join(root, 'tuned');
  const run = wlm('fine-tune', first, sampleProject, '--scope', 'folder', '--steps', '3', '--lora', '4', '--out', tuned);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /training low-rank adapters of rank 4/);
  const config = JSON.parse(readFileSync(path.join(tuned, 'config.json'), 'utf8'));
  assert.deepEqual(config.fineTune, { mode: 'lora', rank: 4, alpha: 8 });
  const [before, afterRun] = [await readWeights(first), await readWeights(tuned)];
  for (const [name, w] of before) {
    if (isAdapted(name)) assert.notDeepEqual(afterRun.get(name)!.data, w.data, `${name} took the adapters in`);
    else assert.deepEqual(afterRun.get(name)!.data, w.data, `${name} is the parent's`);
  }
});

test('a LoRA fine-tune stopped midway resumes as one: config.json keeps the mode', async () => {
  const parent = await makeStandInBase(path.join(root, 'stand-in'), 4);
  const folder = path.join(sampleProject, 'src');
  const outDir = path.join(root, 'stopped');
  const controller = new AbortController();
  const first = await trainOnFolder({
    folder, outDir, init: parent, steps: 6, loraRank: 4, skipExport: true, signal: controller.signal,
    onEvent: (e) => { if (e.type === 'log' && e.metrics.step === 3) controller.abort(); },
  });
  assert.equal(first.result.stopReason, 'cancelled');
  const steps: number[] = [];
  // The mode is config.json's, not asked again; a full run would refuse the state (train.ts).
  const second = await trainOnFolder({ folder, outDir, resume: true, skipExport: true, onEvent: (e) => { if (e.type === 'log') steps.push(e.metrics.step); } });
  assert.deepEqual(steps, [4, 5, 6], 'continued where it stopped');
  assert.deepEqual(second.config.fineTune, { mode: 'lora', rank: 4, alpha: 8 });
  const [before, afterRun] = [await readWeights(parent), await readWeights(outDir)];
  for (const [name, w] of before) if (!isAdapted(name)) assert.deepEqual(afterRun.get(name)!.data, w.data, `${name} is the parent's`);
});
