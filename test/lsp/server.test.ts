// The language server end to end: the real bundle (node dist/server.js --stdio) driven by a real
// JSON-RPC client connection. Trains a tiny model on a copy of the sample project with work-done
// progress and metrics observed, completes from it, cancels a second training midway (its last
// checkpoint stays, the first model keeps serving), fine-tunes on changed files, and checks that
// bad params get error responses while the server keeps serving. Waits on events, never on timers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fork, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, appendFileSync, readFileSync, readdirSync, utimesSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, ResponseError, CancellationTokenSource } from 'vscode-jsonrpc/node';
import {
  CancelRequest,
  ErrorCodes,
  EvaluateRequest,
  FineTuneRequest,
  MetricsHistoryRequest,
  ModelsRequest,
  PresetsRequest,
  SummarizeRequest,
  TrainRequest,
  type JobResult,
} from '../../protocol/src/customMessages';
import { DEFAULT_SETTINGS, parseSettings } from '../../server/src/settings';
import { changedFilesSince } from '../../models/src/data/changedFiles';
import { buildServer, fixture, lastStatus, LspClient, repoRoot, startServer, stopServer } from './lspClient';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function expectError(promise: Promise<unknown>, code: number, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ResponseError, `expected a ResponseError, got ${String(err)}`);
    assert.equal(err.code, code, `code of "${err.message}"`);
    assert.match(err.message, pattern);
    return true;
  });
}

let tmp: string;
let project: string;
let modelsDir: string;
let client: LspClient;
let capabilities: Record<string, unknown>;
const figures: Record<string, unknown> = {};
const docUri = () => pathToFileURL(path.join(project, 'src', 'inventory.ts')).href;
const typingUri = () => pathToFileURL(path.join(project, 'src', 'typing.ts')).href;
let docLines: string[] = [];
let typingLines: string[] = [];

before(async () => {
  buildServer();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-lsp-'));
  project = path.join(tmp, 'project');
  cpSync(fixture, project, { recursive: true });
  // A git repository, so that a fine-tune on "changed" files has a commit to diff against.
  const git = (...args: string[]) => execFileSync('git', ['-C', project, ...args], { stdio: 'ignore' });
  git('init', '-q');
  git('add', '-A');
  git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'fixture');
  modelsDir = path.join(tmp, 'models');
  // No base model: this suite follows models trained here from an empty models dir (base.test.ts serves the base).
  ({ client, capabilities } = await startServer({ baseModel: null, storageDir: path.join(tmp, 'storage'), settings: { modelsDir, preset: 'tiny', backend: 'auto', minTokenProbability: 0 } }, project));
  const text = readFileSync(path.join(project, 'src', 'inventory.ts'), 'utf8');
  docLines = text.split('\n');
  await client.connection.sendNotification('textDocument/didOpen', { textDocument: { uri: docUri(), languageId: 'typescript', version: 1, text } });
  // A second document, as the user is typing it: every line worth completing is cut half-way
  // through its content, and the completion sites sit at the cuts (an intact line's end would
  // rightly get nothing: the model knows a line break comes next).
  typingLines = docLines.map((line) => (line.trim().length > 3 ? line.slice(0, line.length - Math.floor(line.trim().length / 2)) : line));
  await client.connection.sendNotification('textDocument/didOpen', { textDocument: { uri: typingUri(), languageId: 'typescript', version: 1, text: typingLines.join('\n') } });
});

after(async () => {
  if (client) {
    const code = await stopServer(client);
    assert.equal(code, 0, 'the server exits cleanly after shutdown/exit');
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  console.log(`LSP figures: ${JSON.stringify(figures)}`);
});

/** Line ends of the open document that make distinct prompts (no cache hits between them). */
function completionSites(count: number, skip = 0): { line: number; character: number }[] {
  const sites: { line: number; character: number }[] = [];
  for (let line = 0; line < typingLines.length && sites.length < count + skip; line++) {
    if (typingLines[line].trim().length > 3) sites.push({ line, character: typingLines[line].length });
  }
  return sites.slice(skip);
}

test('initialize declares inline completions; the first status says no model', async () => {
  assert.equal(capabilities.inlineCompletionProvider, true);
  const status = await client.until(() => client.statuses.at(-1));
  assert.equal(status.activeModel, null);
  assert.equal(status.trusted, true);
  assert.equal(status.modelsDir, modelsDir);
  const empty = await client.completeAt(docUri(), 3, 0);
  assert.deepEqual(empty.items, [], 'no model: no items, no error');
});

test('bad params get error responses and the server keeps serving', async () => {
  await expectError(client.request(TrainRequest.type, { preset: 'huge' }), ErrorCodes.invalidParams, /unknown preset "huge".*tiny, small, base/);
  await expectError(client.request(TrainRequest.type, { steps: -3 }), ErrorCodes.invalidParams, /steps must be a positive integer, got -3/);
  await expectError(client.request(TrainRequest.type, { folder: path.join(tmp, 'nowhere') }), ErrorCodes.invalidParams, /folder not found/);
  await expectError(client.request(TrainRequest.type, null), ErrorCodes.invalidParams, /params must be an object/);
  await expectError(client.request(ModelsRequest.type, { action: 'select', name: '../../etc' }), ErrorCodes.invalidParams, /invalid model name/);
  await expectError(client.request(ModelsRequest.type, { action: 'select', name: 'missing' }), ErrorCodes.notFound, /no model named "missing"/);
  await expectError(client.request(ModelsRequest.type, { action: 'explode' }), ErrorCodes.invalidParams, /unknown action "explode"/);
  await expectError(client.request(FineTuneRequest.type, { scope: 'everything' }), ErrorCodes.invalidParams, /scope must be/);
  await expectError(client.request(CancelRequest.type, { jobId: 'x' }), ErrorCodes.invalidParams, /jobId must be an integer/);
  await expectError(client.connection.sendRequest('workspaceLm/nonsense', {}) as Promise<unknown>, -32601, /nonsense/);
  const list = await client.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'list' });
  assert.deepEqual(list.models, []);
  assert.deepEqual(await client.request(CancelRequest.type, {}), { cancelled: false, jobId: null });
});

test('a corrupt model folder is listed as corrupt with the reason, never loaded', async () => {
  const broken = path.join(modelsDir, 'broken');
  mkdirSync(broken, { recursive: true });
  writeFileSync(path.join(broken, 'config.json'), '{ "kind": "workspace-lm-model", ');
  const list = await client.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'list' });
  assert.deepEqual(list.models.map((m) => [m.name, m.state]), [['broken', 'corrupt']]);
  assert.match(list.models[0].reason ?? '', /corrupt model folder .*broken: config.json is not valid JSON/);
  await expectError(client.request(ModelsRequest.type, { action: 'select', name: 'broken' }), ErrorCodes.notFound, /cannot be used: corrupt model folder/);
  assert.equal(lastStatus(client, () => true)?.activeModel, null);
  const afterDelete = await client.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'delete', name: 'broken' });
  assert.deepEqual(afterDelete.models, []);
});

let firstModel = '';

test('train a tiny model: progress, metrics per step, then it serves completions', { timeout: 300_000 }, async () => {
  const token = 'train-1';
  const started = performance.now();
  const result = await client.request<TrainRequest.Params, JobResult>(TrainRequest.type, { preset: 'tiny', steps: 40, workDoneToken: token });
  figures.trainMs = Math.round(performance.now() - started);
  assert.equal(result.stopReason === 'cancelled', false);
  assert.equal(result.step, 40);
  assert.equal(result.activated, true);
  firstModel = result.model;

  const progress = client.progress.get(token) ?? [];
  assert.equal(progress[0]?.kind, 'begin');
  assert.equal(progress.at(-1)?.kind, 'end');
  assert.ok(progress.some((p) => p.kind === 'report' && p.percentage === 100), 'a report at 100%');
  const steps = client.metrics.filter((m) => m.model === firstModel).map((m) => m.metrics.step);
  assert.ok(steps.length >= 10, `metrics notifications: ${steps.length}`);
  assert.deepEqual(steps, [...steps].sort((a, b) => a - b), 'steps arrive in order');
  assert.equal(steps.at(-1), 40);
  const losses = client.metrics.filter((m) => m.model === firstModel).map((m) => m.metrics.trainLoss);
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses.at(-1)! < losses[0], `loss went down: ${losses[0]} -> ${losses.at(-1)}`);

  const status = await client.until(() => lastStatus(client, (s) => s.activeModel === firstModel && s.job === null));
  assert.ok(status.provider, 'a provider serves');

  // The first completion that shows text, trying distinct sites until one does.
  let shown: string | null = null;
  for (const site of completionSites(20)) {
    const { items } = await client.completeAt(typingUri(), site.line, site.character);
    if (items.length > 0) {
      shown = items[0].insertText;
      break;
    }
  }
  figures.trainRequestToFirstCompletionMs = Math.round(performance.now() - started);
  assert.ok(shown !== null && shown.trim() !== '', 'some site got a non-blank completion');

  const list = await client.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'list' });
  assert.equal(list.active, firstModel);
  const info = list.models.find((m) => m.name === firstModel)!;
  assert.equal(info.state, 'ready');
  assert.equal(info.preset, 'tiny');
  assert.equal(info.step, 40);
});

test('progress follows the budget to 100%; the presets then train as fast as the model just trained here', async () => {
  assert.ok(firstModel, 'needs the model trained above');
  const run = client.metrics.filter((m) => m.model === firstModel);
  assert.deepEqual([run.at(-1)?.percentage, run.at(-1)?.etaMs], [100, 0], 'the last step: all done, nothing left');
  assert.ok(run.every((m, i) => i === 0 || m.percentage >= run[i - 1].percentage), 'the percentage never goes back');
  assert.ok(run.some((m) => m.etaMs !== null && m.etaMs > 0), 'a time left while it ran');

  const { presets, preferred, backend } = await client.request<PresetsRequest.Params, PresetsRequest.Result>(PresetsRequest.type, {});
  assert.deepEqual(presets.map((p) => p.name), ['tiny', 'small', 'base']);
  assert.equal(preferred, 'tiny', 'the workspaceLm.preset setting');
  assert.equal(backend.device === 'gpu', false, `the tiny model trained on a CPU engine: ${JSON.stringify(backend)}`);
  const tiny = presets[0];
  assert.equal(tiny.speed?.source, 'here');
  assert.match(tiny.speed!.detail, new RegExp(firstModel));
  assert.equal(tiny.endsBy, 'maxSteps');
  assert.ok(tiny.trainMs! > 0 && tiny.expectedSteps === tiny.maxSteps);
  assert.equal(presets[2].meantForGpu, true);
  assert.equal(presets[2].endsBy, 'maxMinutes', 'base on a CPU: its time budget ends it');
});

test('summarize the method at the cursor with the serving model; bad positions are errors', { timeout: 60_000 }, async () => {
  assert.ok(firstModel, 'needs the model trained above');
  const line = docLines.findIndex((l) => l.startsWith('  restock('));
  const result = await client.request<SummarizeRequest.Params, SummarizeRequest.Result>(SummarizeRequest.type, { textDocument: { uri: docUri() }, position: { line: line + 2, character: 4 } });
  assert.equal(result.model, firstModel);
  assert.deepEqual([result.kind, result.name], ['method', 'restock']);
  assert.equal(result.insertLine, line, 'the doc comment goes right above the method');
  assert.equal(result.trainedForSummaries, true, 'the tiny preset mixes summary examples into training');
  assert.equal(typeof result.summary, 'string');
  if (result.docComment !== null) assert.match(result.docComment, /^ {2}\/\*\*/);
  await expectError(client.request(SummarizeRequest.type, { textDocument: { uri: docUri() }, position: { line: 9999, character: 0 } }), ErrorCodes.invalidParams, /outside the document/);
  await expectError(client.request(SummarizeRequest.type, { textDocument: { uri: 'file:///not/open.ts' }, position: { line: 0, character: 0 } }), ErrorCodes.invalidParams, /document not open/);
  const notes = 'file:///tmp/notes.txt';
  await client.connection.sendNotification('textDocument/didOpen', { textDocument: { uri: notes, languageId: 'plaintext', version: 1, text: 'just words\n' } });
  await expectError(client.request(SummarizeRequest.type, { textDocument: { uri: notes }, position: { line: 0, character: 0 } }), ErrorCodes.invalidParams, /cannot summarize plaintext code/);
});

test('completion latency idle (p50/p95 over distinct prompts)', { timeout: 120_000 }, async () => {
  assert.ok(firstModel, 'needs the model trained above');
  let shown = 0;
  const latencies: number[] = [];
  for (const site of completionSites(25, 20)) {
    const t0 = performance.now();
    shown += (await client.completeAt(typingUri(), site.line, site.character)).items.length;
    latencies.push(performance.now() - t0);
  }
  figures.idleShown = `${shown}/${latencies.length}`;
  figures.idleP50Ms = +percentile(latencies, 0.5).toFixed(1);
  figures.idleP95Ms = +percentile(latencies, 0.95).toFixed(1);
  assert.ok(latencies.length >= 10);
});

test('cancel a training midway: last checkpoint kept, the previous model still serves', { timeout: 300_000 }, async () => {
  const pending = client.request<TrainRequest.Params, JobResult>(TrainRequest.type, { preset: 'tiny', steps: 5000, name: 'to-cancel', workDoneToken: 'train-2' });
  assert.ok(firstModel, 'needs the model trained above');
  // Past the first checkpoint (the tiny preset evaluates and saves every 20 steps); a training that
  // ends or fails first ends the wait too.
  await Promise.race([
    client.until(() => client.metrics.find((m) => m.model === 'to-cancel' && m.metrics.step >= 25)),
    pending.then((r) => assert.fail(`training ended before step 25: ${r.stopReason} at step ${r.step}`)),
  ]);

  // While it trains: completions keep coming from the first model, and measured.
  const latencies: number[] = [];
  for (const site of completionSites(20, 45)) {
    const t0 = performance.now();
    await client.completeAt(typingUri(), site.line, site.character);
    latencies.push(performance.now() - t0);
  }
  assert.ok(latencies.length >= 10, `only ${latencies.length} completion sites`);
  figures.trainingP50Ms = +percentile(latencies, 0.5).toFixed(1);
  figures.trainingP95Ms = +percentile(latencies, 0.95).toFixed(1);
  const during = client.statuses.at(-1)!;
  assert.equal(during.activeModel, firstModel);
  // The training runs in a child process of the server (dist/worker.js) whose threads, the
  // gradient threads it starts included, yield the cores to the server's, which answer completions
  // at normal priority (Linux nice values are per thread: /proc/<pid>/task/<tid>/stat, field 19).
  if (process.platform === 'linux') {
    const pid = client.process.pid!;
    const fields = (file: string) => readFileSync(file, 'utf8').split(') ')[1].split(' '); // from field 3 on
    const niceValues = (proc: number) =>
      readdirSync(`/proc/${proc}/task`).flatMap((tid) => {
        try {
          return [Number(fields(`/proc/${proc}/task/${tid}/stat`)[16])];
        } catch {
          return []; // a thread that ended meanwhile
        }
      });
    const jobs = readdirSync('/proc').filter((entry) => {
      try {
        return /^\d+$/.test(entry) && Number(fields(`/proc/${entry}/stat`)[1]) === pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('worker.js');
      } catch {
        return false;
      }
    });
    assert.equal(jobs.length, 1, `one job process under the server (pid ${pid}), found ${JSON.stringify(jobs)}`);
    const jobNice = niceValues(Number(jobs[0]));
    assert.equal(Number(fields(`/proc/${pid}/task/${pid}/stat`)[16]), 0, 'the server thread that answers completions runs at normal priority');
    assert.deepEqual(niceValues(pid).filter((n) => n !== 0), [], 'no server thread is lowered: the server does not train');
    assert.ok(jobNice.length >= 1 && jobNice.every((n) => n === 10), `every thread of the job's process at nice 10 while training: ${JSON.stringify(jobNice)}`);
  }
  assert.equal(during.job?.model, 'to-cancel');

  // The model in training can be neither selected nor deleted; a second job is refused.
  await expectError(client.request(ModelsRequest.type, { action: 'delete', name: 'to-cancel' }), ErrorCodes.busy, /training/);
  await expectError(client.request(ModelsRequest.type, { action: 'select', name: 'to-cancel' }), ErrorCodes.busy, /still training/);
  await expectError(client.request(TrainRequest.type, { preset: 'tiny' }), ErrorCodes.busy, /already running/);

  const cancelled = await client.request<CancelRequest.Params, CancelRequest.Result>(CancelRequest.type, {});
  assert.equal(cancelled.cancelled, true);
  const result = await pending;
  assert.equal(result.stopReason, 'cancelled');
  assert.equal(result.activated, false);
  assert.ok(result.step >= 25 && result.step < 5000, `stopped at step ${result.step}`);
  assert.ok(existsSync(path.join(modelsDir, 'to-cancel', 'model.json')), 'the last checkpoint is on disk');
  const progress = client.progress.get('train-2') ?? [];
  assert.equal(progress.at(-1)?.kind, 'end');

  const after = await client.until(() => lastStatus(client, (s) => s.job === null));
  assert.equal(after.activeModel, firstModel, 'the first model still serves');
  const list = await client.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'list' });
  assert.equal(list.active, firstModel);
  const stopped = list.models.find((m) => m.name === 'to-cancel')!;
  assert.equal(stopped.state, 'incomplete');
  assert.match(stopped.reason ?? '', /cancelled/);
  const { items } = await client.completeAt(typingUri(), completionSites(1)[0].line, completionSites(1)[0].character);
  assert.ok(Array.isArray(items));

  // Deleting it now works; the active model is untouched.
  const afterDelete = await client.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'delete', name: 'to-cancel' });
  assert.deepEqual(afterDelete.models.map((m) => m.name), [firstModel]);
  assert.equal(existsSync(path.join(modelsDir, 'to-cancel')), false);
});

test('evaluate the model against the n-gram baseline, with progress; eval.json lands in its folder', { timeout: 300_000 }, async () => {
  assert.ok(firstModel, 'needs the model trained above');
  const result = await client.request<EvaluateRequest.Params, EvaluateRequest.Result>(EvaluateRequest.type, { model: firstModel, lines: 10, workDoneToken: 'eval-1' });
  figures.evaluateMs = result.ms;
  assert.equal(result.model, firstModel);
  assert.equal(result.report.kind, 'workspace-lm-eval');
  assert.ok((result.report.model as { name?: string }) && result.report.baseline, 'model and baseline sections');
  assert.match(result.table, /n-gram|baseline/i);
  assert.ok(existsSync(path.join(modelsDir, firstModel, 'eval.json')));
  const progress = client.progress.get('eval-1') ?? [];
  assert.deepEqual([progress[0]?.kind, progress.at(-1)?.kind], ['begin', 'end']);
  assert.ok(progress.some((p) => p.kind === 'report' && /nextToken|lines/.test(p.message ?? '')), 'phase reports');
  const history = await client.request<MetricsHistoryRequest.Params, MetricsHistoryRequest.Result>(MetricsHistoryRequest.type, { model: firstModel });
  assert.equal(history.metrics.length, 40, 'one metrics.jsonl line per step');
  assert.equal(history.eval?.kind, 'workspace-lm-eval');
});

test('cancelling the train request itself ($/cancelRequest) stops the job', { timeout: 300_000 }, async () => {
  const source = new CancellationTokenSource();
  const pending = client.connection.sendRequest(TrainRequest.method, { preset: 'tiny', steps: 5000, name: 'cancel-by-request' }, source.token) as Promise<JobResult>;
  await Promise.race([
    client.until(() => client.metrics.find((m) => m.model === 'cancel-by-request' && m.metrics.step >= 3)),
    pending.then((r) => assert.fail(`training ended before step 3: ${r.stopReason}`)),
  ]);
  source.cancel();
  const result = await pending;
  assert.equal(result.stopReason, 'cancelled');
  assert.ok(result.step < 5000);
  await client.request(ModelsRequest.type, { action: 'delete', name: 'cancel-by-request' });
});

test('fine-tune on the files changed since the base model, freezing a layer', { timeout: 300_000 }, async () => {
  assert.ok(firstModel, 'needs the model trained above');
  // Enough new code in each file for a window of the tiny preset, whichever side of the split it lands.
  const helpers = Array.from({ length: 12 }, (_, i) => `export function scaled${i}(values: number[]): number[] {\n  return values.map((v) => v * ${i + 2});\n}\n`).join('\n');
  appendFileSync(path.join(project, 'src', 'queue.ts'), `\n${helpers}`);
  writeFileSync(path.join(project, 'src', 'added.ts'), helpers.replace(/scaled/g, 'added'));
  const result = await client.request<FineTuneRequest.Params, JobResult>(FineTuneRequest.type, {
    base: firstModel,
    scope: 'changed',
    steps: 6,
    freezeLayers: 1,
    learningRate: 1e-3,
    name: 'tuned',
  });
  assert.equal(result.kind, 'fineTune');
  assert.equal(result.step, 6);
  assert.equal(result.activated, true);
  assert.ok(client.logs.some((l) => /fine-tune scope: 2 changed files \(git diff against/.test(l)), 'the scope was the two changed files');
  const list = await client.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'list' });
  assert.equal(list.active, 'tuned');
  assert.equal(list.models.find((m) => m.name === 'tuned')?.parent, firstModel);
  await expectError(
    client.request(FineTuneRequest.type, { base: firstModel, scope: 'folder', freezeLayers: 99 }),
    ErrorCodes.invalidParams,
    /freezeLayers must be an integer from 0 to 2/,
  );
  // Back to the first model by selection.
  const selected = await client.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'select', name: firstModel });
  assert.equal(selected.active, firstModel);
});

test('server-initiated progress, as VS Code shows it: its cancel button stops the training', { timeout: 300_000 }, async () => {
  const { client: vscodeLike } = await startServer({ baseModel: null, settings: { modelsDir: path.join(tmp, 'models-2'), preset: 'tiny', minTokenProbability: 0 } }, project, true);
  try {
    const pending = vscodeLike.request<TrainRequest.Params, JobResult>(TrainRequest.type, { steps: 5000, name: 'button' });
    const token = await vscodeLike.until(() => vscodeLike.createdProgress[0]);
    await Promise.race([
      vscodeLike.until(() => vscodeLike.metrics.find((m) => m.metrics.step >= 3)),
      pending.then((r) => assert.fail(`training ended before step 3: ${r.stopReason}`)),
    ]);
    const begin = vscodeLike.progress.get(token)?.[0] as { kind: string; cancellable?: boolean; title?: string } | undefined;
    assert.equal(begin?.kind, 'begin');
    assert.equal(begin?.cancellable, true);
    assert.match(begin?.title ?? '', /Training button/);
    await vscodeLike.connection.sendNotification('window/workDoneProgress/cancel', { token });
    const result = await pending;
    assert.equal(result.stopReason, 'cancelled');
    assert.equal(vscodeLike.progress.get(token)?.at(-1)?.kind, 'end');
  } finally {
    assert.equal(await stopServer(vscodeLike), 0);
  }
});

test('an untrusted workspace serves but refuses to train', { timeout: 60_000 }, async () => {
  // Also a bad setting: reported once with its value, the default used, the server unaffected.
  const { client: restricted } = await startServer({ trusted: false, settings: { modelsDir, maxTokens: 'lots' } }, project);
  try {
    await restricted.until(() => restricted.logs.find((l) => l.includes('workspaceLm.maxTokens: "lots" is not an integer from 1 to 256; using 32')));
    const status = await restricted.until(() => lastStatus(restricted, (s) => s.activeModel !== null));
    assert.equal(status.trusted, false);
    assert.equal(status.activeModel, firstModel, 'the active model is served in restricted mode');
    await expectError(restricted.request(TrainRequest.type, { preset: 'tiny' }), ErrorCodes.untrusted, /untrusted workspace/);
    await expectError(restricted.request(FineTuneRequest.type, { scope: 'folder' }), ErrorCodes.untrusted, /untrusted workspace/);
  } finally {
    assert.equal(await stopServer(restricted), 0);
  }
});

test('summary on hover: off by default; on, a function header shows the model summary, its body nothing', { timeout: 60_000 }, async () => {
  assert.ok(firstModel, 'needs the model trained above');
  const header = docLines.findIndex((l) => l.startsWith('  restock('));
  const hover = (c: LspClient, line: number) =>
    c.connection.sendRequest<{ contents: { kind: string; value: string } } | null>('textDocument/hover', { textDocument: { uri: docUri() }, position: { line, character: 4 } });
  assert.equal(await hover(client, header), null, 'workspaceLm.summaryOnHover is off by default');

  const { client: hovering } = await startServer({ settings: { modelsDir, summaryOnHover: true } }, project);
  try {
    await hovering.connection.sendNotification('textDocument/didOpen', { textDocument: { uri: docUri(), languageId: 'typescript', version: 1, text: docLines.join('\n') } });
    await hovering.until(() => lastStatus(hovering, (s) => s.activeModel === firstModel));
    const shown = await hover(hovering, header);
    assert.ok(shown, 'a hover on the header line');
    assert.equal(shown.contents.kind, 'markdown');
    assert.match(shown.contents.value, /^\*\*Workspace LM:\*\* \S/);
    assert.deepEqual(await hover(hovering, header), shown, 'the same function gives the same (cached) summary');
    assert.equal(await hover(hovering, header + 2), null, 'inside the body: no hover');
  } finally {
    assert.equal(await stopServer(hovering), 0);
  }
});

test('settings: package.json declares each with the server default; bad values fall back with one line each', () => {
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
    contributes: { configuration: { properties: Record<string, { default: unknown; description?: string; markdownDescription?: string; scope?: string }> } };
  };
  // workspaceLm.trace.server is the language client's own (it traces the connection to this server).
  const declared = Object.fromEntries(Object.entries(manifest.contributes.configuration.properties).filter(([key]) => key !== 'workspaceLm.trace.server'));
  assert.deepEqual(Object.keys(declared).sort(), Object.keys(DEFAULT_SETTINGS).map((k) => `workspaceLm.${k}`).sort());
  for (const [key, value] of Object.entries(DEFAULT_SETTINGS)) {
    const setting = declared[`workspaceLm.${key}`];
    assert.deepEqual(setting.default, value, key);
    assert.ok((setting.description ?? setting.markdownDescription) && setting.scope, `${key} has a description and a scope`);
  }
  const { settings, problems } = parseSettings({ maxTokens: 0, debounceMs: 20, preset: 'huge', languages: ['typescript', 3], multiline: true });
  assert.deepEqual(
    { maxTokens: settings.maxTokens, debounceMs: settings.debounceMs, preset: settings.preset, languages: settings.languages, multiline: settings.multiline },
    { maxTokens: 32, debounceMs: 20, preset: 'small', languages: [], multiline: true },
  );
  assert.deepEqual(problems, [
    'workspaceLm.languages: ["typescript",3] is not a list of strings; using []',
    'workspaceLm.maxTokens: 0 is not an integer from 1 to 256; using 32',
    'workspaceLm.preset: "huge" is not one of tiny, small, base; using "small"',
  ]);
  assert.equal(parseSettings('nonsense').problems.length, 1);
});

test('the server also speaks over node IPC, the transport VS Code uses', { timeout: 30_000 }, async () => {
  const child = fork(path.join(repoRoot, 'dist', 'server.js'), ['--node-ipc'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  connection.listen();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const result = (await connection.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, initializationOptions: { settings: { modelsDir } } })) as {
    capabilities: { inlineCompletionProvider?: boolean };
  };
  assert.equal(result.capabilities.inlineCompletionProvider, true);
  await connection.sendNotification('initialized', {});
  const list = (await connection.sendRequest(ModelsRequest.method, { action: 'list' })) as ModelsRequest.Result;
  assert.equal(list.modelsDir, modelsDir);
  await connection.sendRequest('shutdown');
  await connection.sendNotification('exit');
  assert.equal(await exited, 0);
  connection.dispose();
});

test('fine-tune scope without git: files modified after the base model was created', async () => {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'wlm-mtime-'));
  try {
    mkdirSync(path.join(folder, 'src'));
    writeFileSync(path.join(folder, 'src', 'old.ts'), 'export const old = 1;\n');
    writeFileSync(path.join(folder, 'src', 'new.ts'), 'export const fresh = 2;\n');
    const created = new Date('2026-01-01T00:00:00Z');
    utimesSync(path.join(folder, 'src', 'old.ts'), new Date('2025-12-31T00:00:00Z'), new Date('2025-12-31T00:00:00Z'));
    utimesSync(path.join(folder, 'src', 'new.ts'), new Date('2026-01-02T00:00:00Z'), new Date('2026-01-02T00:00:00Z'));
    const changed = await changedFilesSince(folder, 'abc123', created);
    assert.deepEqual(changed.files, ['src/new.ts']);
    assert.match(changed.how, /modified after 2026-01-01T00:00:00.000Z/);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
