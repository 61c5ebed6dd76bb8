// Fault suite, the command line (dist/cli.js, as installed): unknown commands and flags, missing
// and extra arguments, numbers that are not numbers, cursors outside their file, folders that are
// files, and forced backends that cannot load here. Each must end with one "wlm: " line naming
// what was wrong and a non-zero exit; a backend that cannot load is refused before any scanning
// and leaves no folder behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Rng, SEED, Tally, classifyCliFailure, copyModel, fixture, wlm, type Outcome } from './faultKit';

const tally = new Tally('cli');
const rng = new Rng(SEED * 17 + 11);
let tmp: string;
let model: string; // a good model: a train or fine-tune whose flags all pass still stops at "already holds a model"
let file: string;

before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-faults-cli-'));
  model = copyModel(path.join(tmp, 'models'), 'good');
  file = path.join(fixture, 'src', 'inventory.ts');
  writeFileSync(path.join(tmp, 'binary.ts'), Buffer.from([0, 1, 2, 255, 0, 7]));
  writeFileSync(path.join(tmp, 'notes.xyz'), 'function f() {}\n');
  mkdirSync(path.join(tmp, 'empty'));
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
  tally.finish();
});

/** Strings that are not what a numeric flag wants (and a few that Number() reads anyway: they may pass). */
const BAD_NUMBERS = ['0', '-1', '1.5', 'abc', '', ' ', 'NaN', 'Infinity', '-Infinity', '1e400', '9'.repeat(400), '--', '½', '٣'];
const ODD_NUMBERS = ['0x10', '1e2', ' 7 ']; // Number() reads them: a valid value, or a clear error

interface Case {
  label: string;
  args: string[];
  mayPass?: boolean; // a value the CLI may rightly accept: exit 0 is then a defined answer
}

function cases(): Case[] {
  const out: Case[] = [];
  const add = (label: string, args: string[], mayPass = false) => out.push({ label, args, mayPass });
  const train = ['train', fixture, '--preset', 'tiny', '--out', model];
  const fineTune = ['fine-tune', model, fixture, '--scope', 'folder', '--out', model];
  // Commands
  for (const name of ['trian', '--version', 'train;ls', 'ünïcødé', '\x1b[31mred']) add(`command ${JSON.stringify(name)}`, [name]);
  // Unknown flags and flags without their value, per command
  for (const [command, rest] of [['train', [fixture]], ['fine-tune', [model, fixture]], ['eval', [model]], ['complete', [model, `${file}:1:1`]], ['summarize', [model, `${file}:1`]], ['export', [model]], ['models', ['list']], ['bench', []]] as const) {
    const flag = rng.pick(['--nope', '-z', '--STEPS', '---steps=3']);
    add(`${command} ${flag}`, [command, ...rest, flag]);
  }
  for (const flag of ['--steps', '--minutes', '--preset', '--out', '--backend', '--exclude', '--summary-rate', '--fim-rate'].filter(() => rng.next() < 0.5)) add(`train ${flag} without its value`, [...train.slice(0, 2), flag]);
  // Numbers that are not
  const numeric: [string, string[], string][] = [
    ['train', train, '--steps'], ['train', train, '--minutes'], ['train', train, '--summary-rate'], ['train', train, '--fim-rate'],
    ['fine-tune', fineTune, '--steps'], ['fine-tune', fineTune, '--freeze-layers'], ['fine-tune', fineTune, '--learning-rate'],
    ['eval', ['eval', model], '--lines'], ['complete', ['complete', model, `${file}:3:1`], '--max-tokens'], ['summarize', ['summarize', model, `${file}:1`], '--max-tokens'],
  ];
  for (const [command, args, flag] of numeric) {
    // A seeded fifth of the bad numbers per flag: each is tried on some flag or other.
    const values = BAD_NUMBERS.filter(() => rng.next() < 0.2);
    for (const v of values) add(`${command} ${flag} ${JSON.stringify(v).slice(0, 20)}`, [...args, `${flag}=${v}`]);
    const odd = rng.pick(ODD_NUMBERS);
    add(`${command} ${flag} ${JSON.stringify(odd)}`, [...args, `${flag}=${odd}`], true);
  }
  // Words that are not in their list
  for (const v of ['huge', '', 'tiny ']) add(`train --preset ${JSON.stringify(v)}`, [...train.slice(0, 2), '--preset', v, '--out', model]);
  for (const v of ['gpu', '', 'WASM']) add(`train --backend ${JSON.stringify(v)}`, [...train, '--backend', v]);
  for (const v of ['everything', '', 'files']) add(`fine-tune --scope ${JSON.stringify(v)}`, ['fine-tune', model, fixture, '--scope', v, '--out', model]);
  add('train --steps and --minutes', [...train, '--steps', '5', '--minutes', '1']);
  add('export --dynamic without --quantize', ['export', model, '--dynamic']);
  // Arguments: missing, extra, not there, not a folder
  add('train without a folder', ['train']);
  add('train a folder that is not there', ['train', path.join(tmp, 'nowhere')]);
  add('train a file', ['train', file]);
  add('train an empty folder', ['train', path.join(tmp, 'empty'), '--preset', 'tiny', '--out', path.join(tmp, 'out-empty')]);
  add('train two folders', ['train', fixture, fixture]);
  add('fine-tune a folder that is not a model', ['fine-tune', fixture, fixture, '--out', path.join(tmp, 'ft')]);
  add('fine-tune without a folder', ['fine-tune', model]);
  add('eval a folder that is not a model', ['eval', fixture]);
  add('eval on a folder that is not there', ['eval', model, path.join(tmp, 'nowhere')]);
  add('export a folder that is not there', ['export', path.join(tmp, 'nowhere')]);
  // Cursors
  for (const spec of ['inventory.ts', `${file}:0:0`, `${file}:-1:2`, `${file}:99999:1`, `${file}:1:99999`, `${file}:1`, `${file}:a:b`, `${path.join(tmp, 'nowhere.ts')}:1:1`, `${tmp}:1:1`, `${path.join(tmp, 'binary.ts')}:1:1`, '']) {
    // A binary file is text to complete like any other, if the user asks: completing there may pass.
    add(`complete at ${JSON.stringify(spec.replace(tmp, '<tmp>').replace(fixture, '<fixture>'))}`, ['complete', model, spec], spec.includes('binary'));
  }
  for (const spec of [`${file}:0`, `${file}:99999`, `${path.join(tmp, 'notes.xyz')}:1`, `${path.join(tmp, 'nowhere.ts')}:3`, `${file}:x`]) {
    add(`summarize at ${JSON.stringify(spec.replace(tmp, '<tmp>').replace(fixture, '<fixture>'))}`, ['summarize', model, spec]);
  }
  add('complete with a model that is not there', ['complete', path.join(tmp, 'nowhere'), `${file}:1:1`]);
  // The models command
  const dir = path.dirname(model);
  for (const args of [['select'], ['select', '../etc'], ['select', 'nope'], ['delete', 'nope'], ['delete', '.'], ['list', 'extra'], ['explode'], ['select', 'good', 'extra']]) add(`models ${args.join(' ')}`, ['models', ...args, '--dir', dir]);
  add('models --dir a file', ['models', 'list', '--dir', file]);
  add('bench with an argument', ['bench', 'now']);
  return out;
}

test('bad command lines: one "wlm: " line naming what was wrong, a non-zero exit, no stack', { timeout: 300_000 }, async () => {
  // Two at a time: each is mostly a process starting.
  const queue = cases();
  const worker = async () => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const { label, args, mayPass } = c;
      await tally.probe('cli', label, async (): Promise<Outcome> => {
        const r = await wlm(args, { timeoutMs: 60_000 });
        if (r.code === 0 && mayPass) return { kind: 'defined', what: 'a value the CLI reads as valid: accepted' };
        return classifyCliFailure(r);
      }, 70_000);
    }
  };
  await Promise.all([worker(), worker()]);
});

test('a forced backend that cannot load is refused before any scanning, with the reason, and leaves no folder', { timeout: 120_000 }, async () => {
  const outcomes: string[] = [];
  for (const backend of ['webgpu', 'tfjs-node-gpu']) {
    for (const command of ['train', 'fine-tune'] as const) {
      const out = path.join(tmp, `refused-${command}-${backend}`);
      const args = command === 'train' ? ['train', fixture, '--preset', 'tiny', '--steps', '2', '--backend', backend, '--out', out] : ['fine-tune', model, fixture, '--scope', 'folder', '--steps', '2', '--backend', backend, '--out', out];
      const outcome = await tally.probe('cli --backend', `${command} --backend ${backend}`, async (): Promise<Outcome> => {
        const r = await wlm(args, { timeoutMs: 60_000 });
        if (r.code === 0 || /^step \d+/m.test(r.stderr)) {
          rmSync(out, { recursive: true, force: true });
          return { kind: 'skip', reason: `the ${backend} backend loads on this machine: nothing to refuse` };
        }
        const outcome = classifyCliFailure(r);
        if (outcome.kind !== 'error') return outcome;
        if (!outcome.message.includes(backend)) return { kind: 'crash', detail: `the refusal does not name the backend: ${outcome.message}` };
        if (/scanning|tokeniz/.test(r.stderr)) return { kind: 'crash', detail: `refused only after scanning: ${r.stderr.slice(0, 300)}` };
        if (existsSync(out)) return { kind: 'crash', detail: `left ${out} behind` };
        return outcome;
      }, 70_000);
      outcomes.push(`${command} --backend ${backend}: ${outcome.kind}${outcome.kind === 'crash' ? ` (${outcome.detail})` : ''}`);
    }
  }
  // Each forced backend is refused with its reason, or (where it does load) skipped with that reason.
  const bad = outcomes.filter((line) => !/: (error|skip)$/.test(line));
  assert.deepEqual(bad, []);
  assert.ok(outcomes.some((line) => line.endsWith(': error')), `no backend was refused on this machine: ${outcomes.join('; ')}`);
});
