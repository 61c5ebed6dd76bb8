// Train, fine-tune, evaluate and prepare (a serving folder from the base model, no training) as
// jobs: one at a time, each in a child process (dist/worker.js, forked with an IPC channel) so
// completions keep being served meanwhile, and the memory a job takes (token files, n-gram
// counts, the export, the optimizer) goes back to the system when it ends instead of staying in
// the server. Owns job ids, progress, metrics forwarding, cancellation (a message to the worker,
// then kill as a last resort) and what happens at the end (a finished model becomes active
// atomically). It does not train: the worker does.
import { fork, type ChildProcess, type ForkOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { ResponseError } from 'vscode-languageserver';
import type { TrainOnFolderOptions, PipelineEvent } from '../../models/src/pipeline';
import { readModelConfig } from '../../models/src/model/checkpoint';
import { LockHeldError, acquireTrainingLock, type HeldLock } from '../../models/src/model/storeLock';
import { PRESET_NAMES, isPresetName, loadPreset } from '../../models/src/model/config';
import { ErrorCodes, type EvalReport, type EvaluateRequest, type FineTuneRequest, type JobKind, type JobResult, type JobStatus, type MetricsNotification, type TrainRequest, type CancelRequest } from '../../protocol/src/customMessages';
import { newModelName, type ModelStore } from './store';
import type { ActiveModel, CancellationLike } from './completion';
import type { RunStart } from '../../models/src/model/checkpoint';
import type { Settings } from './settings';
import { changedFilesSince } from '../../models/src/data/changedFiles';
import { RunPace, describeDuration, type Budget, type RunProgress } from './estimates';

// ---------------------------------------------------------------------------------------------
// Messages between the server and the worker process over its IPC channel, serialized as
// structured clones ('advanced'), as worker threads' messages were (worker.ts imports these types)

export type WorkerJob =
  | { kind: 'train' | 'fineTune' | 'prepare'; train: Omit<TrainOnFolderOptions, 'signal' | 'onEvent'> }
  | { kind: 'evaluate'; evaluate: { modelDir: string; folder?: string; lines?: number } };

/** The job comes first, once; a cancel may follow at any time. */
export type ServerToWorker = { type: 'job'; job: WorkerJob } | { type: 'cancel' };

export type WorkerReply =
  | { type: 'event'; event: PipelineEvent }
  | { type: 'progress'; percentage: number; message: string } // evaluation phases
  | { type: 'trained'; modelDir: string; step: number; bestValLoss: number | null; stopReason: string; backend: { name: string; device: string }; start?: RunStart }
  | { type: 'evaluated'; report: EvalReport; table: string }
  | { type: 'error'; message: string; stack?: string };

type FinalReply = Exclude<WorkerReply, { type: 'event' | 'progress' | 'error' }>;

/** The work-done progress of the request that started the job (a null reporter is fine). */
export interface ProgressReporter {
  begin(title: string, percentage?: number, message?: string, cancellable?: boolean): void;
  report(percentage: number, message: string): void;
  done(): void;
}

/** Where a job reports to, and what may cancel it: the request's own token, its progress' token. */
export interface JobProgress {
  reporter: ProgressReporter;
  cancelTokens: CancellationLike[];
}

export interface JobEvents {
  onStatusChanged(): void; // a job started, moved on or ended
  onMetrics(params: MetricsNotification.Params): void; // each logged training step
  log(message: string): void; // a line for the output channel
}

/** What the jobs need from the server around them. */
export interface JobContext {
  store: ModelStore;
  active: ActiveModel;
  settings: Settings;
  folder: string | null; // the first workspace folder
  trusted: boolean;
  baseDir: string | null; // the base model folder Train starts from (model/base.ts baseModelDir()); null: none
}

/**
 * A fine-tune the server starts by itself (autoFineTune.ts), not the user: flagged in the status,
 * within a time budget, on few gradient threads (WLM_TRAIN_THREADS in its process), and leaving no
 * model folder behind when it does not finish.
 */
export interface AutomaticRun {
  minutes: number;
  gradientThreads: number;
}

/** Where the worker bundle lies: next to the server bundle, or in dist/ when run from sources. */
function defaultWorkerFile(): string {
  const candidates = [path.join(__dirname, 'worker.js'), path.resolve(__dirname, '..', '..', 'dist', 'worker.js')];
  const found = candidates.find((file) => existsSync(file));
  if (!found) throw new Error(`training worker not found (looked in ${candidates.join(', ')}); hint: run npm run build`);
  return found;
}

interface RunningJob {
  status: JobStatus;
  worker: ChildProcess;
  cancelRequested: boolean;
  pace: RunPace; // a training run's progress against its steps and minutes
  progress: ProgressReporter;
  exited: Promise<void>; // settles when the worker is gone
}

/** Sends to the worker if it is still there to take it; a message to a process gone is dropped. */
function sendTo(worker: ChildProcess, message: ServerToWorker): void {
  if (worker.connected) worker.send(message, () => undefined);
}

/** The server's own Node flags minus the inspector's: a second process cannot take its port. */
const workerExecArgv = () => process.execArgv.filter((flag) => !flag.startsWith('--inspect') && !flag.startsWith('--debug'));

/** The error line of an uncaught exception among the last lines a worker wrote to stderr. */
function crashLine(stderr: string): string | null {
  const lines = stderr.split(/\r?\n/).filter((line) => /^[A-Za-z]*(Error|Exception)\b.*:/.test(line));
  return lines.at(-1) ?? null;
}

const invalid = (message: string) => new ResponseError(ErrorCodes.invalidParams, message);

/** A progress line with the time left, and which budget ends the run when it is the time. */
function withTimeLeft(message: string, { etaMs, endsBy }: RunProgress, budget: Budget): string {
  if (etaMs === null) return message;
  return `${message}, ${describeDuration(etaMs)} left${endsBy === 'maxMinutes' ? ` (its ${budget.maxMinutes}-minute budget)` : ''}`;
}

function optionalPositive(name: string, value: unknown, integer: boolean): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw invalid(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`);
  }
  return value;
}

export class Jobs {
  private current: RunningJob | null = null;
  private nextId = 1;

  constructor(
    private readonly events: JobEvents,
    private readonly workerFile: () => string = defaultWorkerFile,
    private readonly cancelGraceMs = 60_000, // a step of a big model on a slow CPU can take this long
  ) {}

  get status(): JobStatus | null {
    return this.current ? { ...this.current.status } : null;
  }

  /** The model folder being written by a running train or fine-tune: not selectable, not deletable. */
  get trainingModel(): string | null {
    return this.current && this.current.status.kind !== 'evaluate' ? this.current.status.model : null;
  }

  cancel(params: CancelRequest.Params | null | undefined): CancelRequest.Result {
    const jobId = params?.jobId;
    if (jobId !== undefined && !Number.isInteger(jobId)) throw invalid(`jobId must be an integer, got ${JSON.stringify(jobId)}`);
    const job = this.current;
    if (!job || (jobId !== undefined && job.status.id !== jobId)) return { cancelled: false, jobId: job?.status.id ?? null };
    this.requestCancel(job);
    return { cancelled: true, jobId: job.status.id };
  }

  async train(params: TrainRequest.Params, ctx: JobContext, progress: JobProgress): Promise<JobResult> {
    this.checkCanTrain(ctx, 'train a model');
    const folder = this.folderOf(params.folder, ctx);
    const preset = params.preset ?? ctx.settings.preset;
    if (!isPresetName(preset)) throw invalid(`unknown preset ${JSON.stringify(preset)}; choose one of: ${PRESET_NAMES.join(', ')}`);
    const steps = optionalPositive('steps', params.steps, true);
    const minutes = optionalPositive('minutes', params.minutes, false);
    if (params.fromScratch !== undefined && typeof params.fromScratch !== 'boolean') throw invalid(`fromScratch must be true or false, got ${JSON.stringify(params.fromScratch)}`);
    const name = await this.freshName(params.name, preset, ctx);
    return this.runTraining('train', name, ctx, progress, {
      folder,
      outDir: ctx.store.dirOf(name),
      preset,
      backend: ctx.settings.backend === 'auto' ? undefined : ctx.settings.backend,
      steps,
      minutes: steps !== undefined ? 0 : minutes,
      exclude: ctx.settings.exclude,
      name,
      // From the base by default; the pipeline trains from scratch, and says why, where it cannot.
      base: params.fromScratch ? null : ctx.baseDir,
      fromScratch: params.fromScratch === true,
    });
  }

  /**
   * For a workspace with no model of its own: a folder made from the base model without a
   * gradient step (its weights, the workspace's n-gram and completion mixture), served once ready.
   * A failed or cancelled preparation leaves nothing behind.
   */
  async prepare(ctx: JobContext, progress: JobProgress): Promise<JobResult> {
    this.checkCanTrain(ctx, 'prepare completions from the base model');
    if (!ctx.baseDir) throw invalid('no base model to prepare completions from');
    const folder = this.folderOf(undefined, ctx);
    const name = await this.freshName(undefined, 'base', ctx);
    try {
      return await this.runTraining('prepare', name, ctx, progress, {
        folder,
        outDir: ctx.store.dirOf(name),
        base: ctx.baseDir,
        noTraining: true,
        exclude: ctx.settings.exclude,
        name,
      });
    } catch (err) {
      await ctx.store.remove(name, null).catch(() => undefined);
      throw err;
    }
  }

  async fineTune(params: FineTuneRequest.Params, ctx: JobContext, progress: JobProgress, automatic?: AutomaticRun): Promise<JobResult> {
    this.checkCanTrain(ctx, 'fine-tune a model');
    if (!params || !['changed', 'folder', 'files'].includes(params.scope)) {
      throw invalid(`scope must be "changed", "folder" or "files", got ${JSON.stringify(params?.scope)}`);
    }
    const baseName = params.base ?? ctx.active.name;
    if (!baseName) throw invalid('no base model: pass "base" or select a model first');
    const baseDir = await ctx.store.prepare(baseName, this.trainingModel);
    const base = await readModelConfig(baseDir);
    const folder = this.folderOf(params.folder, ctx);
    const steps = optionalPositive('steps', params.steps, true);
    const learningRate = optionalPositive('learningRate', params.learningRate, false);
    const freezeLayers = params.freezeLayers ?? 0;
    if (!Number.isInteger(freezeLayers) || freezeLayers < 0 || freezeLayers > base.model.nLayer) {
      throw invalid(`freezeLayers must be an integer from 0 to ${base.model.nLayer} (the base model's layers), got ${JSON.stringify(params.freezeLayers)}`);
    }
    const loraRank = optionalPositive('loraRank', params.loraRank, true);
    if (loraRank !== undefined && loraRank > base.model.nEmbd) throw invalid(`loraRank must be an integer from 1 to ${base.model.nEmbd} (the base model's width), got ${loraRank}`);
    if (loraRank !== undefined && freezeLayers > 0) throw invalid('give loraRank or freezeLayers, not both');

    let files: string[] | undefined;
    if (params.scope === 'files') {
      if (!Array.isArray(params.files) || params.files.length === 0 || !params.files.every((f) => typeof f === 'string')) {
        throw invalid('scope "files" needs "files": a non-empty list of paths relative to the folder');
      }
      files = params.files.map((f) => (path.isAbsolute(f) ? path.relative(folder, f) : f).split(path.sep).join('/'));
    } else if (params.scope === 'changed') {
      const changed = await changedFilesSince(folder, base.data?.gitCommit, new Date(base.createdAt), ctx.settings.exclude);
      if (changed.files.length === 0) {
        throw invalid(`no files changed since model "${baseName}" was trained (${changed.how}); choose scope "folder" or pick files`);
      }
      this.events.log(`fine-tune scope: ${changed.files.length} changed files (${changed.how})`);
      files = changed.files;
    }
    const name = await this.freshName(params.name, `${baseName.replace(/-\d{8}-\d{6}(-\d+)?$/, '')}-ft`, ctx);
    const run = this.runTraining('fineTune', name, ctx, progress, {
      folder,
      outDir: ctx.store.dirOf(name),
      init: baseDir,
      preset: base.preset,
      backend: ctx.settings.backend === 'auto' ? undefined : ctx.settings.backend,
      steps,
      minutes: automatic?.minutes,
      learningRate,
      freezeLayers,
      loraRank,
      files,
      exclude: ctx.settings.exclude,
      name,
    }, automatic);
    if (!automatic) return run;
    // Nobody asked for it: a run that does not finish leaves no folder to the user's model list.
    const discard = () => ctx.store.remove(name, null).catch(() => undefined);
    try {
      const result = await run;
      if (result.stopReason === 'cancelled') await discard();
      return result;
    } catch (err) {
      await discard();
      throw err;
    }
  }

  async evaluate(params: EvaluateRequest.Params, ctx: JobContext, progress: JobProgress): Promise<EvaluateRequest.Result> {
    const name = params?.model ?? ctx.active.name;
    if (!name) throw invalid('no model to evaluate: pass "model" or select a model first');
    const modelDir = await ctx.store.prepare(name, this.trainingModel);
    const lines = optionalPositive('lines', params.lines, true);
    const folder = params.folder !== undefined ? this.folderOf(params.folder, ctx) : undefined;
    const started = Date.now();
    const { reply, jobId } = await this.runWorker('evaluate', name, { maxSteps: 0, maxMinutes: 0 }, progress, `Evaluating ${name}`, { kind: 'evaluate', evaluate: { modelDir, folder, lines } });
    if (reply.type !== 'evaluated') throw new ResponseError(ErrorCodes.jobFailed, `evaluation of "${name}" ended without a report`);
    return { jobId, model: name, report: reply.report, table: reply.table, ms: Date.now() - started };
  }

  // -------------------------------------------------------------------------------------------

  private async runTraining(kind: 'train' | 'fineTune' | 'prepare', name: string, ctx: JobContext, progress: JobProgress, train: Omit<TrainOnFolderOptions, 'signal' | 'onEvent'>, automatic?: AutomaticRun): Promise<JobResult> {
    const started = Date.now();
    const title = { train: `Training ${name}`, fineTune: `Fine-tuning ${name}`, prepare: 'Preparing completions from the base model' }[kind];
    // The budgets as pipeline.ts resolves them for a new run: the request's, else the preset's.
    const preset = kind === 'prepare' ? { maxSteps: 0, maxMinutes: 0 } : loadPreset(String(train.preset)).train;
    const budget: Budget = { maxSteps: train.steps ?? preset.maxSteps, maxMinutes: train.minutes ?? preset.maxMinutes };
    const { reply, jobId, cancelRequested } = await this.runWorker(kind, name, budget, progress, title, { kind, train }, automatic);
    if (reply.type !== 'trained') throw new ResponseError(ErrorCodes.jobFailed, `${kind} of "${name}" ended without a model`);
    if (cancelRequested && kind === 'prepare') throw new ResponseError(ErrorCodes.jobFailed, 'preparing completions from the base model was cancelled');
    // A cancel that arrived after the last step (during the export) still means "keep what serves
    // now": the user asked to stop, so the new model is kept on disk but not switched to.
    const stopReason = cancelRequested ? 'cancelled' : reply.stopReason;
    let activated = false;
    if (kind === 'prepare' && ctx.active.name !== null) {
      // The user chose a model meanwhile: it keeps serving; the prepared folder stays selectable.
      this.events.log(`model ${name} is ready; ${ctx.active.name} keeps serving, as chosen`);
    } else if (stopReason !== 'cancelled') {
      // A stopped run keeps its last checkpoint on disk, but the model serving now stays in place.
      try {
        await ctx.active.activate(name, reply.modelDir);
        await ctx.store.writeActive(name);
        activated = true;
        this.events.log(`model ${name} is now active (${ctx.active.provider})`);
      } catch (err) {
        this.events.log(`model ${name} was trained but cannot serve: ${(err as Error).message}`);
      }
    } else {
      this.events.log(automatic ? `automatic fine-tune ${name} cancelled at step ${reply.step}; it is not kept` : `training of ${name} cancelled at step ${reply.step}; its last checkpoint is kept in ${reply.modelDir}`);
    }
    this.events.onStatusChanged();
    return { jobId, kind, model: name, modelDir: reply.modelDir, step: reply.step, bestValLoss: reply.bestValLoss, stopReason, activated, start: reply.start, ms: Date.now() - started };
  }

  /**
   * Starts the worker and settles with its final reply; every event in between is forwarded. A
   * request that finds the base being prepared waits for it (seconds): completions serve meanwhile.
   */
  private async runWorker(kind: JobKind, model: string, budget: Budget, { reporter: progress, cancelTokens }: JobProgress, title: string, job: WorkerJob, automatic?: AutomaticRun): Promise<{ reply: FinalReply; jobId: number; cancelRequested: boolean }> {
    while (this.current?.status.kind === 'prepare' && kind !== 'prepare') {
      this.events.log(`${kind}: waiting for the base model's preparation (job ${this.current.status.id}) to finish`);
      await this.current.exited;
    }
    if (this.current) {
      const s = this.current.status;
      throw new ResponseError(ErrorCodes.busy, `a ${s.kind} job is already running (job ${s.id}, ${s.model}, step ${s.step}/${s.maxSteps}); cancel it first`);
    }
    // One training per models folder, across windows: the lock lives as long as the worker.
    const lock = job.kind === 'evaluate' ? null : this.trainingLock(kind, model, path.dirname(job.train.outDir));
    // The worker's stdout and stderr are piped here, never inherited: under --stdio they would
    // corrupt the LSP stream.
    let worker: ChildProcess;
    try {
      const env = automatic ? { ...process.env, WLM_TRAIN_THREADS: String(automatic.gradientThreads) } : process.env;
      // windowsHide (no console window for it on Windows) is passed on to spawn, though ForkOptions omits it.
      const options: ForkOptions & { windowsHide: boolean } = { env, execArgv: workerExecArgv(), stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced', windowsHide: true };
      worker = fork(this.workerFile(), [], options);
    } catch (err) {
      lock?.release();
      throw err;
    }
    // The server exiting (the editor closed the connection, or sent exit) takes its job along; a
    // server killed outright closes the worker's channel, and the worker ends itself (worker.ts).
    const killOnExit = () => void worker.kill();
    process.once('exit', killOnExit);
    let stderrTail = '';
    for (const stream of [worker.stdout!, worker.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        if (stream === worker.stderr) stderrTail = (stderrTail + chunk).slice(-4096);
        this.events.log(chunk.trimEnd());
      });
    }
    // Gone: exited with its streams and channel closed (every message delivered), or never started.
    const gone = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      worker.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
      worker.on('error', (err: NodeJS.ErrnoException) => {
        if (err.syscall?.startsWith('spawn')) resolve({ code: null, signal: null });
      });
    });
    sendTo(worker, { type: 'job', job });
    const status: JobStatus = { id: this.nextId++, kind, model, step: 0, ...budget, percentage: 0, etaMs: null, message: 'starting', backend: null, ...(automatic ? { automatic: true as const } : {}) };
    const exited = gone.then(() => undefined);
    const running: RunningJob = { status, worker, cancelRequested: false, pace: new RunPace(budget), progress, exited };
    this.current = running;
    progress.begin(title, 0, 'starting', true);
    this.events.log(`job ${status.id}: ${title}`);
    this.events.onStatusChanged();
    const subscriptions = cancelTokens.map((token) => token.onCancellationRequested(() => this.requestCancel(running)));
    if (cancelTokens.some((token) => token.isCancellationRequested)) this.requestCancel(running);

    return new Promise((resolve, reject) => {
      let final: FinalReply | null = null;
      let failure: Error | null = null;
      worker.on('message', (reply: WorkerReply) => {
        switch (reply.type) {
          case 'event':
            this.onPipelineEvent(running, reply.event, progress);
            break;
          case 'progress':
            status.message = reply.message;
            status.percentage = reply.percentage;
            progress.report(reply.percentage, reply.message);
            this.events.onStatusChanged();
            break;
          case 'error':
            failure = new ResponseError(ErrorCodes.jobFailed, reply.message);
            this.events.log(`job ${status.id} failed: ${reply.stack ?? reply.message}`);
            worker.kill();
            break;
          default:
            final = reply;
            // Everything is on disk once the final reply is sent; the worker may hold engine handles.
            worker.kill();
        }
      });
      worker.on('error', (err) => {
        failure ??= new ResponseError(ErrorCodes.jobFailed, `the ${kind} worker crashed: ${err.message}`);
        this.events.log(`job ${status.id} crashed: ${err.stack ?? err.message}`);
      });
      void gone.then(({ code, signal }) => {
        process.removeListener('exit', killOnExit);
        lock?.release();
        for (const subscription of subscriptions) subscription.dispose();
        this.current = null;
        progress.done();
        this.events.onStatusChanged();
        if (final) return resolve({ reply: final, jobId: status.id, cancelRequested: running.cancelRequested });
        // An uncaught exception (a module that would not load, say) ends the process with its
        // stack on stderr, logged above: its error line says what happened better than a code.
        const crash = code !== null && code !== 0 ? crashLine(stderrTail) : null;
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        reject(failure ?? new ResponseError(ErrorCodes.jobFailed, crash ? `the ${kind} worker crashed: ${crash}` : `the ${kind} worker stopped (${how}) before finishing; the last checkpoint is kept`));
      });
    });
  }

  private onPipelineEvent(job: RunningJob, event: PipelineEvent, progress: ProgressReporter): void {
    const status = job.status;
    switch (event.type) {
      case 'log': {
        const m = event.metrics;
        if (event.maxSteps !== job.pace.budget.maxSteps) job.pace = new RunPace({ ...job.pace.budget, maxSteps: event.maxSteps }); // the pipeline's word wins
        const runProgress = job.pace.observe(m.step, m.elapsedMs);
        const { percentage, etaMs } = runProgress;
        Object.assign(status, { step: m.step, maxSteps: event.maxSteps, percentage, etaMs });
        status.message = `step ${m.step}/${event.maxSteps}, loss ${m.trainLoss.toFixed(3)}${m.valLoss !== undefined ? `, val ${m.valLoss.toFixed(3)}` : ''}`;
        progress.report(percentage, withTimeLeft(status.message, runProgress, job.pace.budget));
        this.events.onMetrics({ jobId: status.id, kind: status.kind, model: status.model, maxSteps: event.maxSteps, maxMinutes: status.maxMinutes, percentage, etaMs, metrics: { ...m } });
        break;
      }
      case 'backend':
        status.backend = `${event.name} (${event.device})`;
        status.message = `training on ${status.backend}`;
        this.events.log(`job ${status.id}: backend ${status.backend}${event.fallbacks.length ? `; not used: ${event.fallbacks.join('; ')}` : ''}`);
        progress.report(status.percentage, status.message);
        break;
      case 'scan':
        status.message = `${event.files} files, ${(event.bytes / 1024).toFixed(0)} KiB`;
        this.events.log(`job ${status.id}: ${status.message}`);
        break;
      case 'status':
        status.message = event.message;
        this.events.log(`job ${status.id}: ${event.message}`);
        progress.report(status.percentage, event.message);
        break;
      case 'export':
        status.message = `exported ${path.basename(event.file)}`;
        this.events.log(`job ${status.id}: exported ${event.file} (${(event.bytes / 1e6).toFixed(1)} MB, ${event.ms.toFixed(0)} ms)`);
        break;
    }
    this.events.onStatusChanged();
  }

  private requestCancel(job: RunningJob): void {
    if (job.cancelRequested) return;
    job.cancelRequested = true;
    job.status.message = 'cancelling after the current step';
    job.progress.report(job.status.percentage, job.status.message);
    this.events.log(`job ${job.status.id}: cancel requested`);
    sendTo(job.worker, { type: 'cancel' });
    // A worker stuck inside one enormous step is stopped the hard way; checkpoints are atomic.
    const timer = setTimeout(() => void job.worker.kill(), this.cancelGraceMs);
    timer.unref();
    void job.exited.then(() => clearTimeout(timer));
    this.events.onStatusChanged();
  }

  /** The models folder's training lock (storeLock.ts), or a busy error naming the window or command that holds it. */
  private trainingLock(kind: JobKind, model: string, modelsDir: string): HeldLock {
    try {
      return acquireTrainingLock(modelsDir, { holder: 'the Workspace LM language server of a VS Code window', model });
    } catch (err) {
      if (!(err instanceof LockHeldError)) throw err;
      this.events.log(`${kind} of ${model} refused: ${err.message}`);
      throw new ResponseError(ErrorCodes.busy, err.message);
    }
  }

  private checkCanTrain(ctx: JobContext, what: string): void {
    if (!ctx.trusted) {
      throw new ResponseError(ErrorCodes.untrusted, `cannot ${what} in an untrusted workspace: training reads every file and writes models; trust the workspace first (completions from existing models still work)`);
    }
  }

  private folderOf(folder: unknown, ctx: JobContext): string {
    if (folder !== undefined && folder !== null && (typeof folder !== 'string' || folder === '')) throw invalid(`folder must be a folder's path, got ${JSON.stringify(folder)}`);
    const chosen = folder ?? ctx.folder;
    if (typeof chosen !== 'string' || chosen === '') throw invalid('no folder to train on: open a workspace folder or pass "folder"');
    const resolved = path.resolve(chosen);
    if (!existsSync(resolved)) throw invalid(`folder not found: ${resolved}`);
    return resolved;
  }

  private async freshName(requested: unknown, stem: string, ctx: JobContext): Promise<string> {
    const existing = new Set(await ctx.store.names());
    if (requested === undefined || requested === null) return newModelName(stem, existing);
    ctx.store.dirOf(requested); // validates the name
    if (existing.has(requested as string)) throw invalid(`a model named ${JSON.stringify(requested)} already exists; choose another name or delete it`);
    return requested as string;
  }
}
