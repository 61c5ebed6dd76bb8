// The GPT's training step as an ONNX graph: the forward pass of gpt.ts, the mean cross-entropy of
// the next tokens, and the backward pass written out by hand (as llm.c does), so that onnxruntime's
// CPU kernels (MLAS: AVX2/AVX-512 matrix products on every core) compute the gradients. The weights
// are graph inputs, not initializers: the optimizer changes them every step. All matrix products
// are 2-D over the N = B*T rows, except attention's, which are batched over (B, heads).
//
// Outputs: the loss; a gradient `grad.<name>` for every trained parameter but the embeddings; when
// wte is trained, the tied head's share of its gradient (`grad.wte.head`); when an embedding is
// trained, the gradient at the embeddings' sum (`grad.embedded`, N x C). The embedding lookups'
// backward is a scatter-add of rows, done on the host by onnxGradients.ts. A fine-tune that trains
// some parameters only (the last blocks, or low-rank adapters on the matrices) gets a backward
// pass without the rest: the graph keeps only the nodes its outputs read, so no frozen parameter's
// gradient is computed, nor anything below the lowest block with a trained one. It owns the
// graph only; it does not run it.
import { onnx } from 'onnx-proto';
import type { GPTConfig } from '../model/config';
import { parameterShapes } from '../model/checkpoint';
import { GraphBuilder, valueInfo } from '../model/onnxGraph';
import { ONNX_IR_VERSION, ONNX_OPSET } from '../model/onnx';

export const gradientNames = {
  idx: 'idx', // int64 (B, T): the input tokens
  targets: 'targets', // int64 (N): the next tokens, row-major
  loss: 'loss', // float scalar: mean cross-entropy over the N positions
  grad: (param: string) => `grad.${param}`,
  wteHead: 'grad.wte.head', // (V, C): the output head's part of wte's gradient
  embedded: 'grad.embedded', // (N, C): the gradient at token + position embedding
};

const LN_EPS = 1e-5;
const MASKED = -1e9; // as gpt.ts: exp() of it is exactly 0, so masked scores get no gradient
const GELU_K = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

/**
 * The graph for batches of B rows of T tokens, with the gradients of the `trained` parameters
 * (none: the loss only, for evaluation). Shapes are fixed, so every reshape is a constant and
 * onnxruntime can plan its memory once.
 */
export function buildGradientGraph(c: GPTConfig, B: number, T: number, trained: ReadonlySet<string>): Uint8Array {
  if (T > c.blockSize) throw new Error(`gradient graph: ${T} positions exceed blockSize ${c.blockSize}`);
  const g = new GraphBuilder();
  const C = c.nEmbd;
  const H = c.nHead;
  const hs = C / H;
  const N = B * T;
  const V = c.vocabSize;

  const shape = (name: string, dims: number[]): string => g.int64Tensor(`const.shape.${name}`, [dims.length], dims);
  const axes = (name: string, values: number[]): string => g.int64Tensor(`const.axes.${name}`, [values.length], values);
  const rows2d = shape('rows', [N, C]);
  const qkv5d = shape('qkv', [B, T, 3, H, hs]);
  const index = [0, 1, 2].map((i) => g.int64Tensor(`const.index${i}`, [], [i]));
  const attnScale = g.scalar('const.attn_scale', 1 / Math.sqrt(hs));
  const maskData = new Float32Array(T * T);
  for (let q = 0; q < T; q++) for (let k = q + 1; k < T; k++) maskData[q * T + k] = MASKED;
  const mask = g.floatTensor('const.causal_mask', [T, T], maskData);
  const positions = g.int64Tensor('const.positions', [T], Array.from({ length: T }, (_, t) => t));

  const matmul = (a: string, b: string, transA = 0, transB = 0): string => g.op('Gemm', [a, b], { transA, transB });
  const linear = (x: string, w: string, b: string): string => g.op('Gemm', [x, w, b]);
  const transposeLast2 = (x: string): string => g.op('Transpose', [x], { perm: [0, 1, 3, 2] });
  /** LayerNorm over C; also returns the row mean and 1/std that its backward needs. */
  const layerNorm = (x: string, prefix: string): { y: string; mean: string; rstd: string } => {
    const [y, mean, rstd] = g.opMulti('LayerNormalization', [x, `${prefix}.g`, `${prefix}.b`], 3, { axis: -1, epsilon: { float: LN_EPS } });
    return { y, mean, rstd };
  };

  // ---- forward ----------------------------------------------------------------------------
  const embedded = g.op('Reshape', [g.op('Add', [g.op('Gather', ['wte', gradientNames.idx]), g.op('Gather', ['wpe', positions])]), rows2d]); // (N, C)
  interface BlockSaved {
    x: string; ln1: ReturnType<typeof layerNorm>; q: string; k: string; v: string; att: string; y: string;
    x1: string; ln2: ReturnType<typeof layerNorm>; fc: string; gelu: string;
  }
  const saved: BlockSaved[] = [];
  let x = embedded;
  for (let i = 0; i < c.nLayer; i++) {
    const p = `h.${i}`;
    const ln1 = layerNorm(x, `${p}.ln1`);
    const qkv = linear(ln1.y, `${p}.attn.wqkv`, `${p}.attn.bqkv`); // (N, 3C), columns q | k | v
    const heads = g.op('Transpose', [g.op('Reshape', [qkv, qkv5d])], { perm: [2, 0, 3, 1, 4] }); // (3, B, H, T, hs)
    const [q, k, v] = index.map((at) => g.op('Gather', [heads, at], { axis: 0 })); // (B, H, T, hs)
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, transposeLast2(k)]), attnScale]), mask]);
    const att = g.op('Softmax', [scores], { axis: -1 }); // (B, H, T, T)
    const y = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [att, v])], { perm: [0, 2, 1, 3] }), rows2d]); // (N, C)
    const x1 = g.op('Add', [x, linear(y, `${p}.attn.wo`, `${p}.attn.bo`)]);
    const ln2 = layerNorm(x1, `${p}.ln2`);
    const fc = linear(ln2.y, `${p}.mlp.wfc`, `${p}.mlp.bfc`); // (N, 4C)
    const gelu = g.op('Gelu', [fc], { approximate: 'tanh' });
    saved.push({ x, ln1, q, k, v, att, y, x1, ln2, fc, gelu });
    x = g.op('Add', [x1, linear(gelu, `${p}.mlp.wproj`, `${p}.mlp.bproj`)]);
  }
  const lnf = layerNorm(x, 'lnf');
  const logits = matmul(lnf.y, 'wte', 0, 1); // (N, V): the head is tied to the token embedding
  const logProbs = g.op('LogSoftmax', [logits], { axis: -1 });
  const targets2d = g.op('Unsqueeze', [gradientNames.targets, axes('1', [1])]); // (N, 1)
  const picked = g.op('GatherElements', [logProbs, targets2d], { axis: 1 });
  g.op('Neg', [g.op('ReduceMean', [picked], { keepdims: 0 })], {}, gradientNames.loss);

  const outputs = [valueInfo(gradientNames.loss, onnx.TensorProto.DataType.FLOAT, [])];
  if (trained.size > 0) {
    // ---- backward ---------------------------------------------------------------------------
    const heads4d = shape('heads', [B, T, H, hs]);
    const axis0 = axes('0', [0]);
    const axisLast = axes('last', [-1]);
    const sumRows = (x: string): string => g.op('ReduceSum', [x, axis0], { keepdims: 0 });
    const meanLast = (x: string): string => g.op('ReduceMean', [x, axisLast], { keepdims: 1 });
    const embeddingsTrained = trained.has('wte') || trained.has('wpe');
    /** A trained parameter's gradient as an output (a frozen one's is pruned with what only it needs). */
    const output = (param: string, value: string): void => {
      if (!trained.has(param)) return;
      g.op('Identity', [value], {}, gradientNames.grad(param));
      const dims = parameterShapes(c).find(([name]) => name === param)![1];
      outputs.push(valueInfo(gradientNames.grad(param), onnx.TensorProto.DataType.FLOAT, dims));
    };
    /** dx of a LayerNorm from dy; its gain's and shift's gradients go to the outputs. */
    const layerNormBackward = (dy: string, xIn: string, ln: ReturnType<typeof layerNorm>, prefix: string): string => {
      const xhat = g.op('Mul', [g.op('Sub', [xIn, ln.mean]), ln.rstd]);
      output(`${prefix}.g`, sumRows(g.op('Mul', [dy, xhat])));
      output(`${prefix}.b`, sumRows(dy));
      const dxhat = g.op('Mul', [dy, `${prefix}.g`]);
      // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means over C
      const centred = g.op('Sub', [g.op('Sub', [dxhat, meanLast(dxhat)]), g.op('Mul', [xhat, meanLast(g.op('Mul', [dxhat, xhat]))])]);
      return g.op('Mul', [ln.rstd, centred]);
    };
    /** A linear layer's backward: its weight and bias gradients go to the outputs; returns dx. */
    const linearBackward = (dy: string, xIn: string, w: string, b: string): string => {
      output(w, matmul(xIn, dy, 1, 0)); // x^T dy
      output(b, sumRows(dy));
      return matmul(dy, w, 0, 1); // dy W^T
    };
    const constant = (name: string, value: number): string => g.scalar(`const.${name}`, value);

    // Cross-entropy: dlogits = (softmax - onehot(target)) / N.
    const onehot = g.op('OneHot', [gradientNames.targets, g.int64Tensor('const.vocab', [], [V]), g.floatTensor('const.onehot_values', [2], Float32Array.of(0, 1))], { axis: -1 });
    const dLogits = g.op('Mul', [g.op('Sub', [g.op('Exp', [logProbs]), onehot]), constant('inv_rows', 1 / N)]); // (N, V)
    g.op('Identity', [matmul(dLogits, lnf.y, 1, 0)], {}, gradientNames.wteHead); // (V, C)
    let dx = layerNormBackward(matmul(dLogits, 'wte'), x, lnf, 'lnf');

    const half = constant('half', 0.5);
    const one = constant('one', 1);
    for (let i = c.nLayer - 1; i >= 0; i--) {
      const p = `h.${i}`;
      const s = saved[i];
      // MLP. GELU'(f) = 0.5 (1 + t) + 0.5 f (1 - t^2) k (1 + 3c f^2), with t = tanh(k (f + c f^3)).
      const dGelu = linearBackward(dx, s.gelu, `${p}.mlp.wproj`, `${p}.mlp.bproj`);
      const f2 = g.op('Mul', [s.fc, s.fc]);
      const t = g.op('Tanh', [g.op('Mul', [g.op('Mul', [s.fc, g.op('Add', [one, g.op('Mul', [f2, constant(`gelu_c.${i}`, GELU_C)])])]), constant(`gelu_k.${i}`, GELU_K)])]);
      const slope = g.op('Mul', [g.op('Mul', [g.op('Mul', [s.fc, g.op('Sub', [one, g.op('Mul', [t, t])])]), constant(`gelu_k3.${i}`, GELU_K)]), g.op('Add', [one, g.op('Mul', [f2, constant(`gelu_3c.${i}`, 3 * GELU_C)])])]);
      const dGeluIn = g.op('Mul', [dGelu, g.op('Mul', [half, g.op('Add', [g.op('Add', [one, t]), slope])])]);
      const dx1 = g.op('Add', [dx, layerNormBackward(linearBackward(dGeluIn, s.ln2.y, `${p}.mlp.wfc`, `${p}.mlp.bfc`), s.x1, s.ln2, `${p}.ln2`)]);

      // Attention.
      const dy = linearBackward(dx1, s.y, `${p}.attn.wo`, `${p}.attn.bo`); // (N, C)
      const dyHeads = g.op('Transpose', [g.op('Reshape', [dy, heads4d])], { perm: [0, 2, 1, 3] }); // (B, H, T, hs)
      const dAtt = g.op('MatMul', [dyHeads, transposeLast2(s.v)]); // (B, H, T, T)
      const dv = g.op('MatMul', [transposeLast2(s.att), dyHeads]);
      // Softmax: ds = att * (datt - sum(datt * att)), then the 1/sqrt(hs) of the scores.
      const dScores = g.op('Mul', [g.op('Mul', [s.att, g.op('Sub', [dAtt, g.op('ReduceSum', [g.op('Mul', [dAtt, s.att]), axisLast], { keepdims: 1 })])]), attnScale]);
      const dq = g.op('MatMul', [dScores, s.k]);
      const dk = g.op('MatMul', [transposeLast2(dScores), s.q]);
      const stacked = g.op('Concat', [dq, dk, dv].map((d) => g.op('Unsqueeze', [d, axis0])), { axis: 0 }); // (3, B, H, T, hs)
      const dqkv = g.op('Reshape', [g.op('Transpose', [stacked], { perm: [1, 3, 0, 2, 4] }), shape(`dqkv.${i}`, [N, 3 * C])]);
      dx = g.op('Add', [dx1, layerNormBackward(linearBackward(dqkv, s.ln1.y, `${p}.attn.wqkv`, `${p}.attn.bqkv`), s.x, s.ln1, `${p}.ln1`)]);
    }
    if (trained.has('wte')) outputs.push(valueInfo(gradientNames.wteHead, onnx.TensorProto.DataType.FLOAT, [V, C]));
    g.op('Identity', [dx], {}, gradientNames.embedded);
    if (embeddingsTrained) outputs.push(valueInfo(gradientNames.embedded, onnx.TensorProto.DataType.FLOAT, [N, C]));
  }

  const inputs = [
    valueInfo(gradientNames.idx, onnx.TensorProto.DataType.INT64, [B, T]),
    valueInfo(gradientNames.targets, onnx.TensorProto.DataType.INT64, [N]),
    ...parameterShapes(c).map(([name, dims]) => valueInfo(name, onnx.TensorProto.DataType.FLOAT, dims)),
  ];
  const model: onnx.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'workspace-lm',
    graph: { name: trained.size > 0 ? 'workspace-lm-gpt-gradients' : 'workspace-lm-gpt-loss', ...g.prunedTo(outputs.map((o) => o.name!)), input: inputs, output: outputs },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
