// The main job on a small default, for a newcomer: train a tiny model on the bundled sample
// project, evaluate it against the n-gram baseline, and complete a line.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const sample = 'test/fixtures/sample-project';
const out = 'runs/demo';
const target = process.env.WLM_DEMO_TARGET ?? `${sample}/src/queue.ts:12:5`;
const wlm = (...args) => {
  console.error(`\n$ wlm ${args.join(' ')}`);
  execFileSync(process.execPath, ['dist/cli.js', ...args], { stdio: 'inherit' });
};

rmSync(out, { recursive: true, force: true });
wlm('train', sample, '--preset', 'tiny', '--steps', '400', '--out', out);
// --editor: what the editor serves (the GPT mixed with the workspace n-gram and the open-files cache).
wlm('eval', out, '--editor');
wlm('complete', out, target);
