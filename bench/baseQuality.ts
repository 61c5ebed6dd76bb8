// `npm run bench -- --only base`: does the pre-trained base (models/base) earn its place? In one run,
// on the held-out files of real code it never saw, it trains and scores side by side: the 4-gram
// baseline; a model from scratch with the default 15-minute budget; the base served as it is (no
// gradient step, `wlm train --minutes 0`); the base fine-tuned 5 and 15 minutes. It does so on
// rxjs@7.8.2's src/ and on a small workspace (msw@2.7.0's src/, about 300 KB of TypeScript, where a
// 5-minute scratch run joins them), and times the first completion of the unfinetuned base on a
// workspace of about 3 MB. It returns one JSON object with the figures and the issue's goals.
//
// Minutes become steps. The machine is shared and its speed drifts, so a wall-clock budget would
// give each arm what the machine happened to allow; instead the default preset's throughput is
// measured once (CALIBRATION_STEPS steps, median step rate) at the start of the run, and "N
// minutes" is the number of steps that rate gives in N minutes. --base-scale shrinks every budget
// by the same factor for a quick run. Every arm is scored from the source files (its own
// tokenizer over the same held-out text), never from token files in a model folder.
//
// The held-out files are scored and nothing else: the arms train on a copy of the other files
// (corpus.ts benchSplit), which their pipeline splits again for the held-out loss it stops on and
// keeps the best checkpoint by, and for the completion mixture's weights. The 4-gram baseline
// counts the copy's training side, the files the arms' workspace n-gram counts.
//
// The editor's figures are taken twice: the mixture's completion of every line (`editor`, what
// the goals have always been judged on), and what the editor shows at its default settings
// (`editorAtDefaults`: workspaceLm.maxTokens, and workspaceLm.minTokenProbability hiding the
// completions the model is unsure of, a hidden one scoring as an empty completion). The goals are
// judged both ways.
//
// Each held-out line is also completed at its end, where it is done and the right completion is
// none: `finishedLine.shown` is the fraction of those where a completion would be shown, ghost
// text the user has to dismiss. No goal reads it; it is the cost side of any rule that makes the
// editor show more (a rule that completes more mid-line text tends to show more at line ends).
//
// Lines are every line of the held-out files (rxjs 1,752, msw 911), each completed from its start
// and from a random column: on samples of 200 or 400 of them, as before, one model's line-start
// edit similarity differed by up to 4 points from one sample to another. Each goal scored line
// by line also reports its margin (the figure minus what the goal asks, per line) with its
// standard error over the lines, so a reader can tell a goal missed by noise from one missed by
// far.
//
// It owns no model logic: training is pipeline.ts, decoding and mixing are session.ts, the line
// tasks are evaluate.ts, the figures metrics.ts.
//
//   node --import tsx bench/baseQuality.ts [--scale 0.2] [--lines N|all] [--out FILE]
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { printReport } from './report';
import { trainOnFolder, type PipelineEvent } from '../models/src/pipeline';
import { DEFAULT_PRESET, loadPreset } from '../models/src/model/config';
import { baseModelDir, findBaseModel } from '../models/src/model/base';
import { scanFolder, readSourceText, type SourceFile } from '../models/src/data/files';
import { tokenizeFiles, openTokenStream } from '../models/src/data/dataset';
import { CodeTokenizer } from '../models/src/data/tokenizer';
import { CompletionSession } from '../models/src/infer/session';
import { NGramModel } from '../models/src/infer/ngram';
import { ngramSystem, sampleLines, lineTask, type EvalDocument, type LineCursor } from '../models/src/eval/evaluate';
import { editSimilarity, exactMatch, NextTokenTally } from '../models/src/eval/metrics';
import { benchSplit, ensureCorpus, CACHE_DIR } from './corpus';
import { DEFAULT_SETTINGS } from '../server/src/settings';

// The workspaces, pinned. None is in the pre-training corpus (models/pretrain/manifest.json) but
// the 3 MB one, which only times the preparation of a folder and scores nothing.
const HELD_OUT = { key: 'rxjs', spec: 'rxjs@7.8.2', subdir: 'src' };
const SMALL = { key: 'msw', spec: 'msw@2.7.0', subdir: 'src' }; // 148 TypeScript files, 302 KB
const LARGE = { key: 'eslint', spec: 'eslint@10.15.0', subdir: 'lib' }; // 395 JavaScript files, 2.8 MB

const CALIBRATION_STEPS = 20;
const FIRST_COMPLETION_GOAL_MS = 60_000;

/** One model of the comparison: where it starts, and for how many (nominal) minutes it trains. */
interface ArmSpec {
  name: string;
  start: 'scratch' | 'base';
  minutes: number; // 0: the base as it is, no gradient step
}

const ARMS: Record<'rxjs' | 'msw', ArmSpec[]> = {
  rxjs: [
    { name: 'scratch+15', start: 'scratch', minutes: 15 },
    { name: 'base+0', start: 'base', minutes: 0 },
    { name: 'base+5', start: 'base', minutes: 5 },
    { name: 'base+15', start: 'base', minutes: 15 },
  ],
  // The small workspace's goal compares the base and scratch at the same 5 minutes.
  msw: [
    { name: 'scratch+5', start: 'scratch', minutes: 5 },
    { name: 'scratch+15', start: 'scratch', minutes: 15 },
    { name: 'base+0', start: 'base', minutes: 0 },
    { name: 'base+5', start: 'base', minutes: 5 },
    { name: 'base+15', start: 'base', minutes: 15 },
  ],
};

export interface BaseQualityOptions {
  scale?: number; // every training budget times this (default 1: the issue's minutes)
  lines?: number | 'all'; // held-out lines per workspace, each completed from its start and mid-line (default all)
  workspaces?: ('rxjs' | 'msw')[]; // which to run (default both); the goals of a workspace left out are not judged
  baseDir?: string; // the base model folder (default: model/base.ts baseModelDir())
  log?: (line: string) => void; // progress (default: stderr)
}

// ---------------------------------------------------------------------------------------------
// Calibration: the default preset's training throughput, now, on this machine
// ---------------------------------------------------------------------------------------------

interface Calibration {
  preset: string;
  steps: number;
  tokensPerStep: number; // batchSize × blockSize
  tokensPerSecond: number; // median step rate after the first two steps (compilation, warm-up)
  secondsPerStep: number;
  backend: string;
  device: string;
  gradientWorkers: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function calibrate(folder: string): Promise<Calibration> {
  const outDir = path.join(CACHE_DIR, 'runs', 'base-calibration');
  rmSync(outDir, { recursive: true, force: true });
  const perStep: number[] = [];
  let backend = { name: '', device: '' };
  const { config, result } = await trainOnFolder({
    folder,
    outDir,
    preset: DEFAULT_PRESET,
    fromScratch: true,
    steps: CALIBRATION_STEPS,
    minutes: 0,
    skipExport: true,
    onEvent: (e) => {
      if (e.type === 'log') perStep.push(e.metrics.tokensPerSecond);
      if (e.type === 'backend') backend = { name: e.name, device: e.device };
    },
  });
  rmSync(outDir, { recursive: true, force: true });
  const tokensPerStep = config.train.batchSize * config.model.blockSize;
  const tokensPerSecond = median(perStep.slice(2));
  if (!(tokensPerSecond > 0)) throw new Error(`calibration: no step rate measured (${perStep.length} steps logged)`);
  return {
    preset: DEFAULT_PRESET,
    steps: CALIBRATION_STEPS,
    tokensPerStep,
    tokensPerSecond: Math.round(tokensPerSecond),
    secondsPerStep: +(tokensPerStep / tokensPerSecond).toFixed(3),
    backend: backend.name,
    device: backend.device,
    gradientWorkers: result.workers,
  };
}

/** The steps the calibrated rate gives in `minutes` (scaled), at least one. */
function stepsFor(minutes: number, scale: number, calibration: Calibration): number {
  return Math.max(1, Math.round((minutes * scale * 60 * calibration.tokensPerSecond) / calibration.tokensPerStep));
}

// ---------------------------------------------------------------------------------------------
// Scoring: bits per byte over all the held-out text, and line completion
// ---------------------------------------------------------------------------------------------

interface Workspace {
  key: string;
  spec: string;
  folder: string;
  files: SourceFile[];
  heldOut: SourceFile[]; // scored, never trained on, stopped on or fitted on
  trainingFolder: string; // what the arms train on: a copy of the other files
  trainingFiles: number;
  ngramFiles: SourceFile[]; // what the arms' workspace n-gram and the 4-gram baseline count
  docs: EvalDocument[]; // the held-out files' text
  textBytes: number; // their UTF-8 bytes: what every arm's bits per byte divides by
  tasks: LineTaskAt[]; // the held-out line tasks: the same lines and cursors for every arm
  lines: number; // the held-out lines the tasks are drawn from (three cursors each)
  linesInFiles: number; // the held-out lines there are to complete
}

/** One line completion to score: a held-out line from its start, from mid-line, or at its end. */
type LineTaskAt = ReturnType<typeof lineTask> & { cursor: LineCursor; uri: string };

async function loadWorkspace(ws: { key: string; spec: string; subdir: string }, lines: number | 'all'): Promise<Workspace> {
  const split = await benchSplit(ws.spec, ws.subdir);
  const train = loadPreset(DEFAULT_PRESET).train;
  const docs: EvalDocument[] = [];
  for (const file of split.heldOut) {
    const text = await readSourceText(file);
    if (text !== null) docs.push({ relPath: file.relPath, text });
  }
  const byPath = new Map(docs.map((d) => [d.relPath, d]));
  const { samples, candidates } = sampleLines(docs, lines === 'all' ? Number.MAX_SAFE_INTEGER : lines, train.seed);
  const tasks = samples.flatMap((sample) =>
    (['lineStart', 'midLine', 'lineEnd'] as const).map((cursor) => ({ cursor, uri: sample.relPath, ...lineTask(byPath.get(sample.relPath)!, sample, cursor) })),
  );
  return {
    key: ws.key, spec: ws.spec, folder: split.folder, files: split.files, heldOut: split.heldOut,
    trainingFolder: split.trainingFolder, trainingFiles: split.trainingFiles.length, ngramFiles: split.ngramFiles,
    docs, textBytes: docs.reduce((n, d) => n + Buffer.byteLength(d.text, 'utf8'), 0), tasks, lines: samples.length, linesInFiles: candidates,
  };
}

/** Scores of one row per input position: (input.length, vocab) logits or log-probabilities. */
type RowScorer = (input: number[]) => Promise<ArrayLike<number>> | ArrayLike<number>;

interface TextScores {
  tokens: number;
  bytes: number;
  lossPerToken: number | null; // nats, in this arm's own tokens
  bitsPerByte: number | null;
  top1: number | null;
}

/** The files' tokens as training lays them out (each document after <|endoftext|>), in memory. */
async function tokenStream(files: SourceFile[], tokenizer: CodeTokenizer): Promise<Int32Array> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'wlm-base-bench-'));
  try {
    const file = path.join(scratch, 'tokens.bin');
    await tokenizeFiles(files, tokenizer, file); // plain code: no FIM, no summary examples
    const stream = openTokenStream(file);
    return stream.read(0, stream.length);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Every held-out token predicted once, in consecutive windows of the context length: the same text
 * for every arm whatever its tokenizer, so the bytes (and the bits per byte) compare exactly.
 */
async function scoreText(score: RowScorer, tokenizer: CodeTokenizer, stream: Int32Array, blockSize: number): Promise<TextScores> {
  const vocab = tokenizer.vocabSize;
  const tally = new NextTokenTally((id) => tokenizer.tokenBytes(id).length);
  for (let start = 0; start + 1 < stream.length; start += blockSize) {
    const n = Math.min(blockSize, stream.length - 1 - start);
    const scores = await score(Array.from(stream.subarray(start, start + n)));
    for (let t = 0; t < n; t++) tally.add(scores, stream[start + t + 1], t * vocab, vocab);
  }
  const s = tally.summary();
  return { tokens: s.tokens, bytes: s.bytes, lossPerToken: round(s.loss, 4), bitsPerByte: round(s.bitsPerByte, 4), top1: round(s.top1, 4) };
}

/** The n-gram as a RowScorer: each position sees only the window's earlier tokens, as the GPT does. */
function ngramRows(ngram: NGramModel): RowScorer {
  return (input) => {
    const vocab = ngram.vocabSize;
    const out = new Float32Array(input.length * vocab);
    for (let t = 0; t < input.length; t++) ngram.logProbs(input.slice(Math.max(0, t + 2 - ngram.order), t + 1), out.subarray(t * vocab, (t + 1) * vocab));
    return out;
  };
}

interface LineFigures {
  count: number;
  exactMatch: number; // fraction
  editSimilarity: number; // 0–100
}

/** One line's completion scored: exact match 0 or 1, edit similarity 0–100. */
interface LineScore {
  exactMatch: number;
  editSimilarity: number;
}

// Each summary's per-line scores, in task order (the same lines for every arm), for the goals'
// paired margins; kept out of the JSON report.
const scoresOf = new WeakMap<LineFigures, LineScore[]>();

/** Completions at the end of finished lines: how many, and the fraction where one is shown. */
interface FinishedLineFigures {
  count: number;
  shown: number;
}

class LineTally {
  private readonly scores = { lineStart: [] as LineScore[], midLine: [] as LineScore[] };
  private readonly finished = { count: 0, shown: 0 };
  add(cursor: LineCursor, prediction: string, target: string): void {
    const firstLine = prediction.split('\n')[0]; // a completer that ran past the line is scored on its first line
    if (cursor === 'lineEnd') {
      this.finished.count++;
      if (firstLine.trim() !== '') this.finished.shown++;
      return;
    }
    this.scores[cursor].push({ exactMatch: exactMatch(firstLine, target) ? 1 : 0, editSimilarity: editSimilarity(firstLine, target) });
  }
  summary(): EditorFigures {
    const figures = (rows: LineScore[]): LineFigures => {
      const f = {
        count: rows.length,
        exactMatch: round(rows.reduce((n, r) => n + r.exactMatch, 0) / Math.max(1, rows.length), 4)!,
        editSimilarity: round(rows.reduce((n, r) => n + r.editSimilarity, 0) / Math.max(1, rows.length), 2)!,
      };
      scoresOf.set(f, rows);
      return f;
    };
    const all = [...this.scores.lineStart, ...this.scores.midLine];
    const finishedLine = { count: this.finished.count, shown: round(this.finished.shown / Math.max(1, this.finished.count), 4)! };
    return { lineStart: figures(this.scores.lineStart), midLine: figures(this.scores.midLine), lineEditSimilarity: figures(all).editSimilarity, finishedLine };
  }
}

function round(value: number | null, digits: number): number | null {
  return value === null || !Number.isFinite(value) ? null : +value.toFixed(digits);
}

// ---------------------------------------------------------------------------------------------
// The arms
// ---------------------------------------------------------------------------------------------

type EditorFigures = { lineStart: LineFigures; midLine: LineFigures; lineEditSimilarity: number; finishedLine: FinishedLineFigures };

interface ArmReport {
  arm: string;
  system: 'gpt' | 'ngram';
  tokenizer: 'base' | 'workspace';
  training?: { nominalMinutes: number; scaledMinutes: number; plannedSteps: number; steps: number; trainMs: number | null; tokensPerSecond: number; bestValLoss: number | null; stopReason: string };
  // The system by itself: the GPT without n-gram or cache (for a 4-gram arm, the 4-gram).
  alone: TextScores & EditorFigures;
  // What the editor completes: the GPT mixed with the workspace n-gram and the document cache (null: no mixture).
  editor: EditorFigures | null;
  // What it shows at its default settings: the same, with the settings' token budget and the unsure completions hidden.
  editorAtDefaults: EditorFigures | null;
  evalMs: number;
}

async function trainArm(ws: Workspace, arm: ArmSpec, steps: number, baseDir: string, scale: number, log: (line: string) => void): Promise<{ modelDir: string; training?: ArmReport['training'] }> {
  const outDir = path.join(CACHE_DIR, 'runs', `base-${ws.key}-${arm.name}`);
  rmSync(outDir, { recursive: true, force: true });
  const noTraining = arm.minutes === 0;
  log(`${ws.key} ${arm.name}: ${noTraining ? 'the base as it is (no gradient step)' : `${steps} steps (${arm.minutes} min × ${scale} at the calibrated rate)`}`);
  const onEvent = (e: PipelineEvent) => {
    if (e.type === 'log' && e.metrics.valLoss !== undefined) log(`  step ${e.metrics.step}/${steps}: held-out loss ${e.metrics.valLoss.toFixed(3)}`);
  };
  const { modelDir, config, result } = await trainOnFolder({
    folder: ws.trainingFolder,
    outDir,
    onEvent,
    ...(arm.start === 'scratch' ? { fromScratch: true, base: null } : { base: baseDir }),
    ...(noTraining ? { noTraining: true } : { preset: DEFAULT_PRESET, steps, minutes: 0 }),
  });
  // The comparison means nothing if an arm quietly started elsewhere (a base refused for its language).
  if (config.start?.from !== arm.start) throw new Error(`${ws.key} ${arm.name}: expected a run from ${arm.start}, the pipeline started from ${config.start?.from} (${config.start?.reason})`);
  const train = loadPreset(DEFAULT_PRESET).train;
  if (config.train.valFraction !== train.valFraction || config.train.seed !== train.seed) {
    throw new Error(`${ws.key} ${arm.name}: held-out split differs (valFraction ${config.train.valFraction}, seed ${config.train.seed}); the arms must share one`);
  }
  const counted = typeof config.data.files === 'number' ? config.data.files : config.data.files.train;
  if (counted !== ws.ngramFiles.length) {
    throw new Error(`${ws.key} ${arm.name}: the pipeline counted ${counted} training files, the 4-gram baseline ${ws.ngramFiles.length}; they must count the same`);
  }
  if (noTraining) return { modelDir };
  return {
    modelDir,
    training: {
      nominalMinutes: arm.minutes,
      scaledMinutes: +(arm.minutes * scale).toFixed(3),
      plannedSteps: steps,
      steps: result.step,
      trainMs: config.timings.trainMs ?? null,
      tokensPerSecond: Math.round(result.tokensPerSecond),
      bestValLoss: round(result.bestValLoss, 4),
      stopReason: result.stopReason,
    },
  };
}

async function evaluateGpt(ws: Workspace, modelDir: string): Promise<Pick<ArmReport, 'alone' | 'editor' | 'editorAtDefaults' | 'evalMs'>> {
  const started = performance.now();
  const session = await CompletionSession.open(modelDir);
  try {
    const { blockSize } = session.config;
    const text = await scoreText((input) => session.logitsUncached(input), session.tokenizer, await tokenStream(ws.heldOut, session.tokenizer), blockSize);
    const maxTokens = Math.min(48, Math.floor(blockSize / 2));
    const alone = new LineTally();
    const editor = session.mixture ? new LineTally() : null;
    const atDefaults = session.mixture ? new LineTally() : null;
    const shown = { maxTokens: DEFAULT_SETTINGS.maxTokens, minMeanLogProb: Math.log(DEFAULT_SETTINGS.minTokenProbability) }; // the session caps maxTokens as the server's does
    for (const task of ws.tasks) {
      const request = { prefix: task.prefix, suffix: task.suffix, mode: 'line' as const, maxTokens, uri: task.uri };
      alone.add(task.cursor, (await session.complete({ ...request, mixture: false })).text, task.target);
      if (editor) editor.add(task.cursor, (await session.complete(request)).text, task.target);
      if (atDefaults) atDefaults.add(task.cursor, (await session.complete({ ...request, ...shown })).text, task.target);
    }
    return {
      alone: { ...text, ...alone.summary() },
      editor: editor?.summary() ?? null,
      editorAtDefaults: atDefaults?.summary() ?? null,
      evalMs: Math.round(performance.now() - started),
    };
  } finally {
    await session.close();
  }
}

/** The 4-gram baseline of `wlm eval`, counted on the files the arms' n-gram counts, with the given tokenizer. */
async function evaluateNgram(ws: Workspace, tokenizer: CodeTokenizer, blockSize: number): Promise<Pick<ArmReport, 'alone' | 'editor' | 'editorAtDefaults' | 'evalMs'>> {
  const started = performance.now();
  const ngram = NGramModel.train(await tokenStream(ws.ngramFiles, tokenizer), { vocabSize: tokenizer.vocabSize });
  const text = await scoreText(ngramRows(ngram), tokenizer, await tokenStream(ws.heldOut, tokenizer), blockSize);
  const system = ngramSystem(ngram, tokenizer, { blockSize, maxTokens: Math.min(48, Math.floor(blockSize / 2)) });
  const tally = new LineTally();
  for (const task of ws.tasks) tally.add(task.cursor, await system.complete(task.prefix, task.suffix), task.target);
  return { alone: { ...text, ...tally.summary() }, editor: null, editorAtDefaults: null, evalMs: Math.round(performance.now() - started) };
}

async function runWorkspace(
  ws: Workspace,
  arms: ArmSpec[],
  ctx: { baseDir: string; baseTokenizer: CodeTokenizer; blockSize: number; scale: number; calibration: Calibration; log: (line: string) => void },
): Promise<ArmReport[]> {
  const reports: ArmReport[] = [];
  let workspaceTokenizer: CodeTokenizer | null = null;
  for (const arm of arms) {
    const steps = stepsFor(arm.minutes, ctx.scale, ctx.calibration);
    const { modelDir, training } = await trainArm(ws, arm, steps, ctx.baseDir, ctx.scale, ctx.log);
    const scores = await evaluateGpt(ws, modelDir);
    if (arm.start === 'scratch') workspaceTokenizer ??= await CodeTokenizer.load(path.join(modelDir, 'tokenizer.json'));
    reports.push({ arm: arm.name, system: 'gpt', tokenizer: arm.start === 'base' ? 'base' : 'workspace', ...(training ? { training } : {}), ...scores });
    ctx.log(`  ${arm.name}: ${describe(reports[reports.length - 1])}`);
  }
  // The baseline under both vocabularies: the goals hold against the stronger of the two.
  const ngramArms: [string, 'workspace' | 'base', CodeTokenizer | null][] = [
    ['4-gram (workspace tokenizer)', 'workspace', workspaceTokenizer],
    ['4-gram (base tokenizer)', 'base', ctx.baseTokenizer],
  ];
  for (const [name, kind, tokenizer] of ngramArms) {
    if (!tokenizer) continue;
    const scores = await evaluateNgram(ws, tokenizer, ctx.blockSize);
    reports.unshift({ arm: name, system: 'ngram', tokenizer: kind, ...scores });
    ctx.log(`  ${name}: ${describe(reports[0])}`);
  }
  // Same text for every tokenizer: the byte counts must agree, or bits per byte do not compare.
  for (const r of reports) {
    if (r.alone.bytes !== ws.textBytes) throw new Error(`${ws.key} ${r.arm}: scored ${r.alone.bytes} bytes of text, the held-out files hold ${ws.textBytes}`);
  }
  return reports;
}

function describe(r: ArmReport): string {
  const figures = (e: EditorFigures) => `EM ${e.lineStart.exactMatch}/${e.midLine.exactMatch} ES ${e.lineStart.editSimilarity}/${e.midLine.editSimilarity} shown at line ends ${e.finishedLine.shown}`;
  const editor = r.editor && r.editorAtDefaults ? `, editor ${figures(r.editor)}, at default settings ${figures(r.editorAtDefaults)}` : '';
  return `${r.alone.bitsPerByte} bits/byte, alone line ES ${r.alone.lineEditSimilarity} (shown at line ends ${r.alone.finishedLine.shown})${editor} (${Math.round(r.evalMs / 1000)} s)`;
}

// ---------------------------------------------------------------------------------------------
// First completion on a 3 MB workspace: the base as it is, from opening the folder
// ---------------------------------------------------------------------------------------------

async function firstCompletion(baseDir: string, log: (line: string) => void): Promise<object> {
  const folder = ensureCorpus(LARGE.spec, LARGE.subdir);
  const outDir = path.join(CACHE_DIR, 'runs', `base-${LARGE.key}-first-completion`);
  rmSync(outDir, { recursive: true, force: true });
  log(`first completion: preparing ${LARGE.spec} ${LARGE.subdir}/ from the base, no gradient step`);
  const phases: Record<string, number> = {};
  let scanned = { files: 0, bytes: 0 };
  const started = performance.now();
  await trainOnFolder({
    folder,
    outDir,
    base: baseDir,
    noTraining: true,
    onEvent: (e) => {
      if (e.type === 'scan') scanned = { files: e.files, bytes: e.bytes };
      if (e.type === 'export') phases.exportMs = Math.round(e.ms);
      if (e.type === 'mixture') phases.mixtureMs = Math.round(e.ms);
    },
  });
  const prepared = performance.now();
  const session = await CompletionSession.open(outDir);
  const opened = performance.now();
  // A cursor after the indentation of the middle line of the median-sized file: nothing cached.
  const files = [...(await scanFolder(folder)).files].sort((a, b) => a.bytes - b.bytes || (a.relPath < b.relPath ? -1 : 1));
  const file = files[Math.floor(files.length / 2)];
  const text = (await readSourceText(file)) ?? '';
  const lines = text.split('\n');
  const line = Math.floor(lines.length / 2);
  const offset = lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0) + (lines[line].length - lines[line].trimStart().length);
  const completion = await session.complete({ prefix: text.slice(0, offset), suffix: text.slice(offset), mode: 'line', maxTokens: 48, uri: file.relPath });
  const done = performance.now();
  await session.close();
  const totalMs = Math.round(done - started);
  return {
    workspace: `${LARGE.spec} ${LARGE.subdir}/`,
    files: scanned.files,
    bytes: scanned.bytes,
    prepareMs: Math.round(prepared - started), // scan, tokenize, n-gram, model.onnx, mixture fit
    ...phases,
    openMs: Math.round(opened - prepared),
    completionMs: Math.round(done - opened),
    totalMs,
    at: `${file.relPath}:${line + 1}`,
    completion: completion.text,
    goal: { maxMs: FIRST_COMPLETION_GOAL_MS, met: totalMs <= FIRST_COMPLETION_GOAL_MS },
  };
}

// ---------------------------------------------------------------------------------------------
// Goals
// ---------------------------------------------------------------------------------------------

interface Goal {
  goal: string;
  met: boolean;
  figures: Record<string, number | null>;
  // The goal line by line: what each line gives beyond what the goal asks (met when its mean is
  // ≥ 0), and the standard error of that mean over the held-out lines, in the figure's unit (a
  // fraction for exact match, points for edit similarity). Absent where the figure is not per
  // line (bits per byte, time).
  margin?: Margin;
}

interface Margin {
  mean: number;
  standardError: number;
  lines: number;
}

/** The mean and standard error of `perLine` over paired line scores (the same tasks, two systems). */
function pairedMargin(a: LineScore[], b: LineScore[], perLine: (a: LineScore, b: LineScore) => number): Margin {
  if (a.length !== b.length || a.length === 0) throw new Error(`paired margin: ${a.length} vs ${b.length} line scores`);
  const d = a.map((x, i) => perLine(x, b[i]));
  const mean = d.reduce((n, x) => n + x, 0) / d.length;
  const variance = d.length > 1 ? d.reduce((n, x) => n + (x - mean) ** 2, 0) / (d.length - 1) : 0;
  return { mean: round(mean, 4)!, standardError: round(Math.sqrt(variance / d.length), 4)!, lines: d.length };
}

const lineScores = (f: LineFigures): LineScore[] => {
  const scores = scoresOf.get(f);
  if (!scores) throw new Error('line figures without their per-line scores');
  return scores;
};

/** What a goal on "the editor's" figures reads: every line completed, or what the default settings show. */
type EditorView = (r: ArmReport) => EditorFigures;
const completed: EditorView = (r) => r.editor!;
const shownAtDefaults: EditorView = (r) => r.editorAtDefaults!;

function goalsFor(rxjs: ArmReport[], msw: ArmReport[], editor: EditorView): Goal[] {
  const goals: Goal[] = [];
  if (rxjs.length > 0) goals.push(...rxjsGoals(rxjs, editor));
  if (msw.length > 0) goals.push(...mswGoals(msw));
  return goals;
}

const armOf = (reports: ArmReport[], name: string): ArmReport => {
  const r = reports.find((a) => a.arm === name);
  if (!r) throw new Error(`no arm ${name}`);
  return r;
};

function rxjsGoals(rxjs: ArmReport[], editor: EditorView): Goal[] {
  const arm = armOf;
  const ngrams = rxjs.filter((r) => r.system === 'ngram');
  // The stronger 4-gram on each figure (higher is better for these): the goals hold against it.
  const strongestNgram = (read: (r: ArmReport) => number) => ngrams.reduce((best, r) => (read(r) > read(best) ? r : best));
  const goals: Goal[] = [];

  const base0 = arm(rxjs, 'base+0');
  const midEsNgram = strongestNgram((r) => r.alone.midLine.editSimilarity).alone.midLine;
  goals.push({
    goal: 'rxjs: base+0 editor mid-line edit similarity ≥ 4-gram + 10',
    met: editor(base0).midLine.editSimilarity >= midEsNgram.editSimilarity + 10,
    figures: { base0: editor(base0).midLine.editSimilarity, ngram: midEsNgram.editSimilarity, gain: round(editor(base0).midLine.editSimilarity - midEsNgram.editSimilarity, 2) },
    margin: pairedMargin(lineScores(editor(base0).midLine), lineScores(midEsNgram), (x, y) => x.editSimilarity - y.editSimilarity - 10),
  });

  const base5 = arm(rxjs, 'base+5');
  const scratch15 = arm(rxjs, 'scratch+15');
  goals.push({
    goal: 'rxjs: base+5 ≥ scratch+15 on GPT-alone bits per byte',
    met: (base5.alone.bitsPerByte ?? Infinity) <= (scratch15.alone.bitsPerByte ?? Infinity),
    figures: { base5: base5.alone.bitsPerByte, scratch15: scratch15.alone.bitsPerByte },
  });
  const lineComparisons: [string, (e: EditorFigures) => LineFigures, keyof LineScore][] = [
    ['editor line-start exact match', (e) => e.lineStart, 'exactMatch'],
    ['editor line-start edit similarity', (e) => e.lineStart, 'editSimilarity'],
    ['editor mid-line exact match', (e) => e.midLine, 'exactMatch'],
    ['editor mid-line edit similarity', (e) => e.midLine, 'editSimilarity'],
  ];
  for (const [what, cursor, figure] of lineComparisons) {
    const [a, b] = [cursor(editor(base5)), cursor(editor(scratch15))];
    goals.push({
      goal: `rxjs: base+5 ≥ scratch+15 on ${what}`,
      met: a[figure] >= b[figure],
      figures: { base5: a[figure], scratch15: b[figure] },
      margin: pairedMargin(lineScores(a), lineScores(b), (x, y) => x[figure] - y[figure]),
    });
  }

  const base15 = arm(rxjs, 'base+15');
  const midEmNgram = strongestNgram((r) => r.alone.midLine.exactMatch).alone.midLine;
  const startEsNgram = strongestNgram((r) => r.alone.lineStart.editSimilarity).alone.lineStart;
  const midEm = editor(base15).midLine;
  goals.push({
    goal: "rxjs: base+15 editor mid-line exact match ≥ 2 × the 4-gram's",
    met: midEm.exactMatch >= 2 * midEmNgram.exactMatch,
    figures: { base15: midEm.exactMatch, ngram: midEmNgram.exactMatch, ratio: midEmNgram.exactMatch > 0 ? round(midEm.exactMatch / midEmNgram.exactMatch, 2) : null },
    margin: pairedMargin(lineScores(midEm), lineScores(midEmNgram), (x, y) => x.exactMatch - 2 * y.exactMatch),
  });
  const startEs = editor(base15).lineStart;
  goals.push({
    goal: 'rxjs: base+15 editor line-start edit similarity ≥ 4-gram + 15',
    met: startEs.editSimilarity >= startEsNgram.editSimilarity + 15,
    figures: { base15: startEs.editSimilarity, ngram: startEsNgram.editSimilarity, gain: round(startEs.editSimilarity - startEsNgram.editSimilarity, 2) },
    margin: pairedMargin(lineScores(startEs), lineScores(startEsNgram), (x, y) => x.editSimilarity - y.editSimilarity - 15),
  });
  return goals;
}

function mswGoals(msw: ArmReport[]): Goal[] {
  const arm = armOf;
  const goals: Goal[] = [];
  const smallBase5 = arm(msw, 'base+5');
  const smallScratch5 = arm(msw, 'scratch+5');
  const bpbGain = (smallScratch5.alone.bitsPerByte ?? Infinity) - (smallBase5.alone.bitsPerByte ?? Infinity);
  goals.push({
    goal: 'msw: base+5 beats scratch+5 by ≥ 0.2 GPT-alone bits per byte',
    met: bpbGain >= 0.2,
    figures: { base5: smallBase5.alone.bitsPerByte, scratch5: smallScratch5.alone.bitsPerByte, gain: round(bpbGain, 4) },
  });
  const esGain = smallBase5.alone.lineEditSimilarity - smallScratch5.alone.lineEditSimilarity;
  const everyLine = (r: ArmReport) => [...lineScores(r.alone.lineStart), ...lineScores(r.alone.midLine)];
  goals.push({
    goal: 'msw: base+5 beats scratch+5 by ≥ 3 points of GPT-alone line edit similarity',
    met: esGain >= 3,
    figures: { base5: smallBase5.alone.lineEditSimilarity, scratch5: smallScratch5.alone.lineEditSimilarity, gain: round(esGain, 2) },
    margin: pairedMargin(everyLine(smallBase5), everyLine(smallScratch5), (x, y) => x.editSimilarity - y.editSimilarity - 3),
  });
  return goals;
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/** --lines / --base-lines: a whole number, or "all" (the default when absent). */
export function parseLines(value: string | undefined): number | 'all' | undefined {
  return value === undefined ? undefined : value === 'all' ? 'all' : Number(value);
}

export async function baseQualityBench(opts: BaseQualityOptions = {}): Promise<object> {
  const started = Date.now();
  const loadBefore = os.loadavg();
  const log = opts.log ?? ((line: string) => process.stderr.write(`[base] ${line}\n`));
  const scale = opts.scale ?? 1;
  const lines = opts.lines ?? 'all';
  if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`--base-scale must be a number > 0, got ${opts.scale}`);
  if (lines !== 'all' && (!Number.isInteger(lines) || lines < 1)) throw new Error(`--base-lines must be a whole number >= 1 or "all", got ${opts.lines}`);
  const baseDir = baseModelDir(opts.baseDir);
  const base = await findBaseModel(baseDir);
  if (!base) throw new Error(`no base model at ${baseDir} (hint: npm run pretrain writes models/base, or set WLM_BASE_MODEL)`);
  const baseTokenizer = await CodeTokenizer.load(path.join(base.dir, 'tokenizer.json'));

  const which = opts.workspaces ?? ['rxjs', 'msw'];
  if (which.length === 0 || which.some((w) => w !== 'rxjs' && w !== 'msw')) throw new Error(`--base-workspaces takes rxjs, msw or both, got ${which.join(',')}`);
  const rxjs = await loadWorkspace(HELD_OUT, lines);
  const msw = await loadWorkspace(SMALL, lines);
  const calibration = await calibrate(rxjs.trainingFolder);
  const budgets = [5, 15].map((minutes) => ({ minutes, scaledMinutes: +(minutes * scale).toFixed(3), steps: stepsFor(minutes, scale, calibration) }));
  log(`calibration: ${calibration.preset} preset, ${calibration.tokensPerSecond} tokens/s (${calibration.secondsPerStep} s per ${calibration.tokensPerStep}-token step) on ${calibration.backend}, ${calibration.gradientWorkers} gradient worker(s)`);
  log(`budgets at scale ${scale}: ${budgets.map((b) => `${b.minutes} min → ${b.steps} steps`).join(', ')}`);

  const ctx = { baseDir: base.dir, baseTokenizer, blockSize: base.config.model.blockSize, scale, calibration, log };
  const workspaces: Record<string, object> = {};
  const results: Record<'rxjs' | 'msw', ArmReport[]> = { rxjs: [], msw: [] };
  for (const ws of [rxjs, msw]) {
    const key = ws.key as 'rxjs' | 'msw';
    if (!which.includes(key)) continue;
    results[key] = await runWorkspace(ws, ARMS[key], ctx);
    workspaces[key] = {
      corpus: `${ws.spec} ${path.basename(ws.folder)}/`,
      files: ws.files.length,
      bytes: ws.files.reduce((n, f) => n + f.bytes, 0),
      heldOut: { files: ws.docs.length, bytes: ws.textBytes, lines: ws.lines, linesInFiles: ws.linesInFiles },
      trainedOn: { files: ws.trainingFiles, ngramFiles: ws.ngramFiles.length }, // the copy the arms train on; the n-gram's share of it
      arms: results[key],
    };
  }
  const first = await firstCompletion(base.dir, log);
  const firstGoal: Goal = { goal: 'first completion ≤ 60 s after opening a 3 MB workspace (base+0)', met: (first as { goal: { met: boolean } }).goal.met, figures: { totalMs: (first as { totalMs: number }).totalMs } };
  const goals = [...goalsFor(results.rxjs, results.msw, completed), firstGoal];
  const goalsAtDefaults = [...goalsFor(results.rxjs, results.msw, shownAtDefaults), firstGoal];
  return {
    base: { dir: base.dir, preset: base.config.preset, steps: base.config.step },
    scale,
    calibration,
    budgets,
    workspaces,
    firstCompletion: first,
    goals,
    goalsMet: `${goals.filter((g) => g.met).length} of ${goals.length}`,
    // The same goals on what the editor shows at its default settings (editorAtDefaults).
    defaultSettings: { maxTokens: DEFAULT_SETTINGS.maxTokens, minTokenProbability: DEFAULT_SETTINGS.minTokenProbability },
    goalsAtDefaults,
    goalsAtDefaultsMet: `${goalsAtDefaults.filter((g) => g.met).length} of ${goalsAtDefaults.length}`,
    note: scale === 1 ? undefined : `budgets scaled by ${scale}: a quick run, not the issue's figures`,
    machine: { cores: os.availableParallelism(), loadAverageBefore: loadBefore.map((x) => +x.toFixed(2)), loadAverageAfter: os.loadavg().map((x) => +x.toFixed(2)) },
    elapsedMs: Date.now() - started,
  };
}

// Run directly (not when bundled into dist/bench.js, where `module` is the bundle's).
if (require.main === module && /baseQuality\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  const { values } = parseArgs({ options: { scale: { type: 'string' }, lines: { type: 'string' }, out: { type: 'string' } } });
  printReport(baseQualityBench({ scale: values.scale ? Number(values.scale) : undefined, lines: parseLines(values.lines) }), values.out);
}
