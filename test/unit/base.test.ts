// The pre-trained base and how runs start from it, on a tiny stand-in base (baseStandIn.ts):
// where the base is looked for (baseModelDir: bundled, $WLM_BASE_MODEL, an override, none), a
// broken base reported, a folder made without a gradient step (the base's weights byte for byte,
// the workspace's n-gram and mixture, a completion served), training that fine-tunes the base by
// default or starts from scratch when asked, when the preset is not the base's architecture, and
// when the workspace is not in the base's languages — each saying why, in an event and config.json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BASE_MODEL_ENV, baseLanguageShare, baseModelDir, bundledBaseDir, findBaseModel, sameArchitecture } from '../../models/src/model/base';
import { CorruptModelError } from '../../models/src/model/checkpoint';
import { loadPreset } from '../../models/src/model/config';
import { trainOnFolder, type PipelineEvent } from '../../models/src/pipeline';
import { CompletionSession } from '../../models/src/infer/session';
import { makeStandInBase, repoRoot, sampleProject } from './baseStandIn';

let tmp = '';
let base = '';

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-base-'));
  base = await makeStandInBase(path.join(tmp, 'base'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function statuses(events: PipelineEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'status' ? [e.message] : []));
}

test('baseModelDir: the bundled models/base by default, $WLM_BASE_MODEL over it, an override over both, null for none', () => {
  const saved = process.env[BASE_MODEL_ENV];
  try {
    delete process.env[BASE_MODEL_ENV];
    assert.equal(bundledBaseDir(), path.join(repoRoot, 'models', 'base'), 'from the sources: models/base next to models/src');
    assert.equal(baseModelDir(), bundledBaseDir());
    process.env[BASE_MODEL_ENV] = base;
    assert.equal(baseModelDir(), base);
    assert.equal(baseModelDir(path.join(tmp, 'elsewhere')), path.join(tmp, 'elsewhere'));
    assert.equal(baseModelDir(null), null);
  } finally {
    if (saved === undefined) delete process.env[BASE_MODEL_ENV];
    else process.env[BASE_MODEL_ENV] = saved;
  }
});

test('findBaseModel: a folder that is not there is no base; one that is there but broken is reported, never used', async () => {
  assert.equal(await findBaseModel(path.join(tmp, 'nowhere')), null);
  assert.equal(await findBaseModel(null), null);
  const found = await findBaseModel(base);
  assert.equal(found?.dir, base);
  assert.equal(found?.config.preset, 'tiny');
  const broken = path.join(tmp, 'broken-base');
  mkdirSync(broken);
  cpSync(path.join(base, 'config.json'), path.join(broken, 'config.json'));
  await assert.rejects(findBaseModel(broken), (err: Error) => err instanceof CorruptModelError && /lacks tokenizer.json, model.json, weights.bin/.test(err.message));
});

test('the base languages by bytes, and architectures by shape', () => {
  assert.equal(baseLanguageShare([]), 0);
  assert.equal(baseLanguageShare([{ relPath: 'a.ts', bytes: 300 }, { relPath: 'b.py', bytes: 100 }, { relPath: 'c.MJS', bytes: 100 }]), 0.8);
  assert.equal(baseLanguageShare([{ relPath: 'scripts/x.py', bytes: 10 }, { relPath: 'README.md', bytes: 10 }]), 0);
  const tiny = loadPreset('tiny').model;
  assert.equal(sameArchitecture(tiny, { ...tiny, vocabSize: 999 }), true, 'the vocabulary comes with the tokenizer');
  assert.equal(sameArchitecture(tiny, loadPreset('small').model), false);
});

test('no training: the base\'s weights byte for byte, the workspace\'s n-gram and mixture, and a completion served', async () => {
  const out = path.join(tmp, 'no-training');
  const events: PipelineEvent[] = [];
  const { config, result } = await trainOnFolder({ folder: sampleProject, outDir: out, base, noTraining: true, onEvent: (e) => events.push(e) });
  assert.equal(result.stopReason, 'noTraining');
  assert.equal(result.step, 0);
  assert.ok(!events.some((e) => e.type === 'log' || e.type === 'backend'), 'no gradient step, no training engine');
  assert.deepEqual(readFileSync(path.join(out, 'weights.bin')), readFileSync(path.join(base, 'weights.bin')), 'the weights are the base\'s');
  assert.equal(readFileSync(path.join(out, 'tokenizer.json'), 'utf8'), readFileSync(path.join(base, 'tokenizer.json'), 'utf8'));
  for (const file of ['model.onnx', 'ngram.bin', 'mixture.json']) assert.ok(existsSync(path.join(out, file)), file);
  assert.ok(!existsSync(path.join(out, 'data')), 'no token files in the model folder (model/runCache.ts)');
  assert.equal(config.parent, base);
  assert.equal(config.step, 0);
  assert.equal(config.stopReason, 'noTraining');
  assert.equal(config.start?.from, 'base');
  assert.equal(config.preset, 'tiny', "the base's own preset");
  assert.ok(config.start!.baseLanguageShare! > 0.5, `the sample project is mostly TypeScript/JavaScript: ${config.start?.baseLanguageShare}`);
  assert.equal(config.train.summaryRate, 1, 'it knows what the base learnt: summaries');

  const session = await CompletionSession.open(out);
  try {
    assert.ok(session.mixture, 'served with the workspace n-gram and the cache');
    const text = readFileSync(path.join(sampleProject, 'src', 'queue.ts'), 'utf8');
    const cut = text.indexOf('return') + 'return'.length;
    const completion = await session.complete({ prefix: text.slice(0, cut), suffix: text.slice(cut), mode: 'line', maxTokens: 16 });
    assert.equal(completion.mixed, true);
    assert.ok(completion.tokens > 0, 'the model generated something');
  } finally {
    await session.close();
  }
});

test('no training needs a base: none there, or a preset of another architecture, is a clear error', async () => {
  await assert.rejects(trainOnFolder({ folder: sampleProject, outDir: path.join(tmp, 'nb-1'), base: path.join(tmp, 'nowhere'), noTraining: true }), /no base model to serve without training \(none at .*nowhere\)/);
  await assert.rejects(trainOnFolder({ folder: sampleProject, outDir: path.join(tmp, 'nb-2'), noTraining: true }), /no base model to serve without training/);
  await assert.rejects(trainOnFolder({ folder: sampleProject, outDir: path.join(tmp, 'nb-3'), base, preset: 'small', noTraining: true }), /the small preset is not the base model's architecture \(the tiny preset's: context 64, 2 layers/);
  assert.equal(existsSync(path.join(tmp, 'nb-3')), false, 'nothing left behind');
});

test('training fine-tunes the base by default: its tokenizer, its weights to start, config.json says so', async () => {
  const out = path.join(tmp, 'from-base');
  const events: PipelineEvent[] = [];
  const { config } = await trainOnFolder({ folder: sampleProject, outDir: out, preset: 'tiny', steps: 3, base, skipExport: true, onEvent: (e) => events.push(e) });
  assert.equal(config.start?.from, 'base');
  assert.equal(config.parent, base);
  assert.match(config.start!.reason, /fine-tuning the pre-trained base/);
  assert.ok(statuses(events).some((m) => m.startsWith('fine-tuning the pre-trained base')));
  assert.equal(readFileSync(path.join(out, 'tokenizer.json'), 'utf8'), readFileSync(path.join(base, 'tokenizer.json'), 'utf8'), "the base's tokenizer");
  assert.equal(config.step, 3);
  assert.equal(config.train.maxSteps, 3, "the preset's schedule with the run's budget");
});

test('a fine-tune of the base peaks at the preset\'s fine-tune rate; a rate asked for, adapters and a run from scratch keep theirs', async () => {
  const tiny = loadPreset('tiny').train;
  assert.ok(tiny.fineTuneLearningRate < tiny.learningRate, 'the preset fine-tunes gentler than it trains from scratch');
  /** The run's recorded peak and floor, and the highest rate its steps logged. */
  async function rates(name: string, options: { learningRate?: number; loraRank?: number; fromScratch?: boolean }) {
    const out = path.join(tmp, `rate-${name}`);
    const { config } = await trainOnFolder({ folder: sampleProject, outDir: out, preset: 'tiny', steps: 3, base, skipExport: true, ...options });
    const logged = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { lr?: number }).flatMap((m) => (m.lr === undefined ? [] : [m.lr]));
    return { peak: config.train.learningRate, floor: config.train.minLearningRate, highest: Math.max(...logged) };
  }
  const fineTune = await rates('full', {});
  assert.equal(fineTune.peak, tiny.fineTuneLearningRate);
  assert.ok(Math.abs(fineTune.floor / fineTune.peak - tiny.minLearningRate / tiny.learningRate) < 1e-12, 'the floor moves in proportion');
  assert.ok(Math.abs(fineTune.highest - tiny.fineTuneLearningRate) < 1e-9, `steps ran at the fine-tune rate (highest logged ${fineTune.highest})`);
  assert.equal((await rates('asked', { learningRate: 0.002 })).peak, 0.002);
  assert.equal((await rates('lora', { loraRank: 4 })).peak, tiny.learningRate);
  assert.equal((await rates('scratch', { fromScratch: true })).peak, tiny.learningRate);
});

test('a fine-tune of the whole model plans at most 10 passes over the workspace\'s training tokens and says so; runs from scratch, of the last layers or scoped to some files keep the steps asked for', async () => {
  /** The steps a run planned (config.json, written before the first step), stopping it at its first step. */
  async function planned(name: string, options: { fromScratch?: boolean; freezeLayers?: number; files?: string[] }) {
    const controller = new AbortController();
    const events: PipelineEvent[] = [];
    const { config } = await trainOnFolder({
      folder: sampleProject, outDir: path.join(tmp, `passes-${name}`), preset: 'tiny', steps: 100_000, base, skipExport: true, signal: controller.signal, ...options,
      onEvent: (e) => { events.push(e); if (e.type === 'log') controller.abort(); },
    });
    const tokens = config.data.tokens;
    return { maxSteps: config.train.maxSteps, trainTokens: typeof tokens === 'number' ? tokens : tokens.train, events };
  }
  const tiny = loadPreset('tiny');
  const fineTune = await planned('fine-tune', {});
  const cap = Math.ceil((10 * fineTune.trainTokens) / (tiny.train.batchSize * tiny.model.blockSize));
  assert.ok(cap < 100_000);
  assert.equal(fineTune.maxSteps, cap, `${fineTune.trainTokens} training tokens`);
  assert.ok(statuses(fineTune.events).some((m) => m.startsWith(`training at most ${cap} steps (10 passes over the `) && m.includes('not 100000')), statuses(fineTune.events).join('\n'));
  const keepTheirSteps: [string, { fromScratch?: boolean; freezeLayers?: number; files?: string[] }][] = [['scratch', { fromScratch: true }], ['last-layers', { freezeLayers: 1 }], ['scoped', { files: ['src/queue.ts', 'src/lru.ts'] }]];
  for (const [name, options] of keepTheirSteps) {
    const run = await planned(name, options);
    assert.equal(run.maxSteps, 100_000, name);
    assert.ok(!statuses(run.events).some((m) => m.startsWith('training at most')), name);
  }
});

test('a fine-tune whose held-out loss stops improving ends early, keeps its best weights and says so', async () => {
  // A rate too small to move the weights: every evaluation after the first is no improvement.
  const evalInterval = loadPreset('tiny').train.evalInterval;
  const out = path.join(tmp, 'early');
  const { config, result } = await trainOnFolder({ folder: sampleProject, outDir: out, preset: 'tiny', steps: 50 * evalInterval, base, skipExport: true, learningRate: 1e-12, patience: 2 });
  assert.equal(result.stopReason, 'earlyStop');
  assert.equal(result.step, 3 * evalInterval, 'the first evaluation and two more without improvement');
  assert.equal(config.train.patience, 2);
  const evals = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { valLoss?: number }).flatMap((m) => (m.valLoss === undefined ? [] : [m.valLoss]));
  assert.equal(result.bestValLoss, evals[0]);
  // The default preset stops so too: on rxjs a fine-tune of the base learnt nothing after about 1,500 steps.
  assert.ok(loadPreset('small').train.patience > 0);
});

test('--from-scratch keeps the workspace tokenizer and random weights; a preset of another architecture does too, and says why', async () => {
  const scratch = await trainOnFolder({ folder: sampleProject, outDir: path.join(tmp, 'scratch'), preset: 'tiny', steps: 2, base, fromScratch: true, skipExport: true });
  assert.equal(scratch.config.start?.from, 'scratch');
  assert.equal(scratch.config.start?.reason, 'asked for');
  assert.equal(scratch.config.parent, undefined);
  assert.notEqual(readFileSync(path.join(tmp, 'scratch', 'tokenizer.json'), 'utf8'), readFileSync(path.join(base, 'tokenizer.json'), 'utf8'), 'a tokenizer trained on this workspace');

  // As the shipped base has the small preset's shape, tiny runs train from scratch: a base whose
  // config.json says small (its weights are never read) stands in for it.
  const smallBase = path.join(tmp, 'small-shaped-base');
  cpSync(base, smallBase, { recursive: true });
  const config = JSON.parse(readFileSync(path.join(smallBase, 'config.json'), 'utf8'));
  writeFileSync(path.join(smallBase, 'config.json'), JSON.stringify({ ...config, preset: 'small', model: loadPreset('small').model }));
  const events: PipelineEvent[] = [];
  const tiny = await trainOnFolder({ folder: sampleProject, outDir: path.join(tmp, 'tiny'), preset: 'tiny', steps: 1, base: smallBase, skipExport: true, onEvent: (e) => events.push(e) });
  assert.equal(tiny.config.start?.from, 'scratch');
  assert.equal(tiny.config.parent, undefined);
  assert.match(tiny.config.start!.reason, /^the tiny preset is not the base model's architecture \(the small preset's: context 128, 4 layers, 4 heads, width 128\)$/);
  assert.ok(statuses(events).some((m) => m === `training from scratch with a tokenizer of its own: ${tiny.config.start!.reason}`), statuses(events).join('\n'));
  assert.deepEqual(tiny.config.model, loadPreset('tiny').model);
});

test('a workspace mostly in a language the base does not know trains from scratch by itself, and says why', async () => {
  const python = path.join(tmp, 'python-project');
  mkdirSync(python);
  for (const file of readdirSync(path.join(sampleProject, 'scripts'))) cpSync(path.join(sampleProject, 'scripts', file), path.join(python, file));
  writeFileSync(path.join(python, 'helper.js'), 'export const twice = (x) => 2 * x;\n'); // a little JavaScript: still far below half
  const events: PipelineEvent[] = [];
  const { config } = await trainOnFolder({ folder: python, outDir: path.join(tmp, 'python'), preset: 'tiny', steps: 2, base, skipExport: true, onEvent: (e) => events.push(e) });
  assert.equal(config.start?.from, 'scratch');
  assert.equal(config.parent, undefined);
  assert.ok(config.start!.baseLanguageShare! < 0.05, `share ${config.start?.baseLanguageShare}`);
  assert.match(config.start!.reason, /^[0-9]+% of this workspace's source bytes are TypeScript\/JavaScript, the languages the base model was pre-trained on \(it needs 50%\)$/);
  assert.ok(statuses(events).some((m) => m === `training from scratch with a tokenizer of its own: ${config.start!.reason}`));
  // Without training, the base serves such a workspace all the same: the mixture weighs its GPT.
  const served = await trainOnFolder({ folder: python, outDir: path.join(tmp, 'python-base'), base, noTraining: true });
  assert.equal(served.config.start?.from, 'base');
  assert.match(served.config.start!.reason, /completion mixture's fit decides how far its GPT is trusted/);
});
