// The model keeps up with the code, over the real server: a tiny model trained on a copy of the
// sample project serves; a file saved with a new pattern goes into the workspace n-gram at once
// (a completion that uses the pattern appears in another document, with the file never opened, so
// the open-files cache cannot be what knows it), an edited file's old text leaves the counts, and
// files that are never read (secrets, ignored folders) are not counted. Then, with
// workspaceLm.autoFineTune on and a short idle wait ($WLM_AUTO_FINE_TUNE_IDLE_MS), an automatic
// fine-tune starts when the editor is idle, a keystroke cancels it (nothing kept), and after the
// next idle wait one runs to the end, on one gradient thread, and serves. Waits on events only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ModelsRequest, TrainRequest, type JobResult } from '../../protocol/src/customMessages';
import { IDLE_MS_ENV } from '../../server/src/autoFineTune';
import { readModelConfig } from '../../models/src/model/checkpoint';
import { scanFolder } from '../../models/src/data/files';
import { splitFiles } from '../../models/src/data/dataset';
import { CodeTokenizer } from '../../models/src/data/tokenizer';
import { buildServer, fixture, lastStatus, type LspClient, startServer, stopServer } from './lspClient';

const IDLE_MS = 1500;
const savedEnv = process.env[IDLE_MS_ENV];
let tmp = '';
let project = '';
let client: LspClient | undefined;
let trained: JobResult;
const settings = { modelsDir: '', preset: 'tiny', debounceMs: 0, minTokenProbability: 0, autoFineTune: false };
const figures: Record<string, string> = {};

// Another document, open in the editor, being typed: the cursor where the saved file's pattern starts.
const typingUri = () => pathToFileURL(path.join(project, 'src', 'typing.ts')).href;
const TYPING = 'export function demo(input: number[]) {\n  const scaled = quokkaSc';
const PATTERN = 'ale(values, 3);';

before(async () => {
  buildServer();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-keep-up-'));
  project = path.join(tmp, 'project');
  cpSync(fixture, project, { recursive: true });
  settings.modelsDir = path.join(tmp, 'models');
  process.env[IDLE_MS_ENV] = String(IDLE_MS); // the server process inherits it
  ({ client } = await startServer({ baseModel: null, storageDir: path.join(tmp, 'storage'), settings }, project));
  trained = await client.request<TrainRequest.Params, JobResult>(TrainRequest.type, { preset: 'tiny', steps: 20 });
  assert.equal(trained.activated, true, 'the trained model serves');
  await client.until(() => lastStatus(client!, (s) => s.activeModel === trained.model && s.job === null));
  await client.connection.sendNotification('textDocument/didOpen', { textDocument: { uri: typingUri(), languageId: 'typescript', version: 1, text: TYPING } });
});

after(async () => {
  if (client) assert.equal(await stopServer(client), 0, 'the server exits cleanly');
  if (savedEnv === undefined) delete process.env[IDLE_MS_ENV];
  else process.env[IDLE_MS_ENV] = savedEnv;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  console.log(`LSP keep-up figures: ${JSON.stringify(figures)}`);
});

/** The next "n-gram: took in" line of the server's log after `from` lines, parsed. */
async function takenIn(lsp: LspClient, from: number): Promise<{ files: number; tokensIn: number; tokensOut: number; line: string }> {
  const line = await lsp.until(() => lsp.logs.slice(from).find((l) => l.startsWith('n-gram: took in')));
  const [, files, tokensIn, tokensOut] = /took in (\d+) saved file\(s\), \+(\d+) -(\d+) tokens/.exec(line)!.map(Number);
  return { files, tokensIn, tokensOut, line };
}

const completion = async (lsp: LspClient) => (await lsp.completeAt(typingUri(), 1, TYPING.split('\n')[1].length)).items[0]?.insertText ?? '';

test('a file saved outside the editor goes into the n-gram at once: a completion using its new pattern appears; secrets and ignored files are not read', { timeout: 60_000 }, async () => {
  const lsp = client!;
  assert.notEqual(await completion(lsp), PATTERN, 'the pattern is new to the model');
  const quokka = path.join(project, 'src', 'quokka.ts');
  writeFileSync(quokka, `export function quokkaAll(rows: number[][]) {\n  let total = 0;\n  for (const values of rows) {\n${'    const scaled = quokkaScale(values, 3);\n    total += scaled;\n'.repeat(3)}  }\n  return total;\n}\n`);
  // In the same notification: a secret file and a dependency, which training never reads either.
  writeFileSync(path.join(project, '.env'), 'const scaled = quokkaScale(values, 3);\n');
  mkdirSync(path.join(project, 'node_modules', 'dep'), { recursive: true });
  writeFileSync(path.join(project, 'node_modules', 'dep', 'index.ts'), 'const scaled = quokkaScale(values, 3);\n');
  const from = lsp.logs.length;
  await lsp.connection.sendNotification('workspace/didChangeWatchedFiles', {
    changes: [quokka, path.join(project, '.env'), path.join(project, 'node_modules', 'dep', 'index.ts')].map((file) => ({ uri: pathToFileURL(file).href, type: 1 })),
  });
  const taken = await takenIn(lsp, from);
  figures.newFile = taken.line;
  assert.equal(taken.files, 1, taken.line);
  assert.equal(taken.tokensOut, 0, 'a new file takes nothing out');
  assert.equal(await completion(lsp), PATTERN);
});

test("a file saved in the editor replaces its old text in the n-gram: a file counted at training gives back its old tokens, a held-out one none", { timeout: 60_000 }, async () => {
  const lsp = client!;
  const config = await readModelConfig(trained.modelDir);
  const { train, val } = splitFiles((await scanFolder(project)).files.filter((f) => f.relPath !== 'src/quokka.ts'), config.train.valFraction, config.train.seed);
  const tokenizer = await CodeTokenizer.load(path.join(trained.modelDir, 'tokenizer.json'));
  for (const [split, file] of [['counted', train[0]], ['held out', val[0]]] as const) {
    const uri = pathToFileURL(file.absPath).href;
    const old = readFileSync(file.absPath, 'utf8');
    await lsp.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'typescript', version: 1, text: old } });
    const edited = `${old}\nexport const quokkaEdited = ${JSON.stringify(file.relPath)};\n`;
    writeFileSync(file.absPath, edited); // the editor writes the file, then says so
    const from = lsp.logs.length;
    await lsp.connection.sendNotification('textDocument/didSave', { textDocument: { uri } });
    const taken = await takenIn(lsp, from);
    figures[`${split}File`] = `${file.relPath}: ${taken.line}`;
    assert.equal(taken.tokensIn, tokenizer.encode(edited).length + 1, `${file.relPath} goes in as a document: ${taken.line}`);
    assert.equal(taken.tokensOut, split === 'counted' ? tokenizer.encode(old).length + 1 : 0, `${split} ${file.relPath}: ${taken.line}`);
    // The file watcher reports the same save, with a new file: only the new file changes the counts.
    await lsp.connection.sendNotification('textDocument/didClose', { textDocument: { uri } });
    const next = path.join(project, 'src', `quokka-${split.replace(' ', '-')}.ts`);
    writeFileSync(next, 'export const x = 1;\n');
    const again = lsp.logs.length;
    await lsp.connection.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri, type: 2 }, { uri: pathToFileURL(next).href, type: 1 }] });
    const marker = await takenIn(lsp, again);
    assert.equal(marker.files, 1, `the save seen twice counts once: ${marker.line}`);
  }
});

test('autoFineTune: an idle editor starts a fine-tune on the saved files, a keystroke cancels it, and the next idle one finishes and serves', { timeout: 240_000 }, async () => {
  const lsp = client!;
  const from = { statuses: lsp.statuses.length, logs: lsp.logs.length };
  const since = <T>(list: T[], start: number, match: (item: T) => boolean): T | undefined => list.slice(start).find(match);
  await lsp.connection.sendNotification('workspace/didChangeConfiguration', { settings: { workspaceLm: { ...settings, autoFineTune: true } } });
  const started = await lsp.until(() => since(lsp.statuses, from.statuses, (s) => s.job?.automatic === true));
  await lsp.connection.sendNotification('textDocument/didChange', { textDocument: { uri: typingUri(), version: 2 }, contentChanges: [{ range: { start: { line: 1, character: 0 }, end: { line: 1, character: 0 } }, text: ' ' }] });
  const cancelledLine = await lsp.until(() => since(lsp.logs, from.logs, (l) => /^automatic fine-tune.*cancelled/.test(l)));
  figures.cancelled = cancelledLine;
  assert.equal(lastStatus(lsp, () => true)?.activeModel, trained.model, 'the model serving stays');
  const cancelled = started.job!.model;

  // No more typing: after the next idle wait a run goes to the end and its model serves.
  const done = await lsp.until(() => since(lsp.statuses, from.statuses, (s) => s.activeModel !== trained.model && s.job === null));
  const { models } = await lsp.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'list' });
  const served = models.find((m) => m.name === done.activeModel)!;
  assert.equal(served.parent, trained.model, 'fine-tuned from the model that served');
  assert.ok(models.every((m) => m.name === trained.model || m.name === served.name || m.name !== cancelled), `the cancelled ${cancelled} is not kept: ${models.map((m) => m.name).join(', ')}`);
  assert.equal(models.length, 2, `the trained model and the automatic fine-tune only: ${models.map((m) => m.name).join(', ')}`);
  const config = await readModelConfig(path.join(settings.modelsDir, served.name));
  assert.equal(config.timings.gradientWorkers, 1, 'one gradient thread');
  assert.ok(config.step > 0, `trained ${config.step} steps`);
  figures.autoFineTune = `${served.name}: ${config.step} steps, ${config.stopReason}`;
});
