// The fault suite's shared kit: a seeded generator, the tally every fault file keeps (what was
// tried and how each input was answered), the built CLI and language server run as a user would,
// and one tiny trained model the files copy instead of training their own. Holds no tests; run.ts
// sums the tallies and prints the closing figures.
//
// An input is answered in one of four ways, and only the last is a failure:
//   error    a clear error: a response error with a message (not an internal one), or one "wlm: " line
//   defined  an answer the protocol defines for it (no completion for a document that is not open)
//   skip     left out and counted, with the reason (a binary file; a case this machine cannot make)
//   crash    anything else: a dead process, a hang, a stack trace, an internal error, a wrong answer
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ResponseError } from 'vscode-jsonrpc/node';
import { LspClient, repoRoot, fixture } from '../lsp/lspClient';
import type { InitializationOptions } from '../../protocol/src/customMessages';
import { ModelStore } from '../../models/src/model/store';
import { CompletionSession } from '../../models/src/infer/session';

export { repoRoot, fixture };

export const SEED = Number(process.env.WLM_FAULTS_SEED ?? 15);
export const cliJs = path.join(repoRoot, 'dist', 'cli.js');

// ---------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32): the same seed tries the same inputs at the same moments.

export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
}

/** Values of every wrong type, for any field (JSON has no undefined: a missing field is left out). */
export const NONSENSE: readonly unknown[] = [
  null, true, false, 0, -1, -2147483649, 1.5, 1e308, '', 'x', '../../etc/passwd', 'ünïcødé ✓', 'a'.repeat(5000), [], [1, 'a'], {}, { nested: { deep: [null] } },
];

// ---------------------------------------------------------------------------------------------
// The tally

export type Outcome =
  | { kind: 'error'; message: string }
  | { kind: 'defined'; what: string }
  | { kind: 'skip'; reason: string }
  | { kind: 'crash'; detail: string };

export interface TallyFile {
  file: string;
  inputs: number;
  errors: number;
  defined: number;
  skips: Record<string, number>;
  crashes: { entry: string; input: string; detail: string }[];
  kills: { tried: number; survived: number; detail: string[] };
  sockets: { traced: number; inet: number; lines: string[] };
  secrets: { tried: number; reproduced: number; detail: string[] }; // completions asked at planted secrets, and those that gave one back
  notes: string[];
  byEntry: Record<string, number>;
  outcomes: { entry: string; input: string; kind: Outcome['kind']; text: string }[]; // every answer, for reading afterwards
}

/** Messages a user could not act on: the words of a JavaScript bug, not of a check. */
const INTERNAL_WORDS = /Cannot read propert|is not a function|is not iterable|undefined is not|of undefined|of null|Maximum call stack|\bat .*:\d+:\d+\)/;
/** Raw bytes a terminal would act on (escape sequences) or show as noise: never in a message. */
const CONTROL_CHARS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]/;

/** Why a message is not one a user can act on, or null when it is. */
export function unclear(message: string): string | null {
  if (!message.trim()) return 'empty message';
  if (INTERNAL_WORDS.test(message)) return 'the words of a JavaScript bug';
  if (CONTROL_CHARS.test(message)) return 'raw control characters or undecodable bytes';
  return null;
}

export class Tally {
  readonly data: TallyFile;
  constructor(file: string) {
    this.data = { file, inputs: 0, errors: 0, defined: 0, skips: {}, crashes: [], kills: { tried: 0, survived: 0, detail: [] }, sockets: { traced: 0, inet: 0, lines: [] }, secrets: { tried: 0, reproduced: 0, detail: [] }, notes: [], byEntry: {}, outcomes: [] };
  }

  record(entry: string, input: string, outcome: Outcome): Outcome {
    this.data.inputs++;
    this.data.byEntry[entry] = (this.data.byEntry[entry] ?? 0) + 1;
    const text = outcome.kind === 'error' ? outcome.message : outcome.kind === 'defined' ? outcome.what : outcome.kind === 'skip' ? outcome.reason : outcome.detail;
    this.data.outcomes.push({ entry, input: input.slice(0, 200), kind: outcome.kind, text: text.slice(0, 300) });
    switch (outcome.kind) {
      case 'error':
        this.data.errors++;
        break;
      case 'defined':
        this.data.defined++;
        break;
      case 'skip':
        this.data.skips[outcome.reason] = (this.data.skips[outcome.reason] ?? 0) + 1;
        break;
      case 'crash':
        this.data.crashes.push({ entry, input: input.slice(0, 200), detail: outcome.detail.slice(0, 500) });
        break;
    }
    return outcome;
  }

  /** Runs one input with a time limit: a hang is a crash. */
  async probe(entry: string, input: string, run: () => Promise<Outcome>, limitMs = 30_000): Promise<Outcome> {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<Outcome>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'crash', detail: `no answer within ${limitMs} ms (hang)` }), limitMs);
    });
    try {
      const outcome = await Promise.race([run().catch((err: unknown): Outcome => ({ kind: 'crash', detail: `the probe threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}` })), hang]);
      return this.record(entry, input, outcome);
    } finally {
      clearTimeout(timer);
    }
  }

  note(line: string): void {
    this.data.notes.push(line);
  }

  /** Writes the tally where run.ts collects it, and fails the file on any crash. */
  finish(): void {
    const dir = process.env.WLM_FAULTS_TALLY_DIR;
    if (dir) writeFileSync(path.join(dir, `${this.data.file}.json`), JSON.stringify(this.data, null, 1));
    else console.log(`fault tally ${this.data.file}: ${JSON.stringify(this.data)}`);
    assert.deepEqual(this.data.crashes, [], `${this.data.file}: inputs that crashed, hung or got an unclear answer`);
  }
}

/** How a JSON-RPC answer to a bad request reads: a clear error, or a crash. */
export function classifyRejection(err: unknown): Outcome {
  if (!(err instanceof ResponseError)) return { kind: 'crash', detail: `not a response error: ${err instanceof Error ? err.message : String(err)}` };
  if (err.code === -32603) return { kind: 'crash', detail: `internal error (an uncaught exception in the handler): ${err.message}` };
  const why = unclear(err.message);
  if (why) return { kind: 'crash', detail: `unclear message (${why}; code ${err.code}): ${err.message}` };
  return { kind: 'error', message: err.message };
}

/** A request that must fail: a clear response error, or a crash. */
export async function expectRejected(promise: Promise<unknown>): Promise<Outcome> {
  try {
    const value = await promise;
    return { kind: 'crash', detail: `accepted a bad input; answered ${JSON.stringify(value)?.slice(0, 200)}` };
  } catch (err) {
    return classifyRejection(err);
  }
}

// ---------------------------------------------------------------------------------------------
// The CLI (dist/cli.js, as installed)

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function wlmSync(args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): CliRun {
  const started = performance.now();
  const r = spawnSync(process.execPath, [cliJs, ...args], {
    cwd: opts.cwd ?? repoRoot,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    env: { ...process.env, WLM_DEBUG: '', ...opts.env },
    maxBuffer: 64 << 20,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms: performance.now() - started };
}

export function wlm(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, [cliJs, ...args], { cwd: opts.cwd ?? repoRoot, env: { ...process.env, WLM_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** A bad command line must end with exactly one "wlm: " line, a non-zero exit and no stack. */
export function classifyCliFailure(r: CliRun): Outcome {
  if (r.signal) return { kind: 'crash', detail: `killed by ${r.signal} (a hang?) after ${r.ms.toFixed(0)} ms; stderr: ${r.stderr.slice(-300)}` };
  if (r.code === 0) return { kind: 'crash', detail: `exit 0 for a bad input; stdout: ${r.stdout.slice(0, 200)} stderr: ${r.stderr.slice(-200)}` };
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('wlm: '));
  if (lines.length !== 1) return { kind: 'crash', detail: `exit ${r.code} with ${lines.length} "wlm: " lines; stderr: ${r.stderr.slice(-400)}` };
  if (/\n\s+at .*\(.*:\d+:\d+\)/.test(r.stderr)) return { kind: 'crash', detail: `a stack trace: ${r.stderr.slice(-400)}` };
  const why = unclear(r.stderr.slice(r.stderr.indexOf('wlm: ')));
  if (why) return { kind: 'crash', detail: `unclear error (${why}): ${JSON.stringify(r.stderr.slice(-400))}` };
  return { kind: 'error', message: lines[0] };
}

// ---------------------------------------------------------------------------------------------
// One tiny trained model, shared (run.ts trains it once and passes its folder on)

export const TINY_ARGS = ['--preset', 'tiny', '--steps', '30'];

export function sharedModel(): string {
  const given = process.env.WLM_FAULTS_MODEL;
  if (given && existsSync(path.join(given, 'model.onnx'))) return given;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wlm-faults-model-'));
  const out = path.join(dir, 'tiny');
  const r = wlmSync(['train', fixture, ...TINY_ARGS, '--out', out]);
  assert.equal(r.code, 0, `training the shared tiny model failed: ${r.stderr}`);
  process.env.WLM_FAULTS_MODEL = out;
  return out;
}

/** A copy of the shared model under `modelsDir/name`. */
export function copyModel(modelsDir: string, name: string): string {
  const dir = path.join(modelsDir, name);
  mkdirSync(modelsDir, { recursive: true });
  cpSync(sharedModel(), dir, { recursive: true });
  return dir;
}

/** The steps a TINY_ARGS run trains. */
export const TINY_STEPS = Number(TINY_ARGS[TINY_ARGS.indexOf('--steps') + 1]);

/** A scratch folder holding a models folder whose one model, a copy of the shared one, is active. */
export async function modelsWithActive(prefix: string, active: string): Promise<{ tmp: string; modelsDir: string; store: ModelStore }> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), prefix));
  const modelsDir = path.join(tmp, 'models');
  copyModel(modelsDir, active);
  const store = new ModelStore(modelsDir);
  await store.writeActive(active);
  return { tmp, modelsDir, store };
}

// ---------------------------------------------------------------------------------------------
// The language server over stdio, with workspace/configuration answered by the test

export interface FaultServer {
  client: LspClient;
  exited: () => boolean;
  stderr: () => string;
}

export async function startFaultServer(init: InitializationOptions, rootDir: string, configuration?: () => unknown): Promise<FaultServer> {
  const child: ChildProcess = spawn(process.execPath, [path.join(repoRoot, 'dist', 'server.js'), '--stdio'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let exited = false;
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-20_000)));
  child.on('exit', () => (exited = true));
  const client = new LspClient(child);
  client.connection.onRequest('window/workDoneProgress/create', () => null);
  if (configuration) client.connection.onRequest('workspace/configuration', (p: { items: unknown[] }) => p.items.map(() => configuration()));
  await client.connection.sendRequest('initialize', {
    processId: process.pid,
    rootUri: pathToFileURL(rootDir).href,
    workspaceFolders: [{ uri: pathToFileURL(rootDir).href, name: 'project' }],
    capabilities: { workspace: { configuration: Boolean(configuration) }, window: { workDoneProgress: false } },
    initializationOptions: init,
  });
  await client.connection.sendNotification('initialized', {});
  return { client, exited: () => exited, stderr: () => stderr };
}

export async function stopFaultServer(server: FaultServer): Promise<void> {
  if (server.exited()) return;
  const gone = new Promise<void>((resolve) => server.client.process.once('exit', () => resolve()));
  try {
    await server.client.connection.sendRequest('shutdown');
    await server.client.connection.sendNotification('exit');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
  } finally {
    if (!server.exited()) server.client.process.kill('SIGKILL');
    server.client.connection.dispose();
  }
}

/** Opens a model folder as the server would and completes once in the fixture: null when it serves, else what went wrong. */
export async function serves(dir: string): Promise<string | null> {
  let session: CompletionSession;
  try {
    session = await CompletionSession.open(dir);
  } catch (err) {
    return `does not load: ${(err as Error).message}`;
  }
  try {
    const text = readFileSync(path.join(fixture, 'src', 'inventory.ts'), 'utf8');
    const at = text.indexOf('\n', 200);
    const result = await session.complete({ prefix: text.slice(0, at), suffix: text.slice(at), mode: 'line', maxTokens: 8 });
    return typeof result.text === 'string' ? null : `completed ${JSON.stringify(result)}`;
  } catch (err) {
    return `loads, then fails to complete: ${(err as Error).message}`;
  } finally {
    await session.close();
  }
}
