// Metrics against hand-computed values and the published fuzzywuzzy examples.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  bitsPerByte,
  crossEntropy,
  editSimilarity,
  exactMatch,
  histogram,
  inTopK,
  indelDistance,
  NextTokenTally,
  percentile,
  perplexity,
  rankOf,
  summarizeLatency,
} from '../../models/src/eval/metrics';
import { topK } from '../../models/src/infer/generate';

const close = (actual: number, expected: number, tolerance = 1e-9) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);

test('editSimilarity is 2·LCS/(|a|+|b|) on code points, like fuzz.ratio', () => {
  close(editSimilarity('abc', 'abc'), 100);
  close(editSimilarity('', ''), 100);
  close(editSimilarity('abc', ''), 0);
  close(editSimilarity('abc', 'xyz'), 0);
  // A transposition: unit-cost Levenshtein would say 0% similar; fuzz.ratio says 50.
  close(editSimilarity('ab', 'ba'), 50);
  // kitten/sitting: LCS "ittn" = 4 → 200·4/13.
  close(editSimilarity('kitten', 'sitting'), 800 / 13);
  // The fuzzywuzzy README's examples (fuzz.ratio rounds to an integer; we do not).
  assert.equal(Math.round(editSimilarity('this is a test', 'this is a test!')), 97);
  assert.equal(Math.round(editSimilarity('fuzzy wuzzy was a bear', 'wuzzy fuzzy was a bear')), 91);
  // Surrounding whitespace is trimmed (CodeXGLUE strips the prediction).
  close(editSimilarity('  foo(x);\n', 'foo(x);'), 100);
  // Astral characters count once, as in Python.
  close(editSimilarity('a😀', 'a'), 200 / 3);
});

test('indelDistance counts insertions and deletions only', () => {
  assert.equal(indelDistance('ab', 'ba'), 2);
  assert.equal(indelDistance('kitten', 'sitting'), 5); // 6 + 7 - 2·4
  assert.equal(indelDistance('', 'abc'), 3);
});

test('exactMatch compares whitespace-separated pieces, as CodeXGLUE does', () => {
  assert.equal(exactMatch('  return x;  ', 'return   x;'), true);
  assert.equal(exactMatch('return x;', 'return x'), false);
  assert.equal(exactMatch('foo(a, b)', 'foo(a,b)'), false); // whitespace that splits a piece counts
  assert.equal(exactMatch('', '   '), true);
  assert.equal(exactMatch('x', ''), false);
});

test('crossEntropy and perplexity match hand computation', () => {
  close(crossEntropy([0, 0, 0, 0], 2), Math.log(4));
  close(crossEntropy([Math.log(1), Math.log(3)], 1), -Math.log(0.75));
  // Log-probabilities give the same answer as the logits they came from.
  close(crossEntropy([Math.log(0.25), Math.log(0.75)], 0), -Math.log(0.25));
  // A row inside a larger buffer.
  close(crossEntropy([9, 9, 0, 1000, 9], 0, 2, 2), 1000);
  close(perplexity(Math.log(10)), 10);
  close(perplexity(0), 1);
  assert.throws(() => crossEntropy([0, 0], 2), /target 2 is outside the vocabulary \[0, 2\)/);
  assert.throws(() => perplexity(NaN), /must be a number >= 0/);
});

test('topK, rankOf and inTopK agree, ties to the lower id', () => {
  const scores = [0.1, 0.5, 0.5, 0.9, -1];
  assert.deepEqual(topK(scores, 3), [3, 1, 2]);
  assert.deepEqual(topK(scores, 10), [3, 1, 2, 0, 4]);
  assert.equal(rankOf(scores, 3), 0);
  assert.equal(rankOf(scores, 1), 1);
  assert.equal(rankOf(scores, 2), 2);
  assert.equal(rankOf(scores, 4), 4);
  for (let k = 1; k <= 5; k++) {
    for (let id = 0; id < 5; id++) assert.equal(inTopK(scores, id, k), topK(scores, k).includes(id));
  }
});

test('NextTokenTally averages loss and counts top-1 and top-5 hits', () => {
  const tally = new NextTokenTally();
  const scores = [5, 4, 3, 2, 1, 0, -1];
  tally.add(scores, 0); // rank 0
  tally.add(scores, 4); // rank 4
  tally.add(scores, 6); // rank 6
  const s = tally.summary();
  assert.equal(s.tokens, 3);
  const expected = (crossEntropy(scores, 0) + crossEntropy(scores, 4) + crossEntropy(scores, 6)) / 3;
  close(s.loss!, expected);
  close(s.perplexity!, Math.exp(expected));
  close(s.top1!, 1 / 3);
  close(s.top5!, 2 / 3);
  assert.deepEqual(new NextTokenTally().summary(), { tokens: 0, loss: null, perplexity: null, top1: null, top5: null, bytes: 0, bitsPerByte: null });
  assert.equal(s.bitsPerByte, null, 'no byte lengths given: no bits per byte');
});

test('bits per byte is total nats / ln 2 / bytes of the text the tokens encode', () => {
  // 8 tokens at ln 2 nats each is 8 bits; over 4 bytes of text that is 2 bits per byte.
  close(bitsPerByte(8 * Math.LN2, 4), 2);
  // The same loss per token over a tokenizer with longer tokens is fewer bits per byte: loss·tokens/(ln 2·bytes).
  close(bitsPerByte(3.2 * 100, 350), (3.2 * 100) / (Math.LN2 * 350));
  assert.throws(() => bitsPerByte(1, 0), /bytes must be a whole number >= 1, got 0/);
  assert.throws(() => bitsPerByte(NaN, 3), /finite number >= 0/);

  // The tally: token t stands for t bytes (0 for a special token, which still costs its nats).
  const tally = new NextTokenTally((id) => id);
  const scores = [0, 0, 0, 0]; // uniform over 4: ln 4 nats = 2 bits per prediction
  for (const target of [1, 2, 3, 0]) tally.add(scores, target);
  const s = tally.summary();
  assert.equal(s.bytes, 6);
  close(s.bitsPerByte!, (4 * 2) / 6);
  close(s.bitsPerByte!, (s.loss! * s.tokens) / (Math.LN2 * s.bytes));
});

test('percentile interpolates linearly between closest ranks', () => {
  close(percentile([4, 1, 3, 2], 50), 2.5);
  close(percentile([1, 2, 3, 4], 95), 3.85);
  close(percentile([1, 2, 3, 4], 0), 1);
  close(percentile([1, 2, 3, 4], 100), 4);
  close(percentile([7], 95), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.throws(() => percentile([1], 101), /p must be in \[0, 100\], got 101/);
});

test('histogram bins values between ascending edges, with under- and overflow', () => {
  const h = histogram([0.5, 1, 1.5, 2, 9, 10, 11], [1, 2, 10]);
  assert.deepEqual(h.counts, [1, 2, 2, 2]);
  assert.deepEqual(h.edges, [1, 2, 10]);
  assert.throws(() => histogram([1], [2, 2]), /strictly ascending/);
  const latency = summarizeLatency([10, 20, 30, 40]);
  assert.equal(latency.count, 4);
  close(latency.meanMs!, 25);
  close(latency.p50Ms!, 25);
  close(latency.p95Ms!, 38.5);
  assert.equal(latency.maxMs, 40);
  assert.equal(latency.histogram.counts.reduce((a, b) => a + b, 0), 4);
  assert.equal(summarizeLatency([]).p50Ms, null);
});
