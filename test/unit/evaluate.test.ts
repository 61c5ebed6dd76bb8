// The evaluation suite end to end with scorers whose answers are known: the n-gram plugged in as
// "the model" (both columns must agree), a uniform scorer (loss = ln V) and an oracle completer
// (100% exact match); plus deterministic line sampling and the eval.json round trip.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { evaluateModel, lineTask, ngramSystem, sampleLines, windowStarts, type EvalDocument, type EvalSystem } from '../../models/src/eval/evaluate';
import { composeEvalReport, formatEvalTable, readEvalReport, writeEvalReport, type EvalReport } from '../../models/src/eval/report';
import { NGramModel } from '../../models/src/infer/ngram';
import { TestCodec } from './testCodec';


const codec = new TestCodec(['const ', 'return ', '    ', '();', 'value']);

/** Small code-like files, generated deterministically. */
function makeFile(index: number, lines: number): EvalDocument {
  const out = [`// file ${index}`, `function f${index}(value) {`];
  for (let i = 0; i < lines; i++) {
    out.push(i % 4 === 3 ? '' : `    const v${i % 5} = value + ${(index * 7 + i) % 10};`);
    if (i % 6 === 5) out.push(`    return v${i % 5}();`);
  }
  out.push('}', '');
  return { relPath: `src/f${index}.ts`, text: out.join('\n') };
}

function tokenSource(docs: EvalDocument[]) {
  const ids: number[] = [];
  for (const d of docs) ids.push(...codec.encode(d.text), codec.special.endOfText);
  const tokens = Int32Array.from(ids);
  return { tokens, stream: { length: tokens.length, read: (s: number, n: number) => tokens.subarray(s, s + n) } };
}

const trainDocs = Array.from({ length: 12 }, (_, i) => makeFile(i, 30));
const valDocs = Array.from({ length: 3 }, (_, i) => makeFile(100 + i, 20));
const train = tokenSource(trainDocs);
const val = tokenSource(valDocs);
const ngram = NGramModel.train(train.tokens, { vocabSize: codec.vocabSize });

test('line sampling is deterministic, order-independent, and picks non-blank lines with a cursor inside', () => {
  const a = sampleLines(valDocs, 15, 42);
  const b = sampleLines([...valDocs].reverse(), 15, 42);
  assert.deepEqual(a, b);
  assert.equal(a.samples.length, 15);
  const c = sampleLines(valDocs, 15, 43);
  assert.notDeepEqual(a.samples, c.samples);
  const keys = new Set(a.samples.map((s) => `${s.relPath}:${s.line}`));
  assert.equal(keys.size, 15, 'no line twice');
  for (const s of a.samples) {
    const doc = valDocs.find((d) => d.relPath === s.relPath)!;
    const lineText = doc.text.split('\n')[s.line];
    assert.ok(lineText.trim().length >= 2, `line ${s.line} "${lineText}"`);
    assert.ok(s.midColumn > s.indent && s.midColumn < s.end);
    const start = lineTask(doc, s, 'lineStart');
    assert.equal(start.target, lineText.trim());
    assert.equal(start.prefix + start.target + start.suffix, doc.text);
    const mid = lineTask(doc, s, 'midLine');
    assert.equal(mid.prefix + mid.target + mid.suffix, doc.text);
    assert.ok(mid.target.length > 0 && mid.target.length < start.target.length);
    const end = lineTask(doc, s, 'lineEnd');
    assert.equal(end.target, '');
    assert.equal(end.prefix, start.prefix + start.target);
    assert.equal(end.prefix + end.suffix, doc.text);
  }
  // Asking for more lines than exist returns them all.
  const all = sampleLines(valDocs, 10_000, 1);
  assert.equal(all.samples.length, all.candidates);
  assert.throws(() => sampleLines(valDocs, -1, 1), /lines must be a whole number >= 0, got -1/);
});

test('windowStarts spreads non-overlapping windows over the stream', () => {
  assert.deepEqual(windowStarts(100, 11, 30), [0, 45, 89]);
  assert.deepEqual(windowStarts(100, 11, 10_000), [0, 11, 22, 33, 45, 56, 67, 78, 89]);
  assert.deepEqual(windowStarts(10, 11, 30), []);
});

test('the n-gram plugged in as the model gives the baseline figures exactly; eval.json round trip', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wlm-eval-'));
  try {
    const asModel: EvalSystem = { ...ngramSystem(ngram, codec, { blockSize: 32 }), name: 'n-gram as model' };
    const progress: string[] = [];
    const report = await evaluateModel({
      model: asModel,
      ngram,
      tokenizer: codec,
      valTokens: val.stream,
      valFiles: valDocs,
      blockSize: 32,
      lines: 20,
      tokens: 256,
      seed: 7,
      onProgress: (p) => progress.push(`${p.phase}:${p.done}/${p.total}`),
    });
    const { latency: l1, name: n1, ...model } = report.model;
    const { latency: l2, name: n2, ...baseline } = report.baseline;
    assert.deepEqual(model, baseline);
    assert.equal(l1.count, 40);
    assert.equal(l2.count, 40);
    assert.equal(n1, 'n-gram as model');
    assert.equal(n2, '4-gram (modified Kneser-Ney)');
    assert.equal(report.data.windows, 8);
    assert.equal(report.model.nextToken.tokens, 256);
    assert.equal(report.model.lineStart.count, 20);
    assert.equal(report.model.midLine.count, 20);
    assert.ok(report.examples.every((e) => e.model === e.baseline));

    // The figures are those of a model that learned this regular code, not placeholders.
    const next = report.model.nextToken;
    assert.ok(next.loss! > 0 && next.loss! < 1.5, `loss ${next.loss}`);
    assert.ok(Math.abs(next.perplexity! - Math.exp(next.loss!)) < 1e-9);
    assert.ok(next.top1! > 0.5 && next.top1! <= next.top5!, `top1 ${next.top1}, top5 ${next.top5}`);
    assert.ok(report.model.lineStart.editSimilarity! > 50, `edit similarity ${report.model.lineStart.editSimilarity}`);

    assert.deepEqual(progress.slice(0, 2), ['nextToken:4/16', 'nextToken:8/16']);
    assert.equal(progress[progress.length - 1], 'lines:20/20');

    const composed = composeEvalReport(report);
    assert.equal(composed.kind, 'workspace-lm-eval');
    assert.equal(composed.summaries, undefined);
    await writeEvalReport(dir, composed);
    const written = JSON.parse(readFileSync(path.join(dir, 'eval.json'), 'utf8')) as EvalReport;
    assert.deepEqual(written, JSON.parse(JSON.stringify(composed)));
    assert.deepEqual(await readEvalReport(dir), written);
    // Bits per byte is in eval.json for both systems, beside the loss.
    assert.ok(written.model.nextToken.bitsPerByte! > 0 && written.model.nextToken.bytes > written.model.nextToken.tokens);
    assert.equal(written.baseline.nextToken.bitsPerByte, written.model.nextToken.bitsPerByte);

    const table = formatEvalTable(composed);
    assert.match(table, /^metric +\| +model \| baseline: 4-gram/m);
    assert.match(table, new RegExp(`perplexity +\\| +${next.perplexity!.toFixed(2)} \\| +${next.perplexity!.toFixed(2)}`));
    assert.match(table, new RegExp(`bits per byte +\\| +${next.bitsPerByte!.toFixed(4)} \\| +${next.bitsPerByte!.toFixed(4)}`));
    assert.match(table, /20 lines \(of \d+\) from 3 held-out files/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a uniform scorer scores ln V, and an oracle completer scores 100%', async () => {
  const vocab = codec.vocabSize;
  const uniform: EvalSystem = {
    name: 'uniform + oracle',
    score: (_windows, batchSize, blockSize) => new Float32Array(batchSize * blockSize * vocab), // all logits 0
    // The oracle finds the document around the cursor and returns the rest of its line.
    complete: async (prefix, suffix) => {
      const doc = valDocs.find((d) => d.text.startsWith(prefix) && d.text.endsWith(suffix))!;
      return doc.text.slice(prefix.length, doc.text.length - suffix.length);
    },
  };
  const report = await evaluateModel({ model: uniform, ngram, tokenizer: codec, valTokens: val.stream, valFiles: valDocs, blockSize: 16, lines: 10, tokens: 64 });
  const next = report.model.nextToken;
  assert.equal(next.tokens, 64);
  assert.ok(Math.abs(next.loss! - Math.log(vocab)) < 1e-6);
  assert.ok(Math.abs(next.perplexity! - vocab) < 1e-3);
  // Bits per byte: ln V nats for each of the 64 targets, over the bytes those targets spell out
  // (the windows evaluate.ts scores: windowStarts over the stream, blockSize targets each).
  let bytes = 0;
  for (const start of windowStarts(val.stream.length, 17, 64)) {
    for (const id of val.stream.read(start + 1, 16)) bytes += codec.tokenBytes(id).length;
  }
  assert.equal(next.bytes, bytes);
  assert.ok(bytes > 64, 'the codec has multi-byte tokens');
  assert.ok(Math.abs(next.bitsPerByte! - (64 * Math.log(vocab)) / (Math.LN2 * bytes)) < 1e-9);
  assert.ok(Math.abs(next.bitsPerByte! - (next.loss! * next.tokens) / (Math.LN2 * next.bytes)) < 1e-9);
  assert.deepEqual(report.model.lineStart, { count: 10, exactMatch: 1, editSimilarity: 100 });
  assert.deepEqual(report.model.midLine, { count: 10, exactMatch: 1, editSimilarity: 100 });
  // The baseline, scored on the same data, is far better than uniform.
  assert.ok(report.baseline.nextToken.loss! < next.loss! - 2);
});

test('no held-out data gives empty figures and an n/a table, not a crash', async () => {
  const empty = { length: 0, read: () => new Int32Array(0) };
  const report = await evaluateModel({ model: ngramSystem(ngram, codec, { blockSize: 16 }), ngram, tokenizer: codec, valTokens: empty, valFiles: [], blockSize: 16 });
  assert.deepEqual(report.model.nextToken, { tokens: 0, loss: null, perplexity: null, top1: null, top5: null, bytes: 0, bitsPerByte: null });
  assert.deepEqual(report.baseline.lineStart, { count: 0, exactMatch: null, editSimilarity: null });
  assert.equal(report.model.latency.p95Ms, null);
  assert.match(formatEvalTable(composeEvalReport(report)), /perplexity +\| +n\/a \| +n\/a/);
});

test('bad input gets clear errors', async () => {
  const base = { ngram, tokenizer: codec, valTokens: val.stream, valFiles: valDocs, blockSize: 16, lines: 1, tokens: 16 };
  const wrongShape: EvalSystem = { name: 'broken', score: () => new Float32Array(3), complete: async () => '' };
  await assert.rejects(evaluateModel({ ...base, model: wrongShape }), /broken returned 3 scores for 1×16 windows; expected 4240 \(batch × block × vocabulary 265\)/);
  const other = NGramModel.train(Int32Array.of(1, 2, 3), { vocabSize: 10 });
  await assert.rejects(evaluateModel({ ...base, ngram: other, model: wrongShape }), /n-gram was trained on 10 token ids but the tokenizer has 265/);
  await assert.rejects(evaluateModel({ ...base, blockSize: 0, model: wrongShape }), /blockSize must be a positive integer, got 0/);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(evaluateModel({ ...base, model: wrongShape, signal: controller.signal }), /cancelled/);
});
