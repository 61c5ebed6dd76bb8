// Prompt building, post-processing, the cache and the cancellation points of the completion path,
// with a scripted backend in place of the ONNX session (the real one is exercised in test/lsp).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPrompt, postProcess, LruCache, ActiveModel, InlineCompleter, type CompletionBackend, type CancellationLike, type Prompt } from '../../server/src/completion';

function at(textWithCursor: string, multiline = false): { text: string; offset: number; prompt: Prompt | null } {
  const offset = textWithCursor.indexOf('|');
  const text = textWithCursor.slice(0, offset) + textWithCursor.slice(offset + 1);
  return { text, offset, prompt: buildPrompt(text, offset, { maxPrefixChars: 3000, maxSuffixChars: 1000, multiline }) };
}

test('buildPrompt splits the document at the cursor and picks the mode', () => {
  const { prompt } = at('const a = 1;\nfunction f(|) {\n  return a;\n}\n', true);
  assert.ok(prompt);
  assert.equal(prompt.prefix, 'const a = 1;\nfunction f(');
  assert.equal(prompt.suffix, ') {\n  return a;\n}\n');
  assert.equal(prompt.linePrefix, 'function f(');
  assert.equal(prompt.lineSuffix, ') {');
  // Inside a line a block would overwrite what follows: line mode even when multiline is on.
  assert.equal(prompt.mode, 'line');
  assert.equal(at('if (x) {\n  |\n}', true).prompt?.mode, 'block');
  assert.equal(at('if (x) {\n  |\n}', false).prompt?.mode, 'line');
});

test('buildPrompt refuses mid-word cursors and bad offsets', () => {
  assert.equal(at('const val|ue = 1;').prompt, null);
  assert.notEqual(at('call(a, |);').prompt, null);
  assert.equal(buildPrompt('abc', 4), null);
  assert.equal(buildPrompt('abc', -1), null);
  assert.equal(buildPrompt('abc', 1.5), null);
});

test('buildPrompt windows start and end at line boundaries', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `line ${String(i).padStart(3, '0')};`); // 10 chars + newline each
  const text = lines.join('\n');
  const offset = text.indexOf('line 050;') + 'line 050;'.length;
  const prompt = buildPrompt(text, offset, { maxPrefixChars: 55, maxSuffixChars: 40, multiline: false })!;
  // 55 characters back lands inside "line 045;": the window starts at the next full line.
  assert.equal(prompt.prefix, 'line 046;\nline 047;\nline 048;\nline 049;\nline 050;');
  assert.equal(prompt.suffix, '\nline 051;\nline 052;\nline 053;\n');
  assert.ok(prompt.prefix.length <= 55 && prompt.suffix.length <= 40);
});

test('postProcess keeps one line in line mode and trims trailing space', () => {
  const { prompt } = at('const total = |');
  assert.equal(postProcess('items.length;  \nconsole.log(total);', prompt!), 'items.length;');
  assert.equal(postProcess('\nnext line', prompt!), null);
});

test('postProcess returns nothing rather than junk', () => {
  const { prompt } = at('function f() {\n  |\n  return 1;\n}');
  assert.equal(postProcess('', prompt!), null);
  assert.equal(postProcess('   \t ', prompt!), null);
  assert.equal(postProcess('return 1;', prompt!), null, 'repeats the following line');
  const loop = at('import a from "a";\n|');
  assert.equal(postProcess('import a from "a";', loop.prompt!), null, 'repeats the line above');
  assert.equal(postProcess('import b from "b";', loop.prompt!), 'import b from "b";');
});

test('postProcess drops the part that the rest of the line already holds', () => {
  const { prompt } = at('call(|);');
  assert.equal(postProcess('a, b);', prompt!), 'a, b');
  assert.equal(postProcess('a, b)', prompt!), 'a, b');
  assert.equal(postProcess('x', prompt!), 'x');
  assert.equal(postProcess(');', prompt!), null);
});

test('postProcess ends a block at a blank line or a dedent, keeping a closing bracket', () => {
  const { prompt } = at('function f(x) {\n  |', true);
  assert.equal(prompt!.mode, 'block');
  assert.equal(postProcess('const y = x * 2;\n  return y;\n}\n\nfunction g() {', prompt!), 'const y = x * 2;\n  return y;\n}');
  assert.equal(postProcess('a();\n  b();\n\n  c();', prompt!), 'a();\n  b();');
  assert.equal(postProcess('a();\nfoo();', prompt!), 'a();', 'a dedent that is not a bracket ends the block');
});

test('LruCache evicts the least recently used entry', () => {
  const cache = new LruCache<string, number>(2);
  cache.set('a', 1);
  cache.set('b', 2);
  assert.equal(cache.get('a'), 1); // a is now fresher than b
  cache.set('c', 3);
  assert.equal(cache.has('b'), false);
  assert.equal(cache.get('a'), 1);
  assert.equal(cache.get('c'), 3);
  assert.equal(cache.size, 2);
});

/** A cancellation source with the shape of LSP's. */
function cancellation(): { token: CancellationLike; cancel(): void } {
  const listeners = new Set<() => void>();
  let cancelled = false;
  return {
    token: {
      get isCancellationRequested() {
        return cancelled;
      },
      onCancellationRequested(listener) {
        listeners.add(listener);
        return { dispose: () => listeners.delete(listener) };
      },
    },
    cancel() {
      cancelled = true;
      for (const l of [...listeners]) l();
    },
  };
}

class ScriptedBackend implements CompletionBackend {
  readonly provider = 'scripted';
  calls: { prefix: string; suffix?: string; mode: string; maxTokens: number }[] = [];
  closed = false;
  onComplete?: () => void;
  constructor(private readonly answer: string) {}
  async complete(req: { prefix: string; suffix?: string; mode: 'line' | 'block'; maxTokens: number; signal?: AbortSignal }) {
    this.calls.push({ prefix: req.prefix, suffix: req.suffix, mode: req.mode, maxTokens: req.maxTokens });
    this.onComplete?.();
    return { text: this.answer, tokens: 3, ms: 1 };
  }
  async close() {
    this.closed = true;
  }
}

const settings = { multiline: false, maxTokens: 16, debounceMs: 0 };

test('InlineCompleter: model, then cache, then typed-ahead; nothing without a model', async () => {
  const backend = new ScriptedBackend('length;');
  const model = new ActiveModel(async () => backend);
  const completer = new InlineCompleter(model);
  const doc = 'const n = items.';
  assert.deepEqual((await completer.complete({ text: doc, offset: doc.length }, settings, cancellation().token)).reason, 'no model');

  await model.activate('m1', '/models/m1');
  const first = await completer.complete({ text: doc, offset: doc.length }, settings, cancellation().token);
  assert.equal(first.text, 'length;');
  assert.equal(first.source, 'model');
  assert.deepEqual(backend.calls, [{ prefix: doc, suffix: '', mode: 'line', maxTokens: 16 }]);

  const again = await completer.complete({ text: doc, offset: doc.length }, settings, cancellation().token);
  assert.equal(again.source, 'cache');
  const typed = doc + 'len';
  const ahead = await completer.complete({ text: typed, offset: typed.length }, settings, cancellation().token);
  assert.deepEqual([ahead.source, ahead.text], ['typed-ahead', 'gth;']);
  assert.equal(backend.calls.length, 1, 'cache and typed-ahead run no inference');
});

test('InlineCompleter honours cancellation during the debounce and before inference', async () => {
  const backend = new ScriptedBackend('x');
  const model = new ActiveModel(async () => backend);
  await model.activate('m1', '/m1');
  const completer = new InlineCompleter(model);

  const during = cancellation();
  const pending = completer.complete({ text: 'a = ', offset: 4 }, { ...settings, debounceMs: 60_000 }, during.token);
  during.cancel(); // ends the debounce at once: no timer is waited on
  assert.equal((await pending).reason, 'cancelled');

  const already = cancellation();
  already.cancel();
  assert.equal((await completer.complete({ text: 'b = ', offset: 4 }, settings, already.token)).reason, 'cancelled');
  assert.equal(backend.calls.length, 0);
});

test('ActiveModel swaps atomically and closes the old session after its last request', async () => {
  const sessions = new Map<string, ScriptedBackend>([['/a', new ScriptedBackend('from a')], ['/b', new ScriptedBackend('from b')]]);
  const model = new ActiveModel(async (dir) => sessions.get(dir)!);
  await model.activate('a', '/a');
  const completer = new InlineCompleter(model);
  const a = sessions.get('/a')!;
  // While a's request runs, b becomes active: a must stay open until the request ends.
  let swapDone: Promise<void> = Promise.resolve();
  a.onComplete = () => {
    swapDone = model.activate('b', '/b');
  };
  const during = await completer.complete({ text: 'x = ', offset: 4 }, settings, cancellation().token);
  await swapDone;
  assert.equal(during.text, 'from a');
  assert.equal(a.closed, true);
  assert.equal(model.name, 'b');
  const after = await completer.complete({ text: 'x = ', offset: 4 }, settings, cancellation().token);
  assert.equal(after.text, 'from b', 'the cache is keyed by model');
  await model.deactivate();
  assert.equal(sessions.get('/b')!.closed, true);
});

test('InlineCompleter: a session that throws when aborted gives a cancelled outcome, not an error', async () => {
  const started = cancellation();
  const backend: CompletionBackend = {
    provider: 'aborting',
    complete: (req) =>
      new Promise((_, reject) => {
        req.signal!.addEventListener('abort', () => reject(new Error('completion cancelled')));
        started.cancel(); // the user types on while inference runs
      }),
    close: async () => undefined,
  };
  const model = new ActiveModel(async () => backend);
  await model.activate('m', '/m');
  const outcome = await new InlineCompleter(model).complete({ text: 'x = ', offset: 4 }, settings, started.token);
  assert.deepEqual([outcome.text, outcome.reason], [null, 'cancelled']);

  // Any other failure still surfaces, for the server to log.
  const failing = new ActiveModel(async () => ({ ...backend, complete: async () => Promise.reject(new Error('model.onnx is corrupt')) }));
  await failing.activate('f', '/f');
  await assert.rejects(new InlineCompleter(failing).complete({ text: 'x = ', offset: 4 }, settings, cancellation().token), /corrupt/);
});

/** A backend with the mixture's open-files cache: records what it was shown and each request's filter. */
class CachingBackend extends ScriptedBackend {
  observed = new Map<string, string>();
  requests: { uri?: string; minMeanLogProb?: number }[] = [];
  observeDocument(uri: string, text: string) {
    this.observed.set(uri, text);
  }
  forgetDocument(uri: string) {
    this.observed.delete(uri);
  }
  override async complete(req: Parameters<ScriptedBackend['complete']>[0] & { uri?: string; minMeanLogProb?: number }) {
    this.requests.push({ uri: req.uri, minMeanLogProb: req.minMeanLogProb });
    return super.complete(req);
  }
}

test('InlineCompleter feeds open documents to the model cache before inference, and passes the confidence filter', async () => {
  const sessions = new Map([['/a', new CachingBackend('one')], ['/b', new CachingBackend('two')]]);
  const model = new ActiveModel(async (dir) => sessions.get(dir)!);
  await model.activate('a', '/a');
  const completer = new InlineCompleter(model);
  completer.observeDocument('file:///helpers.ts', 'export function clamp() {}');
  completer.observeDocument('file:///main.ts', 'const x = ');
  const a = sessions.get('/a')!;
  assert.equal(a.observed.size, 0, 'observing a document costs nothing until a completion runs');

  await completer.complete({ text: 'const x = ', offset: 10, uri: 'file:///main.ts' }, { ...settings, minTokenProbability: 0.25 }, cancellation().token);
  assert.deepEqual([...a.observed.keys()], ['file:///helpers.ts'], 'the edited document is left to the prompt itself');
  assert.equal(a.requests[0].uri, 'file:///main.ts');
  assert.ok(Math.abs(a.requests[0].minMeanLogProb! - Math.log(0.25)) < 1e-12);

  completer.forgetDocument('file:///helpers.ts');
  completer.observeDocument('file:///other.ts', 'let y = 2;');
  await completer.complete({ text: 'const z = ', offset: 10, uri: 'file:///main.ts' }, settings, cancellation().token);
  assert.deepEqual([...a.observed.keys()], ['file:///other.ts'], 'closed documents are forgotten, new ones shown');
  assert.equal(a.requests[1].minMeanLogProb, undefined, 'no filter unless asked for');

  // A model swapped in catches up with every open document at its first request.
  await model.activate('b', '/b');
  await completer.complete({ text: 'const w = ', offset: 10, uri: 'file:///main.ts' }, settings, cancellation().token);
  assert.deepEqual([...sessions.get('/b')!.observed.keys()], ['file:///other.ts']);
});
