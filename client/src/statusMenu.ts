// The status bar item's menu (a quick pick): snooze or resume completions, turn them off or on for
// the active editor's language, and the model commands (select, train or cancel, metrics, logs).
// Each entry runs a command or a CompletionGate method; the menu decides nothing on its own.
import * as vscode from 'vscode';
import type { StatusNotification } from '../../protocol/src/customMessages';
import type { CompletionGate } from './completionGate';
import { STATUS_MENU_COMMAND } from './statusBar';

export const SHOW_LOGS_COMMAND = 'workspaceLm.showLogs';

export interface StatusMenuDeps {
  gate: CompletionGate;
  output: vscode.LogOutputChannel;
  status(): StatusNotification.Params | null; // the server's latest
}

interface Entry extends vscode.QuickPickItem {
  run?(): unknown;
}

const separator = (label: string): Entry => ({ label, kind: vscode.QuickPickItemKind.Separator });
const command = (id: string) => () => vscode.commands.executeCommand(id);

function entries({ gate, status: latest }: StatusMenuDeps): Entry[] {
  const status = latest();
  const until = gate.snoozedUntil;
  const items: Entry[] = [separator('Completions')];
  if (until !== null) {
    const when = until === 'restart' ? 'until restart' : `until ${new Date(until).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
    items.push({ label: '$(bell) Resume completions', description: `snoozed ${when}`, run: () => gate.resume() });
  } else {
    items.push(
      { label: '$(bell-slash) Snooze completions for 5 minutes', run: () => gate.snooze(5) },
      { label: '$(bell-slash) Snooze completions for 30 minutes', run: () => gate.snooze(30) },
      { label: '$(bell-slash) Snooze completions until restart', description: 'until VS Code restarts or the window reloads', run: () => gate.snooze('restart') },
    );
  }
  const document = vscode.window.activeTextEditor?.document;
  if (document) {
    const language = document.languageId;
    items.push(
      gate.enabledFor(document)
        ? { label: `$(circle-slash) Turn off completions for ${language}`, description: `"[${language}]": workspaceLm.enableCompletions false, in your user settings`, run: () => gate.setEnabledForLanguage(document, false) }
        : { label: `$(check) Turn on completions for ${language}`, run: () => gate.setEnabledForLanguage(document, true) },
    );
  }
  items.push(separator('Model'), { label: '$(list-selection) Select model…', description: status?.activeModel ?? 'none serves yet', run: command('workspaceLm.selectModel') });
  if (status?.job?.kind === 'prepare') {
    // Seconds, started by the server itself: nothing to cancel; a training asked for now starts after it.
    items.push({ label: '$(sync~spin) Preparing completions from the base model…', description: 'no training; serves in seconds' });
    if (status.trusted !== false) items.push({ label: '$(play) Train model on workspace…', description: 'starts once the base model serves', run: command('workspaceLm.train') });
  } else if (status?.job) {
    items.push({ label: `$(debug-stop) Cancel ${status.job.kind === 'evaluate' ? 'evaluation' : 'training'}`, description: status.job.model, run: command('workspaceLm.cancelTraining') });
  } else if (status?.trusted !== false) {
    items.push({ label: '$(play) Train model on workspace…', run: command('workspaceLm.train') });
  }
  items.push(
    { label: '$(graph) Show metrics', run: command('workspaceLm.showMetrics') },
    { label: '$(output) Show logs', description: 'the Workspace LM output channel', run: command(SHOW_LOGS_COMMAND) },
  );
  return items;
}

export function registerStatusMenu(context: vscode.ExtensionContext, deps: StatusMenuDeps): void {
  context.subscriptions.push(
    vscode.commands.registerCommand(STATUS_MENU_COMMAND, async () => {
      const picked = await vscode.window.showQuickPick(entries(deps), { placeHolder: 'Workspace LM', matchOnDescription: true });
      await picked?.run?.();
    }),
    vscode.commands.registerCommand(SHOW_LOGS_COMMAND, () => deps.output.show()),
  );
}
