// Fault suite, kill -9: train, fine-tune, export and evaluate are killed at seeded random moments.
// A moment is the k-th progress event of the run (`--json` prints one per phase and per step) plus
// a few milliseconds, so the kills land in every phase: scanning, tokenizing, training, the
// checkpoint, the export, the mixture. Afterwards each model folder either serves (opened as the
// server opens it, then a completion) or is listed as incomplete by the store and `wlm train
// --resume` takes it to the end; the active model, chosen before, still loads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { ModelStore } from '../../models/src/model/store';
import { readModelConfig } from '../../models/src/model/checkpoint';
import { Rng, SEED, Tally, TINY_ARGS, cliJs, modelsWithActive, TINY_STEPS, fixture, repoRoot, serves, wlm, type Outcome } from './faultKit';

const tally = new Tally('kills');
const rng = new Rng(SEED * 31 + 5);
const MOMENTS = Number(process.env.WLM_FAULTS_KILLS ?? 10);
let tmp: string;
let modelsDir: string;
let store: ModelStore;
const ACTIVE = 'active-good';

before(async () => {
  ({ tmp, modelsDir, store } = await modelsWithActive('wlm-faults-kills-', ACTIVE));
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
  tally.finish();
});

/** Runs `wlm args` and kills it with SIGKILL after its `event`-th JSON line plus `extraMs`. */
function killAt(args: string[], event: number, extraMs: number): Promise<{ killed: boolean; phase: string; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliJs, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = 0;
    let phase = 'start';
    let killed = false;
    let stderr = '';
    let pending = '';
    const kill = () => {
      if (child.exitCode !== null || killed) return;
      killed = child.kill('SIGKILL');
    };
    if (event === 0) setTimeout(kill, extraMs);
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          const e = JSON.parse(line) as { type?: string; message?: string; metrics?: { step: number } };
          phase = e.type === 'log' ? `step ${e.metrics?.step}` : e.type === 'status' ? `${e.message}`.slice(0, 40) : String(e.type);
        } catch {
          continue; // eval and export print one JSON document at the end
        }
        if (++seen === event) setTimeout(kill, extraMs);
      }
    });
    child.on('close', (code) => resolve({ killed, phase, code, stderr }));
  });
}

/** After a kill: the folder serves, or is incomplete and resumes to the end; nothing else. */
async function judge(name: string, again: { resume: string[]; rerun: string[] }): Promise<Outcome> {
  const dir = path.join(modelsDir, name);
  if (!existsSync(dir)) return { kind: 'defined', what: 'killed before it wrote anything: no folder left' };
  const info = await store.describe(name, null, ACTIVE);
  if (info.state === 'ready') {
    const problem = await serves(dir);
    return problem ? { kind: 'crash', detail: `listed ready but ${problem}` } : { kind: 'defined', what: 'ready and serves' };
  }
  if (info.state !== 'incomplete') return { kind: 'crash', detail: `listed ${info.state}: ${info.reason}` };
  // Killed before config.json: the same command again (the store says so); after it: --resume.
  const resumed = await wlm(existsSync(path.join(dir, 'config.json')) ? again.resume : again.rerun, { timeoutMs: 120_000 });
  if (resumed.code !== 0) return { kind: 'crash', detail: `listed incomplete (${info.reason}) but --resume failed: ${resumed.stderr.slice(-400)}` };
  const config = await readModelConfig(dir);
  if (config.step !== TINY_STEPS) return { kind: 'crash', detail: `resumed to step ${config.step}, not ${TINY_STEPS}` };
  const after = await store.describe(name, null, ACTIVE);
  if (after.state !== 'ready') return { kind: 'crash', detail: `resumed, then listed ${after.state}: ${after.reason}` };
  const problem = await serves(dir);
  return problem ? { kind: 'crash', detail: `resumed but ${problem}` } : { kind: 'defined', what: `incomplete (${info.reason}), resumed to step ${TINY_STEPS}, serves` };
}

interface Plan {
  what: 'train' | 'fine-tune' | 'export' | 'eval';
  args: (name: string) => string[];
  before: number; // JSON lines before the first step (backend, scan, tokenizer, tokenizing); 0: it prints none until it ends
}

const trainArgs = ['train', fixture, ...TINY_ARGS];
const PLANS: Record<Plan['what'], Plan> = {
  train: { what: 'train', args: (name) => [...trainArgs, '--out', path.join(modelsDir, name), '--json'], before: 7 },
  'fine-tune': { what: 'fine-tune', args: (name) => ['fine-tune', path.join(modelsDir, ACTIVE), fixture, '--scope', 'folder', '--steps', String(TINY_STEPS), '--out', path.join(modelsDir, name), '--json'], before: 5 },
  export: { what: 'export', args: () => ['export', path.join(modelsDir, ACTIVE), '--json'], before: 0 },
  eval: { what: 'eval', args: () => ['eval', path.join(modelsDir, ACTIVE), '--lines', '20', '--json'], before: 0 },
};

/** Which runs are killed: mostly training (the long one), then a fine-tune, an export and an evaluation. */
function schedule(count: number): Plan[] {
  const order: Plan['what'][] = ['train', 'train', 'fine-tune', 'train', 'export', 'train', 'eval', 'train', 'fine-tune', 'train'];
  return Array.from({ length: count }, (_, i) => PLANS[order[i % order.length]]);
}

test(`kill -9 at ${MOMENTS} seeded moments: every folder serves or resumes; the active model still loads`, { timeout: 600_000 }, async () => {
  for (const [i, plan] of schedule(MOMENTS).entries()) {
    const name = `${plan.what}-killed-${i}`;
    // A phase first (training, before it, the export and the mixture, in turn), then a seeded
    // `--json` line in it, so that the short phases are hit as often as the long one.
    const b = plan.before;
    const phases = [[b + 1, b + TINY_STEPS], [1, b], [b + TINY_STEPS + 1, b + TINY_STEPS + 2]] as const; // training, before it, export and mixture: in turn
    const [from, to] = phases[i % phases.length];
    const event = b > 0 ? rng.int(from, to) : 0;
    // Export and evaluation print nothing until they end: their moment is a time within their usual length (measured here).
    const extraMs = b > 0 ? rng.int(0, 150) : plan.what === 'export' ? rng.int(150, 300) : rng.int(300, 1300); // past node's start-up (~150 ms)
    tally.data.kills.tried++;
    const run = await killAt(plan.args(name), event, extraMs);
    const moment = `${plan.what} #${i}: event ${event} + ${extraMs} ms (${run.killed ? `killed in "${run.phase}"` : `ended first, exit ${run.code}`})`;
    const outcome = await tally.probe('kill -9', moment, async () => {
      if (!run.killed && run.code !== 0) return { kind: 'crash', detail: `the run failed by itself: ${run.stderr.slice(-300)}` };
      if (plan.what === 'export' || plan.what === 'eval') {
        const problem = await serves(path.join(modelsDir, ACTIVE));
        return problem ? { kind: 'crash', detail: `the model under ${plan.what} ${problem}` } : { kind: 'defined', what: `the model still serves after its ${plan.what} was killed` };
      }
      // A fine-tune resumes with `wlm train --resume` (its config.json records its parent); killed
      // before it wrote that, it is run again as it was. `wlm train --resume` starts such a train afresh.
      const dir = path.join(modelsDir, name);
      const resume = plan.what === 'train' ? [...trainArgs, '--out', dir, '--resume'] : ['train', fixture, '--out', dir, '--resume'];
      return judge(name, { resume, rerun: plan.what === 'train' ? resume : plan.args(name).filter((a) => a !== '--json') });
    }, 180_000);
    if (outcome.kind !== 'crash' && run.killed) tally.data.kills.survived++;
    tally.data.kills.detail.push(`${moment}: ${outcome.kind === 'crash' ? outcome.detail : outcome.kind === 'defined' ? outcome.what : ''}`);
  }
  // The active model never changed and never stopped loading.
  assert.equal(await store.readActive(), ACTIVE);
  assert.equal(await serves(path.join(modelsDir, ACTIVE)), null, 'the active model still serves');
  const { models } = await store.list(null);
  const bad = models.filter((m) => m.state !== 'ready');
  assert.deepEqual(bad.map((m) => `${m.name}: ${m.state} ${m.reason}`), [], 'every folder ends ready');
});
