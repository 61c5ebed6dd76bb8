// Typing through the language server, deep in a long file: a tiny model trained on the sample
// project serves; the test opens a document with more than 10,000 characters before the cursor and
// types a line into it a character at a time, as VS Code sends it (an incremental didChange, then
// an inline completion request, debounce 0). The serving session's counters
// (workspaceLm/completionStats) show that each keystroke runs only its new prompt positions through
// the model, the rest of the window coming from the KV cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CompletionStatsRequest, TrainRequest, type CompletionStats, type JobResult } from '../../protocol/src/customMessages';
import { CodeTokenizer } from '../../models/src/data/tokenizer';
import { buildServer, fixture, lastStatus, type LspClient, startServer, stopServer } from './lspClient';

// The line typed, at the end of the document; a line this short (in the tiny model's tokens) fits
// the room the prompt window leaves for the cursor's line: half of the 32 tokens generated.
const LINE = '  const spare = limit - used;';
const LINE_ROOM_TOKENS = 16;

let tmp = '';
let client: LspClient | undefined;
let modelDir = '';

before(async () => {
  buildServer();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-typing-'));
  const project = path.join(tmp, 'project');
  cpSync(fixture, project, { recursive: true });
  const modelsDir = path.join(tmp, 'models');
  ({ client } = await startServer({ baseModel: null, storageDir: path.join(tmp, 'storage'), settings: { modelsDir, preset: 'tiny', debounceMs: 0, minTokenProbability: 0 } }, project));
  const trained = await client.request<TrainRequest.Params, JobResult>(TrainRequest.type, { preset: 'tiny', steps: 20 });
  assert.equal(trained.activated, true, 'the trained model serves');
  modelDir = trained.modelDir;
  await client.until(() => lastStatus(client!, (s) => s.activeModel === trained.model && s.job === null));
});

after(async () => {
  if (client) assert.equal(await stopServer(client), 0, 'the server exits cleanly');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The sample project's sources one after another: a long file of real code. */
function longDocument(): string {
  const src = path.join(fixture, 'src');
  const files = readdirSync(src).filter((f) => f.endsWith('.ts')).sort();
  return files.map((f) => readFileSync(path.join(src, f), 'utf8').trimEnd() + '\n').join('\n');
}

function delta(after: CompletionStats, before: CompletionStats) {
  return {
    requests: after.requests - before.requests,
    prompt: after.promptPositions - before.promptPositions,
    prefill: after.prefillPositions - before.prefillPositions,
    reused: after.reusedPositions - before.reusedPositions,
  };
}

test('typing a line deep in a long file: each keystroke runs only its new prompt positions through the model', { timeout: 120_000 }, async () => {
  const lsp = client!;
  const tokenizer = await CodeTokenizer.load(path.join(modelDir, 'tokenizer.json'));
  const lineTokens = tokenizer.encode(LINE).length;
  assert.ok(lineTokens <= LINE_ROOM_TOKENS, `the typed line is ${lineTokens} tokens: more than the ${LINE_ROOM_TOKENS} it may take without moving the window`);

  const text = longDocument();
  assert.ok(text.length > 10_000, `${text.length} characters before the cursor`);
  const uri = pathToFileURL(path.join(tmp, 'project', 'src', 'long.ts')).href;
  const line = text.split('\n').length - 1; // the document ends with a line break: the cursor's line is empty
  let version = 1;
  await lsp.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'typescript', version, text } });
  const stats = async () => (await lsp.request<CompletionStatsRequest.Params, CompletionStatsRequest.Result>(CompletionStatsRequest.type, {})).stats!;
  const completeAt = (character: number) =>
    lsp.connection.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri },
      position: { line, character },
      context: { triggerKind: 2 }, // Automatic: as typing triggers it, with the (zero) debounce
    });

  // The first request fills the KV cache with the whole window.
  let previous = await stats();
  await completeAt(0);
  let current = await stats();
  const cold = delta(current, previous);
  assert.equal(cold.requests, 1);
  assert.equal(cold.prefill, cold.prompt, 'a cold cache prefills every prompt position');
  assert.ok(cold.prompt >= 24, `a window of ${cold.prompt} tokens`);

  const perKeystroke: { typed: string; prompt: number; prefill: number }[] = [];
  for (let k = 0; k < LINE.length; k++) {
    version++;
    const at = { line, character: k };
    await lsp.connection.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: [{ range: { start: at, end: at }, text: LINE[k] }] });
    previous = current;
    await completeAt(k + 1);
    current = await stats();
    const step = delta(current, previous);
    if (step.requests === 0) continue; // served from the suggestion being typed into: no inference at all
    assert.equal(step.requests, 1);
    perKeystroke.push({ typed: LINE.slice(0, k + 1), prompt: step.prompt, prefill: step.prefill });
  }
  console.log(`typing ${JSON.stringify(LINE)} after ${text.length} characters: cold prefill ${cold.prefill} positions; per keystroke ${JSON.stringify(perKeystroke.map((s) => `${s.prefill}/${s.prompt}`))} (prefilled/prompt)`);

  assert.ok(perKeystroke.length >= LINE.length / 2, `only ${perKeystroke.length} of ${LINE.length} keystrokes ran the model (the others showed the rest of a suggestion being typed into)`);
  for (const s of perKeystroke) {
    // The healed end of the previous prompt (at most 4 tokens), what was typed, one position fed again.
    assert.ok(s.prefill <= 6, `after typing ${JSON.stringify(s.typed)} the model ran ${s.prefill} of ${s.prompt} prompt positions`);
  }
});
