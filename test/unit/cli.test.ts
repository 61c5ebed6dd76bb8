// The wlm command line as a user meets it: each bad input ends with a one-line error and a
// non-zero exit code; the main job (train → eval → complete) works on the sample project.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wlm, assertCleanError } from './cliRunner';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const sample = path.join(root, 'test', 'fixtures', 'sample-project');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'wlm-cli-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));



test('bad arguments: unknown command, unknown flag, bad preset, bad numbers', () => {
  assertCleanError(wlm('fly'), /unknown command "fly"/);
  assertCleanError(wlm('train', sample, '--colour', 'red'), /Unknown option '--colour'/);
  assertCleanError(wlm('train', sample, '--preset', 'huge'), /unknown preset "huge"; choose one of: tiny, small, base/);
  assertCleanError(wlm('train', sample, '--steps', '0'), /--steps must be a positive integer, got "0"/);
  assertCleanError(wlm('train', sample, '--minutes', 'soon'), /--minutes must be a positive number, got "soon"/);
  assertCleanError(wlm('train', sample, '--steps', '3', '--minutes', '1'), /--steps or --minutes, not both/);
  assertCleanError(wlm('train', sample, '--backend', 'quantum'), /unknown backend "quantum"/);
  assertCleanError(wlm('complete', sample, 'nofile'), /expected <file>:<line>:<col>/);
});

test('a missing folder, a file given as folder, an empty folder', () => {
  assertCleanError(wlm('train', path.join(scratch, 'nope')), /folder to train on not found: .*nope/);
  const file = path.join(scratch, 'a-file.ts');
  writeFileSync(file, 'export const a = 1;\n');
  assertCleanError(wlm('train', file), /is not a folder/);
  const empty = path.join(scratch, 'empty');
  mkdirSync(path.join(empty, 'node_modules'), { recursive: true });
  writeFileSync(path.join(empty, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]));
  assertCleanError(wlm('train', empty, '--preset', 'tiny', '--out', path.join(scratch, 'out-empty')), /no source files to train on in .*empty \(skipped: .*\)/);
  assert.equal(existsSync(path.join(scratch, 'out-empty', 'config.json')), false, 'no model folder is left behind');
});

test('a corrupt model folder is reported, never loaded', () => {
  const broken = path.join(scratch, 'broken-model');
  mkdirSync(broken, { recursive: true });
  writeFileSync(path.join(broken, 'config.json'), '{"formatVersion": 1, "kind": "workspace-lm-model"');
  for (const cmd of [['eval', broken], ['export', broken], ['complete', broken, `${path.join(sample, 'src', 'queue.ts')}:1:1`]]) {
    assertCleanError(wlm(...cmd), /corrupt model folder|config\.json/);
  }
  const notAModel = path.join(scratch, 'not-a-model');
  mkdirSync(notAModel);
  assertCleanError(wlm('eval', notAModel), /not-a-model/);
});

test('the main job: train a tiny model, refuse to overwrite it, evaluate, complete, export', () => {
  const out = path.join(scratch, 'tiny');
  const trained = wlm('train', sample, '--preset', 'tiny', '--steps', '30', '--out', out, '--json');
  assert.equal(trained.code, 0, trained.stderr);
  const events = trained.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const logs = events.filter((e) => e.type === 'log');
  assert.equal(logs.length, 30, 'one JSON line per logged step');
  assert.ok(events.some((e) => e.type === 'backend' && typeof e.device === 'string'), 'the backend and device are reported');
  const done = events.at(-1);
  assert.equal(done.type, 'done');
  assert.equal(done.step, 30);
  assert.ok(logs.at(-1).metrics.trainLoss < logs[0].metrics.trainLoss - 0.5, 'the loss falls');
  const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(config.preset, 'tiny');
  assert.ok(config.backend.name, 'the backend is stored in config.json');
  for (const f of ['tokenizer.json', 'model.json', 'weights.bin', 'model.onnx', 'metrics.jsonl']) assert.ok(existsSync(path.join(out, f)), f);

  assertCleanError(wlm('train', sample, '--preset', 'tiny', '--out', out), /already holds a model; pass --resume/);

  const evaluated = wlm('eval', out, '--json', '--lines', '20');
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const report = JSON.parse(evaluated.stdout);
  assert.ok(report.model.nextToken.loss > 0 && report.baseline.nextToken.loss > 0);
  // Bits per byte beside the loss: the loss over the bytes of the text the scored tokens spell out.
  const next = report.model.nextToken;
  assert.ok(next.bytes > 0 && Math.abs(next.bitsPerByte - (next.loss * next.tokens) / (Math.LN2 * next.bytes)) < 1e-6, JSON.stringify(next));
  assert.ok(existsSync(path.join(out, 'eval.json')));
  assert.equal(JSON.parse(readFileSync(path.join(out, 'eval.json'), 'utf8')).model.nextToken.bitsPerByte, next.bitsPerByte);

  const target = path.join(sample, 'src', 'queue.ts');
  const completed = wlm('complete', out, `${target}:12:5`, '--json');
  assert.equal(completed.code, 0, completed.stderr);
  const completion = JSON.parse(completed.stdout);
  assert.equal(typeof completion.text, 'string');
  assert.equal(completion.provider, 'cpu');
  assertCleanError(wlm('complete', out, `${target}:9999:1`), /line 9999 is outside/);

  const exported = wlm('export', out, '--quantize', '--json');
  assert.equal(exported.code, 0, exported.stderr);
  assert.ok(JSON.parse(exported.stdout).bytes > 0);
});

test('files a run left out (--exclude) stay out of its evaluation: the held-out split is the run\'s own', () => {
  const out = path.join(scratch, 'excluding');
  const trained = wlm('train', sample, '--preset', 'tiny', '--steps', '5', '--out', out, '--exclude', 'test/**', '--exclude', 'scripts/**', '--exclude', 'src/legacy/**');
  assert.equal(trained.code, 0, trained.stderr);
  const config = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.deepEqual(config.data.exclude, ['test/**', 'scripts/**', 'src/legacy/**']);
  const evaluated = wlm('eval', out, '--json', '--lines', '200');
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const report = JSON.parse(evaluated.stdout);
  assert.equal(report.data.valFiles, config.data.files.val, 'the held-out files are the run\'s');
  for (const example of report.examples) assert.ok(!/^(test|scripts|src\/legacy)\//.test(example.relPath), `an excluded file was evaluated: ${example.relPath}`);
});

test('every command answers --help with its usage, each of its flags explained, and exit 0', () => {
  const overview = wlm('--help');
  assert.equal(overview.code, 0);
  const commands = ['train', 'fine-tune', 'eval', 'complete', 'summarize', 'export', 'models', 'bench'];
  for (const command of commands) {
    assert.match(overview.stdout, new RegExp(`^  wlm ${command} `, 'm'), `${command} in the overview`);
    const help = wlm(command, '--help');
    assert.equal(help.code, 0, help.stderr);
    const usage = /^usage: (.*)$/m.exec(help.stdout)?.[1] ?? '';
    const flags = [...usage.matchAll(/\[--([a-z-]+)/g)].map((m) => m[1]);
    assert.ok(flags.includes('help'), `${command}: ${usage}`);
    // Each flag the usage line names has its own line of help below it.
    for (const flag of flags) assert.match(help.stdout, new RegExp(`^  --${flag}(?: \\S+)?\\s{2,}\\S`, 'm'), `${command} --${flag} explained`);
  }
  assertCleanError(wlm('fine-tune', sample), /missing folder to fine-tune on|model folder/);
});

test('fine-tune, models list / select / delete, and a completion piped without colour codes', () => {
  const modelsDir = path.join(scratch, 'models');
  const first = path.join(modelsDir, 'first');
  assert.equal(wlm('train', sample, '--preset', 'tiny', '--steps', '10', '--out', first).code, 0);

  assertCleanError(wlm('fine-tune', first, sample, '--scope', 'everything'), /--scope must be changed, folder or files/);
  assertCleanError(wlm('fine-tune', first, sample, '--scope', 'files'), /--scope files needs at least one --files/);
  assertCleanError(wlm('fine-tune', first, sample, '--freeze-layers', '9'), /--freeze-layers must be an integer from 0 to/);
  const tuned = path.join(modelsDir, 'tuned');
  const fineTuned = wlm('fine-tune', first, sample, '--scope', 'files', '--files', 'src/queue.ts', '--files', 'src/lru.ts', '--steps', '5', '--freeze-layers', '1', '--out', tuned, '--json');
  assert.equal(fineTuned.code, 0, fineTuned.stderr);
  const config = JSON.parse(readFileSync(path.join(tuned, 'config.json'), 'utf8'));
  assert.equal(config.parent, first, 'the fine-tuned model records its parent');
  assert.equal(config.step, 5);
  assert.equal(config.data.files.train + config.data.files.val, 2, 'trained on the two chosen files');

  const listed = wlm('models', 'list', '--dir', modelsDir, '--json');
  assert.equal(listed.code, 0, listed.stderr);
  const before = JSON.parse(listed.stdout);
  assert.deepEqual(before.models.map((m: { name: string; state: string }) => [m.name, m.state]), [['first', 'ready'], ['tuned', 'ready']]);
  assert.equal(before.active, null);
  assert.equal(wlm('models', 'select', 'tuned', '--dir', modelsDir).code, 0);
  assert.match(wlm('models', '--dir', modelsDir).stdout, /^\* tuned {2}ready/m, 'the list marks the selected model');
  assertCleanError(wlm('models', 'select', 'nothing', '--dir', modelsDir), /no model named "nothing"/);
  assertCleanError(wlm('models', 'select', '../escape', '--dir', modelsDir), /invalid model name/);
  assert.equal(wlm('models', 'delete', 'tuned', '--dir', modelsDir).code, 0);
  const after = JSON.parse(wlm('models', '--dir', modelsDir, '--json').stdout);
  assert.deepEqual(after.models.map((m: { name: string }) => m.name), ['first']);
  assert.equal(after.active, null, 'deleting the selected model leaves none selected');

  // stdout is a pipe here: the completion comes as plain text, no terminal colour codes.
  const completed = wlm('complete', first, `${path.join(sample, 'src', 'queue.ts')}:12:5`);
  assert.equal(completed.code, 0, completed.stderr);
  assert.doesNotMatch(completed.stdout, /\x1b\[/);
});
