// Scoring functions for completions and next-token predictions: CodeXGLUE edit similarity and exact
// match, cross-entropy, perplexity, bits per byte, top-k accuracy, percentiles and latency
// histograms.
// Pure functions over strings and numbers; it knows nothing about models, files or tokenizers.

// ---------------------------------------------------------------------------------------------
// Line completion (CodeXGLUE CodeCompletion-line, evaluator/evaluator.py)
//
// The reference evaluator does, per sample:
//     pred = pred.strip(); edit_sim += fuzz.ratio(pred, gt); EM += (pred.split() == gt.split())
// fuzzywuzzy's fuzz.ratio (with python-Levenshtein, as CodeXGLUE installs it) is
// Levenshtein.ratio = (|a| + |b| - d) / (|a| + |b|) where d is the edit distance with substitutions
// costing 2, i.e. the insert/delete ("Indel") distance |a| + |b| - 2·LCS(a, b). So the score is
// 2·LCS / (|a| + |b|), over Unicode code points, scaled to 0–100. A plain (unit-cost) Levenshtein
// library would give a different number ("ab" vs "ba": 0 instead of 50), which is why the
// distance is computed here from the longest common subsequence.
// Differences from the reference, on purpose: fuzz.ratio rounds each sample to an integer; we keep
// the exact value (the mean moves by at most 0.5). We trim both sides; CodeXGLUE trims only the
// prediction because its answers carry no surrounding whitespace, so the result is the same there.
// ---------------------------------------------------------------------------------------------

/** Length of the longest common subsequence of two code-point arrays (two-row dynamic program). */
function lcsLength(a: number[], b: number[]): number {
  if (a.length < b.length) [a, b] = [b, a]; // keep the row as short as possible
  let previous = new Uint32Array(b.length + 1);
  let current = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) {
      current[j] = ai === b[j - 1] ? previous[j - 1] + 1 : Math.max(previous[j], current[j - 1]);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length];
}

function codePoints(text: string): number[] {
  const points: number[] = [];
  for (const ch of text) points.push(ch.codePointAt(0)!);
  return points;
}

/** Insert/delete edit distance: the fewest single code-point insertions and deletions from a to b. */
export function indelDistance(a: string, b: string): number {
  const pa = codePoints(a);
  const pb = codePoints(b);
  return pa.length + pb.length - 2 * lcsLength(pa, pb);
}

/** CodeXGLUE edit similarity (fuzz.ratio) of a prediction against the target, 0–100, unrounded. */
export function editSimilarity(prediction: string, target: string): number {
  const a = codePoints(prediction.trim());
  const b = codePoints(target.trim());
  if (a.length === 0 && b.length === 0) return 100; // fuzz.ratio: equal strings score 100
  return (200 * lcsLength(a, b)) / (a.length + b.length);
}

/** Python's str.split() with no argument: whitespace runs separate, no empty pieces. */
function whitespaceTokens(text: string): string[] {
  return text.split(/\s+/).filter((piece) => piece.length > 0);
}

/** CodeXGLUE exact match: equal after splitting on whitespace, so only whitespace may differ. */
export function exactMatch(prediction: string, target: string): boolean {
  const a = whitespaceTokens(prediction);
  const b = whitespaceTokens(target);
  return a.length === b.length && a.every((piece, i) => piece === b[i]);
}

// ---------------------------------------------------------------------------------------------
// Next-token prediction
// ---------------------------------------------------------------------------------------------

/** log(sum(exp(scores))) without overflow. Works for logits and for log-probabilities alike. */
export function logSumExp(scores: ArrayLike<number>, start = 0, length = scores.length - start): number {
  let max = -Infinity;
  for (let i = start; i < start + length; i++) if (scores[i] > max) max = scores[i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = start; i < start + length; i++) sum += Math.exp(scores[i] - max);
  return max + Math.log(sum);
}

/**
 * Cross-entropy in nats of the target under one row of scores (logits or log-probabilities; the
 * log-softmax makes both the same). The row is scores[start .. start+vocab).
 */
export function crossEntropy(scores: ArrayLike<number>, target: number, start = 0, vocab = scores.length - start): number {
  if (!Number.isInteger(target) || target < 0 || target >= vocab) {
    throw new Error(`crossEntropy: target ${target} is outside the vocabulary [0, ${vocab})`);
  }
  return logSumExp(scores, start, vocab) - scores[start + target];
}

/** Perplexity from a mean cross-entropy in nats: exp(CE). A uniform guess over V tokens gives V. */
export function perplexity(meanCrossEntropy: number): number {
  if (!(meanCrossEntropy >= 0)) {
    throw new Error(`perplexity: mean cross-entropy must be a number >= 0 (nats), got ${meanCrossEntropy}`);
  }
  return Math.exp(meanCrossEntropy);
}

/**
 * Rank of the target among the scores: how many tokens come before it when sorted best first.
 * Ties go to the lower id, the same order infer/generate.ts's topK uses, so rank < k exactly when topK holds the target.
 */
export function rankOf(scores: ArrayLike<number>, target: number, start = 0, vocab = scores.length - start): number {
  const score = scores[start + target];
  let rank = 0;
  for (let i = 0; i < vocab; i++) {
    const s = scores[start + i];
    if (s > score || (s === score && i < target)) rank++;
  }
  return rank;
}

/** Is the target among the k best-scored tokens? */
export function inTopK(scores: ArrayLike<number>, target: number, k: number, start = 0, vocab = scores.length - start): boolean {
  return rankOf(scores, target, start, vocab) < k;
}

/**
 * Bits per byte: the total cross-entropy of some tokens (nats) over ln 2 and over the UTF-8 bytes
 * of the text those tokens encode. Unlike loss per token it does not depend on the tokenizer, so
 * models with different vocabularies (the base's, a workspace's) compare in it.
 */
export function bitsPerByte(totalNats: number, bytes: number): number {
  if (!(totalNats >= 0) || !Number.isFinite(totalNats)) throw new Error(`bitsPerByte: total cross-entropy must be a finite number >= 0 (nats), got ${totalNats}`);
  if (!Number.isInteger(bytes) || bytes < 1) throw new Error(`bitsPerByte: bytes must be a whole number >= 1, got ${bytes}`);
  return totalNats / Math.LN2 / bytes;
}

/** Accumulates next-token figures over many predictions. */
export class NextTokenTally {
  count = 0;
  private sumCrossEntropy = 0;
  private hits1 = 0;
  private hits5 = 0;
  private bytes = 0;

  /**
   * byteLength: how many UTF-8 bytes of text a token id stands for (the tokenizer's tokenBytes),
   * so that the summary has bits per byte; without it, bitsPerByte is null.
   */
  constructor(private readonly byteLength?: (id: number) => number) {}

  /** Scores one prediction: row = scores[start .. start+vocab), the true next token = target. */
  add(scores: ArrayLike<number>, target: number, start = 0, vocab = scores.length - start): void {
    this.sumCrossEntropy += crossEntropy(scores, target, start, vocab);
    const rank = rankOf(scores, target, start, vocab);
    if (rank < 1) this.hits1++;
    if (rank < 5) this.hits5++;
    if (this.byteLength) this.bytes += this.byteLength(target);
    this.count++;
  }

  summary(): { tokens: number; loss: number | null; perplexity: number | null; top1: number | null; top5: number | null; bytes: number; bitsPerByte: number | null } {
    if (this.count === 0) return { tokens: 0, loss: null, perplexity: null, top1: null, top5: null, bytes: 0, bitsPerByte: null };
    const loss = this.sumCrossEntropy / this.count;
    return {
      tokens: this.count,
      loss,
      perplexity: perplexity(loss),
      top1: this.hits1 / this.count,
      top5: this.hits5 / this.count,
      bytes: this.bytes,
      bitsPerByte: this.bytes > 0 ? bitsPerByte(this.sumCrossEntropy, this.bytes) : null,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------------------------

/**
 * The p-th percentile (0–100) with linear interpolation between closest ranks (numpy's default),
 * so p50 of [1, 2, 3, 4] is 2.5. NaN for no values: there is nothing to summarise.
 */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile: p must be in [0, 100], got ${p}`);
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const position = (p / 100) * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
}

/** Bin edges in milliseconds for completion latency: roughly logarithmic, as latencies spread. */
export const LATENCY_EDGES_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/**
 * Counts values into bins cut at ascending edges: counts[0] holds values below edges[0],
 * counts[i] values in [edges[i-1], edges[i]), and the last count values at or above the last edge.
 */
export function histogram(values: ArrayLike<number>, edges: number[] = LATENCY_EDGES_MS): { edges: number[]; counts: number[] } {
  for (let i = 1; i < edges.length; i++) {
    if (!(edges[i] > edges[i - 1])) throw new Error(`histogram: edges must be strictly ascending, got ${edges.join(', ')}`);
  }
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    let bin = 0;
    while (bin < edges.length && values[i] >= edges[bin]) bin++;
    counts[bin]++;
  }
  return { edges: [...edges], counts };
}

export interface LatencySummary {
  count: number;
  meanMs: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  maxMs: number | null;
  histogram: { edges: number[]; counts: number[] };
}

/** Mean, p50, p95, max and histogram of latencies in ms; null figures when there are none. */
export function summarizeLatency(ms: ArrayLike<number>): LatencySummary {
  const values = Array.from(ms);
  const count = values.length;
  return {
    count,
    meanMs: count ? values.reduce((a, b) => a + b, 0) / count : null,
    p50Ms: count ? percentile(values, 50) : null,
    p95Ms: count ? percentile(values, 95) : null,
    maxMs: count ? Math.max(...values) : null,
    histogram: histogram(values),
  };
}
