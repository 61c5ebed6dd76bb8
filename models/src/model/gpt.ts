// The GPT: token + position embeddings, pre-LN transformer blocks, a final LayerNorm and an output
// head tied to the token embedding. Owns the parameters, their seeded initialisation and the
// forward/backward math. It does not choose a backend, optimise, or touch files.
//
// Speed note. On the wasm backend only plain 2-D A×B matmuls are fast (~30 GFLOP/s); transposed
// or batched ones run at ~2.5. So every matmul here, forward and backward, is a 2-D product with
// explicit transposes, through custom gradients. Attention's per-(batch, head) products are done
// one 2-D matmul each, with the heads cut out on the host (wasm's slice copies its whole input
// per call, which would cost more than the matmuls). GPU backends use the plain batched version.
// Every differentiable step is a custom op, so no tfjs gradient registry is needed (tfjs-core's
// register_all_gradients is ESM-only and cannot load from our CommonJS bundle).
import * as tf from '@tensorflow/tfjs-core';
import { validateGPTConfig, type GPTConfig } from './config';
import { parameterShapes, type WeightTensor } from './checkpoint';

/** How attention is computed: 'split2d' (2-D matmuls per head) for CPU backends, 'batched' for GPUs. */
export type AttentionKernel = 'split2d' | 'batched';

export interface GPTOptions {
  seed?: number; // initialisation seed; the same seed gives the same weights on every backend
  attention?: AttentionKernel; // default: 'split2d' on wasm/cpu, 'batched' elsewhere
}

const LN_EPS = 1e-5;
const MASKED = -1e9; // added to scores of future positions; exp() of it is exactly 0

export class GPT {
  readonly config: GPTConfig;
  readonly params: Map<string, tf.Variable>;
  readonly attention: AttentionKernel;
  private readonly causalMask: tf.Tensor2D; // (blockSize, blockSize): 0 on and below the diagonal

  constructor(config: GPTConfig, opts: GPTOptions = {}) {
    validateGPTConfig(config);
    if (config.dropout !== 0) {
      // Dropout would make a step depend on more than (weights, batch); we train in the regime
      // where it does not help, so a dropout setting is refused rather than silently ignored.
      throw new Error(`GPT: dropout ${config.dropout} is not supported; set dropout to 0`);
    }
    this.config = { ...config };
    this.attention = opts.attention ?? (['wasm', 'cpu'].includes(tf.getBackend()) ? 'split2d' : 'batched');
    this.params = new Map();
    for (const [name, values] of initialWeights(config, opts.seed ?? 1337)) {
      const initial = tf.tensor(values.data, values.shape);
      this.params.set(name, tf.variable(initial, true));
      initial.dispose(); // the variable shares its data; without this the first values live forever
    }
    const T = config.blockSize;
    this.causalMask = tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), MASKED) as tf.Tensor2D);
  }

  /** idx (B, T) int32 → logits (B, T, vocabSize). */
  forward(idx: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T] = idx.shape;
      const x = this.hidden(idx); // (B*T, C)
      return tf.reshape(tiedHead(x, this.p('wte')), [B, T, this.config.vocabSize]) as tf.Tensor3D;
    });
  }

  /** Mean cross-entropy of the next-token predictions; targets (B, T) int32. */
  loss(idx: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => {
      const x = this.hidden(idx); // (B*T, C)
      return headLoss(x, this.p('wte'), tf.reshape(targets, [-1]) as tf.Tensor1D);
    });
  }

  /** Everything up to the output head: embeddings, blocks, final LayerNorm. (B, T) → (B*T, C). */
  private hidden(idx: tf.Tensor2D): tf.Tensor2D {
    const { blockSize, nLayer } = this.config;
    const [B, T] = idx.shape;
    if (T > blockSize) throw new Error(`GPT: sequence of ${T} tokens exceeds blockSize ${blockSize}`);
    let x = embed(idx, this.p('wte'), this.p('wpe')); // (B*T, C): token + position embeddings
    for (let i = 0; i < nLayer; i++) {
      // A tidy per block frees its intermediates now rather than at the end of the forward pass:
      // backprop needs only what each custom op saved (that is kept).
      x = tf.tidy(() => {
        const y = residual(x, this.attn(i, layerNorm(x, this.p(`h.${i}.ln1.g`), this.p(`h.${i}.ln1.b`)), B, T));
        return residual(y, this.mlp(i, layerNorm(y, this.p(`h.${i}.ln2.g`), this.p(`h.${i}.ln2.b`))));
      });
    }
    return layerNorm(x, this.p('lnf.g'), this.p('lnf.b'));
  }

  /** Causal self-attention of block i. x (B*T, C) → (B*T, C). */
  private attn(i: number, x: tf.Tensor2D, B: number, T: number): tf.Tensor2D {
    const { nHead, nEmbd: C } = this.config;
    const qkv = linear(x, this.p(`h.${i}.attn.wqkv`), this.p(`h.${i}.attn.bqkv`)); // (B*T, 3C), columns q|k|v
    const mask = tf.slice(this.causalMask, [0, 0], [T, T]);
    const y = this.attention === 'split2d'
      ? attentionSplit2d(qkv, mask, B, T, nHead, C)
      : attentionBatched(qkv, mask, B, T, nHead, C); // (B*T, C), heads side by side
    return linear(y, this.p(`h.${i}.attn.wo`), this.p(`h.${i}.attn.bo`));
  }

  /** The feed-forward network of block i. x (B*T, C) → (B*T, C). */
  private mlp(i: number, x: tf.Tensor2D): tf.Tensor2D {
    const hidden = gelu(linear(x, this.p(`h.${i}.mlp.wfc`), this.p(`h.${i}.mlp.bfc`))); // (B*T, 4C)
    return linear(hidden, this.p(`h.${i}.mlp.wproj`), this.p(`h.${i}.mlp.bproj`));
  }

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`GPT: no parameter ${name}`);
    return v;
  }

  /** A host copy of every parameter, in the canonical order. Synchronous: CPU backends only. */
  getWeights(): Map<string, WeightTensor> {
    const out = new Map<string, WeightTensor>();
    for (const [name, v] of this.params) out.set(name, { shape: [...v.shape], data: Float32Array.from(v.dataSync() as Float32Array) });
    return out;
  }

  /** The same, read asynchronously: works on every backend (WebGPU in Node cannot read synchronously). */
  async readWeights(): Promise<Map<string, WeightTensor>> {
    const out = new Map<string, WeightTensor>();
    for (const [name, v] of this.params) out.set(name, { shape: [...v.shape], data: Float32Array.from((await v.data()) as Float32Array) });
    return out;
  }

  /** Replaces the parameters; names and shapes must match this model's config exactly. */
  loadWeights(weights: Map<string, WeightTensor>): void {
    for (const [name, v] of this.params) {
      const w = weights.get(name);
      if (!w) throw new Error(`GPT.loadWeights: missing ${name}`);
      if (w.shape.length !== v.shape.length || w.shape.some((d, k) => d !== v.shape[k])) {
        throw new Error(`GPT.loadWeights: ${name} has shape [${w.shape}], the model needs [${v.shape}]`);
      }
    }
    for (const name of this.params.keys()) this.setParam(name, weights.get(name)!.data);
  }

  /** Replaces one parameter's values (copied: some backends would keep a view of `data`). */
  setParam(name: string, data: Float32Array): void {
    const v = this.p(name);
    tf.tidy(() => v.assign(tf.tensor(data.slice(), v.shape)));
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.causalMask.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Initialisation: normal(0, 0.02) matrices, residual projections scaled by 1/sqrt(2 nLayer)
// (GPT-2), zero biases, unit LayerNorm gains. The tied wte keeps std 0.02: with unit-variance
// LayerNorm outputs the logits then have std 0.02*sqrt(C) and the first loss is ~ln(vocab).
// Each tensor draws from its own stream seeded by (seed, name): deterministic, backend-free.

export function initialWeights(config: GPTConfig, seed: number): Map<string, WeightTensor> {
  const out = new Map<string, WeightTensor>();
  const residualStd = 0.02 / Math.sqrt(2 * config.nLayer);
  for (const [name, shape] of parameterShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith('.g')) data.fill(1);
    else if (shape.length === 2) {
      const std = name.endsWith('attn.wo') || name.endsWith('mlp.wproj') ? residualStd : 0.02;
      const normal = gaussian(hashSeed(seed, name));
      for (let k = 0; k < n; k++) data[k] = std * normal();
    } // biases and LayerNorm shifts stay 0
    out.set(name, { shape, data });
  }
  return out;
}

export function hashSeed(seed: number, name: string): number {
  let h = (2166136261 ^ seed) >>> 0; // FNV-1a over the name, started from the seed
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** Standard normal samples from mulberry32 + Box-Muller. */
export function gaussian(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // in (0, 1)
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

// ---------------------------------------------------------------------------------------------
// Layers with hand-written gradients, all products 2-D and untransposed.

type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

/**
 * tf.customGrad with the inputs as an array: forward gets them and `save`, returns value + gradFunc.
 * Memory: tfjs keeps a custom gradient's temporaries, every saved tensor and every incoming
 * gradient until the whole backward pass ends. Each is needed exactly once here (one backward
 * per forward), so the gradient runs in a tidy and then releases what it saved and the incoming
 * gradient (a config-A step: peak 1173 -> 377 MB). A gradient function must therefore never return the
 * same tensor for two inputs (residual returns a clone for the second).
 */
function customOp(forward: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: GradFunc }): (...inputs: tf.Tensor[]) => tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const { value, gradFunc } = forward(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const grads = tf.tidy(() => gradFunc(dy, saved));
        for (const t of saved) t.dispose();
        if (!(Array.isArray(grads) ? grads : [grads]).includes(dy)) dy.dispose();
        return grads;
      },
    };
  });
  return (...inputs) => op(...inputs);
}

/** y = x @ W + b. x (N, in), W (in, out), b (out) → (N, out). */
function linear(x: tf.Tensor2D, w: tf.Tensor2D | tf.Variable, b: tf.Tensor1D | tf.Variable): tf.Tensor2D {
  const op = customOp(([x, w, b], save) => {
    save([x, w]);
    return {
      value: tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b),
      gradFunc: (dy, saved) => {
        const [x, w] = saved as tf.Tensor2D[];
        const dy2 = dy as tf.Tensor2D;
        // dW = x^T dy as (dy^T x)^T: on wasm as fast as x^T dy on an idle machine, 25-35% faster on
        // a busy one. The bias gradient reuses dy^T: dy^T @ ones (N, 1) is 5-10x faster there than
        // columnSums(dy), which packs all of dy as a right-hand operand.
        const dyT = tf.transpose(dy2); // (out, N)
        const db = tf.reshape(tf.matMul(dyT, tf.ones([dy2.shape[0], 1])), [w.shape[1]]);
        return [tf.matMul(dy2, tf.transpose(w)), tf.transpose(tf.matMul(dyT, x)), db];
      },
    };
  });
  return op(x, w, b) as tf.Tensor2D;
}

/** Sum over rows as a (1, N) @ (N, C) product: wasm's Sum over axis 0 transposes first, 30x slower. */
function columnSums(x: tf.Tensor2D): tf.Tensor1D {
  return tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]), x), [x.shape[1]]);
}

/** logits = x @ wte^T. x (N, C), wte (V, C) → (N, V). */
function tiedHead(x: tf.Tensor2D, wte: tf.Variable): tf.Tensor2D {
  const op = customOp(([x, wte], save) => {
    save([x, wte]);
    return {
      value: tf.matMul(x as tf.Tensor2D, tf.transpose(wte as tf.Tensor2D)),
      gradFunc: (dy, saved) => {
        const [x, wte] = saved as tf.Tensor2D[];
        return [
          tf.matMul(dy as tf.Tensor2D, wte), // dx (N, C)
          tf.matMul(tf.transpose(dy as tf.Tensor2D), x), // dWte = dy^T x (V, C): x on the right is faster on wasm, as in linear
        ];
      },
    };
  });
  return op(x, wte) as tf.Tensor2D;
}

/**
 * Token embedding rows plus position embeddings. idx (B, T) → (B*T, C). The wte gradient scatters
 * (and sums) rows back with scatterND: wasm has no UnsortedSegmentSum for tf.gather's gradient.
 */
function embed(idx: tf.Tensor2D, wte: tf.Variable, wpe: tf.Variable): tf.Tensor2D {
  const [B, T] = idx.shape;
  const [V, C] = wte.shape;
  const blockSize = wpe.shape[0];
  const op = customOp(([wte, wpe], save) => {
    const flat = tf.reshape(idx, [B * T]);
    save([flat]);
    return {
    value: tf.reshape(tf.add(tf.reshape(tf.gather(wte, flat), [B, T, C]), tf.slice(wpe, [0, 0], [T, C])), [B * T, C]),
    gradFunc: (dy, saved) => {
      const dWte = tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, [V, C]);
      const dPos = tf.reshape(tf.matMul(tf.ones([1, B]), tf.reshape(dy, [B, T * C])), [T, C]); // sum over the batch
      const dWpe = T < blockSize ? tf.concat([dPos, tf.zeros([blockSize - T, C])], 0) : dPos;
      return [dWte, dWpe];
    },
    };
  });
  return op(wte, wpe) as tf.Tensor2D;
}

/** x + f(x), with the gradient passed through to both. */
function residual(x: tf.Tensor2D, fx: tf.Tensor2D): tf.Tensor2D {
  const op = customOp(([x, fx]) => ({ value: tf.add(x, fx), gradFunc: (dy) => [dy, tf.clone(dy)] }));
  return op(x, fx) as tf.Tensor2D;
}

/**
 * The tied head and the mean cross-entropy in one op: mean over rows of -log softmax(x wte^T)[target].
 * x (N, C), wte (V, C), targets (N) int32 → scalar. Fused so that only the softmax (N, V) is kept
 * for the backward pass, not the logits too; (N, V) tensors are the largest of a step.
 * Uses wasm's native softmax (6x faster there than logSoftmax) and the log of the picked
 * probability, floored at 1e-38: only a target whose logit is ~87 below the best is affected.
 */
function headLoss(x: tf.Tensor2D, wte: tf.Variable, targets: tf.Tensor1D): tf.Scalar {
  const N = x.shape[0];
  const V = wte.shape[0];
  const op = customOp(([x, wte], save) => {
    const picks = tf.add(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(V, 'int32')), targets); // flat index of each target
    const probs = tf.softmax(tf.matMul(x as tf.Tensor2D, tf.transpose(wte as tf.Tensor2D))); // (N, V)
    // Everything the gradient needs is saved: the caller's tidy disposes other tensors before backprop.
    save([x, wte, probs, picks]);
    return {
      value: tf.neg(tf.mean(tf.log(tf.maximum(tf.gather(tf.reshape(probs, [-1]), picks), 1e-38)))),
      gradFunc: (dy, saved) => {
        const [x, wte, probs, picks] = saved as tf.Tensor2D[];
        // dlogits = (softmax - onehot) / N, with the one-hot subtracted in place of a dense (N, V) one.
        const scale = tf.div(dy, N);
        const flat = tf.mul(tf.reshape(probs, [-1]), scale);
        const dLogits = tf.reshape(tf.tensorScatterUpdate(flat, tf.reshape(picks, [-1, 1]), tf.sub(tf.gather(flat, picks), scale)), [N, V]) as tf.Tensor2D;
        return [
          tf.matMul(dLogits, wte), // dx (N, C)
          tf.matMul(tf.transpose(dLogits), x), // dWte (V, C), as in tiedHead
        ];
      },
    };
  });
  return op(x, wte) as tf.Scalar;
}

/** LayerNorm over the last axis, biased variance. x (N, C). */
function layerNorm(x: tf.Tensor2D, g: tf.Variable, b: tf.Variable): tf.Tensor2D {
  const op = customOp(([x, g, b], save) => {
    const C = x.shape[1]!;
    const xc = tf.sub(x, tf.mean(x, -1, true));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), LN_EPS)); // (N, 1)
    const xhat = tf.mul(xc, rstd);
    save([xhat, rstd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy, saved) => {
        const [xhat, rstd, g] = saved;
        const dxhat = tf.mul(dy, g);
        // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        const dx = tf.mul(rstd, tf.sub(tf.sub(dxhat, tf.mean(dxhat, -1, true)), tf.mul(xhat, tf.div(tf.sum(tf.mul(dxhat, xhat), -1, true), C))));
        return [dx, columnSums(tf.mul(dy, xhat) as tf.Tensor2D), columnSums(dy as tf.Tensor2D)];
      },
    };
  });
  return op(x, g, b) as tf.Tensor2D;
}

/**
 * GELU, tanh approximation: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as
 * x * sigmoid(2u) (the same function): wasm's sigmoid is 8x faster than its tanh.
 */
function gelu(x: tf.Tensor2D): tf.Tensor2D {
  const k2 = 2 * Math.sqrt(2 / Math.PI);
  const op = customOp(([x], save) => {
    const s = tf.sigmoid(tf.mul(tf.mul(x, tf.add(tf.mul(tf.square(x), 0.044715), 1)), k2)); // sigmoid(2u)
    save([x, s]); // x^2 is recomputed in the backward pass: one (N, 4C) tensor less to keep
    return {
      value: tf.mul(x, s),
      gradFunc: (dy, saved) => {
        const [x, s] = saved;
        const x2 = tf.square(x);
        // d/dx x s(z) = s + x s (1 - s) dz/dx, dz/dx = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2)
        const dz = tf.mul(tf.add(tf.mul(x2, 3 * 0.044715), 1), k2);
        return tf.mul(dy, tf.add(s, tf.mul(tf.mul(x, tf.mul(s, tf.sub(1, s))), dz)));
      },
    };
  });
  return op(x) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------------
// Attention. Both versions take qkv (B*T, 3C) — row b*T+t, columns q|k|v, head h at h*hs — and
// return y (B*T, C) with the heads side by side, ready for the output projection.

/**
 * Batched matmuls over (B, nh): fast on GPUs, slow on wasm.
 * Forward:  S = q k^T / sqrt(hs) + mask, P = softmax(S), y = P v.
 * Backward: dP = dy v^T, dv = P^T dy, dS = P ⊙ (dP - rowsum(dP ⊙ P)) / sqrt(hs), dq = dS k, dk = dS^T q.
 */
function attentionBatched(qkv: tf.Tensor2D, mask: tf.Tensor2D, B: number, T: number, nh: number, C: number): tf.Tensor2D {
  const hs = C / nh;
  const scale = 1 / Math.sqrt(hs);
  const split = (x: tf.Tensor, col: number): tf.Tensor4D => // columns col..col+C of (B*T, width) → (B, nh, T, hs)
    tf.transpose(tf.reshape(tf.slice(x, [0, col], [B * T, C]), [B, T, nh, hs]), [0, 2, 1, 3]);
  const merge = (x: tf.Tensor4D): tf.Tensor2D => tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B * T, C]); // inverse of split
  const op = customOp(([qkv], save) => {
    const [q, k, v] = [split(qkv, 0), split(qkv, C), split(qkv, 2 * C)];
    const probs = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), scale), mask)); // (B, nh, T, T)
    save([q, k, v, probs]);
    return {
      value: merge(tf.matMul(probs, v)),
      gradFunc: (dy, saved) => {
        const [q, k, v, probs] = saved as tf.Tensor4D[];
        const dyHeads = split(dy, 0);
        const dP = tf.matMul(dyHeads, v, false, true);
        const dV = tf.matMul(probs, dyHeads, true, false);
        const dS = tf.mul(tf.mul(probs, tf.sub(dP, tf.sum(tf.mul(dP, probs), -1, true))), scale);
        return tf.concat([merge(tf.matMul(dS, k)), merge(tf.matMul(dS, q, true, false)), merge(dV as tf.Tensor4D)], 1);
      },
    };
  });
  return op(qkv) as tf.Tensor2D;
}

/**
 * The same math as one 2-D matmul per (batch, head), with the heads cut out and put back on the
 * host. Forward:  S = q k^T / sqrt(hs) + mask, P = softmax(S), y = P v.
 * Backward: dP = dy v^T, dv = P^T dy, dS = P ⊙ (dP - rowsum(dP ⊙ P)) / sqrt(hs), dq = dS k, dk = dS^T q.
 */
function attentionSplit2d(qkv: tf.Tensor2D, mask: tf.Tensor2D, B: number, T: number, nh: number, C: number): tf.Tensor2D {
  const hs = C / nh;
  const scale = 1 / Math.sqrt(hs);
  const op = customOp(([qkv], save) => {
    const host = qkv.dataSync() as Float32Array; // (B*T, 3C)
    const rows = (src: Float32Array, width: number, b: number, col: number): tf.Tensor2D =>
      tf.tensor2d(headRows(src, width, b, col, T, hs), [T, hs]);
    const cols = (src: Float32Array, width: number, b: number, col: number): tf.Tensor2D =>
      tf.tensor2d(headCols(src, width, b, col, T, hs), [hs, T]);

    const scores: tf.Tensor2D[] = [];
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < nh; h++) scores.push(tf.matMul(rows(host, 3 * C, b, h * hs), cols(host, 3 * C, b, C + h * hs))); // (T, T)
    }
    const probs = tf.softmax(tf.add(tf.mul(tf.stack(scores), scale), mask)) as tf.Tensor3D; // (B*nh, T, T)
    save([probs]);
    const probsHost = probs.dataSync() as Float32Array;
    const y = new Float32Array(B * T * C);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < nh; h++) {
        const p = tf.tensor2d(probsHost.subarray((b * nh + h) * T * T, (b * nh + h + 1) * T * T), [T, T]);
        putHeadRows(y, C, b, h * hs, T, hs, tf.matMul(p, rows(host, 3 * C, b, 2 * C + h * hs)).dataSync() as Float32Array);
      }
    }
    return {
      value: tf.tensor2d(y, [B * T, C]),
      gradFunc: (dy, saved) => {
        const probs = saved[0] as tf.Tensor3D;
        const dyHost = dy.dataSync() as Float32Array; // (B*T, C)
        const probsT = (tf.transpose(probs, [0, 2, 1]).dataSync() as Float32Array);
        const dqkv = new Float32Array(B * T * 3 * C);
        const dProbs: tf.Tensor2D[] = [];
        for (let b = 0; b < B; b++) {
          for (let h = 0; h < nh; h++) {
            const dyHead = rows(dyHost, C, b, h * hs);
            dProbs.push(tf.matMul(dyHead, cols(host, 3 * C, b, 2 * C + h * hs))); // dP = dy v^T (T, T)
            const pT = tf.tensor2d(probsT.subarray((b * nh + h) * T * T, (b * nh + h + 1) * T * T), [T, T]);
            putHeadRows(dqkv, 3 * C, b, 2 * C + h * hs, T, hs, tf.matMul(pT, dyHead).dataSync() as Float32Array); // dv = P^T dy
          }
        }
        const dP = tf.stack(dProbs) as tf.Tensor3D;
        const dS = tf.mul(tf.mul(probs, tf.sub(dP, tf.sum(tf.mul(dP, probs), -1, true))), scale); // (B*nh, T, T)
        const dSHost = dS.dataSync() as Float32Array;
        const dSTHost = tf.transpose(dS, [0, 2, 1]).dataSync() as Float32Array;
        for (let b = 0; b < B; b++) {
          for (let h = 0; h < nh; h++) {
            const at = (b * nh + h) * T * T;
            const dSHead = tf.tensor2d(dSHost.subarray(at, at + T * T), [T, T]);
            const dSTHead = tf.tensor2d(dSTHost.subarray(at, at + T * T), [T, T]);
            putHeadRows(dqkv, 3 * C, b, h * hs, T, hs, tf.matMul(dSHead, rows(host, 3 * C, b, C + h * hs)).dataSync() as Float32Array); // dq = dS k
            putHeadRows(dqkv, 3 * C, b, C + h * hs, T, hs, tf.matMul(dSTHead, rows(host, 3 * C, b, h * hs)).dataSync() as Float32Array); // dk = dS^T q
          }
        }
        return tf.tensor2d(dqkv, [B * T, 3 * C]);
      },
    };
  });
  return op(qkv) as tf.Tensor2D;
}

/** Rows b*T..b*T+T-1, columns col..col+hs-1 of a (B*T, width) matrix → (T, hs). */
function headRows(src: Float32Array, width: number, b: number, col: number, T: number, hs: number): Float32Array {
  const out = new Float32Array(T * hs);
  for (let t = 0; t < T; t++) {
    const from = (b * T + t) * width + col;
    out.set(src.subarray(from, from + hs), t * hs);
  }
  return out;
}

/** The same block, transposed → (hs, T). */
function headCols(src: Float32Array, width: number, b: number, col: number, T: number, hs: number): Float32Array {
  const out = new Float32Array(hs * T);
  for (let t = 0; t < T; t++) {
    const from = (b * T + t) * width + col;
    for (let j = 0; j < hs; j++) out[j * T + t] = src[from + j];
  }
  return out;
}

/** Writes a (T, hs) head back into rows of b, columns col.. of a (B*T, width) matrix. */
function putHeadRows(dst: Float32Array, width: number, b: number, col: number, T: number, hs: number, head: Float32Array): void {
  for (let t = 0; t < T; t++) dst.set(head.subarray(t * hs, (t + 1) * hs), (b * T + t) * width + col);
}
