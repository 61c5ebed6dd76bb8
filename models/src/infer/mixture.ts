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
import { softmax } from './generate';
import { SparseDistribution } from './sparseDistribution';

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
// rxjs, before these buckets, line-start edit similarity 35 with the cache, 41 without; mid-line
// 51 with, 47 without). With them the cache helps line starts too (session.ts).
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

// Mixture.draft() stops where its pick is less likely than this: below it, the GPT rarely agrees
// and the positions run for nothing (each costs about a tenth of a decoding step's run).
export const DRAFT_MIN_PROB = 0.2;

// A file's text on disk before its first save is taken out of the n-gram when this share of its
// 6-grams are there: 1 for a file counted unchanged, and the held-out files of a workspace (never
// counted) share far fewer, templated as they may be (vscode-languageserver-protocol's lib/common
// split as the pipeline splits it, base tokenizer: 0.55-0.66 for the 4 held out, 1.0 for the 23 counted).
export const SAVED_FILE_SEEN_SHARE = 0.9;

function sameIds(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
  // The positions of a token id that have a follower, as a chain in typed arrays (a document is
  // indexed again whenever the cursor changes lines: a map of arrays took milliseconds):
  // latest[id] is the last such position, -1 for none, and earlier[p] the one before p.
  readonly latest: Int32Array;
  earlier: Int32Array;
  constructor(vocabSize: number, ids: ArrayLike<number> = []) {
    this.latest = new Int32Array(vocabSize).fill(-1);
    const from = Math.max(0, ids.length - MAX_DOCUMENT_TOKENS);
    this.earlier = new Int32Array(Math.max(16, ids.length - from));
    for (let i = from; i < ids.length; i++) this.push(ids[i]);
  }
  push(token: number): void {
    const n = this.tokens.length;
    if (n > 0) {
      const prev = this.tokens[n - 1];
      if (n > this.earlier.length) {
        const grown = new Int32Array(2 * this.earlier.length);
        grown.set(this.earlier);
        this.earlier = grown;
      }
      this.earlier[n - 1] = this.latest[prev];
      this.latest[prev] = n - 1;
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
  private readonly order1: Float64Array; // order1Distribution(), while the counts hold still
  private order1Stale = true;
  private readonly followers: { counts: Int32Array; ids: Int32Array; distinct: Int32Array; total: Int32Array }; // sparseDistribution()'s scratch, by match length
  private readonly scratch: SparseDistribution; // distribution()'s

  constructor(readonly vocabSize: number) {
    this.unigrams = new Float64Array(vocabSize);
    this.order1 = new Float64Array(vocabSize);
    this.followers = { counts: new Int32Array(CACHE_ORDER * vocabSize), ids: new Int32Array(CACHE_ORDER * vocabSize), distinct: new Int32Array(CACHE_ORDER), total: new Int32Array(CACHE_ORDER) };
    this.scratch = new SparseDistribution(vocabSize);
  }

  /** Adds or replaces a document (an open file, a recent edit). The oldest goes beyond MAX_DOCUMENTS. */
  observe(key: string, ids: ArrayLike<number>): void {
    this.checkTokens(ids);
    this.forget(key);
    const seg = new Segment(this.vocabSize, ids);
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
    // The same id arrays as last time (typing within a line) keep their indexed segments.
    const previous = new Map(this.currentSources.map((source, i) => [source, this.current[i]]));
    const segments = parts.map((p) => {
      const kept = previous.get(p);
      if (kept && kept.tokens.length === Math.min(p.length, MAX_DOCUMENT_TOKENS)) return kept;
      this.checkTokens(p);
      return new Segment(this.vocabSize, p);
    });
    this.currentSources = parts;
    // ... and then the counts stand as they are: nothing to take out and put back in.
    if (key === this.currentKey && segments.length === this.current.length && segments.every((seg, i) => seg === this.current[i])) return;
    for (const seg of this.current) this.count(seg.tokens, -1);
    const hiddenBefore = this.currentKey === null ? undefined : this.documents.get(this.currentKey);
    if (hiddenBefore) this.count(hiddenBefore.tokens, +1);
    this.currentKey = key;
    const hidden = key === null ? undefined : this.documents.get(key);
    if (hidden) this.count(hidden.tokens, -1);
    this.current = segments;
    for (const seg of this.current) this.count(seg.tokens, +1);
  }

  /** Appends a token to the last part of the current document (a text typed or read in order). */
  appendCurrent(token: number): void {
    this.checkTokens([token]);
    if (this.current.length === 0) this.current.push(new Segment(this.vocabSize));
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
    const matched = this.sparseDistribution(context, this.scratch);
    this.scratch.toDense(out);
    return matched;
  }

  /** distribution() as the order-1 level scaled plus the followers of the matches: what the mixture reads per token. */
  sparseDistribution(context: ArrayLike<number>, into: SparseDistribution): number {
    into.reset(this.order1Distribution());
    // Longer orders: followers of every position whose preceding tokens match the context's tail.
    const n = context.length;
    const maxMatch = Math.min(CACHE_ORDER - 1, n);
    if (this.unigramTotal === 0 || maxMatch === 0) return 0;
    // followers.counts[k·V + w]: how often w followed a match of k or more context tokens; a
    // common last token has thousands of positions, so typed arrays rather than maps.
    const { counts, ids, distinct, total } = this.followers;
    const V = this.vocabSize;
    distinct.fill(0);
    total.fill(0);
    const last = context[n - 1];
    const hidden = this.currentKey === null ? undefined : this.documents.get(this.currentKey);
    for (const seg of [...this.documents.values(), ...this.current]) {
      if (seg === hidden) continue;
      const toks = seg.tokens;
      for (let p = seg.latest[last]; p >= 0; p = seg.earlier[p]) {
        let k = 1;
        while (k < maxMatch && p - k >= 0 && toks[p - k] === context[n - 1 - k]) k++;
        const next = toks[p + 1];
        for (let j = 1; j <= k; j++) {
          if (counts[j * V + next]++ === 0) ids[j * V + distinct[j]++] = next;
          total[j]++;
        }
      }
    }
    let matched = 0;
    for (let k = 1; k <= maxMatch && distinct[k] > 0; k++) {
      matched = k;
      into.scaleBy(distinct[k] / (total[k] + distinct[k]));
      const norm = 1 / (total[k] + distinct[k]);
      for (let i = 0; i < distinct[k]; i++) into.add(ids[k * V + i], counts[k * V + ids[k * V + i]] * norm);
    }
    for (let k = 1; k <= maxMatch; k++) for (let i = 0; i < distinct[k]; i++) counts[k * V + ids[k * V + i]] = 0;
    return matched;
  }

  /** Order 1: every token held, Witten-Bell over the uniform distribution; kept until the counts change. */
  private order1Distribution(): Float64Array {
    if (this.order1Stale) {
      const uniform = 1 / this.vocabSize;
      const lambda0 = this.unigramTotal === 0 ? 1 : this.distinct / (this.unigramTotal + this.distinct);
      const scale = this.unigramTotal === 0 ? 0 : 1 / (this.unigramTotal + this.distinct);
      for (let w = 0; w < this.vocabSize; w++) this.order1[w] = this.unigrams[w] * scale + lambda0 * uniform;
      this.order1Stale = false;
    }
    return this.order1;
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
    this.order1Stale = true;
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
  for (const [b, row] of m.weights.entries()) {
    const ok = Array.isArray(row) && row.length === 3 && row.every((x) => typeof x === 'number' && x >= 0 && x <= 1) && Math.abs(row[0] + row[1] + row[2] - 1) < 1e-3;
    if (!ok) throw bad(`weights[${b}] = ${JSON.stringify(row)} is not 3 non-negative numbers summing to 1`);
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
  // The n-gram's and the cache's answer for the last context, as sparseDistribution.ts keeps it.
  private readonly ngramNext: SparseDistribution;
  private readonly cacheNext: SparseDistribution;
  private readonly mixed: Float64Array; // logProbs()'s
  // What the n-gram holds of each file takeSavedFiles() was given: the ids it put in last.
  private readonly savedFiles = new Map<string, ArrayLike<number>>();

  /** `kinds`: tokenKinds() of the model's tokenizer, for the line-start buckets. */
  constructor(readonly ngram: NGramModel, readonly weights: number[][], private readonly kinds: Uint8Array) {
    if (kinds.length !== ngram.vocabSize) throw new Error(`mixture: token kinds for ${kinds.length} ids, the n-gram has ${ngram.vocabSize}`);
    if (weights.length !== BUCKETS) throw new Error(`mixture: ${weights.length} weight rows, expected ${BUCKETS}`);
    this.cache = new TokenCache(ngram.vocabSize);
    this.ngramDist = new Float64Array(ngram.vocabSize);
    this.cacheDist = new Float64Array(ngram.vocabSize);
    this.modelProbs = new Float64Array(ngram.vocabSize);
    this.ngramNext = new SparseDistribution(ngram.vocabSize);
    this.cacheNext = new SparseDistribution(ngram.vocabSize);
    this.mixed = new Float64Array(ngram.vocabSize);
  }

  get vocabSize(): number {
    return this.ngram.vocabSize;
  }

  /**
   * Saved files into the workspace n-gram, as they change: each file's ids now (a document as
   * dataset.ts lays it out; null: deleted, or no longer read) replace the ids it had. The first
   * time a file comes, `before` is the text it had before the change: taken out only when the
   * n-gram holds it (SAVED_FILE_SEEN_SHARE of its n-grams), as it does a file counted at training
   * and unchanged since; one held out for the mixture's fit, or changed since, was never counted.
   */
  /** Whether takeSavedFiles() already holds this file's tokens: its text before the save is then not needed. */
  holdsSavedFile(key: string): boolean {
    return this.savedFiles.has(key);
  }

  takeSavedFiles(files: readonly { key: string; ids: ArrayLike<number> | null; before?: ArrayLike<number> | null }[]): { files: number; tokensIn: number; tokensOut: number } {
    const remove: ArrayLike<number>[] = [];
    const add: ArrayLike<number>[] = [];
    let changed = 0;
    for (const { key, ids, before } of files) {
      const counted = this.savedFiles.get(key) ?? (before && this.ngram.seenShare(before) >= SAVED_FILE_SEEN_SHARE ? before : null);
      if (counted && ids && sameIds(counted, ids)) continue; // saved again unchanged, or seen twice (the editor's save and the file watcher)
      if (!counted && !ids) continue;
      changed++;
      if (counted) remove.push(counted);
      if (ids) add.push(ids);
      if (ids) this.savedFiles.set(key, ids);
      else this.savedFiles.delete(key);
    }
    if (changed > 0) this.ngram.applyChanges(remove, add);
    const tokens = (list: ArrayLike<number>[]) => list.reduce((n, ids) => n + ids.length, 0);
    return { files: changed, tokensIn: tokens(add), tokensOut: tokens(remove) };
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
    return new Mixture(ngram, file.weights, tokenKinds(ngram.vocabSize, tokenBytes));
  }

  /**
   * The three components' probabilities of every next token, for the context (text tokens only:
   * no specials), and the bucket. `modelLogits` are the GPT's; the cache holds what it was given.
   */
  components(modelLogits: ArrayLike<number>, context: ArrayLike<number>): { model: Float64Array; ngram: Float64Array; cache: Float64Array; bucket: number } {
    const bucket = this.predict(modelLogits, context);
    return { model: this.modelProbs, ngram: this.ngramNext.toDense(this.ngramDist), cache: this.cacheNext.toDense(this.cacheDist), bucket };
  }

  /**
   * Mixed probabilities of every next token: what generate.ts decodes with.
   */
  probs(modelLogits: ArrayLike<number>, context: ArrayLike<number>, out: Float64Array = new Float64Array(this.vocabSize), opts: { modelProbs?: ArrayLike<number> } = {}): Float64Array {
    if (out.length !== this.vocabSize) throw new Error(`mixture: output has ${out.length} entries, vocabulary has ${this.vocabSize}`);
    const bucket = this.predict(modelLogits, context, opts.modelProbs);
    const [wm, wn, wc] = this.weights[bucket];
    // One pass over the vocabulary, decoding's only one here: each n-gram as scale · base + extra.
    const model = opts.modelProbs ?? this.modelProbs;
    const { base: ngramBase, extra: ngramExtra, scale: ngramScale } = this.ngramNext;
    const { base: cacheBase, extra: cacheExtra, scale: cacheScale } = this.cacheNext;
    for (let i = 0; i < out.length; i++) {
      out[i] = wm * model[i] + wn * (ngramScale * ngramBase[i] + ngramExtra[i]) + wc * (cacheScale * cacheBase[i] + cacheExtra[i]);
    }
    return out;
  }

  /**
   * The tokens the n-gram and the cache, mixed by their weights without the model's, would pick
   * next after `context`, greedily: at most `maxTokens`, while the pick's probability is at least
   * DRAFT_MIN_PROB, up to and including a token that `ends` (a line break). The session runs them
   * through the GPT with the position it needs, in the same run; each one decoding then picks
   * costs no run of its own (what it picks is the same either way: the logits are exact).
   */
  draft(context: readonly number[], maxTokens: number, ends: (id: number) => boolean): number[] {
    const out: number[] = [];
    const ctx = [...context];
    const ngram = this.ngramNext;
    const cache = this.cacheNext;
    while (out.length < maxTokens) {
      const ngramMatched = this.ngram.sparseDistribution(ctx.slice(Math.max(0, ctx.length - (this.ngram.order - 1))), ngram);
      const cacheMatched = this.cache.sparseDistribution(ctx.slice(Math.max(0, ctx.length - CACHE_ORDER)), cache);
      const [, wn, wc] = this.weights[bucketOf(cacheMatched, ngramMatched, atLineStart(ctx, this.kinds))];
      const a = wn / (wn + wc);
      const b = wc / (wn + wc);
      const na = a * ngram.scale;
      const cb = b * cache.scale;
      let best = 0;
      let bestP = -1;
      for (let i = 0; i < this.vocabSize; i++) {
        const p = na * ngram.base[i] + a * ngram.extra[i] + cb * cache.base[i] + b * cache.extra[i];
        if (p > bestP) [best, bestP] = [i, p];
      }
      if (bestP < DRAFT_MIN_PROB) break;
      out.push(best);
      ctx.push(best);
      if (ends(best)) break;
    }
    return out;
  }

  /** probs() as natural-log probabilities, usable as logits: for scoring held-out tokens. */
  logProbs(modelLogits: ArrayLike<number>, context: ArrayLike<number>, out = new Float32Array(this.vocabSize)): Float32Array {
    const probs = this.probs(modelLogits, context, this.mixed);
    for (let i = 0; i < probs.length; i++) out[i] = Math.log(probs[i]);
    return out;
  }

  /**
   * The model's softmax into modelProbs (unless the caller has it: `modelProbs`), the n-gram's and
   * the cache's answers into theirs; returns the bucket.
   */
  private predict(modelLogits: ArrayLike<number>, context: ArrayLike<number>, modelProbs?: ArrayLike<number>): number {
    const V = this.vocabSize;
    if (modelLogits.length !== V) throw new Error(`mixture: ${modelLogits.length} logits for a ${V}-token vocabulary`);
    if (modelProbs && modelProbs.length !== V) throw new Error(`mixture: ${modelProbs.length} model probabilities for a ${V}-token vocabulary`);
    if (!modelProbs) softmax(modelLogits, this.modelProbs);
    const ngramContext = Array.prototype.slice.call(context, Math.max(0, context.length - (this.ngram.order - 1)));
    const ngramMatched = this.ngram.sparseDistribution(ngramContext, this.ngramNext);
    const matched = this.cache.sparseDistribution(context, this.cacheNext);
    return bucketOf(matched, ngramMatched, atLineStart(context, this.kinds));
  }
}

// ---------------------------------------------------------------------------------------------
// Building a model folder's mixture
// ---------------------------------------------------------------------------------------------

export interface BuildMixtureOptions {
  modelDir: string;
  trainTokens: TokenSource; // the workspace's training tokens (train.bin): what the n-gram counts
  trainFile?: string; // the file trainTokens reads: a saved ngram.bin older than it is counted again
  valTokens: TokenSource; // held-out tokens (val.bin) the weights are fitted on
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
  const trainFile = opts.trainFile;
  // ngram.bin is reused while it is newer than the training tokens it was counted on.
  const order = opts.ngramOrder ?? DEFAULT_MIXTURE_NGRAM_ORDER;
  const saved = existsSync(ngramFile) && (!trainFile || !existsSync(trainFile) || statSync(ngramFile).mtimeMs >= statSync(trainFile).mtimeMs) ? await NGramModel.load(ngramFile) : null;
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
  const without = (c: number): number => {
    const reduced = c === 2 ? noCache : withoutComponent(c);
    return mixtureLoss(reduced, fitWeights(reduced));
  };
  const single = (c: number) => -samples.reduce((s, x) => s + Math.log(x.p[c]), 0) / samples.length;
  const file: MixtureFile = {
    formatVersion: 1,
    kind: 'workspace-lm-mixture',
    createdAt: new Date().toISOString(),
    weights,
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
