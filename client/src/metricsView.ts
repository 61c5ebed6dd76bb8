// The metrics side panel, extension side: a WebviewViewProvider that renders the page shell with a
// strict CSP and a fresh crypto nonce, answers the page's typed messages through callbacks, and
// relays live workspaceLm/metrics notifications. It owns no ML logic and no I/O of its own: what
// a run is, how it is read or deleted, comes from the `MetricsViewDeps` the extension passes in.
// Also keeps the local completion counters (shown / accepted), in workspace state, never sent.
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import type { Middleware } from 'vscode-languageclient/node';
import type { JobStatus, MetricsHistoryRequest, MetricsNotification, ModelInfo, StatusNotification } from '../../protocol/src/customMessages';
import { toStepMetrics } from '../../models/src/train/metricsLog';
import {
  buildRunData,
  parsePanelMessage,
  renderPanelHtml,
  summarizeModelInfo,
  withConfig,
  type HostMessage,
  type LiveStatus,
  type PanelMessage,
  type UsageCounts,
} from '../media/panelProtocol';

export const METRICS_VIEW_ID = 'workspaceLm.metrics';
export const COMPLETION_ACCEPTED_COMMAND = 'workspaceLm.completionAccepted'; // internal, not in the palette
const DEFAULT_TRAIN_COMMAND = 'workspaceLm.train';
const USAGE_KEY = 'workspaceLm.usage';

/** A model folder's files as the panel needs them: workspaceLm/metricsHistory's answer, and config.json. */
export interface RunFiles extends Pick<MetricsHistoryRequest.Result, 'metrics' | 'badLines' | 'eval'> {
  config?: unknown; // config.json, when the extension has it: file count, planned steps, device
}

/** What the panel needs from the extension; each maps onto one request of protocol/src/customMessages.ts. */
export interface MetricsViewDeps {
  listRuns(): Promise<ModelInfo[]>; // workspaceLm/models { action: 'list' }
  readRun(runId: string): Promise<RunFiles>; // workspaceLm/metricsHistory { model }
  deleteRun(runId: string): Promise<void>; // workspaceLm/models { action: 'delete' }; asked first here
  selectRun(runId: string): Promise<void>; // workspaceLm/models { action: 'select' }
  onMetrics(listener: (params: MetricsNotification.Params) => void): vscode.Disposable;
  onStatus?(listener: (params: StatusNotification.Params) => void): vscode.Disposable; // job start/end
  trainCommand?: string; // what the empty state's button runs; default 'workspaceLm.train'
}

/** 32 random bytes, base64: the CSP nonce. From the OS's CSPRNG, never Math.random. */
export function makeNonce(): string {
  return randomBytes(32).toString('base64');
}

/**
 * Completions shown and accepted in this workspace, kept in its workspace state. Nothing reads
 * them but the panel. The completion provider calls recordShown / recordAccepted.
 */
export class UsageCounter implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<UsageCounts>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly memento: vscode.Memento) {}

  get counts(): UsageCounts {
    const saved = this.memento.get<Partial<UsageCounts>>(USAGE_KEY) ?? {};
    const count = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0);
    return { shown: count(saved.shown), accepted: count(saved.accepted) };
  }

  recordShown(count = 1): Thenable<void> {
    return this.update({ ...this.counts, shown: this.counts.shown + count });
  }

  recordAccepted(): Thenable<void> {
    return this.update({ ...this.counts, accepted: this.counts.accepted + 1 });
  }

  reset(): Thenable<void> {
    return this.update({ shown: 0, accepted: 0 });
  }

  private async update(next: UsageCounts): Promise<void> {
    await this.memento.update(USAGE_KEY, next);
    this.changed.fire(next);
  }

  dispose(): void {
    this.changed.dispose();
  }
}

/**
 * Language-client middleware that counts inline completions into `usage`: one "shown" per answer
 * that offers non-empty text, one "accepted" when VS Code runs the command attached to an item
 * (it does so after inserting it). Wire it as `middleware: { provideInlineCompletionItems }` in
 * LanguageClientOptions. A command the server put on an item still runs, after the count.
 */
export function countInlineCompletions(context: vscode.ExtensionContext, usage: UsageCounter): Required<Pick<Middleware, 'provideInlineCompletionItems'>> {
  context.subscriptions.push(
    vscode.commands.registerCommand(COMPLETION_ACCEPTED_COMMAND, async (original?: vscode.Command) => {
      await usage.recordAccepted();
      if (original) await vscode.commands.executeCommand(original.command, ...(original.arguments ?? []));
    }),
  );
  return {
    provideInlineCompletionItems: async (document, position, completionContext, token, next) => {
      const result = await next(document, position, completionContext, token);
      const items = Array.isArray(result) ? result : (result?.items ?? []);
      const offered = items.filter((item) => (typeof item.insertText === 'string' ? item.insertText : item.insertText.value).trim() !== '');
      if (offered.length === 0 || token.isCancellationRequested) return result;
      void usage.recordShown();
      for (const item of offered) {
        item.command = { command: COMPLETION_ACCEPTED_COMMAND, title: 'Count an accepted completion', arguments: item.command ? [item.command] : [] };
      }
      return result;
    },
  };
}

export class MetricsViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private live: LiveStatus | null = null; // re-sent when the page is re-created (hidden, shown)
  private job: JobStatus | null = null; // the server's running job, to notice when it ends
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly viewSubscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly deps: MetricsViewDeps,
    private readonly usage: UsageCounter,
  ) {
    this.subscriptions.push(
      deps.onMetrics((params) => this.onMetrics(params)),
      usage.onDidChange((counts) => this.post({ type: 'usage', usage: counts })),
    );
    if (deps.onStatus) this.subscriptions.push(deps.onStatus((params) => this.onStatus(params)));
  }

  /** Where the page's bundle lives; also the only folder the webview may load from. */
  private get mediaRoot(): vscode.Uri {
    return vscode.Uri.joinPath(this.extensionUri, 'dist', 'media');
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.disposeView();
    this.view = view;
    view.webview.options = { enableScripts: true, localResourceRoots: [this.mediaRoot] };
    view.webview.html = renderPanelHtml({
      cspSource: view.webview.cspSource,
      nonce: makeNonce(),
      scriptUri: view.webview.asWebviewUri(vscode.Uri.joinPath(this.mediaRoot, 'panel.js')).toString(),
      styleUri: view.webview.asWebviewUri(vscode.Uri.joinPath(this.mediaRoot, 'panel.css')).toString(),
    });
    this.viewSubscriptions.push(
      // Returns the handling's promise: VS Code ignores it, tests await it.
      view.webview.onDidReceiveMessage((raw: unknown) => {
        const message = parsePanelMessage(raw);
        return message ? this.handle(message) : undefined;
      }),
      view.onDidDispose(() => {
        if (this.view === view) this.view = undefined;
        this.disposeView();
      }),
    );
  }

  /**
   * Re-sends the runs list, e.g. after a command trained, selected or deleted a model; `reread`
   * (the view's Refresh button) also has the page ask again for the runs it shows.
   */
  async refresh(reread = false): Promise<void> {
    if (!this.view) return;
    try {
      const models = await this.deps.listRuns();
      this.post({ type: 'runs', runs: models.map(summarizeModelInfo), ...(reread ? { reread } : {}) });
    } catch (err) {
      this.postError('could not list the models', err);
    }
  }

  private async handle(message: PanelMessage): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.post({ type: 'usage', usage: this.usage.counts });
        this.post({ type: 'live', status: this.live });
        await this.refresh();
        return;
      case 'showRun':
        await this.sendRun(message.runId);
        return;
      case 'useRun':
        try {
          await this.deps.selectRun(message.runId);
        } catch (err) {
          this.postError(`could not make "${message.runId}" the active model`, err);
        }
        await this.refresh();
        return;
      case 'deleteRun': {
        const choice = await vscode.window.showWarningMessage(
          `Delete the model "${message.runId}"?`,
          { modal: true, detail: 'Its folder (weights, metrics, evaluation) is removed from disk. This cannot be undone.' },
          'Delete',
        );
        if (choice !== 'Delete') return;
        try {
          await this.deps.deleteRun(message.runId);
        } catch (err) {
          this.postError(`could not delete "${message.runId}"`, err);
        }
        await this.refresh();
        return;
      }
      case 'train':
        await vscode.commands.executeCommand(this.deps.trainCommand ?? DEFAULT_TRAIN_COMMAND);
        return;
    }
  }

  private async sendRun(runId: string): Promise<void> {
    try {
      const [files, models] = await Promise.all([this.deps.readRun(runId), this.deps.listRuns()]);
      const info = models.find((m) => m.name === runId);
      const summary = withConfig(info ? summarizeModelInfo(info) : { id: runId, name: runId, preset: '?', backend: '?', active: false }, files.config);
      this.post({ type: 'runData', run: buildRunData(summary, files, files.eval) });
    } catch (err) {
      if (this.live?.runId === runId && this.live.state === 'running') {
        // A run that has only just started may have no folder yet; its points arrive live.
        this.post({ type: 'runData', run: buildRunData({ id: runId, name: runId, preset: '?', backend: '?', active: false, state: 'training' }, { metrics: [], badLines: 0 }, null) });
        return;
      }
      this.postError(`could not read the run "${runId}"`, err);
    }
  }

  private onMetrics(params: MetricsNotification.Params): void {
    const point = toStepMetrics(params.metrics);
    if (!point) return; // a malformed notification must not break the panel
    const known = this.live?.runId === params.model;
    const { maxSteps, maxMinutes, percentage, etaMs } = params;
    this.live = { runId: params.model, state: 'running', step: point.step, maxSteps, maxMinutes, percentage, tokensPerSecond: point.tokensPerSecond, etaMs: etaMs ?? undefined };
    this.post({ type: 'metrics', runId: params.model, points: [point], progress: { maxSteps, maxMinutes, percentage, etaMs } });
    if (!known) void this.refresh(); // a new run: the list should show it
  }

  private onStatus(params: StatusNotification.Params): void {
    const previous = this.job;
    const job = params.job;
    this.job = job;
    // A preparation from the base model has no steps: not shown as a live run (its folder joins the list when it ends).
    if (job && job.kind !== 'evaluate' && job.kind !== 'prepare') {
      const sameRun = this.live?.runId === job.model ? this.live : undefined;
      const { step, maxSteps, maxMinutes, percentage, message } = job;
      this.live = { ...sameRun, runId: job.model, state: 'running', step, maxSteps, maxMinutes, percentage, etaMs: job.etaMs ?? undefined, message };
      this.post({ type: 'live', status: this.live });
      if (previous?.id !== job.id) void this.refresh(); // a new run: the list should show it
    }
    if (previous && previous.id !== job?.id) {
      // A job ended: its model folder now holds the final metrics or a new eval.json.
      if (this.live?.runId === previous.model && this.live.state === 'running') {
        this.live = { ...this.live, state: 'done', message: undefined };
        this.post({ type: 'live', status: this.live });
      }
      void this.refresh().then(() => this.sendRun(previous.model));
    }
  }

  private post(message: HostMessage): void {
    // A hidden view has no page; it asks for everything again with 'ready' when it comes back.
    void this.view?.webview.postMessage(message);
  }

  private postError(what: string, err: unknown): void {
    const reason = err instanceof Error ? err.message : String(err);
    this.post({ type: 'error', message: `Workspace LM: ${what}: ${reason}` });
  }

  private disposeView(): void {
    for (const d of this.viewSubscriptions.splice(0)) d.dispose();
  }

  dispose(): void {
    this.disposeView();
    for (const d of this.subscriptions.splice(0)) d.dispose();
  }
}

/**
 * Registers the panel in `context` and returns the provider (call `refresh()` after commands change
 * the models) and the usage counter (for the completion provider).
 */
export function registerMetricsView(
  context: vscode.ExtensionContext,
  deps: MetricsViewDeps,
  usage: UsageCounter = new UsageCounter(context.workspaceState),
): { provider: MetricsViewProvider; usage: UsageCounter } {
  const provider = new MetricsViewProvider(context.extensionUri, deps, usage);
  context.subscriptions.push(usage, provider, vscode.window.registerWebviewViewProvider(METRICS_VIEW_ID, provider));
  return { provider, usage };
}
