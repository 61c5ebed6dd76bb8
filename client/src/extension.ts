// The VS Code side of Workspace LM: starts the language server (dist/server.js over IPC), wires
// the commands, the status bar and its menu, the metrics view and the completion gate (snooze,
// languages turned off) to it, and stops it. Every decision about models, training and
// completions lives in the server.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { MetricsNotification, MetricsHistoryRequest, ModelsRequest, StatusNotification, type InitializationOptions } from '../../protocol/src/customMessages';
import { registerCommands } from './commands';
import { CompletionGate } from './completionGate';
import { StatusBar } from './statusBar';
import { registerStatusMenu } from './statusMenu';
import { registerMetricsView, countInlineCompletions, UsageCounter } from './metricsView';

const JOB_RUNNING_CONTEXT = 'workspaceLm.jobRunning'; // package.json: Cancel Training only while a job runs

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  // { log: true }: the language client calls .error()/.info() on the channel it is given.
  const output = vscode.window.createOutputChannel('Workspace LM', { log: true });
  const serverModule = context.asAbsolutePath(path.join('dist', 'server.js'));
  const serverOptions: ServerOptions = {
    run: { module: serverModule, transport: TransportKind.ipc },
    debug: { module: serverModule, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6011'] } },
  };
  // Completions shown and accepted, counted here for the metrics panel and never sent anywhere.
  const usage = new UsageCounter(context.workspaceState);
  // Snoozed, or off for the document's language: the request never reaches the server.
  const gate = new CompletionGate();
  const fileWatcher = vscode.workspace.createFileSystemWatcher('**/*');
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    middleware: gate.middleware(countInlineCompletions(context, usage).provideInlineCompletionItems),
    // Files changed on disk outside the editor: the server decides which ones count (its n-gram takes them in).
    synchronize: { configurationSection: 'workspaceLm', fileEvents: fileWatcher },
    outputChannel: output,
    // A function: re-read on restart, e.g. after the user trusts the workspace.
    initializationOptions: (): InitializationOptions => ({
      storageDir: (context.storageUri ?? context.globalStorageUri).fsPath,
      trusted: vscode.workspace.isTrusted,
    }),
  };
  const languageClient = new LanguageClient('workspaceLm', 'Workspace LM', serverOptions, clientOptions);
  client = languageClient;

  // The language client keeps one handler per notification method: each is fanned out from here.
  const statusEvents = new vscode.EventEmitter<StatusNotification.Params>();
  const metricsEvents = new vscode.EventEmitter<MetricsNotification.Params>();
  let latestStatus: StatusNotification.Params | null = null;
  const statusBar = new StatusBar(gate);
  const { provider: metricsView } = registerMetricsView(context, {
    listRuns: async () => (await languageClient.sendRequest(ModelsRequest.type, { action: 'list' })).models,
    readRun: async (name) => languageClient.sendRequest(MetricsHistoryRequest.type, { model: name }),
    deleteRun: async (name) => void (await languageClient.sendRequest(ModelsRequest.type, { action: 'delete', name })),
    selectRun: async (name) => void (await languageClient.sendRequest(ModelsRequest.type, { action: 'select', name })),
    onMetrics: metricsEvents.event,
    onStatus: statusEvents.event,
  }, usage);
  context.subscriptions.push(
    output,
    gate,
    fileWatcher,
    statusBar,
    statusEvents,
    metricsEvents,
    languageClient.onNotification(StatusNotification.type, (status) => statusEvents.fire(status)),
    languageClient.onNotification(MetricsNotification.type, (metrics) => metricsEvents.fire(metrics)),
    statusEvents.event((status) => {
      latestStatus = status;
      statusBar.render(status);
      // The preparation from the base model (seconds, started by the server) is not a training to cancel.
      void vscode.commands.executeCommand('setContext', JOB_RUNNING_CONTEXT, status.job !== null && status.job.kind !== 'prepare');
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void languageClient.restart()),
  );
  registerCommands(context, { client: languageClient, output, onModelsChanged: (reread) => void metricsView.refresh(reread) });
  registerStatusMenu(context, { gate, output, status: () => latestStatus });
  await languageClient.start();
}

export function deactivate(): Thenable<void> | undefined {
  return client?.stop();
}
