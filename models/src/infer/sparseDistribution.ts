// A next-token distribution the way an interpolated n-gram builds it, kept cheap to update per
// token: p(w) = scale · base[w] + extra[w]. The base is the order-1 level, which covers the whole
// vocabulary but does not change from one token to the next; each longer context scales what came
// before by its back-off weight and adds mass to the few tokens seen after it. So the n-gram and
// the cache answer in time proportional to what their contexts matched, not to the vocabulary.
// It holds no counts and no smoothing rules: ngram.ts and mixture.ts fill it.

export class SparseDistribution {
  /** The order-1 distribution, owned by whoever filled this; read, never written, here. */
  base: Float64Array;
  scale = 1;
  /** Mass on top of scale · base, 0 except at the tokens listed. */
  readonly extra: Float64Array;
  private readonly listed: Uint8Array;
  private readonly touched: Int32Array;
  private touchedCount = 0;

  constructor(readonly vocabSize: number) {
    this.base = new Float64Array(vocabSize);
    this.extra = new Float64Array(vocabSize);
    this.listed = new Uint8Array(vocabSize);
    this.touched = new Int32Array(vocabSize);
  }

  /** Starts over from `base` (vocabSize entries) at scale 1, with no extra mass. */
  reset(base: Float64Array): void {
    if (base.length !== this.vocabSize) throw new Error(`sparse distribution: base has ${base.length} entries, vocabulary has ${this.vocabSize}`);
    for (let k = 0; k < this.touchedCount; k++) {
      const id = this.touched[k];
      this.extra[id] = 0;
      this.listed[id] = 0;
    }
    this.touchedCount = 0;
    this.base = base;
    this.scale = 1;
  }

  /** Multiplies the whole distribution so far by `factor` (a back-off weight). */
  scaleBy(factor: number): void {
    this.scale *= factor;
    for (let k = 0; k < this.touchedCount; k++) this.extra[this.touched[k]] *= factor;
  }

  /** Adds `mass` to token `id`. */
  add(id: number, mass: number): void {
    if (this.listed[id] === 0) {
      this.listed[id] = 1;
      this.touched[this.touchedCount++] = id;
    }
    this.extra[id] += mass;
  }

  /** p(id). */
  prob(id: number): number {
    return this.scale * this.base[id] + this.extra[id];
  }

  /** Every p(w), written into `out`. */
  toDense(out: Float64Array): Float64Array {
    if (out.length !== this.vocabSize) throw new Error(`sparse distribution: output has ${out.length} entries, vocabulary has ${this.vocabSize}`);
    for (let w = 0; w < out.length; w++) out[w] = this.scale * this.base[w] + this.extra[w];
    return out;
  }
}
