// Low-rank adapters (LoRA, Hu et al. 2021) as minLoRA does them: a reparametrisation of weight
// matrices, not a change to the model. Each adapted matrix W (in, out), used as x·W, trains as
//
//     W = W0 + s · A · B      A (in, rank) random, B (rank, out) zeros, s = alpha / rank
//
// with W0 fixed, so a run starts exactly at its parent. The GPT computes with W as always; the
// chain rule through the product turns its gradient dW into the adapters' (dA = s · dW · Bᵀ,
// dB = s · Aᵀ · dW), and the merged W is what gets saved: serving costs nothing extra and the
// model folder's format does not change. Host arithmetic on Float32Arrays, like optim.ts.
// It owns which matrices are adapted, the adapters' start, the gradient projection and the merge;
// it does not optimise (optim.ts) or save (train.ts, through checkpoint.ts).
import type { WeightTensor } from '../model/checkpoint';
import type { LoraConfig } from '../model/config';
import { gaussian, hashSeed } from '../model/gpt';

/** The adapted matrices: every block's attention (qkv, output) and MLP (fc, proj) weights. */
export function isAdapted(name: string): boolean {
  return /^h\.\d+\.(attn\.wqkv|attn\.wo|mlp\.wfc|mlp\.wproj)$/.test(name);
}

export class LowRankAdapters {
  readonly scale: number; // s = alpha / rank
  readonly adapted: string[]; // the adapted matrices, in the canonical order
  readonly frozen = new Map<string, Float32Array>(); // W0 of each: the weights the run started from
  readonly params = new Map<string, Float32Array>(); // `${name}.loraA` (in, rank) and `${name}.loraB` (rank, out): what the optimizer trains
  readonly grads = new Map<string, Float32Array>(); // theirs, from gradients()
  readonly shapes = new Map<string, [number, number]>(); // of each adapter

  /**
   * Adapters for the matrices of `weights` (copied as W0). A draws from N(0, 1/(3·in)), the variance
   * of the kaiming_uniform(a=√5) start minLoRA and PEFT use, from a stream seeded by (seed, name).
   */
  constructor(readonly config: LoraConfig, weights: Map<string, WeightTensor>, seed: number) {
    this.scale = config.alpha / config.rank;
    this.adapted = [...weights.keys()].filter(isAdapted);
    const r = config.rank;
    for (const name of this.adapted) {
      const { shape, data } = weights.get(name)!;
      const [inDim, outDim] = shape;
      this.frozen.set(name, data.slice());
      const a = new Float32Array(inDim * r);
      const normal = gaussian(hashSeed(seed, `${name}.loraA`));
      const std = 1 / Math.sqrt(3 * inDim);
      for (let k = 0; k < a.length; k++) a[k] = std * normal();
      this.params.set(`${name}.loraA`, a);
      this.params.set(`${name}.loraB`, new Float32Array(r * outDim));
      this.grads.set(`${name}.loraA`, new Float32Array(inDim * r));
      this.grads.set(`${name}.loraB`, new Float32Array(r * outDim));
      this.shapes.set(`${name}.loraA`, [inDim, r]);
      this.shapes.set(`${name}.loraB`, [r, outDim]);
    }
  }

  /** W = W0 + s·A·B into each adapted matrix of `weights` (in place: they may be shared with gradient workers). */
  merge(weights: Map<string, Float32Array>): void {
    for (const name of this.adapted) {
      const w = weights.get(name)!;
      const { a, b, inDim, outDim } = this.factors(name);
      w.set(this.frozen.get(name)!);
      for (let i = 0; i < inDim; i++) {
        const row = i * outDim;
        for (let k = 0; k < this.config.rank; k++) {
          const aik = this.scale * a[i * this.config.rank + k];
          if (aik === 0) continue;
          const bk = k * outDim;
          for (let j = 0; j < outDim; j++) w[row + j] += aik * b[bk + j];
        }
      }
    }
  }

  /** The adapters' gradients (into `grads`) from the merged matrices' (`weightGrads`). */
  gradients(weightGrads: Map<string, Float32Array>): void {
    const r = this.config.rank;
    for (const name of this.adapted) {
      const dW = weightGrads.get(name)!;
      const { a, b, inDim, outDim } = this.factors(name);
      const dA = this.grads.get(`${name}.loraA`)!;
      const dB = this.grads.get(`${name}.loraB`)!;
      dB.fill(0);
      for (let i = 0; i < inDim; i++) {
        const row = i * outDim;
        for (let k = 0; k < r; k++) {
          // dA[i, k] = s · Σ_j dW[i, j] · B[k, j]
          let dot = 0;
          const bk = k * outDim;
          for (let j = 0; j < outDim; j++) dot += dW[row + j] * b[bk + j];
          dA[i * r + k] = this.scale * dot;
          // dB[k, :] += s · A[i, k] · dW[i, :]
          const aik = this.scale * a[i * r + k];
          for (let j = 0; j < outDim; j++) dB[bk + j] += aik * dW[row + j];
        }
      }
    }
  }

  /** Puts back a saved run's W0 and adapters (a resume); every adapter must be there with its shape. */
  restore(frozen: Map<string, WeightTensor>, adapters: Map<string, WeightTensor>): void {
    for (const name of this.adapted) this.frozen.get(name)!.set(frozen.get(name)!.data);
    for (const [name, mine] of this.params) {
      const saved = adapters.get(name);
      const shape = this.shapes.get(name)!;
      if (!saved || saved.shape.join(',') !== shape.join(',')) {
        throw new Error(`the saved run's adapters do not match: ${name} is ${saved ? `[${saved.shape}]` : 'missing'}, this run needs [${shape}] (rank ${this.config.rank})`);
      }
      mine.set(saved.data);
    }
  }

  /** The adapters with their shapes, for the resume state. */
  weights(): Map<string, WeightTensor> {
    return new Map([...this.params].map(([name, data]) => [name, { shape: [...this.shapes.get(name)!], data }]));
  }

  private factors(name: string): { a: Float32Array; b: Float32Array; inDim: number; outDim: number } {
    const [inDim] = this.shapes.get(`${name}.loraA`)!;
    const [, outDim] = this.shapes.get(`${name}.loraB`)!;
    return { a: this.params.get(`${name}.loraA`)!, b: this.params.get(`${name}.loraB`)!, inDim, outDim };
  }
}
