// The status bar item: which model serves completions and on what, a running job's progress, and
// whether completions are snoozed or off for the active editor's language. It renders the server's
// workspaceLm/status notification and the completion gate, and decides nothing else; a click opens
// the status menu (statusMenu.ts).
import * as vscode from 'vscode';
import type { StatusNotification } from '../../protocol/src/customMessages';
import { formatDuration } from '../media/panelProtocol';
import type { CompletionGate } from './completionGate';

export const STATUS_MENU_COMMAND = 'workspaceLm.showStatusMenu';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('workspaceLm.status', vscode.StatusBarAlignment.Right, 100);
  private status: StatusNotification.Params | null = null;
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly gate: CompletionGate) {
    this.item.name = 'Workspace LM';
    this.item.command = STATUS_MENU_COMMAND;
    this.subscriptions = [
      gate.onDidChange(() => this.update()),
      vscode.window.onDidChangeActiveTextEditor(() => this.update()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('workspaceLm.enableCompletions')) this.update();
      }),
    ];
    this.update();
    this.item.show();
  }

  render(status: StatusNotification.Params | null): void {
    this.status = status;
    this.update();
  }

  private update(): void {
    const item = this.item;
    const status = this.status;
    const job = status?.job ?? null;
    const snooze = this.snoozeLine();
    const editor = vscode.window.activeTextEditor;
    const offHere = editor && !this.gate.enabledFor(editor.document) ? editor.document.languageId : undefined;
    const gateLines = [snooze, offHere ? `Completions are off for ${offHere} (workspaceLm.enableCompletions).` : undefined].filter(Boolean).join('\n');
    const menu = 'Click for the Workspace LM menu.';
    item.backgroundColor = undefined;
    if (job?.kind === 'prepare') {
      // Seconds: the base's weights as they are, with this workspace's n-gram and completion mixture.
      item.text = '$(sync~spin) WLM: preparing completions from the base model…';
      item.tooltip = ['Workspace LM: preparing completions from the base model (no training: its weights with this workspace\'s n-gram)', job.message, gateLines, menu].filter(Boolean).join('\n');
      return;
    }
    if (job) {
      const eta = job.etaMs !== null ? `, ${formatDuration(job.etaMs)} left` : '';
      // Started by the server while the editor was idle (workspaceLm.autoFineTune), not by the user.
      item.text = `$(sync~spin) WLM ${job.automatic ? 'keeping up' : job.kind === 'evaluate' ? 'evaluating' : 'training'} ${job.percentage}%`;
      item.tooltip = [
        job.automatic
          ? `Workspace LM: fine-tuning ${job.model} on the files saved since the model serving was trained (workspaceLm.autoFineTune; typing cancels it)`
          : `Workspace LM: ${job.kind} of ${job.model} (job ${job.id})`,
        `${job.message}${eta}`,
        job.backend ? `Backend: ${job.backend}` : undefined,
        `Serving: ${status?.activeModel ?? 'no model'}`,
        gateLines,
        menu,
      ].filter(Boolean).join('\n');
      return;
    }
    if (snooze) {
      item.text = `$(bell-slash) WLM: snoozed`;
      item.tooltip = `Workspace LM: ${snooze}\nModel: ${status?.activeModel ?? 'none'}\n${menu}`;
      item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
      return;
    }
    if (!status?.activeModel) {
      item.text = '$(circle-slash) WLM: no model';
      item.tooltip = `${status?.trusted === false ? 'Workspace LM: no model. Training is disabled in an untrusted workspace.' : 'Workspace LM: no model yet. Train one on this workspace from the menu.'}\n${menu}`;
      return;
    }
    item.text = offHere ? `$(circle-slash) WLM: off for ${offHere}` : `$(sparkle) WLM: ${status.activeModel}`;
    item.tooltip = [
      `Workspace LM: ${status.activeModel} serves completions on ${status.provider ?? 'unknown'}`,
      status.trusted ? undefined : 'Restricted mode: training disabled',
      `Models: ${status.modelsDir}`,
      gateLines,
      menu,
    ].filter(Boolean).join('\n');
  }

  /** "Completions snoozed until 14:35." or undefined when not snoozed. */
  private snoozeLine(): string | undefined {
    const until = this.gate.snoozedUntil;
    if (until === null) return undefined;
    if (until === 'restart') return 'Completions snoozed until VS Code restarts.';
    return `Completions snoozed until ${new Date(until).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}.`;
  }

  dispose(): void {
    for (const d of this.subscriptions) d.dispose();
    this.item.dispose();
  }
}
