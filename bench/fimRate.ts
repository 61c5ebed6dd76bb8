// `npm run bench -- --only fim`: what fill-in-the-middle examples in pre-training are worth (issue
// #13, item 8: "FIM where it pays"). The shipped base was pre-trained without them (RECIPE.fimRate
// 0 in models/pretrain/pretrain.ts). Pre-training again at each rate takes 90 minutes, so this
// probes it by continuing the base's pre-training: the base is trained further on the pre-training
// corpus (models/pretrain/corpus.ts, the whole of it, split as the base's run split it) for the
// same number of optimizer steps at each FIM rate, with the same seed (so the same sampler draws
// over token streams that differ only where chunks were rewritten as FIM examples). Each model,
// and the base as it is, is then scored on held-out rxjs@7.8.2 src/ lines (not in the corpus) by
// the GPT alone, both ways: with the suffix in the prompt (fim: true) and without it (fim: false);
// and in bits per byte on every held-out rxjs token, without FIM, to show what FIM costs plain
// left-to-right prediction. The JSON ends with a verdict computed from the figures.
//
// The budget is in steps: the machine is shared and its speed drifts. It owns no model logic:
// training is pipeline.ts, the prompt and decoding session.ts, the line tasks evaluate.ts, the
// figures metrics.ts, the corpus corpus.ts.
//
//   node dist/bench.js --only fim [--fim-steps 400] [--fim-rates 0,0.5] [--fim-lines 200]
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { printReport } from './report';
import { trainOnFolder, type PipelineEvent } from '../models/src/pipeline';
import { baseModelDir, findBaseModel } from '../models/src/model/base';
import { scanFolder, readSourceText, type SourceFile } from '../models/src/data/files';
import { splitFiles } from '../models/src/data/dataset';
import { CompletionSession } from '../models/src/infer/session';
import { sampleLines, lineTask, type EvalDocument } from '../models/src/eval/evaluate';
import { editSimilarity, exactMatch } from '../models/src/eval/metrics';
import { buildCorpus, REPORT_FILE, type CorpusReport } from '../models/pretrain/corpus';
import { ensureCorpus, CACHE_DIR } from './corpus';
import { scoreHeldOutText, type HeldOutText } from './heldOutText';

const HELD_OUT = 'rxjs@7.8.2';
// Measured before choosing: continuing the base on the corpus takes about 1.2 s a step on one idle
// core (1,664 tokens/s, the speed section's 1-thread figure; 1.8 s with the other core busy), so 400
// steps are about 8 minutes an arm, evaluations included, plus about 50 s of tokenizing.
export const DEFAULT_FIM_STEPS = 400;
export const DEFAULT_FIM_RATES = [0, 0.5];
export const DEFAULT_FIM_LINES = 200;
const MAX_TOKENS = 48; // as the base bench completes a line (baseQuality.ts)

// Paths from the working directory, as bench/corpus.ts takes them: corpus.ts's own defaults are
// relative to its file, which is dist/ once bundled.
const MANIFEST = path.resolve('models', 'pretrain', 'manifest.json');
const PRETRAIN_CACHE = path.resolve('.cache', 'pretrain');
const PRETRAIN_CORPUS = path.join(PRETRAIN_CACHE, 'corpus');

export interface FimRateOptions {
  steps?: number; // optimizer steps of every arm (default DEFAULT_FIM_STEPS)
  rates?: number[]; // FIM rates, one arm each (default 0 and 0.5)
  lines?: number; // held-out rxjs lines, each completed from its start and mid-line (default 200)
  log?: (line: string) => void;
}

type Cursor = 'lineStart' | 'midLine';
type Way = 'fim' | 'noFim';

interface LineFigures {
  count: number;
  exactMatch: number; // fraction
  editSimilarity: number; // 0–100
}


interface ArmReport {
  arm: string;
  rate: number | null; // null: the base as it is
  steps: number;
  trainMs: number | null; // gradient steps and the trainer's evaluations
  armMs: number | null; // the whole trainOnFolder call: scan, tokenizing, training
  tokensPerSecond: number | null;
  trainTokens: number | null; // the corpus's training split as this arm tokenized it (FIM examples add 4 specials each)
  corpusValLoss: number | null; // the trainer's best loss on the corpus's held-out files (plain code, no FIM)
  bitsPerByte: number; // every held-out rxjs token, plain left-to-right
  heldOut: HeldOutText;
  lines: Record<Way, Record<Cursor, LineFigures> & { both: LineFigures }>;
  evalMs: number;
}

/** One model's answers, task by task, so arms compare on the same tasks (paired). */
type Hits = Record<Way, boolean[]>;

function round(value: number, digits: number): number {
  return +value.toFixed(digits);
}

/** The pre-training corpus: the folder corpus.ts built from this manifest, else built now (npm pack, about a minute). */
async function ensurePretrainCorpus(log: (line: string) => void): Promise<{ dir: string; report: CorpusReport; reused: boolean }> {
  if (!existsSync(MANIFEST)) throw new Error(`no ${MANIFEST}: run the bench from the repository root`);
  const manifestSha256 = createHash('sha256').update(readFileSync(MANIFEST)).digest('hex');
  const reportFile = path.join(PRETRAIN_CORPUS, REPORT_FILE);
  if (existsSync(reportFile)) {
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as CorpusReport;
    if (report.manifestSha256 === manifestSha256) return { dir: PRETRAIN_CORPUS, report, reused: true };
  }
  log(`building the pre-training corpus into ${PRETRAIN_CORPUS}`);
  const report = await buildCorpus({ manifestFile: MANIFEST, outDir: PRETRAIN_CORPUS, cacheDir: PRETRAIN_CACHE });
  return { dir: PRETRAIN_CORPUS, report, reused: false };
}

/** The held-out rxjs files, split as every model here split its data (the base's seed and share). */
async function heldOutRxjs(valFraction: number, seed: number): Promise<{ folder: string; files: SourceFile[]; docs: EvalDocument[] }> {
  const folder = ensureCorpus(HELD_OUT);
  const files = splitFiles((await scanFolder(folder)).files, valFraction, seed).val;
  const docs: EvalDocument[] = [];
  for (const file of files) {
    const text = await readSourceText(file);
    if (text !== null) docs.push({ relPath: file.relPath, text });
  }
  return { folder, files, docs };
}

interface LineTaskRow {
  cursor: Cursor;
  prefix: string;
  suffix: string;
  target: string;
}

function lineTasks(docs: EvalDocument[], lines: number, seed: number): LineTaskRow[] {
  const byPath = new Map(docs.map((d) => [d.relPath, d]));
  const { samples } = sampleLines(docs, lines, seed);
  return samples.flatMap((sample) => (['lineStart', 'midLine'] as const).map((cursor) => ({ cursor, ...lineTask(byPath.get(sample.relPath)!, sample, cursor) })));
}

/** A model folder scored: bits per byte, and every line task with the suffix in the prompt and without. */
async function scoreModel(modelDir: string, files: SourceFile[], tasks: LineTaskRow[]): Promise<{ text: HeldOutText; lines: ArmReport['lines']; hits: Hits; evalMs: number }> {
  const started = performance.now();
  // The GPT alone: these models have no mixture (skipExport), and none is opened.
  const session = await CompletionSession.open(modelDir, { mixture: false });
  try {
    const text = await scoreHeldOutText(session, files);
    const hits: Hits = { fim: [], noFim: [] };
    const similarity: Record<Way, number[]> = { fim: [], noFim: [] };
    for (const task of tasks) {
      for (const way of ['fim', 'noFim'] as const) {
        // The request's fim flag overrides the folder's train.fimRate (session.ts): the suffix
        // reaches the prompt even for a model that never learnt FIM, as buildPrompt lays it out.
        const { text: completion } = await session.complete({ prefix: task.prefix, suffix: task.suffix, mode: 'line', maxTokens: MAX_TOKENS, mixture: false, fim: way === 'fim' });
        const firstLine = completion.split('\n')[0]; // a completion that ran past the line is scored on its first line
        hits[way].push(exactMatch(firstLine, task.target));
        similarity[way].push(editSimilarity(firstLine, task.target));
      }
    }
    const figures = (way: Way, keep: (task: LineTaskRow) => boolean): LineFigures => {
      const idx = tasks.map((t, i) => (keep(t) ? i : -1)).filter((i) => i >= 0);
      return {
        count: idx.length,
        exactMatch: round(idx.filter((i) => hits[way][i]).length / Math.max(1, idx.length), 4),
        editSimilarity: round(idx.reduce((n, i) => n + similarity[way][i], 0) / Math.max(1, idx.length), 2),
      };
    };
    const byWay = (way: Way) => ({
      lineStart: figures(way, (t) => t.cursor === 'lineStart'),
      midLine: figures(way, (t) => t.cursor === 'midLine'),
      both: figures(way, () => true),
    });
    return { text, lines: { fim: byWay('fim'), noFim: byWay('noFim') }, hits, evalMs: Math.round(performance.now() - started) };
  } finally {
    await session.close();
  }
}

/** b's exact match minus a's on the same tasks, with the standard error of a paired difference. */
function pairedDifference(a: boolean[], b: boolean[]): { diff: number; standardError: number; onlyA: number; onlyB: number } {
  const n = a.length;
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] && !b[i]) onlyA++;
    if (b[i] && !a[i]) onlyB++;
  }
  const diff = (onlyB - onlyA) / n;
  const standardError = Math.sqrt(Math.max(0, onlyA + onlyB - (onlyB - onlyA) ** 2 / n)) / n;
  return { diff: round(diff, 4), standardError: round(standardError, 4), onlyA, onlyB };
}

function describeDiff(d: { diff: number; standardError: number }): string {
  const sign = d.diff >= 0 ? '+' : '−';
  return `${sign}${(100 * Math.abs(d.diff)).toFixed(1)} ± ${(100 * d.standardError).toFixed(1)} points`;
}

/** Which rate completes lines best with the suffix, and what FIM costs without it, from the figures alone. */
function verdictFor(arms: ArmReport[], hits: Map<string, Hits>): object {
  const trained = arms.filter((a) => a.rate !== null);
  const best = [...trained].sort((a, b) => b.lines.fim.both.exactMatch - a.lines.fim.both.exactMatch || a.rate! - b.rate!)[0];
  const plain = trained.find((a) => a.rate === 0);
  const text: string[] = [];
  const out: Record<string, unknown> = {
    bestRateWithSuffix: best.rate,
    bestExactMatchWithSuffix: best.lines.fim.both.exactMatch,
  };
  // What the suffix gives the best arm against its own left-to-right completions.
  const suffixGain = pairedDifference(hits.get(best.arm)!.noFim, hits.get(best.arm)!.fim);
  out.suffixGainAtBestRate = suffixGain;
  text.push(`with the suffix, rate ${best.rate} completes lines best (exact match ${(100 * best.lines.fim.both.exactMatch).toFixed(1)}%, ${describeDiff(suffixGain)} over its own completions without the suffix)`);
  if (plain) {
    // What ships either way: a FIM-trained model is served with the suffix (fimRate > 0), the rate-0 one without.
    const served = trained
      .filter((a) => a.rate! > 0)
      .map((a) => {
        const vsPlain = pairedDifference(hits.get(plain.arm)!.noFim, hits.get(a.arm)!.fim);
        const costWithoutSuffix = pairedDifference(hits.get(plain.arm)!.noFim, hits.get(a.arm)!.noFim);
        return {
          rate: a.rate,
          servedWithSuffixVsRate0WithoutIt: vsPlain,
          exactMatchWithoutSuffixVsRate0: costWithoutSuffix,
          bitsPerByteVsRate0: round(a.bitsPerByte - plain.bitsPerByte, 4),
          corpusValLossVsRate0: a.corpusValLoss !== null && plain.corpusValLoss !== null ? round(a.corpusValLoss - plain.corpusValLoss, 4) : null,
        };
      });
    out.againstRate0 = served;
    for (const s of served) {
      text.push(
        `rate ${s.rate} served with the suffix vs rate 0 without it: exact match ${describeDiff(s.servedWithSuffixVsRate0WithoutIt)}; ` +
          `without the suffix it costs ${describeDiff(s.exactMatchWithoutSuffixVsRate0)} of exact match and ${s.bitsPerByteVsRate0 >= 0 ? '+' : ''}${s.bitsPerByteVsRate0} bits per byte on held-out rxjs`,
      );
    }
    // "Pays": the FIM model with the suffix beats the plain model without it by more than two standard errors.
    const pays = served.filter((s) => s.servedWithSuffixVsRate0WithoutIt.diff > 2 * s.servedWithSuffixVsRate0WithoutIt.standardError);
    const hurts = served.filter((s) => s.servedWithSuffixVsRate0WithoutIt.diff < -2 * s.servedWithSuffixVsRate0WithoutIt.standardError);
    out.fimPays = pays.length > 0;
    text.push(
      pays.length
        ? `FIM pays at rate ${pays.map((s) => s.rate).join(', ')} (more than 2 standard errors above rate 0 served without the suffix)`
        : hurts.length
          ? `FIM costs line exact match at rate ${hurts.map((s) => s.rate).join(', ')} (more than 2 standard errors below rate 0 served without the suffix)`
          : 'no rate differs from rate 0 served without the suffix by more than 2 standard errors of exact match',
    );
  }
  out.text = text.join('; ');
  return out;
}

export async function fimRateBench(opts: FimRateOptions = {}): Promise<object> {
  const started = Date.now();
  const loadBefore = os.loadavg();
  const log = opts.log ?? ((line: string) => process.stderr.write(`[fim] ${line}\n`));
  const steps = opts.steps ?? DEFAULT_FIM_STEPS;
  const rates = opts.rates ?? DEFAULT_FIM_RATES;
  const lines = opts.lines ?? DEFAULT_FIM_LINES;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--fim-steps must be a whole number >= 1, got ${opts.steps}`);
  if (!Number.isInteger(lines) || lines < 1) throw new Error(`--fim-lines must be a whole number >= 1, got ${opts.lines}`);
  if (rates.length === 0 || rates.some((r) => !(r >= 0 && r <= 1)) || new Set(rates).size !== rates.length) throw new Error(`--fim-rates must be distinct numbers in [0, 1], got ${rates.join(',')}`);
  const base = await findBaseModel(baseModelDir());
  if (!base) throw new Error(`no base model at ${baseModelDir()} (hint: npm run pretrain, or point WLM_BASE_MODEL at one)`);
  const { seed, valFraction } = base.config.train;

  const corpus = await ensurePretrainCorpus(log);
  const rxjs = await heldOutRxjs(valFraction, seed);
  const tasks = lineTasks(rxjs.docs, lines, seed);
  const runsDir = path.join(CACHE_DIR, 'runs');
  mkdirSync(runsDir, { recursive: true });

  const arms: ArmReport[] = [];
  const hits = new Map<string, Hits>();
  const record = (arm: Omit<ArmReport, 'bitsPerByte' | 'heldOut' | 'lines' | 'evalMs'>, scores: Awaited<ReturnType<typeof scoreModel>>) => {
    arms.push({ ...arm, bitsPerByte: scores.text.bitsPerByte, heldOut: scores.text, lines: scores.lines, evalMs: scores.evalMs });
    hits.set(arm.arm, scores.hits);
    const l = scores.lines;
    log(`  ${arm.arm}: ${scores.text.bitsPerByte} bits/byte; exact match with suffix ${l.fim.lineStart.exactMatch}/${l.fim.midLine.exactMatch}, without ${l.noFim.lineStart.exactMatch}/${l.noFim.midLine.exactMatch} (line start/mid-line; ${Math.round(scores.evalMs / 1000)} s)`);
  };

  // The base as it is, from a scratch copy (the session writes model.onnx next to the weights).
  const baseCopy = path.join(runsDir, 'fim-base');
  rmSync(baseCopy, { recursive: true, force: true });
  mkdirSync(baseCopy);
  for (const file of ['config.json', 'tokenizer.json', 'model.json', 'weights.bin']) copyFileSync(path.join(base.dir, file), path.join(baseCopy, file));
  log(`scoring the base as it is on ${tasks.length / 2} held-out ${HELD_OUT} lines`);
  record({ arm: 'base', rate: null, steps: 0, trainMs: null, armMs: null, tokensPerSecond: null, trainTokens: null, corpusValLoss: null }, await scoreModel(baseCopy, rxjs.files, tasks));

  for (const rate of rates) {
    const outDir = path.join(runsDir, `fim-rate-${rate}`);
    rmSync(outDir, { recursive: true, force: true });
    log(`continuing the base's pre-training at fimRate ${rate}: ${steps} steps`);
    const onEvent = (e: PipelineEvent) => {
      if (e.type === 'log' && e.metrics.valLoss !== undefined) log(`  step ${e.metrics.step}/${steps}: corpus held-out loss ${e.metrics.valLoss.toFixed(3)}, ${Math.round(e.metrics.tokensPerSecond)} tokens/s`);
    };
    const armStarted = Date.now();
    const { config, result } = await trainOnFolder({
      folder: corpus.dir,
      outDir,
      base: base.dir,
      preset: base.config.preset,
      summaryRate: base.config.train.summaryRate, // as the base was pre-trained (RECIPE.summaryRate)
      fimRate: rate,
      steps,
      minutes: 0,
      skipExport: true, // model.onnx is exported when scored; no mixture: the GPT is scored alone
      onEvent,
    });
    const armMs = Date.now() - armStarted;
    // The probe means nothing if a run quietly started elsewhere, or split or seeded unlike the base's.
    if (config.start?.from !== 'base') throw new Error(`the fimRate ${rate} run did not start from the base: ${config.start?.reason}`);
    if (config.train.fimRate !== rate) throw new Error(`the fimRate ${rate} run trained at fimRate ${config.train.fimRate}`);
    if (config.train.seed !== seed || config.train.valFraction !== valFraction) throw new Error(`the fimRate ${rate} run split or seeded unlike the base`);
    if (result.step !== steps) throw new Error(`the fimRate ${rate} run stopped at step ${result.step} of ${steps} (${result.stopReason})`);
    const trainTokens = typeof config.data.tokens === 'number' ? config.data.tokens : config.data.tokens.train;
    record(
      {
        arm: `rate ${rate}`, rate, steps: result.step, trainMs: config.timings.trainMs ?? null, armMs, tokensPerSecond: Math.round(result.tokensPerSecond),
        trainTokens, corpusValLoss: result.bestValLoss === null ? null : round(result.bestValLoss, 4),
      },
      await scoreModel(outDir, rxjs.files, tasks),
    );
  }

  const fimPromptTasks = tasks.filter((t) => t.suffix.trim().length > 0).length; // buildPrompt falls back to the prefix alone without a suffix
  return {
    question: 'issue #13 item 8: the FIM rate of pre-training, probed by continuing the base\'s pre-training at each rate',
    base: { dir: base.dir, preset: base.config.preset, steps: base.config.step, fimRate: base.config.train.fimRate, summaryRate: base.config.train.summaryRate },
    corpus: {
      dir: corpus.dir,
      reused: corpus.reused,
      packages: corpus.report.totals.packages,
      files: corpus.report.totals.files,
      bytes: corpus.report.totals.bytes,
      slice: 'none: the whole pre-training corpus, split by the base\'s seed and share (the base\'s own training files); it tokenizes in under a minute an arm',
    },
    training: {
      steps,
      rates,
      sameBatches: `one seed (${seed}) for every arm: the sampler draws the same window offsets, over token streams that differ where chunks became FIM examples`,
      learningRate: 'the preset\'s schedule (warm-up to its peak again, cosine over the last 30%), as any fine-tune of the base',
      gradientWorkers: process.env.WLM_TRAIN_THREADS ?? 'default',
    },
    heldOut: {
      corpus: `${HELD_OUT} src/`,
      files: rxjs.docs.length,
      bytes: rxjs.docs.reduce((n, d) => n + Buffer.byteLength(d.text, 'utf8'), 0),
      sampledLines: tasks.length / 2,
      tasksPerWay: tasks.length,
      tasksWithASuffix: fimPromptTasks,
      maxTokens: MAX_TOKENS,
      system: 'the GPT alone (no n-gram, no cache), greedy; fim: the request\'s fim flag true (suffix in the prompt) or false',
    },
    arms,
    verdict: verdictFor(arms, hits),
    caveat: `${steps} steps of continued pre-training (${((steps * base.config.train.batchSize * base.config.model.blockSize) / 1e6).toFixed(2)}M tokens) after ${base.config.step} steps without FIM is not a pre-training at that rate from scratch`,
    machine: { cores: os.availableParallelism(), loadAverageBefore: loadBefore.map((x) => round(x, 2)), loadAverageAfter: os.loadavg().map((x) => round(x, 2)) },
    elapsedMs: Date.now() - started,
  };
}

// Run directly (not when bundled into dist/bench.js, where `module` is the bundle's).
if (require.main === module && /fimRate\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  const { values } = parseArgs({ options: { steps: { type: 'string' }, rates: { type: 'string' }, lines: { type: 'string' } } });
  const report = fimRateBench({
    steps: values.steps !== undefined ? Number(values.steps) : undefined,
    rates: values.rates !== undefined ? values.rates.split(',').map(Number) : undefined,
    lines: values.lines !== undefined ? Number(values.lines) : undefined,
  });
  printReport(report);
}
