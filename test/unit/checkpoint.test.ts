// Model folders: weights round-trip exactly and give identical logits; every kind of damage
// (missing files, foreign or truncated data, wrong versions, shapes against config.json) is a
// "corrupt model folder" error naming the problem; config.json's writer, updater and progress
// record; the resume state round-trips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, truncateSync, readFileSync, mkdirSync, renameSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { GPT, initialWeights } from '../../models/src/model/gpt';
import { selectBackend } from '../../models/src/train/backend';
import {
  readWeights, writeWeights, readModelConfig, saveTrainingState, loadTrainingState, hasTrainingState,
  hasModelConfig, writeModelConfig, updateModelConfig, recordProgress,
  type ModelFolderConfig, type WeightTensor,
} from '../../models/src/model/checkpoint';
import { DEFAULT_TRAIN, type GPTConfig } from '../../models/src/model/config';

const tiny: GPTConfig = { vocabSize: 37, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8, dropout: 0 };
let root: string;

before(async () => {
  await selectBackend('cpu');
  root = mkdtempSync(path.join(os.tmpdir(), 'wlm-checkpoint-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function folderConfig(model: GPTConfig): ModelFolderConfig {
  return {
    formatVersion: 1, kind: 'workspace-lm-model', name: 'test', createdAt: new Date(0).toISOString(), preset: 'tiny',
    model, train: DEFAULT_TRAIN, step: 0, bestValLoss: null, backend: { name: 'cpu', device: 'CPU' },
    data: { root: '/nowhere', files: { train: 1, val: 1 }, tokens: { train: 10, val: 10 }, skipped: {} }, timings: {},
  };
}

async function modelFolder(name: string, model = tiny, seed = 1): Promise<string> {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(folderConfig(model)));
  await writeWeights(dir, initialWeights(model, seed), model);
  return dir;
}

test('save → load gives identical weights and identical logits', async () => {
  const a = new GPT(tiny, { seed: 11 });
  const dir = path.join(root, 'roundtrip');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(folderConfig(tiny)));
  await writeWeights(dir, a.getWeights(), tiny);
  const loaded = await readWeights(dir);
  for (const [name, w] of a.getWeights()) {
    assert.deepEqual(loaded.get(name)!.shape, w.shape);
    assert.deepEqual(loaded.get(name)!.data, w.data);
  }
  const b = new GPT(tiny, { seed: 12 });
  b.loadWeights(loaded);
  const x = tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8]], [1, 8], 'int32');
  const [la, lb] = [a.forward(x), b.forward(x)];
  assert.deepEqual(la.dataSync(), lb.dataSync());
  tf.dispose([x, la, lb]);
  a.dispose();
  b.dispose();
  // weights.bin is float32 little-endian in manifest order: wte comes first.
  const bin = readFileSync(path.join(dir, 'weights.bin'));
  assert.equal(bin.readFloatLE(0), loaded.get('wte')!.data[0]);
  assert.equal(JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')).format, 'wlm-gpt');
});

test('readWeights: missing folder, missing files, foreign folder', async () => {
  await assert.rejects(readWeights(path.join(root, 'does-not-exist')), /model folder .*does-not-exist does not exist/);
  const foreign = path.join(root, 'foreign');
  mkdirSync(foreign);
  writeFileSync(path.join(foreign, 'README.md'), 'hello');
  await assert.rejects(readWeights(foreign), /corrupt model folder .*foreign: missing model\.json/);
  const noBin = await modelFolder('no-bin');
  rmSync(path.join(noBin, 'weights.bin'));
  await assert.rejects(readWeights(noBin), /corrupt model folder .*no-bin: missing weights\.bin/);
  const otherFormat = await modelFolder('other-format');
  writeFileSync(path.join(otherFormat, 'model.json'), JSON.stringify({ format: 'layers-model', weightsManifest: [] }));
  await assert.rejects(readWeights(otherFormat), /model\.json format is "layers-model", expected "wlm-gpt"/);
  const notJson = await modelFolder('not-json');
  writeFileSync(path.join(notJson, 'model.json'), '{ half');
  await assert.rejects(readWeights(notJson), /model\.json is not valid JSON/);
});

test('readWeights: truncated weights.bin and a future formatVersion', async () => {
  const truncated = await modelFolder('truncated');
  const full = readFileSync(path.join(truncated, 'weights.bin')).byteLength;
  truncateSync(path.join(truncated, 'weights.bin'), full - 4);
  await assert.rejects(readWeights(truncated), new RegExp(`weights\\.bin has ${full - 4} bytes but model\\.json describes ${full}`));
  const future = await modelFolder('future');
  const manifest = JSON.parse(readFileSync(path.join(future, 'model.json'), 'utf8'));
  writeFileSync(path.join(future, 'model.json'), JSON.stringify({ ...manifest, formatVersion: 2 }));
  await assert.rejects(readWeights(future), /formatVersion 2 is not supported/);
});

test('readWeights: shapes must match config.json', async () => {
  const dir = await modelFolder('mismatch');
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(folderConfig({ ...tiny, nEmbd: 16 })));
  await assert.rejects(readWeights(dir), /corrupt model folder .*mismatch: wte has shape \[37,8\] but config\.json says \[37,16\]/);
  const deeper = await modelFolder('deeper');
  writeFileSync(path.join(deeper, 'config.json'), JSON.stringify(folderConfig({ ...tiny, nLayer: 3 })));
  await assert.rejects(readWeights(deeper), /weights lack h\.2\.ln1\.g/);
});

test('readModelConfig: validates kind, version and the model section', async () => {
  const dir = await modelFolder('config-ok');
  assert.deepEqual((await readModelConfig(dir)).model, tiny);
  const bad = (name: string, config: unknown): string => {
    const d = path.join(root, name);
    mkdirSync(d);
    writeFileSync(path.join(d, 'config.json'), JSON.stringify(config));
    return d;
  };
  await assert.rejects(readModelConfig(bad('kind', { ...folderConfig(tiny), kind: 'other' })), /kind is "other"/);
  await assert.rejects(readModelConfig(bad('version', { ...folderConfig(tiny), formatVersion: 9 })), /formatVersion 9 is not supported/);
  await assert.rejects(readModelConfig(bad('heads', { ...folderConfig({ ...tiny, nHead: 3 }) })), /corrupt model folder .*divisible by nHead/);
  await assert.rejects(readModelConfig(path.join(root, 'absent')), /does not exist/);
  const empty = path.join(root, 'empty');
  mkdirSync(empty);
  await assert.rejects(readModelConfig(empty), /missing config\.json/);
});

test('config.json: written whole, updated by a patch, kept in step by recordProgress; a damaged one is left alone', async () => {
  const dir = path.join(root, 'config-write');
  mkdirSync(dir);
  assert.equal(hasModelConfig(dir), false);
  await recordProgress(dir, 5, 2.5); // a bare training run: nothing to record into
  assert.equal(hasModelConfig(dir), false);
  await writeModelConfig(dir, folderConfig(tiny));
  assert.equal(hasModelConfig(dir), true);
  assert.deepEqual(await readModelConfig(dir), folderConfig(tiny));
  const updated = await updateModelConfig(dir, { stopReason: 'maxSteps', timings: { trainMs: 7 } });
  assert.deepEqual(updated, { ...folderConfig(tiny), stopReason: 'maxSteps', timings: { trainMs: 7 } });
  await recordProgress(dir, 12, 3.5);
  assert.deepEqual(await readModelConfig(dir), { ...updated, step: 12, bestValLoss: 3.5 });
  writeFileSync(path.join(dir, 'config.json'), '{ "kind": ');
  await recordProgress(dir, 13, 3.25);
  assert.equal(readFileSync(path.join(dir, 'config.json'), 'utf8'), '{ "kind": ', 'readModelConfig reports it when the folder is loaded');
  await assert.rejects(updateModelConfig(dir, { step: 1 }), /config\.json is not valid JSON/);
});

test('training state round-trips exactly; an interrupted swap falls back to resume.old', async () => {
  const dir = await modelFolder('state');
  const weights = initialWeights(tiny, 5);
  const adamM = new Map<string, Float32Array>();
  const adamV = new Map<string, Float32Array>();
  for (const [name, w] of weights) {
    adamM.set(name, w.data.map((v) => v * 0.5));
    adamV.set(name, w.data.map((v) => v * v));
  }
  assert.equal(hasTrainingState(dir), false);
  await saveTrainingState(dir, { step: 42, tokens: 4242, bestValLoss: 3.25, evalsWithoutImprovement: 2, elapsedMs: 999, weights, adamM, adamV }, tiny);
  assert.equal(hasTrainingState(dir), true);
  const state = await loadTrainingState(dir);
  assert.equal(state.step, 42);
  assert.equal(state.tokens, 4242);
  assert.equal(state.bestValLoss, 3.25);
  assert.equal(state.evalsWithoutImprovement, 2);
  for (const [name, w] of weights) {
    assert.deepEqual(state.weights.get(name)!.data, w.data);
    assert.deepEqual(state.adamM.get(name), adamM.get(name));
    assert.deepEqual(state.adamV.get(name), adamV.get(name));
  }
  // A crash between the two renames leaves only resume.old/.
  renameSync(path.join(dir, 'resume'), path.join(dir, 'resume.old'));
  assert.equal((await loadTrainingState(dir)).step, 42);
  // The model's own weights at the root are untouched by the state.
  const root0 = await readWeights(dir);
  assert.deepEqual(root0.get('wte')!.data, initialWeights(tiny, 1).get('wte')!.data);
  assert.ok(!existsSync(path.join(dir, '.resume.' + process.pid + '.tmp')));
});

test('loadTrainingState: no state and truncated moments are clear errors', async () => {
  const dir = await modelFolder('no-state');
  await assert.rejects(loadTrainingState(dir), /no resume state/);
  const weights: Map<string, WeightTensor> = initialWeights(tiny, 1);
  const zeros = new Map([...weights].map(([n, w]) => [n, new Float32Array(w.data.length)]));
  await saveTrainingState(dir, { step: 1, tokens: 1, bestValLoss: null, evalsWithoutImprovement: 0, elapsedMs: 0, weights, adamM: zeros, adamV: zeros }, tiny);
  truncateSync(path.join(dir, 'resume', 'moments.bin'), 10);
  await assert.rejects(loadTrainingState(dir), /moments\.bin has 10 bytes/);
});
