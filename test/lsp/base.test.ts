// The language server and the base model, end to end over stdio: a server started on a fresh
// models dir, with $WLM_BASE_MODEL naming a tiny stand-in base, prepares a serving folder from the
// base by itself (a 'prepare' job: no gradient step, the workspace's n-gram and mixture) and a
// completion arrives without any train request; the time from starting the server to that first
// completion is printed. Train then fine-tunes the base by default, or starts from scratch when
// asked. An untrusted workspace prepares nothing: the n-gram would read every file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ModelsRequest, PresetsRequest, TrainRequest, type JobResult } from '../../protocol/src/customMessages';
import { BASE_MODEL_ENV } from '../../models/src/model/base';
import { makeStandInBase } from '../unit/baseStandIn';
import { buildServer, fixture, lastStatus, type LspClient, startServer, stopServer } from './lspClient';

let tmp = '';
let project = '';
let base = '';
const clients: LspClient[] = [];
const figures: Record<string, number> = {};
const savedEnv = process.env[BASE_MODEL_ENV];

before(async () => {
  buildServer();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-lsp-base-'));
  project = path.join(tmp, 'project');
  cpSync(fixture, project, { recursive: true });
  base = await makeStandInBase(path.join(tmp, 'base'));
  process.env[BASE_MODEL_ENV] = base; // the server process inherits it
});

after(async () => {
  for (const client of clients) assert.equal(await stopServer(client), 0, 'the server exits cleanly');
  if (savedEnv === undefined) delete process.env[BASE_MODEL_ENV];
  else process.env[BASE_MODEL_ENV] = savedEnv;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  console.log(`LSP base figures: ${JSON.stringify(figures)}`);
});

async function start(name: string, trusted: boolean): Promise<LspClient> {
  const { client } = await startServer({ storageDir: path.join(tmp, `storage-${name}`), trusted, settings: { modelsDir: path.join(tmp, `models-${name}`), preset: 'tiny', minTokenProbability: 0 } }, project);
  clients.push(client);
  return client;
}

let served: LspClient;

test('a fresh models dir: the server prepares completions from the base by itself, and one arrives without a train request', { timeout: 120_000 }, async () => {
  const started = performance.now();
  served = await start('fresh', true);
  // The user is typing a line of code the model has seen the like of: the cursor after "return ".
  const lines = readFileSync(path.join(project, 'src', 'inventory.ts'), 'utf8').split('\n');
  const line = lines.findIndex((l) => /^\s+return \S/.test(l));
  const character = lines[line].indexOf('return ') + 'return '.length;
  lines[line] = lines[line].slice(0, character);
  const uri = pathToFileURL(path.join(project, 'src', 'typing.ts')).href;
  await served.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'typescript', version: 1, text: lines.join('\n') } });
  const ready = await served.until(() => lastStatus(served, (s) => s.activeModel !== null && s.job === null));
  figures.serverStartToServingMs = Math.round(performance.now() - started);
  const preparing = served.statuses.find((s) => s.job?.kind === 'prepare');
  assert.ok(preparing, 'a prepare job ran, visible in the status');
  assert.equal(preparing.job!.model, ready.activeModel);
  assert.match(ready.activeModel!, /^base-\d{8}-\d{6}/);

  const completion = await served.completeAt(uri, line, character);
  figures.serverStartToFirstCompletionMs = Math.round(performance.now() - started);
  assert.equal(completion.items.length, 1, `a completion arrived; the log says: ${served.logs.filter((l) => l.startsWith('completion')).join('; ')}`);

  const { models } = await served.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'list' });
  assert.equal(models.length, 1);
  assert.deepEqual([models[0].state, models[0].parent, models[0].step, models[0].active], ['ready', 'base', 0, true]);
});

test('Train fine-tunes the base by default, and starts from scratch when asked; the preset pick knows which', { timeout: 300_000 }, async () => {
  const presets = await served.request<PresetsRequest.Params, PresetsRequest.Result>(PresetsRequest.type, {});
  assert.deepEqual(presets.base, { dir: base, preset: 'tiny' });
  const fromBase = await served.request<TrainRequest.Params, JobResult>(TrainRequest.type, { preset: 'tiny', steps: 3 });
  assert.equal(fromBase.activated, true);
  assert.equal(fromBase.start?.from, 'base');
  const scratch = await served.request<TrainRequest.Params, JobResult>(TrainRequest.type, { preset: 'tiny', steps: 3, fromScratch: true });
  assert.deepEqual([scratch.start?.from, scratch.start?.reason], ['scratch', 'asked for']);
});

test('an untrusted workspace prepares nothing from the base: nothing serves until it is trusted', async () => {
  const untrusted = await start('untrusted', false);
  const { models } = await untrusted.request<ModelsRequest.Params, ModelsRequest.Result>(ModelsRequest.type, { action: 'list' }); // answered once the store is open
  assert.deepEqual(models, []);
  const status = lastStatus(untrusted, () => true);
  assert.deepEqual([status?.trusted, status?.activeModel, status?.job], [false, null, null]);
  assert.ok(!untrusted.statuses.some((s) => s.job !== null), 'no job ran');
});
