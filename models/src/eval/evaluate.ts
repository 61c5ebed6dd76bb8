// The evaluation suite: one run scores the model AND the n-gram baseline on the same held-out data —
// next-token loss, bits per byte, perplexity and top-1/top-5 accuracy on token windows; line
// completion (exact match and edit similarity, from the line start and from a cursor mid-line) on
// sampled held-out lines; completion latency — and returns them as the completion section of the report. It never loads a
// model: the caller adapts the GPT (gpt.ts, session.ts) to the two functions of EvalSystem, so this
// file needs no tfjs nor onnxruntime. It writes no file: eval.json is report.ts's.
import { editSimilarity, exactMatch, NextTokenTally, summarizeLatency } from './metrics';
import { NGramModel, type TokenSource } from '../infer/ngram';
import { seededRandom, throwIfAborted, type DecodingTokenizer } from '../infer/generate';
import type { CompletionEval, EvalExample, LineScores, NextTokenScores, SystemReport } from './report';

/**
 * Next-token scores for a batch of token windows: windows is row-major (batchSize, blockSize) int32;
 * the answer is row-major (batchSize, blockSize, vocabSize) logits or log-probabilities, where
 * [b, t, :] scores the token after windows[b, t] having seen windows[b, 0..t] only.
 */
export type WindowScorer = (windows: Int32Array, batchSize: number, blockSize: number) => Promise<ArrayLike<number>> | ArrayLike<number>;

/** Completes the line at a cursor between prefix and suffix; returns the text to insert. */
export type LineCompleter = (prefix: string, suffix: string) => Promise<string>;

/** One side of the comparison: a name and the two functions the suite calls. */
export interface EvalSystem {
  name: string;
  score: WindowScorer;
  complete: LineCompleter;
}

/** A held-out file, already read (files.ts readSourceText). */
export interface EvalDocument {
  relPath: string;
  text: string;
}

export interface EvaluateOptions {
  model: EvalSystem;
  ngram: NGramModel; // trained on the training split; the baseline
  tokenizer: DecodingTokenizer; // the model's tokenizer, which the n-gram was trained with
  valTokens: TokenSource; // the held-out token stream (dataset.ts val.bin)
  valFiles: EvalDocument[]; // the held-out files the line samples come from
  blockSize: number; // the model's context: next-token windows are this long
  lines?: number; // held-out lines to complete, each from its start and from mid-line. Default 200
  tokens?: number; // next-token predictions to score per system. Default 4096
  batchSize?: number; // windows per scorer call. Default 4
  maxTokens?: number; // the baseline's completion budget in tokens. Default 48
  seed?: number; // line sampling. Default 1337
  signal?: AbortSignal;
  onProgress?: (progress: { phase: 'nextToken' | 'lines'; done: number; total: number }) => void;
}

const EXAMPLES_KEPT = 12;

// ---------------------------------------------------------------------------------------------
// Held-out lines
// ---------------------------------------------------------------------------------------------

/** A held-out line picked for completion; columns count UTF-16 units, as JS strings do. */
export interface SampledLine {
  relPath: string;
  line: number; // 0-based line index in the file
  lineOffset: number; // where the line starts in the file's text
  indent: number; // leading whitespace: the line-start cursor sits after it
  end: number; // column where the line's content ends (trailing whitespace and \r left out)
  midColumn: number; // the mid-line cursor, strictly inside the content
}

/** Lines worth completing: some content of at least 2 characters, so a mid-line cursor exists. */
function candidateLines(doc: EvalDocument): SampledLine[] {
  const out: SampledLine[] = [];
  let offset = 0;
  const lines = doc.text.split('\n');
  lines.forEach((raw, index) => {
    const indent = raw.length - raw.trimStart().length;
    const end = raw.trimEnd().length;
    if (end - indent >= 2) out.push({ relPath: doc.relPath, line: index, lineOffset: offset, indent, end, midColumn: -1 });
    offset += raw.length + 1;
  });
  return out;
}

/**
 * Picks `count` distinct non-blank lines from the documents, and a mid-line cursor in each, as a
 * pure function of (documents, count, seed): files are taken in path order, so the order they
 * arrive in does not matter. Returns them in file and line order, with the number of candidates.
 */
export function sampleLines(docs: EvalDocument[], count: number, seed: number): { samples: SampledLine[]; candidates: number } {
  if (!Number.isInteger(count) || count < 0) throw new Error(`evaluate: lines must be a whole number >= 0, got ${count}`);
  const sorted = [...docs].sort((a, b) => (a.relPath < b.relPath ? -1 : a.relPath > b.relPath ? 1 : 0));
  const candidates = sorted.flatMap(candidateLines);
  const random = seededRandom(seed);
  const take = Math.min(count, candidates.length);
  // Partial Fisher-Yates: the first `take` entries become a uniform sample without replacement.
  for (let i = 0; i < take; i++) {
    const j = i + Math.floor(random() * (candidates.length - i));
    [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
  }
  const samples = candidates.slice(0, take).map((s) => ({ ...s, midColumn: s.indent + 1 + Math.floor(random() * (s.end - s.indent - 1)) }));
  const fileOrder = new Map(sorted.map((d, i) => [d.relPath, i]));
  samples.sort((a, b) => fileOrder.get(a.relPath)! - fileOrder.get(b.relPath)! || a.line - b.line);
  return { samples, candidates: candidates.length };
}

/** Where on a sampled line a completion is asked for. */
export type LineCursor = 'lineStart' | 'midLine' | 'lineEnd';

/**
 * The completion task at one of the sample's cursors: text before, text after, the expected text.
 * `lineEnd` is the cursor after the line's last character: the line is done, and the expected
 * text is nothing (a completion shown there is one the user has to dismiss).
 */
export function lineTask(doc: EvalDocument, sample: SampledLine, cursor: LineCursor): { prefix: string; suffix: string; target: string } {
  if (cursor === 'lineEnd') {
    const at = sample.lineOffset + sample.end;
    return { prefix: doc.text.slice(0, at), suffix: doc.text.slice(at), target: '' };
  }
  const column = cursor === 'lineStart' ? sample.indent : sample.midColumn;
  const lineEnd = doc.text.indexOf('\n', sample.lineOffset);
  return {
    prefix: doc.text.slice(0, sample.lineOffset + column),
    suffix: lineEnd >= 0 ? doc.text.slice(lineEnd) : '',
    target: doc.text.slice(sample.lineOffset + column, sample.lineOffset + sample.end),
  };
}

// ---------------------------------------------------------------------------------------------
// Next-token windows
// ---------------------------------------------------------------------------------------------

/**
 * Start offsets of windows of `length` tokens (blockSize inputs + 1 target), spread evenly over the
 * stream without overlap, enough for about `tokens` predictions. Deterministic: no sampling.
 */
export function windowStarts(streamLength: number, length: number, tokens: number): number[] {
  if (streamLength < length || length < 2) return [];
  const count = Math.min(Math.ceil(tokens / (length - 1)), Math.floor(streamLength / length));
  if (count <= 1) return count === 1 ? [0] : [];
  const stride = (streamLength - length) / (count - 1);
  return Array.from({ length: count }, (_, i) => Math.round(i * stride));
}

/** The n-gram as a WindowScorer: each position sees only the window's earlier tokens, as the GPT does. */
function ngramScorer(ngram: NGramModel): WindowScorer {
  return (windows, batchSize, blockSize) => {
    const vocab = ngram.vocabSize;
    const out = new Float32Array(batchSize * blockSize * vocab);
    for (let b = 0; b < batchSize; b++) {
      const row = windows.subarray(b * blockSize, (b + 1) * blockSize);
      for (let t = 0; t < blockSize; t++) {
        const context = row.subarray(Math.max(0, t + 2 - ngram.order), t + 1);
        ngram.logProbs(context, out.subarray((b * blockSize + t) * vocab, (b * blockSize + t + 1) * vocab));
      }
    }
    return out;
  };
}

/**
 * The n-gram baseline as an EvalSystem: scores by ngramScorer, completions through generate.ts.
 * Its prompt may hold blockSize tokens (the model's context) plus the completion budget: an n-gram
 * has no context limit, and a small model's blockSize may be smaller than the budget.
 */
export function ngramSystem(ngram: NGramModel, tokenizer: DecodingTokenizer, opts: { blockSize: number; maxTokens?: number }): EvalSystem {
  const maxTokens = opts.maxTokens ?? 48;
  return {
    name: `${ngram.order}-gram (modified Kneser-Ney)`,
    score: ngramScorer(ngram),
    complete: async (prefix, suffix) => (await ngram.complete(tokenizer, prefix, suffix, { blockSize: opts.blockSize + maxTokens, maxTokens })).text,
  };
}

async function scoreNextTokens(
  system: EvalSystem,
  valTokens: TokenSource,
  starts: number[],
  blockSize: number,
  tokenizer: DecodingTokenizer,
  batchSize: number,
  progress: (done: number) => void,
  signal?: AbortSignal,
): Promise<NextTokenScores> {
  const vocab = tokenizer.vocabSize;
  const tally = new NextTokenTally((id) => tokenizer.tokenBytes(id).length);
  for (let first = 0; first < starts.length; first += batchSize) {
    throwIfAborted(signal);
    const batch = starts.slice(first, first + batchSize);
    const x = new Int32Array(batch.length * blockSize);
    const y = new Int32Array(batch.length * blockSize);
    batch.forEach((start, b) => {
      const window = valTokens.read(start, blockSize + 1);
      x.set(window.subarray(0, blockSize), b * blockSize);
      y.set(window.subarray(1, blockSize + 1), b * blockSize);
    });
    const scores = await system.score(x, batch.length, blockSize);
    const expected = batch.length * blockSize * vocab;
    if (scores.length !== expected) {
      throw new Error(`evaluate: ${system.name} returned ${scores.length} scores for ${batch.length}×${blockSize} windows; expected ${expected} (batch × block × vocabulary ${vocab})`);
    }
    for (let i = 0; i < y.length; i++) tally.add(scores, y[i], i * vocab, vocab);
    progress(first + batch.length);
  }
  return tally.summary();
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

class LineTally {
  private count = 0;
  private exact = 0;
  private similarity = 0;
  add(prediction: string, target: string): void {
    this.count++;
    if (exactMatch(prediction, target)) this.exact++;
    this.similarity += editSimilarity(prediction, target);
  }
  summary(): LineScores {
    if (this.count === 0) return { count: 0, exactMatch: null, editSimilarity: null };
    return { count: this.count, exactMatch: this.exact / this.count, editSimilarity: this.similarity / this.count };
  }
}

interface SystemRun {
  system: EvalSystem;
  lineStart: LineTally;
  midLine: LineTally;
  latencies: number[];
}

async function completeTimed(run: SystemRun, prefix: string, suffix: string): Promise<string> {
  const started = performance.now();
  const text = await run.system.complete(prefix, suffix);
  run.latencies.push(performance.now() - started);
  const newline = text.indexOf('\n'); // a completer that ran past the line is scored on its first line
  return newline >= 0 ? text.slice(0, newline) : text;
}

/** Scores the model and the n-gram baseline on the same held-out data: the report's completion section. */
export async function evaluateModel(opts: EvaluateOptions): Promise<CompletionEval> {
  const started = performance.now();
  const lines = opts.lines ?? 200;
  const tokens = opts.tokens ?? 4096;
  const batchSize = opts.batchSize ?? 4;
  const seed = opts.seed ?? 1337;
  const maxTokens = opts.maxTokens ?? 48;
  const vocab = opts.tokenizer.vocabSize;
  if (opts.ngram.vocabSize !== vocab) {
    throw new Error(`evaluate: the n-gram was trained on ${opts.ngram.vocabSize} token ids but the tokenizer has ${vocab}; retrain the baseline with this tokenizer`);
  }
  for (const [name, value] of [['blockSize', opts.blockSize], ['tokens', tokens], ['batchSize', batchSize]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`evaluate: ${name} must be a positive integer, got ${value}`);
  }
  const baseline = ngramSystem(opts.ngram, opts.tokenizer, { blockSize: opts.blockSize, maxTokens });
  const report = (phase: 'nextToken' | 'lines', done: number, total: number) => opts.onProgress?.({ phase, done, total });

  // 1. Next-token prediction on the same windows for both.
  const starts = windowStarts(opts.valTokens.length, opts.blockSize + 1, tokens);
  const nextToken: NextTokenScores[] = [];
  for (const [i, system] of [opts.model, baseline].entries()) {
    nextToken.push(
      await scoreNextTokens(system, opts.valTokens, starts, opts.blockSize, opts.tokenizer, batchSize, (done) => report('nextToken', i * starts.length + done, 2 * starts.length), opts.signal),
    );
  }

  // 2. Line completion at two cursors per sampled line, the same tasks for both.
  const { samples, candidates } = sampleLines(opts.valFiles, lines, seed);
  const docs = new Map(opts.valFiles.map((d) => [d.relPath, d]));
  const runs: SystemRun[] = [opts.model, baseline].map((system) => ({ system, lineStart: new LineTally(), midLine: new LineTally(), latencies: [] }));
  const examples: EvalExample[] = [];
  for (const [i, sample] of samples.entries()) {
    const doc = docs.get(sample.relPath)!;
    for (const cursor of ['lineStart', 'midLine'] as const) {
      throwIfAborted(opts.signal);
      const task = lineTask(doc, sample, cursor);
      const predictions: string[] = [];
      for (const run of runs) {
        const prediction = await completeTimed(run, task.prefix, task.suffix);
        run[cursor].add(prediction, task.target);
        predictions.push(prediction);
      }
      if (examples.length < EXAMPLES_KEPT) {
        const lineStart = sample.lineOffset;
        examples.push({
          relPath: sample.relPath,
          line: sample.line + 1,
          cursor,
          before: task.prefix.slice(lineStart),
          target: task.target,
          model: predictions[0],
          baseline: predictions[1],
        });
      }
    }
    report('lines', i + 1, samples.length);
  }

  const systemReport = (run: SystemRun, scores: NextTokenScores): SystemReport => ({
    name: run.system.name,
    nextToken: scores,
    lineStart: run.lineStart.summary(),
    midLine: run.midLine.summary(),
    latency: summarizeLatency(run.latencies),
  });
  return {
    settings: { lines, tokens, blockSize: opts.blockSize, seed, ngramOrder: opts.ngram.order, baselineMaxTokens: maxTokens },
    data: {
      valFiles: opts.valFiles.length,
      valTokens: opts.valTokens.length,
      windows: starts.length,
      candidateLines: candidates,
      sampledLines: samples.length,
      ngramTrainTokens: opts.ngram.trainedTokens,
    },
    model: systemReport(runs[0], nextToken[0]),
    baseline: systemReport(runs[1], nextToken[1]),
    examples,
    elapsedMs: performance.now() - started,
  };
}
