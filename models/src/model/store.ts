// A models folder: one sub-folder per model, which one is active (active.json), listing with what
// each folder holds, selection and deletion. It validates folders through checkpoint.ts
// (config.json and the weights manifest) and never calls a corrupt one ready; it does not train or
// serve. active.json is written and models are deleted under the folder's store lock, and a model
// another process trains (its training lock, storeLock.ts) is listed as training: two windows on
// one folder never undo each other. The language server and `wlm models` both use it; errors are
// UserErrors with a code the server maps to its response codes.
import { promises as fs, existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { hasModelConfig, readModelConfig, type ModelFolderConfig } from './checkpoint';
import { ONNX_FILE } from './onnx';
import { clearRunCache, hasResumeState } from './runCache';
import { LockHeldError, describeOwner, trainingLockOwner, withStoreLock } from './storeLock';
import { writeFileAtomic } from '../util/atomicFiles';
import { UserError } from '../util/errors';

/** One model folder as a list shows it. */
export interface ModelInfo {
  name: string;
  dir: string;
  state: 'ready' | 'training' | 'incomplete' | 'corrupt';
  reason?: string; // why incomplete or corrupt
  preset?: string;
  createdAt?: string;
  parent?: string; // name of the model it was fine-tuned from
  backend?: string; // backend and device it was trained on
  dataBytes?: number;
  dataTokens?: number;
  step?: number;
  bestValLoss?: number | null;
  resumable?: boolean; // a stopped run whose resume state is kept: `wlm train --resume` continues it
  active: boolean;
}

/** Who this store is, in the other processes' messages, and where its waits for them are said. */
export interface StoreLockOptions {
  holder?: string; // e.g. "the Workspace LM language server"; default "wlm"
  onWait?: (message: string) => void; // the store lock is held by another process: what it waits for
}

/** What went wrong, for a caller that answers in codes (the server): a bad name, no such model, or one in use. */
export class ModelStoreError extends UserError {
  constructor(readonly code: 'invalidName' | 'notFound' | 'busy', message: string) {
    super(message);
  }
}

const ACTIVE_FILE = 'active.json';
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function total(value: { train: number; val: number } | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'number' ? value : value.train + value.val;
}

export function isModelName(name: unknown): name is string {
  return typeof name === 'string' && MODEL_NAME.test(name);
}

/** A name for a new model, unique in the folder: `<stem>-YYYYMMDD-HHMMSS`, with a counter if needed. */
export function newModelName(stem: string, existing: Set<string>, now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const base = `${stem.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 60)}-${stamp}`;
  let name = base;
  for (let i = 2; existing.has(name); i++) name = `${base}-${i}`;
  return name;
}

/**
 * A folder holding only what a training run writes before its config.json (the tokenizer, the
 * token files, temporary files): a run killed early, not a damaged model.
 */
function startedRunOnly(dir: string): boolean {
  if (hasModelConfig(dir)) return false;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return false;
  }
  return entries.every((e) => e === 'tokenizer.json' || e === 'data' || e.endsWith('.tmp'));
}

export class ModelStore {
  constructor(readonly modelsDir: string, private readonly lock: StoreLockOptions = {}) {}

  /** The folder of a model, after checking the name cannot escape the models dir. */
  dirOf(name: unknown): string {
    if (!isModelName(name)) {
      throw new ModelStoreError('invalidName', `invalid model name ${JSON.stringify(name)} (letters, digits, '.', '_' and '-' only)`);
    }
    return path.join(this.modelsDir, name);
  }

  async names(): Promise<string[]> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(this.modelsDir, { withFileTypes: true });
    } catch {
      return []; // no models dir yet: no models
    }
    return entries.filter((e) => e.isDirectory() && isModelName(e.name)).map((e) => e.name).sort();
  }

  /** Everything the list shows about one folder; a bad folder is described, never thrown. */
  async describe(name: string, training: string | null, active: string | null): Promise<ModelInfo> {
    const dir = this.dirOf(name);
    const info: ModelInfo = { name, dir, state: 'ready', active: name === active };
    // Trained by another process (a second window, `wlm train`): its training lock names the model.
    const trainer = name === training ? null : trainingLockOwner(this.modelsDir);
    const elsewhere = trainer?.model === name ? trainer : null;
    const trainedNow = name === training || elsewhere !== null;
    let config: ModelFolderConfig | undefined;
    try {
      config = await readModelConfig(dir);
    } catch (err) {
      info.state = trainedNow ? 'training' : startedRunOnly(dir) ? 'incomplete' : 'corrupt';
      if (info.state === 'incomplete') info.reason = 'training stopped before it saved its settings (no config.json yet); run the same training again (with --resume it starts afresh), or delete it';
      else if (elsewhere) info.reason = `being trained by ${describeOwner(elsewhere)}`;
      else if (!trainedNow) info.reason = (err as Error).message;
      return info;
    }
    info.preset = config.preset;
    info.createdAt = config.createdAt;
    info.parent = config.parent ? path.basename(config.parent) : undefined;
    info.backend = config.backend ? `${config.backend.name} (${config.backend.device})` : undefined;
    info.dataBytes = config.data?.bytes;
    info.dataTokens = total(config.data?.tokens);
    info.step = config.step;
    info.bestValLoss = config.bestValLoss;
    const resumable = !trainedNow && hasResumeState(dir);
    const resume = resumable ? '; its run can continue where it stopped (wlm train --resume)' : '';
    if (trainedNow) {
      info.state = 'training';
      if (elsewhere) info.reason = `being trained by ${describeOwner(elsewhere)}`;
    } else if (!existsSync(path.join(dir, 'model.json'))) {
      info.state = 'incomplete';
      info.reason = `${resumable ? 'no weights saved yet (stopped before its first evaluation)' : 'no weights saved (training stopped before its first checkpoint)'}${resume}`;
    } else if (!existsSync(path.join(dir, ONNX_FILE))) {
      info.state = 'incomplete';
      info.reason = `not exported yet (stopped: ${config.stopReason ?? 'unknown'} at step ${config.step}); selecting it exports ${ONNX_FILE} first${resume}`;
    }
    if (info.state === 'incomplete' && resumable) info.resumable = true;
    return info;
  }

  async list(training: string | null): Promise<{ models: ModelInfo[]; active: string | null }> {
    const active = await this.readActive();
    const models = await Promise.all((await this.names()).map((name) => this.describe(name, training, active)));
    return { models, active };
  }

  /**
   * The folder of a model that can serve: corrupt, missing or still-training folders are refused
   * with the reason. (A checkpoint left by a stopped run is exported when its session opens.)
   */
  async prepare(name: string, training: string | null): Promise<string> {
    const dir = this.dirOf(name);
    if (!existsSync(dir)) throw new ModelStoreError('notFound', `no model named "${name}" in ${this.modelsDir}`);
    const info = await this.describe(name, training, null);
    if (info.state === 'training') throw new ModelStoreError('busy', `model "${name}" is still training${info.reason ? ` (${info.reason})` : ''}; wait for it or cancel the training`);
    if (info.state === 'corrupt') throw new ModelStoreError('notFound', `model "${name}" cannot be used: ${info.reason}`);
    if (!existsSync(path.join(dir, 'model.json'))) throw new ModelStoreError('notFound', `model "${name}" cannot be used: ${info.reason}`);
    return dir;
  }

  async readActive(): Promise<string | null> {
    try {
      const parsed = JSON.parse(await fs.readFile(path.join(this.modelsDir, ACTIVE_FILE), 'utf8')) as { name?: unknown };
      return isModelName(parsed.name) ? parsed.name : null;
    } catch {
      return null; // none chosen yet, or an unreadable file: serve nothing rather than guess
    }
  }

  /** Chooses the model that serves (null: none), under the store lock; a model deleted meanwhile is refused. */
  async writeActive(name: string | null): Promise<void> {
    await this.locked('choosing the active model', async () => {
      if (name !== null && !existsSync(this.dirOf(name))) throw new ModelStoreError('notFound', `no model named "${name}" in ${this.modelsDir} (deleted meanwhile?)`);
      await this.writeActiveUnlocked(name);
    });
  }

  private async writeActiveUnlocked(name: string | null): Promise<void> {
    await writeFileAtomic(path.join(this.modelsDir, ACTIVE_FILE), JSON.stringify({ name }) + '\n');
  }

  /** Deletes a model folder and its run cache, under the store lock; never one being trained, here or elsewhere. */
  async remove(name: string, training: string | null): Promise<void> {
    const dir = this.dirOf(name);
    if (name === training) throw new ModelStoreError('busy', `model "${name}" is training; cancel the training before deleting it`);
    await this.locked(`deleting model "${name}"`, async () => {
      const trainer = trainingLockOwner(this.modelsDir);
      if (trainer?.model === name) throw new ModelStoreError('busy', `model "${name}" is being trained by ${describeOwner(trainer)}; cancel that training before deleting it`);
      if (!existsSync(dir)) throw new ModelStoreError('notFound', `no model named "${name}" in ${this.modelsDir}`);
      if ((await this.readActive()) === name) await this.writeActiveUnlocked(null);
      await fs.rm(dir, { recursive: true, force: true });
      await clearRunCache(dir);
    });
  }

  private async locked<T>(doing: string, section: () => Promise<T>): Promise<T> {
    try {
      return await withStoreLock(this.modelsDir, `${this.lock.holder ?? 'wlm'}, ${doing}`, section, { onWait: this.lock.onWait });
    } catch (err) {
      throw err instanceof LockHeldError ? new ModelStoreError('busy', err.message) : err;
    }
  }
}
