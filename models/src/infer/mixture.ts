// The editor's next-token distribution: the Transformer interpolated with the workspace n-gram
// (ngram.bin, counted on the model's training tokens) and a cache n-gram over the open documents
// (updated as the user types, no retraining), with weights fitted by EM on held-out tokens and
// stored in the model folder (mixture.json). Hellendoorn & Devanbu (FSE 2017) found cache n-grams
// strong on code and mixtures stronger; this file is where we check that on ours.
// It owns the cache, the mixing, the fit and the two files; it does not run the GPT (session.ts
// hands it logits) and it does not decode (generate.ts does, on the mixed log-probabilities).
import { promises as fs, existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomicFiles';
import { readModelConfig } from '../model/checkpoint';
import { NGramModel, type TokenSource } from './ngram';

export const NGRAM_FILE = 'ngram.bin';
export const MIXTURE_FILE = 'mixture.json';
export const COMPONENTS = ['model', 'ngram', 'cache'] as const;
export type Component = (typeof COMPONENTS)[number];

// The cache's context is at most this many tokens: long repeats in code (a call copied with a new
// argument) are what it is for, and matching costs only the positions of the last token.
export const CACHE_ORDER = 6;
// Mixing weights depend on how long a context the cache matched (0 = none, 1, 2, 3, 4+ tokens),
// how long a one the n-gram had seen (0, 1, 2, 3+), and whether the next token starts a line:
// where the open files repeat the last few tokens the cache deserves more trust, where the n-gram
// backed off the Transformer does, and at a line start the cache's short matches mislead (on
// rxjs, line-start edit similarity 35 with the cache, 41 without; mid-line 51 with, 47 without).
export const CACHE_BUCKETS = 5;
export const NGRAM_BUCKETS = 4;
export const BUCKETS = CACHE_BUCKETS * NGRAM_BUCKETS * 2;
// The workspace n-gram in the mixture. Held-out loss of the mixture on rxjs (6-minute small
// model, weights by cache match only): order 3: 2.96, 4: 2.84, 5: 2.79, 6: 2.77, 8: 2.85 nats;
// adding the n-gram's match to the buckets then took order 6 to 2.74.
export const DEFAULT_MIXTURE_NGRAM_ORDER = 6;

/** The weights row for a prediction: by the context lengths the cache and the n-gram matched, and the line start. */
export function bucketOf(cacheMatched: number, ngramMatched: number, lineStart: boolean): number {
  const inLine = Math.min(cacheMatched, CACHE_BUCKETS - 1) * NGRAM_BUCKETS + Math.min(ngramMatched, NGRAM_BUCKETS - 1);
  return lineStart ? CACHE_BUCKETS * NGRAM_BUCKETS + inLine : inLine;
}

const OTHER = 0;
const NEWLINE_SPACE = 1; // whitespace only, with a line break
const SPACE = 2; // whitespace only, no line break

/** Per token id: whether its text is whitespace with a line break, other whitespace, or anything else. */
export function tokenKinds(vocabSize: number, tokenBytes: (id: number) => Uint8Array): Uint8Array {
  const kinds = new Uint8Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    const bytes = tokenBytes(id);
    if (bytes.length === 0 || !bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d)) continue;
    kinds[id] = bytes.includes(0x0a) ? NEWLINE_SPACE : SPACE;
  }
  return kinds;
}

/** Whether the context ends in a line break and indentation: the next token starts the line's code. */
export function atLineStart(context: ArrayLike<number>, kinds: Uint8Array): boolean {
  for (let i = context.length - 1; i >= Math.max(0, context.length - 8); i--) {
    const kind = kinds[context[i]];
    if (kind === NEWLINE_SPACE) return true;
    if (kind === OTHER) return false;
  }
  return false;
}

// A document longer than this only contributes its last tokens (they are closest to the cursor).
const MAX_DOCUMENT_TOKENS = 16384;
const MAX_DOCUMENTS = 16;

// ---------------------------------------------------------------------------------------------
// The cache: token n-grams of the open documents
// ---------------------------------------------------------------------------------------------

/** A run of tokens with, per token id, where it occurs followed by another: contexts are looked up by their last token. */
class Segment {
  readonly tokens: number[] = [];
  readonly positions = new Map<number, number[]>();
  constructor(ids: ArrayLike<number> = []) {
    const from = Math.max(0, ids.length - MAX_DOCUMENT_TOKENS);
    for (let i = from; i < ids.length; i++) this.push(ids[i]);
  }
  push(token: number): void {
    const n = this.tokens.length;
    if (n > 0) {
      const prev = this.tokens[n - 1];
      const list = this.positions.get(prev);
      if (list) list.push(n - 1);
      else this.positions.set(prev, [n - 1]);
    }
    this.tokens.push(token);
  }
}

/**
 * A Witten-Bell smoothed n-gram over the tokens of the open documents, counted at query time by
 * matching the context's tail against them. Documents are separate segments: no n-gram spans two.
 * The document under the cursor is set per request as two segments, the text before the cursor
 * and the text after it, so the text at the cursor never predicts itself.
 */
export class TokenCache {
  private readonly documents = new Map<string, Segment>();
  private current: Segment[] = [];
  private currentKey: string | null = null;
  private currentSources: ArrayLike<number>[] = []; // what the current segments were built from
  private readonly unigrams: Float64Array;
  private unigramTotal = 0;
  private distinct = 0;

  constructor(readonly vocabSize: number) {
    this.unigrams = new Float64Array(vocabSize);
  }

  /** Adds or replaces a document (an open file, a recent edit). The oldest goes beyond MAX_DOCUMENTS. */
  observe(key: string, ids: ArrayLike<number>): void {
    this.checkTokens(ids);
    this.forget(key);
    const seg = new Segment(ids);
    this.documents.set(key, seg);
    if (key !== this.currentKey) this.count(seg.tokens, +1);
    while (this.documents.size > MAX_DOCUMENTS) this.forget(this.documents.keys().next().value!);
  }

  forget(key: string): void {
    const old = this.documents.get(key);
    if (!old) return;
    this.documents.delete(key);
    if (key !== this.currentKey) this.count(old.tokens, -1);
  }

  /**
   * The document under the cursor, for the queries that follow: replaces the previous one. Its
   * observed copy (same key) is left out meanwhile: it holds the text at the cursor.
   */
  setCurrent(key: string | null, ...parts: ArrayLike<number>[]): void {
    for (const seg of this.current) this.count(seg.tokens, -1);
    const hiddenBefore = this.currentKey === null ? undefined : this.documents.get(this.currentKey);
    if (hiddenBefore) this.count(hiddenBefore.tokens, +1);
    this.currentKey = key;
    const hidden = key === null ? undefined : this.documents.get(key);
    if (hidden) this.count(hidden.tokens, -1);
    // The same id arrays as last time (typing within a line) keep their indexed segments.
    const previous = new Map(this.currentSources.map((source, i) => [source, this.current[i]]));
    this.current = parts.map((p) => {
      const kept = previous.get(p);
      if (kept && kept.tokens.length === Math.min(p.length, MAX_DOCUMENT_TOKENS)) return kept;
      this.checkTokens(p);
      return new Segment(p);
    });
    this.currentSources = parts;
    for (const seg of this.current) this.count(seg.tokens, +1);
  }

  /** Appends a token to the last part of the current document (a text typed or read in order). */
  appendCurrent(token: number): void {
    this.checkTokens([token]);
    if (this.current.length === 0) this.current.push(new Segment());
    this.current[this.current.length - 1].push(token);
    this.currentSources = []; // the last segment no longer mirrors its source
    this.count([token], +1);
  }

  get documentCount(): number {
    return this.documents.size;
  }

  /** Tokens held: every document and the current one. */
  get tokenCount(): number {
    return this.unigramTotal;
  }

  /**
   * P_cache(next | context) over the vocabulary, written into `out`. Returns the longest context
   * (0..CACHE_ORDER-1 tokens) the documents matched: it picks the mixing weights.
   */
  distribution(context: ArrayLike<number>, out: Float64Array): number {
    if (out.length !== this.vocabSize) throw new Error(`token cache: output has ${out.length} entries, vocabulary has ${this.vocabSize}`);
    const uniform = 1 / this.vocabSize;
    if (this.unigramTotal === 0) {
      out.fill(uniform);
      return 0;
    }
    // Order 1: every token held, Witten-Bell over the uniform distribution.
    const lambda0 = this.distinct / (this.unigramTotal + this.distinct);
    const scale = 1 / (this.unigramTotal + this.distinct);
    for (let w = 0; w < out.length; w++) out[w] = this.unigrams[w] * scale + lambda0 * uniform;

    // Longer orders: followers of every position whose preceding tokens match the context's tail.
    const n = context.length;
    const maxMatch = Math.min(CACHE_ORDER - 1, n);
    if (maxMatch === 0) return 0;
    // followers[k]: next-token counts after a match of k or more context tokens.
    const followers: Map<number, number>[] = Array.from({ length: maxMatch + 1 }, () => new Map());
    const last = context[n - 1];
    const hidden = this.currentKey === null ? undefined : this.documents.get(this.currentKey);
    for (const seg of [...this.documents.values(), ...this.current]) {
      if (seg === hidden) continue;
      const list = seg.positions.get(last);
      if (!list) continue;
      const toks = seg.tokens;
      for (const p of list) {
        let k = 1;
        while (k < maxMatch && p - k >= 0 && toks[p - k] === context[n - 1 - k]) k++;
        const next = toks[p + 1];
        for (let j = 1; j <= k; j++) followers[j].set(next, (followers[j].get(next) ?? 0) + 1);
      }
    }
    let matched = 0;
    for (let k = 1; k <= maxMatch; k++) {
      const counts = followers[k];
      if (counts.size === 0) break;
      matched = k;
      let sum = 0;
      for (const c of counts.values()) sum += c;
      const backoff = counts.size / (sum + counts.size);
      const norm = 1 / (sum + counts.size);
      for (let w = 0; w < out.length; w++) out[w] *= backoff;
      for (const [w, c] of counts) out[w] += c * norm;
    }
    return matched;
  }

  private checkTokens(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) {
      const t = ids[i];
      if (!(Number.isInteger(t) && t >= 0 && t < this.vocabSize)) throw new Error(`token cache: token ${t} at ${i} is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }

  private count(tokens: ArrayLike<number>, sign: 1 | -1): void {
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      const before = this.unigrams[t];
      this.unigrams[t] += sign;
      if (before === 0 && sign > 0) this.distinct++;
      else if (sign < 0 && this.unigrams[t] === 0) this.distinct--;
    }
    this.unigramTotal += sign * tokens.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Weights
// ---------------------------------------------------------------------------------------------

/** mixture.json: weights per cache-match bucket, and what they were fitted on. */
export interface MixtureFile {
  formatVersion: 1;
  kind: 'workspace-lm-mixture';
  createdAt: string;
  weights: number[][]; // [bucketOf(cache match, n-gram match, line start)][model, ngram, cache], each row sums to 1
  // The same fitted without the cache (its column at EM's floor, unused), for completions that
  // leave the cache out (a line from its start). Absent in older files: `weights` renormalised stands in.
  weightsWithoutCache?: number[][];
  fit: {
    tokens: number; // held-out predictions the weights were fitted on
    perBucket: number[]; // of which in each bucket
    loss: Record<Component | 'mixture', number>; // mean cross-entropy (nats) on those tokens
    // The mixture refitted without one component: what each one buys (nats; higher = it mattered).
    without: Record<Component, number>;
  };
}

/** One held-out prediction as the fit sees it: each component's probability of the true token. */
export interface FitSample {
  p: [number, number, number]; // model, n-gram, cache
  bucket: number;
}

/**
 * Linear-interpolation weights per bucket by EM (each step: the posterior share of each component
 * in each prediction, averaged). A bucket with few samples is pulled towards the global weights by
 * a prior worth PRIOR_SAMPLES predictions, so a rare context length cannot get extreme weights.
 */
export function fitWeights(samples: readonly FitSample[], iterations = 50): number[][] {
  const PRIOR_SAMPLES = 50;
  const em = (subset: readonly FitSample[], prior: number[] | null): number[] => {
    let w = prior ? [...prior] : [1 / 3, 1 / 3, 1 / 3];
    for (let it = 0; it < iterations; it++) {
      const share = prior ? prior.map((x) => x * PRIOR_SAMPLES) : [0, 0, 0];
      for (const s of subset) {
        const mix = w[0] * s.p[0] + w[1] * s.p[1] + w[2] * s.p[2];
        if (!(mix > 0)) continue;
        for (let c = 0; c < 3; c++) share[c] += (w[c] * s.p[c]) / mix;
      }
      const sum = share[0] + share[1] + share[2];
      if (!(sum > 0)) break;
      w = share.map((x) => Math.max(x / sum, 1e-4));
      const norm = w[0] + w[1] + w[2];
      w = w.map((x) => x / norm);
    }
    return w;
  };
  const global = em(samples, null);
  return Array.from({ length: BUCKETS }, (_, b) => em(samples.filter((s) => s.bucket === b), global));
}

export function mixtureLoss(samples: readonly FitSample[], weights: number[][]): number {
  let sum = 0;
  for (const s of samples) {
    const w = weights[s.bucket];
    sum -= Math.log(w[0] * s.p[0] + w[1] * s.p[1] + w[2] * s.p[2]);
  }
  return samples.length ? sum / samples.length : NaN;
}

function validateMixtureFile(value: unknown, file: string): MixtureFile {
  const m = value as Partial<MixtureFile>;
  const bad = (why: string) => new Error(`corrupt ${file}: ${why}; hint: delete it and rebuild the mixture (wlm eval does)`);
  if (!m || m.kind !== 'workspace-lm-mixture' || m.formatVersion !== 1) throw bad(`expected kind "workspace-lm-mixture", formatVersion 1 (got ${m?.kind}, ${m?.formatVersion})`);
  if (!Array.isArray(m.weights) || m.weights.length !== BUCKETS) throw bad(`weights must be ${BUCKETS} rows`);
  if (m.weightsWithoutCache !== undefined && (!Array.isArray(m.weightsWithoutCache) || m.weightsWithoutCache.length !== BUCKETS)) throw bad(`weightsWithoutCache must be ${BUCKETS} rows`);
  for (const [key, rows] of [['weights', m.weights], ['weightsWithoutCache', m.weightsWithoutCache ?? []]] as const) {
    for (const [b, row] of rows.entries()) {
      const ok = Array.isArray(row) && row.length === 3 && row.every((x) => typeof x === 'number' && x >= 0 && x <= 1) && Math.abs(row[0] + row[1] + row[2] - 1) < 1e-3;
      if (!ok) throw bad(`${key}[${b}] = ${JSON.stringify(row)} is not 3 non-negative numbers summing to 1`);
    }
  }
  return m as MixtureFile;
}

// ---------------------------------------------------------------------------------------------
// The mixture
// ---------------------------------------------------------------------------------------------

export class Mixture {
  readonly cache: TokenCache;
  private readonly ngramDist: Float64Array;
  private readonly cacheDist: Float64Array;
  private readonly modelProbs: Float64Array;

  /** `kinds`: tokenKinds() of the model's tokenizer, for the line-start buckets. */
  constructor(readonly ngram: NGramModel, readonly weights: number[][], private readonly kinds: Uint8Array, readonly weightsWithoutCache?: number[][]) {
    if (kinds.length !== ngram.vocabSize) throw new Error(`mixture: token kinds for ${kinds.length} ids, the n-gram has ${ngram.vocabSize}`);
    if (weights.length !== BUCKETS) throw new Error(`mixture: ${weights.length} weight rows, expected ${BUCKETS}`);
    this.cache = new TokenCache(ngram.vocabSize);
    this.ngramDist = new Float64Array(ngram.vocabSize);
    this.cacheDist = new Float64Array(ngram.vocabSize);
    this.modelProbs = new Float64Array(ngram.vocabSize);
  }

  get vocabSize(): number {
    return this.ngram.vocabSize;
  }

  /** Loads ngram.bin and mixture.json from a model folder; null when either is missing. */
  static async load(modelDir: string, tokenBytes: (id: number) => Uint8Array): Promise<Mixture | null> {
    const ngramFile = path.join(modelDir, NGRAM_FILE);
    const mixtureFile = path.join(modelDir, MIXTURE_FILE);
    if (!existsSync(ngramFile) || !existsSync(mixtureFile)) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await fs.readFile(mixtureFile, 'utf8'));
    } catch {
      throw new Error(`corrupt ${mixtureFile}: not JSON; hint: delete it and rebuild the mixture`);
    }
    const file = validateMixtureFile(parsed, mixtureFile);
    const ngram = await NGramModel.load(ngramFile);
    return new Mixture(ngram, file.weights, tokenKinds(ngram.vocabSize, tokenBytes), file.weightsWithoutCache);
  }

  /**
   * The three components' probabilities of every next token, for the context (text tokens only:
   * no specials), and the bucket. `modelLogits` are the GPT's; the cache holds what it was given.
   */
  components(modelLogits: ArrayLike<number>, context: ArrayLike<number>): { model: Float64Array; ngram: Float64Array; cache: Float64Array; bucket: number } {
    const V = this.vocabSize;
    if (modelLogits.length !== V) throw new Error(`mixture: ${modelLogits.length} logits for a ${V}-token vocabulary`);
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (modelLogits[i] > max) max = modelLogits[i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += this.modelProbs[i] = Math.exp(modelLogits[i] - max);
    for (let i = 0; i < V; i++) this.modelProbs[i] /= sum;
    const ngramContext = Array.prototype.slice.call(context, Math.max(0, context.length - (this.ngram.order - 1)));
    this.ngram.distribution(ngramContext, this.ngramDist);
    const matched = this.cache.distribution(context, this.cacheDist);
    return { model: this.modelProbs, ngram: this.ngramDist, cache: this.cacheDist, bucket: bucketOf(matched, this.ngram.matchedContext(ngramContext), atLineStart(context, this.kinds)) };
  }

  /**
   * Mixed natural-log probabilities of every next token, usable as logits by generate.ts. With
   * `cache: false` (line completions from a line start) the model and the n-gram are mixed by the
   * weights fitted without the cache, or, for an older mixture.json, the cache's weight is shared out.
   */
  logProbs(modelLogits: ArrayLike<number>, context: ArrayLike<number>, out = new Float32Array(this.vocabSize), opts: { cache?: boolean } = {}): Float32Array {
    const c = this.components(modelLogits, context);
    let [wm, wn, wc] = this.weights[c.bucket];
    if (opts.cache === false) {
      const [a, b] = this.weightsWithoutCache?.[c.bucket] ?? [wm, wn];
      [wm, wn, wc] = [a / (a + b), b / (a + b), 0];
    }
    for (let i = 0; i < out.length; i++) out[i] = Math.log(wm * c.model[i] + wn * c.ngram[i] + wc * c.cache[i]);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Building a model folder's mixture
// ---------------------------------------------------------------------------------------------

export interface BuildMixtureOptions {
  modelDir: string;
  trainTokens: TokenSource; // data/train.bin: what the n-gram counts
  valTokens: TokenSource; // data/val.bin: held-out tokens the weights are fitted on
  endOfText: number; // document separator in the token files
  tokenBytes: (id: number) => Uint8Array; // the tokenizer's, for the line-start buckets
  blockSize: number;
  /** The GPT's logits for every position of a window (T × vocab, row-major); session.ts logitsUncached. */
  modelLogits: (window: number[]) => Promise<Float32Array>;
  fitTokens?: number; // held-out predictions to fit on (default 8192)
  ngramOrder?: number; // the workspace n-gram's order (default DEFAULT_MIXTURE_NGRAM_ORDER)
  signal?: AbortSignal;
}

/** Starts of `count` windows of `length` tokens spread evenly over a stream of `total`. */
function spreadStarts(total: number, length: number, count: number): number[] {
  const n = Math.min(count, Math.floor(total / length));
  if (n <= 0) return [];
  const stride = (total - length) / Math.max(1, n - 1);
  return Array.from({ length: n }, (_, i) => Math.round(i * stride));
}

/**
 * Counts the n-gram on the training tokens (ngram.bin), scores every component on held-out windows
 * — the cache holding the earlier tokens of the same document, as the open file would — fits the
 * weights (mixture.json) and returns what it wrote.
 */
export async function buildMixture(opts: BuildMixtureOptions): Promise<MixtureFile> {
  const config = await readModelConfig(opts.modelDir);
  const vocab = config.model.vocabSize;
  const ngramFile = path.join(opts.modelDir, NGRAM_FILE);
  const trainFile = path.join(opts.modelDir, 'data', 'train.bin');
  // ngram.bin is reused while it is newer than the training tokens it was counted on.
  const order = opts.ngramOrder ?? DEFAULT_MIXTURE_NGRAM_ORDER;
  const saved = existsSync(ngramFile) && (!existsSync(trainFile) || statSync(ngramFile).mtimeMs >= statSync(trainFile).mtimeMs) ? await NGramModel.load(ngramFile) : null;
  const fresh = saved !== null && saved.order === order && saved.vocabSize === vocab;
  const ngram = fresh ? saved : NGramModel.train(opts.trainTokens, { vocabSize: vocab, order });
  if (!fresh) await ngram.save(ngramFile);

  const length = opts.blockSize + 1;
  if (opts.valTokens.length < length) {
    throw new Error(`mixture: held-out tokens (${opts.valTokens.length}) fill no ${length}-token window; the weights need held-out data`);
  }
  const all = opts.valTokens.read(0, opts.valTokens.length);
  const mixture = new Mixture(ngram, Array.from({ length: BUCKETS }, () => [1 / 3, 1 / 3, 1 / 3]), tokenKinds(vocab, opts.tokenBytes));
  const samples: FitSample[] = [];
  const starts = spreadStarts(all.length, length, Math.ceil((opts.fitTokens ?? 8192) / opts.blockSize));
  for (const start of starts) {
    if (opts.signal?.aborted) throw Object.assign(new Error('mixture fit cancelled'), { name: 'AbortError' });
    const window = Array.from(all.subarray(start, start + length));
    const logits = await opts.modelLogits(window.slice(0, opts.blockSize));
    // The cache holds the document's tokens before the window, then grows with each target.
    let docStart = start;
    while (docStart > 0 && all[docStart - 1] !== opts.endOfText) docStart--;
    mixture.cache.setCurrent(null, all.subarray(docStart, start + 1));
    for (let t = 0; t < opts.blockSize; t++) {
      const target = window[t + 1];
      if (window[t] === opts.endOfText) {
        docStart = start + t + 1; // a new document: nothing of it seen yet
        mixture.cache.setCurrent(null);
      }
      if (target !== opts.endOfText && window[t] !== opts.endOfText) {
        const pos = start + t + 1;
        const context = all.subarray(Math.max(docStart, pos - CACHE_ORDER), pos);
        const c = mixture.components(logits.subarray(t * vocab, (t + 1) * vocab), context);
        samples.push({ p: [c.model[target], c.ngram[target], c.cache[target]], bucket: c.bucket });
      }
      mixture.cache.appendCurrent(target);
    }
  }
  if (samples.length === 0) throw new Error('mixture: no held-out predictions to fit on');
  const weights = fitWeights(samples);
  const withoutComponent = (c: number) => samples.map((x) => ({ bucket: x.bucket, p: x.p.map((p, i) => (i === c ? 0 : p)) as [number, number, number] }));
  const noCache = withoutComponent(2);
  const weightsWithoutCache = fitWeights(noCache); // served too, for completions that leave the cache out
  const without = (c: number): number => {
    if (c === 2) return mixtureLoss(noCache, weightsWithoutCache);
    const reduced = withoutComponent(c);
    return mixtureLoss(reduced, fitWeights(reduced));
  };
  const single = (c: number) => -samples.reduce((s, x) => s + Math.log(x.p[c]), 0) / samples.length;
  const file: MixtureFile = {
    formatVersion: 1,
    kind: 'workspace-lm-mixture',
    createdAt: new Date().toISOString(),
    weights,
    weightsWithoutCache,
    fit: {
      tokens: samples.length,
      perBucket: Array.from({ length: BUCKETS }, (_, b) => samples.filter((s) => s.bucket === b).length),
      loss: { model: single(0), ngram: single(1), cache: single(2), mixture: mixtureLoss(samples, weights) },
      without: { model: without(0), ngram: without(1), cache: without(2) },
    },
  };
  await writeFileAtomic(path.join(opts.modelDir, MIXTURE_FILE), JSON.stringify(file, null, 2) + '\n');
  return file;
}
