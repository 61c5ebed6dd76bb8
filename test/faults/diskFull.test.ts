// Fault suite, a disk that fills up: ENOSPC at a checkpoint of a training run, at an ONNX export,
// and at the write that chooses the active model. Raised by atomicFiles.ts's test hook half-way
// through the write (in this process), and, where a tmpfs can be mounted (root), for real: an
// export into a nearly full 4 MB tmpfs from the CLI. Each time: a clear error, no temporary file
// left, and the model that served before still serves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { injectWriteFault } from '../../models/src/util/atomicFiles';
import { trainOnFolder } from '../../models/src/pipeline';
import { exportOnnx } from '../../models/src/model/onnx';
import { ModelStore } from '../../models/src/model/store';
import { readModelConfig } from '../../models/src/model/checkpoint';
import { runCacheDir } from '../../models/src/model/runCache';
import { CompletionSession } from '../../models/src/infer/session';
import { Tally, classifyCliFailure, modelsWithActive, TINY_STEPS, fixture, unclear, wlmSync, type Outcome } from './faultKit';

const tally = new Tally('diskFull');
let tmp: string;
let modelsDir: string;
let store: ModelStore;
const PREV = 'prev';

before(async () => {
  ({ tmp, modelsDir, store } = await modelsWithActive('wlm-faults-disk-', PREV));
});

after(() => {
  injectWriteFault(null);
  rmSync(tmp, { recursive: true, force: true });
  tally.finish();
});

function enospc(file: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`ENOSPC: no space left on device, write '${file}'`);
  err.code = 'ENOSPC';
  return err;
}

/** The n-th write to a file whose path ends with `suffix` fails with ENOSPC. */
function failNthWrite(suffix: string, n: number): void {
  let seen = 0;
  injectWriteFault((file) => (file.endsWith(suffix) && ++seen === n ? enospc(file) : null));
}

async function serves(dir: string): Promise<string | null> {
  try {
    const session = await CompletionSession.open(dir);
    try {
      const text = readFileSync(path.join(fixture, 'src', 'inventory.ts'), 'utf8');
      await session.complete({ prefix: text.slice(0, 300), suffix: text.slice(300), mode: 'line', maxTokens: 6 });
    } finally {
      await session.close();
    }
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Temporary files and folders a write left behind (atomicFiles.ts and the resume state name them *.tmp). */
const tempFiles = (dir: string): string[] => readdirSync(dir, { recursive: true }).map(String).filter((f) => f.split(path.sep).some((part) => part.endsWith('.tmp')));

/** The error of a failed write: clear, and saying the disk is full. */
function diskFullError(err: unknown): Outcome {
  const message = err instanceof Error ? err.message : String(err);
  const why = unclear(message);
  if (why) return { kind: 'crash', detail: `unclear (${why}): ${message}` };
  if (!/disk is full/.test(message)) return { kind: 'crash', detail: `does not say the disk is full: ${message}` };
  return { kind: 'error', message };
}

test('ENOSPC at a checkpoint: a clear error, the last good checkpoint kept, the run resumes; the active model serves', { timeout: 240_000 }, async () => {
  const next = path.join(modelsDir, 'next');
  await tally.probe('disk full', 'at the second checkpoint of a training run (resume/moments.bin)', async (): Promise<Outcome> => {
    failNthWrite(`${path.sep}moments.bin`, 2);
    let outcome: Outcome;
    try {
      await trainOnFolder({ folder: fixture, outDir: next, preset: 'tiny', steps: TINY_STEPS });
      return { kind: 'crash', detail: 'the run finished although a checkpoint could not be written' };
    } catch (err) {
      outcome = diskFullError(err);
    } finally {
      injectWriteFault(null);
    }
    if (outcome.kind === 'crash') return outcome;
    // The resume state lives in the run cache beside the models folder: no temporary file there either.
    const left = [...tempFiles(next), ...(existsSync(runCacheDir(next)) ? tempFiles(runCacheDir(next)) : [])];
    if (left.length) return { kind: 'crash', detail: `temporary files left: ${left.join(', ')}` };
    const info = await store.describe('next', null, PREV);
    if (info.state !== 'incomplete') return { kind: 'crash', detail: `the half run is listed ${info.state}: ${info.reason}` };
    const problem = await serves(path.join(modelsDir, PREV));
    if (problem) return { kind: 'crash', detail: `the previous model no longer serves: ${problem}` };
    if ((await store.readActive()) !== PREV) return { kind: 'crash', detail: 'the active model changed' };
    // The disk has room again: the run resumes from its last good checkpoint to the end.
    await trainOnFolder({ folder: fixture, outDir: next, resume: true });
    const config = await readModelConfig(next);
    if (config.step !== TINY_STEPS) return { kind: 'crash', detail: `resumed to step ${config.step}` };
    const after = await serves(next);
    return after ? { kind: 'crash', detail: `resumed, then: ${after}` } : outcome;
  }, 230_000);
});

test('ENOSPC at an ONNX export: a clear error, model.onnx as it was, still serving', { timeout: 60_000 }, async () => {
  const dir = path.join(modelsDir, PREV);
  await tally.probe('disk full', 'at the export of model.onnx', async (): Promise<Outcome> => {
    const before = readFileSync(path.join(dir, 'model.onnx'));
    failNthWrite(`${path.sep}model.onnx`, 1);
    let outcome: Outcome;
    try {
      await exportOnnx(dir);
      return { kind: 'crash', detail: 'the export reported success' };
    } catch (err) {
      outcome = diskFullError(err);
    } finally {
      injectWriteFault(null);
    }
    if (!readFileSync(path.join(dir, 'model.onnx')).equals(before)) return { kind: 'crash', detail: 'model.onnx changed' };
    if (tempFiles(dir).length) return { kind: 'crash', detail: `temporary files left: ${tempFiles(dir).join(', ')}` };
    const problem = await serves(dir);
    return problem ? { kind: 'crash', detail: `no longer serves: ${problem}` } : outcome;
  });
});

test('ENOSPC when choosing the active model: a clear error, the active model unchanged', async () => {
  await tally.probe('disk full', 'at active.json (selecting a model)', async (): Promise<Outcome> => {
    failNthWrite(`${path.sep}active.json`, 1);
    let outcome: Outcome;
    try {
      await store.writeActive('next');
      return { kind: 'crash', detail: 'the selection reported success' };
    } catch (err) {
      outcome = diskFullError(err);
    } finally {
      injectWriteFault(null);
    }
    if ((await store.readActive()) !== PREV) return { kind: 'crash', detail: `active.json names ${await store.readActive()}` };
    return outcome;
  });
});

test('a real full disk (a 4 MB tmpfs, where one can be mounted): wlm export fails clearly, the model still serves', { timeout: 60_000 }, async () => {
  const mount = path.join(tmp, 'disk');
  mkdirSync(mount);
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    tally.record('disk full', 'a real full tmpfs at export', { kind: 'skip', reason: `cannot mount a tmpfs here (${(mounted.stderr || String(mounted.error)).trim().split('\n')[0]}); the hook above covers ENOSPC` });
    return;
  }
  try {
    const dir = path.join(mount, 'model');
    cpSync(path.join(modelsDir, PREV), dir, { recursive: true, preserveTimestamps: true, filter: (src) => !src.includes(`${path.sep}data`) && !src.includes(`${path.sep}resume`) });
    const before = readFileSync(path.join(dir, 'model.onnx'));
    // Fill the disk but for a sliver: model.onnx's new copy cannot fit beside the old one.
    const free = statfsSync(mount).bavail * statfsSync(mount).bsize;
    writeFileSync(path.join(mount, 'filler'), Buffer.alloc(Math.max(0, free - 64 * 1024)));
    await tally.probe('disk full', 'a real full tmpfs: wlm export', async (): Promise<Outcome> => {
      const r = wlmSync(['export', dir]);
      const outcome = classifyCliFailure(r);
      if (outcome.kind !== 'error') return outcome;
      if (!/disk is full/.test(outcome.message)) return { kind: 'crash', detail: `does not say the disk is full: ${outcome.message}` };
      if (!readFileSync(path.join(dir, 'model.onnx')).equals(before)) return { kind: 'crash', detail: 'model.onnx changed' };
      if (tempFiles(dir).length) return { kind: 'crash', detail: `temporary files left: ${tempFiles(dir).join(', ')}` };
      const problem = await serves(dir);
      return problem ? { kind: 'crash', detail: `no longer serves: ${problem}` } : outcome;
    });
  } finally {
    spawnSync('umount', [mount]);
  }
  assert.ok(!existsSync(path.join(mount, 'filler')), 'unmounted');
});
