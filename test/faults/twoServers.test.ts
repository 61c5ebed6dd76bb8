// Fault suite, two language servers on one models folder (two VS Code windows sharing a
// workspaceLm.modelsDir), as dist/server.js runs under VS Code. Both are asked to train and to
// select at the same moment: one trains, the other is refused with who holds the folder's training
// lock (models/src/model/storeLock.ts); the selections both land; active.json and every model
// folder stay whole. Then the first server is killed with SIGKILL in the middle of a training (its
// job process exits when its channel to the server closes): the active model still loads, the killed run is listed as
// incomplete and resumable, the second server takes the stale lock over and trains, and
// `wlm train --resume` takes the killed run to its end.
import { test, before, after } from 'node:test';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { ResponseError } from 'vscode-jsonrpc/node';
import { ErrorCodes, ModelsRequest, TrainRequest, type JobResult } from '../../protocol/src/customMessages';
import { ModelStore } from '../../models/src/model/store';
import { readModelConfig } from '../../models/src/model/checkpoint';
import { RUN_CACHE_FOLDER } from '../../models/src/model/runCache';
import { TRAINING_LOCK_FILE, STORE_LOCK_FILE } from '../../models/src/model/storeLock';
import { Tally, TINY_STEPS, copyModel, fixture, modelsWithActive, serves, startFaultServer, stopFaultServer, wlm, type FaultServer, type Outcome } from './faultKit';

const tally = new Tally('twoServers');
const ACTIVE = 'active-good';
const OTHER = 'other-good';
const KILLED_STEPS = 150; // long enough to be killed mid-run, short enough to resume in seconds
let tmp: string;
let modelsDir: string;
let store: ModelStore;
let project: string;
let first: FaultServer;
let second: FaultServer;

const start = () => startFaultServer({ settings: { modelsDir, preset: 'tiny' }, baseModel: null }, project);
const pidOf = (server: FaultServer) => server.client.process.pid!;
const request = <R>(server: FaultServer, method: string, params: unknown) => server.client.connection.sendRequest(method, params) as Promise<R>;

before(async () => {
  ({ tmp, modelsDir, store } = await modelsWithActive('wlm-faults-two-', ACTIVE));
  copyModel(modelsDir, OTHER);
  project = path.join(tmp, 'project');
  cpSync(fixture, project, { recursive: true });
  [first, second] = await Promise.all([start(), start()]);
  for (const server of [first, second]) await server.client.until(() => server.client.statuses.find((s) => s.activeModel === ACTIVE));
});

after(async () => {
  for (const server of [first, second]) if (server) await stopFaultServer(server);
  rmSync(tmp, { recursive: true, force: true });
  tally.finish();
});

/** active.json as it is on disk: whole JSON naming a model that serves. */
async function activeIsWhole(): Promise<string | null> {
  let name: unknown;
  try {
    name = (JSON.parse(readFileSync(path.join(modelsDir, 'active.json'), 'utf8')) as { name?: unknown }).name;
  } catch (err) {
    return `active.json is not whole: ${(err as Error).message}`;
  }
  if (typeof name !== 'string') return `active.json names ${JSON.stringify(name)}`;
  const problem = await serves(path.join(modelsDir, name));
  return problem ? `the active model ${name} ${problem}` : null;
}

/** Left behind in the models folder: lock files, the run cache. */
const leftovers = () => readdirSync(modelsDir).filter((f) => [TRAINING_LOCK_FILE, STORE_LOCK_FILE, RUN_CACHE_FOLDER].includes(f));

test('both servers asked to train and to select at once: one trains, the other is told who holds the folder; nothing is corrupted', { timeout: 300_000 }, async () => {
  await tally.probe('two servers', 'train and select, both at once', async (): Promise<Outcome> => {
    const trains = await Promise.allSettled([
      request<JobResult>(first, TrainRequest.method, { preset: 'tiny', steps: TINY_STEPS, name: 'from-first' }),
      request<JobResult>(second, TrainRequest.method, { preset: 'tiny', steps: TINY_STEPS, name: 'from-second' }),
      request(first, ModelsRequest.method, { action: 'select', name: OTHER }),
      request(second, ModelsRequest.method, { action: 'select', name: ACTIVE }),
    ]);
    const [a, b, selectA, selectB] = trains;
    for (const select of [selectA, selectB]) if (select.status === 'rejected') return { kind: 'crash', detail: `a selection failed while the other window worked: ${(select.reason as Error).message}` };
    const won = [a, b].filter((t) => t.status === 'fulfilled') as PromiseFulfilledResult<JobResult>[];
    const lost = [a, b].filter((t) => t.status === 'rejected') as PromiseRejectedResult[];
    if (won.length !== 1 || lost.length !== 1) return { kind: 'crash', detail: `${won.length} trained and ${lost.length} were refused: ${lost.map((l) => (l.reason as Error).message).join('; ')}` };
    const winner = a.status === 'fulfilled' ? first : second;
    const refusal = lost[0].reason as ResponseError<unknown>;
    const expected = new RegExp(`another training is writing into .*: the Workspace LM language server of a VS Code window \\(pid ${pidOf(winner)}, since [0-9:]+\\), training "${won[0].value.model}"; one training per models folder at a time`);
    if (!(refusal instanceof ResponseError) || refusal.code !== ErrorCodes.busy || !expected.test(refusal.message)) {
      return { kind: 'crash', detail: `the refusal does not say who holds the folder: ${refusal.code} ${refusal.message}` };
    }
    if (won[0].value.stopReason !== 'maxSteps' || won[0].value.step !== TINY_STEPS) return { kind: 'crash', detail: `the training ended ${won[0].value.stopReason} at step ${won[0].value.step}` };
    // Every folder whole: the new model, both models selected, active.json; nothing left behind.
    const { models } = await store.list(null);
    const notReady = models.filter((m) => m.state !== 'ready');
    if (notReady.length) return { kind: 'crash', detail: `not ready: ${notReady.map((m) => `${m.name} ${m.state} ${m.reason}`).join('; ')}` };
    if (models.some((m) => m.name === (winner === first ? 'from-second' : 'from-first'))) return { kind: 'crash', detail: 'the refused training left a folder' };
    const active = await activeIsWhole();
    if (active) return { kind: 'crash', detail: active };
    for (const m of models) {
      const problem = await serves(m.dir);
      if (problem) return { kind: 'crash', detail: `${m.name} ${problem}` };
    }
    if (leftovers().length) return { kind: 'crash', detail: `left in the models folder: ${leftovers().join(', ')}` };
    return { kind: 'error', message: refusal.message };
  }, 280_000);
});

test('kill -9 of a server while it trains: the active model loads, the run is listed incomplete and resumes, the other server takes the lock over', { timeout: 420_000 }, async () => {
  tally.data.kills.tried++;
  const outcome = await tally.probe('kill -9', 'the language server, mid-training (its job process exits with it)', async (): Promise<Outcome> => {
    // Its answer should never come: the server is killed before the run ends.
    const answered = request<JobResult>(first, TrainRequest.method, { preset: 'tiny', steps: KILLED_STEPS, name: 'killed' }).then((r) => `it ended first (${r.stopReason} at step ${r.step})`, (err: Error) => err.message);
    // Past the first evaluation (step 20): a checkpoint is on disk.
    const failed = await Promise.race([first.client.until(() => first.client.metrics.find((m) => m.model === 'killed' && m.metrics.step > 20)).then(() => null), answered]);
    if (failed) return { kind: 'crash', detail: `the first server did not train: ${failed}` };
    // Meanwhile the second window is refused, and lists the run as training in the other window.
    const refused = await request(second, TrainRequest.method, { preset: 'tiny', steps: TINY_STEPS, name: 'too-early' }).then(() => null, (err: Error) => err.message);
    if (!refused || !refused.includes(`pid ${pidOf(first)}`)) return { kind: 'crash', detail: `the second server was not refused while the first trained: ${refused}` };
    const during = (await request<ModelsRequest.Result>(second, ModelsRequest.method, { action: 'list' })).models.find((m) => m.name === 'killed');
    if (during?.state !== 'training' || !during.reason?.includes(`pid ${pidOf(first)}`)) return { kind: 'crash', detail: `while the other window trains, listed ${during?.state}: ${during?.reason}` };

    const gone = new Promise<void>((resolve) => first.client.process.once('exit', () => resolve()));
    first.client.process.kill('SIGKILL');
    await gone;
    const at = (await readModelConfig(path.join(modelsDir, 'killed'))).step;
    if (!(at >= 20 && at < KILLED_STEPS)) return { kind: 'crash', detail: `killed at step ${at}: not mid-run` };

    const active = await activeIsWhole();
    if (active) return { kind: 'crash', detail: `after the kill, ${active}` };
    const listed = (await request<ModelsRequest.Result>(second, ModelsRequest.method, { action: 'list' })).models.find((m) => m.name === 'killed');
    if (listed?.state !== 'incomplete' || !listed.resumable) return { kind: 'crash', detail: `the killed run is listed ${listed?.state} (resumable ${listed?.resumable}): ${listed?.reason}` };

    // The stale lock (its owner is dead) is taken over by the second server.
    const next = await request<JobResult>(second, TrainRequest.method, { preset: 'tiny', steps: TINY_STEPS, name: 'after-kill' }).catch((err: Error) => err);
    if (next instanceof Error) return { kind: 'crash', detail: `the second server could not train after the kill: ${next.message}` };
    if (next.stopReason !== 'maxSteps') return { kind: 'crash', detail: `the second server's training ended ${next.stopReason}` };

    const resumed = await wlm(['train', project, '--out', path.join(modelsDir, 'killed'), '--resume'], { timeoutMs: 240_000 });
    if (resumed.code !== 0) return { kind: 'crash', detail: `listed ${listed.reason} but --resume failed: ${resumed.stderr.slice(-400)}` };
    const config = await readModelConfig(path.join(modelsDir, 'killed'));
    if (config.step !== KILLED_STEPS) return { kind: 'crash', detail: `resumed to step ${config.step}, not ${KILLED_STEPS}` };
    const after = await store.describe('killed', null, null);
    if (after.state !== 'ready') return { kind: 'crash', detail: `resumed, then listed ${after.state}: ${after.reason}` };
    const problem = await serves(path.join(modelsDir, 'killed'));
    if (problem) return { kind: 'crash', detail: `resumed, but ${problem}` };
    if (existsSync(path.join(modelsDir, 'killed', 'resume')) || leftovers().length) return { kind: 'crash', detail: `left behind: ${leftovers().join(', ')}` };
    return { kind: 'defined', what: `killed at step ${at}: the active model served, the run was listed incomplete and resumable, the second server took the lock over and trained, --resume took the run to step ${KILLED_STEPS}` };
  }, 400_000);
  if (outcome.kind !== 'crash') tally.data.kills.survived++;
  tally.data.kills.detail.push(`language server kill -9 mid-training: ${outcome.kind === 'crash' ? outcome.detail : outcome.kind === 'defined' ? outcome.what : ''}`);
});
