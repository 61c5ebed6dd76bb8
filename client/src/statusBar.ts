// The status bar item: which model serves completions and on what, and a running job's progress.
// It renders the server's workspaceLm/status notification and decides nothing else.
import * as vscode from 'vscode';
import type { StatusNotification } from '../../server/src/protocol';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('workspaceLm.status', vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.name = 'Workspace LM';
    this.render(null);
    this.item.show();
  }

  render(status: StatusNotification.Params | null): void {
    const item = this.item;
    const job = status?.job ?? null;
    if (job) {
      const percent = job.maxSteps > 0 ? ` ${Math.round((100 * job.step) / job.maxSteps)}%` : '';
      item.text = `$(sync~spin) WLM ${job.kind === 'evaluate' ? 'evaluating' : 'training'}${percent}`;
      item.tooltip = `Workspace LM: ${job.kind} of ${job.model} (job ${job.id})\n${job.message}${job.backend ? `\nBackend: ${job.backend}` : ''}\nServing: ${status?.activeModel ?? 'no model'}\nClick to see the metrics.`;
      item.command = 'workspaceLm.showMetrics';
      return;
    }
    if (!status?.activeModel) {
      item.text = '$(circle-slash) WLM: no model';
      item.tooltip = status?.trusted === false
        ? 'Workspace LM: no model. Training is disabled in an untrusted workspace.'
        : 'Workspace LM: no model yet. Click to train one on this workspace.';
      item.command = status?.trusted === false ? 'workspaceLm.selectModel' : 'workspaceLm.train';
      return;
    }
    item.text = `$(sparkle) WLM: ${status.activeModel}`;
    item.tooltip = `Workspace LM: ${status.activeModel} serves completions on ${status.provider ?? 'unknown'}${status.trusted ? '' : '\nRestricted mode: training disabled'}\nModels: ${status.modelsDir}\nClick to choose another model.`;
    item.command = 'workspaceLm.selectModel';
  }

  dispose(): void {
    this.item.dispose();
  }
}
