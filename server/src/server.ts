// The Workspace LM language server: connection (IPC from VS Code, or --stdio), capabilities and
// handler wiring. Decisions live in completion.ts (what to suggest), jobs.ts (training in a
// worker), store.ts (model folders) and settings.ts (what the user asked for).
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  createConnection,
  TextDocuments,
  TextDocumentSyncKind,
  ResponseError,
  InlineCompletionTriggerKind,
  type InitializeResult,
  WorkDoneProgressReporter,
  type CancellationToken,
  type Position,
} from 'vscode-languageserver/node';
import type { RequestType, NotificationType } from 'vscode-languageserver-protocol';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { CompletionSession } from '../../models/src/infer/session';
import { readMetricsLog } from '../../models/src/train/metricsLog';
import { readEvalReport } from '../../models/src/eval/report';
import { ActiveModel, InlineCompleter, type CompletionOutcome } from './completion';
import { Jobs, type JobContext, type JobProgress } from './jobs';
import { ModelStore } from './store';
import { parseSettings, completesLanguage, type Settings } from './settings';
import { summarizeAt, hoverSummaryAt } from './summaries';
import { estimatePresets, guessBackend, gpuEngineInstalled, readTrainedRuns } from './estimates';
import { PRESET_NAMES, loadPreset } from '../../models/src/model/config';
import { baseModelDir, findBaseModel } from '../../models/src/model/base';
import { hasModelConfig, readModelConfig } from '../../models/src/model/checkpoint';
import { SavedFiles } from './savedFiles';
import { AutoFineTune, AUTOMATIC_RUN } from './autoFineTune';
import {
  ErrorCodes,
  TrainRequest,
  FineTuneRequest,
  EvaluateRequest,
  ModelsRequest,
  CancelRequest,
  PresetsRequest,
  CompletionStatsRequest,
  MetricsHistoryRequest,
  SummarizeRequest,
  MetricsNotification,
  StatusNotification,
  type InitializationOptions,
} from '../../protocol/src/customMessages';

const connection = createConnection();
const documents = new TextDocuments(TextDocument);

// customMessages.ts types its messages with the client's vscode-languageserver-protocol, a newer copy
// than the one inside vscode-languageserver: the two classes differ only in private fields, so
// handlers are registered by method name, typed through these two helpers.
function onRequest<P, R>(type: RequestType<P, R, void>, handler: (params: P, token: CancellationToken) => Promise<R> | R): void {
  connection.onRequest(type.method, async (params: P, token: CancellationToken): Promise<unknown> => handler(params, token));
}
function notify<P>(type: NotificationType<P>, params: P): void {
  void connection.sendNotification(type.method, params);
}

const server = {
  trusted: true,
  folder: null as string | null,
  storageDir: null as string | null,
  initSettings: undefined as unknown,
  canPullConfiguration: false,
  canCreateProgress: false,
  store: new ModelStore(path.join(os.tmpdir(), 'workspace-lm-unset')), // replaced at initialized
  baseDir: baseModelDir() as string | null, // initialization options may name another base, or none
};

// A model about to serve is warmed up first, so the user's first completions are not the ones
// that pay for compiling the completion path.
const active = new ActiveModel<CompletionSession>(async (dir) => {
  const session = await CompletionSession.open(dir, { onLog: (message) => connection.console.info(message) });
  await session.warmUp().catch((err: Error) => connection.console.warn(`warm-up of ${dir} failed (${err.message}); it serves all the same`));
  return session;
});
const completer = new InlineCompleter(active);
const jobs = new Jobs({
  onStatusChanged: () => sendStatus(),
  onMetrics: (params) => notify(MetricsNotification.type, params),
  log: (message) => connection.console.info(message),
});

/** A warning for the user (window/showMessage), also logged. */
function warn(message: string): void {
  connection.console.warn(message);
  connection.window.showWarningMessage(`Workspace LM: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Settings: pulled per document (workspace/configuration) and cached until they change

const settingsCache = new Map<string, Promise<Settings>>();
const reportedProblems = new Set<string>();

function getSettings(uri?: string): Promise<Settings> {
  const key = uri ?? '';
  let pending = settingsCache.get(key);
  if (!pending) {
    const raw: Promise<unknown> = server.canPullConfiguration
      ? connection.workspace.getConfiguration({ scopeUri: uri, section: 'workspaceLm' }).catch((err: Error) => {
          // The client could not answer: the defaults serve, and the next request asks again.
          settingsCache.delete(key);
          const problem = `could not read the workspaceLm settings from the editor (${err.message}); using the defaults`;
          if (!reportedProblems.has(problem)) {
            reportedProblems.add(problem);
            warn(problem);
          }
          return undefined;
        })
      : Promise.resolve(server.initSettings);
    pending = raw.then((value) => {
      const { settings, problems } = parseSettings(value);
      for (const problem of problems) {
        if (reportedProblems.has(problem)) continue;
        reportedProblems.add(problem);
        warn(problem);
      }
      return settings;
    });
    settingsCache.set(key, pending);
  }
  return pending;
}

function modelsDirFor(settings: Settings): string {
  if (settings.modelsDir) return path.resolve(server.folder ?? os.homedir(), settings.modelsDir.replace(/^~(?=$|[\\/])/, os.homedir()));
  if (server.storageDir) return path.join(server.storageDir, 'models');
  // A client that gave no storage: a per-workspace folder in the user's cache, never the workspace.
  const id = createHash('sha256').update(server.folder ?? 'no-folder').digest('hex').slice(0, 16);
  return path.join(os.homedir(), '.cache', 'workspace-lm', id, 'models');
}

async function jobContext(): Promise<JobContext> {
  await storeReady;
  return { store: server.store, active, settings: await getSettings(), folder: server.folder, trusted: server.trusted, baseDir: server.baseDir };
}

/** Opens the store for the current settings and serves its active model, if it can. */
async function loadStore(): Promise<void> {
  const dir = modelsDirFor(await getSettings());
  if (dir === server.store.modelsDir) return;
  // Another window on the same models folder: a wait for it is said in the log (store.ts, storeLock.ts).
  server.store = new ModelStore(dir, { holder: 'the Workspace LM language server of a VS Code window', onWait: (message) => connection.console.info(message) });
  connection.console.info(`models dir: ${dir}`);
  const name = await server.store.readActive();
  if (name === null) {
    await active.deactivate();
    void prepareFromBase();
  } else {
    try {
      await active.activate(name, await server.store.prepare(name, jobs.trainingModel));
      connection.console.info(`serving ${name} (${active.provider})`);
    } catch (err) {
      await active.deactivate();
      warn(`the active model "${name}" cannot be loaded: ${(err as Error).message}`);
    }
  }
  completer.reset();
  sendStatus();
}

/**
 * A workspace with no model of its own is served from the base model: a folder made from it
 * without training (its weights, this workspace's n-gram and completion mixture), in a job, served
 * once ready. Not in an untrusted workspace: the n-gram reads every file, so nothing serves there
 * until the workspace is trusted, as before there was a base.
 */
async function prepareFromBase(): Promise<void> {
  if (!server.trusted || !server.folder || jobs.status !== null) return;
  try {
    if (!(await findBaseModel(server.baseDir))) return;
  } catch (err) {
    warn(`the base model cannot be used: ${(err as Error).message}`);
    return;
  }
  const started = performance.now();
  try {
    const result = await jobs.prepare(await jobContext(), { reporter: { begin: () => {}, report: () => {}, done: () => {} }, cancelTokens: [] });
    connection.console.info(`completions from the base model ready in ${((performance.now() - started) / 1000).toFixed(1)} s (${result.model}${result.activated ? ', serving' : ''})`);
  } catch (err) {
    // An empty workspace or a cancel: said in the log; the status bar still says no model serves.
    connection.console.info(`no completions from the base model: ${(err as Error).message}`);
  }
}

function sendStatus(): void {
  notify(StatusNotification.type, {
    activeModel: active.name,
    provider: active.provider,
    job: jobs.status,
    trusted: server.trusted,
    modelsDir: server.store.modelsDir,
  });
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

connection.onInitialize((params): InitializeResult => {
  const init = (params.initializationOptions ?? {}) as InitializationOptions;
  server.trusted = init.trusted !== false;
  server.storageDir = typeof init.storageDir === 'string' && init.storageDir ? init.storageDir : null;
  server.initSettings = init.settings;
  if (init.baseModel === null) server.baseDir = null;
  else if (typeof init.baseModel === 'string' && init.baseModel) server.baseDir = baseModelDir(init.baseModel);
  const folderUri = params.workspaceFolders?.[0]?.uri ?? params.rootUri;
  server.folder = folderUri?.startsWith('file:') ? fileURLToPath(folderUri) : (params.rootPath ?? null);
  server.canPullConfiguration = Boolean(params.capabilities.workspace?.configuration);
  server.canCreateProgress = Boolean(params.capabilities.window?.workDoneProgress);
  return {
    capabilities: {
      // Saves too (no text: the file on disk is read as training reads it, savedFiles.ts).
      textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental, save: { includeText: false } },
      inlineCompletionProvider: true,
      hoverProvider: true, // answers only with workspaceLm.summaryOnHover on
    },
    serverInfo: { name: 'workspace-lm' },
  };
});

/** Settles once the models dir is open and its active model loaded (or found unloadable). */
let storeReady: Promise<void> = Promise.resolve();
function reloadStore(): void {
  storeReady = loadStore().catch((err: Error) => connection.console.error(`cannot open the models dir: ${err.message}`));
}

connection.onInitialized(() => reloadStore());

connection.onDidChangeConfiguration((params) => {
  // A client that cannot be asked (no workspace/configuration) may push its settings here instead.
  const pushed = (params?.settings as { workspaceLm?: unknown } | null | undefined)?.workspaceLm;
  if (!server.canPullConfiguration && pushed !== undefined) server.initSettings = pushed;
  settingsCache.clear();
  completer.reset();
  reloadStore();
  void autoFineTune.settingsChanged();
});

connection.onShutdown(async () => {
  autoFineTune.dispose();
  jobs.cancel({});
  await active.deactivate();
});

// ---------------------------------------------------------------------------------------------
// Inline completions

/**
 * The open document and the cursor a position request names. Malformed params are the client's
 * error and answered as one; a document that is not open has nothing to complete (null). A
 * character past the end of its line means the line's end, as the protocol says.
 */
function documentAt(method: string, params: unknown): { document: TextDocument; position: Position } | null {
  const p = params as { textDocument?: { uri?: unknown }; position?: { line?: unknown; character?: unknown } } | null;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new ResponseError(ErrorCodes.invalidParams, `${method}: params must be an object, got ${JSON.stringify(params)}`);
  const uri = p.textDocument?.uri;
  if (typeof uri !== 'string') throw new ResponseError(ErrorCodes.invalidParams, `${method}: textDocument.uri must be a string, got ${JSON.stringify(p.textDocument)?.slice(0, 100)}`);
  const { line, character } = p.position ?? {};
  if (!Number.isInteger(line) || !Number.isInteger(character) || (line as number) < 0 || (character as number) < 0) {
    throw new ResponseError(ErrorCodes.invalidParams, `${method}: position must be a line and a character, both integers from 0, got ${JSON.stringify(p.position)?.slice(0, 100)}`);
  }
  const document = documents.get(uri);
  if (!document) return null;
  if ((line as number) >= document.lineCount) {
    throw new ResponseError(ErrorCodes.invalidParams, `${method}: line ${line} is outside ${uri} (it has ${document.lineCount} lines; is the client's copy out of step?)`);
  }
  return { document, position: { line: line as number, character: character as number } };
}

connection.languages.inlineCompletion.on(async (params, token) => {
  const at = documentAt('textDocument/inlineCompletion', params);
  if (!at) return null;
  const { document, position } = at;
  const settings = await getSettings(document.uri);
  if (!completesLanguage(settings, document.languageId)) return null;
  // An explicit request (a keybinding) is not typing: no debounce.
  const debounceMs = params.context?.triggerKind === InlineCompletionTriggerKind.Invoked ? 0 : settings.debounceMs;
  let outcome: CompletionOutcome;
  try {
    outcome = await completer.complete({ text: document.getText(), offset: document.offsetAt(position), uri: document.uri }, { ...settings, debounceMs }, token);
  } catch (err) {
    // A failing model must not put an error toast in front of the user at every keystroke.
    connection.console.error(`completion failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return { items: [] };
  }
  connection.console.debug(`completion ${position.line + 1}:${position.character + 1} ${outcome.source}${outcome.reason ? ` (${outcome.reason})` : ''} ${outcome.ms.toFixed(1)} ms ${JSON.stringify(outcome.text)}`);
  if (outcome.text === null) return { items: [] };
  return { items: [{ insertText: outcome.text, range: { start: position, end: position } }] };
});

onRequest(CompletionStatsRequest.type, async () => {
  await storeReady;
  const stats = await active.use(async (session) => session.stats());
  return { model: active.name, provider: active.provider, stats };
});

// ---------------------------------------------------------------------------------------------
// Jobs: train, fine-tune, evaluate, cancel

/** The request's own progress when the client passed a token, else one the server creates. */
async function progressFor(params: { workDoneToken?: string | number }, token: CancellationToken): Promise<JobProgress> {
  const attached = connection.window.attachWorkDoneProgress(params.workDoneToken);
  if (server.canCreateProgress && WorkDoneProgressReporter.isNullInstance(attached)) {
    const created = await connection.window.createWorkDoneProgress();
    return { reporter: created, cancelTokens: [token, created.token] };
  }
  return { reporter: attached, cancelTokens: [token] };
}

function requireObject(method: string, params: unknown): void {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    throw new ResponseError(ErrorCodes.invalidParams, `${method}: params must be an object, got ${JSON.stringify(params)}`);
  }
}

onRequest(TrainRequest.type, async (params, token) => {
  requireObject(TrainRequest.method, params);
  const ctx = await jobContext();
  return jobs.train(params, ctx, await progressFor(params, token));
});

onRequest(FineTuneRequest.type, async (params, token) => {
  requireObject(FineTuneRequest.method, params);
  const ctx = await jobContext();
  return jobs.fineTune(params, ctx, await progressFor(params, token));
});

onRequest(EvaluateRequest.type, async (params, token) => {
  params = params ?? {};
  requireObject(EvaluateRequest.method, params);
  const ctx = await jobContext();
  return jobs.evaluate(params, ctx, await progressFor(params, token));
});

onRequest(CancelRequest.type, (params) => jobs.cancel(params));

// How long each preset would train here, for the client's preset pick.
onRequest(PresetsRequest.type, async () => {
  await storeReady;
  const settings = await getSettings();
  const runs = await readTrainedRuns(server.store);
  const backend = guessBackend(settings.backend, runs, gpuEngineInstalled());
  const base = await findBaseModel(server.baseDir).catch(() => null);
  return { presets: estimatePresets(PRESET_NAMES.map(loadPreset), runs, backend), preferred: settings.preset, backend, base: base && { dir: base.dir, preset: base.config.preset } };
});

// ---------------------------------------------------------------------------------------------
// Models: list, select, delete, metrics

onRequest(ModelsRequest.type, async (params) => {
  requireObject(ModelsRequest.method, params);
  await storeReady;
  const store = server.store;
  const training = jobs.trainingModel;
  switch (params.action) {
    case 'list':
      break;
    case 'select': {
      const dir = await store.prepare(params.name, training);
      // A folder the store lists may still fail to load (damaged weights, a foreign model.onnx):
      // refused with the reason, and the model serving now stays.
      await active.activate(params.name, dir).catch((err: Error) => {
        throw new ResponseError(ErrorCodes.notFound, `model "${params.name}" cannot be used: ${err.message}`);
      });
      await store.writeActive(params.name);
      sendStatus();
      break;
    }
    case 'delete':
      if (params.name === training) await store.remove(params.name, training); // throws: still training
      if (active.name === params.name) await active.deactivate();
      await store.remove(params.name, training);
      sendStatus();
      break;
    default:
      throw new ResponseError(ErrorCodes.invalidParams, `unknown action ${JSON.stringify((params as { action?: unknown }).action)}; use "list", "select" or "delete"`);
  }
  return { ...(await store.list(training)), modelsDir: store.modelsDir };
});

onRequest(SummarizeRequest.type, async (params, token) => {
  requireObject(SummarizeRequest.method, params);
  const document = params.textDocument?.uri ? documents.get(params.textDocument.uri) : undefined;
  if (!document) throw new ResponseError(ErrorCodes.invalidParams, `document not open: ${JSON.stringify(params.textDocument?.uri)}`);
  const line = params.position?.line;
  if (!Number.isInteger(line) || line < 0 || line >= document.lineCount) {
    throw new ResponseError(ErrorCodes.invalidParams, `line ${JSON.stringify(line)} is outside the document (it has ${document.lineCount} lines)`);
  }
  const controller = new AbortController();
  const subscription = token.onCancellationRequested(() => controller.abort());
  try {
    const text = document.getText();
    const result = await active.use((session, model) => summarizeAt({ uri: document.uri, languageId: document.languageId, text }, line, { model, session }, controller.signal));
    if (result === null) throw new ResponseError(ErrorCodes.notFound, 'no model serves yet: train or select one first');
    return result;
  } finally {
    subscription.dispose();
  }
});

connection.onHover(async (params, token) => {
  const at = documentAt('textDocument/hover', params);
  if (!at || !(await getSettings(at.document.uri)).summaryOnHover) return null;
  const { document, position } = at;
  const controller = new AbortController();
  const subscription = token.onCancellationRequested(() => controller.abort());
  try {
    const text = document.getText();
    const summary = await active.use((session, model) => hoverSummaryAt({ uri: document.uri, languageId: document.languageId, text }, position.line, { model, session }, controller.signal));
    if (!summary) return null;
    return { contents: { kind: 'markdown', value: `**Workspace LM:** ${summary.replace(/[\\`*_[\]<>]/g, '\\$&')}` } };
  } catch (err) {
    // A hover is a glance: a failure is logged, never shown as an error.
    connection.console.error(`hover summary failed: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  } finally {
    subscription.dispose();
  }
});

onRequest(MetricsHistoryRequest.type, async (params) => {
  if (params !== null && params !== undefined) requireObject(MetricsHistoryRequest.method, params);
  const name = params?.model ?? active.name;
  if (!name) throw new ResponseError(ErrorCodes.invalidParams, 'no model: pass "model" or select a model first');
  await storeReady;
  const dir = server.store.dirOf(name);
  const [metricsText, evalReport] = await Promise.all([
    fs.readFile(path.join(dir, 'metrics.jsonl'), 'utf8').catch(() => null),
    // A damaged eval.json must not hide the training curves: said in the log, sent as none.
    readEvalReport(dir).catch((err: Error) => {
      connection.console.warn(err.message);
      return null;
    }),
  ]);
  // A folder made from the base without training has no curve: an empty history, not an error.
  if (metricsText === null && evalReport === null && !hasModelConfig(dir)) throw new ResponseError(ErrorCodes.notFound, `no metrics for model "${name}" in ${dir}`);
  const { metrics, badLines } = readMetricsLog(metricsText ?? '');
  return { model: name, metrics, badLines, eval: evalReport };
});

// A bug in a handler must cost one answer, not the server: log it and keep serving.
process.on('unhandledRejection', (reason) => connection.console.error(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`));

// ---------------------------------------------------------------------------------------------
// Keeping up with the code: saved files go into the workspace n-gram at once; with
// workspaceLm.autoFineTune, an idle editor fine-tunes the model on them.

const savedFiles = new SavedFiles({
  folder: () => server.folder,
  trusted: () => server.trusted,
  exclude: async () => (await getSettings()).exclude,
  take: async (files) => (await active.use(async (session) => session.takeSavedFiles(files))) ?? null,
  taken: (result, sources) => {
    if (sources > 0) autoFineTune.saved();
    if (!result || result.files === 0) return;
    completer.reset(); // cached completions were made with the old counts
    connection.console.info(`n-gram: took in ${result.files} saved file(s), +${result.tokensIn} -${result.tokensOut} tokens (${result.encodeMs.toFixed(0)} ms tokenizing, ${result.updateMs.toFixed(1)} ms counting)`);
  },
  log: (message) => connection.console.info(message),
});

const autoFineTune = new AutoFineTune({
  enabled: async () => server.trusted && (await getSettings()).autoFineTune,
  busy: () => jobs.status !== null,
  trainedAt: async () => (active.dir === null ? null : Date.parse((await readModelConfig(active.dir)).createdAt)),
  fineTune: async (cancel) => {
    const ctx = await jobContext();
    return jobs.fineTune({ scope: 'changed' }, ctx, { reporter: { begin: () => {}, report: () => {}, done: () => {} }, cancelTokens: [cancel] }, AUTOMATIC_RUN);
  },
  log: (message) => connection.console.info(message),
});

connection.onDidChangeWatchedFiles(({ changes }) => savedFiles.changed(changes));
documents.onDidSave(({ document }) => savedFiles.saved(document.uri));

// The completion mixture's cache learns from the open files as they change; nothing is retrained.
// TextDocuments reports an opened document as changed too: that is not typing.
let opening: string | null = null;
documents.onDidOpen(({ document }) => {
  opening = document.uri;
  completer.observeDocument(document.uri, document.getText());
  completer.documentOpened(document.uri, document.getText());
  savedFiles.opened(document.uri, document.getText());
});
documents.onDidChangeContent(({ document }) => {
  if (opening === document.uri) opening = null;
  else autoFineTune.typed();
  completer.observeDocument(document.uri, document.getText());
});
documents.onDidClose(({ document }) => {
  completer.forgetDocument(document.uri);
  savedFiles.closed(document.uri);
});
documents.listen(connection);
connection.listen();
