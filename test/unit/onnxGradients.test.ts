// The onnxruntime training engine: its loss and every parameter's gradient (hand-written backward
// in gradientGraph.ts, embedding lookups finished on the host) against TensorFlow.js's, which
// differentiates gpt.ts's forward, on the same weights and batch. A wrong sign, a missing term or a
// transposed product in the backward shows as a gradient that disagrees.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { GPT } from '../../models/src/model/gpt';
import { selectBackend } from '../../models/src/train/backend';
import { onnx } from 'onnx-proto';
import { OnnxGradients } from '../../models/src/train/onnxGradients';
import { buildGradientGraph } from '../../models/src/train/gradientGraph';
import { isAdapted } from '../../models/src/train/lora';
import type { GPTConfig } from '../../models/src/model/config';
import type { Batch } from '../../models/src/data/dataset';

const tiny: GPTConfig = { vocabSize: 40, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0 };

before(async () => {
  await selectBackend('cpu');
});

function randomBatch(c: GPTConfig, B: number, T: number, seed: number): Batch {
  let s = seed;
  const next = (): number => { s = (s * 1103515245 + 12345) >>> 0; return (s >>> 8) % c.vocabSize; };
  const x = Int32Array.from({ length: B * T }, next);
  const y = Int32Array.from({ length: B * T }, next);
  return { x, y, batchSize: B, blockSize: T };
}

async function tfjsGradients(model: GPT, batch: Batch): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const names = [...model.params.keys()];
  const x = tf.tensor2d(batch.x, [batch.batchSize, batch.blockSize], 'int32');
  const y = tf.tensor2d(batch.y, [batch.batchSize, batch.blockSize], 'int32');
  const { value, grads } = tf.variableGrads(() => model.loss(x, y), names.map((n) => model.params.get(n)!));
  const out = new Map<string, Float32Array>();
  for (const name of names) out.set(name, Float32Array.from(await grads[model.params.get(name)!.name].data() as Float32Array));
  const loss = (await value.data())[0];
  tf.dispose([x, y, value, ...Object.values(grads)]);
  return { loss, grads: out };
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) { diff += (a[i] - b[i]) ** 2; norm += b[i] ** 2; }
  return Math.sqrt(diff / Math.max(norm, 1e-30));
}

test('onnxruntime gradients: the loss and every parameter\'s gradient equal TensorFlow.js\'s', async () => {
  // Trained-looking weights, not the initial ones: LayerNorm gains and biases away from 1 and 0.
  const model = new GPT(tiny, { seed: 7 });
  const weights = model.getWeights();
  let s = 3;
  for (const [name, w] of weights) {
    for (let i = 0; i < w.data.length; i++) { s = (s * 1664525 + 1013904223) >>> 0; w.data[i] += ((s / 2 ** 32) - 0.5) * (name.includes('.g') || name.includes('.b') ? 0.5 : 0.1); }
  }
  model.loadWeights(weights);
  const master = new Map([...weights].map(([name, w]) => [name, w.data]));
  const names = [...weights.keys()];
  const engine = OnnxGradients.start(tiny, master, names, 1);
  assert.ok(typeof engine !== 'string', String(engine));
  try {
    for (const [B, T] of [[3, 8], [2, 5]]) {
      const batch = randomBatch(tiny, B, T, B * 10 + T);
      const expected = await tfjsGradients(model, batch);
      const into = new Map(names.map((n) => [n, new Float32Array(master.get(n)!.length)]));
      const loss = await engine.gradients([{ batch, weight: 1 }], into);
      assert.ok(Math.abs(loss - expected.loss) < 1e-5, `loss ${loss} vs ${expected.loss}`);
      assert.ok(Math.abs(await engine.evaluate([batch]) - expected.loss) < 1e-5);
      for (const name of names) {
        const err = relativeError(into.get(name)!, expected.grads.get(name)!);
        assert.ok(err < 1e-4, `${B}x${T} ${name}: relative error ${err}`);
      }
    }
  } finally {
    await engine.close();
    model.dispose();
  }
});

test('a fine-tune of some parameters computes only their gradients, each equal to the whole backward pass\'s', async () => {
  const model = new GPT(tiny, { seed: 9 });
  const weights = model.getWeights();
  const master = new Map([...weights].map(([name, w]) => [name, w.data]));
  const all = [...weights.keys()];
  const batch = randomBatch(tiny, 2, 8, 5);
  const expected = await tfjsGradients(model, batch);
  const gemms = (trained: string[]) => onnx.ModelProto.decode(buildGradientGraph(tiny, 2, 8, new Set(trained))).graph!.node!.filter((n) => n.opType === 'Gemm' || n.opType === 'MatMul').length;
  for (const [mode, trained] of [
    ['the last block and the final LayerNorm (freezeLayers 1)', all.filter((n) => n.startsWith('h.1.') || n.startsWith('lnf.'))],
    ['the matrices low-rank adapters train on', all.filter(isAdapted)],
  ] as const) {
    // Fewer matrix products than the whole model's backward: the frozen parameters' are not computed.
    assert.ok(gemms(trained) < gemms(all), `${mode}: ${gemms(trained)} matrix products, the whole model's backward has ${gemms(all)}`);
    const engine = OnnxGradients.start(tiny, master, trained, 1);
    assert.ok(typeof engine !== 'string', String(engine));
    try {
      const into = new Map(trained.map((n) => [n, new Float32Array(master.get(n)!.length)]));
      const loss = await engine.gradients([{ batch, weight: 1 }], into);
      assert.ok(Math.abs(loss - expected.loss) < 1e-5, `${mode}: loss ${loss} vs ${expected.loss}`);
      for (const name of trained) {
        const err = relativeError(into.get(name)!, expected.grads.get(name)!);
        assert.ok(err < 1e-4, `${mode} ${name}: relative error ${err}`);
      }
    } finally {
      await engine.close();
    }
  }
  model.dispose();
});
