// AdamW on host Float32Arrays: the optimizer state lives outside any tfjs backend, so it is the
// same on every backend, checkpoints byte for byte, and a resumed run continues exactly. It does
// not compute gradients or schedule the learning rate (train.ts does both).

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number; // added to sqrt(v): 1e-8 as in PyTorch
  weightDecay: number; // decoupled (Loshchilov & Hutter), scaled by the learning rate
}

export class AdamW {
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();

  /** `sizes`: element count of each parameter; `decayed`: which of them get weight decay. */
  constructor(sizes: Map<string, number>, private readonly cfg: AdamWConfig, private readonly decayed: (name: string) => boolean) {
    for (const [name, n] of sizes) {
      this.m.set(name, new Float32Array(n));
      this.v.set(name, new Float32Array(n));
    }
  }

  /** Restores saved moments (from a checkpoint); every parameter must be present with its size. */
  loadState(m: Map<string, Float32Array>, v: Map<string, Float32Array>): void {
    for (const [name, mine] of this.m) {
      const savedM = m.get(name);
      const savedV = v.get(name);
      if (!savedM || !savedV || savedM.length !== mine.length || savedV.length !== mine.length) {
        throw new Error(`optimizer state does not match the model: ${name} is missing or has another size`);
      }
      mine.set(savedM);
      this.v.get(name)!.set(savedV);
    }
  }

  /**
   * One update, in place. `t` is the 1-based step count (bias correction); gradients are
   * multiplied by `gradScale` first (the global-norm clip).
   */
  step(params: Map<string, Float32Array>, grads: Map<string, Float32Array>, lr: number, t: number, gradScale = 1): void {
    const { beta1, beta2, eps, weightDecay } = this.cfg;
    const correction1 = 1 - Math.pow(beta1, t);
    const correction2 = 1 - Math.pow(beta2, t);
    const stepSize = lr / correction1;
    for (const [name, g] of grads) {
      const p = params.get(name)!;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const decay = this.decayed(name) ? 1 - lr * weightDecay : 1;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * gradScale;
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        p[i] = p[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i] / correction2) + eps);
      }
    }
  }
}

/** into += from * scale: a weighted gradient summed into an accumulator. */
export function addScaled(into: Float32Array, from: Float32Array, scale: number): void {
  for (let i = 0; i < into.length; i++) into[i] += from[i] * scale;
}

/** The L2 norm of all gradients together, accumulated in float64. */
export function globalNorm(grads: Iterable<Float32Array>): number {
  let sum = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  return Math.sqrt(sum);
}
