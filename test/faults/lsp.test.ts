// Fault suite, the language server (dist/server.js over stdio, as VS Code runs it): generated bad
// inputs to every handler. Standard requests with wrong types, missing fields, negative and
// out-of-range positions, unknown URIs; notifications with the same; every custom request of
// protocol/src/customMessages.ts with nonsense params; settings of every wrong type answered to
// workspace/configuration; a 10 MB document and a storm of didChange; damaged model folders
// selected. Each request gets a clear error or a defined answer, each notification is dropped
// while the server keeps answering, and a valid completion afterwards still succeeds.
//
// The server's backend setting is one that cannot load here (tfjs-node-gpu is not installed), so
// a train or fine-tune request that happens to be valid fails at once, before any scanning, with
// the reason: no generated input starts a real training.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CancelRequest, CompletionStatsRequest, EvaluateRequest, FineTuneRequest, MetricsHistoryRequest, ModelsRequest, PresetsRequest, SummarizeRequest, TrainRequest,
} from '../../protocol/src/customMessages';
import { damages, damagedCopy } from './corruptModels';
import {
  NONSENSE, Rng, SEED, Tally, classifyRejection, copyModel, expectRejected, fixture, sharedModel, startFaultServer, stopFaultServer, type FaultServer, type Outcome,
} from './faultKit';

const tally = new Tally('lsp');
const rng = new Rng(SEED * 13 + 3);
let tmp: string;
let project: string;
let modelsDir: string;
let server: FaultServer;
const GOOD = 'good';
const good = () => ({ modelsDir, preset: 'tiny', backend: 'tfjs-node-gpu', minTokenProbability: 0 });
let settings: unknown; // what the client answers to workspace/configuration
let docUri: string;
let docText: string;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-faults-lsp-'));
  project = path.join(tmp, 'project');
  cpSync(fixture, project, { recursive: true });
  modelsDir = path.join(tmp, 'models');
  copyModel(modelsDir, GOOD);
  writeFileSync(path.join(modelsDir, 'active.json'), JSON.stringify({ name: GOOD }));
  settings = good();
  server = await startFaultServer({ storageDir: path.join(tmp, 'storage') }, project, () => settings);
  await server.client.until(() => server.client.statuses.find((s) => s.activeModel === GOOD));
  docUri = pathToFileURL(path.join(project, 'src', 'typing.ts')).href;
  // The document as the user is typing it: lines cut half-way, completion sites at the cuts.
  docText = readFileSync(path.join(project, 'src', 'inventory.ts'), 'utf8').split('\n').map((l) => (l.trim().length > 3 ? l.slice(0, l.length - Math.floor(l.trim().length / 2)) : l)).join('\n');
  await server.client.connection.sendNotification('textDocument/didOpen', { textDocument: { uri: docUri, languageId: 'typescript', version: 1, text: docText } });
});

after(async () => {
  if (server) await stopFaultServer(server);
  rmSync(tmp, { recursive: true, force: true });
  tally.finish();
});

const request = (method: string, params: unknown) => server.client.connection.sendRequest(method, params) as Promise<unknown>;

/** The server still answers a plain request. */
async function alive(): Promise<string | null> {
  if (server.exited()) return `the server exited; stderr: ${server.stderr().slice(-500)}`;
  try {
    await request(CompletionStatsRequest.method, {});
    return null;
  } catch (err) {
    return `the server stopped answering: ${(err as Error).message}`;
  }
}

/** Valid completion sites: the ends of the cut lines. */
function sites(): { line: number; character: number }[] {
  return docText.split('\n').flatMap((l, line) => (l.trim().length > 3 ? [{ line, character: l.length }] : []));
}

async function completes(): Promise<string | null> {
  let shown = 0;
  for (const position of sites().slice(0, 8)) {
    const result = (await request('textDocument/inlineCompletion', { textDocument: { uri: docUri }, position, context: { triggerKind: 1 } })) as { items?: unknown[] } | null;
    if (!result || !Array.isArray(result.items)) return `a valid completion request answered ${JSON.stringify(result)}`;
    shown += result.items.length;
  }
  return shown > 0 ? null : 'no completion at 8 valid sites';
}

// ---------------------------------------------------------------------------------------------

/** Params of a position request: the whole object, its document, its position, each of wrong type or out of range. */
function positionParams(): { label: string; params: unknown; expect: 'error' | 'none' }[] {
  const out: { label: string; params: unknown; expect: 'error' | 'none' }[] = [];
  const at = { line: 1, character: 2 };
  for (const p of [null, 5, 'x', [], true]) out.push({ label: `params ${JSON.stringify(p)}`, params: p, expect: 'error' });
  out.push({ label: 'no textDocument', params: { position: at }, expect: 'error' });
  out.push({ label: 'no position', params: { textDocument: { uri: docUri } }, expect: 'error' });
  for (const v of NONSENSE) out.push({ label: `textDocument ${JSON.stringify(v)?.slice(0, 40)}`, params: { textDocument: v, position: at }, expect: 'error' });
  for (const v of NONSENSE.filter((x) => typeof x !== 'string')) out.push({ label: `uri ${JSON.stringify(v)?.slice(0, 40)}`, params: { textDocument: { uri: v }, position: at }, expect: 'error' });
  for (const uri of ['file:///nowhere/never-opened.ts', 'untitled:Untitled-9', 'http://example.com/x.ts', 'not a uri', '', 'file:///' + 'a/'.repeat(2000)]) {
    out.push({ label: `unknown uri ${uri.slice(0, 40)}`, params: { textDocument: { uri }, position: at }, expect: 'none' });
  }
  for (const v of NONSENSE) out.push({ label: `position ${JSON.stringify(v)?.slice(0, 40)}`, params: { textDocument: { uri: docUri }, position: v }, expect: 'error' });
  for (const v of NONSENSE.filter((x) => !(typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < 3))) {
    out.push({ label: `line ${JSON.stringify(v)?.slice(0, 40)}`, params: { textDocument: { uri: docUri }, position: { line: v, character: 0 } }, expect: 'error' });
    out.push({ label: `character ${JSON.stringify(v)?.slice(0, 40)}`, params: { textDocument: { uri: docUri }, position: { line: 0, character: v } }, expect: typeof v === 'number' && Number.isInteger(v) && v >= 0 ? 'none' : 'error' });
  }
  for (const line of [docText.split('\n').length, 10_000_000]) out.push({ label: `line ${line} past the end`, params: { textDocument: { uri: docUri }, position: { line, character: 0 } }, expect: 'error' });
  return out;
}

async function answerTo(method: string, params: unknown, expect: 'error' | 'none'): Promise<Outcome> {
  try {
    const value = (await request(method, params)) as { items?: unknown[] } | null;
    if (expect === 'error') return { kind: 'crash', detail: `accepted; answered ${JSON.stringify(value)?.slice(0, 200)}` };
    const empty = value === null || (Array.isArray(value?.items) && value.items.length === 0);
    return empty ? { kind: 'defined', what: 'no result (LSP null / no items): nothing to complete there' } : { kind: 'defined', what: `answered at the clamped position (LSP: a character past the line end means the end)` };
  } catch (err) {
    return classifyRejection(err);
  }
}

test('inlineCompletion and hover with wrong types, missing fields, bad positions and unknown URIs', async () => {
  for (const method of ['textDocument/inlineCompletion', 'textDocument/hover']) {
    for (const { label, params, expect } of positionParams()) {
      await tally.probe(method, label, () => answerTo(method, params, expect));
    }
  }
  for (const v of NONSENSE) {
    await tally.probe('textDocument/inlineCompletion', `context ${JSON.stringify(v)?.slice(0, 40)}`, async () => {
      try {
        await request('textDocument/inlineCompletion', { textDocument: { uri: docUri }, position: sites()[0], context: v });
        return { kind: 'defined', what: 'context is advice: an unknown one is read as typing (debounced)' };
      } catch (err) {
        return classifyRejection(err);
      }
    });
  }
  for (const method of ['textDocument/definition', 'workspaceLm/nonsense', 'workspaceLm/train/extra', '$/unknownRequest']) {
    await tally.probe('unknown request', method, () => expectRejected(request(method, { textDocument: { uri: docUri } })));
  }
  assert.equal(await alive(), null);
});

// ---------------------------------------------------------------------------------------------

/** Each custom request with nonsense: the whole params, and every field alone with each wrong value. */
function customParams(): { method: string; label: string; params: unknown }[] {
  const fields: Record<string, string[]> = {
    [TrainRequest.method]: ['folder', 'preset', 'steps', 'minutes', 'name', 'workDoneToken'],
    [FineTuneRequest.method]: ['base', 'scope', 'files', 'folder', 'steps', 'learningRate', 'freezeLayers', 'loraRank', 'name'],
    [EvaluateRequest.method]: ['model', 'folder', 'lines'],
    [ModelsRequest.method]: ['action', 'name'],
    [CancelRequest.method]: ['jobId'],
    [MetricsHistoryRequest.method]: ['model'],
    [SummarizeRequest.method]: ['textDocument', 'position'],
    [PresetsRequest.method]: ['anything'],
    [CompletionStatsRequest.method]: ['anything'],
  };
  // What the other fields hold, so the field under test is the one that is wrong (where it can be).
  const base: Record<string, Record<string, unknown>> = {
    [FineTuneRequest.method]: { scope: 'folder', base: GOOD },
    [ModelsRequest.method]: { action: 'select' },
    [SummarizeRequest.method]: { textDocument: { uri: pathToFileURL(path.join(project, 'src', 'typing.ts')).href }, position: { line: 0, character: 0 } },
  };
  const out: { method: string; label: string; params: unknown }[] = [];
  for (const [method, names] of Object.entries(fields)) {
    for (const p of [null, 7, 'x', [], false]) out.push({ method, label: `params ${JSON.stringify(p)}`, params: p });
    for (const name of names) {
      // Every wrong value would make too many for the slow ones; a seeded quarter of them, at least four.
      const values = NONSENSE.filter(() => rng.next() < 0.25);
      for (const v of values.length >= 4 ? values : NONSENSE.slice(0, 4)) out.push({ method, label: `${name}: ${JSON.stringify(v)?.slice(0, 40)}`, params: { ...base[method], [name]: v } });
    }
  }
  return out;
}

test('every custom request with nonsense params: a clear error or a defined answer', { timeout: 300_000 }, async () => {
  const before = new Set(readdirSync(modelsDir));
  for (const { method, label, params } of customParams()) {
    await tally.probe(method, label, async (): Promise<Outcome> => {
      try {
        const value = await request(method, params);
        // Some nonsense is harmless and answered (list ignores a stray field; cancel of no job says so).
        return { kind: 'defined', what: `answered ${JSON.stringify(value)?.slice(0, 120)}` };
      } catch (err) {
        return classifyRejection(err);
      }
    }, 60_000);
  }
  assert.equal(await alive(), null);
  // A refused train or fine-tune leaves nothing behind: the backend is checked before any folder is made.
  const left = readdirSync(modelsDir).filter((n) => !before.has(n));
  assert.deepEqual(left, [], 'refused jobs leave no model folders');
  const status = server.client.statuses.at(-1);
  assert.equal(status?.activeModel, GOOD, 'the active model is unchanged');
});

// ---------------------------------------------------------------------------------------------

/** A key of Settings and values of every wrong type for it. */
const WRONG_SETTINGS: [string, unknown[]][] = [
  ['enableCompletions', ['yes', 1, {}, [true]]],
  ['languages', ['typescript', [1, 2], { ts: true }, [null]]],
  ['multiline', ['no', 0, []]],
  ['maxTokens', [0, 257, 1.5, '32', -1, 1e308, [32]]],
  ['minTokenProbability', [1, -0.1, '0.3', 2, {}]],
  ['debounceMs', [-1, 1e9, 'fast', [150]]],
  ['preset', ['huge', 5, ['tiny'], '']],
  ['backend', ['gpu', 3, null, ['wasm']]],
  ['modelsDir', [5, ['a'], { path: '/' }, true]],
  ['exclude', ['**/x', [1], { glob: 'x' }]],
  ['summaryOnHover', ['sometimes', 1]],
];

test('settings of every wrong type: each named in a warning, the defaults used, the server keeps answering', { timeout: 300_000 }, async () => {
  const client = server.client;
  const changed = async (value: unknown): Promise<void> => {
    settings = value;
    await client.connection.sendNotification('workspace/didChangeConfiguration', { settings: null });
    // A request that reads the settings (pulled per document).
    await request('textDocument/inlineCompletion', { textDocument: { uri: docUri }, position: sites()[0], context: { triggerKind: 1 } }).catch(() => null);
  };
  for (const [key, values] of WRONG_SETTINGS) {
    for (const value of values) {
      await tally.probe('settings', `${key}: ${JSON.stringify(value)}`, async (): Promise<Outcome> => {
        const seen = client.logs.length;
        await changed({ ...good(), [key]: value });
        const warning = await client.until(() => client.logs.slice(seen).find((l) => l.includes(`workspaceLm.${key}`)));
        return { kind: 'error', message: warning };
      }, 20_000);
    }
  }
  for (const whole of [5, 'tiny', [1, 2], true]) {
    await tally.probe('settings', `the whole section ${JSON.stringify(whole)}`, async (): Promise<Outcome> => {
      const seen = client.logs.length;
      await changed(whole);
      const warning = await client.until(() => client.logs.slice(seen).find((l) => l.includes('workspaceLm settings must be an object')));
      return { kind: 'error', message: warning };
    }, 20_000);
  }
  // A client that fails the configuration request: the server answers on its defaults, and says why.
  await tally.probe('settings', 'workspace/configuration answered with an error', async (): Promise<Outcome> => {
    const seen = client.logs.length;
    const failing = client.connection.onRequest('workspace/configuration', () => {
      throw new Error('the client cannot read its settings');
    });
    try {
      await client.connection.sendNotification('workspace/didChangeConfiguration', { settings: null });
      const answer = await request('textDocument/inlineCompletion', { textDocument: { uri: docUri }, position: sites()[0], context: { triggerKind: 1 } }).then(() => null, (err: unknown) => classifyRejection(err));
      if (answer && answer.kind === 'crash') return answer;
      const warning = await client.until(() => client.logs.slice(seen).find((l) => /settings/i.test(l) && /cannot read its settings|could not|defaults/.test(l)));
      return { kind: 'error', message: warning };
    } finally {
      failing.dispose();
      client.connection.onRequest('workspace/configuration', (p: { items: unknown[] }) => p.items.map(() => settings));
    }
  }, 20_000);
  await changed(good());
  await client.until(() => client.statuses.at(-1)?.activeModel === GOOD && client.statuses.at(-1)?.modelsDir === modelsDir);
  assert.equal(await alive(), null);
});

// ---------------------------------------------------------------------------------------------

test('notifications with wrong types and impossible edits are dropped; the document and the server survive', { timeout: 120_000 }, async () => {
  const notify = (method: string, params: unknown) => server.client.connection.sendNotification(method, params);
  const other = pathToFileURL(path.join(project, 'src', 'other.ts')).href;
  const cases: [string, string, unknown][] = [];
  for (const p of [null, 5, 'x', [], {}]) {
    for (const method of ['textDocument/didOpen', 'textDocument/didChange', 'textDocument/didClose', 'textDocument/didSave', 'workspace/didChangeConfiguration', '$/cancelRequest', '$/setTrace']) cases.push([method, JSON.stringify(p), p]);
  }
  for (const v of NONSENSE) {
    cases.push(['textDocument/didOpen', `textDocument ${JSON.stringify(v)?.slice(0, 30)}`, { textDocument: v }]);
    cases.push(['textDocument/didOpen', `text ${JSON.stringify(v)?.slice(0, 30)}`, { textDocument: { uri: other, languageId: 'typescript', version: 1, text: v } }]);
    cases.push(['textDocument/didChange', `contentChanges ${JSON.stringify(v)?.slice(0, 30)}`, { textDocument: { uri: docUri, version: 2 }, contentChanges: v }]);
    cases.push(['textDocument/didChange', `a change ${JSON.stringify(v)?.slice(0, 30)}`, { textDocument: { uri: docUri, version: 2 }, contentChanges: [v] }]);
    cases.push(['$/cancelRequest', `id ${JSON.stringify(v)?.slice(0, 30)}`, { id: v }]);
  }
  const range = (sl: number, sc: number, el: number, ec: number) => ({ start: { line: sl, character: sc }, end: { line: el, character: ec } });
  for (const [label, r] of [['negative range', range(-5, -1, -2, 0)], ['reversed range', range(10, 0, 2, 0)], ['range past the end', range(1e6, 0, 1e6 + 1, 5)], ['NaN-ish range', range(0.5, 1.5, 'x' as unknown as number, 0)]] as const) {
    cases.push(['textDocument/didChange', label, { textDocument: { uri: pathToFileURL(path.join(project, 'scratch.ts')).href, version: 2 }, contentChanges: [{ range: r, text: 'x' }] }]);
  }
  cases.push(['textDocument/didChange', 'a document never opened', { textDocument: { uri: 'file:///never/opened.ts', version: 3 }, contentChanges: [{ text: 'x' }] }]);
  cases.push(['textDocument/didChange', 'no version', { textDocument: { uri: docUri }, contentChanges: [{ text: docText }] }]);
  cases.push(['textDocument/didClose', 'a document never opened', { textDocument: { uri: 'file:///never/opened.ts' } }]);
  cases.push(['workspaceLm/unknownNotification', 'unknown', { a: 1 }]);
  // The scratch document the impossible edits go to, opened first.
  await notify('textDocument/didOpen', { textDocument: { uri: pathToFileURL(path.join(project, 'scratch.ts')).href, languageId: 'typescript', version: 1, text: 'const a = 1;\n' } });
  for (const [method, label, params] of cases) {
    await tally.probe(method, label, async (): Promise<Outcome> => {
      await notify(method, params);
      const problem = await alive();
      return problem ? { kind: 'crash', detail: problem } : { kind: 'skip', reason: 'malformed notification dropped (the protocol has no answer for one); the server answers on' };
    });
  }
  assert.equal(await completes(), null, 'a valid completion after the bad notifications');
});

test('a 10 MB document, then a storm of didChange: completions still answer, in time', { timeout: 180_000 }, async () => {
  const big = pathToFileURL(path.join(project, 'src', 'big.ts')).href;
  const unit = readFileSync(path.join(fixture, 'src', 'inventory.ts'), 'utf8');
  const text = unit.repeat(Math.ceil((10 << 20) / unit.length));
  const client = server.client.connection;
  await tally.probe('textDocument/didOpen', `a ${(text.length / 2 ** 20).toFixed(1)} MB document, completed at its end and middle`, async (): Promise<Outcome> => {
    await client.sendNotification('textDocument/didOpen', { textDocument: { uri: big, languageId: 'typescript', version: 1, text } });
    const lines = text.split('\n');
    const started = performance.now();
    for (const line of [lines.length - 2, lines.length >> 1]) {
      await request('textDocument/inlineCompletion', { textDocument: { uri: big }, position: { line, character: lines[line].length }, context: { triggerKind: 1 } });
    }
    const ms = performance.now() - started;
    tally.note(`10 MB document: two completions in ${ms.toFixed(0)} ms`);
    return { kind: 'defined', what: `answered in ${ms.toFixed(0)} ms` };
  }, 60_000);
  // Each edit of the 10 MB document costs the protocol library a copy of it: a hundred are a storm enough.
  await tally.probe('textDocument/didChange', 'a storm: 100 edits to the 10 MB document and 1000 to the typed one, 50 completions among them', async (): Promise<Outcome> => {
    let version = 1;
    let typedVersion = 1;
    const pending: Promise<unknown>[] = [];
    const started = performance.now();
    for (let i = 0; i < 1000; i++) {
      const line = rng.int(0, 400);
      if (i % 10 === 0) void client.sendNotification('textDocument/didChange', { textDocument: { uri: big, version: ++version }, contentChanges: [{ range: { start: { line, character: 0 }, end: { line, character: 0 } }, text: rng.pick(['x', '\n', '// é\n', '']) }] });
      // The typed document: a character typed at the end of its first line, then taken back.
      const end = docText.indexOf('\n');
      const edit = i % 2 === 0 ? { range: { start: { line: 0, character: end }, end: { line: 0, character: end } }, text: 'x' } : { range: { start: { line: 0, character: end }, end: { line: 0, character: end + 1 } }, text: '' };
      void client.sendNotification('textDocument/didChange', { textDocument: { uri: docUri, version: ++typedVersion }, contentChanges: [edit] });
      if (i % 20 === 0) pending.push(request('textDocument/inlineCompletion', { textDocument: { uri: docUri }, position: sites()[i % sites().length], context: { triggerKind: 2 } }));
    }
    const answers = await Promise.allSettled(pending);
    const failed = answers.filter((a) => a.status === 'rejected');
    const ms = performance.now() - started;
    tally.note(`didChange storm: 1100 edits and ${pending.length} completions answered in ${ms.toFixed(0)} ms`);
    if (failed.length) return { kind: 'crash', detail: `${failed.length} completions failed: ${(failed[0] as PromiseRejectedResult).reason}` };
    return { kind: 'defined', what: `every request answered (${ms.toFixed(0)} ms)` };
  }, 120_000);
  await client.sendNotification('textDocument/didClose', { textDocument: { uri: big } });
  assert.equal(await completes(), null, 'a valid completion after the storm');
});

// ---------------------------------------------------------------------------------------------

test('damaged model folders: listed, refused at select with the reason; the active model keeps serving', { timeout: 300_000 }, async () => {
  const list = damages();
  for (const damage of list) damagedCopy(sharedModel(), modelsDir, damage, rng);
  const listed = (await request(ModelsRequest.method, { action: 'list' })) as ModelsRequest.Result;
  for (const damage of list) {
    await tally.probe('workspaceLm/models select', damage.what, async (): Promise<Outcome> => {
      const info = listed.models.find((m) => m.name === damage.name);
      if (!info) return { kind: 'crash', detail: 'not listed' };
      try {
        await request(ModelsRequest.method, { action: 'select', name: damage.name });
      } catch (err) {
        const outcome = classifyRejection(err);
        const stats = (await request(CompletionStatsRequest.method, {})) as CompletionStatsRequest.Result;
        if (stats.model !== GOOD) return { kind: 'crash', detail: `after a refused select the serving model is ${stats.model}` };
        return outcome;
      }
      // Selected: it must serve, then the good one goes back.
      const problem = await completes();
      await request(ModelsRequest.method, { action: 'select', name: GOOD });
      return problem ? { kind: 'crash', detail: `selected, then ${problem}` } : { kind: 'defined', what: `selected and serves (${info.state}: ${damage.what} is derived)` };
    }, 60_000);
  }
  assert.equal(((await request(CompletionStatsRequest.method, {})) as CompletionStatsRequest.Result).model, GOOD);
});

test('a server started on a models dir whose active model is damaged: says so, serves nothing, answers', { timeout: 60_000 }, async () => {
  const dir = path.join(tmp, 'models-damaged-active');
  const damage = damages().find((d) => d.name === 'truncated-weights_bin')!;
  damagedCopy(sharedModel(), dir, damage, rng);
  writeFileSync(path.join(dir, 'active.json'), JSON.stringify({ name: damage.name }));
  const second = await startFaultServer({ settings: { modelsDir: dir } }, project);
  try {
    await tally.probe('server start', 'active.json names a damaged model', async (): Promise<Outcome> => {
      const warning = await second.client.until(() => second.client.logs.find((l) => l.includes('cannot be loaded')));
      const stats = (await second.client.connection.sendRequest(CompletionStatsRequest.method, {})) as CompletionStatsRequest.Result;
      if (stats.model !== null) return { kind: 'crash', detail: `serves ${stats.model}` };
      return { kind: 'error', message: warning };
    });
  } finally {
    await stopFaultServer(second);
  }
  assert.ok(existsSync(dir));
});

test('afterwards a valid completion request still succeeds', async () => {
  assert.equal(await alive(), null);
  assert.equal(await completes(), null);
});
