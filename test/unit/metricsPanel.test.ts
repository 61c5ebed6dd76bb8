// Tests of the metrics panel: the functions that turn a model folder into panel data (on a recorded
// run in test/fixtures/panel), the extension-side provider against a fake `vscode` module, and the
// page itself in headless Chromium with a fake acquireVsCodeApi — charts, live points, eval table,
// empty state, theme screenshots, and that no request leaves the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';
import Module from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  buildRunData,
  describeEval,
  evalRows,
  formatDuration,
  latencyHistograms,
  parsePanelMessage,
  renderPanelHtml,
  summarizeModelInfo,
  summarizeRun,
  withConfig,
  type HostMessage,
  type PanelMessage,
  type RunData,
  type RunSummary,
} from '../../client/media/panelProtocol';
import type { SavedState } from '../../client/media/panel'; // also type-checks the page script
import type { EvalReport, MetricsNotification, ModelInfo, StatusNotification } from '../../protocol/src/customMessages';
import { readMetricsLog, type StepMetrics } from '../../models/src/train/metricsLog';

const repoRoot = path.resolve(__dirname, '..', '..');
const fixtureDir = path.join(repoRoot, 'test', 'fixtures', 'panel');
const fixture = {
  metrics: readFileSync(path.join(fixtureDir, 'metrics.jsonl'), 'utf8'),
  // An eval.json written before the panel read it by type: same format version, same shape.
  evalReport: JSON.parse(readFileSync(path.join(fixtureDir, 'eval.json'), 'utf8')) as EvalReport,
  config: JSON.parse(readFileSync(path.join(fixtureDir, 'config.json'), 'utf8')) as unknown,
};
const FIXTURE_STEPS = 60; // lines in metrics.jsonl
const FIXTURE_VAL_POINTS = 3; // every evalInterval = 20 steps

// ---------------------------------------------------------------------------------------------
// Model folder files → panel data (metrics.jsonl itself is read by models/src/train/metricsLog.ts)

test('durations read as seconds, minutes and seconds, hours and minutes', () => {
  assert.equal(formatDuration(44_600), '45 s');
  assert.equal(formatDuration(200_000), '3 min 20 s');
  assert.equal(formatDuration(600_000), '10 min');
  assert.equal(formatDuration(7_500_000), '2 h 5 min');
});

test('eval.json gives a row per figure with the baseline beside it, in a fixed order', () => {
  const rows = evalRows(fixture.evalReport);
  const byKey = new Map(rows.map((r) => [r.key, r]));
  assert.deepEqual(rows.slice(0, 4).map((r) => r.label), ['loss (nats/token)', 'perplexity', 'top-1 accuracy', 'top-5 accuracy']);
  assert.deepEqual(byKey.get('nextToken.top1'), { key: 'nextToken.top1', label: 'top-1 accuracy', model: 0.07892628205128205, baseline: 0.33533653846153844, format: 'percent', better: 'higher' });
  assert.equal(byKey.get('lineStart.exactMatch')?.label, 'line start · exact match');
  assert.equal(byKey.get('midLine.editSimilarity')?.label, 'mid line · edit similarity');
  assert.equal(byKey.get('midLine.editSimilarity')?.format, 'score', 'edit similarity is on the 0–100 scale');
  assert.deepEqual([byKey.get('latency.p95Ms')?.model, byKey.get('latency.p95Ms')?.baseline, byKey.get('latency.p95Ms')?.format], [13.165007400000214, 1.3835168499997734, 'ms']);
  assert.equal(rows.filter((r) => /count|tokens/.test(r.key)).length, 0, 'sample sizes are not figures');
  assert.equal(rows.length, 12); // 4 next-token, 2 × 2 line completion, 4 latency
  assert.deepEqual(evalRows(null), [], 'not evaluated: no rows');
  // A figure that was not measured (no windows: null) has no row; a baseline's null leaves its cell empty.
  const unmeasured: EvalReport = {
    ...fixture.evalReport,
    model: { ...fixture.evalReport.model, nextToken: { ...fixture.evalReport.model.nextToken, loss: null } },
    baseline: { ...fixture.evalReport.baseline, nextToken: { ...fixture.evalReport.baseline.nextToken, top5: null } },
  };
  const rowsOfUnmeasured = evalRows(unmeasured);
  assert.equal(rowsOfUnmeasured.some((r) => r.key === 'nextToken.loss'), false);
  assert.equal(rowsOfUnmeasured.find((r) => r.key === 'nextToken.top5')?.baseline, undefined);
  assert.equal(describeEval(fixture.evalReport), '2 held-out files · 136 lines · 2496 tokens');
  // Bits per byte, where the report has it (the fixture predates it), sits beside the loss.
  const withBits: EvalReport = {
    ...fixture.evalReport,
    model: { ...fixture.evalReport.model, nextToken: { ...fixture.evalReport.model.nextToken, bytes: 9000, bitsPerByte: 1.62 } },
    baseline: { ...fixture.evalReport.baseline, nextToken: { ...fixture.evalReport.baseline.nextToken, bytes: 9000, bitsPerByte: 1.31 } },
  };
  const rowsWithBits = evalRows(withBits);
  assert.equal(rowsWithBits.length, 13);
  assert.deepEqual(rowsWithBits[1], { key: 'nextToken.bitsPerByte', label: 'bits per byte', model: 1.62, baseline: 1.31, format: 'number', better: 'lower' });
});

test('latency histograms of the model and the baseline', () => {
  const histograms = latencyHistograms(fixture.evalReport);
  assert.deepEqual(histograms.map((h) => h.label), ['model', 'baseline']);
  assert.equal(histograms[0].binLabels.length, 13);
  assert.equal(histograms[0].binLabels[0], '<1');
  assert.equal(histograms[0].binLabels[12], '≥5000');
  assert.equal(histograms[0].counts.reduce((a, b) => a + b, 0), 272, 'one per line completion: 136 lines × 2 cursors');
  assert.deepEqual(latencyHistograms(null), []);
});

test('a run summary from config.json and from the server models list', () => {
  const fromConfig = summarizeRun('tiny-sample', fixture.config, true);
  assert.deepEqual(fromConfig, {
    id: 'tiny-sample',
    name: 'tiny-sample',
    preset: 'tiny',
    backend: 'wasm (CPU (1 thread, wasm SIMD))',
    active: true,
    files: 18, // 16 train + 2 val
    tokens: 17077, // 14493 + 2584
    bytes: 33469,
    createdAt: '2026-11-24T14:48:18.821Z',
    step: 60,
    maxSteps: 60,
    bestValLoss: 4.894416570663452,
  });
  const info: ModelInfo = { name: 'ft-1', dir: '/m/ft-1', state: 'training', preset: 'small', parent: 'tiny-sample', backend: 'webgpu (llvmpipe)', dataBytes: 2048, step: 3, bestValLoss: null, active: false };
  const fromServer = summarizeModelInfo(info);
  assert.deepEqual(fromServer, { id: 'ft-1', name: 'ft-1', preset: 'small', backend: 'webgpu (llvmpipe)', active: false, state: 'training', parent: 'tiny-sample', bytes: 2048, step: 3 });
  assert.equal(withConfig(fromServer, fixture.config).maxSteps, 60, 'config.json fills the planned steps');
  assert.equal(withConfig(fromServer, fixture.config).name, 'ft-1', 'the server name wins');
  assert.equal(summarizeRun('x', 'garbage').preset, '?');
});

test('the page HTML: strict CSP with the nonce, nothing inline, values escaped', () => {
  const nonce = 'Q2hlY2tpbmcgdGhlIG5vbmNlIQ==';
  const html = renderPanelHtml({ cspSource: 'https://file+.vscode-resource.vscode-cdn.net', nonce, scriptUri: 'https://x/panel.js?a=1&b=2', styleUri: 'https://x/panel.css' });
  const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)![1];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, new RegExp(`script-src 'nonce-${nonce.replace(/[+/=]/g, '\\$&')}'`));
  assert.match(csp, /style-src https:\/\/file\+\.vscode-resource\.vscode-cdn\.net;/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.equal((html.match(/<script/g) ?? []).length, 1);
  assert.match(html, new RegExp(`<script nonce="${nonce.replace(/[+/=]/g, '\\$&')}" src="https://x/panel.js\\?a=1&amp;b=2">`));
  assert.doesNotMatch(html, /style="/);
  assert.throws(() => renderPanelHtml({ cspSource: 'x', nonce: 'abc', scriptUri: 's', styleUri: 't' }), /nonce must be at least 16 base64 characters, got "abc"/);
});

test('messages from the page are checked', () => {
  assert.deepEqual(parsePanelMessage({ type: 'showRun', runId: 'a', extra: 1 }), { type: 'showRun', runId: 'a' });
  assert.deepEqual(parsePanelMessage({ type: 'ready' }), { type: 'ready' });
  assert.equal(parsePanelMessage({ type: 'deleteRun' }), undefined);
  assert.equal(parsePanelMessage({ type: 'deleteRun', runId: '' }), undefined);
  assert.equal(parsePanelMessage({ type: 'rm -rf' }), undefined);
  assert.equal(parsePanelMessage('ready'), undefined);
});

// ---------------------------------------------------------------------------------------------
// The provider, against a fake `vscode` module (only what metricsView.ts touches)

interface FakeDisposable {
  dispose(): void;
}

class FakeEventEmitter<T> {
  private listeners: ((value: T) => unknown)[] = [];
  event = (listener: (value: T) => unknown): FakeDisposable => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(value: T): unknown[] {
    return this.listeners.map((l) => l(value));
  }
  dispose(): void {
    this.listeners = [];
  }
}

const fakeVscode = {
  warningAnswer: undefined as string | undefined,
  warnings: [] as { message: string; options: unknown }[],
  executed: [] as string[],
  Uri: {
    joinPath: (base: { path: string }, ...parts: string[]) => ({ path: [base.path, ...parts].join('/') }),
  },
  EventEmitter: FakeEventEmitter,
  window: {
    showWarningMessage: async (message: string, options: unknown) => {
      fakeVscode.warnings.push({ message, options });
      return fakeVscode.warningAnswer;
    },
    registerWebviewViewProvider: () => ({ dispose() {} }),
  },
  registered: new Map<string, (...args: unknown[]) => unknown>(),
  commands: {
    executeCommand: async (id: string, ...args: unknown[]) => {
      fakeVscode.executed.push([id, ...args].join(' '));
    },
    registerCommand: (id: string, handler: (...args: unknown[]) => unknown) => {
      fakeVscode.registered.set(id, handler);
      return { dispose: () => fakeVscode.registered.delete(id) };
    },
  },
};

function loadMetricsView(): typeof import('../../client/src/metricsView') {
  const loader = Module as unknown as { _load(request: string, ...rest: unknown[]): unknown };
  const original = loader._load;
  loader._load = function (request: string, ...rest: unknown[]) {
    return request === 'vscode' ? fakeVscode : original.call(this, request, ...rest);
  };
  try {
    return require('../../client/src/metricsView') as typeof import('../../client/src/metricsView');
  } finally {
    loader._load = original;
  }
}

/** The message, checked to be of the given type. */
function messageOf<T extends HostMessage['type']>(message: HostMessage | undefined, type: T): Extract<HostMessage, { type: T }> {
  assert.equal(message?.type, type);
  return message as Extract<HostMessage, { type: T }>;
}

function fakeView() {
  const received = new FakeEventEmitter<unknown>();
  const posted: HostMessage[] = [];
  const view = {
    webview: {
      options: {} as { enableScripts?: boolean; localResourceRoots?: { path: string }[] },
      html: '',
      cspSource: 'https://file+.vscode-resource.vscode-cdn.net',
      asWebviewUri: (uri: { path: string }) => ({ toString: () => `https://file+.vscode-resource.vscode-cdn.net${uri.path}` }),
      postMessage: async (message: HostMessage) => {
        posted.push(message);
        return true;
      },
      onDidReceiveMessage: received.event,
    },
    onDidDispose: () => ({ dispose() {} }),
  };
  // What the page would send; resolves when the provider has handled it.
  const send = async (message: unknown): Promise<void> => {
    await Promise.all(received.fire(message));
  };
  return { view, posted, send };
}

test('provider: page shell, runs on ready, run data, delete only after confirmation, live metrics, usage', async () => {
  const { MetricsViewProvider, UsageCounter, makeNonce } = loadMetricsView();
  const models: ModelInfo[] = [
    { name: 'tiny-sample', dir: '/m/tiny-sample', state: 'ready', preset: 'tiny', backend: 'wasm (CPU)', dataTokens: 17077, step: 60, bestValLoss: 4.8944, active: true, createdAt: '2026-11-24T14:48:18.821Z' },
  ];
  const calls: string[] = [];
  const metricsEvents = new FakeEventEmitter<MetricsNotification.Params>();
  const memento = new Map<string, unknown>();
  const usage = new UsageCounter({ get: (key: string) => memento.get(key), update: async (key: string, value: unknown) => void memento.set(key, value), keys: () => [...memento.keys()] } as never);
  const provider = new MetricsViewProvider({ path: '/ext' } as never, {
    listRuns: async () => models,
    readRun: async (runId) => {
      calls.push(`read ${runId}`);
      return { config: fixture.config, ...readMetricsLog(fixture.metrics), eval: fixture.evalReport };
    },
    deleteRun: async (runId) => {
      calls.push(`delete ${runId}`);
      models.splice(models.findIndex((m) => m.name === runId), 1);
    },
    selectRun: async (runId) => void calls.push(`select ${runId}`),
    onMetrics: metricsEvents.event as never,
  }, usage);

  const { view, posted, send } = fakeView();
  provider.resolveWebviewView(view as never);
  assert.equal(view.webview.options.enableScripts, true);
  assert.deepEqual(view.webview.options.localResourceRoots, [{ path: '/ext/dist/media' }]);
  const nonce = /script-src 'nonce-([^']+)'/.exec(view.webview.html)![1];
  assert.equal(Buffer.from(nonce, 'base64').length, 32);
  assert.match(view.webview.html, /src="https:\/\/file\+\.vscode-resource\.vscode-cdn\.net\/ext\/dist\/media\/panel\.js"/);
  assert.notEqual(makeNonce(), makeNonce());

  await send({ type: 'ready' });
  assert.deepEqual(posted.map((m) => m.type), ['usage', 'live', 'runs']);
  const runs = posted[2] as Extract<HostMessage, { type: 'runs' }>;
  assert.deepEqual(runs.runs.map((r) => [r.id, r.active, r.tokens]), [['tiny-sample', true, 17077]]);

  posted.length = 0;
  await send({ type: 'showRun', runId: 'tiny-sample' });
  const runData = posted[0] as Extract<HostMessage, { type: 'runData' }>;
  assert.equal(runData.type, 'runData');
  assert.equal(runData.run.points.length, FIXTURE_STEPS);
  assert.equal(runData.run.summary.maxSteps, 60, 'config.json fills what the models list lacks');
  assert.equal(runData.run.evalRows.length, 12);

  posted.length = 0;
  fakeVscode.warningAnswer = undefined; // the user closes the dialog
  await send({ type: 'deleteRun', runId: 'tiny-sample' });
  assert.deepEqual(calls.filter((c) => c.startsWith('delete')), []);
  assert.equal(fakeVscode.warnings.length, 1);
  assert.match(fakeVscode.warnings[0].message, /Delete the model "tiny-sample"\?/);
  assert.equal((fakeVscode.warnings[0].options as { modal: boolean }).modal, true);
  fakeVscode.warningAnswer = 'Delete';
  await send({ type: 'deleteRun', runId: 'tiny-sample' });
  assert.deepEqual(calls.filter((c) => c.startsWith('delete')), ['delete tiny-sample']);
  assert.deepEqual((posted.at(-1) as Extract<HostMessage, { type: 'runs' }>).runs, [], 'the list is re-sent without it');

  await send({ type: 'useRun', runId: 'other' });
  await send({ type: 'train' });
  await send({ type: 'deleteRun' }); // malformed: ignored
  assert.deepEqual(calls.filter((c) => c.startsWith('select')), ['select other']);
  assert.deepEqual(fakeVscode.executed, ['workspaceLm.train']);
  assert.equal(fakeVscode.warnings.length, 2);

  posted.length = 0;
  const step = readMetricsLog(fixture.metrics).metrics[9];
  const progress = { maxSteps: 60, maxMinutes: 10, percentage: 17, etaMs: 4000 };
  metricsEvents.fire({ jobId: 1, kind: 'train', model: 'tiny-sample', ...progress, metrics: step });
  metricsEvents.fire({ jobId: 1, kind: 'train', model: 'tiny-sample', ...progress, metrics: { step: 'x' } as never });
  const live = posted.filter((m) => m.type === 'metrics');
  assert.deepEqual(live, [{ type: 'metrics', runId: 'tiny-sample', points: [step], progress }]);

  posted.length = 0;
  await usage.recordShown();
  await usage.recordShown(2);
  await usage.recordAccepted();
  assert.deepEqual(usage.counts, { shown: 3, accepted: 1 });
  assert.deepEqual(posted.at(-1), { type: 'usage', usage: { shown: 3, accepted: 1 } });
  assert.deepEqual(memento.get('workspaceLm.usage'), { shown: 3, accepted: 1 });
  provider.dispose();
  usage.dispose();
});

test('provider: a job start refreshes the list, its end re-reads the run; read errors are reported', async () => {
  const { MetricsViewProvider, UsageCounter } = loadMetricsView();
  const models: ModelInfo[] = [];
  const statusEvents = new FakeEventEmitter<StatusNotification.Params>();
  let folderWritten = false;
  const memento = new Map<string, unknown>();
  const provider = new MetricsViewProvider({ path: '/ext' } as never, {
    listRuns: async () => models,
    readRun: async (runId) => {
      if (!folderWritten) throw new Error(`no model folder ${runId}`);
      return { ...readMetricsLog(fixture.metrics), eval: null };
    },
    deleteRun: async () => {},
    selectRun: async () => {},
    onMetrics: () => ({ dispose() {} }) as never,
    onStatus: statusEvents.event as never,
  }, new UsageCounter({ get: (key: string) => memento.get(key), update: async (key: string, value: unknown) => void memento.set(key, value), keys: () => [] } as never));
  const { view, posted, send } = fakeView();
  provider.resolveWebviewView(view as never);
  const status = (job: StatusNotification.Params['job']): StatusNotification.Params => ({ activeModel: null, provider: null, job, trusted: true, modelsDir: '/m' });
  const job = { id: 7, kind: 'train' as const, model: 'run-7', step: 0, maxSteps: 60, maxMinutes: 10, percentage: 0, etaMs: null, message: 'tokenizing', backend: null };

  models.push({ name: 'run-7', dir: '/m/run-7', state: 'training', active: false });
  await Promise.all(statusEvents.fire(status(job)));
  await new Promise((resolve) => setImmediate(resolve)); // the refresh it started
  assert.deepEqual(posted.map((m) => m.type), ['live', 'runs']);
  assert.deepEqual((posted[0] as Extract<HostMessage, { type: 'live' }>).status, { runId: 'run-7', state: 'running', step: 0, maxSteps: 60, maxMinutes: 10, percentage: 0, etaMs: undefined, message: 'tokenizing' });

  // The page asks for the new run before its folder exists: an empty run, not an error.
  posted.length = 0;
  await send({ type: 'showRun', runId: 'run-7' });
  assert.equal(messageOf(posted[0], 'runData').run.points.length, 0);

  // The job ends: the panel hears 'done' and gets the finished run from disk.
  posted.length = 0;
  folderWritten = true;
  statusEvents.fire(status(null));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(posted.map((m) => m.type), ['live', 'runs', 'runData']);
  assert.equal(messageOf(posted[0], 'live').status?.state, 'done');
  assert.equal(messageOf(posted[2], 'runData').run.points.length, FIXTURE_STEPS);

  // Not a live run: the error reaches the page, with the reason.
  posted.length = 0;
  folderWritten = false;
  await send({ type: 'showRun', runId: 'gone' });
  assert.deepEqual(posted, [{ type: 'error', message: 'Workspace LM: could not read the run "gone": no model folder gone' }]);
  provider.dispose();
});

test('usage: inline completions offered count as shown, their command counts them as accepted', async () => {
  const { UsageCounter, countInlineCompletions, COMPLETION_ACCEPTED_COMMAND } = loadMetricsView();
  const memento = new Map<string, unknown>();
  const usage = new UsageCounter({ get: (key: string) => memento.get(key), update: async (key: string, value: unknown) => void memento.set(key, value), keys: () => [] } as never);
  const subscriptions: FakeDisposable[] = [];
  const { provideInlineCompletionItems } = countInlineCompletions({ subscriptions } as never, usage);
  const token = { isCancellationRequested: false };
  type Items = { insertText: string; command?: { command: string; title: string; arguments?: unknown[] } }[];
  const answer = (items: Items) => provideInlineCompletionItems({} as never, {} as never, {} as never, token as never, (() => items) as never) as Promise<Items>;

  const items = await answer([{ insertText: 'return x;' }, { insertText: '  ', command: { command: 'server.cmd', title: 't', arguments: [1] } }]);
  assert.equal(items[0].command?.command, COMPLETION_ACCEPTED_COMMAND);
  assert.equal(items[1].command?.command, 'server.cmd', 'blank items are not offered, so not counted');
  await answer([]);
  const withServerCommand = await answer([{ insertText: 'y', command: { command: 'server.cmd', title: 't', arguments: [2] } }]);
  token.isCancellationRequested = true;
  await answer([{ insertText: 'too late' }]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(usage.counts, { shown: 2, accepted: 0 });

  // VS Code runs the item's command after inserting it.
  const accept = fakeVscode.registered.get(COMPLETION_ACCEPTED_COMMAND)!;
  fakeVscode.executed.length = 0;
  await accept(...(items[0].command?.arguments ?? []));
  await accept(...(withServerCommand[0].command?.arguments ?? []));
  assert.deepEqual(usage.counts, { shown: 2, accepted: 2 });
  assert.deepEqual(fakeVscode.executed, ['server.cmd 2'], "the server's own command still runs");
  assert.equal(subscriptions.length, 1);
});

// ---------------------------------------------------------------------------------------------
// The page in headless Chromium

const outDir = path.join(repoRoot, 'test-output', 'panel');
const CHROMIUM = '/usr/bin/chromium';
let browser: Browser;

before(async () => {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'build-panel.mjs'), path.join(outDir, 'media')]);
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (err) {
    throw new Error(`cannot start ${CHROMIUM}: ${(err as Error).message.split('\n')[0]}; HINT: apt-get install -y chromium`);
  }
});

after(async () => {
  await browser?.close();
});

// VS Code's Light+ and Dark+ values of the variables the panel uses, as VS Code sets them on <html>.
const THEMES: Record<'light' | 'dark', Record<string, string>> = {
  light: {
    '--vscode-foreground': '#616161', '--vscode-descriptionForeground': '#717171', '--vscode-sideBar-background': '#f3f3f3',
    '--vscode-font-family': 'system-ui, sans-serif', '--vscode-font-size': '13px', '--vscode-button-background': '#007acc',
    '--vscode-button-foreground': '#ffffff', '--vscode-button-secondaryBackground': '#5f6a79', '--vscode-button-secondaryForeground': '#ffffff',
    '--vscode-badge-background': '#c4c4c4', '--vscode-badge-foreground': '#333333', '--vscode-focusBorder': '#0090f1',
    '--vscode-widget-border': '#d4d4d4', '--vscode-charts-lines': 'rgba(97, 97, 97, 0.5)', '--vscode-charts-blue': '#1a85ff',
    '--vscode-charts-orange': '#d18616', '--vscode-charts-purple': '#652d90', '--vscode-charts-green': '#388a34',
    '--vscode-progressBar-background': '#0e70c0', '--vscode-editorWidget-background': '#f3f3f3', '--vscode-errorForeground': '#a1260d',
  },
  dark: {
    '--vscode-foreground': '#cccccc', '--vscode-descriptionForeground': 'rgba(204, 204, 204, 0.7)', '--vscode-sideBar-background': '#252526',
    '--vscode-font-family': 'system-ui, sans-serif', '--vscode-font-size': '13px', '--vscode-button-background': '#0e639c',
    '--vscode-button-foreground': '#ffffff', '--vscode-button-secondaryBackground': '#3a3d41', '--vscode-button-secondaryForeground': '#ffffff',
    '--vscode-badge-background': '#4d4d4d', '--vscode-badge-foreground': '#ffffff', '--vscode-focusBorder': '#007fd4',
    '--vscode-widget-border': '#454545', '--vscode-charts-lines': 'rgba(204, 204, 204, 0.5)', '--vscode-charts-blue': '#3794ff',
    '--vscode-charts-orange': '#d18616', '--vscode-charts-purple': '#b180d7', '--vscode-charts-green': '#89d185',
    '--vscode-progressBar-background': '#0e70c0', '--vscode-editorWidget-background': '#252526', '--vscode-errorForeground': '#f48771',
  },
};

interface PanelPage {
  page: Page;
  offPage: string[]; // requests to anything but file: and data:
  problems: string[]; // console errors and CSP violations
  post(message: HostMessage): Promise<void>;
  posted(): Promise<PanelMessage[]>;
  state(): Promise<SavedState | undefined>;
  theme(name: 'light' | 'dark'): Promise<void>;
  points(chartId: string): Promise<Record<string, number>>;
}

async function openPanel(saved?: SavedState): Promise<PanelPage> {
  const context = await browser.newContext({ viewport: { width: 380, height: 900 } });
  const page = await context.newPage();
  const offPage: string[] = [];
  const problems: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
    offPage.push(url);
    return route.abort();
  });
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith('file:') && !url.startsWith('data:') && !offPage.includes(url)) offPage.push(url);
  });
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(String(error)));
  // The webview's API, faked: records what the page posts and keeps its state. A string, not a
  // function: tsx would wrap a function's inner closures in a helper the page does not have.
  await page.addInitScript(`
    window.__posted = [];
    window.__state = ${JSON.stringify(saved ?? null)} ?? undefined;
    window.acquireVsCodeApi = () => ({
      postMessage: (m) => window.__posted.push(m),
      getState: () => window.__state,
      setState: (s) => { window.__state = s; },
    });
    document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));
  `);
  page.setDefaultTimeout(5000);

  const media = path.join(outDir, 'media');
  const htmlFile = path.join(outDir, 'panel.html');
  writeFileSync(htmlFile, renderPanelHtml({
    cspSource: 'file:',
    nonce: 'dGVzdC1ub25jZS0xMjM0NTY3OA==',
    scriptUri: pathToFileURL(path.join(media, 'panel.js')).href,
    styleUri: pathToFileURL(path.join(media, 'panel.css')).href,
  }));
  await page.goto(pathToFileURL(htmlFile).href);
  const panel: PanelPage = {
    page,
    offPage,
    problems,
    post: (message) => page.evaluate((m) => window.postMessage(m, '*'), message),
    posted: () => page.evaluate(() => (window as unknown as { __posted: PanelMessage[] }).__posted),
    state: () => page.evaluate(() => (window as unknown as { __state: SavedState | undefined }).__state),
    theme: (name) =>
      page.evaluate(
        ({ name, vars }) => {
          for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
          document.body.className = `vscode-${name}`;
        },
        { name, vars: THEMES[name] },
      ),
    points: async (chartId) => {
      const handle = await page.waitForSelector(`#${chartId}[data-points]`, { state: 'attached' });
      return JSON.parse((await handle.getAttribute('data-points'))!) as Record<string, number>;
    },
  };
  await panel.theme('light');
  return panel;
}

function runDataFor(summary: RunSummary, shift = 0): RunData {
  const shifted = fixture.metrics
    .trimEnd()
    .split('\n')
    .map((line) => {
      const p = JSON.parse(line) as StepMetrics;
      return JSON.stringify({ ...p, trainLoss: p.trainLoss + shift, ...(p.valLoss !== undefined ? { valLoss: p.valLoss + shift } : {}) });
    });
  return buildRunData(summary, readMetricsLog(shifted.join('\n')), fixture.evalReport);
}

test('page: empty state says what to do first and its button asks for training', async () => {
  const panel = await openPanel();
  await panel.post({ type: 'runs', runs: [] });
  await panel.page.waitForSelector('#empty:not([hidden])');
  const text = await panel.page.textContent('#empty');
  assert.match(text!, /Run 'Workspace LM: Train Model on Workspace'/);
  assert.equal(await panel.page.isVisible('#curves'), false);
  await panel.page.screenshot({ path: path.join(repoRoot, 'test-output', 'panel-empty-light.png') });
  await panel.page.click('#train-button');
  assert.deepEqual(await panel.posted(), [{ type: 'ready' }, { type: 'train' }]);
  assert.deepEqual(panel.offPage, []);
  assert.deepEqual(panel.problems, []);
  await panel.page.context().close();
});

test('page: a recorded run, live points, comparison, eval beside the baseline, themes, no network', async () => {
  const started = Date.now();
  const panel = await openPanel();
  const runA = withConfig({ id: 'tiny-sample', name: 'tiny-sample', preset: 'tiny', backend: 'wasm (CPU)', active: true, state: 'ready' }, fixture.config);
  const runB: RunSummary = { id: 'small-older', name: 'small-older', preset: 'small', backend: 'webgpu (lavapipe)', active: false, createdAt: '2026-11-23T09:00:00.000Z', tokens: 48000, files: 12 };
  await panel.post({ type: 'runs', runs: [runB, runA] });
  // The active run is shown first: the page asks for its data.
  await panel.page.waitForFunction(() => (window as unknown as { __posted: PanelMessage[] }).__posted.some((m) => m.type === 'showRun'));
  assert.deepEqual((await panel.posted()).filter((m) => m.type === 'showRun'), [{ type: 'showRun', runId: 'tiny-sample' }]);
  assert.deepEqual(await panel.page.$$eval('#runs .run .run-name', (els) => els.map((e) => e.textContent)), ['tiny-sample', 'small-older'], 'newest first');

  await panel.post({ type: 'runData', run: runDataFor(runA) });
  assert.deepEqual(await panel.points('chart-loss'), { train: FIXTURE_STEPS, validation: FIXTURE_VAL_POINTS });
  assert.deepEqual(await panel.points('chart-lr'), { 'learning rate': FIXTURE_STEPS });
  assert.equal(await panel.page.textContent('#stat-step .stat-value'), '60 / 60');
  assert.equal(await panel.page.textContent('#stat-val .stat-value'), '4.894');

  // Evaluation: the model's figure and the baseline's in one row.
  const top1 = await panel.page.$$eval('tr[data-key="nextToken.top1"] td', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(top1, ['7.9%', '33.5%']);
  const p95 = await panel.page.$$eval('tr[data-key="latency.p95Ms"] td', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(p95, ['13 ms', '1.4 ms']);
  assert.equal(await panel.page.$eval('tr[data-key="nextToken.top1"] td.baseline', (td) => td.classList.contains('wins')), true);
  assert.deepEqual(await panel.points('chart-latency'), { model: 13, baseline: 13 });

  await panel.post({ type: 'usage', usage: { shown: 12, accepted: 5 } });
  await panel.page.waitForFunction(() => document.querySelector('#usage-shown')?.textContent === '12');
  assert.match((await panel.page.textContent('#usage-counts'))!, /12 shown · 5 accepted \(42%\)/);

  // Live: the run goes on (maxSteps 80, a 1-minute budget); each notification adds a point and
  // the server's progress, whose percentage and time left follow the budget that ends the run first.
  const recorded = readMetricsLog(fixture.metrics).metrics;
  const { valLoss: _lastVal, ...last } = recorded.at(-1)!;
  for (let step = 61; step <= 70; step++) {
    const point: StepMetrics = { ...last, step, tokens: last.tokens + (step - 60) * 512, trainLoss: last.trainLoss - (step - 60) * 0.01, elapsedMs: last.elapsedMs + (step - 60) * 250 };
    if (step === 70) point.valLoss = 4.8;
    await panel.post({ type: 'metrics', runId: 'tiny-sample', points: [point], progress: { maxSteps: 80, maxMinutes: 1, percentage: 90 + (step - 70), etaMs: 2500 + (70 - step) * 250 } });
  }
  await panel.page.waitForFunction(() => document.querySelector('#chart-loss')?.getAttribute('data-points')?.includes('"train":70'));
  assert.deepEqual(await panel.points('chart-loss'), { train: 70, validation: FIXTURE_VAL_POINTS + 1 });
  assert.deepEqual(await panel.points('chart-lr'), { 'learning rate': 70 });
  const liveText = (await panel.page.textContent('#live-figures'))!;
  assert.match(liveText, /step 70 \/ 80/);
  assert.match(liveText, /1-min budget/);
  assert.match(liveText, /ETA 3 s/);
  assert.equal(await panel.page.getAttribute('#live-progress', 'value'), '90', 'the progress bar shows the server percentage, not 70 / 80 steps');
  assert.equal(await panel.page.textContent('#stat-step .stat-value'), '70 / 80');
  assert.equal(await panel.page.textContent('#stat-eta .stat-value'), '3 s');
  await panel.page.screenshot({ path: path.join(repoRoot, 'test-output', 'panel-live-light.png'), fullPage: true });

  // Compare with the older run: curves overlaid, eval tables side by side.
  await panel.page.click('.run[data-run-id="small-older"] button[data-action="compare"]');
  await panel.page.waitForFunction(() => (window as unknown as { __posted: PanelMessage[] }).__posted.some((m) => m.type === 'showRun' && m.runId === 'small-older'));
  await panel.post({ type: 'runData', run: runDataFor(runB, 0.4) });
  await panel.page.waitForFunction(() => Object.keys(JSON.parse(document.querySelector('#chart-loss')?.getAttribute('data-points') ?? '{}')).length === 4);
  assert.deepEqual(await panel.points('chart-loss'), {
    'train · tiny-sample': 70,
    'validation · tiny-sample': FIXTURE_VAL_POINTS + 1,
    'train · small-older': FIXTURE_STEPS,
    'validation · small-older': FIXTURE_VAL_POINTS,
  });
  assert.equal(await panel.page.locator('.eval-block').count(), 2);
  assert.deepEqual(await panel.state(), { selectedRunId: 'tiny-sample', compareRunId: 'small-older' });

  await panel.page.screenshot({ path: path.join(repoRoot, 'test-output', 'panel-compare-light.png'), fullPage: true });
  await panel.theme('dark');
  await panel.page.waitForFunction(() => getComputedStyle(document.body).color === 'rgb(204, 204, 204)');
  await panel.page.screenshot({ path: path.join(repoRoot, 'test-output', 'panel-compare-dark.png'), fullPage: true });
  assert.deepEqual(await panel.points('chart-loss'), {
    'train · tiny-sample': 70,
    'validation · tiny-sample': FIXTURE_VAL_POINTS + 1,
    'train · small-older': FIXTURE_STEPS,
    'validation · small-older': FIXTURE_VAL_POINTS,
  }, 'the charts are rebuilt in the new theme with the same data');

  // Actions go to the extension; deleting asks there, not here.
  await panel.page.click('.run[data-run-id="small-older"] button[data-action="delete"]');
  await panel.page.click('.run[data-run-id="small-older"] button[data-action="use"]');
  const actions = (await panel.posted()).filter((m) => m.type === 'deleteRun' || m.type === 'useRun');
  assert.deepEqual(actions, [{ type: 'deleteRun', runId: 'small-older' }, { type: 'useRun', runId: 'small-older' }]);

  assert.deepEqual(panel.offPage, [], 'no request leaves the page');
  assert.deepEqual(panel.problems, [], 'no console errors or CSP violations');
  await panel.page.context().close();
  assert.ok(Date.now() - started < 30_000, `the page test took ${Date.now() - started} ms`);
});

test('page: state restored after the view was hidden asks again for both runs', async () => {
  const panel = await openPanel({ selectedRunId: 'b', compareRunId: 'a' });
  const run = (id: string, createdAt: string): RunSummary => ({ id, name: id, preset: 'tiny', backend: 'cpu', active: id === 'a', createdAt });
  await panel.post({ type: 'runs', runs: [run('a', '2026-11-01T00:00:00Z'), run('b', '2026-11-02T00:00:00Z')] });
  await panel.page.waitForFunction(() => (window as unknown as { __posted: PanelMessage[] }).__posted.length >= 3);
  assert.deepEqual(await panel.posted(), [{ type: 'ready' }, { type: 'showRun', runId: 'b' }, { type: 'showRun', runId: 'a' }]);
  await panel.page.context().close();
});

test('page: a run that starts training is shown, live, before its folder is read', async () => {
  const panel = await openPanel();
  const run = (id: string, createdAt: string, active: boolean): RunSummary => ({ id, name: id, preset: 'tiny', backend: 'cpu', active, createdAt });
  await panel.post({ type: 'runs', runs: [run('old', '2026-11-01T00:00:00Z', true)] });
  await panel.post({ type: 'runData', run: runDataFor(run('old', '2026-11-01T00:00:00Z', true)) });
  assert.deepEqual(await panel.points('chart-loss'), { train: FIXTURE_STEPS, validation: FIXTURE_VAL_POINTS });

  const points = readMetricsLog(fixture.metrics).metrics.slice(0, 3);
  await panel.post({ type: 'live', status: { runId: 'new', state: 'running', step: 0, maxSteps: 60, message: 'tokenizing' } });
  for (const point of points) await panel.post({ type: 'metrics', runId: 'new', points: [point], progress: { maxSteps: 60, maxMinutes: 0, percentage: point.step, etaMs: null } });
  await panel.page.waitForFunction(() => document.querySelector('#chart-loss')?.getAttribute('data-points') === '{"train":3,"validation":0}');
  assert.deepEqual((await panel.posted()).filter((m) => m.type === 'showRun').map((m) => (m as { runId: string }).runId), ['old', 'new']);
  assert.match((await panel.page.textContent('#live'))!, /Training new/);
  assert.deepEqual(await panel.state(), { selectedRunId: 'new', compareRunId: undefined });
  await panel.post({ type: 'live', status: { runId: 'new', state: 'done', step: 60, maxSteps: 60 } });
  await panel.page.waitForFunction(() => document.querySelector('#live .live-title')?.textContent === 'Trained new');
  assert.doesNotMatch((await panel.page.textContent('#live'))!, /ETA/, 'a finished run shows no ETA');
  assert.equal(await panel.page.locator('#live-progress').count(), 0, 'nor a progress bar');
  assert.deepEqual(panel.problems, []);
  await panel.page.context().close();
});

test('eval rows: the summaries section of eval.json shows BLEU-4, ROUGE-L and exact match beside the retrieval baseline', () => {
  const latency = { count: 6, meanMs: 30, p50Ms: 28, p95Ms: 41, maxMs: 44, histogram: { edges: [1, 2], counts: [0, 0, 6] } };
  const report: EvalReport = {
    ...fixture.evalReport,
    summaries: {
      pairs: { train: 40, heldOut: 7, duplicates: 1, evaluated: 6 },
      model: { name: 'GPT', count: 6, bleu: 7.4, rougeL: 16.9, exactMatch: 25, latency },
      baseline: { name: 'retrieval', count: 6, bleu: 11.9, rougeL: 22.4, exactMatch: 50 },
      trainedForSummaries: true,
      summaryRate: 0.1,
      maxTokens: 24,
      examples: [],
      elapsedMs: 900,
    },
  };
  const rows = evalRows(report);
  const byKey = Object.fromEntries(rows.map((r) => [r.key, r]));
  assert.deepEqual(rows.slice(0, 12), evalRows(fixture.evalReport), 'the completion figures still come first');
  assert.deepEqual(byKey['summaries.bleu'], { key: 'summaries.bleu', label: 'summaries · BLEU-4', model: 7.4, baseline: 11.9, format: 'score', better: 'higher' });
  assert.deepEqual([byKey['summaries.rougeL']?.model, byKey['summaries.rougeL']?.baseline], [16.9, 22.4]);
  assert.deepEqual([byKey['summaries.exactMatch']?.model, byKey['summaries.exactMatch']?.baseline, byKey['summaries.exactMatch']?.format], [0.25, 0.5, 'percent'], 'stored 0–100, shown as a percentage');
  assert.deepEqual([byKey['summaries.latency.p50Ms']?.label, byKey['summaries.latency.p50Ms']?.model, byKey['summaries.latency.p50Ms']?.baseline], ['summaries · latency p50', 28, undefined]);
  assert.equal(latencyHistograms(report).length, 2, 'the latency chart is of completions only');
  // Summaries evaluated with nothing to score: no rows for them.
  assert.equal(evalRows({ ...report, summaries: { ...report.summaries!, model: null, baseline: null, note: 'no documented definitions' } }).length, 12);
});
