// The contract between the extension side of the metrics panel (client/src/metricsView.ts) and its
// page (client/media/panel.ts): the typed messages, the data shapes they carry, the page's HTML,
// and the pure functions that turn a model folder's files, as the server sends them (the
// metrics.jsonl records, the typed eval.json), into those shapes. It parses no file itself
// (models/src/train/metricsLog.ts reads metrics.jsonl). No `vscode`, no DOM: both sides import
// it, and the tests run it in plain Node.

import type { EvalReport, ModelInfo } from '../../protocol/src/customMessages';
import type { MetricsLog, StepMetrics } from '../../models/src/train/metricsLog';

// ---------------------------------------------------------------------------------------------
// Data shapes

/** What the runs list shows of a model folder, read from its config.json. */
export interface RunSummary {
  id: string; // stable id the extension uses for readRun / deleteRun / selectRun
  name: string;
  preset: string;
  parent?: string; // the model it was fine-tuned from
  backend: string; // e.g. "wasm (CPU, 1 thread)"
  state?: ModelInfo['state']; // from the models list: 'training', 'incomplete', 'corrupt', 'ready'
  reason?: string; // why incomplete or corrupt
  files?: number;
  bytes?: number;
  tokens?: number;
  createdAt?: string; // ISO 8601
  step?: number;
  maxSteps?: number;
  bestValLoss?: number;
  active: boolean; // the model serving completions
}

/** One row of the evaluation table: the model's figure with the n-gram baseline's beside it. */
export interface EvalRow {
  key: string; // the figure's path in eval.json's system reports, e.g. "lineStart.exactMatch"
  label: string;
  model: number;
  baseline?: number;
  format: 'percent' | 'score' | 'number' | 'ms'; // percent: a fraction; score: already 0–100
  better: 'lower' | 'higher';
}

/** Latencies to draw as a histogram, already binned: counts[i] samples fall in binLabels[i]. */
export interface LatencyHistogram {
  label: string; // whose latencies: "model", "baseline", "cached", …
  binLabels: string[]; // milliseconds, e.g. "<1", "1–2", "≥5000"
  counts: number[];
}

export interface RunData {
  summary: RunSummary;
  points: StepMetrics[];
  badLines: number; // metrics.jsonl lines that did not parse (a crash mid-write, hand edits)
  evalRows: EvalRow[];
  evalNote?: string; // what the evaluation was measured on
  latency: LatencyHistogram[];
}

/** Completions shown and accepted in this workspace; counted on this machine, sent nowhere. */
export interface UsageCounts {
  shown: number;
  accepted: number;
}

/** The run being trained right now, as far as the panel knows. */
export interface LiveStatus {
  runId: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  step: number;
  maxSteps?: number;
  maxMinutes?: number; // its wall-clock budget; 0 or absent: none
  percentage?: number; // 0–100 by whichever budget ends the run first (the server's figure)
  tokensPerSecond?: number;
  etaMs?: number; // the server's figure, by the same rule
  message?: string;
}

/** Where a live run stands, as the server's workspaceLm/metrics notification says. */
export interface LiveProgress {
  maxSteps: number;
  maxMinutes: number;
  percentage: number;
  etaMs: number | null;
}

// ---------------------------------------------------------------------------------------------
// Messages, tagged by `type`

/** Extension → page. */
export type HostMessage =
  | { type: 'runs'; runs: RunSummary[]; reread?: boolean } // reread: the shown runs' data may be stale, ask again
  | { type: 'runData'; run: RunData }
  | { type: 'metrics'; runId: string; points: StepMetrics[]; progress?: LiveProgress }
  | { type: 'live'; status: LiveStatus | null }
  | { type: 'usage'; usage: UsageCounts }
  | { type: 'error'; message: string };

/** Page → extension. */
export type PanelMessage =
  | { type: 'ready' }
  | { type: 'showRun'; runId: string } // load its curves and evaluation
  | { type: 'useRun'; runId: string } // make it the model that serves completions
  | { type: 'deleteRun'; runId: string } // the extension asks for confirmation first
  | { type: 'train' }; // the empty state's button

/** Checks a message from the page; the page is ours, but a webview is still an input boundary. */
export function parsePanelMessage(raw: unknown): PanelMessage | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case 'ready':
    case 'train':
      return { type: m.type };
    case 'showRun':
    case 'useRun':
    case 'deleteRun':
      return typeof m.runId === 'string' && m.runId.length > 0 ? { type: m.type, runId: m.runId } : undefined;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The page

export interface PanelHtmlOptions {
  cspSource: string; // webview.cspSource: where the script and style may come from
  nonce: string; // fresh per render, from crypto.randomBytes
  scriptUri: string;
  styleUri: string;
}

/** The page shell. A pure function, so the same HTML is rendered in VS Code and in the tests. */
export function renderPanelHtml(o: PanelHtmlOptions): string {
  if (!/^[A-Za-z0-9+/=]{16,}$/.test(o.nonce)) {
    throw new Error(`metrics panel: nonce must be at least 16 base64 characters, got "${o.nonce}"`);
  }
  // default-src 'none' forbids everything not named: no fetch, no frames, no remote anything.
  const csp = [
    `default-src 'none'`,
    `img-src ${o.cspSource} data:`,
    `style-src ${o.cspSource}`,
    `font-src ${o.cspSource}`,
    `script-src 'nonce-${o.nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link href="${escapeHtml(o.styleUri)}" rel="stylesheet">
<title>Workspace LM</title>
</head>
<body>
<main id="app" aria-live="polite"></main>
<script nonce="${o.nonce}" src="${escapeHtml(o.scriptUri)}"></script>
</body>
</html>
`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

// ---------------------------------------------------------------------------------------------
// Model folder files → panel data

/** "45 s", "3 min 20 s", "10 min", "2 h 5 min". (The time left comes from the server, which knows both budgets.) */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** The runs list entry for a model the server lists (workspaceLm/models). */
export function summarizeModelInfo(info: ModelInfo): RunSummary {
  const summary: RunSummary = { id: info.name, name: info.name, preset: info.preset ?? '?', backend: info.backend ?? '?', active: info.active, state: info.state };
  if (info.reason) summary.reason = info.reason;
  if (info.parent) summary.parent = info.parent;
  if (info.dataBytes !== undefined) summary.bytes = info.dataBytes;
  if (info.dataTokens !== undefined) summary.tokens = info.dataTokens;
  if (info.createdAt) summary.createdAt = info.createdAt;
  if (info.step !== undefined) summary.step = info.step;
  if (typeof info.bestValLoss === 'number') summary.bestValLoss = info.bestValLoss;
  return summary;
}

/**
 * Fills what the models list does not carry (file count, planned steps, device) from the model's
 * config.json, when the extension has it.
 */
export function withConfig(summary: RunSummary, config: unknown): RunSummary {
  if (config === undefined || config === null) return summary;
  const fromConfig = summarizeRun(summary.id, config, summary.active);
  const merged: RunSummary = { ...fromConfig, ...summary };
  for (const key of ['preset', 'backend'] as const) if (merged[key] === '?') merged[key] = fromConfig[key];
  return merged;
}

/** The runs list entry for a model folder's config.json. Unknown fields show as "?". */
export function summarizeRun(id: string, config: unknown, active = false): RunSummary {
  const c = (typeof config === 'object' && config !== null ? config : {}) as Record<string, unknown>;
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});
  const backend = obj(c.backend);
  const data = obj(c.data);
  const train = obj(c.train);
  const parentRaw = c.parent;
  const parent = str(parentRaw) ?? str(obj(parentRaw).name) ?? str(obj(parentRaw).dir) ?? str(obj(parentRaw).id);
  const backendName = str(backend.name);
  const device = str(backend.device);
  // pipeline.ts records { train, val } counts; a plain number or a list of files is read too.
  const total = (v: unknown): number | undefined =>
    Array.isArray(v) ? v.length : typeof v === 'object' && v !== null ? Object.values(v).reduce<number>((n, x) => n + (num(x) ?? 0), 0) : num(v);
  const files = total(data.files);
  const summary: RunSummary = {
    id,
    name: str(c.name) ?? id,
    preset: str(c.preset) ?? '?',
    backend: backendName ? (device ? `${backendName} (${device})` : backendName) : '?',
    active,
  };
  if (parent) summary.parent = parent;
  if (files !== undefined) summary.files = files;
  const tokens = total(data.tokens);
  if (tokens !== undefined) summary.tokens = tokens;
  const bytes = num(data.bytes);
  if (bytes !== undefined) summary.bytes = bytes;
  const createdAt = str(c.createdAt);
  if (createdAt) summary.createdAt = createdAt;
  const step = num(c.step);
  if (step !== undefined) summary.step = step;
  const maxSteps = num(train.maxSteps);
  if (maxSteps !== undefined) summary.maxSteps = maxSteps;
  const bestValLoss = num(c.bestValLoss);
  if (bestValLoss !== undefined) summary.bestValLoss = bestValLoss;
  return summary;
}

// ---------------------------------------------------------------------------------------------
// The eval report, read through its type (models' EvalReport, sent by workspaceLm/metricsHistory):
// each figure is named here, with the label, scale and direction the table shows it with.

type SystemReport = EvalReport['model'];
type SummarySection = NonNullable<EvalReport['summaries']>;
type SummaryScores = NonNullable<SummarySection['baseline']>;

/** A figure of one part of a report: how to read it, and how the table shows it. */
interface Figure<T> {
  key: string; // its name in eval.json; with the part's name, the row's key
  label: string;
  format: EvalRow['format'];
  better: EvalRow['better'];
  read(part: T): number | null; // null: not measured (no windows, no lines)
}

const NEXT_TOKEN_FIGURES: Figure<SystemReport['nextToken']>[] = [
  { key: 'loss', label: 'loss (nats/token)', format: 'number', better: 'lower', read: (s) => s.loss },
  { key: 'bitsPerByte', label: 'bits per byte', format: 'number', better: 'lower', read: (s) => s.bitsPerByte ?? null }, // absent in older reports
  { key: 'perplexity', label: 'perplexity', format: 'number', better: 'lower', read: (s) => s.perplexity },
  { key: 'top1', label: 'top-1 accuracy', format: 'percent', better: 'higher', read: (s) => s.top1 },
  { key: 'top5', label: 'top-5 accuracy', format: 'percent', better: 'higher', read: (s) => s.top5 },
];

const LINE_FIGURES: Figure<SystemReport['lineStart']>[] = [
  { key: 'exactMatch', label: 'exact match', format: 'percent', better: 'higher', read: (s) => s.exactMatch }, // a fraction
  { key: 'editSimilarity', label: 'edit similarity', format: 'score', better: 'higher', read: (s) => s.editSimilarity }, // 0–100
];

const LATENCY_FIGURES: Figure<SystemReport['latency']>[] = [
  { key: 'meanMs', label: 'latency mean', format: 'ms', better: 'lower', read: (s) => s.meanMs },
  { key: 'p50Ms', label: 'latency p50', format: 'ms', better: 'lower', read: (s) => s.p50Ms },
  { key: 'p95Ms', label: 'latency p95', format: 'ms', better: 'lower', read: (s) => s.p95Ms },
  { key: 'maxMs', label: 'latency max', format: 'ms', better: 'lower', read: (s) => s.maxMs },
];

// Summary scores are on CodeXGLUE's 0–100 scale; exact match is shown as a percentage like the lines'.
const SUMMARY_FIGURES: Figure<SummaryScores>[] = [
  { key: 'bleu', label: 'BLEU-4', format: 'score', better: 'higher', read: (s) => s.bleu },
  { key: 'rougeL', label: 'ROUGE-L', format: 'score', better: 'higher', read: (s) => s.rougeL },
  { key: 'exactMatch', label: 'exact match', format: 'percent', better: 'higher', read: (s) => s.exactMatch / 100 },
];

/**
 * The evaluation table: a row per figure, the model's with the baseline's beside it, in the order
 * evaluate.ts measures them (next token, line start, mid-line, latency), then the summaries
 * against their retrieval baseline when they were evaluated. No report, no rows.
 */
export function evalRows(report: EvalReport | null): EvalRow[] {
  if (!report) return [];
  const { model, baseline } = report;
  return [
    ...figureRows('nextToken', '', NEXT_TOKEN_FIGURES, model.nextToken, baseline.nextToken),
    ...figureRows('lineStart', 'line start', LINE_FIGURES, model.lineStart, baseline.lineStart),
    ...figureRows('midLine', 'mid line', LINE_FIGURES, model.midLine, baseline.midLine),
    ...figureRows('latency', '', LATENCY_FIGURES, model.latency, baseline.latency),
    ...summaryRows(report.summaries),
  ];
}

function summaryRows(summaries: SummarySection | undefined): EvalRow[] {
  if (!summaries?.model) return []; // not evaluated, or nothing to score
  return [
    ...figureRows('summaries', 'summaries', SUMMARY_FIGURES, summaries.model, summaries.baseline),
    ...figureRows('summaries.latency', 'summaries', LATENCY_FIGURES, summaries.model.latency, null), // retrieval takes no time worth showing
  ];
}

function figureRows<T>(part: string, where: string, figures: Figure<T>[], model: T, baseline: T | null): EvalRow[] {
  const rows: EvalRow[] = [];
  for (const figure of figures) {
    const value = figure.read(model);
    if (value === null) continue;
    const row: EvalRow = { key: `${part}.${figure.key}`, label: where ? `${where} · ${figure.label}` : figure.label, model: value, format: figure.format, better: figure.better };
    const baselineValue = baseline === null ? null : figure.read(baseline);
    if (baselineValue !== null) row.baseline = baselineValue;
    rows.push(row);
  }
  return rows;
}

/** What the evaluation was measured on, in words: "2 held-out files · 40 lines · 2048 tokens". */
export function describeEval(report: EvalReport | null): string | undefined {
  if (!report) return undefined;
  const files = report.data.valFiles;
  return [`${files} held-out file${files === 1 ? '' : 's'}`, `${report.data.sampledLines} lines`, `${report.model.nextToken.tokens} tokens`].join(' · ');
}

/** The completion latencies of the model and the baseline, binned as eval/metrics.ts binned them. */
export function latencyHistograms(report: EvalReport | null): LatencyHistogram[] {
  if (!report) return [];
  return (['model', 'baseline'] as const).map((label) => {
    const { edges, counts } = report[label].latency.histogram;
    return { label, binLabels: binLabels(edges), counts };
  });
}

/** "<1", "1–2", …, "≥5000" for open-ended bins cut at ascending edges (counts has one more entry). */
export function binLabels(edges: number[]): string[] {
  if (edges.length === 0) return ['all'];
  return [`<${edges[0]}`, ...edges.slice(1).map((e, i) => `${edges[i]}–${e}`), `≥${edges[edges.length - 1]}`];
}

/**
 * Everything the page needs about one run: the records of its metrics.jsonl (as readMetricsLog
 * gave them) and its eval report (null when not evaluated).
 */
export function buildRunData(summary: RunSummary, log: MetricsLog, report: EvalReport | null): RunData {
  const data: RunData = { summary, points: log.metrics, badLines: log.badLines, evalRows: evalRows(report), latency: latencyHistograms(report) };
  const evalNote = describeEval(report);
  if (evalNote) data.evalNote = evalNote;
  return data;
}
