// workspaceLm.autoFineTune: when the editor has been idle a while and workspace files were saved
// since the active model was trained, a short fine-tune of it on the changed files, cancelled at
// the first keystroke. This file decides when, and nothing else: the run is the Fine-tune Model
// command's (scope "changed", jobs.ts), on one gradient thread and a few minutes, and the model it
// makes serves as any fine-tune's does. The saved files' n-gram counts need no run: savedFiles.ts.
import { CancellationTokenSource } from 'vscode-languageserver/node';
import type { JobResult } from '../../protocol/src/customMessages';
import type { CancellationLike } from './completion';
import type { AutomaticRun } from './jobs';

/** Two minutes without an edit or a save. */
export const IDLE_MS = 120_000;
/** A shorter wait, for tests only: milliseconds in this variable of the server's environment. */
export const IDLE_MS_ENV = 'WLM_AUTO_FINE_TUNE_IDLE_MS';
/** The run: a few minutes at most (the preset's steps if fewer), on one thread, the editor's user being back any moment. */
export const AUTOMATIC_RUN: AutomaticRun = { minutes: 3, gradientThreads: 1 };

export interface AutoFineTuneHost {
  enabled(): Promise<boolean>; // the setting is on, in a trusted workspace
  busy(): boolean; // a job runs (the user's, or the last automatic one finishing its cancel)
  trainedAt(): Promise<number | null>; // when the active model's run started (config.json createdAt); null: none serves
  fineTune(cancel: CancellationLike): Promise<JobResult>;
  log(message: string): void;
}

function idleMsFromEnvironment(): number {
  const fromEnv = Number(process.env[IDLE_MS_ENV]);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : IDLE_MS;
}

export class AutoFineTune {
  private timer: NodeJS.Timeout | null = null;
  private lastSave = 0; // Date.now() of the last save of a workspace source file
  private running: CancellationTokenSource | null = null; // from the idle check to the run's end
  private gaveUpAt = -1; // lastSave when a run failed: tried again only after another save

  constructor(private readonly host: AutoFineTuneHost, readonly idleMs = idleMsFromEnvironment()) {}

  /** Workspace source files were saved (in the editor or on disk). */
  saved(): void {
    this.lastSave = Date.now();
    this.restartWait();
  }

  /** The user typed (any didChange): a run stops at once, and the idle wait starts over. */
  typed(): void {
    this.running?.cancel();
    if (this.lastSave > 0) this.restartWait();
  }

  /** The settings changed: a run goes when the setting went off; else the next idle moment decides. */
  async settingsChanged(): Promise<void> {
    if (!(await this.host.enabled())) this.running?.cancel();
    else if (this.lastSave > 0 && this.running === null) this.restartWait();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running?.cancel();
  }

  private restartWait(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.idle(), this.idleMs);
  }

  private async idle(): Promise<void> {
    this.timer = null;
    if (this.running) return;
    // From here on a keystroke cancels, even before the job has started.
    const cancel = (this.running = new CancellationTokenSource());
    const savedAt = this.lastSave;
    try {
      if (!(await this.host.enabled()) || cancel.token.isCancellationRequested) return;
      if (this.host.busy()) {
        this.restartWait(); // the running job ends first; then another idle wait
        return;
      }
      const trainedAt = await this.host.trainedAt();
      if (trainedAt === null || savedAt <= trainedAt || savedAt === this.gaveUpAt || cancel.token.isCancellationRequested) return;
      this.host.log(`automatic fine-tune: files were saved since the active model was trained and the editor has been idle ${Math.round(this.idleMs / 1000)} s`);
      const result = await this.host.fineTune(cancel.token);
      if (result.stopReason === 'cancelled') this.host.log(`automatic fine-tune ${result.model}: cancelled (typing), nothing kept`);
      else if (result.activated) this.host.log(`automatic fine-tune ${result.model}: ${result.step} steps in ${Math.round(result.ms / 1000)} s, now serving`);
      else {
        this.gaveUpAt = savedAt;
        this.host.log(`automatic fine-tune ${result.model}: finished (${result.stopReason}) but does not serve`);
      }
    } catch (err) {
      if (cancel.token.isCancellationRequested) this.host.log('automatic fine-tune: cancelled (typing), nothing kept');
      else {
        this.gaveUpAt = savedAt; // e.g. nothing changed after all: not again until another save
        this.host.log(`automatic fine-tune: ${(err as Error).message}`);
      }
    } finally {
      this.running = null;
      cancel.dispose();
    }
  }
}
