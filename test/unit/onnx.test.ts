// ONNX export: the exported graph must compute what the GPT computes. Checked against a plain-JS
// reference forward (float64, written from the contract in gpt.ts), with and without the KV cache,
// and against the tfjs GPT itself when gpt.ts is present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { GPTConfig } from '../../models/src/model/config';
import { parameterShapes, type WeightTensor } from '../../models/src/model/checkpoint';
import { buildOnnxModel, onnxNames, quantizeInt8 } from '../../models/src/model/onnx';
import { GPT } from '../../models/src/model/gpt';

const tinyConfig: GPTConfig = { vocabSize: 53, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0 };

/** Deterministic random weights in the contract's names and shapes (mulberry32, N(0, 0.2)-ish). */
function randomWeights(c: GPTConfig, seed = 1): Map<string, WeightTensor> {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const weights = new Map<string, WeightTensor>();
  for (const [name, shape] of parameterShapes(c)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const isGain = name.endsWith('.g');
    for (let i = 0; i < data.length; i++) data[i] = isGain ? 1 + (rand() - 0.5) * 0.2 : (rand() - 0.5) * 0.6;
    weights.set(name, { shape, data });
  }
  return weights;
}

/** Reference logits (T, V) for one sequence, straight from the architecture's definition. */
function referenceLogits(c: GPTConfig, w: Map<string, WeightTensor>, ids: number[]): Float64Array[] {
  const d = c.nEmbd, hs = d / c.nHead;
  const W = (n: string): Float32Array => w.get(n)!.data;
  const matVec = (x: ArrayLike<number>, m: Float32Array, rows: number, cols: number, bias?: Float32Array): Float64Array => {
    const out = new Float64Array(cols);
    for (let j = 0; j < cols; j++) {
      let acc = bias ? bias[j] : 0;
      for (let r = 0; r < rows; r++) acc += x[r] * m[r * cols + j];
      out[j] = acc;
    }
    return out;
  };
  const layerNorm = (x: Float64Array, g: Float32Array, b: Float32Array): Float64Array => {
    const mean = x.reduce((a, v) => a + v, 0) / x.length;
    const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
    return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * g[i] + b[i]);
  };
  const gelu = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

  let xs = ids.map((id, t) => Float64Array.from({ length: d }, (_, i) => W('wte')[id * d + i] + W('wpe')[t * d + i]));
  for (let l = 0; l < c.nLayer; l++) {
    const p = `h.${l}`;
    const qkv = xs.map((x) => matVec(layerNorm(x, W(`${p}.ln1.g`), W(`${p}.ln1.b`)), W(`${p}.attn.wqkv`), d, 3 * d, W(`${p}.attn.bqkv`)));
    const attnOut = xs.map((_, t) => {
      const y = new Float64Array(d);
      for (let h = 0; h < c.nHead; h++) {
        const scores = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hs; i++) dot += qkv[t][h * hs + i] * qkv[s][d + h * hs + i];
          scores.push(dot / Math.sqrt(hs));
        }
        const max = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - max));
        const sum = e.reduce((a, v) => a + v, 0);
        for (let s = 0; s <= t; s++) for (let i = 0; i < hs; i++) y[h * hs + i] += (e[s] / sum) * qkv[s][2 * d + h * hs + i];
      }
      return matVec(y, W(`${p}.attn.wo`), d, d, W(`${p}.attn.bo`));
    });
    xs = xs.map((x, t) => x.map((v, i) => v + attnOut[t][i]));
    xs = xs.map((x) => {
      const f = matVec(layerNorm(x, W(`${p}.ln2.g`), W(`${p}.ln2.b`)), W(`${p}.mlp.wfc`), d, 4 * d, W(`${p}.mlp.bfc`)).map(gelu);
      const m = matVec(f, W(`${p}.mlp.wproj`), 4 * d, d, W(`${p}.mlp.bproj`));
      return x.map((v, i) => v + m[i]);
    });
  }
  return xs.map((x) => {
    const h = layerNorm(x, W('lnf.g'), W('lnf.b'));
    return Float64Array.from({ length: c.vocabSize }, (_, v) => h.reduce((a, hv, i) => a + hv * W('wte')[v * d + i], 0));
  });
}

interface Step { logits: Float32Array; present: Map<string, ort.Tensor> }

/** logit_positions for every fed position, 0..n-1. */
function everyPosition(n: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [n]);
}

/** One call of the exported graph for batch 1: new ids on top of a (possibly empty) cache; logits of `positions` (default: every one). */
async function runStep(session: ort.InferenceSession, c: GPTConfig, ids: number[], past?: Map<string, ort.Tensor>, positions?: number[]): Promise<Step> {
  const hs = c.nEmbd / c.nHead;
  const feeds: Record<string, ort.Tensor> = {
    [onnxNames.inputIds]: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    [onnxNames.logitPositions]: positions ? new ort.Tensor('int64', BigInt64Array.from(positions.map(BigInt)), [positions.length]) : everyPosition(ids.length),
  };
  for (let l = 0; l < c.nLayer; l++) {
    for (const name of [onnxNames.pastKey(l), onnxNames.pastValue(l)]) {
      const present = past?.get(name.replace('past', 'present'));
      feeds[name] = present ?? new ort.Tensor('float32', new Float32Array(0), [1, c.nHead, 0, hs]);
    }
  }
  const out = await session.run(feeds);
  const present = new Map<string, ort.Tensor>();
  for (const [name, t] of Object.entries(out)) if (name.startsWith('present')) present.set(name, t);
  return { logits: out[onnxNames.logits].data as Float32Array, present };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const ids = [3, 17, 52, 0, 9, 9, 41, 26, 8, 33, 12, 5];

test('exported graph matches the reference forward to 1e-4 (full sequence, empty past)', async () => {
  const weights = randomWeights(tinyConfig);
  const session = await ort.InferenceSession.create(buildOnnxModel(tinyConfig, weights));
  const { logits, present } = await runStep(session, tinyConfig, ids);
  const reference = referenceLogits(tinyConfig, weights, ids);
  assert.equal(logits.length, ids.length * tinyConfig.vocabSize);
  const diff = maxAbsDiff(logits, reference.flatMap((row) => Array.from(row)));
  assert.ok(diff <= 1e-4, `max abs diff ${diff}`);
  assert.deepEqual(present.get(onnxNames.presentKey(1))!.dims, [1, tinyConfig.nHead, ids.length, tinyConfig.nEmbd / tinyConfig.nHead]);
});

test('exported graph matches the tfjs GPT to 1e-4 (gpt.ts forward, batch of 2)', async () => {
  await tf.setBackend('cpu');
  const c: GPTConfig = { vocabSize: 97, blockSize: 24, nLayer: 2, nHead: 4, nEmbd: 32, dropout: 0 };
  const gpt = new GPT(c, { seed: 5 });
  gpt.loadWeights(randomWeights(c, 5)); // larger than the 0.02 init, so the logits are far from flat
  const rows = [[1, 5, 9, 96, 0, 33, 33, 2, 70, 14, 3, 8, 60, 61, 62, 40, 41, 11, 12, 13], [95, 94, 0, 0, 1, 2, 3, 50, 51, 52, 7, 7, 7, 88, 89, 90, 30, 31, 32, 6]];
  const idx = tf.tensor2d(rows, [2, 20], 'int32');
  const logits = gpt.forward(idx);
  const expected = logits.dataSync() as Float32Array;
  idx.dispose();
  logits.dispose();
  const session = await ort.InferenceSession.create(buildOnnxModel(c, gpt.getWeights()));
  gpt.dispose();
  const hs = c.nEmbd / c.nHead;
  const feeds: Record<string, ort.Tensor> = { [onnxNames.inputIds]: new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [2, 20]), [onnxNames.logitPositions]: everyPosition(20) };
  for (let l = 0; l < c.nLayer; l++) {
    feeds[onnxNames.pastKey(l)] = new ort.Tensor('float32', new Float32Array(0), [2, c.nHead, 0, hs]);
    feeds[onnxNames.pastValue(l)] = new ort.Tensor('float32', new Float32Array(0), [2, c.nHead, 0, hs]);
  }
  const actual = (await session.run(feeds))[onnxNames.logits].data as Float32Array;
  const diff = maxAbsDiff(actual, expected);
  assert.ok(diff <= 1e-4, `max abs diff ${diff}`);
  assert.ok(Math.max(...expected) - Math.min(...expected) > 1, 'logits should not be flat');
});

test('KV-cached decoding gives the same logits as recomputing the whole sequence', async () => {
  const weights = randomWeights(tinyConfig, 7);
  const session = await ort.InferenceSession.create(buildOnnxModel(tinyConfig, weights));
  const full = await runStep(session, tinyConfig, ids);
  const V = tinyConfig.vocabSize;
  // prefill 5 tokens, then 3 tokens at once, then one at a time: each chunk sees the right positions and mask
  let step = await runStep(session, tinyConfig, ids.slice(0, 5));
  let done = 5;
  assert.ok(maxAbsDiff(step.logits, full.logits.subarray(0, 5 * V)) <= 1e-5);
  for (const chunk of [3, 1, 1, 1, 1]) {
    step = await runStep(session, tinyConfig, ids.slice(done, done + chunk), step.present);
    const diff = maxAbsDiff(step.logits, full.logits.subarray(done * V, (done + chunk) * V));
    assert.ok(diff <= 1e-5, `chunk at ${done}: max abs diff ${diff}`);
    done += chunk;
  }
  assert.equal(done, ids.length);
});

test('logit_positions: the rows asked for, in their order, equal those of every position (on top of a cache too)', async () => {
  const weights = randomWeights(tinyConfig, 9);
  const session = await ort.InferenceSession.create(buildOnnxModel(tinyConfig, weights));
  const V = tinyConfig.vocabSize;
  const full = await runStep(session, tinyConfig, ids);
  const last = await runStep(session, tinyConfig, ids, undefined, [ids.length - 1]);
  assert.equal(last.logits.length, V);
  assert.equal(maxAbsDiff(last.logits, full.logits.subarray((ids.length - 1) * V)), 0);
  const picked = await runStep(session, tinyConfig, ids, undefined, [7, 2]);
  assert.equal(maxAbsDiff(picked.logits, [...full.logits.subarray(7 * V, 8 * V), ...full.logits.subarray(2 * V, 3 * V)]), 0);
  // The cache the positions leave out is still whole: a prefill asked for its last row only continues as one asked for every row.
  const prefill = await runStep(session, tinyConfig, ids.slice(0, 8), undefined, [7]);
  const next = await runStep(session, tinyConfig, ids.slice(8), prefill.present, [ids.length - 9]);
  assert.ok(maxAbsDiff(next.logits, full.logits.subarray((ids.length - 1) * V)) <= 1e-5);
});

test('a future token never changes a past logit', async () => {
  const weights = randomWeights(tinyConfig, 3);
  const session = await ort.InferenceSession.create(buildOnnxModel(tinyConfig, weights));
  const a = await runStep(session, tinyConfig, [1, 2, 3, 4, 5]);
  const b = await runStep(session, tinyConfig, [1, 2, 3, 4, 50]);
  const V = tinyConfig.vocabSize;
  assert.equal(maxAbsDiff(a.logits.subarray(0, 4 * V), b.logits.subarray(0, 4 * V)), 0);
  assert.ok(maxAbsDiff(a.logits.subarray(4 * V), b.logits.subarray(4 * V)) > 1e-3);
});

test('int8 quantization (weights, or weights and activations): 3x smaller file, logits close to float', async () => {
  const c: GPTConfig = { vocabSize: 256, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 64, dropout: 0 };
  const weights = randomWeights(c, 11);
  const floatBytes = buildOnnxModel(c, weights);
  const int8Bytes = buildOnnxModel(c, weights, { quantize: true });
  assert.ok(int8Bytes.byteLength < floatBytes.byteLength * 0.35, `int8 ${int8Bytes.byteLength} vs float ${floatBytes.byteLength}`);
  const a = await runStep(await ort.InferenceSession.create(floatBytes), c, ids);
  const b = await runStep(await ort.InferenceSession.create(int8Bytes), c, ids);
  const range = Math.max(...a.logits) - Math.min(...a.logits);
  const diff = maxAbsDiff(a.logits, b.logits);
  assert.ok(diff > 0 && diff < 0.05 * range, `int8 logits diff ${diff} (float logits range ${range})`);
  // int8 activations too: MatMulInteger in the blocks, same file size, a little further from float
  const dynamicBytes = buildOnnxModel(c, weights, { quantize: 'dynamic' });
  assert.ok(dynamicBytes.byteLength < floatBytes.byteLength * 0.35);
  const d = await runStep(await ort.InferenceSession.create(dynamicBytes), c, ids);
  const dynamicDiff = maxAbsDiff(a.logits, d.logits);
  assert.ok(dynamicDiff > 0 && dynamicDiff < 0.08 * range, `dynamic int8 logits diff ${dynamicDiff} (float logits range ${range})`);
});

test('quantizeInt8 is symmetric per channel and round-trips within half a step', () => {
  const w: WeightTensor = { shape: [2, 3], data: Float32Array.from([1, -2, 0.5, -0.25, 4, 0]) };
  const { q, scale } = quantizeInt8(w, 1);
  assert.deepEqual(Array.from(scale), [1 / 127, 4 / 127, 0.5 / 127].map((v) => Math.fround(v)));
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(q[i] * scale[i % 3] - w.data[i]) <= scale[i % 3] / 2 + 1e-9);
  assert.equal(q[0], 127);
  assert.equal(q[4], 127);
});

test('missing or misshapen weights get a clear error naming the weight', () => {
  const weights = randomWeights(tinyConfig);
  weights.delete('h.1.mlp.wfc');
  assert.throws(() => buildOnnxModel(tinyConfig, weights), /weight "h\.1\.mlp\.wfc" is missing/);
  const other = randomWeights({ ...tinyConfig, nEmbd: 8 });
  assert.throws(() => buildOnnxModel(tinyConfig, other), /weight "wte" has shape \[53,8\].*expected \[53,16\]/);
});
