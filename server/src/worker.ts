// The training worker's entry (bundled as dist/worker.js): runs one job from workerData through
// the models pipeline and reports every pipeline event to the server thread. It holds no state
// of its own and decides nothing: cancellation arrives as a message and becomes an AbortSignal.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { trainOnFolder } from '../../models/src/pipeline';
import { evaluateFolder, formatEvalTable } from '../../models/src/eval/evaluateFolder';
import type { WorkerJob, WorkerReply, ServerToWorker } from './jobs';

/** Linux nice value of a training thread: 10 gives the server's thread about nine times its CPU share. */
const WORKER_NICE = 10;

const port = parentPort;
if (!port) throw new Error('worker.ts runs as a worker thread of the Workspace LM server, not on its own');

// Training shares the machine with the editor, and completions must not wait for it: on Linux a
// thread has its own nice value, so this thread (and the gradient threads it starts, which inherit
// it) yield the cores to the server's thread and the user's typing. Elsewhere setpriority would
// lower the whole server process, so the job keeps its priority there.
if (process.platform === 'linux') {
  try {
    setPriority(WORKER_NICE);
  } catch {
    // a sandbox that forbids it: train at normal priority
  }
}

const controller = new AbortController();
port.on('message', (message: ServerToWorker) => {
  if (message.type === 'cancel') controller.abort();
});

const send = (reply: WorkerReply) => port.postMessage(reply);

async function run(job: WorkerJob): Promise<void> {
  if (job.kind === 'evaluate') {
    const report = await evaluateFolder({
      ...job.evaluate,
      signal: controller.signal,
      onProgress: ({ phase, done, total }) => send({ type: 'progress', percentage: Math.round((100 * done) / Math.max(1, total)), message: `${phase}: ${done}/${total}` }),
    });
    send({ type: 'evaluated', report, table: formatEvalTable(report) });
    return;
  }
  const { modelDir, config, result } = await trainOnFolder({
    ...job.train,
    signal: controller.signal,
    onEvent: (event) => send({ type: 'event', event }),
  });
  send({ type: 'trained', modelDir, step: result.step, bestValLoss: result.bestValLoss, stopReason: result.stopReason, backend: config.backend, start: config.start });
}

run(workerData as WorkerJob).then(
  () => port.close(),
  (err: unknown) => {
    send({ type: 'error', message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
    port.close();
  },
);
