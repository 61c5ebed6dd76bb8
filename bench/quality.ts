// Completion quality on real code (rxjs@7.8.2's src/): trains the model on a copy of the files the
// default split does not hold out (corpus.ts benchSplit: the run's own held-out files, for early
// stopping and the mixture's weights, are a part of that copy), builds the mixture (ngram.bin +
// mixture.json), then scores three systems on the held-out files no training choice has read —
// the model alone, the workspace 4-gram alone, and what the editor shows (the mixture with the
// cache, token healing, and a confidence filter) — and returns one JSON object. A model given
// with --model is scored on its own run's held-out files instead.
// It owns no model logic: training is pipeline.ts, mixing is mixture.ts, decoding is session.ts.
//
//   node --import tsx bench/quality.ts [--minutes M] [--preset NAME] [--lines N] [--model DIR]
import * as os from 'node:os';
import * as path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { printReport } from './report';
import { trainOnFolder } from '../models/src/pipeline';
import { readModelConfig } from '../models/src/model/checkpoint';
import { DEFAULT_PRESET } from '../models/src/model/config';
import { scanFolder, readSourceText } from '../models/src/data/files';
import { splitFiles, openTokenStream, tokenizeFiles } from '../models/src/data/dataset';
import { CompletionSession } from '../models/src/infer/session';
import { CodeTokenizer } from '../models/src/data/tokenizer';
import { modelTokenFiles } from '../models/src/eval/evaluateFolder';
import { CACHE_ORDER, type MixtureFile } from '../models/src/infer/mixture';
import { ngramSystem, sampleLines, lineTask, windowStarts, type EvalDocument } from '../models/src/eval/evaluate';
import { editSimilarity, exactMatch, NextTokenTally, summarizeLatency } from '../models/src/eval/metrics';
import { NGramModel } from '../models/src/infer/ngram';
import { benchSplit, CACHE_DIR } from './corpus';

const CORPUS = 'rxjs@7.8.2';

export interface QualityOptions {
  minutes: number; // CPU training budget
  preset: string; // bench.ts passes DEFAULT_PRESET (model/config.ts)
  lines?: number; // held-out lines, each completed from its start and mid-line (default 200)
  tokens?: number; // next-token predictions per system (default 4096)
  modelDir?: string; // evaluate this trained model folder instead of training one
  thresholds?: number[]; // confidence filter: minimum mean log-probability per suggestion
}

// ngram: the 4-gram baseline of `wlm eval`; ngramMixed: the mixture's own n-gram (order 6) alone.
type SystemName = 'model' | 'ngram' | 'ngramMixed' | 'cache' | 'editor';
type LineSystem = 'model' | 'ngram' | 'ngramMixed' | 'editor';

interface LineRecord {
  cursor: 'lineStart' | 'midLine';
  target: string;
  text: Record<LineSystem, string>;
  editorMeanLogProb: number;
}

function lineScores(records: LineRecord[], system: LineSystem, cursor: 'lineStart' | 'midLine') {
  const rs = records.filter((r) => r.cursor === cursor);
  const em = rs.filter((r) => exactMatch(r.text[system], r.target)).length / rs.length;
  const es = rs.reduce((s, r) => s + editSimilarity(r.text[system], r.target), 0) / rs.length;
  return { count: rs.length, exactMatch: +em.toFixed(4), editSimilarity: +es.toFixed(2) };
}

/** How many suggestions the filter lets through at each threshold, and how good they are. */
function filterCurve(records: LineRecord[], thresholds: number[]) {
  return thresholds.map((threshold) => {
    const row: Record<string, unknown> = { minMeanLogProb: Number.isFinite(threshold) ? threshold : 'none' };
    for (const cursor of ['lineStart', 'midLine'] as const) {
      const rs = records.filter((r) => r.cursor === cursor && r.text.editor !== '');
      const shown = rs.filter((r) => r.editorMeanLogProb >= threshold);
      const exact = shown.filter((r) => exactMatch(r.text.editor, r.target)).length;
      const all = records.filter((r) => r.cursor === cursor).length;
      row[cursor] = {
        shownRate: +(shown.length / all).toFixed(4), // of every request, non-empty and confident enough
        exactMatchOfShown: shown.length ? +(exact / shown.length).toFixed(4) : null, // precision of what is shown
        exactMatchOfAll: +(exact / all).toFixed(4), // a withheld suggestion counts as a miss
        editSimilarityOfShown: shown.length ? +(shown.reduce((s, r) => s + editSimilarity(r.text.editor, r.target), 0) / shown.length).toFixed(2) : null,
      };
    }
    return row;
  });
}

export async function qualityBench(opts: QualityOptions): Promise<object> {
  const started = Date.now();
  const loadBefore = os.loadavg();
  const split = opts.modelDir ? null : await benchSplit(CORPUS);
  let modelDir = opts.modelDir ? path.resolve(opts.modelDir) : path.join(CACHE_DIR, 'runs', `quality-${opts.preset}`);
  let training: object | undefined;
  if (!opts.modelDir) {
    rmSync(modelDir, { recursive: true, force: true });
    const trained = await trainOnFolder({ folder: split!.trainingFolder, outDir: modelDir, preset: opts.preset as never, minutes: opts.minutes });
    modelDir = trained.modelDir;
    training = { minutes: opts.minutes, steps: trained.result.step, bestValLoss: trained.result.bestValLoss, tokensPerSecond: trained.result.tokensPerSecond, stopReason: trained.result.stopReason };
  }
  const config = await readModelConfig(modelDir);
  const { blockSize, vocabSize } = config.model;

  // 1. The mixture: n-gram on the training tokens, weights fitted on held-out tokens (the model
  // folder keeps no token files: they are tokenized again from the corpus, as plain code).
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'wlm-bench-quality-'));
  const tokens = await modelTokenFiles(modelDir, config, await CodeTokenizer.load(path.join(modelDir, 'tokenizer.json')), scratch);
  const mixtureStarted = performance.now();
  const mixtureFile: MixtureFile = await CompletionSession.buildMixture(modelDir, { tokens });
  const mixtureMs = performance.now() - mixtureStarted;

  const session = await CompletionSession.open(modelDir);
  const mixture = session.mixture!;
  const tokenizer = session.tokenizer;
  const eot = tokenizer.special.endOfText;

  // The files scored: the bench's held-out files, or a given model's own run's.
  const scored = split ? split.heldOut : splitFiles((await scanFolder(config.data.root)).files, config.train.valFraction, config.train.seed).val;

  // 2. Next-token prediction on the scored files' tokens, the same windows for every system (a
  // given model's are the held-out tokens modelTokenFiles made).
  let scoredTokens = tokens.val;
  if (split) await tokenizeFiles(scored, tokenizer, (scoredTokens = path.join(scratch, 'scored.bin')), { seed: config.train.seed });
  const val = openTokenStream(scoredTokens);
  const all = val.read(0, val.length);
  const names: SystemName[] = ['model', 'ngram', 'ngramMixed', 'cache', 'editor'];
  const tallies = Object.fromEntries(names.map((n) => [n, new NextTokenTally()])) as Record<SystemName, NextTokenTally>;
  const logs = Object.fromEntries(names.map((n) => [n, new Float32Array(vocabSize)])) as Record<SystemName, Float32Array>;
  // The 4-gram baseline, counted on the same training tokens as `wlm eval` does.
  const baselineNgram = NGramModel.train(openTokenStream(tokens.train), { vocabSize });
  for (const start of windowStarts(all.length, blockSize + 1, opts.tokens ?? 4096)) {
    const window = Array.from(all.subarray(start, start + blockSize + 1));
    const logits = await session.logitsUncached(window.slice(0, blockSize));
    // The cache holds the document up to the predicted token, as an open file would.
    let docStart = start;
    while (docStart > 0 && all[docStart - 1] !== eot) docStart--;
    mixture.cache.setCurrent(null, all.subarray(docStart, start + 1));
    for (let t = 0; t < blockSize; t++) {
      if (window[t] === eot) {
        docStart = start + t + 1;
        mixture.cache.setCurrent(null);
      }
      const pos = start + t + 1;
      const context = all.subarray(Math.max(docStart, pos - CACHE_ORDER), pos);
      const c = mixture.components(logits.subarray(t * vocabSize, (t + 1) * vocabSize), context);
      const [wm, wn, wc] = mixture.weights[c.bucket];
      for (let i = 0; i < vocabSize; i++) {
        logs.model[i] = Math.log(c.model[i]);
        logs.ngramMixed[i] = Math.log(c.ngram[i]);
        logs.cache[i] = Math.log(c.cache[i]);
        logs.editor[i] = Math.log(wm * c.model[i] + wn * c.ngram[i] + wc * c.cache[i]);
      }
      // The baseline sees the window's earlier tokens only, as in evaluate.ts.
      baselineNgram.logProbs(window.slice(Math.max(0, t + 2 - baselineNgram.order), t + 1), logs.ngram);
      for (const name of Object.keys(tallies) as SystemName[]) tallies[name].add(logs[name], window[t + 1]);
      mixture.cache.appendCurrent(window[t + 1]);
    }
  }

  // 3. Line completion from the line start and mid-line on held-out files.
  const docs: EvalDocument[] = [];
  for (const file of scored) {
    const text = await readSourceText(file);
    if (text !== null) docs.push({ relPath: file.relPath, text });
  }
  const byPath = new Map(docs.map((d) => [d.relPath, d]));
  const maxTokens = Math.min(48, Math.floor(blockSize / 2));
  const ngram = ngramSystem(baselineNgram, tokenizer, { blockSize, maxTokens });
  const ngramMixed = ngramSystem(mixture.ngram, tokenizer, { blockSize, maxTokens });
  const { samples } = sampleLines(docs, opts.lines ?? 200, config.train.seed);
  const records: LineRecord[] = [];
  const latency: Record<LineSystem, number[]> = { model: [], ngram: [], ngramMixed: [], editor: [] };
  for (const sample of samples) {
    for (const cursor of ['lineStart', 'midLine'] as const) {
      const task = lineTask(byPath.get(sample.relPath)!, sample, cursor);
      const request = { prefix: task.prefix, suffix: task.suffix, mode: 'line' as const, maxTokens, uri: sample.relPath };
      let t0 = performance.now();
      const model = await session.complete({ ...request, mixture: false });
      latency.model.push(performance.now() - t0);
      t0 = performance.now();
      const ngramText = await ngram.complete(task.prefix, task.suffix);
      latency.ngram.push(performance.now() - t0);
      t0 = performance.now();
      const ngramMixedText = await ngramMixed.complete(task.prefix, task.suffix);
      latency.ngramMixed.push(performance.now() - t0);
      t0 = performance.now();
      const editor = await session.complete(request);
      latency.editor.push(performance.now() - t0);
      const firstLine = (s: string) => s.split('\n')[0];
      records.push({ cursor, target: task.target, text: { model: firstLine(model.text), ngram: firstLine(ngramText), ngramMixed: firstLine(ngramMixedText), editor: firstLine(editor.text) }, editorMeanLogProb: editor.meanLogProb });
    }
  }

  // 4. Typing latency: one request per keystroke through held-out lines, the editor path and the
  // model alone. Wall time suffers from whatever else runs on the machine; the CPU time of this
  // process (both of its threads) says what the completion itself costs.
  const typing = { editor: [] as number[], model: [] as number[] };
  const typingCpu = { editor: [] as number[], model: [] as number[] };
  for (const system of ['model', 'editor'] as const) {
    for (const sample of samples.slice(0, 12)) {
      const task = lineTask(byPath.get(sample.relPath)!, sample, 'lineStart');
      session.resetCache();
      for (let k = 0; k <= Math.min(24, task.target.length); k++) {
        const cpu = process.cpuUsage();
        const r = await session.complete({ prefix: task.prefix + task.target.slice(0, k), suffix: task.suffix, mode: 'line', maxTokens: 16, uri: sample.relPath, mixture: system === 'editor' });
        const used = process.cpuUsage(cpu);
        if (k > 0) {
          typing[system].push(r.ms);
          typingCpu[system].push((used.user + used.system) / 1000);
        }
      }
    }
  }
  await session.close();
  rmSync(scratch, { recursive: true, force: true });

  const nextToken = Object.fromEntries(
    names.map((name) => {
      const s = tallies[name].summary();
      return [name, { tokens: s.tokens, top1: +(s.top1 ?? 0).toFixed(4), top5: +(s.top5 ?? 0).toFixed(4), loss: +(s.loss ?? 0).toFixed(4), perplexity: +(s.perplexity ?? 0).toFixed(2) }];
    }),
  );
  const lines = Object.fromEntries(
    (['model', 'ngram', 'ngramMixed', 'editor'] as const).map((name) => [
      name,
      { lineStart: lineScores(records, name, 'lineStart'), midLine: lineScores(records, name, 'midLine'), latency: (({ histogram: _, ...s }) => s)(summarizeLatency(latency[name])) },
    ]),
  );
  const ratio = (a: number, b: number) => (b > 0 ? +(a / b).toFixed(2) : null);
  const editor = lines.editor;
  const base = lines.ngram;
  return {
    corpus: CORPUS,
    preset: config.preset,
    modelDir,
    training,
    data: { trainTokens: config.data.tokens, heldOutFiles: docs.length, sampledLines: samples.length },
    mixture: { weights: mixtureFile.weights, fit: mixtureFile.fit, buildMs: Math.round(mixtureMs) },
    nextToken,
    lines,
    filter: filterCurve(records, opts.thresholds ?? [-Infinity, -0.25, -0.5, -0.75, -1, -1.5, -2]),
    typingLatency: Object.fromEntries((['model', 'editor'] as const).map((name) => [name, { wall: (({ histogram: _, ...s }) => s)(summarizeLatency(typing[name])), cpu: (({ histogram: _, ...s }) => s)(summarizeLatency(typingCpu[name])) }])),
    goals: {
      modelTop1VsNgram: { model: nextToken.model.top1, ngram: nextToken.ngram.top1, met: nextToken.model.top1 >= nextToken.ngram.top1 },
      midLineExactMatchRatio: { editor: editor.midLine.exactMatch, ngram: base.midLine.exactMatch, ratio: ratio(editor.midLine.exactMatch, base.midLine.exactMatch), met: editor.midLine.exactMatch >= 1.5 * base.midLine.exactMatch },
      editSimilarityGain: {
        lineStart: +(editor.lineStart.editSimilarity - base.lineStart.editSimilarity).toFixed(2),
        midLine: +(editor.midLine.editSimilarity - base.midLine.editSimilarity).toFixed(2),
        met: editor.midLine.editSimilarity - base.midLine.editSimilarity >= 10 && editor.lineStart.editSimilarity - base.lineStart.editSimilarity >= 10,
      },
    },
    machine: { cores: os.availableParallelism(), loadAverageBefore: loadBefore.map((x) => +x.toFixed(2)), loadAverageAfter: os.loadavg().map((x) => +x.toFixed(2)) },
    elapsedMs: Date.now() - started,
  };
}

// Run directly (not when bundled into dist/bench.js, where `module` is the bundle's).
if (require.main === module && /quality\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  const { values } = parseArgs({ options: { minutes: { type: 'string' }, preset: { type: 'string' }, lines: { type: 'string' }, tokens: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' } } });
  const report = qualityBench({
    minutes: Number(values.minutes ?? 15),
    preset: values.preset ?? DEFAULT_PRESET,
    lines: values.lines ? Number(values.lines) : undefined,
    tokens: values.tokens ? Number(values.tokens) : undefined,
    modelDir: values.model,
  });
  printReport(report, values.out);
}
