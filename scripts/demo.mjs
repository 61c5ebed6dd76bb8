// The main job on a small default, for a newcomer, the way Train runs it: the bundled sample
// project served by the pre-trained base with no gradient step (what the editor completes with in
// the first minute), then the base fine-tuned on it as Train does: the preset's budget, cut to ten
// passes over the project's tokens (56 steps, under a minute on 2 cores).
// Each is evaluated against the n-gram baseline on the project's held-out files, and the
// fine-tuned model completes a line of a new file that uses the project's code.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';

const sample = 'test/fixtures/sample-project';
const baseOut = 'runs/demo-base';
const out = 'runs/demo';
const wlm = (...args) => {
  console.error(`\n$ wlm ${args.join(' ')}`);
  execFileSync(process.execPath, ['dist/cli.js', ...args], { stdio: 'inherit' });
};

// A file being written, cursor at the end of its last line: the project's queue used from outside.
const newFile = 'runs/demo-new-file/take.ts';
const typed = [
  "import { PriorityQueue } from '../../test/fixtures/sample-project/src/queue';",
  '',
  'export function takeSmallest<T>(queue: PriorityQueue<T>, n: number): T[] {',
  '  const out: T[] = [];',
  '  while (out.length < n && !queue.',
];
const target = process.env.WLM_DEMO_TARGET ?? `${newFile}:${typed.length}:${typed[typed.length - 1].length + 1}`;

for (const dir of [baseOut, out]) rmSync(dir, { recursive: true, force: true });
mkdirSync('runs/demo-new-file', { recursive: true });
writeFileSync(newFile, typed.join('\n') + '\n');
wlm('train', sample, '--minutes', '0', '--out', baseOut);
// --editor: what the editor serves (the GPT mixed with the workspace n-gram and the open-files cache).
wlm('eval', baseOut, '--editor');
wlm('train', sample, '--out', out);
wlm('eval', out, '--editor');
wlm('complete', out, target);
