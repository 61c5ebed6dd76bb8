// The editor's side of the language server, for benchmarks: the built server (dist/server.js) as a
// child process over stdio, initialized on one workspace folder, and the messages VS Code sends
// while a user types: didOpen, an incremental didChange per keystroke, an automatic inline
// completion request after each. Every request is timed from the client, and classified with the
// serving session's counters (workspaceLm/completionStats) read before and after it: a request
// that ran the model moved them, a cache or typed-ahead hit did not. The server's own log line
// for the request (its source: model, cache, typed-ahead, none) is kept beside it.
// It measures; it decides nothing about completions.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import {
  CompletionStatsRequest,
  MetricsNotification,
  StatusNotification,
  type CompletionStats,
  type InitializationOptions,
} from '../protocol/src/customMessages';

/** dist/server.js of this checkout (the bench runs from the repository root, as `npm run bench` does). */
export const SERVER_JS = path.resolve('dist', 'server.js');

const AUTOMATIC = 2; // InlineCompletionTriggerKind.Automatic: as typing triggers it (with the debounce setting)

export interface Position { line: number; character: number }

/** A completion request as the client saw it, and what it cost the session. */
export interface TimedRequest {
  ms: number; // client-observed: request sent → response received
  source: 'model' | 'cache' | 'typed-ahead' | 'none' | 'unknown'; // the server's log line; 'unknown' when none was read
  reason?: string; // the server's reason for nothing ('no prompt', 'junk', ...)
  serverMs?: number; // the server's own figure for the request (InlineCompleter, debounce included)
  reachedModel: boolean; // the session's request counter moved
  phases?: CompletionStats['ms']; // the session's milliseconds for this request, per phase
  prefill?: number; // prompt positions run through the model (the rest came from the KV cache)
  prompt?: number;
  shown: boolean; // an item came back
}

export class LspDriver {
  readonly connection: MessageConnection;
  readonly statuses: StatusNotification.Params[] = [];
  readonly metrics: MetricsNotification.Params[] = [];
  private readonly completionLogs: string[] = [];
  private readonly waiters = new Set<() => void>();
  private versions = new Map<string, number>();

  private constructor(readonly child: ChildProcess) {
    this.connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    this.connection.onNotification(StatusNotification.method, (p: StatusNotification.Params) => this.push(this.statuses, p));
    this.connection.onNotification(MetricsNotification.method, (p: MetricsNotification.Params) => this.push(this.metrics, p));
    this.connection.onNotification('window/logMessage', (p: { message: string }) => {
      if (p.message.startsWith('completion ')) this.completionLogs.push(p.message);
    });
    this.connection.onNotification('window/showMessage', () => undefined);
    this.connection.onNotification('$/progress', () => undefined);
    this.connection.onRequest('window/showMessageRequest', () => null);
    this.connection.onRequest('window/workDoneProgress/create', () => null);
    this.connection.listen();
  }

  /** Starts the built server on `folder` and initializes it as an editor would. */
  static async start(folder: string, init: InitializationOptions): Promise<LspDriver> {
    const child = spawn(process.execPath, [SERVER_JS, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr!.on('data', () => undefined); // onnxruntime warnings; the protocol is on stdout
    const driver = new LspDriver(child);
    const uri = pathToFileURL(folder).href;
    await driver.connection.sendRequest('initialize', {
      processId: process.pid,
      rootUri: uri,
      workspaceFolders: [{ uri, name: path.basename(folder) }],
      capabilities: { window: { workDoneProgress: false } },
      initializationOptions: init,
    });
    await driver.connection.sendNotification('initialized', {});
    return driver;
  }

  private push<T>(list: T[], value: T): void {
    list.push(value);
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves once `check` holds (re-checked on each notification), or rejects after `timeoutMs`. */
  until<T>(what: string, check: () => T | undefined | false | null, timeoutMs: number): Promise<T> {
    const now = check();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`));
      }, timeoutMs);
      const wake = () => {
        const value = check();
        if (!value) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(value);
      };
      this.waiters.add(wake);
    });
  }

  /** The latest status notification. */
  get status(): StatusNotification.Params | undefined {
    return this.statuses[this.statuses.length - 1];
  }

  async stats(): Promise<CompletionStatsRequest.Result> {
    return this.connection.sendRequest(CompletionStatsRequest.method, {});
  }

  async open(file: string, languageId: string): Promise<{ uri: string; text: string }> {
    const text = readFileSync(file, 'utf8');
    const uri = pathToFileURL(file).href;
    this.versions.set(uri, 1);
    await this.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId, version: 1, text } });
    return { uri, text };
  }

  /** One incremental edit: `text` replaces the range. */
  async change(uri: string, start: Position, end: Position, text: string): Promise<void> {
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    await this.connection.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: [{ range: { start, end }, text }] });
  }

  /** An automatic inline completion request at `at`, timed and classified. */
  async complete(uri: string, at: Position): Promise<TimedRequest> {
    const before = (await this.stats()).stats;
    const logged = this.completionLogs.length;
    const started = performance.now();
    const result = (await this.connection.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri },
      position: at,
      context: { triggerKind: AUTOMATIC },
    })) as { items?: { insertText: string }[] } | null;
    const ms = performance.now() - started;
    const after = (await this.stats()).stats;
    const request: TimedRequest = { ms, source: 'unknown', reachedModel: false, shown: Boolean(result?.items?.length) };
    // The server logs each request before it answers, so its line has arrived by now.
    const line = this.completionLogs.slice(logged).find((l) => l.startsWith(`completion ${at.line + 1}:${at.character + 1} `));
    const parsed = line ? /^completion \d+:\d+ (\S+)(?: \(([^)]*)\))? ([\d.]+) ms/.exec(line) : null;
    if (parsed) {
      request.source = (['model', 'cache', 'typed-ahead', 'none'].includes(parsed[1]) ? parsed[1] : 'unknown') as TimedRequest['source'];
      request.reason = parsed[2];
      request.serverMs = Number(parsed[3]);
    }
    this.completionLogs.length = 0;
    if (before && after && after.requests > before.requests) {
      request.reachedModel = true;
      request.prefill = after.prefillPositions - before.prefillPositions;
      request.prompt = after.promptPositions - before.promptPositions;
      request.phases = {} as CompletionStats['ms'];
      for (const key of Object.keys(after.ms) as (keyof CompletionStats['ms'])[]) request.phases[key] = after.ms[key] - (before.ms[key] ?? 0);
    }
    return request;
  }

  /** The server's memory from /proc (Linux): resident now and its high-water mark, in MB. */
  memory(): { rssMB: number; hwmMB: number } | null {
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      return { rssMB: Math.round(kb('VmRSS') / 1024), hwmMB: Math.round(kb('VmHWM') / 1024) };
    } catch {
      return null;
    }
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const timer = setTimeout(() => this.child.kill(), 20_000);
    try {
      await this.connection.sendRequest('shutdown');
      await this.connection.sendNotification('exit');
    } catch {
      this.child.kill();
    }
    await exited;
    clearTimeout(timer);
    this.connection.dispose();
  }
}
