// The contract between the extension side of the metrics panel (client/src/metricsView.ts) and its
// page (client/media/panel.ts): the typed messages, the data shapes they carry, the page's HTML,
// and the pure readers that turn a model folder's files into those shapes. No `vscode`, no DOM:
// both sides import it, and the tests run it in plain Node.

import type { ModelInfo, StepMetrics } from '../../server/src/protocol';

// ---------------------------------------------------------------------------------------------
// Data shapes

/** One logged training step, as in metrics.jsonl and the workspaceLm/metrics notification. */
export type MetricsPoint = StepMetrics;

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
  key: string; // path in eval.json, e.g. "lineStart.exactMatch"
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
  points: MetricsPoint[];
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
  tokensPerSecond?: number;
  etaMs?: number;
  message?: string;
}

// ---------------------------------------------------------------------------------------------
// Messages, tagged by `type`

/** Extension → page. */
export type HostMessage =
  | { type: 'runs'; runs: RunSummary[] }
  | { type: 'runData'; run: RunData }
  | { type: 'metrics'; runId: string; points: MetricsPoint[]; maxSteps?: number }
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
// Readers: model folder files → panel data. Tolerant: a bad line or field is counted or dropped,
// never thrown, because a half-written metrics.jsonl is normal while a run is training.

/**
 * Parses metrics.jsonl given as text, as lines, or as records already parsed; keeps the last point
 * for each step, in step order, and counts what it could not read.
 */
export function parseMetrics(input: string | unknown[]): { points: MetricsPoint[]; badLines: number } {
  const records = typeof input === 'string' ? input.split('\n') : input;
  const points: MetricsPoint[] = [];
  let badLines = 0;
  for (const record of records) {
    if (typeof record === 'string' && record.trim() === '') continue;
    let parsed: unknown = record;
    if (typeof record === 'string') {
      try {
        parsed = JSON.parse(record);
      } catch {
        badLines++;
        continue;
      }
    }
    const point = toMetricsPoint(parsed);
    if (!point) {
      badLines++;
      continue;
    }
    if (points.length > 0 && point.step <= points[points.length - 1].step) points.splice(0, points.length, ...appendPoints(points, [point]));
    else points.push(point);
  }
  return { points, badLines };
}

/** A checked copy of one metrics record, or undefined when a required figure is missing. */
export function toMetricsPoint(raw: unknown): MetricsPoint | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const step = num(r.step);
  const trainLoss = num(r.trainLoss);
  if (step === undefined || trainLoss === undefined) return undefined;
  const point: MetricsPoint = {
    step,
    tokens: num(r.tokens) ?? 0,
    trainLoss,
    lr: num(r.lr) ?? 0,
    gradNorm: num(r.gradNorm) ?? 0,
    tokensPerSecond: num(r.tokensPerSecond) ?? 0,
    elapsedMs: num(r.elapsedMs) ?? 0,
  };
  const valLoss = num(r.valLoss);
  if (valLoss !== undefined) point.valLoss = valLoss;
  return point;
}

/**
 * Adds points to a series kept in step order. A point at or before the last step means the run
 * was resumed from an earlier checkpoint: the steps it redoes replace the old ones.
 */
export function appendPoints(series: MetricsPoint[], incoming: MetricsPoint[]): MetricsPoint[] {
  let out = series.slice();
  for (const p of incoming) {
    const last = out[out.length - 1];
    if (last && p.step <= last.step) out = out.filter((q) => q.step < p.step);
    out.push(p);
  }
  return out;
}

/** Milliseconds left, from the pace of the recent steps; undefined until there is a pace. */
export function estimateEtaMs(points: MetricsPoint[], maxSteps: number | undefined): number | undefined {
  if (!maxSteps || points.length < 2) return undefined;
  const last = points[points.length - 1];
  if (last.step >= maxSteps) return 0;
  // The last ~20 logged steps: the first steps include compilation and warm-up, so they lie.
  const first = points[Math.max(0, points.length - 21)];
  const msPerStep = (last.elapsedMs - first.elapsedMs) / (last.step - first.step);
  if (!(msPerStep > 0) || !Number.isFinite(msPerStep)) return undefined;
  return Math.round(msPerStep * (maxSteps - last.step));
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

// The figures eval.json holds (models/src/eval/evaluate.ts EvalReport: { model, baseline } system
// reports). Matched on the last key of a figure's path, case and separators ignored.
const KNOWN_EVAL_FIGURES: { match: RegExp; label: string; format: EvalRow['format']; better: EvalRow['better'] }[] = [
  { match: /^(val)?loss$/, label: 'loss (nats/token)', format: 'number', better: 'lower' },
  { match: /^(perplexity|ppl)$/, label: 'perplexity', format: 'number', better: 'lower' },
  { match: /^(top1|top1accuracy|accuracy|nexttokenaccuracy)$/, label: 'top-1 accuracy', format: 'percent', better: 'higher' },
  { match: /^(top5|top5accuracy)$/, label: 'top-5 accuracy', format: 'percent', better: 'higher' },
  { match: /exactmatch|^em$/, label: 'exact match', format: 'percent', better: 'higher' },
  { match: /editsim|^es$/, label: 'edit similarity', format: 'percent', better: 'higher' },
  { match: /^bleu/, label: 'BLEU-4', format: 'score', better: 'higher' },
  { match: /^rouge/, label: 'ROUGE-L', format: 'score', better: 'higher' },
  { match: /p50|median/, label: 'latency p50', format: 'ms', better: 'lower' },
  { match: /p95/, label: 'latency p95', format: 'ms', better: 'lower' },
  { match: /p99/, label: 'latency p99', format: 'ms', better: 'lower' },
];

// Sample sizes, not figures: said once in the caption rather than as rows.
const COUNT_KEYS = /^(count|tokens|windows|lines|samples)$/i;

/**
 * Finds every { model, baseline? } pair in eval.json, wherever it sits, and labels the figures we
 * know (sample sizes are left to describeEval). A pair may hold numbers ({ top1: { model, baseline } }) or whole objects of figures
 * ({ latency: { model: { p50Ms, p95Ms }, baseline: { ... } } }); both give one row per figure.
 * The path before the last key says where a figure was measured ("line start", "mid-line").
 */
export function extractEvalRows(evalJson: unknown): EvalRow[] {
  const rows: EvalRow[] = [];
  const visit = (value: unknown, path: string[], depth: number): void => {
    if (!isPlainObject(value) || depth > 5) return;
    // A pair: { model: number, baseline?: number } or { model: {figures}, baseline: {figures} }.
    // (A string or lone object under "model" is a name or a config, not a figure.)
    if (typeof value.model === 'number' || (isPlainObject(value.model) && isPlainObject(value.baseline))) {
      for (const leaf of numericLeaves(value.model, [], 0)) {
        if (COUNT_KEYS.test(leaf.path[leaf.path.length - 1] ?? '')) continue;
        const baseline = valueAt(value.baseline, leaf.path);
        rows.push(evalRow([...path, ...leaf.path], leaf.value, typeof baseline === 'number' && Number.isFinite(baseline) ? baseline : undefined));
      }
      // Sections beside the pair (eval.json's "summaries") hold pairs of their own.
      for (const [key, child] of Object.entries(value)) if (key !== 'model' && key !== 'baseline') visit(child, [...path, key], depth + 1);
      return;
    }
    for (const [key, child] of Object.entries(value)) visit(child, [...path, key], depth + 1);
  };
  visit(evalJson, [], 0);
  return rows; // in file order: evaluate.ts writes next-token, line start, mid-line, latency
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The finite numbers under a value, with their paths; arrays (samples, histograms) are skipped. */
function numericLeaves(value: unknown, path: string[], depth: number): { path: string[]; value: number }[] {
  if (typeof value === 'number') return Number.isFinite(value) ? [{ path, value }] : [];
  if (!isPlainObject(value) || depth > 3) return [];
  return Object.entries(value).flatMap(([key, child]) => numericLeaves(child, [...path, key], depth + 1));
}

function valueAt(value: unknown, path: string[]): unknown {
  let v = value;
  for (const key of path) v = isPlainObject(v) ? v[key] : undefined;
  return v;
}

function evalRow(path: string[], model: number, baseline: number | undefined): EvalRow {
  const last = path[path.length - 1] ?? 'value';
  const norm = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, '');
  const known = KNOWN_EVAL_FIGURES.find((k) => k.match.test(norm(last)));
  const isLatency = /ms$/i.test(last) || path.some((p) => /latenc/i.test(p));
  // Where it was measured ("line start", "mid line"); groups the label already names are dropped.
  const where = path
    .slice(0, -1)
    .filter((p) => !/^(metrics|figures|results|completion|eval|model|nexttoken|next_token|latency)$/i.test(p))
    .map(humanize);
  const name = humanize(last.replace(/Ms$/, ''));
  const label = known ? known.label : isLatency ? `latency ${name}` : name;
  const row: EvalRow = {
    key: path.join('.'),
    label: where.length > 0 ? `${where.join(' · ')} · ${label}` : label,
    model,
    format: known?.format ?? (isLatency ? 'ms' : 'number'),
    better: known?.better ?? (isLatency ? 'lower' : 'higher'),
  };
  // Percentages may be stored as fractions (0.37) or on CodeXGLUE's 0–100 scale (37.0).
  if (row.format === 'percent' && (model > 1 || (baseline ?? 0) > 1)) row.format = 'score';
  if (baseline !== undefined) row.baseline = baseline;
  return row;
}

/** What the evaluation was measured on, in words: "2 held-out files · 40 lines · 2048 tokens". */
export function describeEval(evalJson: unknown): string | undefined {
  if (!isPlainObject(evalJson)) return undefined;
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const data = isPlainObject(evalJson.data) ? evalJson.data : {};
  const model = isPlainObject(evalJson.model) ? evalJson.model : {};
  const nextToken = isPlainObject(model.nextToken) ? model.nextToken : {};
  const parts: string[] = [];
  const files = num(data.valFiles);
  const lines = num(data.sampledLines);
  const tokens = num(nextToken.tokens);
  if (files !== undefined) parts.push(`${files} held-out file${files === 1 ? '' : 's'}`);
  if (lines !== undefined) parts.push(`${lines} lines`);
  if (tokens !== undefined) parts.push(`${tokens} tokens`);
  return parts.length > 0 ? parts.join(' · ') : undefined;
}

/** "lineStart" → "line start", "mid_line" → "mid line". */
export function humanize(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .toLowerCase()
    .trim();
}

/**
 * Latency histograms in eval.json, under any key whose path mentions latency: a { edges, counts }
 * object as models/src/eval/metrics.ts writes it (counts has one more entry than edges: below the first
 * edge, between edges, at or above the last), or raw samples in milliseconds, binned here.
 */
export function extractLatency(evalJson: unknown): LatencyHistogram[] {
  const out: LatencyHistogram[] = [];
  const visit = (value: unknown, path: string[], depth: number): void => {
    if (typeof value !== 'object' || value === null || depth > 5) return;
    const onLatencyPath = path.some((p) => /latenc/i.test(p));
    if (Array.isArray(value)) {
      if (onLatencyPath && value.length > 0 && isNumberArray(value)) {
        out.push({ label: latencyLabel(path), ...histogramOf(value) });
      }
      return;
    }
    const v = value as Record<string, unknown>;
    const edges = [v.edges, v.edgesMs].find(isNumberArray);
    if (onLatencyPath && isNumberArray(v.counts) && edges && v.counts.length === edges.length + 1) {
      out.push({ label: latencyLabel(path), binLabels: binLabels(edges), counts: v.counts });
      return;
    }
    for (const [key, child] of Object.entries(v)) visit(child, [...path, key], depth + 1);
  };
  visit(evalJson, [], 0);
  return out;
}

function isNumberArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x));
}

function latencyLabel(path: string[]): string {
  const words = path.filter((p) => !/^(latenc\w*|samples\w*|histogram|ms|eval|values)$/i.test(p)).map(humanize);
  return words.length > 0 ? words.join(' · ') : 'model';
}

/** The same bin edges models/src/eval/metrics.ts uses, so samples and stored histograms line up. */
export const LATENCY_EDGES_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/** "<1 ms", "1–2", …, "≥5000" for open-ended bins cut at ascending edges. */
export function binLabels(edges: number[]): string[] {
  if (edges.length === 0) return ['all'];
  return [`<${edges[0]}`, ...edges.slice(1).map((e, i) => `${edges[i]}–${e}`), `≥${edges[edges.length - 1]}`];
}

/** Counts samples into the open-ended bins of LATENCY_EDGES_MS. */
export function histogramOf(samples: number[], edges = LATENCY_EDGES_MS): { binLabels: string[]; counts: number[] } {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (const s of samples) {
    let bin = 0;
    while (bin < edges.length && s >= edges[bin]) bin++;
    counts[bin]++;
  }
  return { binLabels: binLabels(edges), counts };
}

/**
 * Everything the page needs about one run, from its model folder: metrics.jsonl as text or lines,
 * or its records already parsed (workspaceLm/metricsHistory), and eval.json.
 */
export function buildRunData(summary: RunSummary, metrics: string | unknown[] | undefined, evalJson: unknown): RunData {
  const { points, badLines } = parseMetrics(metrics ?? '');
  const data: RunData = { summary, points, badLines, evalRows: extractEvalRows(evalJson), latency: extractLatency(evalJson) };
  const evalNote = describeEval(evalJson);
  if (evalNote) data.evalNote = evalNote;
  return data;
}
