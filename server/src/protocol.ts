// The custom messages between the VS Code client and the Workspace LM server, each declared once
// with its method and typed params/result (the vscode-eslint way). Both sides import this file.
// It holds wire types only: no logic, and nothing from models/ (the client bundle stays small).
import { NotificationType, RequestType, type WorkDoneProgressParams } from 'vscode-languageserver-protocol';

/** Error codes of failed custom requests (the JSON-RPC range reserved for servers). */
export namespace ErrorCodes {
  export const invalidParams = -32602; // JSON-RPC's own code: the params are malformed
  export const busy = -32001; // a job is already running
  export const untrusted = -32002; // the workspace is not trusted: no training
  export const notFound = -32003; // no such model
  export const jobFailed = -32004; // the worker reported an error
}

export type JobKind = 'train' | 'fineTune' | 'evaluate';

/** What a job ended with. `cancelled` keeps the last good checkpoint. */
export interface JobResult {
  jobId: number;
  kind: JobKind;
  model: string; // model name (its folder's name in the models dir)
  modelDir: string;
  step: number;
  bestValLoss: number | null;
  stopReason: string; // 'maxSteps' | 'maxMinutes' | 'patience' | 'cancelled' | 'evaluated' | ...
  activated: boolean; // the new model now serves completions
  ms: number;
}

/** One logged optimiser step, as written to metrics.jsonl. */
export interface StepMetrics {
  step: number;
  tokens: number;
  trainLoss: number;
  valLoss?: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  elapsedMs: number;
}

export namespace TrainRequest {
  export const method = 'workspaceLm/train';
  export interface Params extends WorkDoneProgressParams {
    folder?: string; // default: the first workspace folder
    preset?: string; // default: the workspaceLm.preset setting
    steps?: number; // override the preset's optimiser steps
    minutes?: number; // wall-clock budget instead of steps
    name?: string; // model name; default `<preset>-<timestamp>`
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
    report: Record<string, unknown>; // eval.json as written by models/src/eval/evaluate.ts
    table: string; // the same, as a text table for the output channel
    ms: number;
  }
  export const type = new RequestType<Params, Result, void>(method);
}

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
  active: boolean;
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
    metrics: StepMetrics[];
    eval: Record<string, unknown> | null;
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
  message: string; // the latest status line from the pipeline
  backend: string | null; // training backend and device once chosen
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
}
