// Dataset: the split by file (deterministic, disjoint, both sides filled), the token file (exact
// documents between <|endoftext|>, FIM layout, uint16/uint32), and the sampler (a pure function
// of seed, step and micro; y is x shifted by one; fixed validation windows).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanFolder, readSourceText, type SourceFile } from '../../models/src/data/files';
import { CodeTokenizer } from '../../models/src/data/tokenizer';
import { splitFiles, tokenizeFiles, openTokenStream, BatchSampler, type TokenStream } from '../../models/src/data/dataset';

const SAMPLE = path.join(__dirname, '..', 'fixtures', 'sample-project');

let dir: string;
let files: SourceFile[];
let texts: string[];
let tokenizer: CodeTokenizer;

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-dataset-'));
  files = (await scanFolder(SAMPLE)).files;
  texts = await Promise.all(files.map(async (f) => (await readSourceText(f))!));
  tokenizer = await CodeTokenizer.train(texts, 512);
});

after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function fakeFiles(n: number): SourceFile[] {
  return Array.from({ length: n }, (_, i) => ({ relPath: `src/module${i}.ts`, absPath: `/w/src/module${i}.ts`, bytes: 100 }));
}

/** Splits a token stream at <|endoftext|>: the documents, in order (the stream opens with one). */
function documents(ids: Int32Array, endOfText: number): number[][] {
  assert.equal(ids[0], endOfText, 'the stream starts with <|endoftext|>');
  const docs: number[][] = [];
  for (const id of ids) {
    if (id === endOfText) docs.push([]);
    else docs[docs.length - 1].push(id);
  }
  return docs;
}

/** A stream whose token at position i is i: windows and shifts can be read off the values. */
function countingStream(length: number): TokenStream {
  return {
    length,
    read: (start, count) => Int32Array.from({ length: count }, (_, i) => start + i),
  };
}

test('split is deterministic, disjoint, complete, and stable when files are added', () => {
  const all = fakeFiles(200);
  const a = splitFiles(all, 0.1, 1337);
  const b = splitFiles([...all].reverse(), 0.1, 1337);
  assert.deepEqual(a, b, 'input order does not matter');
  const valPaths = new Set(a.val.map((f) => f.relPath));
  assert.ok(a.train.every((f) => !valPaths.has(f.relPath)), 'disjoint');
  assert.equal(a.train.length + a.val.length, 200);
  const meanVal = Array.from({ length: 20 }, (_, seed) => splitFiles(all, 0.1, seed).val.length).reduce((x, y) => x + y) / 20;
  assert.ok(meanVal > 17 && meanVal < 23, `on average ${meanVal} of 200 files held out at 10%`);
  const other = splitFiles(all, 0.1, 7);
  assert.notDeepEqual(other.val, a.val, 'the seed matters');
  const grown = splitFiles([...all, ...fakeFiles(260).slice(200)], 0.1, 1337);
  assert.ok(a.val.every((f) => grown.val.some((g) => g.relPath === f.relPath)), 'a new file does not move old ones');
});

test('split fills both sides from 2 files on; a single file trains', () => {
  for (const n of [2, 3, 5]) {
    for (const fraction of [0, 0.01, 0.5, 0.99]) {
      const { train, val } = splitFiles(fakeFiles(n), fraction, 42);
      assert.ok(train.length >= 1 && val.length >= 1, `n=${n} fraction=${fraction}: ${train.length}/${val.length}`);
    }
  }
  assert.deepEqual(splitFiles(fakeFiles(1), 0.5, 42).val, []);
  assert.deepEqual(splitFiles([], 0.1, 42), { train: [], val: [] });
  assert.throws(() => splitFiles(fakeFiles(3), 1, 42), /valFraction must be in \[0, 1\), got 1/);
});

test('token file: each document exactly once, after <|endoftext|>, uint16 on disk', async () => {
  const file = path.join(dir, 'plain.bin');
  const progress: number[] = [];
  const result = await tokenizeFiles(files, tokenizer, file, { onProgress: (p) => progress.push(p.files) });
  const expected = texts.map((t) => tokenizer.encode(t));
  assert.deepEqual(result, { tokens: expected.reduce((n, ids) => n + ids.length + 1, 0), files: files.length });
  assert.equal(statSync(file).size, 16 + 2 * result.tokens);
  assert.equal(progress[progress.length - 1], files.length);
  const stream = openTokenStream(file);
  assert.equal(stream.length, result.tokens);
  const docs = documents(stream.read(0, stream.length), tokenizer.special.endOfText);
  assert.deepEqual(docs, expected);
  assert.deepEqual(docs.map((ids) => tokenizer.decode(ids)), texts);
});

test('FIM documents read <|fim_prefix|> p <|fim_suffix|> s <|fim_middle|> m, and reassemble', async () => {
  const s = tokenizer.special;
  const all = path.join(dir, 'fim.bin');
  await tokenizeFiles(files, tokenizer, all, { fimRate: 1, seed: 3 });
  const docs = documents(openTokenStream(all).read(0, openTokenStream(all).length), s.endOfText);
  assert.equal(docs.length, files.length);
  const middles: string[] = [];
  docs.forEach((ids, i) => {
    assert.equal(ids[0], s.fimPrefix);
    const suffixAt = ids.indexOf(s.fimSuffix);
    const middleAt = ids.indexOf(s.fimMiddle);
    assert.ok(suffixAt > 0 && middleAt > suffixAt, `sentinels in order in document ${i}`);
    assert.equal([s.fimPrefix, s.fimSuffix, s.fimMiddle].map((id) => ids.filter((x) => x === id).length).join(), '1,1,1');
    const prefix = tokenizer.decode(ids.slice(1, suffixAt));
    const suffix = tokenizer.decode(ids.slice(suffixAt + 1, middleAt));
    const middle = tokenizer.decode(ids.slice(middleAt + 1));
    assert.equal(prefix + middle + suffix, texts[i]);
    middles.push(middle);
  });
  assert.ok(new Set(middles.map((m) => m.length)).size > files.length / 2, 'cut points vary by document');

  // Same seed, same bytes; half the documents at fimRate 0.5.
  const again = path.join(dir, 'fim-again.bin');
  await tokenizeFiles(files, tokenizer, again, { fimRate: 1, seed: 3 });
  assert.deepEqual(await fs.readFile(again), await fs.readFile(all));
  const half = path.join(dir, 'fim-half.bin');
  await tokenizeFiles(files, tokenizer, half, { fimRate: 0.5, seed: 3 });
  const halfDocs = documents(openTokenStream(half).read(0, openTokenStream(half).length), s.endOfText);
  const rewritten = halfDocs.filter((ids) => ids[0] === s.fimPrefix).length;
  assert.ok(rewritten > 0 && rewritten < files.length, `${rewritten} of ${files.length} rewritten`);
});

test('vocabularies above 65536 ids are stored as uint32', async () => {
  const wide = await CodeTokenizer.train(texts.slice(0, 3), 70_000);
  const file = path.join(dir, 'wide.bin');
  const result = await tokenizeFiles(files.slice(0, 3), wide, file);
  assert.equal(statSync(file).size, 16 + 4 * result.tokens);
  const ids = openTokenStream(file).read(0, result.tokens);
  assert.equal(ids[0], 69_993, '<|endoftext|> is id 69993, beyond uint16');
  assert.deepEqual(documents(ids, 69_993)[1], wide.encode(texts[1]));
});

test('cancelling leaves no token file behind', async () => {
  const file = path.join(dir, 'cancelled.bin');
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(tokenizeFiles(files, tokenizer, file, { signal: controller.signal }), { name: 'AbortError', message: 'tokenizing cancelled' });
  assert.equal(existsSync(file), false);
  const midway = new AbortController(); // cancelled after tokens were written to the temporary file
  await assert.rejects(tokenizeFiles(files, tokenizer, file, { signal: midway.signal, onProgress: () => midway.abort() }), /tokenizing cancelled/);
  assert.equal(existsSync(file), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('cancelled')), []);
});

test('sampler: a pure function of (seed, step, micro); y is x shifted by one', () => {
  const T = 16;
  const stream = countingStream(1000);
  const sampler = new BatchSampler(stream, T, 1337);
  const batch = sampler.batch(5, 1, 4);
  assert.equal(batch.x.length, 4 * T);
  assert.deepEqual(new BatchSampler(stream, T, 1337).batch(5, 1, 4), batch, 'a resumed run sees the same data');
  assert.notDeepEqual(sampler.batch(6, 1, 4).x, batch.x);
  assert.notDeepEqual(sampler.batch(5, 0, 4).x, batch.x);
  assert.notDeepEqual(new BatchSampler(stream, T, 1).batch(5, 1, 4).x, batch.x);
  const starts = new Set<number>();
  for (let step = 0; step < 50; step++) {
    const { x, y } = sampler.batch(step, 0, 8);
    for (let row = 0; row < 8; row++) {
      const start = x[row * T];
      starts.add(start);
      assert.ok(start >= 0 && start + T < 1000, `window ${start} fits`);
      for (let t = 0; t < T; t++) {
        assert.equal(x[row * T + t], start + t, 'x is a contiguous window');
        assert.equal(y[row * T + t], start + t + 1, 'y is x shifted by one');
      }
    }
  }
  assert.ok(starts.size > 300, `${starts.size} distinct windows in 400 draws`);
});

test('sampler on a real token file: targets follow inputs in the stream', async () => {
  const file = path.join(dir, 'real.bin');
  await tokenizeFiles(files, tokenizer, file);
  const stream = openTokenStream(file);
  const { x, y, batchSize, blockSize } = new BatchSampler(stream, 64, 9).batch(0, 0, 8);
  assert.equal(batchSize * blockSize, x.length);
  for (let row = 0; row < batchSize; row++) {
    assert.deepEqual(x.subarray(row * 64 + 1, (row + 1) * 64), y.subarray(row * 64, (row + 1) * 64 - 1));
  }
  assert.ok(x.every((id) => id >= 0 && id < 512));
});

test('fixedBatches: evenly spaced windows from the start to the end of the stream, always the same', () => {
  const sampler = new BatchSampler(countingStream(1000), 16, 5);
  const batches = sampler.fixedBatches(3, 4);
  assert.equal(batches.length, 3);
  const starts = batches.flatMap((b) => Array.from({ length: 4 }, (_, row) => b.x[row * 16]));
  assert.equal(starts[0], 0);
  assert.equal(starts[11], 1000 - 17, 'the last window ends at the last token');
  const gaps = starts.slice(1).map((s, i) => s - starts[i]);
  assert.ok(Math.max(...gaps) - Math.min(...gaps) <= 1, `even gaps ${gaps}`);
  assert.deepEqual(new BatchSampler(countingStream(1000), 16, 99).fixedBatches(3, 4), batches, 'independent of the seed');
  assert.equal(new BatchSampler(countingStream(17), 16, 5).fixedBatches(2, 2)[1].x[0], 0, 'one window fits: repeated');
});

test('clear errors: empty or short streams, bad sizes, corrupt files', async () => {
  assert.throws(() => new BatchSampler(countingStream(0), 16, 1), /empty token stream/);
  assert.throws(() => new BatchSampler(countingStream(16), 16, 1), /16 tokens, fewer than one window of blockSize \+ 1 = 17/);
  const sampler = new BatchSampler(countingStream(100), 16, 1);
  assert.throws(() => sampler.batch(0, 0, 0), /batchSize must be a positive integer, got 0/);
  assert.throws(() => sampler.batch(-1, 0, 2), /step must be a non-negative integer, got -1/);
  assert.throws(() => sampler.fixedBatches(0, 2), /count must be a positive integer, got 0/);

  const empty = path.join(dir, 'empty.bin');
  assert.deepEqual(await tokenizeFiles([], tokenizer, empty), { tokens: 0, files: 0 });
  assert.equal(openTokenStream(empty).length, 0, 'an empty stream opens; samplers refuse it');
  assert.throws(() => openTokenStream(path.join(dir, 'missing.bin')), /cannot read token file .*missing\.bin \(ENOENT\)/);
  const garbage = path.join(dir, 'garbage.bin');
  writeFileSync(garbage, 'this is not a token file at all');
  assert.throws(() => openTokenStream(garbage), /corrupt token file .*garbage\.bin: bad magic/);
  const stream = openTokenStream(path.join(dir, 'plain.bin'));
  assert.throws(() => stream.read(stream.length - 2, 5), /outside the stream/);
});
