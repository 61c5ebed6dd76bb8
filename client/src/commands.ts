// The palette commands: each asks what it needs with quick picks and input boxes, sends one typed
// request (protocol/src/customMessages.ts) and shows the answer. No ML logic and no file access
// here: the server decides, validates and estimates. A job (train, fine-tune, evaluate) runs under
// a cancellable notification fed by the request's own work-done progress; Cancel cancels the request.
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { WorkDoneProgress, type LanguageClient, type WorkDoneProgressParams } from 'vscode-languageclient/node';
import {
  TrainRequest,
  FineTuneRequest,
  EvaluateRequest,
  ModelsRequest,
  CancelRequest,
  PresetsRequest,
  SummarizeRequest,
  type JobResult,
  type ModelInfo,
  type PresetEstimate,
} from '../../protocol/src/customMessages';
import { formatDuration } from '../media/panelProtocol';

export interface CommandDeps {
  client: LanguageClient;
  output: vscode.LogOutputChannel;
  onModelsChanged(reread?: boolean): void; // refresh views that list models; reread: their shown data too
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

/**
 * Runs a job request under a notification with a Cancel button. The request carries its own
 * work-done token, so the server reports on it (percentage by whichever budget ends the run first,
 * the time left) instead of creating a window progress; Cancel cancels the request, which the
 * server turns into a cancelled job that keeps its last checkpoint.
 */
function runJob<R>(deps: CommandDeps, title: string, send: (progress: WorkDoneProgressParams, token: vscode.CancellationToken) => Promise<R>): Thenable<R> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Workspace LM: ${title}`, cancellable: true }, async (progress, token) => {
    const workDoneToken = `workspaceLm-${randomUUID()}`;
    let shown = 0; // VS Code adds up increments; the server sends where it stands
    const subscription = deps.client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
      if (value.kind === 'end') return;
      const percentage = Math.max(shown, value.percentage ?? shown);
      progress.report({ message: value.message, increment: percentage - shown });
      shown = percentage;
    });
    try {
      return await send({ workDoneToken }, token);
    } catch (err) {
      // A job cancelled before it had anything to keep (e.g. while reading files) ends in an error.
      if (token.isCancellationRequested) throw new JobCancelled(`${title} cancelled`);
      throw err;
    } finally {
      subscription.dispose();
    }
  });
}

/** The user cancelled a job that had nothing to keep: said as information, not as an error. */
class JobCancelled extends Error {}

/** A training time as an estimate says it: to the second under a minute, else to the minute. */
function roughly(ms: number): string {
  return formatDuration(ms < 60_000 ? ms : Math.round(ms / 60_000) * 60_000);
}

/** "about 4 min of training here", "10 min (its time budget: about 830 of 2000 steps)", or why unknown. */
function describeEstimate(p: PresetEstimate): string {
  if (p.trainMs === null) return 'time here unknown until a first training on this machine';
  if (p.endsBy === 'maxMinutes') return `${roughly(p.trainMs)} (its time budget: about ${p.expectedSteps} of ${p.maxSteps} steps)`;
  return `about ${roughly(p.trainMs)} of training here`;
}

/** For a preset meant for a GPU on an engine that is not known to be one: train anyway? */
async function confirmGpuPreset(p: PresetEstimate, backend: PresetsRequest.Result['backend']): Promise<boolean> {
  const engine = backend.device === 'cpu' ? `the CPU${backend.name ? ` (${backend.name})` : ''}` : 'an engine not known to be a GPU';
  const cost = p.speed && p.trainMs !== null
    ? p.endsBy === 'maxMinutes'
      ? `At about ${p.speed.tokensPerSecond} tokens/s its ${p.maxMinutes}-minute budget stops it after about ${p.expectedSteps} of its ${p.maxSteps} steps (${Math.round((100 * (p.expectedSteps ?? 0)) / p.maxSteps)}% of the planned run).`
      : `At about ${p.speed.tokensPerSecond} tokens/s it takes about ${roughly(p.trainMs)}.`
    : 'Its speed here is not known.';
  const train = `Train ${p.name}`;
  const choice = await vscode.window.showWarningMessage(
    `The ${p.name} preset is meant for a GPU; here it would train on ${engine}.`,
    { modal: true, detail: `${cost}\nSpeed: ${p.speed?.detail ?? 'unknown'}. Engine: ${backend.reason}.\nThe CPU stays busy meanwhile; Cancel in the progress notification stops it and keeps its last checkpoint.` },
    train,
  );
  return choice === train;
}

function reportJob(deps: CommandDeps, result: JobResult): void {
  deps.onModelsChanged();
  const loss = result.bestValLoss !== null ? `, best val loss ${result.bestValLoss.toFixed(3)}` : '';
  if (result.stopReason === 'cancelled') {
    void vscode.window.showInformationMessage(`Workspace LM: cancelled at step ${result.step}. The last checkpoint of "${result.model}" is kept; the previous model still serves.`);
  } else {
    // How it started, said after the figures: from the base, or from scratch and why (the server may choose so itself).
    const start = result.start?.from === 'base' ? ' It started from the base model.' : result.start?.from === 'scratch' && result.kind === 'train' ? ` Trained from scratch: ${result.start.reason}.` : '';
    const early = result.stopReason === 'earlyStop' ? ' It stopped before its budget: the held-out loss had stopped improving, and the best weights are kept.' : '';
    void vscode.window.showInformationMessage(`Workspace LM: "${result.model}" trained (${result.step} steps${loss})${result.activated ? ' and now serves completions' : ''}.${early}${start}`);
  }
}

/** Runs a command body, turning a failed request into one clear message and a log line. */
function guarded(deps: CommandDeps, name: string, body: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body();
    } catch (err) {
      if (err instanceof JobCancelled) return void vscode.window.showInformationMessage(`Workspace LM: ${err.message}.`);
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
    const { presets, preferred, backend, base } = await client.sendRequest(PresetsRequest.type, {});
    // Only the preset with the base's architecture can start from it; the others train from scratch.
    const start = (p: PresetEstimate) => (!base ? '' : p.name === base.preset ? ' · fine-tunes the base model' : ' · from scratch (not the base model\'s size)');
    const items = presets.map((p) => ({
      label: p.name,
      description: `${describeEstimate(p)}${start(p)}${p.name === preferred ? ' · workspaceLm.preset' : ''}`,
      detail: `${p.description} ${p.speed ? `Speed: ${p.speed.tokensPerSecond} tokens/s, ${p.speed.detail}.` : ''}`.trim(),
      preset: p,
    }));
    items.sort((a, b) => Number(b.label === preferred) - Number(a.label === preferred));
    const picked = await vscode.window.showQuickPick(items, { placeHolder: 'Model size to train on this workspace (times for this machine)', matchOnDetail: true });
    if (!picked) return;
    if (picked.preset.meantForGpu && backend.device !== 'gpu' && !(await confirmGpuPreset(picked.preset, backend))) return;
    let fromScratch = false;
    if (base && picked.label === base.preset) {
      const starts = [
        { label: 'Fine-tune the pre-trained base model', description: 'recommended: it already knows TypeScript and JavaScript', fromScratch: false },
        { label: 'From scratch', description: "a tokenizer of this workspace's own and random weights", fromScratch: true },
      ];
      const chosen = await vscode.window.showQuickPick(starts, { placeHolder: 'Start from' });
      if (!chosen) return;
      fromScratch = chosen.fromScratch;
    }
    reportJob(deps, await runJob(deps, `training ${picked.label}`, (progress, token) => client.sendRequest(TrainRequest.type, { preset: picked.label, fromScratch, ...progress }, token)));
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
    const options = await vscode.window.showQuickPick([{ label: 'Default options' }, { label: 'Set steps, learning rate, frozen layers or adapters…' }], { placeHolder: 'Fine-tune options' });
    if (!options) return;
    if (options.label !== 'Default options') {
      const steps = await askNumber('Optimiser steps', true);
      if (steps === null) return;
      const learningRate = await askNumber("Peak learning rate (default: the preset's fine-tune rate; for adapters, its training rate)", false);
      if (learningRate === null) return;
      const freezeLayers = await askNumber('Freeze the lowest K transformer blocks', true);
      if (freezeLayers === null) return;
      // Low-rank adapters are the other way to train less than the whole model: asked when no block is frozen.
      const loraRank = freezeLayers ? undefined : await askNumber('Train low-rank adapters of rank R instead of the weights (8 is usual)', true);
      if (loraRank === null) return;
      Object.assign(params, { steps, learningRate, freezeLayers, loraRank: loraRank || undefined });
    }
    reportJob(deps, await runJob(deps, `fine-tuning ${base.name}`, (progress, token) => client.sendRequest(FineTuneRequest.type, { ...params, ...progress }, token)));
  });

  register('workspaceLm.evaluate', async () => {
    const model = await pickModel(deps, 'Model to evaluate against the n-gram baseline', (m) => m.state === 'ready' || m.state === 'incomplete');
    if (!model) return;
    const result = await runJob(deps, `evaluating ${model.name}`, (progress, token) => client.sendRequest(EvaluateRequest.type, { model: model.name, ...progress }, token));
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

  register('workspaceLm.refreshMetrics', async () => deps.onModelsChanged(true));

  register('workspaceLm.showMetrics', async () => {
    // The view's own focus command, contributed by VS Code for every view.
    await vscode.commands.executeCommand('workspaceLm.metrics.focus');
  });
}
