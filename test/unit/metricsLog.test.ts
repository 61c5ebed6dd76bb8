// Tests of the metrics.jsonl reader (models/src/train/metricsLog.ts) on a recorded run
// (test/fixtures/panel/metrics.jsonl): one record per step, a torn last line counted and not
// thrown, a resumed run's redone steps replacing the old ones, and records checked field by field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { appendMetrics, readMetricsLog, toStepMetrics, type StepMetrics } from '../../models/src/train/metricsLog';

const recorded = readFileSync(path.join(__dirname, '..', 'fixtures', 'panel', 'metrics.jsonl'), 'utf8');
const RECORDED_STEPS = 60; // lines in the file

const record = (step: number, trainLoss: number): StepMetrics => ({ step, tokens: step * 10, trainLoss, lr: 1e-3, gradNorm: 1, tokensPerSecond: 100, elapsedMs: step * 100 });

test('the recorded run reads as one record per step, validation every 20, each line as written', () => {
  const { metrics, badLines } = readMetricsLog(recorded);
  assert.equal(metrics.length, RECORDED_STEPS);
  assert.equal(badLines, 0);
  assert.deepEqual(metrics.filter((m) => m.valLoss !== undefined).map((m) => m.step), [20, 40, 60]);
  assert.equal(metrics[0].step, 1);
  assert.ok(metrics[59].trainLoss < metrics[0].trainLoss - 1, 'the recorded loss falls by more than 1 nat');
  // Written back (train.ts cuts the log this way on resume), each record is the line it came from.
  assert.deepEqual(metrics.map((m) => JSON.stringify(m)), recorded.trimEnd().split('\n'));
});

test('a half-written last line and junk are counted, not thrown', () => {
  const lines = recorded.trimEnd().split('\n');
  const torn = [...lines.slice(0, 10), '{"step":11,"tokens":56', 'not json', '{"step":"12"}', '', '   '].join('\n');
  const { metrics, badLines } = readMetricsLog(torn);
  assert.equal(metrics.length, 10);
  assert.equal(badLines, 3, 'blank lines are not bad lines');
  assert.deepEqual(readMetricsLog(''), { metrics: [], badLines: 0 });
});

test('a resumed run replaces the steps it redoes, in the file and in a live series', () => {
  const log = [1, 2, 3, 4, 5].map((s) => record(s, 9 - s));
  const resumed = [record(4, 1), record(5, 0.5), record(6, 0.25)];
  const fromFile = readMetricsLog([...log, ...resumed].map((r) => JSON.stringify(r)).join('\n') + '\n').metrics;
  assert.deepEqual(fromFile.map((m) => [m.step, m.trainLoss]), [[1, 8], [2, 7], [3, 6], [4, 1], [5, 0.5], [6, 0.25]]);
  assert.deepEqual(appendMetrics(log, resumed), fromFile);
  assert.equal(log.length, 5, 'the input series is not modified');
});

test('a record needs a finite step and train loss; other figures missing read as 0', () => {
  assert.equal(toStepMetrics({ step: 2 }), undefined);
  assert.equal(toStepMetrics({ step: 'x', trainLoss: 1 }), undefined);
  assert.equal(toStepMetrics(null), undefined);
  assert.deepEqual(toStepMetrics({ step: 3, trainLoss: 2.5, valLoss: null, extra: 'dropped' }), { step: 3, tokens: 0, trainLoss: 2.5, lr: 0, gradNorm: 0, tokensPerSecond: 0, elapsedMs: 0 });
});
