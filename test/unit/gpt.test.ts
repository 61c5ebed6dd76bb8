// The GPT: initial loss, deterministic init, gradients against finite differences and against
// tfjs autograd, causality, and the wasm backend against cpu. Tiny configs, cpu backend.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { GPT, initialWeights, type AttentionKernel } from '../../models/src/model/gpt';
import { selectBackend } from '../../models/src/train/backend';
import { parameterShapes } from '../../models/src/model/checkpoint';
import { countParameters, type GPTConfig } from '../../models/src/model/config';

const tiny: GPTConfig = { vocabSize: 61, blockSize: 12, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0 };

before(async () => {
  await selectBackend('cpu');
});

/** Deterministic pseudo-random token ids in [0, vocab), independent across seeds (murmur3 mix). */
function tokens(B: number, T: number, vocab: number, seed: number): tf.Tensor2D {
  const ids = Array.from({ length: B * T }, (_, i) => {
    let h = Math.imul(seed + 1, 0x9e3779b1) ^ i;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return ((h ^ (h >>> 16)) >>> 0) % vocab;
  });
  return tf.tensor2d(ids, [B, T], 'int32');
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function lossAndGrads(model: GPT, x: tf.Tensor2D, y: tf.Tensor2D): { loss: number; grads: Map<string, Float32Array> } {
  const vars = [...model.params.values()];
  const { value, grads } = tf.variableGrads(() => model.loss(x, y), vars);
  const out = new Map<string, Float32Array>();
  [...model.params.keys()].forEach((name, k) => out.set(name, grads[vars[k].name].dataSync() as Float32Array));
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, grads: out };
}

test('parameters have the contract names and shapes, and their count matches config.countParameters', () => {
  const model = new GPT(tiny, { seed: 1 });
  assert.deepEqual([...model.params.keys()], parameterShapes(tiny).map(([n]) => n));
  assert.deepEqual(model.params.get('h.1.attn.wqkv')!.shape, [16, 48]);
  assert.deepEqual(model.params.get('h.0.mlp.wproj')!.shape, [64, 16]);
  const total = [...model.params.values()].reduce((n, v) => n + v.size, 0);
  assert.equal(total, countParameters(tiny));
  model.dispose();
});

test('init is seeded: same seed same weights, other seed other weights; std 0.02, residual projections scaled, LN gains 1', () => {
  const a = initialWeights(tiny, 7);
  const b = initialWeights(tiny, 7);
  const c = initialWeights(tiny, 8);
  assert.deepEqual(a.get('wte')!.data, b.get('wte')!.data);
  assert.ok(maxAbsDiff(a.get('wte')!.data, c.get('wte')!.data) > 0.01);
  const std = (x: Float32Array): number => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
  const big = initialWeights({ ...tiny, vocabSize: 4096, nEmbd: 64, nLayer: 4 }, 1);
  assert.ok(Math.abs(std(big.get('wte')!.data) - 0.02) < 0.0005, `wte std ${std(big.get('wte')!.data)}`);
  const wantResidual = 0.02 / Math.sqrt(8);
  assert.ok(Math.abs(std(big.get('h.0.mlp.wproj')!.data) - wantResidual) < 0.0005, `wproj std ${std(big.get('h.0.mlp.wproj')!.data)}`);
  assert.ok(big.get('h.0.ln1.g')!.data.every((v) => v === 1));
  assert.ok(big.get('h.0.attn.bqkv')!.data.every((v) => v === 0));
});

test('initial loss is about ln(vocab) (the tied head does not blow the logits up)', () => {
  const config: GPTConfig = { vocabSize: 512, blockSize: 32, nLayer: 2, nHead: 2, nEmbd: 64, dropout: 0 };
  const model = new GPT(config, { seed: 3 });
  const loss = tf.tidy(() => model.loss(tokens(4, 32, 512, 1), tokens(4, 32, 512, 2)).dataSync()[0]);
  assert.ok(Math.abs(loss - Math.log(512)) < 0.1, `initial loss ${loss}, ln(512) = ${Math.log(512)}`);
  model.dispose();
});

test('forward gives (B, T, V) logits whose cross-entropy is loss()', () => {
  const model = new GPT(tiny, { seed: 2 });
  const x = tokens(3, 12, 61, 5);
  const y = tokens(3, 12, 61, 6);
  const logits = model.forward(x);
  assert.deepEqual(logits.shape, [3, 12, 61]);
  const manual = tf.tidy(() => {
    const logp = tf.logSoftmax(tf.reshape(logits, [-1, 61]));
    return -tf.mean(tf.sum(tf.mul(logp, tf.oneHot(tf.reshape(y, [-1]) as tf.Tensor1D, 61)), 1)).dataSync()[0];
  });
  const loss = tf.tidy(() => model.loss(x, y).dataSync()[0]);
  assert.ok(Math.abs(manual - loss) < 1e-5, `loss ${loss} vs log-softmax ${manual}`);
  tf.dispose([logits, x, y]);
  model.dispose();
});

test('split2d attention (2-D matmuls, host-cut heads) matches batched attention: loss and every gradient', () => {
  const a = new GPT(tiny, { seed: 4, attention: 'split2d' });
  const b = new GPT(tiny, { seed: 4, attention: 'batched' });
  const x = tokens(3, 12, 61, 9);
  const y = tokens(3, 12, 61, 10);
  const ga = lossAndGrads(a, x, y);
  const gb = lossAndGrads(b, x, y);
  assert.ok(Math.abs(ga.loss - gb.loss) < 1e-6);
  for (const [name, g] of ga.grads) {
    const diff = maxAbsDiff(g, gb.grads.get(name)!);
    assert.ok(diff < 1e-5, `${name}: gradient differs by ${diff}`);
  }
  tf.dispose([x, y]);
  a.dispose();
  b.dispose();
});

for (const attention of ['split2d', 'batched'] as AttentionKernel[]) {
  test(`gradients match finite differences along random directions (${attention})`, () => {
    const model = new GPT(tiny, { seed: 5, attention });
    const x = tokens(2, 12, 61, 11);
    const y = tokens(2, 12, 61, 12);
    const { grads } = lossAndGrads(model, x, y);
    const base = model.getWeights();
    const lossAt = (direction: Map<string, Float32Array>, eps: number): number => {
      for (const [name, d] of direction) {
        const w = base.get(name)!.data;
        model.setParam(name, w.map((v, i) => v + eps * d[i]));
      }
      const loss = tf.tidy(() => model.loss(x, y).dataSync()[0]);
      for (const name of direction.keys()) model.setParam(name, base.get(name)!.data);
      return loss;
    };
    // One direction per parameter tensor, unit norm, seeded; central differences in float32
    // (noise ~1e-6 / 2eps on the numeric side).
    let seed = 99;
    const rand = (): number => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647 - 0.5;
    };
    const groups = [...model.params.keys()].map((name) => [name]); // every tensor on its own
    const eps = 1e-2;
    for (const group of groups) {
      const direction = new Map(group.map((name) => [name, Float32Array.from(base.get(name)!.data, () => rand())]));
      const norm = Math.sqrt([...direction.values()].reduce((s, d) => s + d.reduce((t, v) => t + v * v, 0), 0));
      for (const d of direction.values()) d.forEach((v, i) => (d[i] = v / norm));
      let analytic = 0;
      for (const [name, d] of direction) analytic += grads.get(name)!.reduce((s, g, i) => s + g * d[i], 0);
      const numeric = (lossAt(direction, eps) - lossAt(direction, -eps)) / (2 * eps);
      const tolerance = 2e-4 + 0.01 * Math.abs(analytic);
      assert.ok(Math.abs(numeric - analytic) < tolerance, `${group.join('+')}: numeric ${numeric} vs analytic ${analytic}`);
    }
    tf.dispose([x, y]);
    model.dispose();
  });
}

for (const attention of ['split2d', 'batched'] as AttentionKernel[]) {
  test(`causality: changing token t never changes the logits before t (${attention})`, () => {
    const model = new GPT(tiny, { seed: 6, attention });
    const ids = tokens(2, 12, 61, 13);
    const original = ids.arraySync();
    const base = model.forward(ids);
    for (const t of [0, 5, 11]) {
      const changed = original.map((row) => row.slice());
      for (const row of changed) row[t] = (row[t] + 17) % 61;
      const other = tf.tensor2d(changed, [2, 12], 'int32');
      const logits = model.forward(other);
      const before = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(base, [0, 0, 0], [2, t, 61]), tf.slice(logits, [0, 0, 0], [2, t, 61])))).dataSync()[0]);
      const at = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(base, [0, t, 0], [2, 1, 61]), tf.slice(logits, [0, t, 0], [2, 1, 61])))).dataSync()[0]);
      if (t > 0) assert.equal(before, 0, `position < ${t} changed by ${before}`);
      assert.ok(at > 1e-4, `position ${t} itself should change (diff ${at})`);
      tf.dispose([other, logits]);
    }
    tf.dispose([ids, base]);
    model.dispose();
  });
}

test('getWeights/loadWeights round-trip exactly; a wrong shape is a clear error', () => {
  const a = new GPT(tiny, { seed: 1 });
  const b = new GPT(tiny, { seed: 2 });
  b.loadWeights(a.getWeights());
  const x = tokens(1, 12, 61, 3);
  const la = a.forward(x);
  const lb = b.forward(x);
  assert.equal(maxAbsDiff(la.dataSync(), lb.dataSync()), 0);
  const bad = a.getWeights();
  bad.set('wpe', { shape: [11, 16], data: new Float32Array(176) });
  assert.throws(() => b.loadWeights(bad), /wpe has shape \[11,16\], the model needs \[12,16\]/);
  tf.dispose([x, la, lb]);
  a.dispose();
  b.dispose();
});

test('bad input: too long a sequence, dropout, bad config give clear errors', () => {
  const model = new GPT(tiny, { seed: 1 });
  const x = tokens(1, 13, 61, 1);
  assert.throws(() => model.forward(x), /sequence of 13 tokens exceeds blockSize 12/);
  x.dispose();
  model.dispose();
  assert.throws(() => new GPT({ ...tiny, dropout: 0.1 }), /dropout 0.1 is not supported/);
  assert.throws(() => new GPT({ ...tiny, nHead: 3 }), /divisible by nHead/);
});

test('wasm backend: same loss (1e-5) and gradients (1e-5) as cpu from the same weights', async () => {
  const config: GPTConfig = { vocabSize: 128, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32, dropout: 0 };
  const onCpu = new GPT(config, { seed: 8 });
  const xc = tokens(2, 16, 128, 1);
  const yc = tokens(2, 16, 128, 2);
  const cpu = lossAndGrads(onCpu, xc, yc);
  tf.dispose([xc, yc]);
  onCpu.dispose();
  await selectBackend('wasm');
  try {
    const onWasm = new GPT(config, { seed: 8 });
    assert.equal(onWasm.attention, 'split2d');
    const xw = tokens(2, 16, 128, 1);
    const yw = tokens(2, 16, 128, 2);
    const wasm = lossAndGrads(onWasm, xw, yw);
    assert.ok(Math.abs(cpu.loss - wasm.loss) < 1e-5, `cpu ${cpu.loss} vs wasm ${wasm.loss}`);
    for (const [name, g] of cpu.grads) assert.ok(maxAbsDiff(g, wasm.grads.get(name)!) < 1e-5, `${name} gradient differs`);
    tf.dispose([xw, yw]);
    onWasm.dispose();
  } finally {
    await selectBackend('cpu');
  }
});
