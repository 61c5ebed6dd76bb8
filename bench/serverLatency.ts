// Completion latency as the editor sees it: the built language server over stdio, a real package
// as the workspace (three@0.160.0's examples/jsm/loaders, 52 files, 1.1 MB), two of its longest
// files open (GLTFLoader.js 108 KB, FBXLoader.js 101 KB), and lines re-typed one character at a
// time (an incremental didChange, then an automatic inline completion request, debounce 0), early
// in the files (their first 5%) and deep in them (past 80 KB). The model is the one a workspace
// without a model of its own gets: the server prepares a default-preset folder from the bundled
// base without a gradient step (wlm train --minutes 0), the workspace's n-gram and mixture with it.
//
// Two sections:
//   latency        p50/p95 of the requests that ran the model and of those served without it
//                  (typed-ahead, cache), early and deep; where each millisecond of a model request
//                  goes; the server's memory while it serves. The requests that ran the model are
//                  then replayed on a CompletionSession in this process (the direct figures, and
//                  the mixture's share, which the server's phases fold into prefill and decode).
//   whiletraining  the same typing while the server trains a model (a Train request, its worker
//                  thread on the same cores) against idle, in the same run (issue #15 item 5).
import { existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { CancelRequest, ModelsRequest, TrainRequest, type CompletionStats, type JobResult } from '../protocol/src/customMessages';
import { CompletionSession } from '../models/src/infer/session';
import { DEFAULT_PRESET } from '../models/src/model/config';
import { percentile } from '../models/src/eval/metrics';
import { ensureCorpus, CACHE_DIR } from './corpus';
import { LspDriver, type TimedRequest } from './lspDriver';

export const LATENCY_PACKAGE = 'three@0.160.0';
const WORKSPACE_SUBDIR = 'examples/jsm/loaders';
const FILES = ['GLTFLoader.js', 'FBXLoader.js'];
const EARLY_SHARE = 0.05; // "early": the line starts in the file's first 5%
const DEEP_FROM = 80_000; // "deep": the line starts past this many characters
const MAX_TOKENS = 16;
const STORAGE = path.join(CACHE_DIR, 'runs', 'server-latency-storage');

// Issue #14 item 2.
const GOALS = { modelP50Ms: 8, modelP95Ms: 20 };
// Issue #15 item 5.
const WHILE_TRAINING_GOAL = { p95Ratio: 2 };
const MIN_STEPS_WHILE_TYPING = 5;
const MAX_BUSY_PASSES = 20;

export interface ServerLatencyOptions {
  linesPerRegion?: number; // lines typed per file in each region (early, deep); default 4
  maxChars?: number; // characters typed per line at most; default 32
  replay?: boolean; // replay the model requests on an in-process session; default true
}

interface TypedLine {
  file: string; // absolute path
  uri: string;
  region: 'early' | 'deep';
  line: number; // 0-based
  indent: number; // characters before the content
  content: string; // the line's text after its indent, trailing spaces dropped
}

/** What each keystroke of a typed line asked, for the replay: the document and cursor. */
interface Keystroke {
  typed: TypedLine;
  chars: number; // characters of the content typed so far (the cursor is after them)
  request: TimedRequest;
}

// ---------------------------------------------------------------------------------------------
// Which lines to type

/** Lines worth typing: code of 12–100 characters, not a comment line; spread evenly over the region. */
function pickLines(file: string, text: string, count: number): TypedLine[] {
  const uri = pathToFileURL(file).href;
  const candidates: { region: 'early' | 'deep'; line: number; indent: number; content: string }[] = [];
  let offset = 0;
  text.split('\n').forEach((raw, line) => {
    const content = raw.trim();
    const indent = raw.length - raw.trimStart().length;
    const region = offset < EARLY_SHARE * text.length ? 'early' : offset >= DEEP_FROM ? 'deep' : null;
    offset += raw.length + 1;
    if (!region || content.length < 12 || content.length > 100 || /^(\*|\/\/|\/\*)/.test(content) || raw.includes('\r')) return;
    candidates.push({ region, line, indent, content });
  });
  const picked: TypedLine[] = [];
  for (const region of ['early', 'deep'] as const) {
    const inRegion = candidates.filter((c) => c.region === region);
    const step = inRegion.length / count;
    for (let i = 0; i < count && i < inRegion.length; i++) picked.push({ file, uri, ...inRegion[Math.floor((i + 0.5) * step)] });
  }
  return picked;
}

// ---------------------------------------------------------------------------------------------
// Typing

/**
 * Re-types each line as a user would: its content is cleared (one edit), typed a character at a
 * time with a completion request after each, and the rest pasted back (one edit).
 */
async function typeLines(lsp: LspDriver, lines: TypedLine[], maxChars: number): Promise<Keystroke[]> {
  const keystrokes: Keystroke[] = [];
  for (const typed of lines) {
    const { line, indent, content } = typed;
    await lsp.change(typed.uri, { line, character: indent }, { line, character: indent + content.length }, '');
    const chars = Math.min(content.length, maxChars);
    for (let k = 0; k < chars; k++) {
      await lsp.change(typed.uri, { line, character: indent + k }, { line, character: indent + k }, content[k]);
      keystrokes.push({ typed, chars: k + 1, request: await lsp.complete(typed.uri, { line, character: indent + k + 1 }) });
    }
    await lsp.change(typed.uri, { line, character: indent + chars }, { line, character: indent + chars }, content.slice(chars));
  }
  return keystrokes;
}

function round(x: number, digits = 2): number {
  return Number.isFinite(x) ? +x.toFixed(digits) : x;
}

function summary(ms: number[]) {
  return ms.length === 0
    ? { count: 0 }
    : { count: ms.length, p50Ms: round(percentile(ms, 50)), p95Ms: round(percentile(ms, 95)), meanMs: round(ms.reduce((a, b) => a + b, 0) / ms.length), maxMs: round(Math.max(...ms)) };
}

/** p50/p95 of the keystrokes, split by whether the model ran and where the line is. */
function latencyTable(keystrokes: Keystroke[]) {
  const pick = (region: 'early' | 'deep' | null, model: boolean) =>
    keystrokes.filter((k) => (region === null || k.typed.region === region) && k.request.reachedModel === model).map((k) => k.request.ms);
  const hitKinds: Record<string, number> = {};
  for (const k of keystrokes) if (!k.request.reachedModel) hitKinds[k.request.source] = (hitKinds[k.request.source] ?? 0) + 1;
  return {
    keystrokes: keystrokes.length,
    reachedModel: { all: summary(pick(null, true)), early: summary(pick('early', true)), deep: summary(pick('deep', true)) },
    // Served without running the model: the suggestion being typed into, the LRU cache, or no place to complete.
    withoutModel: { all: summary(pick(null, false)), early: summary(pick('early', false)), deep: summary(pick('deep', false)), bySource: hitKinds },
    shownRate: round(keystrokes.filter((k) => k.request.shown).length / Math.max(1, keystrokes.length), 3),
  };
}

type Phase = keyof CompletionStats['ms'];
const PHASES: Phase[] = ['window', 'tokenize', 'prefill', 'decode', 'postprocess'];

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Mean milliseconds per model request, by phase, as the server's session counted them. */
function serverBreakdown(keystrokes: Keystroke[]) {
  const model = keystrokes.filter((k) => k.request.reachedModel && k.request.phases);
  const phase = (p: Phase) => mean(model.map((k) => k.request.phases![p]));
  const sessionMs = (k: Keystroke) => PHASES.reduce((s, p) => s + k.request.phases![p], 0);
  const withServerMs = model.filter((k) => k.request.serverMs !== undefined);
  return {
    requests: model.length,
    clientMs: mean(model.map((k) => k.request.ms)),
    phases: Object.fromEntries(PHASES.map((p) => [p, phase(p)])) as Record<Phase, number>,
    lsp: mean(model.map((k) => k.request.ms - sessionMs(k))), // client-observed total minus the session's phases
    // The same split further, where the server's log line gave its own figure for the request.
    lspTransport: withServerMs.length ? mean(withServerMs.map((k) => k.request.ms - k.request.serverMs!)) : null, // JSON-RPC, stdio, document sync
    serverGlue: withServerMs.length ? mean(withServerMs.map((k) => k.request.serverMs! - sessionMs(k))) : null, // InlineCompleter: digest, cache, queue, document sync into the mixture
    prefillPositions: { p50: percentile(model.map((k) => k.request.prefill!), 50), p95: percentile(model.map((k) => k.request.prefill!), 95) },
    promptPositions: { p50: percentile(model.map((k) => k.request.prompt!), 50) },
  };
}

// ---------------------------------------------------------------------------------------------
// The replay: the same model requests on a session in this process, with the mixture timed apart

interface Replay {
  direct: ReturnType<typeof summary>;
  phases: Record<Phase, number>; // means per request
  mixture: { prefill: number; decode: number } | null; // means per request: the first mixture call, and the rest; null: not seen
}

async function replay(modelDir: string, keystrokes: Keystroke[], texts: Map<string, string>): Promise<Replay> {
  const session = await CompletionSession.open(modelDir);
  try {
    let calls: number[] = [];
    const mixture = session.mixture;
    if (mixture) {
      const probs = mixture.probs.bind(mixture);
      mixture.probs = (...args: Parameters<typeof probs>) => {
        const started = performance.now();
        const out = probs(...args);
        calls.push(performance.now() - started);
        return out;
      };
    }
    // As the server does: the other open documents are shown to the mixture's cache. Each typed
    // line is whole again before the next one is typed, so they are as opened.
    const observed = new Set<string>();
    const ms: number[] = [];
    const phaseSums = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>;
    const mix = { prefill: 0, decode: 0 };
    let runs = 0;
    let mixtureCalls = 0;
    for (const { typed, chars, request } of keystrokes) {
      if (!request.reachedModel) continue;
      const lines = texts.get(typed.uri)!.split('\n');
      const before = lines.slice(0, typed.line).join('\n') + (typed.line > 0 ? '\n' : '');
      const prefix = before + lines[typed.line].slice(0, typed.indent) + typed.content.slice(0, chars);
      const suffix = '\n' + lines.slice(typed.line + 1).join('\n');
      for (const [uri, text] of texts) {
        if (uri !== typed.uri && !observed.has(uri)) {
          session.observeDocument(uri, text);
          observed.add(uri);
        }
      }
      calls = [];
      const r = await session.complete({ prefix, suffix, mode: 'line', maxTokens: MAX_TOKENS, uri: typed.uri, minMeanLogProb: Math.log(0.3) });
      ms.push(r.ms);
      for (const p of PHASES) phaseSums[p] += r.phaseMs[p];
      mixtureCalls += calls.length;
      mix.prefill += calls[0] ?? 0;
      mix.decode += calls.slice(1).reduce((a, b) => a + b, 0);
      runs++;
    }
    const n = Math.max(1, runs);
    return {
      direct: summary(ms),
      phases: Object.fromEntries(PHASES.map((p) => [p, round(phaseSums[p] / n)])) as Record<Phase, number>,
      // No call seen: no mixture here, or the session no longer mixes through Mixture.probs.
      mixture: mixtureCalls > 0 ? { prefill: round(mix.prefill / n), decode: round(mix.decode / n) } : null,
    };
  } finally {
    await session.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The server on the workspace, with a model that serves

interface Served {
  lsp: LspDriver;
  workspace: string;
  model: string;
  modelDir: string;
  prepareSeconds: number | null; // time until the prepared model served (null: it was there already)
}

async function startServing(fresh: boolean): Promise<Served> {
  const workspace = ensureCorpus(LATENCY_PACKAGE, WORKSPACE_SUBDIR);
  if (fresh) rmSync(STORAGE, { recursive: true, force: true });
  const prepared = existsSync(path.join(STORAGE, 'models'));
  const started = performance.now();
  const lsp = await LspDriver.start(workspace, { storageDir: STORAGE, settings: { debounceMs: 0, maxTokens: MAX_TOKENS } });
  // No model of its own: the server prepares one from the base in a job, and serves it when ready.
  const ready = await lsp.until('a model serving and no job running', () => {
    const s = lsp.status;
    return s && s.activeModel && s.job === null ? s : null;
  }, 300_000);
  const stats = await lsp.stats();
  if (!stats.stats || stats.model !== ready.activeModel) throw new Error(`the server reports ${stats.model} serving, its status said ${ready.activeModel}`);
  return {
    lsp,
    workspace,
    model: ready.activeModel!,
    modelDir: path.join(ready.modelsDir, ready.activeModel!),
    prepareSeconds: prepared ? null : round((performance.now() - started) / 1000, 1),
  };
}

async function openFiles(served: Served, opts: ServerLatencyOptions): Promise<{ lines: TypedLine[]; texts: Map<string, string> }> {
  const lines: TypedLine[] = [];
  const texts = new Map<string, string>();
  for (const name of FILES) {
    const file = path.join(served.workspace, name);
    const { uri, text } = await served.lsp.open(file, 'javascript');
    texts.set(uri, text);
    lines.push(...pickLines(file, text, opts.linesPerRegion ?? 4));
  }
  return { lines, texts };
}

// ---------------------------------------------------------------------------------------------
// The sections

export async function serverLatencyBench(opts: ServerLatencyOptions = {}) {
  const started = performance.now();
  const served = await startServing(true);
  const { lsp } = served;
  let keystrokes: Keystroke[];
  let memory: ReturnType<LspDriver['memory']>;
  let texts: Map<string, string>;
  let lines: TypedLine[];
  try {
    ({ lines, texts } = await openFiles(served, opts));
    keystrokes = await typeLines(lsp, lines, opts.maxChars ?? 32);
    memory = lsp.memory();
  } finally {
    await lsp.stop();
  }
  const table = latencyTable(keystrokes);
  const server = serverBreakdown(keystrokes);
  const direct = opts.replay === false ? null : await replay(served.modelDir, keystrokes, texts);
  // One line: where each millisecond of a model request goes, through the server. The mixture
  // runs inside the server's prefill and decode phases; its share is the replay's.
  const mixture = direct?.mixture ? direct.mixture.prefill + direct.mixture.decode : null;
  const breakdown = {
    requests: server.requests,
    promptWindow: round(server.phases.window),
    tokenization: round(server.phases.tokenize),
    kvPrefill: round(server.phases.prefill - (direct?.mixture?.prefill ?? 0)),
    decode: round(server.phases.decode - (direct?.mixture?.decode ?? 0)),
    mixture: mixture === null ? null : round(mixture),
    postprocess: round(server.phases.postprocess),
    lsp: round(server.lsp),
    lspTransport: server.lspTransport === null ? null : round(server.lspTransport),
    serverGlue: server.serverGlue === null ? null : round(server.serverGlue),
    total: round(server.clientMs),
    note: 'mean ms per request that ran the model; kvPrefill and decode are the server session\'s phases less the mixture, whose share comes from replaying the same requests in-process; lsp = client-observed total minus the session\'s phases (= lspTransport + serverGlue)',
  };
  const modelAll = table.reachedModel.all as { p50Ms?: number; p95Ms?: number };
  return {
    workspace: `${LATENCY_PACKAGE}/${WORKSPACE_SUBDIR}`,
    files: FILES.map((f) => ({ name: f, chars: texts.get(pathToFileURL(path.join(served.workspace, f)).href)!.length })),
    model: served.model,
    modelDir: served.modelDir,
    prepareSeconds: served.prepareSeconds,
    maxTokens: MAX_TOKENS,
    debounceMs: 0,
    linesTyped: { early: lines.filter((l) => l.region === 'early').length, deep: lines.filter((l) => l.region === 'deep').length },
    ...table,
    breakdown,
    positions: { prefill: server.prefillPositions, prompt: server.promptPositions },
    // The five slowest model requests, where their milliseconds went: what the p95 is made of.
    slowest: keystrokes
      .filter((k) => k.request.reachedModel && k.request.phases)
      .sort((a, b) => b.request.ms - a.request.ms)
      .slice(0, 5)
      .map((k) => ({ ms: round(k.request.ms), region: k.typed.region, charsTyped: k.chars, prefill: k.request.prefill, serverMs: k.request.serverMs === undefined ? null : round(k.request.serverMs), phases: Object.fromEntries(PHASES.map((p) => [p, round(k.request.phases![p])])) })),
    direct: direct && { modelRequests: direct.direct, phases: direct.phases, mixture: direct.mixture },
    serverMemory: memory && { ...memory, goalRssMB: 300, pass: memory.rssMB <= 300, note: 'VmRSS after the typing, serving the prepared default model; the preparation job ran in a child process, so VmHWM is the serving peak' },
    goals: { ...GOALS, pass: (modelAll.p50Ms ?? Infinity) <= GOALS.modelP50Ms && (modelAll.p95Ms ?? Infinity) <= GOALS.modelP95Ms },
    seconds: round((performance.now() - started) / 1000, 1),
  };
}

export interface WhileTrainingOptions {
  linesPerRegion?: number; // per file and region; default 4
  maxChars?: number; // default 32
  trainMinutes?: number; // the training run's budget; it is cancelled once the typing is done (default 10)
}

export async function whileTrainingBench(opts: WhileTrainingOptions = {}) {
  const started = performance.now();
  const served = await startServing(false);
  const { lsp } = served;
  const maxChars = opts.maxChars ?? 32;
  try {
    const { lines } = await openFiles(served, { linesPerRegion: opts.linesPerRegion ?? 4 });
    const resetCaches = () => lsp.connection.sendNotification('workspace/didChangeConfiguration', { settings: {} });
    // A warm-up pass (discarded), then idle and training passes over the same lines, each after
    // the server's completion cache was reset (typing the same text again would only hit it).
    await typeLines(lsp, lines, maxChars);
    await resetCaches();
    const idle = await typeLines(lsp, lines, maxChars);
    await resetCaches();
    const training: Promise<JobResult> = lsp.connection.sendRequest(TrainRequest.method, { preset: DEFAULT_PRESET, minutes: opts.trainMinutes ?? 10 });
    training.catch(() => undefined);
    const firstStep = await lsp.until('the first training step', () => lsp.metrics.find((m) => m.kind === 'train'), 600_000);
    const backend = lsp.status?.job?.backend ?? null;
    // A pass types in a few seconds and a training step takes about a second beside it, so passes
    // are repeated (the completion cache reset before each) until the run has taken
    // MIN_STEPS_WHILE_TYPING steps: one pass alone saw no step finish.
    const lastTrain = () => lsp.metrics.filter((m) => m.kind === 'train').at(-1) ?? firstStep;
    const stepsDuring = () => lastTrain().metrics.step - firstStep.metrics.step;
    const busy: Keystroke[] = [];
    let busyPasses = 0;
    do {
      if (busyPasses > 0) await resetCaches();
      busy.push(...(await typeLines(lsp, lines, maxChars)));
      busyPasses++;
    } while (stepsDuring() < MIN_STEPS_WHILE_TYPING && busyPasses < MAX_BUSY_PASSES);
    const stillTraining = lsp.status?.job?.kind === 'train';
    await lsp.connection.sendRequest(CancelRequest.method, {});
    const result = await training;
    // The cancelled run's folder is of no further use; the prepared model keeps serving.
    await lsp.connection.sendRequest(ModelsRequest.method, { action: 'delete', name: result.model }).catch(() => undefined);
    const model = (ks: Keystroke[]) => ks.filter((k) => k.request.reachedModel).map((k) => k.request.ms);
    const all = (ks: Keystroke[]) => ks.map((k) => k.request.ms);
    const idleP95 = percentile(model(idle), 95);
    const busyP95 = percentile(model(busy), 95);
    const ratio = busyP95 / idleP95;
    return {
      workspace: `${LATENCY_PACKAGE}/${WORKSPACE_SUBDIR}`,
      model: served.model,
      training: {
        preset: DEFAULT_PRESET,
        backend,
        stepsDuringTyping: stepsDuring(),
        typingPasses: busyPasses,
        ranThroughout: stillTraining,
        stopReason: result.stopReason,
        tokensPerSecond: Math.round(lastTrain().metrics.tokensPerSecond),
      },
      idle: { modelRequests: summary(model(idle)), allRequests: summary(all(idle)) },
      whileTraining: { modelRequests: summary(model(busy)), allRequests: summary(all(busy)) },
      p95Ratio: round(ratio),
      p50Ratio: round(percentile(model(busy), 50) / percentile(model(idle), 50)),
      goal: { p95RatioAtMost: WHILE_TRAINING_GOAL.p95Ratio, pass: ratio <= WHILE_TRAINING_GOAL.p95Ratio },
      seconds: round((performance.now() - started) / 1000, 1),
    };
  } finally {
    await lsp.stop();
  }
}
