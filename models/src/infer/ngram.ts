// A token n-gram language model with interpolated modified Kneser-Ney smoothing: the baseline every
// figure of the GPT is set against. Owns counting, smoothing, next-token distributions and line
// completion over token ids. It does not tokenize or read files, and it has no decoding rules
// of its own: completions go through generate.ts, the same prompt, healing, stop rules and clean-up
// (postprocess.ts) as the GPT.
//
// Counts live in a trie of n-grams whose edges sit in one open-addressing hash table keyed by
// (parent node, token), with typed arrays per node: about 45 bytes per distinct n-gram. Measured on
// 1M BPE tokens of TypeScript (vocabulary 8192): 0.8M distinct 1..4-grams, 37 MB, 0.2–0.6 s to
// train, 0.3–0.5 ms per full next-token distribution (2-core machine, shared).
//
// Counts change in place after training: applyChanges() takes token sequences out and puts others
// in (a saved file's old text, its new one) at a cost proportional to the change, not a recount.
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../util/atomicFiles';
import { buildPrompt, generate, topK as topKOfScores, type DecodingTokenizer, type GenerateResult, type NextTokenLogits } from './generate';
import { cursorContext } from './postprocess';
import { SparseDistribution } from './sparseDistribution';

/** Token ids on disk or in memory; dataset.ts's TokenStream fits. */
export interface TokenSource {
  readonly length: number;
  read(start: number, count: number): Int32Array;
}

export interface NGramOptions {
  vocabSize: number; // ids are 0..vocabSize-1; unseen ids still get probability (uniform floor)
  order?: number; // n: the longest n-gram counted, so order-1 tokens of context. Default 4
  chunkTokens?: number; // tokens read from the source per call; n-grams span the chunks. Default 1M
}

export interface NGramCompletionOptions {
  blockSize?: number; // prompt window in tokens, as the GPT's (only the last order-1 tokens matter). Default 256
  maxTokens?: number; // generated tokens at most. Default 48
  heal?: boolean; // token healing at the cursor, as generate.ts does it. Default true
  beamWidth?: number; // the beam in the middle of a line, as generate.ts's (default its MID_LINE_BEAM_WIDTH); 1: greedy only
  signal?: AbortSignal;
}

export const DEFAULT_NGRAM_ORDER = 4;
const MAX_ORDER = 12; // depth is stored in a byte and contexts are looked up in O(order²)
const ROOT = 0;
const NGRAM_MAGIC = Array.from('WLMNGRAM', (c) => c.charCodeAt(0));
const NGRAM_FORMAT_VERSION = 1;
const NO_NODE = -1;
const NO_CHILDREN: readonly number[] = []; // addLevel's default: a context with no children added since it loaded

/**
 * Modified Kneser-Ney discounts D1, D2, D3+ for one order, from how many n-grams were seen exactly
 * 1, 2, 3 and 4 times (Chen & Goodman 1998). Thin statistics (a tiny corpus) fall back to a single
 * absolute discount, so every discount stays in (0, count] and the distribution still sums to 1.
 */
export function kneserNeyDiscounts(n1: number, n2: number, n3: number, n4: number): [number, number, number] {
  const y = n1 / (n1 + 2 * n2);
  const d: [number, number, number] = [1 - (2 * y * n2) / n1, 2 - (3 * y * n3) / n2, 3 - (4 * y * n4) / n3];
  if (d.every((x, j) => Number.isFinite(x) && x > 0 && x <= j + 1)) return d;
  const single = Number.isFinite(y) && y > 0 && y < 1 ? y : 0.5;
  return [single, single, single];
}

export class NGramModel {
  readonly order: number;
  readonly vocabSize: number;
  /** Tokens counted: those trained on, plus what applyChanges() put in less what it took out. */
  get trainedTokens(): number {
    return this.counted;
  }
  /** discounts[k] = [D1, D2, D3+] for n-grams of length k (index 0 unused). */
  readonly discounts: [number, number, number][];

  // Per trie node (node 0 is the empty sequence). value: raw count at the top order, continuation
  // count N1+(• s) below it — the number of distinct tokens seen before s, which is what Kneser-Ney
  // uses for lower orders so that a token seen often but in one context only gets little mass.
  // The per-node arrays may be longer than `size` once applyChanges() added nodes (room to add more).
  private parent: Int32Array;
  private token: Int32Array;
  private value: Int32Array;
  private depth: Uint8Array; // n-gram length, for the count-of-counts behind the discounts
  private table: Int32Array; // hash slots holding node ids, NO_NODE when empty
  private mask: number;
  private size: number; // nodes in use
  private counted: number;
  // Per node as a context: the sum of its children's values, and how many children have value
  // 1, 2, and 3 or more (the discounted mass that goes to the lower order).
  private total: Int32Array;
  private n1: Int32Array;
  private n2: Int32Array;
  private n3: Int32Array;
  // Children of each node, grouped by parent: children[childStart[p] .. childStart[p+1]), for the
  // nodes counted at construction; those applyChanges() added are listed in addedChildren.
  private childStart: Int32Array;
  private readonly children: Int32Array;
  private readonly addedChildren = new Map<number, number[]>();
  // countOfCounts[k][v]: n-grams of length k with value v (1..4), behind the discounts.
  private readonly countOfCounts: number[][];
  private order1: Float64Array | null = null; // order1Distribution(), once asked for
  private scratch: SparseDistribution | null = null; // distribution()'s
  // Occurrences of each n-gram at every order, which applyChanges() needs to know when an n-gram
  // is seen no more. Kept from counting; ngram.bin stores only `value`, so a loaded model derives
  // them on its first change (derivedRawCounts).
  private raw: Int32Array | null;

  /** Counts every n-gram of length 1..order in one pass over the tokens. */
  static train(tokens: Int32Array | TokenSource, opts: NGramOptions): NGramModel {
    const order = opts.order ?? DEFAULT_NGRAM_ORDER;
    if (!Number.isInteger(order) || order < 1 || order > MAX_ORDER) {
      throw new Error(`n-gram: order must be an integer in [1, ${MAX_ORDER}], got ${opts.order}`);
    }
    if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < 1) {
      throw new Error(`n-gram: vocabSize must be a positive integer, got ${opts.vocabSize}`);
    }
    const source: TokenSource = tokens instanceof Int32Array ? { length: tokens.length, read: (s, n) => tokens.subarray(s, s + n) } : tokens;
    if (source.length === 0) throw new Error('n-gram: no tokens to train on (the training split is empty)');
    const counter = new NGramCounter(order, opts.vocabSize, Math.min(source.length + 16, 1 << 22));
    const chunk = opts.chunkTokens ?? 1 << 20;
    if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`n-gram: chunkTokens must be a positive integer, got ${opts.chunkTokens}`);
    for (let start = 0; start < source.length; start += chunk) {
      counter.count(source.read(start, Math.min(chunk, source.length - start)), 1, start);
    }
    return new NGramModel(counter, source.length);
  }

  /**
   * The counts as bytes (ngram.bin in a model folder), so that a model loads its n-gram without
   * counting the training tokens again. Layout, little-endian: "WLMNGRAM", int32 formatVersion,
   * order, vocabSize, nodes, tableSlots, trainedTokens; then parent, token, value (int32 × nodes),
   * table (int32 × tableSlots), depth (uint8 × nodes).
   */
  toBytes(): Uint8Array {
    const size = this.size;
    const headerBytes = NGRAM_MAGIC.length + 4 * 6;
    const out = new Uint8Array(headerBytes + 4 * (3 * size + this.table.length) + size);
    out.set(NGRAM_MAGIC);
    const view = new DataView(out.buffer);
    [NGRAM_FORMAT_VERSION, this.order, this.vocabSize, size, this.table.length, this.trainedTokens].forEach((v, i) => view.setInt32(NGRAM_MAGIC.length + 4 * i, v, true));
    let offset = headerBytes;
    for (const array of [this.parent.subarray(0, size), this.token.subarray(0, size), this.value.subarray(0, size), this.table]) {
      out.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), offset); // little-endian hosts only (x64, arm64)
      offset += array.byteLength;
    }
    out.set(this.depth.subarray(0, size), offset);
    return out;
  }

  /** Reads toBytes()'s layout back; `source` names the file in errors. */
  static fromBytes(bytes: Uint8Array, source = 'n-gram bytes'): NGramModel {
    const bad = (why: string) => new Error(`corrupt n-gram ${source}: ${why}; hint: delete it and mixture.json (the model then serves without them), or count them again from the sources with wlm eval --editor`);
    const headerBytes = NGRAM_MAGIC.length + 4 * 6;
    if (bytes.length < headerBytes || !NGRAM_MAGIC.every((b, i) => bytes[i] === b)) throw bad('not an n-gram file (bad magic)');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const [version, order, vocabSize, size, slots, trainedTokens] = [0, 1, 2, 3, 4, 5].map((i) => view.getInt32(NGRAM_MAGIC.length + 4 * i, true));
    if (version !== NGRAM_FORMAT_VERSION) throw bad(`formatVersion ${version}, this build reads ${NGRAM_FORMAT_VERSION}`);
    if (!(order >= 1 && order <= MAX_ORDER && vocabSize >= 1 && size >= 1 && slots >= 2 * size && (slots & (slots - 1)) === 0)) {
      throw bad(`header order ${order}, vocabSize ${vocabSize}, nodes ${size}, slots ${slots} is inconsistent`);
    }
    const expected = headerBytes + 4 * (3 * size + slots) + size;
    if (bytes.length !== expected) throw bad(`${bytes.length} bytes, the header promises ${expected}`);
    let offset = headerBytes;
    const int32s = (n: number) => {
      const a = new Int32Array(n);
      new Uint8Array(a.buffer).set(bytes.subarray(offset, offset + 4 * n));
      offset += 4 * n;
      return a;
    };
    const parent = int32s(size);
    const token = int32s(size);
    const value = int32s(size);
    const table = int32s(slots);
    const depth = bytes.slice(offset, offset + size);
    for (let node = 1; node < size; node++) {
      if (!(parent[node] >= 0 && parent[node] < node && token[node] >= 0 && token[node] < vocabSize && depth[node] >= 1 && depth[node] <= order)) {
        throw bad(`node ${node} (parent ${parent[node]}, token ${token[node]}, depth ${depth[node]}) is out of range`);
      }
    }
    return new NGramModel({ order, vocabSize, size, parent, token, value, depth, table }, trainedTokens);
  }

  /** Writes toBytes() to a file, atomically. */
  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.toBytes());
  }

  /** Reads a file written by save(); a damaged file is an error that names it. */
  static async load(file: string): Promise<NGramModel> {
    return NGramModel.fromBytes(await fs.readFile(file), file);
  }

  private constructor(counts: FrozenCounts, trainedTokens: number) {
    this.order = counts.order;
    this.vocabSize = counts.vocabSize;
    this.counted = trainedTokens;
    const size = counts.size;
    this.size = size;
    // Copies at the exact size, so the counter's spare capacity is freed with it.
    this.parent = counts.parent.slice(0, size);
    this.token = counts.token.slice(0, size);
    this.value = counts.value.slice(0, size);
    this.depth = counts.depth.slice(0, size);
    this.raw = counts.raw ? counts.raw.slice(0, size) : null;
    this.table = counts.table;
    this.mask = counts.table.length - 1;

    this.total = new Int32Array(size);
    this.n1 = new Int32Array(size);
    this.n2 = new Int32Array(size);
    this.n3 = new Int32Array(size);
    this.childStart = new Int32Array(size + 1);
    const countOfCounts = (this.countOfCounts = Array.from({ length: this.order + 1 }, () => [0, 0, 0, 0, 0]));
    for (let node = 1; node < size; node++) {
      const p = this.parent[node];
      const v = this.value[node];
      this.childStart[p + 1]++;
      if (v <= 0) continue; // an n-gram at the very start of the data: no left context to count
      this.total[p] += v;
      if (v === 1) this.n1[p]++;
      else if (v === 2) this.n2[p]++;
      else this.n3[p]++;
      if (v <= 4) countOfCounts[this.depth[node]][v]++;
    }
    for (let p = 0; p < size; p++) this.childStart[p + 1] += this.childStart[p];
    this.children = new Int32Array(Math.max(size - 1, 0));
    const fill = this.childStart.slice(0, size);
    for (let node = 1; node < size; node++) this.children[fill[this.parent[node]]++] = node;

    this.discounts = countOfCounts.map(([, c1, c2, c3, c4]) => kneserNeyDiscounts(c1, c2, c3, c4));
  }

  /**
   * Takes token sequences out of the counts and puts others in, in place, each sequence counted as
   * a document of its own (no n-gram spans two): a saved file's old text out, its new text in.
   * Taking out is the exact inverse of putting in, so a sequence put in and taken out again leaves
   * every probability as it was; an n-gram that is not there is left alone, never counted below
   * zero. Out of counts read from ngram.bin, a sequence counted inside a token stream leaves the few
   * n-grams that spanned its neighbours behind. An n-gram seen no more stays in the trie with
   * count 0, which reads as absent. A completion in flight reads the new counts from its next token.
   * Costs order lookups per token and the statistics of what changed, not a recount: on a 6-gram
   * of 1M TypeScript tokens (1.55M n-grams, 2 shared cores) 10-60 ms to replace a 10 KB file,
   * 90-150 ms for 100 KB; the first change also derives the raw counts and grows the arrays by a
   * quarter (~150 ms, and 4 bytes more per n-gram).
   */
  applyChanges(remove: readonly ArrayLike<number>[], add: readonly ArrayLike<number>[]): void {
    // Checked before anything changes: a bad id must not leave the counts half changed.
    for (const ids of [...remove, ...add]) {
      for (let i = 0; i < ids.length; i++) {
        if (!(ids[i] >= 0 && ids[i] < this.vocabSize)) throw new Error(`n-gram: token ${ids[i]} at position ${i} is outside the vocabulary [0, ${this.vocabSize}); was the text tokenized with another tokenizer?`);
      }
    }
    this.raw ??= this.derivedRawCounts();
    const journal: number[] = [];
    const counter = NGramCounter.resume({ order: this.order, vocabSize: this.vocabSize, size: this.size, parent: this.parent, token: this.token, value: this.value, depth: this.depth, table: this.table, raw: this.raw }, journal);
    for (const [sign, sequences] of [[-1, remove], [1, add]] as const) {
      for (const ids of sequences) {
        counter.startSequence();
        counter.count(ids, sign);
        this.counted = Math.max(0, this.counted + sign * ids.length);
      }
    }
    const before = this.size;
    this.adoptCounts(counter);
    for (let node = before; node < this.size; node++) {
      const siblings = this.addedChildren.get(this.parent[node]);
      if (siblings) siblings.push(node);
      else this.addedChildren.set(this.parent[node], [node]);
    }
    for (let i = 0; i < journal.length; i += 3) this.recount(journal[i], journal[i + 1], journal[i + 2]);
    this.countOfCounts.forEach(([, c1, c2, c3, c4], k) => (this.discounts[k] = kneserNeyDiscounts(c1, c2, c3, c4)));
    this.order1 = null;
  }

  /** The counter's arrays (grown if it added nodes), with the per-node statistics grown to match. */
  private adoptCounts(counter: NGramCounter): void {
    this.parent = counter.parent;
    this.token = counter.token;
    this.value = counter.value;
    this.depth = counter.depth;
    this.raw = counter.raw;
    this.table = counter.table;
    this.mask = counter.table.length - 1;
    this.size = counter.size;
    const capacity = this.parent.length;
    if (this.total.length >= capacity) return;
    const grow = (old: Int32Array) => {
      const fresh = new Int32Array(capacity);
      fresh.set(old);
      return fresh;
    };
    [this.total, this.n1, this.n2, this.n3] = [grow(this.total), grow(this.n1), grow(this.n2), grow(this.n3)];
    // Nodes past those counted at construction have empty ranges in the CSR lists.
    const childStart = new Int32Array(capacity + 1).fill(this.children.length);
    childStart.set(this.childStart);
    this.childStart = childStart;
  }

  // A node's value went from v to w: its parent's statistics and the count-of-counts follow.
  private recount(node: number, v: number, w: number): void {
    const p = this.parent[node];
    this.total[p] += w - v;
    this.countChild(p, this.depth[node], v, -1);
    this.countChild(p, this.depth[node], w, 1);
  }

  // One child of length `depth` and value v more (delta 1) or less (-1) under context p.
  private countChild(p: number, depth: number, v: number, delta: number): void {
    if (v === 1) this.n1[p] += delta;
    else if (v === 2) this.n2[p] += delta;
    else if (v >= 3) this.n3[p] += delta;
    if (v >= 1 && v <= 4) this.countOfCounts[depth][v] += delta;
  }

  /**
   * The share of the order-long n-grams of `tokens` (read as one document) that the counts hold: 1
   * for a text counted as it is, less for one never counted or changed since. Shorter than the
   * order, the whole sequence is the one n-gram looked up.
   */
  seenShare(tokens: ArrayLike<number>): number {
    const n = Math.min(this.order, tokens.length);
    if (n === 0) return 0;
    let seen = 0;
    for (let end = n; end <= tokens.length; end++) {
      let node = ROOT;
      for (let j = end - n; j < end && node !== NO_NODE; j++) node = this.find(node, tokens[j]);
      if (node !== NO_NODE && (this.depth[node] < this.order || this.value[node] > 0)) seen++;
    }
    return seen / (tokens.length - n + 1);
  }

  /**
   * Occurrences of every n-gram from the top-order counts: an n-gram occurs as often as its
   * extensions by one token do, plus once if it ends the data (then nothing extends it: counted
   * once at least, as it exists). Children have higher ids than their parent, so one backward pass.
   */
  private derivedRawCounts(): Int32Array {
    const raw = new Int32Array(this.parent.length);
    for (let node = this.size - 1; node >= 1; node--) {
      if (this.depth[node] === this.order) raw[node] = this.value[node];
      raw[node] = Math.max(raw[node], 1);
      raw[this.parent[node]] += raw[node];
    }
    return raw;
  }

  /** Distinct n-grams of all lengths (trie nodes, the empty context included). */
  get nodeCount(): number {
    return this.size;
  }

  /** P(next | context). Only the last order-1 tokens of the context matter. */
  prob(context: ArrayLike<number>, next: number): number {
    this.checkToken(next);
    let p = 1 / this.vocabSize;
    const chain = this.contextChain(context);
    for (let k = 1; k <= chain.length; k++) {
      const c = chain[k - 1];
      const child = this.find(c, next);
      const v = child === NO_NODE ? 0 : this.value[child];
      p = this.discounted(k, v) / this.total[c] + this.backoffWeight(k, c) * p;
    }
    return p;
  }

  /** How many of the context's last tokens the model has seen followed by something (0..order-1). */
  matchedContext(context: ArrayLike<number>): number {
    return Math.max(0, this.contextChain(context).length - 1);
  }

  /** The full next-token distribution over the vocabulary; sums to 1. */
  distribution(context: ArrayLike<number>, out: Float64Array = new Float64Array(this.vocabSize)): Float64Array {
    if (out.length !== this.vocabSize) throw new Error(`n-gram: output has ${out.length} entries, vocabulary has ${this.vocabSize}`);
    this.scratch ??= new SparseDistribution(this.vocabSize);
    this.sparseDistribution(context, this.scratch);
    return this.scratch.toDense(out);
  }

  /**
   * The next-token distribution as the order-1 level scaled, plus the tokens seen after the
   * longer contexts: what the completion mixture reads per token, in microseconds. Returns how
   * many of the context's last tokens matched (matchedContext), found on the way.
   */
  sparseDistribution(context: ArrayLike<number>, into: SparseDistribution): number {
    into.reset(this.order1Distribution());
    const chain = this.contextChain(context);
    for (let k = 2; k <= chain.length; k++) this.addLevel(k, chain[k - 1], into);
    return Math.max(0, chain.length - 1);
  }

  /** Uniform, then the 1-grams over it: the same for every context, so computed once. */
  private order1Distribution(): Float64Array {
    if (!this.order1) {
      const order1 = new SparseDistribution(this.vocabSize);
      order1.reset(new Float64Array(this.vocabSize).fill(1 / this.vocabSize));
      if (this.total[ROOT] > 0) this.addLevel(1, ROOT, order1);
      this.order1 = order1.toDense(new Float64Array(this.vocabSize));
    }
    return this.order1;
  }

  // Interpolation with the context `c` of length k-1: what came before, scaled by c's back-off
  // weight, plus each continuation's discounted count.
  private addLevel(k: number, c: number, into: SparseDistribution): void {
    into.scaleBy(this.backoffWeight(k, c));
    const total = this.total[c];
    for (let e = this.childStart[c]; e < this.childStart[c + 1]; e++) {
      const child = this.children[e];
      const kept = this.discounted(k, this.value[child]);
      if (kept > 0) into.add(this.token[child], kept / total);
    }
    for (const child of this.addedChildren.get(c) ?? NO_CHILDREN) {
      const kept = this.discounted(k, this.value[child]);
      if (kept > 0) into.add(this.token[child], kept / total);
    }
  }

  /** Natural-log probabilities of every next token, for scorers that expect log-probs. */
  logProbs(context: ArrayLike<number>, out: Float32Array = new Float32Array(this.vocabSize)): Float32Array {
    const dist = this.distribution(context);
    for (let w = 0; w < dist.length; w++) out[w] = Math.log(dist[w]);
    return out;
  }

  /** The k most likely next tokens, best first. */
  topK(context: ArrayLike<number>, k: number): { id: number; prob: number }[] {
    const dist = this.distribution(context);
    return topKOfScores(dist, k).map((id) => ({ id, prob: dist[id] }));
  }

  /** The n-gram as generate.ts's next-token function: log-probabilities serve as logits. */
  nextTokenLogits(): NextTokenLogits {
    const scratch = new Float32Array(this.vocabSize);
    return (tokens) => this.logProbs(tokens.slice(Math.max(0, tokens.length - (this.order - 1))), scratch);
  }

  /**
   * Completion of the line at the cursor between prefix and suffix, through generate.ts: the same
   * prompt window, token healing, decoding (greedy, with the beam in the middle of a line) and stop
   * rules as the GPT's line completions. The suffix shapes only the stop rules and clean-up; an
   * n-gram cannot read it.
   */
  async complete(tokenizer: DecodingTokenizer, prefix: string, suffix: string, opts: NGramCompletionOptions = {}): Promise<GenerateResult> {
    if (tokenizer.vocabSize !== this.vocabSize) {
      throw new Error(`n-gram: tokenizer has ${tokenizer.vocabSize} tokens but the n-gram was trained with ${this.vocabSize}`);
    }
    const blockSize = opts.blockSize ?? 256;
    const maxTokens = opts.maxTokens ?? 48;
    const prompt = buildPrompt(tokenizer, prefix, suffix, { blockSize, maxTokens, fim: false, heal: opts.heal });
    return generate({
      next: this.nextTokenLogits(),
      tokenizer,
      prompt,
      maxTokens,
      blockSize,
      ...cursorContext(prefix, suffix, 'line'),
      signal: opts.signal,
      beamWidth: opts.beamWidth,
    });
  }

  // Count minus its discount: what an n-gram keeps of its own mass.
  private discounted(k: number, v: number): number {
    if (v <= 0) return 0;
    const [d1, d2, d3] = this.discounts[k];
    return v - (v === 1 ? d1 : v === 2 ? d2 : d3);
  }

  // The share of a context's mass handed to the next lower order: exactly what the discounts took.
  private backoffWeight(k: number, context: number): number {
    const [d1, d2, d3] = this.discounts[k];
    return (d1 * this.n1[context] + d2 * this.n2[context] + d3 * this.n3[context]) / this.total[context];
  }

  /**
   * chain[k-1] = the node of the last k-1 context tokens, for k = 1, 2, ... as long as that context
   * was seen followed by something. An unseen context backs off entirely to the shorter one.
   */
  private contextChain(context: ArrayLike<number>): number[] {
    const chain: number[] = [];
    if (this.total[ROOT] === 0) return chain;
    chain.push(ROOT);
    const longest = Math.min(this.order - 1, context.length);
    for (let length = 1; length <= longest; length++) {
      let node = ROOT;
      for (let j = context.length - length; j < context.length && node !== NO_NODE; j++) node = this.find(node, context[j]);
      if (node === NO_NODE || this.total[node] === 0) break;
      chain.push(node);
    }
    return chain;
  }

  private find(parent: number, token: number): number {
    for (let slot = hashSlot(parent, token, this.mask); ; slot = (slot + 1) & this.mask) {
      const node = this.table[slot];
      if (node === NO_NODE || (this.parent[node] === parent && this.token[node] === token)) return node;
    }
  }

  private checkToken(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new Error(`n-gram: token ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }
}

function hashSlot(parent: number, token: number, mask: number): number {
  let h = Math.imul(parent, 0x9e3779b1) ^ Math.imul(token + 0x7f4a7c15, 0x85ebca77);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h & mask;
}

/** What NGramModel is built from: the counting trie, or the same arrays read back from disk. */
interface FrozenCounts {
  order: number;
  vocabSize: number;
  size: number; // nodes in use; the arrays may be longer
  parent: Int32Array;
  token: Int32Array;
  value: Int32Array;
  depth: Uint8Array;
  table: Int32Array;
  raw?: Int32Array; // occurrences at every order (NGramModel's `raw`); absent when read from ngram.bin
}

/** The growing trie while counting; NGramModel freezes it and adds the context statistics. */
class NGramCounter implements FrozenCounts {
  size = 1; // node 0 is the empty sequence
  parent: Int32Array;
  token: Int32Array;
  value: Int32Array;
  depth: Uint8Array;
  raw: Int32Array;
  table: Int32Array;
  // The node of the n-gram of each length ending at the previous token; carries across chunks.
  private previous: Int32Array;
  private current: Int32Array;
  private journal: number[] | null = null; // resume()'s: every value changed, for the model's statistics
  private growth = 2; // the node arrays grow by this factor when full

  constructor(readonly order: number, readonly vocabSize: number, initialNodes: number) {
    this.parent = new Int32Array(initialNodes);
    this.token = new Int32Array(initialNodes);
    this.value = new Int32Array(initialNodes);
    this.depth = new Uint8Array(initialNodes);
    this.raw = new Int32Array(initialNodes);
    this.table = new Int32Array(nextPowerOfTwo(initialNodes * 2)).fill(NO_NODE);
    this.previous = new Int32Array(order + 1).fill(NO_NODE);
    this.current = new Int32Array(order + 1).fill(NO_NODE);
    this.startSequence();
  }

  /**
   * A counter over `counts` as they are (the same arrays, grown by a quarter when full), that
   * notes every value it changes in `journal` as (node, before, after).
   */
  static resume(counts: FrozenCounts & { raw: Int32Array }, journal: number[]): NGramCounter {
    const counter = new NGramCounter(counts.order, counts.vocabSize, 1);
    counter.size = counts.size;
    counter.parent = counts.parent;
    counter.token = counts.token;
    counter.value = counts.value;
    counter.depth = counts.depth;
    counter.raw = counts.raw;
    counter.table = counts.table;
    counter.journal = journal;
    counter.growth = 1.25;
    return counter;
  }

  /** The next count() starts a new document: no n-gram spans it and what came before. */
  startSequence(): void {
    this.previous.fill(NO_NODE);
    this.current.fill(NO_NODE);
    this.previous[0] = ROOT;
    this.current[0] = ROOT;
  }

  /**
   * Counts every n-gram of `tokens` (sign 1), or takes them back (sign -1), continuing the
   * sequence the previous call ended (chunks of one token stream). Taking back is the exact
   * inverse of counting; an n-gram that is not there is left alone, never counted below zero.
   * `offset` places the tokens in the stream, for errors.
   */
  count(tokens: ArrayLike<number>, sign: 1 | -1, offset = 0): void {
    const { order, vocabSize } = this;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (!(t >= 0 && t < vocabSize)) {
        throw new Error(`n-gram: token ${t} at position ${offset + i} is outside the vocabulary [0, ${vocabSize}); was the data tokenized with another tokenizer?`);
      }
      for (let k = 1; k <= order; k++) {
        const shorter = this.previous[k - 1]; // t[i-k+1 .. i-1]
        if (shorter === NO_NODE) {
          this.current[k] = NO_NODE; // not enough tokens yet for an n-gram this long
          continue;
        }
        const node = sign > 0 ? this.findOrAdd(shorter, t, k) : this.find(shorter, t); // t[i-k+1 .. i]
        this.current[k] = node;
        if (node === NO_NODE || this.raw[node] + sign < 0) continue;
        this.raw[node] += sign;
        if (k === order) this.changeValue(node, sign);
        // An n-gram seen for the first time is a new left context for its suffix t[i-k+2 .. i]:
        // one more continuation; an n-gram seen no more takes it back.
        const suffix = this.current[k - 1];
        if (k >= 2 && this.raw[node] === (sign > 0 ? 1 : 0) && suffix !== NO_NODE && this.value[suffix] + sign >= 0) this.changeValue(suffix, sign);
      }
      [this.previous, this.current] = [this.current, this.previous];
      this.current[0] = ROOT;
    }
  }

  private changeValue(node: number, delta: number): void {
    const before = this.value[node];
    this.value[node] = before + delta;
    this.journal?.push(node, before, before + delta);
  }

  private find(parent: number, token: number): number {
    const mask = this.table.length - 1;
    for (let slot = hashSlot(parent, token, mask); ; slot = (slot + 1) & mask) {
      const node = this.table[slot];
      if (node === NO_NODE || (this.parent[node] === parent && this.token[node] === token)) return node;
    }
  }

  private findOrAdd(parent: number, token: number, depth: number): number {
    const mask = this.table.length - 1;
    let slot = hashSlot(parent, token, mask);
    for (; ; slot = (slot + 1) & mask) {
      const node = this.table[slot];
      if (node === NO_NODE) break;
      if (this.parent[node] === parent && this.token[node] === token) return node;
    }
    if (this.size === this.parent.length) this.growNodes();
    const node = this.size++;
    this.parent[node] = parent;
    this.token[node] = token;
    this.depth[node] = depth;
    this.table[slot] = node;
    if (this.size * 2 > this.table.length) this.growTable();
    return node;
  }

  private growNodes(): void {
    const capacity = Math.ceil(this.parent.length * this.growth) + 16;
    const grow = <T extends Int32Array | Uint8Array>(old: T, fresh: T): T => {
      fresh.set(old);
      return fresh;
    };
    this.parent = grow(this.parent, new Int32Array(capacity));
    this.token = grow(this.token, new Int32Array(capacity));
    this.value = grow(this.value, new Int32Array(capacity));
    this.depth = grow(this.depth, new Uint8Array(capacity));
    this.raw = grow(this.raw, new Int32Array(capacity));
  }

  private growTable(): void {
    const table = new Int32Array(this.table.length * 2).fill(NO_NODE);
    const mask = table.length - 1;
    for (let node = 1; node < this.size; node++) {
      let slot = hashSlot(this.parent[node], this.token[node], mask);
      while (table[slot] !== NO_NODE) slot = (slot + 1) & mask;
      table[slot] = node;
    }
    this.table = table;
  }
}

function nextPowerOfTwo(n: number): number {
  let p = 16;
  while (p < n) p *= 2;
  return p;
}
