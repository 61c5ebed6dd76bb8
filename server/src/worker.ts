// The training worker's entry (bundled as dist/worker.js): a child process the server forks with
// an IPC channel. It runs the one job the server sends through the models pipeline and reports
// every pipeline event back. It holds no state of its own and decides nothing: cancellation
// arrives as a message and becomes an AbortSignal. Its memory (token files, the n-gram counts,
// the export, the optimizer) goes back to the system when it exits, not to the server.
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { trainOnFolder } from '../../models/src/pipeline';
import { evaluateFolder, formatEvalTable } from '../../models/src/eval/evaluateFolder';
import type { WorkerJob, WorkerReply, ServerToWorker } from './jobs';

/** Nice value of a job: 10 gives the server's process about nine times its CPU share on Linux. */
const WORKER_NICE = 10;

const send0 = process.send?.bind(process);
if (!send0 || !process.connected) throw new Error('worker.js runs as a child process of the Workspace LM server (forked with an IPC channel), not on its own');

/**
 * Training shares the machine with the editor, and completions must not wait for it: the job's
 * whole process yields the cores to the server and the user's typing. On Linux a nice value
 * belongs to a thread (setpriority on a pid sets that one thread), so every thread already
 * running (the main thread, V8's and libuv's) is lowered, until a pass finds none left; threads
 * started later (the gradient worker threads) inherit it from the thread that starts them. On
 * macOS it is the process's priority; on Windows libuv maps 10 to BELOW_NORMAL_PRIORITY_CLASS for
 * the process. A sandbox that forbids it leaves the job at normal priority.
 */
function lowerPriority(): void {
  try {
    if (process.platform !== 'linux') {
      setPriority(WORKER_NICE);
      return;
    }
    const lowered = new Set<string>();
    for (let pass = 0; pass < 3; pass++) {
      const threads = readdirSync('/proc/self/task').filter((tid) => !lowered.has(tid));
      if (threads.length === 0) return;
      for (const tid of threads) {
        lowered.add(tid);
        try {
          setPriority(Number(tid), WORKER_NICE);
        } catch {
          // a thread that ended meanwhile
        }
      }
    }
  } catch {
    // no /proc, or setpriority refused: train at normal priority
  }
}
lowerPriority();

// The server gone (its process exited or was killed, so the channel closed) or the job done: this
// process ends too, leaving no orphan that would train on (a checkpoint is written atomically).
process.on('disconnect', () => process.exit(0));

const controller = new AbortController();
let started = false;
process.on('message', (message: ServerToWorker) => {
  if (message.type === 'cancel') controller.abort();
  else if (message.type === 'job' && !started) {
    started = true;
    run(message.job).then(
      (reply) => send(reply, true),
      (err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined }, true),
    );
  }
});

/**
 * Sends a reply; after the last one, closes the channel once it is written (and so exits, above).
 * A reply the server is no longer there to take is dropped (the callback keeps it from throwing).
 */
function send(reply: WorkerReply, last = false): void {
  send0!(reply, undefined, {}, () => {
    if (last && process.connected) process.disconnect();
  });
}

async function run(job: WorkerJob): Promise<WorkerReply> {
  if (job.kind === 'evaluate') {
    const report = await evaluateFolder({
      ...job.evaluate,
      signal: controller.signal,
      onProgress: ({ phase, done, total }) => send({ type: 'progress', percentage: Math.round((100 * done) / Math.max(1, total)), message: `${phase}: ${done}/${total}` }),
    });
    return { type: 'evaluated', report, table: formatEvalTable(report) };
  }
  const { modelDir, config, result } = await trainOnFolder({
    ...job.train,
    signal: controller.signal,
    onEvent: (event) => send({ type: 'event', event }),
  });
  return { type: 'trained', modelDir, step: result.step, bestValLoss: result.bestValLoss, stopReason: result.stopReason, backend: config.backend, start: config.start };
}
