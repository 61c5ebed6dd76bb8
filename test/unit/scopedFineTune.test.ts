// A fine-tune scoped to a few files keeps the whole workspace in what the editor serves: the GPT
// learns from the scope (scope-*.bin in the run cache) while the completion mixture's n-gram counts
// the whole workspace's training split again and its weights are fitted on the workspace's held-out
// files (train.bin, val.bin); the token files go when the run ends. The editor's next-token figures on held-out files, measured by
// evaluateFolder as `wlm eval --editor` does, must not drop after such a fine-tune (they fell from
// 59.9% to 30.8% top-1 on rxjs when the n-gram was rebuilt from the scope alone).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { trainOnFolder } from '../../models/src/pipeline';
import { evaluateFolder } from '../../models/src/eval/evaluateFolder';
import { NGramModel } from '../../models/src/infer/ngram';
import { readModelConfig } from '../../models/src/model/checkpoint';
import { runCacheDir } from '../../models/src/model/runCache';
import type { NextTokenScores } from '../../models/src/eval/report';
import { sampleProject } from './baseStandIn';

const SCOPE = ['src/queue.ts', 'src/lru.ts'];

let tmp = '';
let parent = '';
let editorBefore: NextTokenScores;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-scoped-'));
  parent = path.join(tmp, 'parent');
  await trainOnFolder({ folder: sampleProject, outDir: parent, preset: 'tiny', steps: 60 });
  editorBefore = (await evaluateFolder({ modelDir: parent, system: 'editor', lines: 10 })).model.nextToken;
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test('a fine-tune on two files: the GPT learns from them, the n-gram counts the whole workspace, and the editor does not get worse', async () => {
  const tuned = path.join(tmp, 'tuned');
  const { config } = await trainOnFolder({ folder: sampleProject, outDir: tuned, init: parent, files: SCOPE, steps: 10 });
  assert.equal(config.parent, parent);
  assert.deepEqual(config.data.files, { train: 1, val: 1 }, 'the GPT learnt from the two files of the scope');
  const workspace = config.data.workspace!;
  assert.deepEqual(workspace.files, (await readModelConfig(parent)).data.files, "the n-gram's files: the same workspace split as the parent's");
  assert.ok(!existsSync(path.join(tuned, 'data')) && !existsSync(runCacheDir(tuned)), 'no token files left, in the folder or beside it');
  const ngram = await NGramModel.load(path.join(tuned, 'ngram.bin'));
  assert.equal(ngram.trainedTokens, workspace.tokens.train, 'the n-gram counted the whole workspace\'s training split, not the scope');

  const editorAfter = (await evaluateFolder({ modelDir: tuned, system: 'editor', lines: 10 })).model.nextToken;
  assert.equal(editorAfter.tokens, editorBefore.tokens, 'the same held-out predictions');
  // Ten steps on two files move the GPT a little; the mixture around it stays the workspace's.
  assert.ok(editorAfter.top1! >= editorBefore.top1! - 0.01, `editor top-1 ${editorBefore.top1} → ${editorAfter.top1}`);
  assert.ok(editorAfter.loss! <= editorBefore.loss! + 0.05, `editor loss ${editorBefore.loss} → ${editorAfter.loss}`);
});
