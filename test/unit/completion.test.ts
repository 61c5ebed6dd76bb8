// Whether and how to complete, the cache, typed-ahead reuse and the cancellation points of the
// completion path, with a scripted backend in place of the ONNX session (the real one is exercised
// in test/lsp). The prompt window and the clean-up are the session's: generate.test.ts,
// postprocess.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completionMode, LruCache, ActiveModel, InlineCompleter, type CompletionBackend, type CancellationLike } from '../../server/src/completion';

/** The mode of a completion at the `|` of `textWithCursor`. */
function modeAt(textWithCursor: string, multiline = false) {
  const offset = textWithCursor.indexOf('|');
  return completionMode(textWithCursor.slice(0, offset) + textWithCursor.slice(offset + 1), offset, multiline);
}

test('completionMode: a block only at the end of a line and when asked for; else the line', () => {
  // Inside a line a block would overwrite what follows: line mode even when multiline is on.
  assert.equal(modeAt('const a = 1;\nfunction f(|) {\n  return a;\n}\n', true), 'line');
  assert.equal(modeAt('if (x) {\n  |\n}', true), 'block');
  assert.equal(modeAt('if (x) {\n  |\r\n}', true), 'block');
  assert.equal(modeAt('if (x) {\n  |\n}', false), 'line');
});

test('completionMode refuses mid-word cursors and bad offsets', () => {
  assert.equal(modeAt('const val|ue = 1;'), null);
  assert.notEqual(modeAt('call(a, |);'), null);
  assert.equal(completionMode('abc', 4, false), null);
  assert.equal(completionMode('abc', -1, false), null);
  assert.equal(completionMode('abc', 1.5, false), null);
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

test('InlineCompleter hands the session the whole document and shows its text as it is', async () => {
  const backend = new ScriptedBackend('');
  const model = new ActiveModel(async () => backend);
  await model.activate('m1', '/m1');
  const completer = new InlineCompleter(model);
  // Deep in a long file: the window is the session's to pick, counted from the document's start.
  const doc = 'const values = [1, 2, 3];\n'.repeat(800) + 'const n = |;\n' + 'export {};\n'.repeat(100);
  const offset = doc.indexOf('|');
  const text = doc.slice(0, offset) + doc.slice(offset + 1);
  const outcome = await completer.complete({ text, offset }, settings, cancellation().token);
  assert.deepEqual(backend.calls, [{ prefix: text.slice(0, offset), suffix: text.slice(offset), mode: 'line', maxTokens: 16 }]);
  assert.deepEqual([outcome.text, outcome.reason], [null, 'junk'], "the session's '' is nothing to show");
  assert.equal((await completer.complete({ text, offset }, settings, cancellation().token)).reason, 'junk');
  assert.equal(backend.calls.length, 1, 'and it is cached');
});

test('InlineCompleter adds no queue: concurrent requests reach the session, which serves them in order', { timeout: 10_000 }, async () => {
  const started: string[] = [];
  let release: () => void = () => undefined;
  let bothStarted: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const both = new Promise<void>((resolve) => (bothStarted = resolve));
  const backend: CompletionBackend = {
    provider: 'gated',
    complete: async (req) => {
      if (started.push(req.prefix) === 2) bothStarted();
      await gate;
      return { text: 'x', tokens: 1, ms: 1 };
    },
    close: async () => undefined,
  };
  const model = new ActiveModel(async () => backend);
  await model.activate('m', '/m');
  const completer = new InlineCompleter(model);
  const first = completer.complete({ text: 'a = ', offset: 4 }, settings, cancellation().token);
  const second = completer.complete({ text: 'b = ', offset: 4 }, settings, cancellation().token);
  await both; // the second request reached the session while the first was still running
  assert.deepEqual(started, ['a = ', 'b = ']);
  release();
  assert.deepEqual([(await first).text, (await second).text], ['x', 'x']);
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
