// The palette commands: each asks what it needs with quick picks and input boxes, sends one typed
// request (server/src/protocol.ts) and shows the answer. No ML logic and no file access here: the
// server decides, validates and reports progress (work-done progress, cancellable).
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import {
  TrainRequest,
  FineTuneRequest,
  EvaluateRequest,
  ModelsRequest,
  CancelRequest,
  SummarizeRequest,
  type JobResult,
  type ModelInfo,
} from '../../server/src/protocol';

export interface CommandDeps {
  client: LanguageClient;
  output: vscode.LogOutputChannel;
  onModelsChanged(): void; // refresh views that list models
}

const UNTRUSTED = 'Workspace LM: training is disabled in an untrusted workspace, because it reads every file and writes models. Trust the workspace to train; completions from existing models keep working.';

function describeModel(m: ModelInfo): string {
  const parts = [m.preset, m.createdAt ? new Date(m.createdAt).toLocaleString() : undefined, m.step !== undefined ? `step ${m.step}` : undefined];
  if (m.bestValLoss !== undefined && m.bestValLoss !== null) parts.push(`val loss ${m.bestValLoss.toFixed(3)}`);
  if (m.parent) parts.push(`from ${m.parent}`);
  return parts.filter(Boolean).join(' · ');
}

async function pickModel(deps: CommandDeps, placeHolder: string, usable: (m: ModelInfo) => boolean): Promise<ModelInfo | undefined> {
  const { models, active, modelsDir } = await deps.client.sendRequest(ModelsRequest.type, { action: 'list' });
  if (models.length === 0) {
    void vscode.window.showInformationMessage(`Workspace LM: no models in ${modelsDir} yet. Run "Workspace LM: Train Model on Workspace" first.`);
    return undefined;
  }
  const items = models.map((m) => ({
    label: `${m.active ? '$(check) ' : ''}${m.name}`,
    description: m.state === 'ready' ? describeModel(m) : `${m.state}${m.reason ? `: ${m.reason}` : ''}`,
    detail: [m.backend, m.dataBytes !== undefined ? `${(m.dataBytes / 1024).toFixed(0)} KiB of code` : undefined].filter(Boolean).join(' · ') || undefined,
    model: m,
  }));
  items.sort((a, b) => Number(b.model.name === active) - Number(a.model.name === active));
  const picked = await vscode.window.showQuickPick(items, { placeHolder, matchOnDescription: true });
  if (!picked) return undefined;
  if (!usable(picked.model)) {
    void vscode.window.showWarningMessage(`Workspace LM: "${picked.model.name}" cannot be used: ${picked.model.reason ?? picked.model.state}`);
    return undefined;
  }
  return picked.model;
}

/** Asks for an optional positive number; undefined = default, null = the user backed out. */
async function askNumber(prompt: string, integer: boolean, max?: number): Promise<number | undefined | null> {
  const value = await vscode.window.showInputBox({
    prompt,
    placeHolder: 'leave empty for the default',
    validateInput: (text) => {
      if (text.trim() === '') return undefined;
      const n = Number(text);
      if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)) || (max !== undefined && n > max)) {
        return `enter ${integer ? 'a whole number' : 'a number'}${max !== undefined ? ` from 0 to ${max}` : ' above 0'}`;
      }
      return undefined;
    },
  });
  if (value === undefined) return null;
  return value.trim() === '' ? undefined : Number(value);
}

function reportJob(deps: CommandDeps, result: JobResult): void {
  deps.onModelsChanged();
  const loss = result.bestValLoss !== null ? `, best val loss ${result.bestValLoss.toFixed(3)}` : '';
  if (result.stopReason === 'cancelled') {
    void vscode.window.showInformationMessage(`Workspace LM: cancelled at step ${result.step}. The last checkpoint of "${result.model}" is kept; the previous model still serves.`);
  } else {
    void vscode.window.showInformationMessage(`Workspace LM: "${result.model}" trained (${result.step} steps${loss})${result.activated ? ' and now serves completions' : ''}.`);
  }
}

/** Runs a command body, turning a failed request into one clear message and a log line. */
function guarded(deps: CommandDeps, name: string, body: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      deps.output.error(`${name}: ${message}`);
      void vscode.window.showErrorMessage(`Workspace LM: ${message}`);
    }
  };
}

export function registerCommands(context: vscode.ExtensionContext, deps: CommandDeps): void {
  const { client } = deps;
  const register = (id: string, body: () => Promise<void>) => context.subscriptions.push(vscode.commands.registerCommand(id, guarded(deps, id, body)));

  register('workspaceLm.train', async () => {
    if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage(UNTRUSTED);
    const configured = vscode.workspace.getConfiguration('workspaceLm').get<string>('preset', 'small');
    const presets = [
      { label: 'tiny', description: 'seconds; for trying the extension out' },
      { label: 'small', description: 'minutes on a laptop CPU; useful completions' },
      { label: 'base', description: 'for a GPU' },
    ].map((p) => ({ ...p, description: `${p.description}${p.label === configured ? ' (workspaceLm.preset)' : ''}` }));
    presets.sort((a, b) => Number(b.label === configured) - Number(a.label === configured));
    const preset = await vscode.window.showQuickPick(presets, { placeHolder: 'Model size to train on this workspace' });
    if (!preset) return;
    reportJob(deps, await client.sendRequest(TrainRequest.type, { preset: preset.label }));
  });

  register('workspaceLm.fineTune', async () => {
    if (!vscode.workspace.isTrusted) return void vscode.window.showWarningMessage(UNTRUSTED);
    const base = await pickModel(deps, 'Model to fine-tune (its tokenizer is kept)', (m) => m.state === 'ready' || m.state === 'incomplete');
    if (!base) return;
    const scopes: { label: string; description: string; scope: FineTuneRequest.Scope }[] = [
      { label: 'Changed files', description: 'changed since the base model was trained (git, else file times)', scope: 'changed' },
      { label: 'Whole folder', description: 'every source file of the workspace', scope: 'folder' },
      { label: 'Choose files…', description: 'pick the files to learn from', scope: 'files' },
    ];
    const scope = await vscode.window.showQuickPick(scopes, { placeHolder: 'What to fine-tune on' });
    if (!scope) return;
    const params: FineTuneRequest.Params = { base: base.name, scope: scope.scope };
    if (scope.scope === 'files') {
      const uris = await vscode.window.showOpenDialog({ canSelectMany: true, canSelectFolders: false, defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri, openLabel: 'Fine-tune on these' });
      if (!uris?.length) return;
      params.files = uris.map((u) => u.fsPath);
    }
    const options = await vscode.window.showQuickPick([{ label: 'Default options' }, { label: 'Set steps, learning rate, frozen layers…' }], { placeHolder: 'Fine-tune options' });
    if (!options) return;
    if (options.label !== 'Default options') {
      const steps = await askNumber('Optimiser steps', true);
      if (steps === null) return;
      const learningRate = await askNumber('Peak learning rate (e.g. 0.0003)', false);
      if (learningRate === null) return;
      const freezeLayers = await askNumber('Freeze the lowest K transformer blocks', true);
      if (freezeLayers === null) return;
      Object.assign(params, { steps, learningRate, freezeLayers });
    }
    reportJob(deps, await client.sendRequest(FineTuneRequest.type, params));
  });

  register('workspaceLm.evaluate', async () => {
    const model = await pickModel(deps, 'Model to evaluate against the n-gram baseline', (m) => m.state === 'ready' || m.state === 'incomplete');
    if (!model) return;
    const result = await client.sendRequest(EvaluateRequest.type, { model: model.name });
    deps.output.info(`evaluation of ${result.model} (${(result.ms / 1000).toFixed(1)} s):\n${result.table}`);
    deps.output.show(true);
    deps.onModelsChanged();
  });

  register('workspaceLm.selectModel', async () => {
    const model = await pickModel(deps, 'Model to serve completions', (m) => m.state === 'ready' || m.state === 'incomplete');
    if (!model) return;
    await client.sendRequest(ModelsRequest.type, { action: 'select', name: model.name });
    deps.onModelsChanged();
  });

  register('workspaceLm.deleteModel', async () => {
    const model = await pickModel(deps, 'Model to delete', (m) => m.state !== 'training');
    if (!model) return;
    const confirm = await vscode.window.showWarningMessage(`Delete the model "${model.name}"?`, { modal: true, detail: `Its folder ${model.dir} is removed from disk.` }, 'Delete');
    if (confirm !== 'Delete') return;
    await client.sendRequest(ModelsRequest.type, { action: 'delete', name: model.name });
    deps.onModelsChanged();
  });

  register('workspaceLm.cancelTraining', async () => {
    const { cancelled, jobId } = await client.sendRequest(CancelRequest.type, {});
    void vscode.window.showInformationMessage(cancelled ? `Workspace LM: cancelling job ${jobId} after its current step.` : 'Workspace LM: no training is running.');
  });

  register('workspaceLm.summarizeFunction', async () => {
    const editor = vscode.window.activeTextEditor;
    if (!editor) return void vscode.window.showInformationMessage('Workspace LM: open a file and put the cursor in a function to summarize it.');
    const position = editor.selection.active;
    const version = editor.document.version;
    const result = await client.sendRequest(SummarizeRequest.type, {
      textDocument: { uri: editor.document.uri.toString() },
      position: { line: position.line, character: position.character },
    });
    const what = `${result.kind} ${result.name ?? '(anonymous)'}`;
    if (!result.docComment) {
      const hint = result.trainedForSummaries ? 'train longer' : `"${result.model}" was trained without summary examples`;
      return void vscode.window.showWarningMessage(`Workspace LM: the model proposed no summary for ${what} (${hint}).`);
    }
    const insert = 'Insert Doc Comment';
    const choice = await vscode.window.showInformationMessage(`Workspace LM: summary of ${what}: "${result.summary}"`, insert);
    if (choice !== insert) return;
    // Only where it was computed: an edit in the meantime may have moved the definition.
    if (editor.document.version !== version) return void vscode.window.showWarningMessage('Workspace LM: the file changed meanwhile; run Summarize Function again.');
    await editor.edit((edit) => edit.insert(new vscode.Position(result.insertLine, 0), result.docComment!));
  });

  register('workspaceLm.showMetrics', async () => {
    // The view's own focus command, contributed by VS Code for every view.
    await vscode.commands.executeCommand('workspaceLm.metrics.focus');
  });
}
