// The client side of the language server tests: the bundle built once per test file, a server
// process over stdio, and a JSON-RPC connection that keeps the notifications it receives so a test
// can wait on them (never on timers). Shared by the test files in test/lsp; holds no tests.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { MetricsNotification, StatusNotification, type InitializationOptions } from '../../protocol/src/customMessages';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const fixture = path.join(repoRoot, 'test', 'fixtures', 'sample-project');

type Listener<T> = (value: T) => void;

/** A client connection to one server process, with notifications kept for the test to look at. */
export class LspClient {
  readonly connection: MessageConnection;
  readonly statuses: StatusNotification.Params[] = [];
  readonly metrics: MetricsNotification.Params[] = [];
  readonly progress = new Map<string, { kind: string; percentage?: number; message?: string }[]>();
  readonly logs: string[] = [];
  readonly createdProgress: string[] = []; // tokens of server-initiated progress (what VS Code shows)
  private readonly waiters = new Set<() => void>();

  constructor(readonly process: ChildProcess) {
    this.connection = createMessageConnection(new StreamMessageReader(process.stdout!), new StreamMessageWriter(process.stdin!));
    this.connection.onNotification(StatusNotification.method, (p: StatusNotification.Params) => this.push(this.statuses, p));
    this.connection.onNotification(MetricsNotification.method, (p: MetricsNotification.Params) => this.push(this.metrics, p));
    this.connection.onNotification('window/logMessage', (p: { message: string }) => this.push(this.logs, p.message));
    this.connection.onNotification('window/showMessage', (p: { message: string }) => this.push(this.logs, p.message));
    this.connection.onRequest('window/showMessageRequest', (p: { message: string }) => {
      this.push(this.logs, p.message);
      return null;
    });
    this.connection.onNotification('$/progress', (p: { token: string; value: { kind: string; percentage?: number; message?: string } }) => {
      const list = this.progress.get(String(p.token)) ?? [];
      this.progress.set(String(p.token), list);
      this.push(list, p.value);
    });
    this.connection.listen();
  }

  private push<T>(list: T[], value: T): void {
    list.push(value);
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves once `check` holds, re-checked on every notification that arrives. */
  until<T>(check: () => T | undefined | false): Promise<T> {
    const now = check();
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => {
      const wake: Listener<void> = () => {
        const value = check();
        if (value) {
          this.waiters.delete(wake);
          resolve(value);
        }
      };
      this.waiters.add(wake);
    });
  }

  request<P, R>(type: { method: string; _?: unknown }, params: P): Promise<R> {
    return this.connection.sendRequest(type.method, params) as Promise<R>;
  }

  async completeAt(uri: string, line: number, character: number): Promise<{ items: { insertText: string }[] }> {
    return this.connection.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri },
      position: { line, character },
      context: { triggerKind: 1 }, // Invoked: no debounce, the latency is the model's
    });
  }
}

export function startServer(init: InitializationOptions, rootDir: string, serverProgress = false): Promise<{ client: LspClient; capabilities: Record<string, unknown> }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'server.js'), '--stdio'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr!.on('data', () => undefined); // onnxruntime warnings; the connection is stdout
  const client = new LspClient(child);
  client.connection.onRequest('window/workDoneProgress/create', (p: { token: string | number }) => {
    client.createdProgress.push(String(p.token));
    return null;
  });
  return client.connection
    .sendRequest('initialize', {
      processId: process.pid,
      rootUri: pathToFileURL(rootDir).href,
      workspaceFolders: [{ uri: pathToFileURL(rootDir).href, name: 'project' }],
      capabilities: { window: { workDoneProgress: serverProgress } },
      initializationOptions: init,
    })
    .then(async (result) => {
      await client.connection.sendNotification('initialized', {});
      return { client, capabilities: (result as { capabilities: Record<string, unknown> }).capabilities };
    });
}

export async function stopServer(client: LspClient): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => client.process.once('exit', (code) => resolve(code)));
  await client.connection.sendRequest('shutdown');
  await client.connection.sendNotification('exit');
  const code = await exited;
  client.connection.dispose();
  return code;
}

/** The latest status notification that satisfies `match` (ES2022 has no findLast). */
export function lastStatus(from: LspClient, match: (s: StatusNotification.Params) => boolean): StatusNotification.Params | undefined {
  return [...from.statuses].reverse().find(match);
}

/** Bundles dist/server.js (and the rest) from the current sources, as `npm run build` does. */
export function buildServer(): void {
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'build.mjs')], { cwd: repoRoot, stdio: 'inherit' });
}
