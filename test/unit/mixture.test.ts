// The editor's mixture: the open-documents cache (normalised, learns repeats, the document under the
// cursor never predicts itself), EM weights, mixed log-probabilities, the files it writes in a model
// folder, and a completion session that decodes with it (a repeat from an open file, the filter, a
// saved file taken into the workspace n-gram).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_TRAIN, type GPTConfig } from '../../models/src/model/config';
import { writeWeights, type ModelFolderConfig } from '../../models/src/model/checkpoint';
import { CodeTokenizer } from '../../models/src/data/tokenizer';
import { seededRandom } from '../../models/src/infer/generate';
import { NGramModel } from '../../models/src/infer/ngram';
import { BUCKETS, MIXTURE_FILE, NGRAM_FILE, Mixture, TokenCache, atLineStart, bucketOf, buildMixture, fitWeights, mixtureLoss, tokenKinds, type FitSample } from '../../models/src/infer/mixture';
import { randomWeights } from './testWeights';
import { CompletionSession } from '../../models/src/infer/session';

const sum = (xs: ArrayLike<number>): number => Array.from(xs).reduce((a, b) => a + b, 0);

test('cache: a distribution that sums to 1; a repeated sequence predicts its continuation, with the match length', () => {
  const cache = new TokenCache(50);
  const out = new Float64Array(50);
  assert.equal(cache.distribution([1, 2], out), 0);
  assert.ok(Math.abs(sum(out) - 1) < 1e-12 && out.every((p) => Math.abs(p - 1 / 50) < 1e-15), 'empty cache: uniform');
  cache.observe('a.ts', [7, 8, 9, 10, 11, 3, 4, 5, 7, 8, 9, 12]);
  const matched = cache.distribution([3, 7, 8, 9], out);
  assert.ok(Math.abs(sum(out) - 1) < 1e-12);
  assert.equal(matched, 3); // "7 8 9" seen twice; "3 7 8 9" never
  assert.ok(out[10] > 0.25 && out[12] > 0.25 && out[10] + out[12] > 0.8, `after 7 8 9: ${out[10]}, ${out[12]}`);
  assert.ok(out[40] > 0 && out[40] < 0.01, 'an unseen token keeps a little mass');
  // A longer match wins over a shorter one: "4 5 7 8 9" only continues with 12.
  cache.distribution([4, 5, 7, 8, 9], out);
  assert.ok(out[12] > 2 * out[10], `${out[12]} vs ${out[10]}`);
});

test('cache: the document under the cursor hides its observed copy; forgetting restores the old counts', () => {
  const fresh = new TokenCache(20);
  fresh.observe('b.ts', [1, 2, 3, 1, 2, 4]);
  const reference = new Float64Array(20);
  fresh.distribution([1, 2], reference);

  const cache = new TokenCache(20);
  cache.observe('b.ts', [1, 2, 3, 1, 2, 4]);
  cache.observe('a.ts', [5, 1, 2, 6]);
  const out = new Float64Array(20);
  // Editing a.ts at "5 1 2|": its observed text (which holds "6" at the cursor) must not answer.
  cache.setCurrent('a.ts', [5, 1, 2], []);
  cache.distribution([1, 2], out);
  assert.ok(out[6] < 0.02, `the text at the cursor predicted itself: ${out[6]}`);
  // The same arrays again (typing within a line): the same counts, the same answer.
  const prefix = [5, 1, 2];
  const suffix = [9, 9];
  cache.setCurrent('a.ts', prefix, suffix);
  const first = Array.from((cache.distribution([1, 2], out), out));
  const held = cache.tokenCount;
  cache.setCurrent('a.ts', prefix, suffix);
  assert.equal(cache.tokenCount, held);
  assert.deepEqual(Array.from((cache.distribution([1, 2], out), out)), first);
  cache.setCurrent(null);
  cache.distribution([1, 2], out);
  assert.ok(out[6] > 0.15, 'observed again once the cursor left');
  cache.forget('a.ts');
  cache.distribution([1, 2], out);
  assert.deepEqual(Array.from(out), Array.from(reference));
  assert.throws(() => cache.observe('c.ts', [1, 99]), /token cache: token 99 at 1 is outside the vocabulary \[0, 20\)/);
});

test('EM weights: the component that predicts a bucket gets its weight; the mixture beats each component', () => {
  const random = seededRandom(3);
  const samples: FitSample[] = [];
  for (let i = 0; i < 2000; i++) {
    // Bucket 0: the model is right; bucket 1: the cache is right; the n-gram is middling everywhere.
    const bucket = i % 2;
    const good = 0.6 + 0.3 * random();
    const bad = 0.01 * random() + 1e-4;
    samples.push({ p: bucket === 0 ? [good, 0.2, bad] : [bad, 0.2, good], bucket });
  }
  const weights = fitWeights(samples);
  assert.equal(weights.length, BUCKETS);
  assert.ok(weights[0][0] > 0.7 && weights[1][2] > 0.7, JSON.stringify(weights.slice(0, 2)));
  for (const row of weights) assert.ok(Math.abs(sum(row) - 1) < 1e-9);
  const mixed = mixtureLoss(samples, weights);
  for (let c = 0; c < 3; c++) {
    const single = -samples.reduce((s, x) => s + Math.log(x.p[c]), 0) / samples.length;
    assert.ok(mixed < single, `mixture ${mixed} vs component ${c} ${single}`);
  }
  // An empty bucket keeps the global weights.
  assert.deepEqual(weights[BUCKETS - 1].map((x) => x.toFixed(6)), fitWeights(samples.map((s) => ({ ...s, bucket: 0 })))[0].map((x) => x.toFixed(6)));
});

test('mixed log-probabilities: normalised, the weighted sum of the three components for the bucket', () => {
  const random = seededRandom(5);
  const tokens = Int32Array.from({ length: 2000 }, () => Math.floor(random() * 30));
  const ngram = NGramModel.train(tokens, { vocabSize: 32, order: 3 });
  const weights = Array.from({ length: BUCKETS }, (_, b) => [0.5, 0.3 + (b % 2) * 0.1, 0.2 - (b % 2) * 0.1]);
  const mixture = new Mixture(ngram, weights, new Uint8Array(32));
  mixture.cache.observe('x', [4, 5, 6, 4, 5, 7]);
  const logits = Float32Array.from({ length: 32 }, () => random() * 4);
  const context = [9, 4, 5];
  const mixed = mixture.logProbs(logits, context);
  assert.ok(Math.abs(sum(Array.from(mixed, Math.exp)) - 1) < 1e-5);
  // What decoding reads: the same mixture as probabilities.
  const probs = mixture.probs(logits, context);
  assert.ok(Math.abs(sum(probs) - 1) < 1e-12 && probs.every((p, id) => Math.abs(Math.log(p) - mixed[id]) < 1e-5));
  const c = mixture.components(logits, context);
  assert.equal(c.bucket, bucketOf(2, ngram.matchedContext(context), false));
  const w = weights[c.bucket];
  for (const id of [0, 6, 7, 31]) assert.ok(Math.abs(Math.exp(mixed[id]) - (w[0] * c.model[id] + w[1] * c.ngram[id] + w[2] * c.cache[id])) < 1e-6);
  assert.throws(() => mixture.logProbs(new Float32Array(5), context), /mixture: 5 logits for a 32-token vocabulary/);
});

// ---------------------------------------------------------------------------------------------
// In a model folder, with a completion session (a tiny random GPT: the n-gram and cache carry it).

const trainCode = [
  'export function add(a, b) {\n  return a + b;\n}\n',
  'export function greet(name) {\n  console.log("hello " + name);\n}\n',
  'const values = [1, 2, 3].map((x) => x * 2);\nfor (const v of values) {\n  total += v;\n}\n',
];
const heldOut = 'const result = computeTheAnswer(42);\nconsole.log(result);\nconst result2 = computeTheAnswer(43);\nconsole.log(result2);\n';


let root = '';
let modelDir = '';
let tokenizer: CodeTokenizer;
let session: CompletionSession;
let fitted: Awaited<ReturnType<typeof buildMixture>>;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-mixture-'));
  modelDir = path.join(root, 'model');
  await fs.mkdir(modelDir, { recursive: true });
  tokenizer = await CodeTokenizer.train([...trainCode, heldOut], 300);
  const model: GPTConfig = { vocabSize: tokenizer.vocabSize, blockSize: 64, nLayer: 1, nHead: 2, nEmbd: 16, dropout: 0 };
  const config: ModelFolderConfig = {
    formatVersion: 1, kind: 'workspace-lm-model', name: 'random', createdAt: new Date(0).toISOString(), preset: 'tiny',
    model, train: { ...DEFAULT_TRAIN }, step: 0, bestValLoss: null, backend: { name: 'cpu', device: 'test' },
    data: { root: '/nowhere', files: 0, tokens: 0, skipped: {} }, timings: {},
  };
  await fs.writeFile(path.join(modelDir, 'config.json'), JSON.stringify(config));
  await tokenizer.save(path.join(modelDir, 'tokenizer.json'));
  await writeWeights(modelDir, randomWeights(model, 1), model);
  const eot = tokenizer.special.endOfText;
  const stream = (texts: string[]) => {
    const ids = Int32Array.from(texts.flatMap((t) => [eot, ...tokenizer.encode(t)]));
    return { length: ids.length, read: (s: number, n: number) => ids.subarray(s, s + n) };
  };
  const fitSession = await CompletionSession.open(modelDir, { threads: 1, mixture: false });
  fitted = await buildMixture({
    modelDir, trainTokens: stream(Array(20).fill(trainCode).flat()), valTokens: stream([heldOut, heldOut.replace(/result/g, 'answer')]),
    endOfText: eot, tokenBytes: (id) => tokenizer.tokenBytes(id), blockSize: model.blockSize, modelLogits: (w) => fitSession.logitsUncached(w),
  });
  await fitSession.close();
  session = await CompletionSession.open(modelDir, { threads: 1 });
});

after(async () => {
  await session?.close();
  await fs.rm(root, { recursive: true, force: true });
});

test('buildMixture writes ngram.bin and mixture.json; the random model earns little weight', async () => {
  assert.ok(existsSync(path.join(modelDir, NGRAM_FILE)));
  const file = JSON.parse(await fs.readFile(path.join(modelDir, MIXTURE_FILE), 'utf8'));
  assert.equal(file.kind, 'workspace-lm-mixture');
  assert.equal(file.weights.length, BUCKETS);
  assert.ok(fitted.fit.tokens > 40, `${fitted.fit.tokens} fitted predictions`);
  const { model, ngram, cache, mixture } = fitted.fit.loss;
  assert.ok(mixture < Math.min(model, ngram, cache), JSON.stringify(fitted.fit.loss));
  // Dropping a component never helps the refitted mixture; the n-gram and the cache carry this one.
  for (const c of ['model', 'ngram', 'cache'] as const) assert.ok(fitted.fit.without[c] >= mixture - 1e-3, `${c}: ${JSON.stringify(fitted.fit.without)}`);
  assert.ok(fitted.fit.without.ngram > mixture + 0.05 && fitted.fit.without.cache > mixture + 0.05, JSON.stringify(fitted.fit.without));
  const total = fitted.fit.perBucket.reduce((a, b) => a + b, 0);
  const modelShare = fitted.weights.reduce((s, row, b) => s + row[0] * fitted.fit.perBucket[b], 0) / total;
  assert.ok(modelShare < 0.3, `a random model got ${modelShare} of the weight`);
  assert.ok(session.mixture !== null);
});

test('session: a line repeated from an open file completes from the cache; without the mixture it does not', async () => {
  session.observeDocument('file:///open.ts', 'function main() {\n  const total = sumOfSquares(values, 17);\n  return total;\n}\n');
  const prefix = 'export function other() {\n  const total = sumOf';
  const mixed = await session.complete({ prefix, suffix: '\n}\n', mode: 'line', maxTokens: 24, uri: 'file:///other.ts' });
  assert.equal(mixed.text, 'Squares(values, 17);');
  assert.ok(mixed.mixed && !mixed.filtered);
  assert.ok(mixed.meanLogProb < 0 && mixed.meanLogProb > -1.5, `mean log-prob ${mixed.meanLogProb}`);
  const plain = await session.complete({ prefix, suffix: '\n}\n', mode: 'line', maxTokens: 24, mixture: false, uri: 'file:///other.ts' });
  assert.ok(!plain.mixed);
  assert.notEqual(plain.text, mixed.text);
  // The filter: the same suggestion withheld when the bar is above its confidence.
  const strict = await session.complete({ prefix, suffix: '\n}\n', mode: 'line', maxTokens: 24, uri: 'file:///other.ts', minMeanLogProb: mixed.meanLogProb + 0.01 });
  assert.deepEqual([strict.text, strict.filtered], ['', true]);
  // Once the document is closed, the repeat is gone from the cache.
  session.forgetDocument('file:///open.ts');
  const forgotten = await session.complete({ prefix, suffix: '\n}\n', mode: 'line', maxTokens: 24, uri: 'file:///other.ts' });
  assert.notEqual(forgotten.text, mixed.text);
});

test('drafting: the n-gram and cache run ahead with each position; the same completion from fewer model runs', async () => {
  session.observeDocument('file:///open.ts', 'function main() {\n  const total = sumOfSquares(values, 17);\n  return total;\n}\n');
  // Greedy, so that the positions run are counted one per token (a mid-line beam runs its paths too).
  const request = { prefix: 'export function other() {\n  const total = sumOf', suffix: '\n}\n', mode: 'line' as const, maxTokens: 24, uri: 'file:///other.ts', beamWidth: 1 };
  session.resetCache();
  const drafted = await session.complete(request);
  session.resetCache();
  const plain = await session.complete({ ...request, draft: false });
  assert.equal(drafted.text, 'Squares(values, 17);');
  assert.deepEqual([drafted.text, drafted.tokens, drafted.meanLogProb.toFixed(6)], [plain.text, plain.tokens, plain.meanLogProb.toFixed(6)]);
  // Without drafts: one run per generated token after the first. With them: the cache's repeat is
  // drafted with the prompt and most picks find their logits computed.
  assert.equal(plain.draftedPositions, 0);
  assert.equal(plain.computedTokens, plain.prefillPositions + plain.tokens - 1);
  assert.ok(drafted.draftedPositions >= 3 && drafted.draftHits >= 3, `drafted ${drafted.draftedPositions}, hits ${drafted.draftHits}`);
  assert.ok(drafted.computedTokens <= plain.computedTokens - drafted.draftHits, `computed ${drafted.computedTokens} vs ${plain.computedTokens} without drafts`);
  // The draft itself: greedy on the n-gram and the cache, up to and including a line break, within its budget.
  const mixture = session.mixture!;
  mixture.cache.setCurrent(null);
  const breaks = (id: number) => tokenizer.tokenBytes(id).includes(0x0a);
  const context = tokenizer.encode('  const total = sumOf');
  const line = mixture.draft(context, 24, breaks);
  assert.match(tokenizer.decode(line), /^Squares\(values, 17\);\n[ ]*$/);
  assert.ok(line.slice(0, -1).every((id) => !breaks(id)), 'only the last drafted token breaks the line');
  assert.deepEqual(mixture.draft(context, 3, breaks), line.slice(0, 3));
  session.forgetDocument('file:///open.ts');
});

test('prepareDocument: an opened document is tokenized ahead, and its first completion encodes only the line at the cursor', async () => {
  const lines = Array.from({ length: 400 }, (_, i) => `  const value${i} = compute(${i}, "item ${i}");`);
  const text = `function big() {\n${lines.join('\n')}\n}\n`;
  const cursor = text.indexOf('  const value300') + '  const val'.length;
  const encoded: string[] = [];
  const served = session.tokenizer; // the session's own (loaded from the folder)
  const encode = served.encode.bind(served);
  served.encode = (piece: string) => (encoded.push(piece), encode(piece));
  try {
    const complete = (uri: string, doc: string) => session.complete({ prefix: doc.slice(0, cursor), suffix: doc.slice(cursor), mode: 'line', maxTokens: 8, uri });
    session.prepareDocument('file:///prepared.ts', text);
    await session.linesMemoized();
    encoded.length = 0;
    await complete('file:///prepared.ts', text);
    const preparedEncodes = encoded.length;
    // Another document of the same shape (the memo is by line text), not prepared.
    encoded.length = 0;
    await complete('file:///not-prepared.ts', text.replace(/value/g, 'other'));
    // Prepared: the cursor's line and the pieces the window cuts; unprepared: the whole document around it.
    assert.ok(preparedEncodes <= 4, `${preparedEncodes} pieces encoded: ${JSON.stringify(encoded.slice(0, 5))}`);
    assert.ok(encoded.length > 100, `the unprepared document encoded ${encoded.length} pieces`);
  } finally {
    served.encode = encode;
    session.forgetDocument('file:///prepared.ts');
    session.forgetDocument('file:///not-prepared.ts');
  }
});

test('a corrupt mixture.json is reported, with a hint, and not loaded; a folder without token files cannot build one', async () => {
  await assert.rejects(CompletionSession.buildMixture(modelDir), /no train\.bin token file for .*: the mixture needs the model's training and held-out tokens; hint: rebuild them from the sources/);
  const other = path.join(root, 'corrupt');
  await fs.mkdir(other);
  await fs.copyFile(path.join(modelDir, NGRAM_FILE), path.join(other, NGRAM_FILE));
  await fs.writeFile(path.join(other, MIXTURE_FILE), JSON.stringify({ formatVersion: 1, kind: 'workspace-lm-mixture', weights: [[1, 0, 0]] }));
  const bytes = (id: number) => tokenizer.tokenBytes(id);
  await assert.rejects(Mixture.load(other, bytes), /corrupt .*mixture\.json: weights must be 40 rows; hint/);
  await fs.writeFile(path.join(other, MIXTURE_FILE), '{');
  await assert.rejects(Mixture.load(other, bytes), /corrupt .*mixture\.json: not JSON/);
  await fs.rm(path.join(other, MIXTURE_FILE));
  assert.equal(await Mixture.load(other, bytes), null);
});

test('observeDocument tokenizes a line at a time, with the ids of the whole text (blank lines, trailing spaces, CRLF)', () => {
  const text = 'function f() {\n\n    return 1;  \n}\r\n\r\n// done\n\n\n  x = "a\\nb";\n';
  const cache = session.mixture!.cache;
  session.forgetDocument('file:///lines.ts');
  const before = cache.tokenCount;
  session.observeDocument('file:///lines.ts', text);
  assert.equal(cache.tokenCount - before, tokenizer.encode(text).length);
  session.observeDocument('file:///lines.ts', text + 'y = 2;\n'); // memoised lines, one new
  assert.equal(cache.tokenCount - before, tokenizer.encode(text + 'y = 2;\n').length);
  session.forgetDocument('file:///lines.ts');
  assert.equal(cache.tokenCount, before);
});

test('line starts: a context ending in a line break and indentation picks the line-start weights', () => {
  const kinds = tokenKinds(tokenizer.vocabSize, (id) => tokenizer.tokenBytes(id));
  const ids = (text: string) => tokenizer.encode(text);
  assert.equal(atLineStart(ids('return a;\n'), kinds), true);
  assert.equal(atLineStart(ids('return a;\n    '), kinds), true);
  assert.equal(atLineStart(ids('return a;'), kinds), false);
  assert.equal(atLineStart(ids('return a; '), kinds), false);
  assert.equal(atLineStart([], kinds), false);
  assert.equal(kinds[tokenizer.special.endOfText], 0);
  assert.ok(bucketOf(0, 0, true) >= BUCKETS / 2 && bucketOf(4, 3, false) < BUCKETS / 2 && bucketOf(9, 9, true) === BUCKETS - 1);
});

test('session: a saved file goes into the workspace n-gram at once, replacing its old text; a text the n-gram never counted is never taken out', async () => {
  const ngram = session.mixture!.ngram;
  const contexts = [[], ...trainCode.map((t) => tokenizer.encode(t).slice(0, 5))];
  const original = { tokens: ngram.trainedTokens, dists: contexts.map((c) => ngram.distribution(c).slice()) };
  const prefix = 'export function other() {\n  const scaled = quokkaSc';
  // Greedy: the counts under test, not the beam's pick among the test model's near-even guesses.
  const complete = async () => (await session.complete({ prefix, suffix: '\n}\n', mode: 'line', maxTokens: 24, uri: 'file:///other.ts', beamWidth: 1 })).text;
  const saved = 'const scaled = quokkaScale(values, 3);\nconsole.log(scaled);\n'.repeat(4);
  assert.notEqual(await complete(), 'ale(values, 3);', 'nothing like it was counted');

  // A new file, saved: not open, so the cache does not hold it; the n-gram does.
  const first = await session.takeSavedFiles([{ key: 'file:///saved.ts', text: saved }]);
  assert.deepEqual([first?.files, first?.tokensOut], [1, 0]);
  assert.equal(first?.tokensIn, tokenizer.encode(saved).length + 1, 'the text after an <|endoftext|>, as dataset.ts lays out a document');
  assert.equal(await complete(), 'ale(values, 3);');
  // Saved again with another name: the old text leaves the counts.
  const renamed = await session.takeSavedFiles([{ key: 'file:///saved.ts', text: saved.replace(/quokka/g, 'wombat'), before: saved }]);
  assert.equal(renamed?.tokensOut, first?.tokensIn);
  assert.notEqual(await complete(), 'ale(values, 3);');
  // The same text again (the file watcher after the editor's save): nothing changes.
  const again = await session.takeSavedFiles([{ key: 'file:///saved.ts', text: saved.replace(/quokka/g, 'wombat') }]);
  assert.deepEqual([again?.files, again?.tokensIn, again?.tokensOut], [0, 0, 0]);

  // A file the n-gram counted at training, first saved here: its text on disk before goes out; a
  // held-out one (never counted) takes nothing out.
  const trained = await session.takeSavedFiles([{ key: 'file:///add.ts', text: trainCode[0].replace('a + b', 'b + a'), before: trainCode[0] }, { key: 'file:///held-out.ts', text: heldOut + '\n', before: heldOut }]);
  assert.equal(trained?.tokensOut, tokenizer.encode(trainCode[0]).length + 1);

  // Deleted, and put back as counted: the counts are as they were.
  await session.takeSavedFiles([{ key: 'file:///saved.ts', text: null }, { key: 'file:///held-out.ts', text: null }, { key: 'file:///add.ts', text: trainCode[0] }]);
  assert.equal(ngram.trainedTokens, original.tokens);
  contexts.forEach((c, i) => {
    const now = ngram.distribution(c);
    assert.ok(now.every((p, w) => Math.abs(p - original.dists[i][w]) < 1e-12), `after ${c}`);
  });
});
