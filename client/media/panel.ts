// The metrics panel's page, running inside the webview: the runs list, the loss and learning-rate
// curves (live while a run trains), the evaluation tables beside the n-gram baseline, the latency
// histogram and the local usage counters. It talks only to `acquireVsCodeApi()`, so a test can run
// it in any browser with a fake one. It reads no files and opens no connections: everything it
// shows arrives as a HostMessage (client/media/panelProtocol.ts).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './panel.css'; // after uPlot's, so the theme colours win
import { appendMetrics, type StepMetrics } from '../../models/src/train/metricsLog';
import {
  formatDuration,
  type EvalRow,
  type HostMessage,
  type LatencyHistogram,
  type LiveProgress,
  type LiveStatus,
  type PanelMessage,
  type RunData,
  type RunSummary,
  type UsageCounts,
} from './panelProtocol';

/** The part of the webview API the page uses; VS Code injects `acquireVsCodeApi`. */
export interface VsCodeApi {
  postMessage(message: PanelMessage): void;
  getState(): unknown;
  setState(state: SavedState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

/** What survives the view being hidden and shown again; the data itself is re-sent by the host. */
export interface SavedState {
  selectedRunId?: string;
  compareRunId?: string;
}

const TRAIN_COMMAND_TITLE = 'Workspace LM: Train Model on Workspace';
const EVALUATE_COMMAND_TITLE = 'Workspace LM: Evaluate Model';
const CHART_HEIGHT = 200;

// ---------------------------------------------------------------------------------------------
// Small DOM helpers: everything is built with createElement and textContent, never innerHTML,
// because run names and eval keys come from files on disk.

type Child = Node | string | null | undefined | false;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

function present(...children: Child[]): (Node | string)[] {
  return children.filter((c): c is Node | string => !!c);
}

function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(n));
}

function formatBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}

function formatAge(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const minutes = Math.round((now - t) / 60000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}

function formatFigure(value: number, format: EvalRow['format']): string {
  if (format === 'percent') return `${(value * 100).toFixed(1)}%`;
  if (format === 'score') return value.toFixed(1);
  if (format === 'ms') return `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
  const magnitude = Math.abs(value);
  return value.toFixed(magnitude >= 100 ? 1 : magnitude >= 10 ? 2 : 3);
}

// ---------------------------------------------------------------------------------------------
// Theme: the charts draw on canvas, which cannot use CSS variables, so colours are read from the
// computed style and the charts are rebuilt when VS Code switches theme (it changes body's class).

interface Theme {
  key: string;
  foreground: string;
  grid: string;
  font: string;
  series: string[]; // run A train, run A validation, run B train, run B validation
  lr: string;
}

function readTheme(): Theme {
  const style = getComputedStyle(document.body);
  const v = (name: string, fallback: string): string => style.getPropertyValue(name).trim() || fallback;
  const foreground = v('--vscode-foreground', '#616161');
  const family = v('--vscode-font-family', 'sans-serif');
  return {
    key: `${document.body.className}|${foreground}`,
    foreground,
    grid: v('--vscode-charts-lines', 'rgba(128, 128, 128, 0.35)'),
    font: `11px ${family}`,
    series: [
      v('--vscode-charts-blue', '#3794ff'),
      v('--vscode-charts-orange', '#d18616'),
      v('--vscode-charts-purple', '#b180d7'),
      v('--vscode-charts-green', '#89d185'),
    ],
    lr: v('--vscode-charts-green', '#89d185'),
  };
}

// ---------------------------------------------------------------------------------------------
// Charts: one uPlot per figure. Rebuilt when the set of series or the theme changes; otherwise
// new data is set in place, so live updates do not flicker.

interface SeriesSpec {
  label: string;
  colour: string;
  dash?: number[];
  sparse?: boolean; // validation: a point every evalInterval steps, joined across the gaps
  bars?: { align: -1 | 0 | 1; size: number };
}

interface ChartSpec {
  title: string;
  series: SeriesSpec[];
  data: uPlot.AlignedData;
  yFormat?: (v: number) => string;
  xLabels?: string[]; // categorical x axis (histogram bins)
  xLabel: string;
}

class Chart {
  private plot: uPlot | undefined;
  private signature = '';
  readonly element: HTMLElement;
  private readonly resizeObserver: ResizeObserver;

  constructor(readonly id: string) {
    this.element = el('div', { class: 'chart', id });
    this.resizeObserver = new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: CHART_HEIGHT }));
    this.resizeObserver.observe(this.element);
  }

  private width(): number {
    return Math.max(200, this.element.clientWidth || 300);
  }

  draw(spec: ChartSpec, theme: Theme): void {
    const signature = JSON.stringify([theme.key, spec.title, spec.series, spec.xLabels]);
    if (this.plot && signature === this.signature) {
      this.plot.setData(spec.data);
    } else {
      this.plot?.destroy();
      this.signature = signature;
      this.plot = new uPlot(this.options(spec, theme), spec.data, this.element);
    }
    // What the chart holds, for tests and screen readers: points per series, from uPlot's own data.
    const counts: Record<string, number> = {};
    spec.series.forEach((s, i) => {
      counts[s.label] = (this.plot!.data[i + 1] as (number | null | undefined)[]).filter((y) => y !== null && y !== undefined).length;
    });
    this.element.dataset.points = JSON.stringify(counts);
    this.element.setAttribute('aria-label', `${spec.title}: ${Object.entries(counts).map(([k, n]) => `${k} ${n} points`).join(', ')}`);
  }

  private options(spec: ChartSpec, theme: Theme): uPlot.Options {
    const axis = (label: string, values?: uPlot.Axis['values']): uPlot.Axis => ({
      label,
      stroke: theme.foreground,
      font: theme.font,
      labelFont: theme.font,
      labelSize: 18,
      grid: { stroke: theme.grid, width: 1 },
      ticks: { stroke: theme.grid, width: 1 },
      ...(values ? { values } : {}),
    });
    const xLabels = spec.xLabels;
    const yFormat = spec.yFormat;
    return {
      width: this.width(),
      height: CHART_HEIGHT,
      title: spec.title,
      scales: { x: xLabels ? { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] } : { time: false } },
      series: [
        { label: spec.xLabel, value: xLabels ? (_u, i) => (i === null ? '' : (xLabels[i] ?? '')) : undefined },
        ...spec.series.map<uPlot.Series>((s) => ({
          label: s.label,
          stroke: s.colour,
          width: s.bars ? 1 : 1.5,
          dash: s.dash,
          spanGaps: true,
          points: { show: s.sparse ? true : false, size: 5, fill: s.colour },
          ...(s.bars ? { fill: s.colour, paths: uPlot.paths.bars!({ size: [s.bars.size], align: s.bars.align }) } : {}),
          ...(yFormat ? { value: (_u: uPlot, v: number | null) => (v === null ? '—' : yFormat(v)) } : {}),
        })),
      ],
      axes: [
        axis(spec.xLabel, xLabels ? (_u, splits) => splits.map((i) => (Number.isInteger(i) ? (xLabels[i] ?? '') : '')) : undefined),
        axis('', yFormat ? (_u, splits) => splits.map(yFormat) : undefined),
      ],
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } },
    };
  }

  clear(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.signature = '';
    delete this.element.dataset.points;
  }
}

/** Throughput over the last 20 logged steps: one step's figure jumps with GC and eval pauses. */
function recentTokensPerSecond(points: StepMetrics[]): number | undefined {
  const recent = points.slice(-20).filter((p) => p.tokensPerSecond > 0);
  return recent.length > 0 ? recent.reduce((a, p) => a + p.tokensPerSecond, 0) / recent.length : undefined;
}

/** Step-aligned columns for several runs: the union of their steps, null where a run has none. */
export function alignSeries(runs: { points: StepMetrics[]; pick: (p: StepMetrics) => number | undefined }[][]): uPlot.AlignedData {
  const steps = [...new Set(runs.flatMap((fields) => fields[0]?.points.map((p) => p.step) ?? []))].sort((a, b) => a - b);
  const index = new Map(steps.map((s, i) => [s, i]));
  const columns: (number | null)[][] = [];
  for (const fields of runs) {
    for (const field of fields) {
      const column = new Array<number | null>(steps.length).fill(null);
      for (const p of field.points) column[index.get(p.step)!] = field.pick(p) ?? null;
      columns.push(column);
    }
  }
  return [steps, ...columns] as uPlot.AlignedData;
}

// ---------------------------------------------------------------------------------------------
// The panel

/** What the page knows. The data itself is re-sent by the host when the view is re-created. */
interface PanelState {
  saved: SavedState; // the shown and compared runs, kept across hide and show
  runs: RunSummary[]; // newest first
  runsReceived: boolean; // until then, no empty state: the list is on its way
  runData: Map<string, RunData>;
  livePoints: Map<string, StepMetrics[]>; // from workspaceLm/metrics, per run
  requested: Set<string>; // runs asked for with showRun and not answered yet
  live: LiveStatus | null;
  usage: UsageCounts;
  error: string | undefined;
  theme: Theme;
}

/** The page's sections: created once and refilled, so the charts keep their canvases between updates. */
interface PanelView {
  errorBox: HTMLElement;
  emptyState: HTMLElement;
  liveBox: HTMLElement;
  runsSection: HTMLElement;
  runsList: HTMLElement;
  curvesSection: HTMLElement;
  statsBox: HTMLElement;
  curvesNote: HTMLElement;
  lossChart: Chart;
  lrChart: Chart;
  evalSection: HTMLElement;
  evalTables: HTMLElement;
  latencyNote: HTMLElement;
  latencyChart: Chart;
  usageSection: HTMLElement;
}

interface Panel {
  api: VsCodeApi;
  state: PanelState;
  view: PanelView;
}

export function startPanel(api: VsCodeApi, root: HTMLElement): { receive(message: HostMessage): void } {
  const panel: Panel = { api, state: restoreState(api), view: buildView(root) };
  askForTrainingFromEmptyState(panel);
  redrawOnThemeChange(panel);
  render(panel);
  api.postMessage({ type: 'ready' });
  return { receive: (message) => receive(panel, message) };
}

function restoreState(api: VsCodeApi): PanelState {
  const restored = (api.getState() ?? {}) as SavedState;
  return {
    saved: { selectedRunId: restored.selectedRunId, compareRunId: restored.compareRunId },
    runs: [],
    runsReceived: false,
    runData: new Map(),
    livePoints: new Map(),
    requested: new Set(),
    live: null,
    usage: { shown: 0, accepted: 0 },
    error: undefined,
    theme: readTheme(),
  };
}

function buildView(root: HTMLElement): PanelView {
  const lossChart = new Chart('chart-loss');
  const lrChart = new Chart('chart-lr');
  const latencyChart = new Chart('chart-latency');
  const errorBox = el('div', { id: 'error', class: 'error', role: 'alert', hidden: '' });
  const emptyState = el(
    'section',
    { id: 'empty', hidden: '' },
    el('h2', {}, 'No models yet'),
    el('p', {}, `Run '${TRAIN_COMMAND_TITLE}' from the Command Palette to train a model on the code in this workspace. Its training curves and evaluation will show here.`),
    el('button', { id: 'train-button', type: 'button' }, 'Train Model on Workspace'),
  );
  const liveBox = el('section', { id: 'live', hidden: '' });
  const runsList = el('ul', { id: 'runs', class: 'runs', 'aria-label': 'Models trained in this workspace' });
  const runsSection = el('section', { id: 'runs-section', hidden: '' }, el('h2', {}, 'Runs'), runsList);
  const statsBox = el('div', { id: 'stats', class: 'stats' });
  const curvesNote = el('p', { id: 'curves-note', class: 'note', hidden: '' });
  const curvesSection = el('section', { id: 'curves', hidden: '' }, el('h2', {}, 'Training'), statsBox, curvesNote, lossChart.element, lrChart.element);
  const evalTables = el('div', { id: 'eval-tables', class: 'eval-tables' });
  const latencyNote = el('p', { class: 'note', id: 'latency-note' });
  const evalSection = el(
    'section',
    { id: 'eval', hidden: '' },
    el('h2', {}, 'Evaluation'),
    evalTables,
    el('h3', {}, 'Completion latency'),
    latencyNote,
    latencyChart.element,
  );
  const usageSection = el('section', { id: 'usage' });
  root.replaceChildren(errorBox, emptyState, liveBox, runsSection, curvesSection, evalSection, usageSection);
  return { errorBox, emptyState, liveBox, runsSection, runsList, curvesSection, statsBox, curvesNote, lossChart, lrChart, evalSection, evalTables, latencyNote, latencyChart, usageSection };
}

function askForTrainingFromEmptyState(panel: Panel): void {
  panel.view.emptyState.querySelector('button')!.addEventListener('click', () => panel.api.postMessage({ type: 'train' }));
}

/** VS Code swaps body's class (vscode-light, vscode-dark, vscode-high-contrast) on theme change. */
function redrawOnThemeChange(panel: Panel): void {
  new MutationObserver(() => {
    const next = readTheme();
    if (next.key !== panel.state.theme.key) {
      panel.state.theme = next;
      render(panel);
    }
  }).observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });
}

// ---------------------------------------------------------------------------------------------
// Rendering: every section from the state, in page order

function render(panel: Panel): void {
  const { state, view } = panel;
  view.errorBox.hidden = !state.error;
  view.errorBox.textContent = state.error ?? '';
  view.emptyState.hidden = !(state.runsReceived && state.runs.length === 0 && !state.live);
  renderLive(panel);
  renderRuns(panel);
  renderCurves(panel);
  renderEval(panel);
  renderUsage(panel);
}

function renderLive(panel: Panel): void {
  const { live } = panel.state;
  const liveBox = panel.view.liveBox;
  liveBox.hidden = !live;
  if (!live) return;
  const name = summaryOf(panel, live.runId).name;
  const parts = [live.maxSteps ? `step ${live.step} / ${live.maxSteps}` : `step ${live.step}`];
  if (live.maxMinutes) parts.push(`${live.maxMinutes}-min budget`);
  if (live.tokensPerSecond) parts.push(`${formatCount(live.tokensPerSecond)} tokens/s`);
  if (live.state === 'running' && live.etaMs !== undefined) parts.push(`ETA ${formatDuration(live.etaMs)}`);
  const verb = { running: 'Training', done: 'Trained', failed: 'Training failed:', cancelled: 'Training stopped:' }[live.state];
  // The server's percentage follows whichever budget ends the run first; steps alone are the fallback.
  const percentage = live.percentage ?? (live.maxSteps ? (100 * live.step) / live.maxSteps : 0);
  const progress = el('progress', { id: 'live-progress', max: '100', value: String(Math.round(percentage)) });
  liveBox.className = `live ${live.state}`;
  liveBox.replaceChildren(
    ...present(
      el('div', { class: 'live-title' }, `${verb} ${name}`),
      el('div', { id: 'live-figures', class: 'live-figures' }, parts.join(' · ')),
      live.message ? el('div', { class: 'note' }, live.message) : null,
      live.state === 'running' ? progress : null,
    ),
  );
}

function renderRuns(panel: Panel): void {
  const { runs } = panel.state;
  panel.view.runsSection.hidden = runs.length === 0;
  const now = Date.now();
  panel.view.runsList.replaceChildren(...runs.map((run) => runItem(panel, run, now)));
}

/** One entry of the runs list: name and badges, what it was trained on, and its actions. */
function runItem(panel: Panel, run: RunSummary, now: number): HTMLElement {
  const { saved } = panel.state;
  const role = run.id === saved.selectedRunId ? 'selected' : run.id === saved.compareRunId ? 'compare' : '';
  const meta: string[] = [run.preset, run.backend];
  if (run.files !== undefined) meta.push(`${formatCount(run.files)} files`);
  if (run.bytes !== undefined) meta.push(formatBytes(run.bytes));
  if (run.tokens !== undefined) meta.push(`${formatCount(run.tokens)} tokens`);
  if (run.step !== undefined) meta.push(run.maxSteps ? `${run.step}/${run.maxSteps} steps` : `${run.step} steps`);
  const comparing = run.id === saved.compareRunId;
  const button = (action: string, label: string, title: string, onClick: () => void, disabled = false): HTMLButtonElement => {
    const b = el('button', { type: 'button', class: `secondary action-${action}`, 'data-action': action, title }, label);
    b.disabled = disabled;
    b.addEventListener('click', (event) => {
      event.stopPropagation();
      onClick();
    });
    return b;
  };
  const item = el(
    'li',
    { class: `run ${role}`, 'data-run-id': run.id, tabindex: '0', 'aria-selected': String(role === 'selected') },
    el(
      'div',
      { class: 'run-head' },
      role ? el('span', { class: `swatch ${role}`, title: role === 'selected' ? 'shown (solid lines)' : 'compared (dashed lines)' }) : null,
      el('span', { class: 'run-name' }, run.name),
      run.active ? el('span', { class: 'badge', title: 'serves completions' }, 'active') : null,
      run.state && run.state !== 'ready' ? el('span', { class: `badge state-${run.state}`, title: run.reason ?? run.state }, run.state) : null,
    ),
    el('div', { class: 'run-meta' }, meta.join(' · ')),
    el(
      'div',
      { class: 'run-meta' },
      run.createdAt ? el('span', { class: 'run-when', title: run.createdAt }, formatAge(run.createdAt, now)) : null,
      run.parent ? ` · fine-tuned from ${run.parent}` : null,
      run.bestValLoss !== undefined ? ` · best val loss ${run.bestValLoss.toFixed(3)}` : null,
    ),
    el(
      'div',
      { class: 'run-actions' },
      button('compare', comparing ? 'Stop comparing' : 'Compare', 'Overlay its curves on the shown run', () => select(panel, panel.state.saved.selectedRunId, comparing ? undefined : run.id), run.id === saved.selectedRunId),
      button('use', 'Use', 'Serve completions with this model', () => panel.api.postMessage({ type: 'useRun', runId: run.id }), run.active),
      button('delete', 'Delete', 'Delete this model folder (asks first)', () => panel.api.postMessage({ type: 'deleteRun', runId: run.id })),
    ),
  );
  const show = (): void => select(panel, run.id, panel.state.saved.compareRunId);
  item.addEventListener('click', show);
  item.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') show();
  });
  return item;
}

function renderCurves(panel: Panel): void {
  const { state, view } = panel;
  const ids = shownRuns(panel);
  const withPoints = ids.filter((id) => pointsOf(panel, id).length > 0);
  view.curvesSection.hidden = withPoints.length === 0;
  if (withPoints.length === 0) {
    view.lossChart.clear();
    view.lrChart.clear();
    return;
  }
  const { theme } = state;
  const comparing = ids.length > 1;
  const label = (kind: string, id: string): string => (comparing ? `${kind} · ${summaryOf(panel, id).name}` : kind);
  const lossSeries: SeriesSpec[] = [];
  const lossFields = ids.map((id, i) => {
    const points = pointsOf(panel, id);
    lossSeries.push({ label: label('train', id), colour: theme.series[2 * i], dash: i > 0 ? [6, 4] : undefined });
    lossSeries.push({ label: label('validation', id), colour: theme.series[2 * i + 1], dash: i > 0 ? [6, 4] : undefined, sparse: true });
    return [
      { points, pick: (p: StepMetrics) => p.trainLoss },
      { points, pick: (p: StepMetrics) => p.valLoss },
    ];
  });
  view.lossChart.draw({ title: 'Loss (nats/token)', xLabel: 'step', series: lossSeries, data: alignSeries(lossFields), yFormat: (v) => v.toFixed(2) }, theme);
  const lrSeries: SeriesSpec[] = ids.map((id, i) => ({ label: label('learning rate', id), colour: i === 0 ? theme.lr : theme.series[2], dash: i > 0 ? [6, 4] : undefined }));
  const lrFields = ids.map((id) => [{ points: pointsOf(panel, id), pick: (p: StepMetrics) => p.lr }]);
  view.lrChart.draw({ title: 'Learning rate', xLabel: 'step', series: lrSeries, data: alignSeries(lrFields), yFormat: (v) => (v === 0 ? '0' : v.toExponential(1)) }, theme);
  renderStats(panel, ids[0]);
  const unreadable = ids.map((id) => state.runData.get(id)?.badLines ?? 0).reduce((a, b) => a + b, 0);
  view.curvesNote.hidden = unreadable === 0;
  view.curvesNote.textContent = `${unreadable} line${unreadable === 1 ? '' : 's'} of metrics.jsonl could not be read and ${unreadable === 1 ? 'is' : 'are'} left out.`;
}

function renderStats(panel: Panel, runId: string): void {
  const { live } = panel.state;
  const points = pointsOf(panel, runId);
  const last = points[points.length - 1];
  const vals = points.filter((p) => p.valLoss !== undefined).map((p) => p.valLoss!);
  const maxSteps = (live?.runId === runId ? live.maxSteps : undefined) ?? summaryOf(panel, runId).maxSteps;
  const tokensPerSecond = recentTokensPerSecond(points);
  const isLive = live?.runId === runId && live.state === 'running';
  const eta = isLive ? live.etaMs : undefined;
  const figure = (id: string, name: string, value: string): HTMLElement => el('div', { class: 'stat', id }, el('span', { class: 'stat-name' }, name), el('span', { class: 'stat-value' }, value));
  panel.view.statsBox.replaceChildren(
    figure('stat-step', 'step', last ? (maxSteps ? `${last.step} / ${maxSteps}` : String(last.step)) : '—'),
    figure('stat-train', 'train loss', last ? last.trainLoss.toFixed(3) : '—'),
    figure('stat-val', 'best val loss', vals.length > 0 ? Math.min(...vals).toFixed(3) : '—'),
    figure('stat-tps', 'tokens/s', tokensPerSecond !== undefined ? formatCount(tokensPerSecond) : '—'),
    figure('stat-eta', isLive ? 'ETA' : 'time', isLive ? (eta !== undefined ? formatDuration(eta) : '…') : last ? formatDuration(last.elapsedMs) : '—'),
  );
}

function renderEval(panel: Panel): void {
  const { runData } = panel.state;
  const ids = shownRuns(panel).filter((id) => runData.has(id));
  panel.view.evalSection.hidden = ids.length === 0;
  panel.view.evalTables.replaceChildren(...ids.map((id) => evalBlock(runData.get(id)!, ids.length > 1)));
  renderLatency(panel, ids.length > 0 ? runData.get(ids[0])! : undefined, ids.length > 1);
}

/** A run's evaluation table, its figures beside the n-gram's; or a note that it has none yet. */
function evalBlock(data: RunData, comparing: boolean): HTMLElement {
  const id = data.summary.id;
  if (data.evalRows.length === 0) {
    return el('div', { class: 'eval-block', 'data-run-id': id }, el('p', { class: 'note' }, `${data.summary.name}: not evaluated yet. Run '${EVALUATE_COMMAND_TITLE}'.`));
  }
  const about = data.evalNote ? ` (${data.evalNote})` : '';
  const caption = el('caption', {}, comparing ? `${data.summary.name}${about}` : `Against a token n-gram trained on the same files${about}`);
  const body = data.evalRows.map((row) => {
    const modelWins = row.baseline !== undefined && (row.better === 'lower' ? row.model < row.baseline : row.model > row.baseline);
    const baselineWins = row.baseline !== undefined && (row.better === 'lower' ? row.baseline < row.model : row.baseline > row.model);
    return el(
      'tr',
      { 'data-key': row.key },
      el('th', { scope: 'row' }, row.label),
      el('td', { class: `model${modelWins ? ' wins' : ''}` }, formatFigure(row.model, row.format)),
      el('td', { class: `baseline${baselineWins ? ' wins' : ''}` }, row.baseline !== undefined ? formatFigure(row.baseline, row.format) : '—'),
    );
  });
  return el(
    'div',
    { class: 'eval-block', 'data-run-id': id },
    el(
      'table',
      { class: 'eval-table' },
      caption,
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'figure'), el('th', { scope: 'col' }, 'model'), el('th', { scope: 'col' }, 'n-gram'))),
      el('tbody', {}, ...body),
    ),
  );
}

/** The latency histogram of the shown run (the first, when comparing), model and baseline side by side. */
function renderLatency(panel: Panel, first: RunData | undefined, comparing: boolean): void {
  const { latencyChart, latencyNote } = panel.view;
  const histograms: LatencyHistogram[] = first?.latency ?? [];
  if (histograms.length === 0) {
    latencyChart.clear();
    latencyNote.textContent = 'No latency samples in this evaluation.';
    return;
  }
  const theme = panel.state.theme;
  latencyNote.textContent = comparing ? `${first!.summary.name}, milliseconds per completion` : 'milliseconds per completion';
  const labels = histograms[0].binLabels;
  const width = 0.8 / histograms.length;
  const series: SeriesSpec[] = histograms.map((h, i) => ({
    label: h.label,
    colour: theme.series[(2 * i) % theme.series.length],
    bars: { size: width, align: histograms.length === 1 ? 0 : i === 0 ? 1 : -1 },
  }));
  const data = [labels.map((_, i) => i), ...histograms.map((h) => labels.map((_, i) => h.counts[i] ?? 0))] as uPlot.AlignedData;
  latencyChart.draw({ title: 'Latency histogram', xLabel: 'ms', series, data, xLabels: labels, yFormat: (v) => String(Math.round(v)) }, theme);
}

function renderUsage(panel: Panel): void {
  const { usage } = panel.state;
  const rate = usage.shown > 0 ? ` (${((100 * usage.accepted) / usage.shown).toFixed(0)}%)` : '';
  panel.view.usageSection.replaceChildren(
    el('h2', {}, 'Your completions'),
    el(
      'p',
      { id: 'usage-counts' },
      el('span', { id: 'usage-shown' }, String(usage.shown)),
      ' shown · ',
      el('span', { id: 'usage-accepted' }, String(usage.accepted)),
      ` accepted${rate}`,
    ),
    el('p', { class: 'note' }, 'Counted on this machine only and never sent anywhere.'),
  );
}

// ---------------------------------------------------------------------------------------------
// Messages from the extension

function receive(panel: Panel, message: HostMessage): void {
  switch (message.type) {
    case 'runs':
      if (message.reread) {
        panel.state.runData.clear();
        panel.state.requested.clear();
      }
      return receiveRuns(panel, message.runs);
    case 'runData':
      return receiveRunData(panel, message.run);
    case 'metrics':
      return receiveLivePoints(panel, message.runId, message.points, message.progress);
    case 'live':
      return receiveLiveStatus(panel, message.status);
    case 'usage':
      panel.state.usage = message.usage;
      return renderUsage(panel);
    case 'error':
      panel.state.requested.clear(); // whatever failed may be asked for again
      panel.state.error = message.message;
      return render(panel);
  }
}

/** A new runs list: forget runs that are gone, keep the shown ones if they are still there. */
function receiveRuns(panel: Panel, runs: RunSummary[]): void {
  const { state } = panel;
  state.runs = [...runs].sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
  state.runsReceived = true;
  const known = new Set(state.runs.map((r) => r.id));
  for (const id of [...state.runData.keys()]) if (!known.has(id) && id !== state.live?.runId) state.runData.delete(id);
  const { selectedRunId, compareRunId } = state.saved;
  let selected = selectedRunId && (known.has(selectedRunId) || selectedRunId === state.live?.runId) ? selectedRunId : undefined;
  const compare = compareRunId && known.has(compareRunId) ? compareRunId : undefined;
  selected ??= state.runs.find((r) => r.active)?.id ?? state.runs[0]?.id;
  select(panel, selected, compare);
}

function receiveRunData(panel: Panel, run: RunData): void {
  panel.state.requested.delete(run.summary.id);
  panel.state.runData.set(run.summary.id, run);
  panel.state.error = undefined;
  render(panel);
}

/** Points of a run training now: drawn at once, and that run is shown if it is new. */
function receiveLivePoints(panel: Panel, runId: string, incoming: StepMetrics[], progress: LiveProgress | undefined): void {
  const { state } = panel;
  const follow = startsNewRun(panel, runId);
  state.livePoints.set(runId, appendMetrics(state.livePoints.get(runId) ?? [], incoming));
  const points = pointsOf(panel, runId);
  const last = points[points.length - 1];
  const previous = state.live?.runId === runId ? state.live : undefined;
  state.live = {
    runId,
    state: 'running',
    step: last?.step ?? 0,
    maxSteps: progress?.maxSteps ?? previous?.maxSteps ?? summaryOf(panel, runId).maxSteps,
    maxMinutes: progress?.maxMinutes ?? previous?.maxMinutes,
    percentage: progress?.percentage ?? previous?.percentage,
    tokensPerSecond: recentTokensPerSecond(points),
    etaMs: progress ? (progress.etaMs ?? undefined) : previous?.etaMs,
  };
  if (follow) select(panel, runId, state.saved.compareRunId);
  else render(panel);
}

function receiveLiveStatus(panel: Panel, status: LiveStatus | null): void {
  const follow = status?.state === 'running' && startsNewRun(panel, status.runId);
  panel.state.live = status;
  if (follow) select(panel, status!.runId, panel.state.saved.compareRunId);
  else render(panel);
}

/** Shows a run (and one to compare it with), asking the extension once for data it lacks. */
function select(panel: Panel, runId: string | undefined, compareRunId: string | undefined): void {
  const { state, api } = panel;
  const saved = state.saved;
  saved.selectedRunId = runId;
  saved.compareRunId = compareRunId !== runId ? compareRunId : undefined;
  api.setState({ selectedRunId: saved.selectedRunId, compareRunId: saved.compareRunId });
  for (const id of [saved.selectedRunId, saved.compareRunId]) {
    // Asked once: the answer (or an error) comes back as a message; re-asking on every runs
    // list would only repeat the read.
    if (id && !state.runData.has(id) && !state.requested.has(id)) {
      state.requested.add(id);
      api.postMessage({ type: 'showRun', runId: id });
    }
  }
  render(panel);
}

/**
 * A run that starts training becomes the shown run: that is what the user is waiting to see.
 * (The comparison, if any, stays.)
 */
function startsNewRun(panel: Panel, runId: string): boolean {
  return panel.state.live?.runId !== runId && panel.state.saved.selectedRunId !== runId;
}

// ---------------------------------------------------------------------------------------------
// What the state says about a run

function shownRuns(panel: Panel): string[] {
  return [panel.state.saved.selectedRunId, panel.state.saved.compareRunId].filter((id): id is string => !!id);
}

/** The run's points from its file, followed by any live points newer than the file's last. */
function pointsOf(panel: Panel, runId: string): StepMetrics[] {
  const fromFile = panel.state.runData.get(runId)?.points ?? [];
  const fromLive = panel.state.livePoints.get(runId) ?? [];
  const lastStep = fromFile.length > 0 ? fromFile[fromFile.length - 1].step : -Infinity;
  return appendMetrics(fromFile, fromLive.filter((p) => p.step > lastStep));
}

function summaryOf(panel: Panel, runId: string): RunSummary {
  const { runs, runData } = panel.state;
  return runs.find((r) => r.id === runId) ?? runData.get(runId)?.summary ?? { id: runId, name: runId, preset: '?', backend: '?', active: false };
}

// In the webview (and in the tests' fake), start at once and listen for the extension's messages.
if (typeof acquireVsCodeApi === 'function') {
  const panel = startPanel(acquireVsCodeApi(), document.getElementById('app')!);
  window.addEventListener('message', (event: MessageEvent<HostMessage>) => panel.receive(event.data));
}
