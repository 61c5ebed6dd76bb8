// Summary quality, the `summaries` section of the eval report: mines (code, summary) pairs from the
// model's training and held-out files, drops held-out pairs whose code also occurs in training, and
// scores the model's summaries (summarize.ts, on the serving session) against the retrieval
// baseline (summaries/baseline.ts) with smoothed BLEU-4 and ROUGE-L (textMetrics.ts). It trains
// nothing, evaluates no completions (evaluate.ts does) and writes no file: it returns its section,
// and evaluateFolder.ts puts it in the report that report.ts writes.
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { ModelFolderConfig } from '../model/checkpoint';
import { scanFolder, readSourceText, type SourceFile } from '../data/files';
import { splitFiles } from '../data/dataset';
import { languageOf } from '../data/sourceScanner';
import { minePairs, withoutDuplicates, type SummaryPair } from '../data/summaryPairs';
import { evaluateRetrievalBaseline } from '../summaries/baseline';
import { scoreSummaries } from '../summaries/textMetrics';
import { summarizeWith, DEFAULT_SUMMARY_TOKENS, type SummarizingTokenizer } from '../summaries/summarize';
import { throwIfAborted, type NextTokenLogits } from '../infer/generate';
import { summarizeLatency } from './metrics';
import type { SummaryEvalSection } from './report';
import type { CompletionSession } from '../infer/session';

/** Held-out pairs scored at most; generation costs ~25 model calls per pair. */
const DEFAULT_SUMMARY_EVAL_PAIRS = 200;
const EXAMPLES_KEPT = 8;

export interface MinedPair extends SummaryPair {
  relPath: string;
}

/** Every documented definition of the files, with the file it came from. Unreadable files are left out. */
export async function minePairsFromFiles(files: readonly SourceFile[], signal?: AbortSignal): Promise<MinedPair[]> {
  const pairs: MinedPair[] = [];
  for (const file of files) {
    throwIfAborted(signal);
    const language = languageOf(file.relPath);
    if (!language) continue;
    const text = await readSourceText(file);
    if (text === null) continue;
    for (const pair of minePairs(text, language, file.relPath)) pairs.push({ ...pair, relPath: file.relPath });
  }
  return pairs;
}

/** `count` items spread evenly over `items` (all of them when there are fewer). */
function evenlySpaced<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return items.slice();
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)]);
}

export interface SummaryEvalOptions {
  next: NextTokenLogits; // the model (session.nextLogits)
  tokenizer: SummarizingTokenizer;
  blockSize: number;
  modelName: string;
  trainPairs: readonly MinedPair[];
  heldOutPairs: readonly MinedPair[];
  summaryRate: number;
  maxPairs?: number; // default 200
  maxTokens?: number; // generation budget per summary, default 24
  noRepeatNgram?: number; // summarize.ts's repetition rule, default 3
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Scores the model's summaries and the retrieval baseline's on the same de-duplicated held-out pairs. */
export async function evaluateSummaries(opts: SummaryEvalOptions): Promise<SummaryEvalSection> {
  const started = performance.now();
  const maxPairs = opts.maxPairs ?? DEFAULT_SUMMARY_EVAL_PAIRS;
  const maxTokens = opts.maxTokens ?? DEFAULT_SUMMARY_TOKENS;
  if (!Number.isInteger(maxPairs) || maxPairs < 1) throw new Error(`summary evaluation: maxPairs must be a positive integer, got ${maxPairs}`);
  const unique = withoutDuplicates(opts.heldOutPairs, opts.trainPairs);
  const chosen = evenlySpaced(unique, maxPairs);
  const section: SummaryEvalSection = {
    pairs: { train: opts.trainPairs.length, heldOut: opts.heldOutPairs.length, duplicates: opts.heldOutPairs.length - unique.length, evaluated: chosen.length },
    model: null,
    baseline: null,
    trainedForSummaries: opts.summaryRate > 0,
    summaryRate: opts.summaryRate,
    maxTokens,
    examples: [],
    elapsedMs: 0,
  };
  if (chosen.length === 0) {
    section.note = opts.heldOutPairs.length === 0
      ? 'no documented functions in the held-out files: nothing to score summaries against'
      : `all ${opts.heldOutPairs.length} held-out documented functions also occur in the training files: nothing unseen to score`;
    section.elapsedMs = performance.now() - started;
    return section;
  }

  const references = chosen.map((pair) => pair.summary);
  const predictions: string[] = [];
  const latencies: number[] = [];
  for (const [i, pair] of chosen.entries()) {
    const result = await summarizeWith(opts.next, opts.tokenizer, pair.code, { blockSize: opts.blockSize, maxTokens, noRepeatNgram: opts.noRepeatNgram, signal: opts.signal });
    predictions.push(result.summary);
    latencies.push(result.ms);
    opts.onProgress?.(i + 1, chosen.length);
  }
  section.model = { name: opts.modelName, ...scoreSummaries(predictions, references), latency: summarizeLatency(latencies) };

  let baselinePredictions: string[] = [];
  if (opts.trainPairs.length > 0) {
    const { predictions: retrieved, ...scores } = evaluateRetrievalBaseline(opts.trainPairs, chosen);
    baselinePredictions = retrieved;
    section.baseline = { name: 'retrieval (summary of the most similar training code)', ...scores };
  } else {
    section.note = 'no documented functions in the training files: the retrieval baseline has nothing to retrieve';
  }
  section.examples = evenlySpaced(chosen.map((pair, i) => ({
    relPath: pair.relPath, line: pair.line + 1, name: pair.name, reference: pair.summary,
    model: predictions[i], baseline: baselinePredictions[i] ?? '',
  })), EXAMPLES_KEPT);
  section.elapsedMs = performance.now() - started;
  return section;
}

export interface ModelSummaryEvalOptions {
  session: CompletionSession; // the model, as it serves
  config: ModelFolderConfig; // the model folder's config: its training data, split and preset
  valFiles: readonly SourceFile[]; // the held-out files the completion figures came from
  signal?: AbortSignal;
  onProgress?: (p: { phase: string; done: number; total: number }) => void;
}

/**
 * The `summaries` section for a model folder, scored on the serving session. Training pairs come
 * from the model's own training split (config.json data.root, seed, valFraction); when that folder
 * is gone the baseline is left out and the section says why.
 */
export async function evaluateModelSummaries(opts: ModelSummaryEvalOptions): Promise<SummaryEvalSection> {
  const config = opts.config;
  let trainFiles: SourceFile[] = [];
  if (existsSync(config.data.root)) {
    const scan = await scanFolder(config.data.root);
    trainFiles = splitFiles(scan.files, config.train.valFraction, config.train.seed).train;
  }
  const section = await evaluateSummaries({
    next: (tokens) => opts.session.nextLogits(tokens),
    tokenizer: opts.session.tokenizer,
    blockSize: config.model.blockSize,
    modelName: `GPT ${config.preset} (onnxruntime ${opts.session.provider})`,
    trainPairs: await minePairsFromFiles(trainFiles, opts.signal),
    heldOutPairs: await minePairsFromFiles(opts.valFiles, opts.signal),
    summaryRate: config.train.summaryRate,
    signal: opts.signal,
    onProgress: (done, total) => opts.onProgress?.({ phase: 'summaries', done, total }),
  });
  if (trainFiles.length === 0 && !section.note) section.note = `the training folder ${config.data.root} is gone: no retrieval baseline`;
  return section;
}
