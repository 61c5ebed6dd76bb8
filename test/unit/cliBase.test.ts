// `wlm train` and the base model, as a user's shell meets them ($WLM_BASE_MODEL naming a tiny
// stand-in): --minutes 0 makes a serving folder without a gradient step that `wlm complete` uses,
// training starts from the base unless --from-scratch, and bad combinations end in one clear line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BASE_MODEL_ENV } from '../../models/src/model/base';
import { wlm, assertCleanError } from './cliRunner';
import { makeStandInBase, sampleProject } from './baseStandIn';

let tmp = '';
let base = '';
const savedEnv = process.env[BASE_MODEL_ENV];

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-cli-base-'));
  base = await makeStandInBase(path.join(tmp, 'base'));
  process.env[BASE_MODEL_ENV] = base; // cliRunner passes the environment on
});
after(() => {
  if (savedEnv === undefined) delete process.env[BASE_MODEL_ENV];
  else process.env[BASE_MODEL_ENV] = savedEnv;
  rmSync(tmp, { recursive: true, force: true });
});

test('wlm train --minutes 0: the base as it is with the folder\'s n-gram, no gradient step, and it completes', () => {
  const out = path.join(tmp, 'served');
  const made = wlm('train', sampleProject, '--minutes', '0', '--out', out, '--json');
  assert.equal(made.code, 0, made.stderr);
  const events = made.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(events.filter((e) => e.type === 'log').length, 0, 'no training step logged');
  assert.ok(events.some((e) => e.type === 'status' && e.message.startsWith('serving the pre-trained base as it is')), 'it says where the weights come from');
  assert.deepEqual(events.at(-1), { type: 'done', modelDir: out, step: 0, bestValLoss: null, stopReason: 'noTraining' });
  assert.deepEqual(readFileSync(path.join(out, 'weights.bin')), readFileSync(path.join(base, 'weights.bin')));
  const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(config.parent, base);
  for (const file of ['model.onnx', 'ngram.bin', 'mixture.json']) assert.ok(existsSync(path.join(out, file)), file);

  const completed = wlm('complete', out, `${path.join(sampleProject, 'src', 'queue.ts')}:12:5`, '--json');
  assert.equal(completed.code, 0, completed.stderr);
  const completion = JSON.parse(completed.stdout);
  assert.equal(typeof completion.text, 'string');
  assert.equal(completion.mixed, true, 'served with the workspace n-gram and the cache');
});

test('wlm train starts from the base; --from-scratch does not', () => {
  const fromBase = path.join(tmp, 'from-base');
  assert.equal(wlm('train', sampleProject, '--preset', 'tiny', '--steps', '2', '--out', fromBase).code, 0);
  assert.equal(JSON.parse(readFileSync(path.join(fromBase, 'config.json'), 'utf8')).start.from, 'base');
  const scratch = path.join(tmp, 'scratch');
  const trained = wlm('train', sampleProject, '--preset', 'tiny', '--steps', '2', '--from-scratch', '--out', scratch);
  assert.equal(trained.code, 0, trained.stderr);
  const config = JSON.parse(readFileSync(path.join(scratch, 'config.json'), 'utf8'));
  assert.deepEqual([config.start.from, config.start.reason, config.parent], ['scratch', 'asked for', undefined]);
});

test('--minutes 0 with --from-scratch or --resume, a negative budget, or no base: one clear error line', () => {
  assertCleanError(wlm('train', sampleProject, '--minutes', '0', '--from-scratch', '--out', path.join(tmp, 'x1')), /--minutes 0 serves the pre-trained base as it is; it does not go with --from-scratch/);
  assertCleanError(wlm('train', sampleProject, '--minutes=-1'), /--minutes must be a positive number, got "-1"/);
  process.env[BASE_MODEL_ENV] = path.join(tmp, 'no-such-base');
  try {
    assertCleanError(wlm('train', sampleProject, '--minutes', '0', '--out', path.join(tmp, 'x2')), /no base model to serve without training \(none at .*no-such-base\)/);
  } finally {
    process.env[BASE_MODEL_ENV] = base;
  }
  assert.equal(existsSync(path.join(tmp, 'x2')), false, 'nothing left behind');
});
