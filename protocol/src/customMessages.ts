// The custom messages between the VS Code client and the Workspace LM server, each declared once
// with its method and typed params/result (vscode-eslint's $shared/customMessages.ts). The client
// (client/src, client/media) and the server (server/src) both import this file, and neither
// imports the other. It holds wire types only: no logic. The payloads that are files of a model
// folder are typed by their owners in models/ (eval.json: EvalReport; metrics.jsonl: StepMetrics),
// and so are a completion session's counters (CompletionStats), imported as types only: importing
// this file pulls no model code into the client bundle.
import { NotificationType, RequestType, type WorkDoneProgressParams } from 'vscode-languageserver-protocol';
import type { EvalReport } from '../../models/src/eval/report';
import type { StepMetrics } from '../../models/src/train/metricsLog';
import type { CompletionStats } from '../../models/src/infer/session';
import type { ModelInfo } from '../../models/src/model/store';
import type { RunStart } from '../../models/src/model/checkpoint';

export type { EvalReport, StepMetrics, CompletionStats, ModelInfo, RunStart };

/** Error codes of failed custom requests (the JSON-RPC range reserved for servers). */
export namespace ErrorCodes {
  export const invalidParams = -32602; // JSON-RPC's own code: the params are malformed
  export const busy = -32001; // a job is already running
  export const untrusted = -32002; // the workspace is not trusted: no training
  export const notFound = -32003; // no such model
  export const jobFailed = -32004; // the worker reported an error
}

// prepare: a serving folder made from the base model without training, for a workspace with no
// model of its own (the server starts it by itself).
export type JobKind = 'train' | 'fineTune' | 'evaluate' | 'prepare';

/** What a job ended with. `cancelled` keeps the last good checkpoint. */
export interface JobResult {
  jobId: number;
  kind: JobKind;
  model: string; // model name (its folder's name in the models dir)
  modelDir: string;
  step: number;
  bestValLoss: number | null;
  stopReason: string; // 'maxSteps' | 'maxMinutes' | 'earlyStop' | 'cancelled' | 'evaluated' | 'noTraining' | ...
  activated: boolean; // the new model now serves completions
  start?: RunStart; // where its weights started (the base, the model fine-tuned, or scratch) and why
  ms: number;
}

export namespace TrainRequest {
  export const method = 'workspaceLm/train';
  export interface Params extends WorkDoneProgressParams {
    folder?: string; // default: the first workspace folder
    preset?: string; // default: the workspaceLm.preset setting
    steps?: number; // override the preset's optimiser steps
    minutes?: number; // wall-clock budget instead of steps
    name?: string; // model name; default `<preset>-<timestamp>`
    fromScratch?: boolean; // a workspace tokenizer and random weights instead of fine-tuning the base model
  }
  export const type = new RequestType<Params, JobResult, void>(method);
}

export namespace FineTuneRequest {
  export const method = 'workspaceLm/fineTune';
  /** changed: files changed since the base model's commit (git) or its creation (mtimes). */
  export type Scope = 'changed' | 'folder' | 'files';
  export interface Params extends WorkDoneProgressParams {
    base?: string; // model name; default: the active model
    scope: Scope;
    files?: string[]; // for scope 'files': paths relative to the folder
    folder?: string;
    steps?: number;
    learningRate?: number;
    freezeLayers?: number; // keep the lowest K blocks fixed
    loraRank?: number; // train low-rank adapters of this rank instead of the weights, merged into them when saved; not with freezeLayers
    name?: string;
  }
  export const type = new RequestType<Params, JobResult, void>(method);
}

export namespace EvaluateRequest {
  export const method = 'workspaceLm/evaluate';
  export interface Params extends WorkDoneProgressParams {
    model?: string; // default: the active model
    folder?: string; // default: the first workspace folder
    lines?: number; // completion sites to score
  }
  export interface Result {
    jobId: number;
    model: string;
    report: EvalReport; // eval.json, as written
    table: string; // the same, as a text table for the output channel
    ms: number;
  }
  export const type = new RequestType<Params, Result, void>(method);
}


export namespace ModelsRequest {
  export const method = 'workspaceLm/models';
  export type Params = { action: 'list' } | { action: 'select'; name: string } | { action: 'delete'; name: string };
  export interface Result {
    models: ModelInfo[];
    active: string | null;
    modelsDir: string;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

export namespace CancelRequest {
  export const method = 'workspaceLm/cancel';
  export interface Params {
    jobId?: number; // default: the running job
  }
  export interface Result {
    cancelled: boolean;
    jobId: number | null;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** How long a preset would train here: its budgets, the speed it is expected to run at, and why. */
export interface PresetEstimate {
  name: string;
  description: string; // what it is for (the preset file's own words)
  meantForGpu: boolean; // far too slow on a CPU to reach its planned steps
  parameters: number;
  maxSteps: number;
  maxMinutes: number; // wall-clock budget; 0: none
  /** Training tokens per second expected here, and where that figure comes from; null: no figure. */
  speed: { tokensPerSecond: number; source: 'here' | 'scaled' | 'measured'; detail: string } | null;
  trainMs: number | null; // expected training time: the planned steps at that speed, or the time budget if it ends first
  endsBy: 'maxSteps' | 'maxMinutes' | null; // the budget expected to end the run
  expectedSteps: number | null; // steps done when it ends: maxSteps, or fewer when the time budget ends it
}

/** What the server knows about the engine a training would run on, without starting one. */
export interface BackendGuess {
  device: 'gpu' | 'cpu' | 'unknown';
  name: string | null; // the backend setting or the last one trained on; null: not known yet
  reason: string; // how the server knows, in words
}

export namespace PresetsRequest {
  export const method = 'workspaceLm/presets';
  export type Params = Record<string, never>;
  export interface Result {
    presets: PresetEstimate[]; // in PRESET_NAMES order
    preferred: string; // the workspaceLm.preset setting
    backend: BackendGuess;
    // The base model Train fine-tunes, and the preset with its architecture (other presets train
    // from scratch); null: no base model here, every preset trains from scratch.
    base: { dir: string; preset: string } | null;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

export namespace SummarizeRequest {
  export const method = 'workspaceLm/summarize';
  export interface Params {
    textDocument: { uri: string }; // an open document
    position: { line: number; character: number }; // inside the function, method or class
  }
  export interface Result {
    model: string;
    name: string | null; // the definition's name; null when anonymous
    kind: string; // 'function' | 'method' | 'class' | 'type'
    summary: string; // one line; '' when the model proposed nothing
    docComment: string | null; // ready to insert (with indent and newline), null for an empty summary
    insertLine: number; // 0-based line the doc comment goes before
    trainedForSummaries: boolean; // false: the model saw no summary examples, expect noise
    ms: number;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

export namespace MetricsHistoryRequest {
  export const method = 'workspaceLm/metricsHistory';
  export interface Params {
    model?: string; // default: the active model
  }
  export interface Result {
    model: string;
    metrics: StepMetrics[]; // metrics.jsonl as its reader (readMetricsLog) gives it: step order, one per step
    badLines: number; // metrics.jsonl lines that could not be read (a half-written last line, hand edits)
    eval: EvalReport | null; // eval.json; null when not evaluated, or when it cannot be read
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/**
 * The serving completion session's counters since it opened (CompletionStats, typed by
 * models/src/infer/session.ts): prompt positions run through the model or taken from its KV cache,
 * generated positions, milliseconds per phase. For tests and latency measurements; the client does
 * not ask for it.
 */
export namespace CompletionStatsRequest {
  export const method = 'workspaceLm/completionStats';
  export type Params = Record<string, never>;
  export interface Result {
    model: string | null; // the serving model; null when none serves
    provider: string | null;
    stats: CompletionStats | null; // null when no model serves
  }
  export const type = new RequestType<Params, Result, void>(method);
}

/** Sent for each logged training step. */
export namespace MetricsNotification {
  export const method = 'workspaceLm/metrics';
  export interface Params {
    jobId: number;
    kind: JobKind;
    model: string;
    maxSteps: number;
    maxMinutes: number; // the run's wall-clock budget; 0: none
    percentage: number; // 0–100, by whichever budget ends the run first (steps or minutes)
    etaMs: number | null; // time left by the same rule; null until the pace is known
    metrics: StepMetrics;
  }
  export const type = new NotificationType<Params>(method);
}

export interface JobStatus {
  id: number;
  kind: JobKind;
  model: string;
  step: number;
  maxSteps: number;
  maxMinutes: number; // a training run's wall-clock budget; 0: none (and for an evaluation)
  percentage: number; // 0–100; a training run's by whichever budget ends it first (steps or minutes)
  etaMs: number | null; // time left by the same rule; null until the pace is known, and for an evaluation
  message: string; // the latest status line from the pipeline
  backend: string | null; // training backend and device once chosen
  automatic?: true; // started by the server itself (workspaceLm.autoFineTune), not asked for: typing cancels it
}

/** Sent whenever the active model, the serving provider or a job changes. */
export namespace StatusNotification {
  export const method = 'workspaceLm/status';
  export interface Params {
    activeModel: string | null;
    provider: string | null; // onnxruntime execution provider serving completions
    job: JobStatus | null;
    trusted: boolean;
    modelsDir: string;
  }
  export const type = new NotificationType<Params>(method);
}

/** What the client passes at initialize (all optional for other clients). */
export interface InitializationOptions {
  storageDir?: string; // the extension's workspace storage; models go to <storageDir>/models
  trusted?: boolean; // VS Code workspace trust; default true
  settings?: Record<string, unknown>; // settings for clients without workspace/configuration
  baseModel?: string | null; // a base model folder instead of the bundled one (or $WLM_BASE_MODEL); null: none
}
