// The VS Code side of Workspace LM: starts the language server (dist/server.js over IPC), wires
// the commands, the status bar and the metrics view to it, and stops it. Every decision about
// models, training and completions lives in the server.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { MetricsNotification, MetricsHistoryRequest, ModelsRequest, StatusNotification, type InitializationOptions } from '../../server/src/protocol';
import { registerCommands } from './commands';
import { StatusBar } from './statusBar';
import { registerMetricsView, countInlineCompletions, UsageCounter } from './metricsView';

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
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    middleware: countInlineCompletions(context, usage),
    synchronize: { configurationSection: 'workspaceLm' },
    outputChannel: output,
    // A function: re-read on restart, e.g. after the user trusts the workspace.
    initializationOptions: (): InitializationOptions => ({
      storageDir: (context.storageUri ?? context.globalStorageUri).fsPath,
      trusted: vscode.workspace.isTrusted,
    }),
  };
  const languageClient = new LanguageClient('workspaceLm', 'Workspace LM', serverOptions, clientOptions);
  client = languageClient;

  const statusBar = new StatusBar();
  const { provider: metricsView } = registerMetricsView(context, {
    listRuns: async () => (await languageClient.sendRequest(ModelsRequest.type, { action: 'list' })).models,
    readRun: async (name) => languageClient.sendRequest(MetricsHistoryRequest.type, { model: name }),
    deleteRun: async (name) => void (await languageClient.sendRequest(ModelsRequest.type, { action: 'delete', name })),
    selectRun: async (name) => void (await languageClient.sendRequest(ModelsRequest.type, { action: 'select', name })),
    onMetrics: (listener) => languageClient.onNotification(MetricsNotification.type, listener),
    onStatus: (listener) => languageClient.onNotification(StatusNotification.type, listener),
  }, usage);
  context.subscriptions.push(
    output,
    statusBar,
    languageClient.onNotification(StatusNotification.type, (status) => statusBar.render(status)),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void languageClient.restart()),
  );
  registerCommands(context, { client: languageClient, output, onModelsChanged: () => void metricsView.refresh() });
  await languageClient.start();
}

export function deactivate(): Thenable<void> | undefined {
  return client?.stop();
}
