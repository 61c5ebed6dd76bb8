// The summary baseline a model has to beat: retrieval. For held-out code it returns the summary of
// the training definition whose words overlap most (Jaccard over identifier and word tokens). No
// learning, no files; the pairs come from data/summaryPairs.ts and the scores from textMetrics.ts.
import { scoreSummaries, type SummaryScores } from './textMetrics';

export interface CodeSummary {
  code: string;
  summary: string;
}

export interface RetrievedSummary {
  summary: string;
  score: number; // Jaccard similarity of the word sets, 0–1
  index: number; // which training pair it came from; -1 when nothing overlapped (the fallback summary)
}

// Keywords every definition shares: they would make all code look alike.
const KEYWORDS = new Set([
  'function', 'return', 'const', 'let', 'var', 'if', 'else', 'for', 'while', 'do', 'switch', 'case', 'break',
  'continue', 'new', 'this', 'self', 'class', 'def', 'fn', 'func', 'fun', 'pub', 'mut', 'impl', 'public',
  'private', 'protected', 'static', 'void', 'async', 'await', 'import', 'export', 'from', 'true', 'false', 'null',
  'undefined', 'none', 'nil', 'in', 'of', 'is', 'not', 'and', 'or', 'try', 'catch', 'except', 'finally', 'throw',
  'raise', 'pass', 'end', 'then', 'readonly', 'override', 'typeof', 'instanceof', 'elif', 'lambda', 'with', 'as',
]);

/** Lower-cased identifiers and words of the code, each also split into its camelCase/snake_case parts. */
export function codeWords(code: string): Set<string> {
  const words = new Set<string>();
  for (const identifier of code.match(/[A-Za-z_$][\w$]*/g) ?? []) {
    const whole = identifier.toLowerCase();
    if (!KEYWORDS.has(whole)) words.add(whole);
    const parts = identifier.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2').split(/[\s_$]+/);
    for (const part of parts) {
      const word = part.toLowerCase();
      if (word.length > 1 && !KEYWORDS.has(word)) words.add(word);
    }
  }
  return words;
}

/** |a ∩ b| / |a ∪ b|; 0 when both are empty. */
export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let shared = 0;
  for (const word of a) if (b.has(word)) shared++;
  return shared / (a.size + b.size - shared);
}

export class RetrievalBaseline {
  private readonly summaries: string[];
  private readonly sizes: number[];
  private readonly postings = new Map<string, number[]>(); // word → training pairs holding it, ascending
  private readonly fallback: string; // the most common training summary, for code that shares no word

  constructor(pairs: readonly CodeSummary[]) {
    if (pairs.length === 0) throw new Error('RetrievalBaseline: no training pairs (hint: mine pairs from the training files first; a workspace without doc comments has none)');
    this.summaries = pairs.map((pair) => pair.summary);
    this.sizes = [];
    const frequency = new Map<string, number>();
    pairs.forEach((pair, index) => {
      const words = codeWords(pair.code);
      this.sizes.push(words.size);
      for (const word of words) {
        const list = this.postings.get(word);
        if (list) list.push(index);
        else this.postings.set(word, [index]);
      }
      frequency.set(pair.summary, (frequency.get(pair.summary) ?? 0) + 1);
    });
    let best = pairs[0].summary;
    for (const [summary, count] of frequency) if (count > frequency.get(best)!) best = summary; // first seen wins ties
    this.fallback = best;
  }

  get size(): number {
    return this.summaries.length;
  }

  /** The summary of the most similar training code; ties go to the earliest pair. */
  predict(code: string): RetrievedSummary {
    const query = codeWords(code);
    const shared = new Map<number, number>();
    for (const word of query) {
      for (const index of this.postings.get(word) ?? []) shared.set(index, (shared.get(index) ?? 0) + 1);
    }
    let best: RetrievedSummary = { summary: this.fallback, score: 0, index: -1 };
    for (const [index, count] of shared) {
      const score = count / (query.size + this.sizes[index] - count);
      if (score > best.score || (score === best.score && best.index >= 0 && index < best.index)) {
        best = { summary: this.summaries[index], score, index };
      }
    }
    return best;
  }
}

/** Trains the baseline on `train` and scores its predictions for `heldOut` (BLEU-4, ROUGE-L, exact match). */
export function evaluateRetrievalBaseline(train: readonly CodeSummary[], heldOut: readonly CodeSummary[]): SummaryScores & { predictions: string[] } {
  const baseline = new RetrievalBaseline(train);
  const predictions = heldOut.map((pair) => baseline.predict(pair.code).summary);
  return { ...scoreSummaries(predictions, heldOut.map((pair) => pair.summary)), predictions };
}
