// Scores for generated code summaries: smoothed BLEU-4 exactly as CodeXGLUE code-to-text computes
// it (evaluator/bleu.py), and ROUGE-L. Pure functions on strings; no model, no files. Completion
// metrics (exact match, edit similarity, perplexity) live in metrics.ts, not here.
//
// How CodeXGLUE's bleu.py scores one (prediction, gold) pair, and so how this file does:
//   1. text = splitPuncts(s.strip().lower()): words `[\w]+` and single non-space non-word chars,
//      joined by spaces (Python's Unicode \w = letters, numbers and '_').
//   2. tokens = normalize(text): the NIST mteval-v11a rules (strip <skipped>, join lines, unescape
//      &lt; &gt; &quot; &amp;, lower-case, put spaces around punctuation, which also splits '_'
//      inside words: "get_name" → get _ name), then split on whitespace.
//   3. For n = 1..4: correct[n] = clipped n-gram matches, guess[n] = max(len - n + 1, 0).
//      log BLEU = (1/4) Σ_n log((correct[n] + s) / (guess[n] + s)), s = 0 for n = 1 and s = 1 for
//      n > 1 — the add-one smoothing of Lin & Och (2004), "ORANGE", §4. Both logs get
//      sys.float_info.min added so that log(0) is a very negative number, not an error.
//   4. Brevity penalty, with the same +1: log BP = min(0, 1 - (refLen + 1) / (testLen + 1)),
//      refLen the shortest reference.
//   5. BLEU = exp(log BLEU + log BP); a corpus score is the MEAN of sentence scores × 100 (bleuFromMaps),
//      not a pooled corpus BLEU. (An empty prediction therefore scores exp(-refLen) × 100, not 0.)

/** Python's sys.float_info.min, the smallest normal double (not Number.MIN_VALUE, a denormal). */
const PYTHON_FLOAT_MIN = 2.2250738585072014e-308;

/** Words and single punctuation characters, as `re.findall(r"[\w]+|[^\s\w]", line)` in Python 3. */
const SPLIT_PUNCTS = /[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;

/** CodeXGLUE's splitPuncts: the text with words and punctuation separated by single spaces. */
export function splitPuncts(line: string): string {
  return (line.match(SPLIT_PUNCTS) ?? []).join(' ');
}

// NIST mteval-v11a normalisation, as bleu.py's normalize() with preserve_case = False.
const NORMALIZE_LANGUAGE_INDEPENDENT: [RegExp, string][] = [
  [/<skipped>/g, ''], // strip "skipped" tags
  [/-\n/g, ''], // strip end-of-line hyphenation and join lines
  [/\n/g, ' '], // join lines
];
const NORMALIZE_WESTERN: [RegExp, string][] = [
  // Python's class [\{-\~\[-\` -\&\(-\+\:-\@\/] spelled out: { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /
  [/([{|}~[\\\]^_` !"#$%&()*+:;<=>?@\/])/g, ' $1 '], // tokenize punctuation; apostrophe is missing
  [/([^0-9])([.,])/g, '$1 $2 '], // tokenize period and comma unless preceded by a digit
  [/([.,])([^0-9])/g, ' $1 $2'], // tokenize period and comma unless followed by a digit
  [/([0-9])(-)/g, '$1 $2 '], // tokenize dash when preceded by a digit
];

/** xml.sax.saxutils.unescape(s, {'&quot;': '"'}): &lt; and &gt; first, &amp; last. */
function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}

function normalize(s: string): string[] {
  for (const [pattern, replacement] of NORMALIZE_LANGUAGE_INDEPENDENT) s = s.replace(pattern, replacement);
  s = unescapeXml(s);
  s = ` ${s} `.toLowerCase();
  for (const [pattern, replacement] of NORMALIZE_WESTERN) s = s.replace(pattern, replacement);
  return s.split(/\s+/).filter((token) => token.length > 0);
}

/** The tokens BLEU compares: splitPuncts(lower(strip(text))) then NIST normalisation. */
export function bleuTokens(text: string): string[] {
  return normalize(splitPuncts(text.trim().toLowerCase()));
}

const MAX_ORDER = 4;

function countNgrams(words: string[], maxOrder: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let n = 1; n <= maxOrder; n++) {
    for (let i = 0; i + n <= words.length; i++) {
      // '\u0001' cannot occur inside a token (tokens are split on whitespace), so keys are unique.
      const key = words.slice(i, i + n).join('\u0001');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

export interface BleuDetail {
  bleu: number; // smoothed BLEU-4 on 0–100
  precisions: number[]; // unsmoothed n-gram precisions, n = 1..4, on 0–1 (0 when nothing was guessed)
  brevityPenalty: number; // on 0–1
  testLength: number;
  referenceLength: number;
}

/** Smoothed sentence BLEU-4 of one prediction against one or more references, with its parts. */
export function smoothedBleuDetail(prediction: string, references: string | string[]): BleuDetail {
  const refs = (Array.isArray(references) ? references : [references]).map(bleuTokens);
  if (refs.length === 0) throw new Error('smoothedBleu: no reference given (hint: pass at least one reference string)');
  const maxRefCounts = new Map<string, number>();
  for (const ref of refs) {
    for (const [ngram, count] of countNgrams(ref, MAX_ORDER)) {
      maxRefCounts.set(ngram, Math.max(maxRefCounts.get(ngram) ?? 0, count));
    }
  }
  const test = bleuTokens(prediction);
  const correct = new Array<number>(MAX_ORDER).fill(0);
  for (const [ngram, count] of countNgrams(test, MAX_ORDER)) {
    const order = ngram.split('\u0001').length;
    correct[order - 1] += Math.min(maxRefCounts.get(ngram) ?? 0, count);
  }
  const referenceLength = Math.min(...refs.map((ref) => ref.length)); // eff_ref_len = "shortest"
  let logBleu = 0;
  const precisions: number[] = [];
  for (let k = 0; k < MAX_ORDER; k++) {
    const guess = Math.max(test.length - k, 0);
    const addSmooth = k > 0 ? 1 : 0;
    logBleu += Math.log(correct[k] + addSmooth + PYTHON_FLOAT_MIN) - Math.log(guess + addSmooth + PYTHON_FLOAT_MIN);
    precisions.push(guess === 0 ? 0 : correct[k] / guess);
  }
  logBleu /= MAX_ORDER;
  const logBrevity = Math.min(0, 1 - (referenceLength + 1) / (test.length + 1));
  return {
    bleu: Math.exp(logBleu + logBrevity) * 100,
    precisions,
    brevityPenalty: Math.exp(logBrevity),
    testLength: test.length,
    referenceLength,
  };
}

/** Smoothed sentence BLEU-4 on 0–100, as CodeXGLUE code-to-text scores one summary. */
export function smoothedBleu(prediction: string, references: string | string[]): number {
  return smoothedBleuDetail(prediction, references).bleu;
}

function checkAligned(what: string, predictions: string[], references: string[]): void {
  if (predictions.length !== references.length) {
    throw new Error(`${what}: ${predictions.length} predictions but ${references.length} references (hint: pass one reference per prediction, in the same order)`);
  }
}

/** CodeXGLUE's corpus score: the mean of sentence BLEU-4 over the pairs, 0–100 (0 for no pairs). */
export function corpusSmoothedBleu(predictions: string[], references: string[]): number {
  checkAligned('corpusSmoothedBleu', predictions, references);
  if (predictions.length === 0) return 0;
  let total = 0;
  for (let i = 0; i < predictions.length; i++) total += smoothedBleu(predictions[i], references[i]);
  return total / predictions.length;
}

/** Length of the longest common subsequence of two token lists (two rows of the DP table). */
export function lcsLength(a: string[], b: string[]): number {
  if (a.length < b.length) [a, b] = [b, a];
  let previous = new Array<number>(b.length + 1).fill(0);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      current[j] = a[i - 1] === b[j - 1] ? previous[j - 1] + 1 : Math.max(previous[j], current[j - 1]);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length];
}

export interface RougeOptions {
  /** Weight of recall over precision. 1.2 as in pycocoevalcap's Rouge, which code-summarisation
   *  papers report (Ahmad et al. 2020); 1 gives the plain F1 of Google's rouge-score. */
  beta?: number;
}

/** ROUGE-L F-measure on 0–100 from the longest common subsequence of the BLEU tokens above:
 *  P = lcs/|prediction|, R = lcs/|reference|, F = (1 + β²)PR / (R + β²P). With several references
 *  the best-scoring one counts. */
export function rougeL(prediction: string, references: string | string[], opts: RougeOptions = {}): number {
  const beta = opts.beta ?? 1.2;
  if (!(beta > 0)) throw new Error(`rougeL: beta must be > 0, got ${beta}`);
  const refs = Array.isArray(references) ? references : [references];
  if (refs.length === 0) throw new Error('rougeL: no reference given (hint: pass at least one reference string)');
  const test = bleuTokens(prediction);
  let best = 0;
  for (const reference of refs) {
    const ref = bleuTokens(reference);
    const lcs = lcsLength(test, ref);
    if (lcs === 0) continue;
    const precision = lcs / test.length;
    const recall = lcs / ref.length;
    const f = ((1 + beta * beta) * precision * recall) / (recall + beta * beta * precision);
    best = Math.max(best, f);
  }
  return best * 100;
}

export interface SummaryScores {
  count: number;
  bleu: number; // mean smoothed sentence BLEU-4, 0–100 (CodeXGLUE)
  rougeL: number; // mean ROUGE-L F (β = 1.2), 0–100
  exactMatch: number; // share of predictions whose BLEU tokens equal the reference's, 0–100
}

/** Everything eval.json reports for summaries, over aligned predictions and references. */
export function scoreSummaries(predictions: string[], references: string[]): SummaryScores {
  checkAligned('scoreSummaries', predictions, references);
  const count = predictions.length;
  if (count === 0) return { count: 0, bleu: 0, rougeL: 0, exactMatch: 0 };
  let rouge = 0;
  let exact = 0;
  for (let i = 0; i < count; i++) {
    rouge += rougeL(predictions[i], references[i]);
    if (bleuTokens(predictions[i]).join(' ') === bleuTokens(references[i]).join(' ')) exact++;
  }
  return {
    count,
    bleu: corpusSmoothedBleu(predictions, references),
    rougeL: rouge / count,
    exactMatch: (exact / count) * 100,
  };
}
