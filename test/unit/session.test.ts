// The onnxruntime completion session on a tiny random model folder: export on open, provider
// choice, KV-cached decoding equal to recomputation, prefix reuse equal to a cold run, and clear
// errors for a broken or foreign model.onnx.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_TRAIN, type GPTConfig } from '../../models/src/model/config';
import { writeWeights, type ModelFolderConfig } from '../../models/src/model/checkpoint';
import { CodeTokenizer } from '../../models/src/data/tokenizer';
import { onnx } from 'onnx-proto';
import { buildOnnxModel, exportOnnx, onnxNames } from '../../models/src/model/onnx';
import { randomWeights } from './testWeights';
import { CompletionSession, InvalidModelError } from '../../models/src/infer/session';
import { buildPrompt, generate, MID_LINE_BEAM_WIDTH } from '../../models/src/infer/generate';
import { cursorContext } from '../../models/src/infer/postprocess';

const corpus = [
  'function add(a, b) {\n  return a + b;\n}\n',
  'export function greet(name) {\n  console.log("hello " + name);\n}\n',
  'const values = [1, 2, 3].map((x) => x * 2);\nfor (const v of values) {\n  total += v;\n}\n',
];


/** A complete model folder (config, tokenizer, random weights), without model.onnx. */
async function makeModelFolder(dir: string, tokenizer: CodeTokenizer, c: GPTConfig, seed = 1): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const config: ModelFolderConfig = {
    formatVersion: 1, kind: 'workspace-lm-model', name: 'random', createdAt: new Date(0).toISOString(), preset: 'tiny',
    model: c, train: { ...DEFAULT_TRAIN }, step: 0, bestValLoss: null, backend: { name: 'cpu', device: 'test' },
    data: { root: '/nowhere', files: 0, tokens: 0, skipped: {} }, timings: {},
  };
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  await tokenizer.save(path.join(dir, 'tokenizer.json'));
  await writeWeights(dir, randomWeights(c, seed), c);
}

let root = '';
let tokenizer: CodeTokenizer;
let config: GPTConfig;
let session: CompletionSession;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-session-'));
  tokenizer = await CodeTokenizer.train(corpus, 300);
  config = { vocabSize: tokenizer.vocabSize, blockSize: 64, nLayer: 2, nHead: 2, nEmbd: 32, dropout: 0 };
  await makeModelFolder(path.join(root, 'model'), tokenizer, config);
  session = await CompletionSession.open(path.join(root, 'model'), { threads: 1 });
});

after(async () => {
  await session?.close();
  await fs.rm(root, { recursive: true, force: true });
});

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

test('open exports the missing model.onnx and reports the provider in use and why others were not', () => {
  assert.ok(existsSync(path.join(root, 'model', 'model.onnx')));
  assert.ok(['cuda', 'webgpu', 'cpu'].includes(session.provider));
  const betterOnes = ['cuda', 'webgpu', 'cpu'].indexOf(session.provider);
  assert.equal(session.fallbacks.length, betterOnes);
  session.fallbacks.forEach((reason, i) => assert.match(reason, new RegExp(`^${['cuda', 'webgpu'][i]}: .+`)));
});

test('KV-cached greedy decoding equals full recomputation, token for token', async () => {
  const tokens = tokenizer.encode('function add(a, b) {\n');
  session.resetCache();
  const V = config.vocabSize;
  let maxDiff = 0;
  for (let step = 0; step < 24; step++) {
    const cached = await session.nextLogits(tokens);
    const full = await session.logitsUncached(tokens);
    const last = full.subarray((tokens.length - 1) * V);
    for (let i = 0; i < V; i++) maxDiff = Math.max(maxDiff, Math.abs(cached[i] - last[i]));
    assert.equal(argmax(cached), argmax(last), `step ${step}`);
    tokens.push(argmax(cached));
  }
  assert.ok(maxDiff <= 1e-4, `max abs diff ${maxDiff}`);
});

test('going back to a shorter prefix reuses the cache and still gives that position\'s logits', async () => {
  const tokens = tokenizer.encode('const values = [1, 2, 3];');
  session.resetCache();
  await session.nextLogits(tokens);
  const shorter = tokens.slice(0, 5);
  const cached = await session.nextLogits(shorter);
  const full = await session.logitsUncached(shorter);
  const last = full.subarray(4 * config.vocabSize);
  assert.ok(cached.every((v, i) => Math.abs(v - last[i]) <= 1e-4));
});

test('prefix reuse: typing a character gives the cold-run completion and recomputes only a few positions', async () => {
  const prefix = 'export function greet(name) {\n  console.log("hello " + name);\n}\nfunction add(a, b) {\n  return a';
  session.resetCache();
  // Greedy decoding, so that the positions run are the prompt's and one per token (the beam's are below).
  const first = await session.complete({ prefix, mode: 'line', maxTokens: 8, beamWidth: 1 });
  const warm = await session.complete({ prefix: prefix + ' ', mode: 'line', maxTokens: 8, beamWidth: 1 });
  session.resetCache();
  const cold = await session.complete({ prefix: prefix + ' ', mode: 'line', maxTokens: 8, beamWidth: 1 });
  assert.equal(warm.text, cold.text);
  assert.equal(warm.tokens, cold.tokens);
  assert.equal(cold.computedTokens, cold.promptTokens + Math.max(0, cold.tokens - 1));
  assert.ok(warm.computedTokens <= 3 + warm.tokens, `warm run computed ${warm.computedTokens} positions (prompt ${warm.promptTokens})`);
  assert.ok(first.promptTokens > 20);
});

test('the same request again runs no position: the logits of each position run are kept with the cache', async () => {
  const request = { prefix: 'export function greet(name) {\n  console.log("hello " + na', mode: 'line' as const, maxTokens: 8, beamWidth: 1 };
  session.resetCache();
  const first = await session.complete(request);
  const again = await session.complete(request);
  assert.deepEqual([again.text, again.tokens], [first.text, first.tokens]);
  assert.ok(first.tokens > 1 && first.computedTokens > first.promptTokens, `${first.tokens} tokens, ${first.computedTokens} positions`);
  assert.equal(again.computedTokens, 0);
});

test('a mid-line beam keeps its paths side by side in the KV cache, and what the cache held never changes the text', async () => {
  const prefix = 'export function greet(name) {\n  console.log("hello " + na';
  session.resetCache();
  const cold = await session.complete({ prefix, mode: 'line', maxTokens: 8 });
  // Each path the beam grows runs its one new position: the prompt once, the greedy line, and at
  // most a beam's paths x 8 steps (a cache of one path ran each path's tokens again at every turn).
  assert.ok(cold.computedTokens <= cold.promptTokens + 8 + MID_LINE_BEAM_WIDTH * 8, `${cold.computedTokens} positions for a prompt of ${cold.promptTokens}`);
  // Warm: after a request in another document and the keystroke before this one.
  await session.complete({ prefix: 'function add(a, b) {\n  return a', mode: 'line', maxTokens: 8 });
  await session.complete({ prefix: prefix.slice(0, -1), mode: 'line', maxTokens: 8 });
  const warm = await session.complete({ prefix, mode: 'line', maxTokens: 8 });
  assert.deepEqual([warm.text, warm.tokens, warm.meanLogProb.toFixed(4)], [cold.text, cold.tokens, cold.meanLogProb.toFixed(4)]);
});

test('a beam step runs its paths as one batch: the same line as every path recomputed alone', async () => {
  const V = config.vocabSize;
  let batchedPositions = 0;
  for (const prefix of ['const values = [1, 2, 3].map((x) => x * 2);\nfor (const v of val', 'function add(a, b) {\n  return a +', 'export function greet(name) {\n  console.log("hel']) {
    session.resetCache();
    const before = session.stats();
    const batched = await session.complete({ prefix, mode: 'line', maxTokens: 8, beamWidth: 3 });
    batchedPositions += session.stats().batchedPositions - before.batchedPositions;
    // The same decoding on logits recomputed from scratch for each sequence, one at a time.
    const prompt = buildPrompt(session.tokenizer, prefix, '', { blockSize: config.blockSize, maxTokens: 8, fim: false });
    const alone = await generate({
      next: async (tokens) => (await session.logitsUncached(tokens)).slice((tokens.length - 1) * V),
      tokenizer: session.tokenizer, prompt, maxTokens: 8, blockSize: config.blockSize, beamWidth: 3, ...cursorContext(prefix, '', 'line'),
    });
    assert.deepEqual([batched.text, batched.tokens, batched.meanLogProb.toFixed(3)], [alone.text, alone.tokens, alone.meanLogProb.toFixed(3)], prefix);
  }
  assert.ok(batchedPositions >= 2, `${batchedPositions} positions ran in batches`);
});

test('typing a line deep in a long document: each keystroke prefills only its new positions; the counters add up', async () => {
  const prefix = corpus.join('').repeat(60); // 12K characters, far more than the 64-token window
  const line = '  total += add(v, 2);'; // 15 tokens: within the 16 a line may take (half the 32 generated)
  session.resetCache();
  const before = session.stats();
  const cold = await session.complete({ prefix, mode: 'line', maxTokens: 32 });
  assert.equal(cold.prefillPositions, cold.promptTokens, 'a cold run prefills the whole window');
  const results = [cold];
  for (let k = 1; k <= line.length; k++) {
    const r = await session.complete({ prefix: prefix + line.slice(0, k), mode: 'line', maxTokens: 32, beamWidth: 1 });
    // The healed end of the previous prompt (at most 4 tokens), the new ones, and one fed again.
    assert.ok(r.prefillPositions <= 6, `"${line.slice(0, k)}": prefilled ${r.prefillPositions} of ${r.promptTokens} positions`);
    assert.equal(r.prefillPositions + r.reusedPositions, r.promptTokens);
    // One position per generated token after the first, or none where the last keystroke's run
    // already went down the same tokens (their logits are kept with the cache).
    assert.ok(r.computedTokens <= r.prefillPositions + Math.max(0, r.tokens - 1));
    results.push(r);
  }
  const after = session.stats();
  const sum = (pick: (r: (typeof results)[number]) => number) => results.reduce((n, r) => n + pick(r), 0);
  assert.equal(after.requests - before.requests, results.length);
  assert.equal(after.promptPositions - before.promptPositions, sum((r) => r.promptTokens));
  assert.equal(after.prefillPositions - before.prefillPositions, sum((r) => r.prefillPositions));
  assert.equal(after.reusedPositions - before.reusedPositions, sum((r) => r.reusedPositions));
  assert.equal(after.decodedTokens - before.decodedTokens, sum((r) => r.computedTokens - r.prefillPositions));
  for (const phase of ['window', 'tokenize', 'prefill', 'decode', 'postprocess'] as const) {
    assert.ok(results.every((r) => r.phaseMs[phase] >= 0) && after.ms[phase] >= before.ms[phase], phase);
  }
  assert.ok(sum((r) => r.phaseMs.window + r.phaseMs.tokenize + r.phaseMs.prefill + r.phaseMs.decode + r.phaseMs.postprocess) <= sum((r) => r.ms) + 1);
});

test('requests: an aborted signal rejects, bad values get a clear error', async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(session.complete({ prefix: 'x', mode: 'line', maxTokens: 4, signal: controller.signal }), { name: 'AbortError' });
  await assert.rejects(session.complete({ prefix: 'x', mode: 'line', maxTokens: 0 }), /maxTokens must be a positive integer, got 0/);
  // the session keeps serving after errors
  const ok = await session.complete({ prefix: 'function add(a, b) {\n', mode: 'block', maxTokens: 6 });
  assert.ok(ok.tokens >= 1 && ok.tokens <= 6 && ok.ms > 0);
});

test('a truncated or foreign model.onnx is reported as invalid, not loaded', async () => {
  const broken = path.join(root, 'broken');
  await makeModelFolder(broken, tokenizer, config);
  const good = buildOnnxModel(config, randomWeights(config, 1));
  await fs.writeFile(path.join(broken, 'model.onnx'), good.subarray(0, good.length >> 1));
  await assert.rejects(CompletionSession.open(broken, { providers: ['cpu'] }), (err: Error) => {
    assert.ok(err instanceof InvalidModelError);
    assert.match(err.message, /^model\.onnx in .*broken is not a valid ONNX model: .*hint: delete it/);
    return true;
  });
  // a valid ONNX graph, but of another architecture (one layer, other width)
  const other: GPTConfig = { ...config, nLayer: 1, nEmbd: 16 };
  await fs.writeFile(path.join(broken, 'model.onnx'), buildOnnxModel(other, randomWeights(other, 2)));
  await assert.rejects(CompletionSession.open(broken, { providers: ['cpu'] }), /model\.onnx in .*broken is not a valid ONNX model: .*past_key_1/);
});

test('an int8 export (--quantize) loads, is 2x+ smaller even for a tiny model, and predicts close to the float model', async () => {
  const dir = path.join(root, 'int8');
  await makeModelFolder(dir, tokenizer, config);
  const exported = await exportOnnx(dir, { quantize: true });
  const floatBytes = (await fs.stat(path.join(root, 'model', 'model.onnx'))).size;
  assert.ok(exported.bytes * 2 < floatBytes, `int8 ${exported.bytes} B vs float ${floatBytes} B`);
  const int8 = await CompletionSession.open(dir, { providers: ['cpu'] });
  try {
    const tokens = tokenizer.encode('for (const v of values) {\n  total += v;');
    const a = await session.nextLogits(tokens);
    const b = await int8.nextLogits(tokens);
    const diff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    const range = Math.max(...a) - Math.min(...a);
    assert.ok(diff > 0 && diff < 0.05 * range, `int8 logits differ by ${diff} (range ${range})`);
  } finally {
    await int8.close();
  }
});

test('open exports model.onnx again when the weights are newer', async () => {
  const dir = path.join(root, 'stale');
  await makeModelFolder(dir, tokenizer, config, 3);
  const other: GPTConfig = { ...config, nLayer: 1 };
  await fs.writeFile(path.join(dir, 'model.onnx'), buildOnnxModel(other, randomWeights(other, 2)));
  const old = new Date(Date.now() - 60_000);
  await fs.utimes(path.join(dir, 'model.onnx'), old, old);
  const logs: string[] = [];
  const fresh = await CompletionSession.open(dir, { providers: ['cpu'], onLog: (m) => logs.push(m) });
  await fresh.close();
  assert.ok(logs.some((m) => /exported .*model\.onnx .*the weights are newer/.test(m)), logs.join('\n'));
});

test('a model.onnx from before logit_positions (logits for every position) is exported again on open, and completes alike', async () => {
  const dir = path.join(root, 'older-graph');
  await makeModelFolder(dir, tokenizer, config, 1); // the weights of the shared session's model
  // The graph as versions before it were: no logit_positions input, the head on every position.
  const model = onnx.ModelProto.decode(buildOnnxModel(config, randomWeights(config, 1)));
  model.graph!.input = model.graph!.input!.filter((i) => i.name !== onnxNames.logitPositions);
  const gather = model.graph!.node!.find((n) => n.input!.includes(onnxNames.logitPositions))!;
  Object.assign(gather, { opType: 'Identity', input: [gather.input![0]], attribute: [] });
  await fs.writeFile(path.join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  const logs: string[] = [];
  const upgraded = await CompletionSession.open(dir, { providers: ['cpu'], onLog: (m) => logs.push(m) });
  try {
    assert.ok(logs.some((m) => /exported .*model\.onnx .*from an older version/.test(m)), logs.join('\n'));
    const request = { prefix: 'function add(a, b) {\n  return ', mode: 'line' as const, maxTokens: 8 };
    assert.equal((await upgraded.complete(request)).text, (await session.complete(request)).text);
  } finally {
    await upgraded.close();
  }
});

test('warmUp runs the completion path and leaves no trace: counters at zero, the next completion as from a fresh session', async () => {
  const dir = path.join(root, 'warm');
  await makeModelFolder(dir, tokenizer, config, 1);
  const warm = await CompletionSession.open(dir, { providers: ['cpu'] });
  try {
    await warm.warmUp();
    const stats = warm.stats();
    assert.deepEqual([stats.requests, stats.promptPositions, stats.prefillPositions, stats.decodedTokens, stats.ms.decode], [0, 0, 0, 0, 0]);
    const request = { prefix: 'function add(a, b) {\n  return ', mode: 'line' as const, maxTokens: 8 };
    session.resetCache();
    const fresh = await session.complete(request);
    const after = await warm.complete(request);
    assert.deepEqual([after.text, after.prefillPositions], [fresh.text, fresh.promptTokens], 'a cold run: nothing of the warm-up is in the KV cache');
  } finally {
    await warm.close();
  }
});
