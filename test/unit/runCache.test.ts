// A model folder holds no training data (models/src/model/runCache.ts): a completed run leaves no
// token files and no resume state, in the folder or beside it; a cancelled run keeps its resume
// state in the cache beside the models folder, is listed as resumable and resumes to the end; a
// finished run is not "resumed" from scratch; an older model folder with data/ and resume/ inside
// still lists, serves and resumes, and ends clean.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { trainOnFolder } from '../../models/src/pipeline';
import { readModelConfig } from '../../models/src/model/checkpoint';
import { ModelStore } from '../../models/src/model/store';
import { RUN_CACHE_FOLDER, existingTokenFile, runCacheDir } from '../../models/src/model/runCache';
import { CompletionSession } from '../../models/src/infer/session';
import { CodeTokenizer } from '../../models/src/data/tokenizer';
import { scanFolder } from '../../models/src/data/files';
import { splitFiles, tokenizeFiles } from '../../models/src/data/dataset';
import { sampleProject } from './baseStandIn';

const STEPS = 30;
let tmp = '';
let modelsDir = '';
let store: ModelStore;

before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-run-cache-'));
  modelsDir = path.join(tmp, 'models');
  store = new ModelStore(modelsDir);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Every file under `dir`, relative to it. */
const filesIn = (dir: string): string[] => readdirSync(dir, { recursive: true }).map(String).sort();

/** A tiny run cancelled after step `at` (its last checkpoint is saved there). */
async function cancelledRun(name: string, at = 22): Promise<string> {
  const outDir = path.join(modelsDir, name);
  const controller = new AbortController();
  const { result } = await trainOnFolder({
    folder: sampleProject, outDir, preset: 'tiny', steps: STEPS, signal: controller.signal,
    onEvent: (e) => e.type === 'log' && e.metrics.step >= at && controller.abort(),
  });
  assert.equal(result.stopReason, 'cancelled');
  return outDir;
}

test('a completed run leaves no token files and no resume state, in the model folder or beside it', async () => {
  const outDir = path.join(modelsDir, 'done');
  const { result } = await trainOnFolder({ folder: sampleProject, outDir, preset: 'tiny', steps: STEPS });
  assert.equal(result.stopReason, 'maxSteps');
  const files = filesIn(outDir);
  assert.deepEqual(files.filter((f) => f.endsWith('.bin')), ['ngram.bin', 'weights.bin'], files.join(', '));
  assert.ok(!files.some((f) => f === 'data' || f.startsWith('resume')), files.join(', '));
  assert.equal(existsSync(runCacheDir(outDir)), false, 'the run cache is gone');
  assert.equal(existsSync(path.join(modelsDir, RUN_CACHE_FOLDER)), false, 'and the cache folder with it');
  assert.equal((await store.describe('done', null, null)).state, 'ready');
  // Nothing to resume: "resuming" must not start it again from scratch over the model.
  await assert.rejects(trainOnFolder({ folder: sampleProject, outDir, resume: true }), /holds a finished run \(maxSteps at step 30\): there is nothing to resume/);
});

test('a cancelled run keeps its resume state beside the models, is listed resumable, and resumes to the end', async () => {
  const outDir = await cancelledRun('stopped');
  const cache = runCacheDir(outDir);
  assert.equal(cache, path.join(modelsDir, RUN_CACHE_FOLDER, 'stopped'));
  assert.ok(!filesIn(outDir).some((f) => f === 'data' || f.startsWith('resume')), 'no training data in the model folder');
  assert.ok(existsSync(path.join(cache, 'resume', 'state.json')), 'the resume state is in the cache');
  assert.deepEqual(readdirSync(cache).filter((f) => f.endsWith('.bin')), [], 'the token files are gone: a resume tokenizes again');
  const info = await store.describe('stopped', null, null);
  assert.deepEqual([info.state, info.resumable], ['incomplete', true]);
  assert.match(info.reason ?? '', /stopped: cancelled at step 22.*can continue where it stopped \(wlm train --resume\)/);

  const { result } = await trainOnFolder({ folder: sampleProject, outDir, resume: true });
  assert.deepEqual([result.step, result.stopReason], [STEPS, 'maxSteps']);
  assert.equal(existsSync(cache), false, 'complete: the resume state is gone');
  assert.equal((await store.describe('stopped', null, null)).state, 'ready');
});

test('an older model folder with data/ and resume/ inside still lists, serves and resumes; complete, it holds neither', async () => {
  const outDir = await cancelledRun('older');
  // The layout before the run cache: the resume state and the token files inside the model folder.
  renameSync(path.join(runCacheDir(outDir), 'resume'), path.join(outDir, 'resume'));
  rmSync(path.join(modelsDir, RUN_CACHE_FOLDER), { recursive: true, force: true });
  const config = await readModelConfig(outDir);
  const tokenizer = await CodeTokenizer.load(path.join(outDir, 'tokenizer.json'));
  const split = splitFiles((await scanFolder(sampleProject)).files, config.train.valFraction, config.train.seed);
  await tokenizeFiles(split.train, tokenizer, path.join(outDir, 'data', 'train.bin'));
  await tokenizeFiles(split.val, tokenizer, path.join(outDir, 'data', 'val.bin'));

  const info = await store.describe('older', null, null);
  assert.deepEqual([info.state, info.resumable], ['incomplete', true]);
  assert.equal(existingTokenFile(outDir, 'train.bin'), path.join(outDir, 'data', 'train.bin'), 'the old token files are read where they are');
  // Selected as it is, it serves its last checkpoint, mixed with an n-gram counted on the old token files.
  await CompletionSession.buildMixture(outDir);
  const session = await CompletionSession.open(outDir);
  try {
    assert.ok(session.mixture, 'the mixture built from data/ loads');
    const completion = await session.complete({ prefix: 'export function ', suffix: '', mode: 'line', maxTokens: 4 });
    assert.equal(typeof completion.text, 'string');
  } finally {
    await session.close();
  }

  const { result } = await trainOnFolder({ folder: sampleProject, outDir, resume: true });
  assert.deepEqual([result.step, result.stopReason], [STEPS, 'maxSteps'], 'resumed from resume/ inside the folder');
  assert.ok(!filesIn(outDir).some((f) => f === 'data' || f.startsWith('resume')), `complete, the folder holds no training data: ${filesIn(outDir).join(', ')}`);
  assert.equal((await store.describe('older', null, null)).state, 'ready');
});
