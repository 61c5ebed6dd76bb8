// The locks on a models folder (models/src/model/storeLock.ts): the training lock is exclusive and
// says who holds it; a lock whose owner was killed with SIGKILL is taken over; the store lock makes
// a second process wait and says for whom; lock files left half-written, from another host or
// from an earlier process with this pid are judged as they should be; the store refuses to delete
// a model another process trains, and lists it as training.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LockHeldError, STORE_LOCK_FILE, TRAINING_LOCK_FILE, acquireTrainingLock, trainingLockOwner, withStoreLock, type LockOwner } from '../../models/src/model/storeLock';
import { ModelStore, ModelStoreError } from '../../models/src/model/store';

const root = path.resolve(__dirname, '..', '..');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'wlm-lock-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

function folder(name: string): string {
  const dir = path.join(scratch, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A second process that takes a lock of `modelsDir`, says "locked" and holds it until killed. */
async function holder(modelsDir: string, which: 'training' | 'store', model = 'their-model'): Promise<ChildProcess> {
  const lib = JSON.stringify(path.join(root, 'models', 'src', 'model', 'storeLock.ts'));
  const script = which === 'training'
    ? `require(${lib}).acquireTrainingLock(${JSON.stringify(modelsDir)}, { holder: 'a test process', model: ${JSON.stringify(model)} }); console.log('locked'); setInterval(() => {}, 1000);`
    : `require(${lib}).withStoreLock(${JSON.stringify(modelsDir)}, 'a test process', () => { console.log('locked'); return new Promise(() => setInterval(() => {}, 1000)); });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => chunk.includes('locked') && resolve());
    child.once('exit', (code) => reject(new Error(`the lock holder exited (${code}) before it locked`)));
  });
  return child;
}

async function killHard(child: ChildProcess): Promise<void> {
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await gone; // reaped: its pid is dead, not a zombie
}

test('the training lock is exclusive within a process and says who holds it; released, it can be taken again', () => {
  const dir = folder('exclusive');
  const first = acquireTrainingLock(dir, { holder: 'the first run', model: 'one' });
  assert.throws(() => acquireTrainingLock(dir, { holder: 'the second run', model: 'two' }), (err: unknown) => {
    assert.ok(err instanceof LockHeldError);
    assert.match(err.message, new RegExp(`another training is writing into .*: the first run \\(pid ${process.pid}, since [0-9:]+\\), training "one"; one training per models folder at a time`));
    return true;
  });
  assert.equal(trainingLockOwner(dir)?.model, 'one');
  first.release();
  assert.equal(existsSync(path.join(dir, TRAINING_LOCK_FILE)), false, 'released: the lock file is gone');
  assert.equal(trainingLockOwner(dir), null);
  acquireTrainingLock(dir, { holder: 'the second run', model: 'two' }).release();
});

test('a training lock held by another process refuses; after that process is killed with SIGKILL it is taken over', async () => {
  const dir = folder('stale');
  const child = await holder(dir, 'training');
  assert.throws(() => acquireTrainingLock(dir, { holder: 'me', model: 'mine' }), new RegExp(`a test process \\(pid ${child.pid}, since [0-9:]+\\), training "their-model"`));
  assert.equal(trainingLockOwner(dir)?.pid, child.pid);
  await killHard(child);
  assert.equal(trainingLockOwner(dir), null, 'a dead owner holds nothing');
  const lock = acquireTrainingLock(dir, { holder: 'me', model: 'mine' });
  const owner = JSON.parse(readFileSync(path.join(dir, TRAINING_LOCK_FILE), 'utf8')) as LockOwner;
  assert.deepEqual([owner.pid, owner.model], [process.pid, 'mine']);
  lock.release();
});

test('the store lock: a second process waits, is told for whom, and goes on once the holder is gone', async () => {
  const dir = folder('store');
  const child = await holder(dir, 'store');
  const waits: string[] = [];
  let told!: () => void;
  const waiting = new Promise<void>((resolve) => (told = resolve));
  let ran = false;
  const section = withStoreLock(dir, 'me', async () => {
    ran = true;
    return 42;
  }, { onWait: (message) => { waits.push(message); told(); } });
  await waiting;
  assert.equal(ran, false, 'not while the other process holds it');
  assert.match(waits[0], new RegExp(`waiting for a test process \\(pid ${child.pid}, since [0-9:]+\\) to finish with `));
  await killHard(child);
  assert.equal(await section, 42);
  assert.equal(waits.length, 1, 'said once');
  assert.equal(existsSync(path.join(dir, STORE_LOCK_FILE)), false);
});

test('the store lock gives up after its timeout with a clear error naming the holder and the file', async () => {
  const dir = folder('store-timeout');
  const child = await holder(dir, 'store');
  await assert.rejects(withStoreLock(dir, 'me', async () => 1, { timeoutMs: 100 }), new RegExp(`locked for more than 0 s by a test process \\(pid ${child.pid}.*delete .*${STORE_LOCK_FILE.replace('.', '\\.')}`));
  await killHard(child);
});

test('a lock caught between its create and its write names its owner once written, not "a process that is still writing"', async () => {
  const dir = folder('mid-write');
  const file = path.join(dir, TRAINING_LOCK_FILE);
  closeSync(openSync(file, 'wx')); // the owner's O_EXCL create; its write comes from the child, 50 ms later
  const script = `console.log('ready'); setTimeout(() => { require('node:fs').writeFileSync(${JSON.stringify(file)}, JSON.stringify({ pid: process.pid, hostname: require('node:os').hostname(), processStartedAt: Date.now(), acquiredAt: Date.now(), holder: 'a test process', model: 'theirs', nonce: 'n1' })); }, 50); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve) => child.stdout!.setEncoding('utf8').on('data', (chunk: string) => chunk.includes('ready') && resolve()));
  assert.throws(() => acquireTrainingLock(dir, { holder: 'me', model: 'm' }), new RegExp(`a test process \\(pid ${child.pid}, since [0-9:]+\\), training "theirs"`));
  await killHard(child);
});

test('lock files judged: half-written (fresh: held; old: stale), another host (held), this pid from an earlier process (stale)', () => {
  const dir = folder('judged');
  const file = path.join(dir, TRAINING_LOCK_FILE);
  writeFileSync(file, '{"pid": 12');
  assert.throws(() => acquireTrainingLock(dir, { holder: 'me', model: 'm' }), /still writing/);
  const old = new Date(Date.now() - 60_000);
  utimesSync(file, old, old);
  acquireTrainingLock(dir, { holder: 'me', model: 'm' }).release();

  const foreign: LockOwner = { pid: process.pid, hostname: `${os.hostname()}-elsewhere`, processStartedAt: 0, acquiredAt: Date.now(), holder: 'a server on another machine', model: 'x', nonce: 'abc' };
  writeFileSync(file, JSON.stringify(foreign));
  assert.throws(() => acquireTrainingLock(dir, { holder: 'me', model: 'm' }), new RegExp(`pid ${process.pid} on ${os.hostname()}-elsewhere`));

  // Our own pid, but a process that started long before this one: the pid was reused.
  writeFileSync(file, JSON.stringify({ ...foreign, hostname: os.hostname(), processStartedAt: Date.now() - 86_400_000 }));
  acquireTrainingLock(dir, { holder: 'me', model: 'm' }).release();
  assert.equal(existsSync(file), false);
});

test('the store lists a model another process trains as training, and refuses to select or delete it', async () => {
  const modelsDir = folder('store-models');
  mkdirSync(path.join(modelsDir, 'their-model'));
  writeFileSync(path.join(modelsDir, 'their-model', 'tokenizer.json'), '{}');
  const store = new ModelStore(modelsDir);
  const child = await holder(modelsDir, 'training');
  const info = await store.describe('their-model', null, null);
  assert.equal(info.state, 'training');
  assert.match(info.reason ?? '', new RegExp(`being trained by a test process \\(pid ${child.pid}`));
  await assert.rejects(store.remove('their-model', null), (err: unknown) => err instanceof ModelStoreError && err.code === 'busy' && /cancel that training before deleting it/.test(err.message));
  await assert.rejects(store.prepare('their-model', null), (err: unknown) => err instanceof ModelStoreError && err.code === 'busy');
  await killHard(child);
  assert.equal((await store.describe('their-model', null, null)).state, 'incomplete', 'its trainer is gone: a run that stopped early');
  await store.remove('their-model', null);
  assert.equal(existsSync(path.join(modelsDir, 'their-model')), false);
  await assert.rejects(store.writeActive('their-model'), /no model named "their-model"/);
});
