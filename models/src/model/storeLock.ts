// Locks on a models folder, so that two language servers (two VS Code windows) or a server and
// `wlm` working on one folder never corrupt each other. Two lock files, each made with O_EXCL and
// holding its owner (pid, hostname, the process's start time, what it does):
//   .wlm-training.lock  held for a whole training run into the folder: one at a time per folder;
//                       a second is refused at once, with who holds it.
//   .wlm-store.lock     held for milliseconds around what rewrites the folder's shared state
//                       (active.json, deleting a model): a second waits, and is told for whom.
// A lock whose owner is dead on this host (kill -9, a crash, a power cut) is stale and taken over.
// It owns the lock files and nothing else: what to do while locked is the caller's (store.ts,
// server/src/jobs.ts, cli.ts).
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../util/errors';

export const TRAINING_LOCK_FILE = '.wlm-training.lock';
export const STORE_LOCK_FILE = '.wlm-store.lock';
const STORE_WAIT_MS = 10_000; // a store section takes milliseconds; this long means something is wrong
const POLL_MS = 25;
const MAX_ATTEMPTS = 6;
const HALF_WRITTEN_MS = 5_000; // an unreadable lock this old was left by a kill between its create and its write
const WRITER_GRACE_MS = 500; // an unreadable young lock is re-read this long: its owner is between its create and its write
const WRITER_POLL_MS = 5;
const SLEEPER = new Int32Array(new SharedArrayBuffer(4)); // Atomics.wait on it: a synchronous sleep
const START_SLACK_MS = 60_000; // a live pid that started this much later than the owner is another process (pid reuse)

/** What a lock file holds: who owns it, and what for. */
export interface LockOwner {
  pid: number;
  hostname: string;
  processStartedAt: number; // epoch ms: with the pid, tells the owner from a later process given the same pid
  acquiredAt: number; // epoch ms
  holder: string; // in words: "the Workspace LM language server", "wlm train"
  model?: string; // the training lock: the model folder being written
  nonce: string; // this acquisition, so that a takeover never removes a lock that someone else has just made
}

/** A lock someone else holds: said with who, since when, and what to do. */
export class LockHeldError extends UserError {
  constructor(readonly owner: LockOwner, message: string) {
    super(message);
  }
}

export interface HeldLock {
  readonly file: string;
  readonly owner: LockOwner;
  release(): void;
}

// ---------------------------------------------------------------------------------------------
// The training lock

/**
 * Takes the training lock of a models folder for a run into `model`, or throws LockHeldError
 * naming the run that holds it: one training per models folder at a time.
 */
export function acquireTrainingLock(modelsDir: string, what: { holder: string; model: string }): HeldLock {
  const file = path.join(modelsDir, TRAINING_LOCK_FILE);
  const taken = tryLock(file, what);
  if ('release' in taken) return taken;
  throw new LockHeldError(taken, `another training is writing into ${modelsDir}: ${describeOwner(taken)}; one training per models folder at a time: wait for it to finish, or cancel it there (hint: if nothing is training, delete ${file})`);
}

/** The live owner of a models folder's training lock, or null (none, or its owner is dead). */
export function trainingLockOwner(modelsDir: string): LockOwner | null {
  const owner = readOwner(path.join(modelsDir, TRAINING_LOCK_FILE));
  return owner && owner !== 'unreadable' && !isStale(owner) ? owner : null;
}

// ---------------------------------------------------------------------------------------------
// The store lock

/**
 * Runs `section` holding the models folder's store lock, as `holder` (who and what, in words, for
 * the others' messages): waits while another process (or another request of this one) holds it,
 * calling `onWait` once with whom it waits for when that is another process; after 10 s, a
 * LockHeldError. Sections are short: a few file writes, a folder removed.
 */
export async function withStoreLock<T>(modelsDir: string, holder: string, section: () => Promise<T>, opts: { onWait?: (message: string) => void; timeoutMs?: number } = {}): Promise<T> {
  const file = path.join(modelsDir, STORE_LOCK_FILE);
  const deadline = Date.now() + (opts.timeoutMs ?? STORE_WAIT_MS);
  let told = false;
  for (;;) {
    const taken = tryLock(file, { holder });
    if ('release' in taken) {
      try {
        return await section();
      } finally {
        taken.release();
      }
    }
    if (!told && taken.pid !== process.pid) {
      told = true;
      opts.onWait?.(`waiting for ${describeOwner(taken)} to finish with ${modelsDir}`);
    }
    if (Date.now() > deadline) {
      throw new LockHeldError(taken, `${modelsDir} has been locked for more than ${((opts.timeoutMs ?? STORE_WAIT_MS) / 1000).toFixed(0)} s by ${describeOwner(taken)} (hint: if no Workspace LM window or wlm command is running, delete ${file})`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// ---------------------------------------------------------------------------------------------
// The lock file itself

/** Creates the lock file (O_EXCL) with this process as its owner; a stale one is taken over. Returns the lock, or the live owner. */
export function tryLock(file: string, what: { holder: string; model?: string }): HeldLock | LockOwner {
  mkdirSync(path.dirname(file), { recursive: true });
  let last: LockOwner = unknownOwner(file);
  // A few rounds: a lock released or taken over meanwhile is tried again; others racing for it
  // without end are reported as the owner, never spun on.
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const owner: LockOwner = {
      pid: process.pid, hostname: os.hostname(), processStartedAt: ownStart(), acquiredAt: Date.now(),
      holder: what.holder, ...(what.model !== undefined ? { model: what.model } : {}), nonce: randomBytes(8).toString('hex'),
    };
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const current = awaitWriter(file);
      if (current === null) continue; // released meanwhile: try again
      if (current !== 'unreadable' && !isStale(current)) return current;
      if (current === 'unreadable' && !halfWrittenLongAgo(file)) return unknownOwner(file);
      if (current !== 'unreadable') last = current;
      takeOver(file, current);
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(owner) + '\n');
    } catch (err) {
      closeSync(fd);
      rmSync(file, { force: true }); // a full disk: no empty lock left behind to block others
      throw err;
    }
    closeSync(fd);
    return {
      file,
      owner,
      release: () => {
        // Only our own lock: a takeover by another process after we were judged dead is theirs now.
        const now = readOwner(file);
        if (now && now !== 'unreadable' && now.nonce === owner.nonce) rmSync(file, { force: true });
      },
    };
  }
  return last;
}

/** The lock file's owner; 'unreadable' while it is being written (or was cut short); null when there is none. */
function readOwner(file: string): LockOwner | 'unreadable' | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw err;
  }
  try {
    const owner = JSON.parse(text) as LockOwner;
    return Number.isInteger(owner?.pid) && typeof owner.hostname === 'string' && typeof owner.nonce === 'string' ? owner : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

/**
 * The lock file's owner, read again while it is young and unreadable: a lock caught between its
 * O_EXCL create and its write is named once its owner has written it, not reported as "still
 * writing". Blocks for at most WRITER_GRACE_MS, and only in that instant.
 */
function awaitWriter(file: string): LockOwner | 'unreadable' | null {
  const deadline = Date.now() + WRITER_GRACE_MS;
  for (;;) {
    const owner = readOwner(file);
    if (owner !== 'unreadable' || halfWrittenLongAgo(file) || Date.now() >= deadline) return owner;
    Atomics.wait(SLEEPER, 0, 0, WRITER_POLL_MS); // tryLock is synchronous
  }
}

function halfWrittenLongAgo(file: string): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs > HALF_WRITTEN_MS;
  } catch {
    return true; // gone: nothing to wait for
  }
}

function unknownOwner(file: string): LockOwner {
  return { pid: -1, hostname: os.hostname(), processStartedAt: 0, acquiredAt: Date.now(), holder: `a process that is still writing ${path.basename(file)}`, nonce: '' };
}

/**
 * Moves the stale lock aside, checks it is the one judged stale (not one made meanwhile by a
 * process that took it over first: that one is put back), and removes it.
 */
function takeOver(file: string, stale: LockOwner | 'unreadable'): void {
  const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.stale`;
  try {
    renameSync(file, aside);
  } catch {
    return; // someone else moved it first
  }
  const moved = readOwner(aside);
  const same = stale === 'unreadable' ? moved === 'unreadable' : moved !== null && moved !== 'unreadable' && moved.nonce === stale.nonce;
  if (!same) {
    try {
      linkSync(aside, file); // back where it was, unless a new lock is there already
    } catch {
      // a new lock is there: that one stands
    }
  }
  unlinkSync(aside);
}

/** A lock is stale when its owner is dead on this host, or its pid now belongs to a later process. */
function isStale(owner: LockOwner): boolean {
  if (owner.hostname !== os.hostname()) return false; // another machine (a shared folder): it cannot be judged from here
  if (owner.pid === process.pid) return Math.abs(owner.processStartedAt - ownStart()) > START_SLACK_MS;
  if (!processAlive(owner.pid)) return true;
  const started = processStart(owner.pid);
  return started !== null && Math.abs(started - owner.processStartedAt) > START_SLACK_MS;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
  // A zombie (killed, not yet reaped by its parent) holds nothing any more.
  const stat = procStat(pid);
  return stat === null || stat.state !== 'Z';
}

/** Fields of /proc/<pid>/stat (Linux): the state letter and the start time in clock ticks after boot. */
function procStat(pid: number): { state: string; startTicks: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' '); // after "pid (comm) ": field 3 onwards
    return { state: fields[0], startTicks: Number(fields[19]) };
  } catch {
    return null;
  }
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux we ship for

let bootTimeMs: number | null | undefined;
function bootTime(): number | null {
  if (bootTimeMs === undefined) {
    try {
      const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
      bootTimeMs = btime ? Number(btime[1]) * 1000 : null;
    } catch {
      bootTimeMs = null;
    }
  }
  return bootTimeMs;
}

/** When a process started (epoch ms), where the system says (Linux); null elsewhere. */
function processStart(pid: number): number | null {
  const stat = procStat(pid);
  const boot = bootTime();
  if (!stat || boot === null || !Number.isFinite(stat.startTicks)) return null;
  return boot + (stat.startTicks * 1000) / CLOCK_TICKS_PER_SECOND;
}

let ownStartMs: number | undefined;
function ownStart(): number {
  ownStartMs ??= processStart(process.pid) ?? Math.round(Date.now() - process.uptime() * 1000);
  return ownStartMs;
}

/** An owner in words: "wlm train (pid 4242 on host, since 14:02:07), training my-model". */
export function describeOwner(owner: LockOwner): string {
  if (owner.pid < 0) return owner.holder;
  const where = owner.hostname === os.hostname() ? `pid ${owner.pid}` : `pid ${owner.pid} on ${owner.hostname}`;
  const since = new Date(owner.acquiredAt).toLocaleTimeString('en-GB', { hour12: false });
  return `${owner.holder} (${where}, since ${since})${owner.model ? `, training "${owner.model}"` : ''}`;
}
