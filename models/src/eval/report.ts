// eval.json: the evaluation report's type (every section of it), the one function that puts the
// suites' sections together, the one writer and the one reader of the file, and the table `wlm
// eval` prints. It computes no figure: the completion suite (evaluate.ts) and the summaries suite
// (summaryEval.ts) return their sections, and evaluateFolder.ts writes the report once.
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../util/atomicFiles';
import type { LatencySummary } from './metrics';
import type { SummaryScores } from '../summaries/textMetrics';

const EVAL_FILE = 'eval.json';
const EVAL_FORMAT_VERSION = 1;
const EVAL_KIND = 'workspace-lm-eval';

// ---------------------------------------------------------------------------------------------
// The completion section (evaluate.ts): the model and the n-gram baseline on the same data
// ---------------------------------------------------------------------------------------------

export interface NextTokenScores {
  tokens: number; // predictions scored
  loss: number | null; // mean cross-entropy, nats
  perplexity: number | null; // exp(loss)
  top1: number | null; // fraction of predictions whose best guess was right
  top5: number | null; // fraction with the right token among the 5 best
  // UTF-8 bytes of the text the scored tokens encode (special tokens: none), and the total nats
  // over ln 2 over them: the figure that compares models with different tokenizers. Reports
  // written before it was measured lack both; readers take that as not measured.
  bytes: number;
  bitsPerByte: number | null;
}

export interface LineScores {
  count: number;
  exactMatch: number | null; // fraction, CodeXGLUE definition (metrics.ts exactMatch)
  editSimilarity: number | null; // mean, 0–100, CodeXGLUE definition (metrics.ts editSimilarity)
}

export interface SystemReport {
  name: string;
  nextToken: NextTokenScores;
  lineStart: LineScores; // cursor after the line's indentation; target: the whole line
  midLine: LineScores; // cursor inside the line; target: the rest of it
  latency: LatencySummary; // of every line completion above
}

export interface EvalExample {
  relPath: string;
  line: number; // 1-based
  cursor: 'lineStart' | 'midLine';
  before: string; // the line up to the cursor
  target: string;
  model: string;
  baseline: string;
}

/** What the completion suite returns; its fields sit at the top level of eval.json. */
export interface CompletionEval {
  settings: { lines: number; tokens: number; blockSize: number; seed: number; ngramOrder: number; baselineMaxTokens: number };
  data: { valFiles: number; valTokens: number; windows: number; candidateLines: number; sampledLines: number; ngramTrainTokens: number };
  model: SystemReport;
  baseline: SystemReport;
  examples: EvalExample[];
  elapsedMs: number;
}

// ---------------------------------------------------------------------------------------------
// The summaries section (summaryEval.ts): the model's summaries vs the retrieval baseline
// ---------------------------------------------------------------------------------------------

export interface SummaryExample {
  relPath: string;
  line: number; // 1-based line of the definition
  name?: string;
  reference: string; // the doc comment's summary
  model: string;
  baseline: string;
}

/** The `summaries` section of eval.json. Scores are 0–100, as CodeXGLUE reports them. */
export interface SummaryEvalSection {
  pairs: {
    train: number; // pairs mined from the training files (the baseline's memory)
    heldOut: number; // pairs mined from the held-out files
    duplicates: number; // held-out pairs dropped because their code also occurs in training (or twice)
    evaluated: number; // scored (at most maxPairs of the rest, evenly spaced)
  };
  model: (SummaryScores & { name: string; latency: LatencySummary }) | null; // null: nothing to score
  baseline: (SummaryScores & { name: string }) | null; // null: no training pairs to retrieve from
  trainedForSummaries: boolean; // the model saw summary examples (train.summaryRate > 0)
  summaryRate: number;
  maxTokens: number;
  note?: string; // why figures are missing
  examples: SummaryExample[];
  elapsedMs: number;
}

// ---------------------------------------------------------------------------------------------
// The report, eval.json, and the CLI table
// ---------------------------------------------------------------------------------------------

export interface EvalReport extends CompletionEval {
  formatVersion: typeof EVAL_FORMAT_VERSION;
  kind: typeof EVAL_KIND;
  createdAt: string;
  summaries?: SummaryEvalSection; // code summaries vs the retrieval baseline, when evaluated
}

/** The report of one evaluation, from the sections its suites returned. */
export function composeEvalReport(completion: CompletionEval, summaries?: SummaryEvalSection): EvalReport {
  return {
    formatVersion: EVAL_FORMAT_VERSION,
    kind: EVAL_KIND,
    createdAt: new Date().toISOString(),
    ...completion,
    ...(summaries ? { summaries } : {}),
  };
}

/** Writes the model folder's eval.json (atomically), once per evaluation. */
export async function writeEvalReport(modelDir: string, report: EvalReport): Promise<string> {
  const file = path.join(modelDir, EVAL_FILE);
  await writeFileAtomic(file, JSON.stringify(report, null, 2) + '\n');
  return file;
}

/** The model folder's eval.json, or null when it has none; a damaged one is an error that says so. */
export async function readEvalReport(modelDir: string): Promise<EvalReport | null> {
  const file = path.join(modelDir, EVAL_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let parsed: Partial<EvalReport>;
  try {
    parsed = JSON.parse(text) as Partial<EvalReport>;
  } catch {
    throw new Error(`corrupt eval report ${file}: not JSON; run \`wlm eval\` again to rewrite it`);
  }
  if (parsed.kind !== EVAL_KIND || parsed.formatVersion !== EVAL_FORMAT_VERSION || !parsed.model || !parsed.baseline) {
    throw new Error(`corrupt eval report ${file}: expected kind "${EVAL_KIND}", formatVersion ${EVAL_FORMAT_VERSION} (got ${parsed.kind}, ${parsed.formatVersion}); run \`wlm eval\` again`);
  }
  return parsed as EvalReport;
}

const fixed = (digits: number) => (v: number | null) => (v === null ? 'n/a' : v.toFixed(digits));
const percent = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);

/** The comparison as a plain-text table: "metric | model | baseline", one row per figure. */
export function formatEvalTable(report: EvalReport): string {
  const rows: [string, (s: SystemReport) => string][] = [
    ['validation loss (nats/token)', (s) => fixed(4)(s.nextToken.loss)],
    ['bits per byte', (s) => fixed(4)(s.nextToken.bitsPerByte ?? null)],
    ['perplexity', (s) => fixed(2)(s.nextToken.perplexity)],
    ['next-token top-1', (s) => percent(s.nextToken.top1)],
    ['next-token top-5', (s) => percent(s.nextToken.top5)],
    ['line start: exact match', (s) => percent(s.lineStart.exactMatch)],
    ['line start: edit similarity', (s) => fixed(1)(s.lineStart.editSimilarity)],
    ['mid-line: exact match', (s) => percent(s.midLine.exactMatch)],
    ['mid-line: edit similarity', (s) => fixed(1)(s.midLine.editSimilarity)],
    ['completion latency p50 (ms)', (s) => fixed(1)(s.latency.p50Ms)],
    ['completion latency p95 (ms)', (s) => fixed(1)(s.latency.p95Ms)],
  ];
  const table = [
    ['metric', 'model', `baseline: ${report.baseline.name}`],
    ...rows.map(([label, value]) => [label, value(report.model), value(report.baseline)]),
  ];
  // Summaries have their own baseline (retrieval, not the n-gram): its figures share the column.
  const summaries = report.summaries;
  if (summaries?.model) {
    const baseline = summaries.baseline;
    const name = 'retrieval';
    table.push(
      [`summary BLEU-4 (baseline: ${name})`, fixed(2)(summaries.model.bleu), baseline ? fixed(2)(baseline.bleu) : 'n/a'],
      [`summary ROUGE-L (baseline: ${name})`, fixed(2)(summaries.model.rougeL), baseline ? fixed(2)(baseline.rougeL) : 'n/a'],
      [`summary exact match (baseline: ${name})`, `${summaries.model.exactMatch.toFixed(1)}%`, baseline ? `${baseline.exactMatch.toFixed(1)}%` : 'n/a'],
    );
  }
  const widths = [0, 1, 2].map((c) => Math.max(...table.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ');
  const d = report.data;
  const summaryNote = !summaries
    ? []
    : summaries.model
      ? [`summaries: ${summaries.pairs.evaluated} held-out documented definitions (${summaries.pairs.duplicates} copies of training code left out)${summaries.trainedForSummaries ? '' : '; the model was trained without summary examples'}${summaries.note ? `; ${summaries.note}` : ''}`]
      : [`summaries: n/a (${summaries.note ?? 'nothing to score'})`];
  return [
    `${d.sampledLines} lines (of ${d.candidateLines}) from ${d.valFiles} held-out files, each completed from its start and mid-line; ` +
      `${report.model.nextToken.tokens} next-token predictions in ${d.windows} windows of ${report.settings.blockSize}`,
    line(table[0]),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...table.slice(1).map(line),
    ...summaryNote,
  ].join('\n');
}
