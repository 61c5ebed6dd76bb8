// The n-gram baseline: agreement with a direct (slow, map-based) modified Kneser-Ney, normalisation,
// that it learns, and line completion through generate.ts (stop at the newline, token healing).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { kneserNeyDiscounts, NGramModel } from '../../models/src/infer/ngram';
import { TestCodec } from './testCodec';

/** Deterministic PRNG (mulberry32) so every corpus here is the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}


/** Modified Kneser-Ney written directly from its definition with string-keyed maps; no n-gram spans two documents. */
function referenceProb(documents: number[][], order: number, vocabSize: number) {
  const raw = new Map<string, number>();
  const leftContexts = new Map<string, Set<number>>();
  for (const tokens of documents) {
    for (let i = 0; i < tokens.length; i++) {
      for (let k = 1; k <= order && i - k + 1 >= 0; k++) {
        const key = tokens.slice(i - k + 1, i + 1).join(',');
        raw.set(key, (raw.get(key) ?? 0) + 1);
        if (i - k >= 0) {
          if (!leftContexts.has(key)) leftContexts.set(key, new Set());
          leftContexts.get(key)!.add(tokens[i - k]);
        }
      }
    }
  }
  const value = (key: string) => (key.split(',').length === order ? raw.get(key) ?? 0 : leftContexts.get(key)?.size ?? 0);
  const countOfCounts = Array.from({ length: order + 1 }, () => [0, 0, 0, 0, 0]);
  for (const key of raw.keys()) {
    const v = value(key);
    if (v >= 1 && v <= 4) countOfCounts[key.split(',').length][v]++;
  }
  const discounts = countOfCounts.map(([, a, b, c, d]) => kneserNeyDiscounts(a, b, c, d));
  const prob = (context: number[], w: number): number => {
    const lower = context.length === 0 ? 1 / vocabSize : prob(context.slice(1), w);
    const k = context.length + 1;
    const [d1, d2, d3] = discounts[k];
    const discount = (v: number) => (v === 1 ? d1 : v === 2 ? d2 : d3);
    let total = 0;
    let lowerMass = 0;
    for (const key of raw.keys()) {
      const parts = key.split(',').map(Number);
      if (parts.length !== k || parts.slice(0, -1).join(',') !== context.join(',')) continue;
      const v = value(key);
      if (v === 0) continue;
      total += v;
      lowerMass += discount(v);
    }
    if (total === 0) return lower;
    const v = value([...context, w].join(','));
    return (v > 0 ? v - discount(v) : 0) / total + (lowerMass / total) * lower;
  };
  return (context: number[], w: number) => prob(context.slice(Math.max(0, context.length - (order - 1))), w);
}

test('probabilities equal a direct implementation of modified Kneser-Ney', () => {
  const rand = random(7);
  // Skewed tokens over a small vocabulary so that counts of 1, 2, 3 and 4+ all occur.
  const tokens = Array.from({ length: 1500 }, () => Math.floor(rand() ** 2 * 12));
  for (const order of [1, 2, 3, 4]) {
    const model = NGramModel.train(Int32Array.from(tokens), { vocabSize: 14, order });
    const reference = referenceProb([tokens], order, 14);
    for (let trial = 0; trial < 40; trial++) {
      const at = 3 + Math.floor(rand() * (tokens.length - 3));
      const context = trial % 5 === 0 ? [13, 12, tokens[at - 1]] : tokens.slice(at - 3, at); // some unseen contexts
      for (const w of [tokens[at], 13, Math.floor(rand() * 14)]) {
        const expected = reference(context, w);
        const actual = model.prob(context, w);
        assert.ok(Math.abs(actual - expected) < 1e-12, `order ${order}, context ${context}, next ${w}: ${actual} vs ${expected}`);
      }
    }
  }
});

test('the next-token distribution sums to 1 for seen, unseen and empty contexts', () => {
  const rand = random(3);
  const tokens = Int32Array.from({ length: 3000 }, () => Math.floor(rand() * rand() * 200));
  const model = NGramModel.train(tokens, { vocabSize: 256 });
  const contexts = [[], [tokens[10]], Array.from(tokens.subarray(100, 103)), Array.from(tokens.subarray(0, 50)), [255, 254, 253], [5000, -1]];
  for (const context of contexts) {
    const dist = model.distribution(context);
    const sum = dist.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `context ${context.slice(-3)}: sum ${sum}`);
    assert.ok(dist.every((p) => p > 0), 'every token keeps some probability');
    for (const w of [0, 1, 17, 255]) assert.ok(Math.abs(dist[w] - model.prob(context, w)) < 1e-15);
  }
  const logProbs = model.logProbs(Array.from(tokens.subarray(100, 103)));
  assert.ok(Math.abs(Math.exp(logProbs[tokens[103]]) - model.prob(Array.from(tokens.subarray(100, 103)), tokens[103])) < 1e-6);
});

/** Code-like synthetic text: a few line templates with random names and numbers. */
function syntheticCode(seed: number, lines: number): string {
  const rand = random(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const names = ['count', 'total', 'index', 'value', 'result', 'item'];
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const a = pick(names);
    const b = pick(names);
    out.push(
      pick([
        `  const ${a} = ${b} + ${Math.floor(rand() * 10)};`,
        `  if (${a} > ${b}) return ${a};`,
        `  for (let i = 0; i < ${a}.length; i++) ${b}.push(${a}[i]);`,
        `  console.log(${a});`,
      ]),
    );
  }
  return out.join('\n') + '\n';
}

function heldOutCrossEntropy(model: NGramModel, tokens: number[]): number {
  let sum = 0;
  for (let i = 1; i < tokens.length; i++) sum -= Math.log(model.prob(tokens.slice(Math.max(0, i - 3), i), tokens[i]));
  return sum / (tokens.length - 1);
}

test('training from a token stream read in small chunks counts the n-grams that span them', () => {
  const rand = random(9);
  const tokens = Int32Array.from({ length: 5000 }, () => Math.floor(rand() * rand() * 40));
  const whole = NGramModel.train(tokens, { vocabSize: 40 });
  const reads: number[] = [];
  const stream = { length: tokens.length, read: (start: number, count: number) => (reads.push(count), tokens.slice(start, start + count)) };
  const chunked = NGramModel.train(stream, { vocabSize: 40, chunkTokens: 7 });
  assert.equal(reads.length, Math.ceil(5000 / 7));
  assert.equal(chunked.nodeCount, whole.nodeCount);
  assert.deepEqual(chunked.discounts, whole.discounts);
  for (let i = 3; i < 400; i++) {
    const context = Array.from(tokens.subarray(i - 3, i));
    assert.deepEqual(chunked.distribution(context), whole.distribution(context));
  }
});

test('the 4-gram learns: it beats a unigram on held-out text and reproduces a memorised sequence', () => {
  const codec = new TestCodec([]);
  const train = Int32Array.from(codec.encode(syntheticCode(1, 400)));
  const heldOut = codec.encode(syntheticCode(2, 60));
  const fourGram = NGramModel.train(train, { vocabSize: codec.vocabSize, order: 4 });
  const unigram = NGramModel.train(train, { vocabSize: codec.vocabSize, order: 1 });
  const ce4 = heldOutCrossEntropy(fourGram, heldOut);
  const ce1 = heldOutCrossEntropy(unigram, heldOut);
  // Characters of this text carry ~3 nats each alone; with 3 characters of context most are certain.
  assert.ok(ce1 > 2.5, `unigram cross-entropy ${ce1}`);
  assert.ok(ce4 < 0.8, `4-gram cross-entropy ${ce4}`);

  // A random sequence over 1000 ids seen twice: every 3-token context continues one way only.
  const rand = random(11);
  const sequence = Array.from({ length: 400 }, () => Math.floor(rand() * 1000));
  const memorised = NGramModel.train(Int32Array.from([...sequence, ...sequence]), { vocabSize: 1000 });
  for (let i = 3; i < sequence.length; i++) {
    const [best] = memorised.topK(sequence.slice(i - 3, i), 1);
    assert.equal(best.id, sequence[i], `position ${i}`);
    assert.ok(best.prob > 0.5, `position ${i}: p = ${best.prob}`);
  }
});

test('complete() finishes the line through generate.ts, healing a prompt cut inside a token', async () => {
  const codec = new TestCodec(['return', 'result', 're', ' =', '  ']);
  const text = '  const result = compute(input);\n  return result;\n'.repeat(20);
  const model = NGramModel.train(Int32Array.from(codec.encode(text)), { vocabSize: codec.vocabSize });

  const fromLineStart = await model.complete(codec, 'x;\n  const result = compute(input);\n  ', '\n');
  assert.equal(fromLineStart.text, 'return result;');
  assert.equal(fromLineStart.stopReason, 'endOfLine');

  // "  return re" ends in the token "re", which training never saw: there "re" was always inside
  // "return" or "result". Healing takes " re" back and asks for tokens that spell it first.
  const prefix = 'x;\n  const result = compute(input);\n  return re';
  const prompt = codec.encode(prefix);
  assert.equal(prompt[prompt.length - 1], codec.encode('re')[0]);
  assert.equal((await model.complete(codec, prefix, '\n')).text, 'sult;');
  assert.notEqual((await model.complete(codec, prefix, '\n', { heal: false })).text, 'sult;');

  const limited = await model.complete(codec, 'x;\n  const result = ', '', { maxTokens: 3 });
  assert.deepEqual([limited.tokens, limited.stopReason], [3, 'budget']);
});

test('nextTokenLogits gives log-probabilities of the last order-1 tokens', () => {
  const rand = random(5);
  const tokens = Int32Array.from({ length: 2000 }, () => Math.floor(rand() * 30));
  const model = NGramModel.train(tokens, { vocabSize: 32 });
  const next = model.nextTokenLogits();
  const context = Array.from(tokens.subarray(0, 40));
  const logits = next(context) as Float32Array;
  assert.equal(logits.length, 32);
  for (const w of [0, 7, 31]) assert.ok(Math.abs(logits[w] - Math.log(model.prob(context.slice(-3), w))) < 1e-6);
});

test('bad input gets clear errors', async () => {
  assert.throws(() => NGramModel.train(new Int32Array(0), { vocabSize: 10 }), /no tokens to train on/);
  assert.throws(() => NGramModel.train(Int32Array.of(1, 2, 12), { vocabSize: 10 }), /token 12 at position 2 is outside the vocabulary \[0, 10\)/);
  assert.throws(() => NGramModel.train(Int32Array.of(1), { vocabSize: 10, order: 0 }), /order must be an integer in \[1, 12\], got 0/);
  const model = NGramModel.train(Int32Array.of(1, 2, 3), { vocabSize: 10 });
  assert.throws(() => model.prob([1], 10), /token 10 is outside the vocabulary/);
  await assert.rejects(model.complete(new TestCodec([]), 'a', ''), /tokenizer has 260 tokens but the n-gram was trained with 10/);
});

test('modified Kneser-Ney discounts follow Chen & Goodman, and fall back on thin counts', () => {
  const [d1, d2, d3] = kneserNeyDiscounts(100, 40, 20, 10);
  const y = 100 / 180;
  assert.ok(Math.abs(d1 - (1 - 2 * y * 0.4)) < 1e-12);
  assert.ok(Math.abs(d2 - (2 - 3 * y * 0.5)) < 1e-12);
  assert.ok(Math.abs(d3 - (3 - 4 * y * 0.5)) < 1e-12);
  assert.deepEqual(kneserNeyDiscounts(5, 0, 0, 0), [0.5, 0.5, 0.5]); // y = 1 is no discount estimate
  assert.deepEqual(kneserNeyDiscounts(4, 1, 0, 0), [4 / 6, 4 / 6, 4 / 6]); // D2 would be 2 - 3y·0 = 2 but D3 is undefined: one D = y
});

test('save and load: the same probabilities from ngram.bin; a damaged file is named in a clear error', async () => {
  const { promises: fs } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const draw = random(7);
  const tokens = Int32Array.from({ length: 3000 }, () => Math.floor(draw() * 20));
  const model = NGramModel.train(tokens, { vocabSize: 24, order: 3 });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-ngram-'));
  try {
    const file = path.join(dir, 'ngram.bin');
    await model.save(file);
    const loaded = await NGramModel.load(file);
    assert.equal(loaded.order, 3);
    assert.equal(loaded.trainedTokens, 3000);
    assert.equal(loaded.nodeCount, model.nodeCount);
    assert.deepEqual(loaded.discounts, model.discounts);
    for (const context of [[], [3], [3, 5], [19, 23], [1, 2, 3, 4]]) {
      assert.deepEqual(loaded.distribution(context), model.distribution(context));
    }
    const bytes = await fs.readFile(file);
    await fs.writeFile(file, bytes.subarray(0, bytes.length - 5));
    await assert.rejects(NGramModel.load(file), /corrupt n-gram .*ngram\.bin: \d+ bytes, the header promises \d+; hint/);
    bytes[0] = 0;
    await fs.writeFile(file, bytes);
    await assert.rejects(NGramModel.load(file), /bad magic/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/** The same counts, seen through what they predict: discounts, tokens, every distribution of `contexts` (to rounding: sums may run in another order). */
function assertSameCounts(actual: NGramModel, expected: NGramModel, contexts: number[][], what: string): void {
  assert.equal(actual.trainedTokens, expected.trainedTokens, `${what}: tokens`);
  assert.deepEqual(actual.discounts, expected.discounts, `${what}: discounts`);
  for (const context of contexts) {
    const [a, b] = [actual.distribution(context), expected.distribution(context)];
    for (let w = 0; w < a.length; w++) assert.ok(Math.abs(a[w] - b[w]) < 1e-14, `${what}: P(${w} | ${context}) = ${a[w]}, expected ${b[w]}`);
    assert.equal(actual.matchedContext(context), expected.matchedContext(context), `${what}: context matched after ${context}`);
  }
}

/** applyChanges() on a copy: the model as counted stays for the next comparison. */
function changed(bytes: Uint8Array, remove: number[][], add: number[][]): NGramModel {
  const model = NGramModel.fromBytes(bytes);
  model.applyChanges(remove, add);
  return model;
}

test('applyChanges: a document put in is counted as a direct implementation counts it; taken out again, the counts are as if never put in', () => {
  const rand = random(21);
  const draw = (n: number) => Array.from({ length: n }, () => Math.floor(rand() ** 2 * 12)); // skewed, so documents share n-grams
  const workspace = draw(1500);
  const [saved, other] = [draw(300), draw(200)];
  const contexts = [[], [3], [0, 1], [1, 0, 2], [13, 12, 11], ...Array.from({ length: 30 }, (_, i) => saved.slice(i * 7, i * 7 + 3)), ...Array.from({ length: 30 }, (_, i) => workspace.slice(i * 40, i * 40 + 3))];
  const reference = referenceProb([workspace, saved], 4, 14);
  // Counted here, a model knows how often each n-gram occurs at every order; read from ngram.bin it derives that.
  const fresh = { 'counted here': () => NGramModel.train(Int32Array.from(workspace), { vocabSize: 14, order: 4 }), 'read from ngram.bin': () => NGramModel.fromBytes(NGramModel.train(Int32Array.from(workspace), { vocabSize: 14, order: 4 }).toBytes()) };
  for (const [what, make] of Object.entries(fresh)) {
    const model = make();
    const bytes = model.toBytes();
    model.applyChanges([], [saved]);
    assert.equal(model.trainedTokens, 1800);
    for (const context of contexts.slice(0, 12)) {
      for (const w of [0, 5, 13]) {
        const expected = reference(context, w);
        assert.ok(Math.abs(model.prob(context, w) - expected) < 1e-12, `${what}: P(${w} | ${context}) = ${model.prob(context, w)}, reference ${expected}`);
      }
    }
    model.applyChanges([saved], []);
    assertSameCounts(model, NGramModel.fromBytes(bytes), contexts, `${what}: put in, taken out`);
    // A saved file replaced by its next version: the old text out, the new one in, in one change.
    assertSameCounts(changed(bytes, [], [saved, other]), changed(bytes, [], [other, saved]), contexts, `${what}: documents in either order`);
    const replaced = changed(bytes, [], [saved]);
    replaced.applyChanges([saved], [other]);
    assertSameCounts(replaced, changed(bytes, [], [other]), contexts, `${what}: replaced`);
    const twice = make();
    twice.applyChanges([], [other, saved]);
    twice.applyChanges([other], []);
    assertSameCounts(twice, changed(bytes, [], [saved]), contexts, `${what}: two in, one out`);
    // Saved back: the n-grams seen no more are written with count 0 and read back as absent.
    assertSameCounts(NGramModel.fromBytes(replaced.toBytes()), replaced, contexts, `${what}: saved and loaded after changes`);
  }
});

test('applyChanges: taking out a document never counted leaves every count at zero or more; seenShare tells the two apart', () => {
  const rand = random(22);
  const workspace = Int32Array.from({ length: 4000 }, () => Math.floor(rand() * rand() * 40));
  const model = NGramModel.train(workspace, { vocabSize: 40, order: 4 });
  const bytes = model.toBytes();
  const stranger = Array.from({ length: 500 }, () => Math.floor(rand() * 40));
  assert.equal(model.seenShare(workspace.subarray(1000, 1600)), 1, 'a counted stretch is seen whole');
  assert.ok(model.seenShare(stranger) < 0.6, `a text never counted: ${model.seenShare(stranger)} of its 4-grams seen`);
  const added = changed(bytes, [], [stranger]);
  assert.equal(added.seenShare(stranger), 1);
  assert.equal(added.trainedTokens, 4500);

  const taken = changed(bytes, [stranger], []);
  assert.equal(taken.trainedTokens, 3500);
  for (const context of [[], [1], [1, 2], [3, 2, 1], stranger.slice(10, 13)]) {
    const dist = taken.distribution(context);
    assert.ok(Math.abs(dist.reduce((a, b) => a + b, 0) - 1) < 1e-12, `sums to 1 after ${context}`);
    assert.ok(dist.every((p) => p > 0 && Number.isFinite(p)));
  }
  assert.throws(() => model.applyChanges([], [[1, 40]]), /token 40 at position 1 is outside the vocabulary \[0, 40\)/);
  assert.deepEqual(model.toBytes(), bytes, 'a refused change changes nothing');
});
