// Checkpoint → model.onnx: the GPT of gpt.ts rebuilt as a standard ONNX graph (IR 8, opset 20) with
// past/present key-value inputs and outputs, so inference can feed one new position per token, and
// the positions whose logits are wanted as an input, so a prompt's prefill computes the head once.
// Owns the graph and optional int8 weight quantization; it does not run the model (see session.ts)
// and reads weights through checkpoint.ts only (pure Node, no tfjs).
import { performance } from 'node:perf_hooks';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import type { GPTConfig } from './config';
import { parameterShapes, readModelConfig, readWeights, type WeightTensor } from './checkpoint';
import { writeFileAtomic } from '../util/atomicFiles';
import { GraphBuilder, valueInfo } from './onnxGraph';

export const ONNX_FILE = 'model.onnx';
export const ONNX_IR_VERSION = 8;
// 20: the first with a Gelu operator (approximate "tanh", as gpt.ts): one kernel instead of eight
// element-wise nodes, a decode step 1.15 -> 0.98 ms (small preset, one thread).
export const ONNX_OPSET = 20;

/** Names of the graph's inputs and outputs; session.ts feeds and reads these. */
export const onnxNames = {
  inputIds: 'input_ids', // int64 [batch, seq]
  pastKey: (layer: number) => `past_key_${layer}`, // float32 [batch, nHead, past, headSize]
  pastValue: (layer: number) => `past_value_${layer}`,
  // int64 [positions]: which of the fed positions (0..seq-1) get logits. Completion asks for the
  // last one only: the head is 4096 x 128, and for a 112-token prefill it was a third of the run
  // (6.3 -> 4.8 ms); evaluation asks for every position.
  logitPositions: 'logit_positions',
  logits: 'logits', // float32 [batch, positions, vocab]
  // softmax(logits): the completion mixture reads probabilities, and onnxruntime's vectorized exp
  // is far cheaper than 4,096 Math.exp calls a token in JavaScript (75 us).
  probs: 'probs', // float32 [batch, positions, vocab]
  presentKey: (layer: number) => `present_key_${layer}`, // float32 [batch, nHead, past + seq, headSize]
  presentValue: (layer: number) => `present_value_${layer}`,
};

/**
 * false: float32 throughout. true: int8 weights (per output channel, symmetric) behind
 * DequantizeLinear, folded back to float when the session loads: a 4x smaller file, float speed.
 * 'dynamic': the blocks' matrix products also run in int8 (DynamicQuantizeLinear + MatMulInteger
 * on each activation); faster on CPU, at some accuracy (figures in test/unit/onnx.test.ts).
 */
export type OnnxQuantization = boolean | 'dynamic';

export interface BuildOnnxOptions {
  quantize?: OnnxQuantization;
  name?: string; // recorded as the graph name
}

function checkWeights(c: GPTConfig, weights: Map<string, WeightTensor>): void {
  for (const [name, shape] of parameterShapes(c)) {
    const w = weights.get(name);
    if (!w) throw new Error(`ONNX export: weight "${name}" is missing (expected shape [${shape}]); is the checkpoint from another model?`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (w.shape.join(',') !== shape.join(',') || w.data.length !== size) {
      throw new Error(`ONNX export: weight "${name}" has shape [${w.shape}] (${w.data.length} values), expected [${shape}] from config.json`);
    }
  }
}

/**
 * Symmetric int8 quantization of a matrix, one scale per slice along `axis`
 * (axis 1 = per output column of x @ W; axis 0 = per row, used for the tied embedding/head),
 * onto -maxLevel..maxLevel.
 */
export function quantizeInt8(w: WeightTensor, axis: 0 | 1, maxLevel = 127): { q: Int8Array; scale: Float32Array } {
  const [rows, cols] = w.shape;
  const channels = axis === 0 ? rows : cols;
  const maxAbs = new Float32Array(channels);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const ch = axis === 0 ? r : c;
      const a = Math.abs(w.data[r * cols + c]);
      if (a > maxAbs[ch]) maxAbs[ch] = a;
    }
  }
  const scale = maxAbs.map((m) => (m > 0 ? m / maxLevel : 1));
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const s = scale[axis === 0 ? r : c];
      q[r * cols + c] = Math.max(-maxLevel, Math.min(maxLevel, Math.round(w.data[r * cols + c] / s)));
    }
  }
  return { q, scale };
}

/**
 * Builds the ONNX model bytes. Positions are not an input: they are past + 0..seq-1, computed in
 * the graph from the past length, so positions and the causal mask can never disagree.
 */
export function buildOnnxModel(c: GPTConfig, weights: Map<string, WeightTensor>, opts: BuildOnnxOptions = {}): Uint8Array {
  checkWeights(c, weights);
  const g = new GraphBuilder();
  const d = c.nEmbd;
  const nHead = c.nHead;
  const hs = d / nHead;
  const F = onnx.TensorProto.DataType.FLOAT;

  // A matrix as a graph value: float initializer, or int8 + scales behind a DequantizeLinear.
  const matrix = (name: string, axis: 0 | 1): string => {
    const w = weights.get(name)!;
    if (!opts.quantize) return g.floatTensor(name, w.shape, w.data);
    const { q, scale } = quantizeInt8(w, axis);
    const qName = g.int8Tensor(`${name}.q`, w.shape, q);
    const sName = g.floatTensor(`${name}.scale`, [scale.length], scale);
    // Symmetric: zero points are 0 (explicit, so every runtime reads the int8 type alike).
    const zName = g.int8Tensor(`${name}.zero`, [scale.length], new Int8Array(scale.length));
    return g.op('DequantizeLinear', [qName, sName, zName], { axis }, name);
  };
  const vector = (name: string): string => {
    const w = weights.get(name)!;
    return g.floatTensor(name, w.shape, w.data);
  };

  // Shared constants.
  const attnScale = g.scalar('const.attn_scale', 1 / Math.sqrt(hs));
  const index = [0, 1, 2].map((i) => g.int64Tensor(`const.index${i}`, [], [i]));
  const one64 = g.int64Tensor('const.one64', [], [1]);
  const zero1 = g.int64Tensor('const.zero1', [1], [0]);
  const sliceAxes = g.int64Tensor('const.mask_axes', [2], [0, 1]);
  const qkvShape = g.int64Tensor('const.qkv_shape', [5], [0, 0, 3, nHead, hs]); // 0 = keep that dim
  const mergeShape = g.int64Tensor('const.merge_shape', [3], [0, 0, d]);
  // Additive causal mask over absolute positions: row = query position, column = key position.
  const maskData = new Float32Array(c.blockSize * c.blockSize);
  for (let qi = 0; qi < c.blockSize; qi++) for (let ki = qi + 1; ki < c.blockSize; ki++) maskData[qi * c.blockSize + ki] = -1e9;
  const causalMask = g.floatTensor('const.causal_mask', [c.blockSize, c.blockSize], maskData);

  // Lengths: past from the first layer's cache, seq from the ids; positions past..past+seq-1.
  const pastLen1 = g.op('Shape', [onnxNames.pastKey(0)], { start: 2, end: 3 }); // [1]
  const seqLen1 = g.op('Shape', [onnxNames.inputIds], { start: 1, end: 2 }); // [1]
  const totalLen1 = g.op('Add', [pastLen1, seqLen1]); // [1]
  const pastLen = g.op('Squeeze', [pastLen1]); // scalar
  const totalLen = g.op('Squeeze', [totalLen1]); // scalar
  const positions = g.op('Range', [pastLen, totalLen, one64]); // [T]
  // mask rows past..past+T-1, columns 0..past+T-1 → (T, past+T)
  const maskStarts = g.op('Concat', [pastLen1, zero1], { axis: 0 });
  const maskEnds = g.op('Concat', [totalLen1, totalLen1], { axis: 0 });
  const mask = g.op('Slice', [causalMask, maskStarts, maskEnds, sliceAxes]);

  const wte = matrix('wte', 0);
  const tokEmb = g.op('Gather', [wte, onnxNames.inputIds], { axis: 0 }); // (B, T, d)
  const posEmb = g.op('Gather', [vector('wpe'), positions], { axis: 0 }); // (T, d)
  let x = g.op('Add', [tokEmb, posEmb]); // (B, T, d)

  const layerNorm = (input: string, prefix: string): string =>
    g.op('LayerNormalization', [input, vector(`${prefix}.g`), vector(`${prefix}.b`)], { axis: -1, epsilon: { float: 1e-5 } });
  // y = x @ W + b; with 'dynamic' quantization x is quantized per call (uint8, per tensor) and
  // multiplied by the int8 W in integers, then rescaled by x's scale times W's column scales.
  const linear = (input: string, w: string, b: string): string => {
    if (opts.quantize !== 'dynamic') return g.op('Add', [g.op('MatMul', [input, matrix(w, 1)]), vector(b)]);
    const weight = weights.get(w)!;
    // 7-bit weights: on x86 CPUs without VNNI, onnxruntime multiplies uint8 by int8 with AVX2's
    // vpmaddubsw, whose int16 sum of two products saturates for |w| near 127 (logits off by 20%
    // of their range on an AMD EPYC); 255 * 63 * 2 fits. onnxruntime's own quantizer does the
    // same (reduce_range).
    const { q, scale } = quantizeInt8(weight, 1, 63);
    const qName = g.int8Tensor(`${w}.q`, weight.shape, q);
    const wScale = g.floatTensor(`${w}.scale`, [scale.length], scale);
    const wZero = g.int8Tensor(`${w}.zero`, [], new Int8Array(1));
    const [xq, xScale, xZero] = g.opMulti('DynamicQuantizeLinear', [input], 3);
    const product = g.op('Cast', [g.op('MatMulInteger', [xq, qName, xZero, wZero])], { to: onnx.TensorProto.DataType.FLOAT });
    return g.op('Add', [g.op('Mul', [product, g.op('Mul', [xScale, wScale])]), vector(b)]);
  };

  for (let i = 0; i < c.nLayer; i++) {
    const p = `h.${i}`;
    // attention: x = x + attn(ln1(x))
    const qkv = linear(layerNorm(x, `${p}.ln1`), `${p}.attn.wqkv`, `${p}.attn.bqkv`); // (B, T, 3d)
    const heads = g.op('Transpose', [g.op('Reshape', [qkv, qkvShape])], { perm: [2, 0, 3, 1, 4] }); // (3, B, nh, T, hs)
    const q = g.op('Gather', [heads, index[0]], { axis: 0 }); // (B, nh, T, hs)
    const k = g.op('Gather', [heads, index[1]], { axis: 0 });
    const v = g.op('Gather', [heads, index[2]], { axis: 0 });
    const keys = g.op('Concat', [onnxNames.pastKey(i), k], { axis: 2 }, onnxNames.presentKey(i)); // (B, nh, P+T, hs)
    const values = g.op('Concat', [onnxNames.pastValue(i), v], { axis: 2 }, onnxNames.presentValue(i));
    const keysT = g.op('Transpose', [keys], { perm: [0, 1, 3, 2] }); // (B, nh, hs, P+T)
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, keysT]), attnScale]), mask]); // (B, nh, T, P+T)
    const att = g.op('Softmax', [scores], { axis: -1 });
    const y = g.op('Transpose', [g.op('MatMul', [att, values])], { perm: [0, 2, 1, 3] }); // (B, T, nh, hs)
    const merged = g.op('Reshape', [y, mergeShape]); // (B, T, d)
    x = g.op('Add', [x, linear(merged, `${p}.attn.wo`, `${p}.attn.bo`)]);

    // MLP: x = x + mlp(ln2(x)), GELU by its tanh formula
    const f = linear(layerNorm(x, `${p}.ln2`), `${p}.mlp.wfc`, `${p}.mlp.bfc`); // (B, T, 4d)
    const gelu = g.op('Gelu', [f], { approximate: 'tanh' });
    x = g.op('Add', [x, linear(gelu, `${p}.mlp.wproj`, `${p}.mlp.bproj`)]);
  }

  // Tied head on the asked positions: logits = lnf(x[:, positions]) @ wte^T (the transpose of a
  // constant is folded when the session loads).
  const wteT = g.op('Transpose', [wte], { perm: [1, 0] }); // (d, V)
  const asked = g.op('Gather', [x, onnxNames.logitPositions], { axis: 1 }); // (B, K, d)
  g.op('MatMul', [layerNorm(asked, 'lnf'), wteT], {}, onnxNames.logits); // (B, K, V)
  g.op('Softmax', [onnxNames.logits], { axis: -1 }, onnxNames.probs);

  const inputs = [valueInfo(onnxNames.inputIds, onnx.TensorProto.DataType.INT64, ['batch', 'seq']), valueInfo(onnxNames.logitPositions, onnx.TensorProto.DataType.INT64, ['positions'])];
  const outputs = [valueInfo(onnxNames.logits, F, ['batch', 'positions', c.vocabSize]), valueInfo(onnxNames.probs, F, ['batch', 'positions', c.vocabSize])];
  for (let i = 0; i < c.nLayer; i++) {
    inputs.push(valueInfo(onnxNames.pastKey(i), F, ['batch', nHead, 'past', hs]));
    inputs.push(valueInfo(onnxNames.pastValue(i), F, ['batch', nHead, 'past', hs]));
    outputs.push(valueInfo(onnxNames.presentKey(i), F, ['batch', nHead, 'total', hs]));
    outputs.push(valueInfo(onnxNames.presentValue(i), F, ['batch', nHead, 'total', hs]));
  }

  const model: onnx.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'workspace-lm',
    producerVersion: '1',
    docString: 'GPT with past/present key-value cache; positions are derived from the past length; logits for the positions in logit_positions.',
    graph: { name: opts.name ?? 'workspace-lm-gpt', node: g.nodes, initializer: g.initializers, input: inputs, output: outputs },
    metadataProps: [
      { key: 'wlm.format', value: 'workspace-lm-gpt-kv' },
      { key: 'wlm.config', value: JSON.stringify(c) },
      { key: 'wlm.quantized', value: opts.quantize === 'dynamic' ? 'int8-dynamic' : opts.quantize ? 'int8' : 'none' },
    ],
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/** Reads a model folder's config.json and weights and writes its model.onnx (atomically). */
export async function exportOnnx(modelDir: string, opts: { quantize?: OnnxQuantization; file?: string } = {}): Promise<{ file: string; bytes: number; ms: number }> {
  const started = performance.now();
  const config = await readModelConfig(modelDir);
  const weights = await readWeights(modelDir);
  const bytes = buildOnnxModel(config.model, weights, { quantize: opts.quantize, name: config.name });
  const file = opts.file ?? path.join(modelDir, ONNX_FILE);
  await writeFileAtomic(file, bytes);
  return { file, bytes: bytes.byteLength, ms: performance.now() - started };
}
