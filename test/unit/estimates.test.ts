// Tests of server/src/estimates.ts: a run's progress and time left follow whichever budget ends it
// first (steps or wall-clock minutes), and a preset's expected training time comes from the speed
// of a run made here, else its recorded measurement, scaled when this machine was measured too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunPace, describeDuration, estimatePresets, guessBackend, type TrainedRun } from '../../server/src/estimates';
import { PRESET_NAMES, loadPreset } from '../../models/src/model/config';

test('a run stopped by its time budget: progress and ETA follow the minutes, not the steps', () => {
  // The run: 2000 planned steps, 10 minutes, 1.47 s a step (it stopped at step 409).
  const pace = new RunPace({ maxSteps: 2000, maxMinutes: 10 });
  let progress = pace.observe(1, 1470);
  assert.equal(progress.etaMs, null, 'one step gives no pace');
  for (let step = 2; step <= 200; step++) progress = pace.observe(step, step * 1470);
  // 294 s of 600 s spent: 49%, and 306 s left (steps alone would say 1800 × 1.47 s = 44 min).
  assert.equal(progress.endsBy, 'maxMinutes');
  assert.equal(progress.percentage, 49);
  assert.equal(progress.etaMs, 600_000 - 200 * 1470);
  progress = pace.observe(409, 601_230);
  assert.deepEqual(progress, { percentage: 100, etaMs: 0, endsBy: 'maxMinutes' });
});

test('a run that reaches its steps first: progress and ETA by steps, from the recent pace only', () => {
  const pace = new RunPace({ maxSteps: 100, maxMinutes: 10 });
  // A slow first step (compilation), then 200 ms a step: the window of ~20 steps forgets the first.
  pace.observe(1, 5000);
  let progress = pace.progress();
  for (let step = 2; step <= 30; step++) progress = pace.observe(step, 5000 + (step - 1) * 200);
  assert.deepEqual(progress, { percentage: 30, etaMs: 70 * 200, endsBy: 'maxSteps' });
  const untimed = new RunPace({ maxSteps: 60, maxMinutes: 0 });
  untimed.observe(30, 3000);
  assert.deepEqual(untimed.observe(60, 6000), { percentage: 100, etaMs: 0, endsBy: 'maxSteps' });
});

test('durations in progress messages', () => {
  assert.equal(describeDuration(44_600), '45 s');
  assert.equal(describeDuration(306_000), '5 min');
  assert.equal(describeDuration(7_500_000), '2 h 5 min');
});

const presets = PRESET_NAMES.map(loadPreset);
const byName = <T extends { name: string }>(list: T[], name: string): T => list.find((p) => p.name === name)!;

test('preset estimates from the recorded measurements: small ends by its steps within its budget, base is for a GPU', () => {
  const backend = guessBackend('auto', [], false);
  assert.equal(backend.device, 'cpu');
  const estimates = estimatePresets(presets, [], backend);
  assert.deepEqual(estimates.map((e) => e.name), ['tiny', 'small', 'base']);
  for (const e of estimates) assert.equal(e.speed?.source, 'measured', e.name);

  const small = byName(estimates, 'small');
  const smallPreset = byName(presets, 'small');
  const msPerStep = (1000 * smallPreset.train.batchSize * smallPreset.model.blockSize) / smallPreset.measured!.tokensPerSecond;
  // 9348 tokens/s (onnxruntime) at 2048 tokens a step: its 2000 steps take about 7 minutes, inside its 10-minute budget.
  assert.ok(smallPreset.train.maxSteps * msPerStep < smallPreset.train.maxMinutes * 60_000);
  assert.equal(small.endsBy, 'maxSteps');
  assert.equal(small.expectedSteps, smallPreset.train.maxSteps);
  assert.ok(Math.abs(small.trainMs! - smallPreset.train.maxSteps * msPerStep) < 1000, `${small.trainMs} ms`);
  const tiny = byName(estimates, 'tiny');
  assert.equal(tiny.endsBy, 'maxSteps', 'tiny has no time budget');
  assert.ok(tiny.trainMs! < 10_000, `tiny trains in ${tiny.trainMs} ms`);
  const base = byName(estimates, 'base');
  assert.equal(base.meantForGpu, true);
  assert.equal(base.endsBy, 'maxMinutes', 'on a CPU its 30 minutes run out long before its steps');
  assert.ok(base.expectedSteps! < base.maxSteps / 5, `base reaches ${base.expectedSteps} of ${base.maxSteps} steps`);
  assert.equal(byName(estimates, 'tiny').meantForGpu, false);
});

test('a model trained here gives its preset speed, and scales the measurements of the others', () => {
  const small = byName(presets, 'small').measured!;
  const runs: TrainedRun[] = [
    { name: 'small-new', preset: 'small', createdAt: '2026-12-02T00:00:00Z', backend: small.backend, tokensPerSecond: small.tokensPerSecond / 2, fineTuned: false },
    { name: 'tuned', preset: 'tiny', createdAt: '2026-12-03T00:00:00Z', backend: small.backend, tokensPerSecond: 1e9, fineTuned: true },
  ];
  const backend = guessBackend('auto', runs, true);
  assert.deepEqual(backend, { device: 'cpu', name: small.backend, reason: `"small-new" was trained here on ${small.backend}` });
  const estimates = estimatePresets(presets, runs, backend);
  assert.deepEqual(byName(estimates, 'small').speed, { tokensPerSecond: Math.round(small.tokensPerSecond / 2), source: 'here', detail: `"small-new" trained here on ${small.backend}` });
  // This machine ran small at half its recorded speed: base's recording is halved too; the fine-tune counts for nothing.
  const base = byName(estimates, 'base');
  assert.equal(base.speed?.source, 'scaled');
  assert.equal(base.speed?.tokensPerSecond, Math.round(byName(presets, 'base').measured!.tokensPerSecond / 2));
  assert.equal(byName(estimates, 'tiny').speed?.source, 'scaled');
});

test('only a preset of a like size scales another\'s measurement: a fast tiny run says nothing of base', () => {
  const tiny = byName(presets, 'tiny').measured!;
  // As on a 2-core machine where tiny's fixed costs shrank: 5.6x its recorded speed.
  const runs: TrainedRun[] = [{ name: 'tiny-new', preset: 'tiny', createdAt: '2026-12-04T00:00:00Z', backend: tiny.backend, tokensPerSecond: tiny.tokensPerSecond * 5.6, fineTuned: false }];
  const estimates = estimatePresets(presets, runs, guessBackend('auto', runs, false));
  assert.equal(byName(estimates, 'small').speed?.source, 'scaled', 'small is 10x tiny');
  const base = byName(estimates, 'base');
  assert.deepEqual([base.speed?.source, base.speed?.tokensPerSecond], ['measured', byName(presets, 'base').measured!.tokensPerSecond], 'base is 100x tiny');
  assert.equal(base.endsBy, 'maxMinutes');
  // With small trained here too, base scales from small, the closer in size.
  const small = byName(presets, 'small').measured!;
  const both = [...runs, { name: 'small-new', preset: 'small', createdAt: '2026-12-04T01:00:00Z', backend: small.backend, tokensPerSecond: small.tokensPerSecond * 1.5, fineTuned: false }];
  const scaled = byName(estimatePresets(presets, both, guessBackend('auto', both, false)), 'base');
  assert.equal(scaled.speed?.tokensPerSecond, Math.round(byName(presets, 'base').measured!.tokensPerSecond * 1.5));
});

test('on a GPU a CPU recording says nothing; the backend setting decides the engine', () => {
  const gpu = guessBackend('webgpu', [], true);
  assert.equal(gpu.device, 'gpu');
  const estimates = estimatePresets(presets, [], gpu);
  assert.ok(estimates.every((e) => e.speed === null && e.trainMs === null));
  assert.equal(guessBackend('auto', [], true).device, 'unknown');
  assert.equal(guessBackend('wasm', [], true).device, 'cpu');
});
