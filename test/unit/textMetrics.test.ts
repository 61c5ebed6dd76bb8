// Summary metrics against hand-computed values and against figures printed by CodeXGLUE's
// evaluator/bleu.py (Python 3) for the same strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bleuTokens,
  corpusSmoothedBleu,
  lcsLength,
  rougeL,
  scoreSummaries,
  smoothedBleu,
  smoothedBleuDetail,
  splitPuncts,
} from '../../models/src/summaries/textMetrics';

function near(actual: number, expected: number, tolerance = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `expected ${expected}, got ${actual}`);
}

test('splitPuncts and NIST normalisation tokenise as bleu.py does', () => {
  assert.equal(splitPuncts('Returns the `sum`, e.g. a+b'), 'Returns the ` sum ` , e . g . a + b');
  // Lower-cased, and '_' split out of words by the NIST punctuation rule.
  assert.deepEqual(bleuTokens('  Gets user_Name.  '), ['gets', 'user', '_', 'name', '.']);
  // Unicode letters are word characters (Python 3's \w).
  assert.deepEqual(bleuTokens('Créer à'), ['créer', 'à']);
  assert.deepEqual(bleuTokens(''), []);
});

test('smoothed BLEU-4 matches a hand computation with no brevity penalty', () => {
  // p1 = 5/6, p2 = (3+1)/(5+1), p3 = (1+1)/(4+1), p4 = (0+1)/(3+1); equal lengths → BP = 1.
  const expected = Math.pow((5 / 6) * (4 / 6) * (2 / 5) * (1 / 4), 1 / 4) * 100;
  near(smoothedBleu('the cat sat on the mat', 'the cat is on the mat'), expected);
  near(expected, 48.54917717073234, 1e-9);
  const detail = smoothedBleuDetail('the cat sat on the mat', 'the cat is on the mat');
  assert.deepEqual(detail.precisions, [5 / 6, 3 / 5, 1 / 4, 0]);
  assert.equal(detail.brevityPenalty, 1);
});

test('smoothed BLEU-4 brevity penalty uses (refLen + 1) / (testLen + 1)', () => {
  // All smoothed precisions are 1; log BP = 1 - 7/3.
  near(smoothedBleu('the cat', 'the cat sat on the mat'), Math.exp(1 - 7 / 3) * 100);
  // An empty prediction is not 0: every smoothed term is 1 and BP = exp(-refLen), as in bleu.py.
  near(smoothedBleu('', 'Returns the sum of two numbers.'), Math.exp(-7) * 100);
  assert.equal(smoothedBleu('Same words here', 'same words  here'), 100);
});

test('smoothed BLEU-4 agrees with CodeXGLUE bleu.py on tricky strings', () => {
  // Values printed by the Python reference for the same (prediction, gold) pairs.
  const cases: [string, string, number][] = [
    ['Returns the sum of a and b', 'Returns the sum of two numbers.', 50.552015390088656],
    ['Gets the user_name from the `config` object.', 'get user name from config', 14.991106946711685],
    ['Parse 1.5-2 items, e.g. x<y && z', 'parse 1.5 - 2 items e.g. x < y &amp;&amp; z', 64.43001898022604],
    ['Créer un fichier à partir de données', 'créer le fichier à partir des données', 37.79644730092273],
    ['__init__ the Foo_Bar', 'init foo bar', 16.036590969929357],
    ['a a a a a a', 'a a b', 27.301208627090666],
  ];
  for (const [prediction, gold, expected] of cases) near(smoothedBleu(prediction, gold), expected, 1e-9);
});

test('corpus BLEU is the mean of sentence scores; several references take clipped maxima', () => {
  const predictions = ['the cat sat on the mat', 'the cat'];
  const references = ['the cat is on the mat', 'the cat sat on the mat'];
  const mean = (smoothedBleu(predictions[0], references[0]) + smoothedBleu(predictions[1], references[1])) / 2;
  near(corpusSmoothedBleu(predictions, references), mean);
  assert.equal(corpusSmoothedBleu([], []), 0);
  assert.throws(() => corpusSmoothedBleu(['a'], []), /1 predictions but 0 references/);
  // With two references the shortest sets the length, and a perfect match with one of them is 100.
  assert.equal(smoothedBleu('the cat sat', ['a dog ran off', 'the cat sat']), 100);
});

test('ROUGE-L is the LCS F-measure with beta 1.2 by default', () => {
  assert.equal(lcsLength(['a', 'b', 'c', 'd'], ['a', 'c', 'd', 'b']), 3);
  assert.equal(lcsLength([], ['a']), 0);
  // LCS = "the cat on the mat" = 5 of 6 on both sides: P = R = F = 5/6.
  near(rougeL('the cat sat on the mat', 'the cat is on the mat'), (5 / 6) * 100);
  // LCS 2, P = 1, R = 1/3.
  const beta2 = 1.2 * 1.2;
  near(rougeL('the cat', 'the cat sat on the mat'), (((1 + beta2) * (1 / 3)) / (1 / 3 + beta2)) * 100);
  near(rougeL('the cat', 'the cat sat on the mat', { beta: 1 }), 50);
  assert.equal(rougeL('', 'anything'), 0);
  assert.equal(rougeL('totally different', 'nothing shared'), 0);
  assert.throws(() => rougeL('a', 'a', { beta: 0 }), /beta must be > 0/);
});

test('scoreSummaries reports count, BLEU, ROUGE-L and exact match on 0–100', () => {
  const scores = scoreSummaries(['Returns the sum.', 'the cat'], ['returns the  sum .', 'the cat sat on the mat']);
  assert.equal(scores.count, 2);
  assert.equal(scores.exactMatch, 50);
  near(scores.bleu, (100 + Math.exp(1 - 7 / 3) * 100) / 2);
  near(scores.rougeL, (100 + rougeL('the cat', 'the cat sat on the mat')) / 2);
  assert.deepEqual(scoreSummaries([], []), { count: 0, bleu: 0, rougeL: 0, exactMatch: 0 });
});
