// The metrics panel's page, running inside the webview: the runs list, the loss and learning-rate
// curves (live while a run trains), the evaluation tables beside the n-gram baseline, the latency
// histogram and the local usage counters. It talks only to `acquireVsCodeApi()`, so a test can run
// it in any browser with a fake one. It reads no files and opens no connections: everything it
// shows arrives as a HostMessage (client/media/panelProtocol.ts).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './panel.css'; // after uPlot's, so the theme colours win
import {
  appendPoints,
  estimateEtaMs,
  type EvalRow,
  type HostMessage,
  type LatencyHistogram,
  type LiveStatus,
  type MetricsPoint,
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

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
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
function recentTokensPerSecond(points: MetricsPoint[]): number | undefined {
  const recent = points.slice(-20).filter((p) => p.tokensPerSecond > 0);
  return recent.length > 0 ? recent.reduce((a, p) => a + p.tokensPerSecond, 0) / recent.length : undefined;
}

/** Step-aligned columns for several runs: the union of their steps, null where a run has none. */
export function alignSeries(runs: { points: MetricsPoint[]; pick: (p: MetricsPoint) => number | undefined }[][]): uPlot.AlignedData {
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

export function startPanel(api: VsCodeApi, root: HTMLElement): { receive(message: HostMessage): void } {
  const restored = (api.getState() ?? {}) as SavedState;
  const state: SavedState = { selectedRunId: restored.selectedRunId, compareRunId: restored.compareRunId };
  let runs: RunSummary[] = [];
  let runsReceived = false;
  const runData = new Map<string, RunData>();
  const livePoints = new Map<string, MetricsPoint[]>(); // from workspaceLm/metrics, per run
  const requested = new Set<string>(); // runs asked for with showRun and not answered yet
  let live: LiveStatus | null = null;
  let usage: UsageCounts = { shown: 0, accepted: 0 };
  let error: string | undefined;
  let theme = readTheme();

  const lossChart = new Chart('chart-loss');
  const lrChart = new Chart('chart-lr');
  const latencyChart = new Chart('chart-latency');

  // Sections are created once and refilled, so the charts keep their canvases between updates.
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
  const curvesSection = el(
    'section',
    { id: 'curves', hidden: '' },
    el('h2', {}, 'Training'),
    statsBox,
    curvesNote,
    lossChart.element,
    lrChart.element,
  );
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

  emptyState.querySelector('button')!.addEventListener('click', () => api.postMessage({ type: 'train' }));

  function saveState(): void {
    api.setState({ selectedRunId: state.selectedRunId, compareRunId: state.compareRunId });
  }

  function select(runId: string | undefined, compareRunId: string | undefined): void {
    state.selectedRunId = runId;
    state.compareRunId = compareRunId !== runId ? compareRunId : undefined;
    saveState();
    for (const id of [state.selectedRunId, state.compareRunId]) {
      // Asked once: the answer (or an error) comes back as a message; re-asking on every runs
      // list would only repeat the read.
      if (id && !runData.has(id) && !requested.has(id)) {
        requested.add(id);
        api.postMessage({ type: 'showRun', runId: id });
      }
    }
    render();
  }

  /** The run's points from its file, followed by any live points newer than the file's last. */
  function pointsOf(runId: string): MetricsPoint[] {
    const fromFile = runData.get(runId)?.points ?? [];
    const fromLive = livePoints.get(runId) ?? [];
    const lastStep = fromFile.length > 0 ? fromFile[fromFile.length - 1].step : -Infinity;
    return appendPoints(fromFile, fromLive.filter((p) => p.step > lastStep));
  }

  function summaryOf(runId: string): RunSummary {
    return runs.find((r) => r.id === runId) ?? runData.get(runId)?.summary ?? { id: runId, name: runId, preset: '?', backend: '?', active: false };
  }

  // -------------------------------------------------------------------------------------------
  // Rendering

  function render(): void {
    errorBox.hidden = !error;
    errorBox.textContent = error ?? '';
    const nothing = runsReceived && runs.length === 0 && !live;
    emptyState.hidden = !nothing;
    renderLive();
    renderRuns();
    renderCurves();
    renderEval();
    renderUsage();
  }

  function renderLive(): void {
    liveBox.hidden = !live;
    if (!live) return;
    const name = summaryOf(live.runId).name;
    const parts = [live.maxSteps ? `step ${live.step} / ${live.maxSteps}` : `step ${live.step}`];
    if (live.tokensPerSecond) parts.push(`${formatCount(live.tokensPerSecond)} tokens/s`);
    if (live.state === 'running' && live.etaMs !== undefined) parts.push(`ETA ${formatDuration(live.etaMs)}`);
    const verb = { running: 'Training', done: 'Trained', failed: 'Training failed:', cancelled: 'Training stopped:' }[live.state];
    const progress = el('progress', { id: 'live-progress', max: String(live.maxSteps ?? 1), value: String(live.maxSteps ? live.step : 0) });
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

  function renderRuns(): void {
    runsSection.hidden = runs.length === 0;
    const now = Date.now();
    const items = runs.map((run) => {
      const role = run.id === state.selectedRunId ? 'selected' : run.id === state.compareRunId ? 'compare' : '';
      const meta: string[] = [run.preset, run.backend];
      if (run.files !== undefined) meta.push(`${formatCount(run.files)} files`);
      if (run.bytes !== undefined) meta.push(formatBytes(run.bytes));
      if (run.tokens !== undefined) meta.push(`${formatCount(run.tokens)} tokens`);
      if (run.step !== undefined) meta.push(run.maxSteps ? `${run.step}/${run.maxSteps} steps` : `${run.step} steps`);
      const comparing = run.id === state.compareRunId;
      const button = (action: string, label: string, title: string, disabled = false): HTMLButtonElement => {
        const b = el('button', { type: 'button', class: `secondary action-${action}`, 'data-action': action, title }, label);
        b.disabled = disabled;
        b.addEventListener('click', (event) => {
          event.stopPropagation();
          if (action === 'compare') select(state.selectedRunId, comparing ? undefined : run.id);
          else if (action === 'use') api.postMessage({ type: 'useRun', runId: run.id });
          else if (action === 'delete') api.postMessage({ type: 'deleteRun', runId: run.id });
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
          button('compare', comparing ? 'Stop comparing' : 'Compare', 'Overlay its curves on the shown run', run.id === state.selectedRunId),
          button('use', 'Use', 'Serve completions with this model', run.active),
          button('delete', 'Delete', 'Delete this model folder (asks first)'),
        ),
      );
      const show = (): void => select(run.id, state.compareRunId);
      item.addEventListener('click', show);
      item.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') show();
      });
      return item;
    });
    runsList.replaceChildren(...items);
  }

  function shownRuns(): string[] {
    return [state.selectedRunId, state.compareRunId].filter((id): id is string => !!id);
  }

  function renderCurves(): void {
    const ids = shownRuns();
    const withPoints = ids.filter((id) => pointsOf(id).length > 0);
    curvesSection.hidden = withPoints.length === 0;
    if (withPoints.length === 0) {
      lossChart.clear();
      lrChart.clear();
      return;
    }
    const comparing = ids.length > 1;
    const label = (kind: string, id: string): string => (comparing ? `${kind} · ${summaryOf(id).name}` : kind);
    const lossSeries: SeriesSpec[] = [];
    const lossFields = ids.map((id, i) => {
      const points = pointsOf(id);
      lossSeries.push({ label: label('train', id), colour: theme.series[2 * i], dash: i > 0 ? [6, 4] : undefined });
      lossSeries.push({ label: label('validation', id), colour: theme.series[2 * i + 1], dash: i > 0 ? [6, 4] : undefined, sparse: true });
      return [
        { points, pick: (p: MetricsPoint) => p.trainLoss },
        { points, pick: (p: MetricsPoint) => p.valLoss },
      ];
    });
    lossChart.draw({ title: 'Loss (nats/token)', xLabel: 'step', series: lossSeries, data: alignSeries(lossFields), yFormat: (v) => v.toFixed(2) }, theme);
    const lrSeries: SeriesSpec[] = ids.map((id, i) => ({ label: label('learning rate', id), colour: i === 0 ? theme.lr : theme.series[2], dash: i > 0 ? [6, 4] : undefined }));
    const lrFields = ids.map((id) => [{ points: pointsOf(id), pick: (p: MetricsPoint) => p.lr }]);
    lrChart.draw({ title: 'Learning rate', xLabel: 'step', series: lrSeries, data: alignSeries(lrFields), yFormat: (v) => (v === 0 ? '0' : v.toExponential(1)) }, theme);
    renderStats(ids[0]);
    const unreadable = ids.map((id) => runData.get(id)?.badLines ?? 0).reduce((a, b) => a + b, 0);
    curvesNote.hidden = unreadable === 0;
    curvesNote.textContent = `${unreadable} line${unreadable === 1 ? '' : 's'} of metrics.jsonl could not be read and ${unreadable === 1 ? 'is' : 'are'} left out.`;
  }

  function renderStats(runId: string): void {
    const points = pointsOf(runId);
    const last = points[points.length - 1];
    const vals = points.filter((p) => p.valLoss !== undefined).map((p) => p.valLoss!);
    const maxSteps = (live?.runId === runId ? live.maxSteps : undefined) ?? summaryOf(runId).maxSteps;
    const tokensPerSecond = recentTokensPerSecond(points);
    const isLive = live?.runId === runId && live.state === 'running';
    const eta = isLive ? estimateEtaMs(points, maxSteps) : undefined;
    const figure = (id: string, name: string, value: string): HTMLElement => el('div', { class: 'stat', id }, el('span', { class: 'stat-name' }, name), el('span', { class: 'stat-value' }, value));
    statsBox.replaceChildren(
      figure('stat-step', 'step', last ? (maxSteps ? `${last.step} / ${maxSteps}` : String(last.step)) : '—'),
      figure('stat-train', 'train loss', last ? last.trainLoss.toFixed(3) : '—'),
      figure('stat-val', 'best val loss', vals.length > 0 ? Math.min(...vals).toFixed(3) : '—'),
      figure('stat-tps', 'tokens/s', tokensPerSecond !== undefined ? formatCount(tokensPerSecond) : '—'),
      figure('stat-eta', isLive ? 'ETA' : 'time', isLive ? (eta !== undefined ? formatDuration(eta) : '…') : last ? formatDuration(last.elapsedMs) : '—'),
    );
  }

  function renderEval(): void {
    const ids = shownRuns().filter((id) => runData.has(id));
    evalSection.hidden = ids.length === 0;
    const tables = ids.map((id) => {
      const data = runData.get(id)!;
      const about = data.evalNote ? ` (${data.evalNote})` : '';
      const caption = el('caption', {}, ids.length > 1 ? `${data.summary.name}${about}` : `Against a token n-gram trained on the same files${about}`);
      if (data.evalRows.length === 0) {
        return el('div', { class: 'eval-block', 'data-run-id': id }, el('p', { class: 'note' }, `${data.summary.name}: not evaluated yet. Run '${EVALUATE_COMMAND_TITLE}'.`));
      }
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
    });
    evalTables.replaceChildren(...tables);

    const first = ids.length > 0 ? runData.get(ids[0])! : undefined;
    const histograms: LatencyHistogram[] = first?.latency ?? [];
    if (histograms.length === 0) {
      latencyChart.clear();
      latencyNote.textContent = 'No latency samples in this evaluation.';
      return;
    }
    latencyNote.textContent = ids.length > 1 ? `${first!.summary.name}, milliseconds per completion` : 'milliseconds per completion';
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

  function renderUsage(): void {
    const rate = usage.shown > 0 ? ` (${((100 * usage.accepted) / usage.shown).toFixed(0)}%)` : '';
    usageSection.replaceChildren(
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

  // -------------------------------------------------------------------------------------------
  // Messages from the extension

  /**
   * A run that starts training becomes the shown run: that is what the user is waiting to see.
   * (The comparison, if any, stays.)
   */
  function startsNewRun(runId: string): boolean {
    return live?.runId !== runId && state.selectedRunId !== runId;
  }

  function receive(message: HostMessage): void {
    switch (message.type) {
      case 'runs': {
        runs = [...message.runs].sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
        runsReceived = true;
        const known = new Set(runs.map((r) => r.id));
        for (const id of [...runData.keys()]) if (!known.has(id) && id !== live?.runId) runData.delete(id);
        let selected = state.selectedRunId && (known.has(state.selectedRunId) || state.selectedRunId === live?.runId) ? state.selectedRunId : undefined;
        const compare = state.compareRunId && known.has(state.compareRunId) ? state.compareRunId : undefined;
        selected ??= runs.find((r) => r.active)?.id ?? runs[0]?.id;
        select(selected, compare);
        return;
      }
      case 'runData':
        requested.delete(message.run.summary.id);
        runData.set(message.run.summary.id, message.run);
        error = undefined;
        render();
        return;
      case 'metrics': {
        const follow = startsNewRun(message.runId);
        livePoints.set(message.runId, appendPoints(livePoints.get(message.runId) ?? [], message.points));
        const points = pointsOf(message.runId);
        const last = points[points.length - 1];
        const maxSteps = message.maxSteps ?? (live?.runId === message.runId ? live.maxSteps : undefined) ?? summaryOf(message.runId).maxSteps;
        live = {
          runId: message.runId,
          state: 'running',
          step: last?.step ?? 0,
          maxSteps,
          tokensPerSecond: recentTokensPerSecond(points),
          etaMs: estimateEtaMs(points, maxSteps),
        };
        if (follow) select(message.runId, state.compareRunId);
        else render();
        return;
      }
      case 'live': {
        const follow = message.status?.state === 'running' && startsNewRun(message.status.runId);
        live = message.status;
        if (follow) select(message.status!.runId, state.compareRunId);
        else render();
        return;
      }
      case 'usage':
        usage = message.usage;
        renderUsage();
        return;
      case 'error':
        requested.clear(); // whatever failed may be asked for again
        error = message.message;
        render();
        return;
    }
  }

  // VS Code swaps body's class (vscode-light, vscode-dark, vscode-high-contrast) on theme change.
  new MutationObserver(() => {
    const next = readTheme();
    if (next.key !== theme.key) {
      theme = next;
      render();
    }
  }).observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });

  render();
  api.postMessage({ type: 'ready' });
  return { receive };
}

// In the webview (and in the tests' fake), start at once and listen for the extension's messages.
if (typeof acquireVsCodeApi === 'function') {
  const panel = startPanel(acquireVsCodeApi(), document.getElementById('app')!);
  window.addEventListener('message', (event: MessageEvent<HostMessage>) => panel.receive(event.data));
}
