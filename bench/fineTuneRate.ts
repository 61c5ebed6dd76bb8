// `npm run bench -- --only finetune-rate`: the peak learning rate a fine-tune of the base takes
// (the preset's fineTuneLearningRate, pipeline.ts). The bundled base is fine-tuned with the whole
// model trained, once per rate, for the same number of steps on the same batches, and the runs'
// own held-out loss is recorded as it goes.
//
// The rate is chosen without looking at the files the other benches score: the runs see only the
// rxjs files that the default preset's split trains on (corpus.ts benchSplit's copy, which the
// split by path holds out about a tenth of afresh). The default budget, 1,429 steps,
// is the 5 minutes of `--only base` at the 9,754 tokens/s that section once calibrated.
// It owns no model logic: training is pipeline.ts.
//
//   node --import tsx bench/fineTuneRate.ts [--steps 1429] [--rates 0.002,0.0003,0.00015]
import { rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { printReport } from './report';
import { trainOnFolder } from '../models/src/pipeline';
import { DEFAULT_PRESET, loadPreset } from '../models/src/model/config';
import { baseModelDir, findBaseModel } from '../models/src/model/base';
import { benchSplit, CACHE_DIR } from './corpus';

const CORPUS = 'rxjs@7.8.2';
export const DEFAULT_RATE_STEPS = 1429;
export const DEFAULT_RATES = [0.002, 0.0007, 0.0003, 0.00015, 0.00008];

export interface FineTuneRateOptions {
  steps?: number; // optimizer steps of every run (default DEFAULT_RATE_STEPS)
  rates?: number[]; // peak learning rates, one run each (default DEFAULT_RATES)
}

interface RateReport {
  learningRate: number;
  steps: number;
  bestValLoss: number | null;
  bestStep: number | null; // the evaluation that reached it
  lastValLoss: number | null; // the last logged evaluation: how far past the best the run drifted
  valLoss: Record<number, number>; // held-out loss by step, every evaluation
  trainSeconds: number;
}

export async function fineTuneRateBench(opts: FineTuneRateOptions = {}): Promise<object> {
  const steps = opts.steps ?? DEFAULT_RATE_STEPS;
  const rates = opts.rates ?? DEFAULT_RATES;
  const loadBefore = os.loadavg();
  const base = await findBaseModel(baseModelDir());
  if (!base) throw new Error(`no base model at ${baseModelDir()} (hint: npm run pretrain, or point WLM_BASE_MODEL at one)`);
  const { trainingFolder: folder, trainingFiles } = await benchSplit(CORPUS);
  const files = trainingFiles.length;
  const rows: RateReport[] = [];
  let data: unknown = null;
  for (const learningRate of rates) {
    const outDir = path.join(CACHE_DIR, 'runs', `finetune-rate-${learningRate}`);
    rmSync(outDir, { recursive: true, force: true });
    process.stderr.write(`fine-tune rate ${learningRate}: ${steps} steps\n`);
    const valLoss: Record<number, number> = {};
    const started = Date.now();
    const { config, result } = await trainOnFolder({
      folder, outDir, base: base.dir, preset: DEFAULT_PRESET, steps, minutes: 0, learningRate, skipExport: true,
      onEvent: (e) => {
        if (e.type === 'log' && e.metrics.valLoss !== undefined) valLoss[e.metrics.step] = +e.metrics.valLoss.toFixed(4);
      },
    });
    if (config.start?.from !== 'base') throw new Error(`the run at ${learningRate} did not start from the base: ${config.start?.reason}`);
    const evaluations = Object.entries(valLoss).map(([step, loss]) => [Number(step), loss] as const);
    const best = evaluations.reduce<readonly [number, number] | null>((b, e) => (b === null || e[1] < b[1] ? e : b), null);
    const bestValLoss = result.bestValLoss === null ? null : +result.bestValLoss.toFixed(4);
    rows.push({
      learningRate, steps: result.step, bestValLoss,
      // The run's closing evaluation (at its last step, off the interval) is not logged: a best below every logged one is it.
      bestStep: bestValLoss !== null && (best === null || bestValLoss < best[1]) ? result.step : best?.[0] ?? null,
      lastValLoss: evaluations.at(-1)?.[1] ?? null,
      valLoss, trainSeconds: Math.round((Date.now() - started) / 1000),
    });
    data ??= config.data;
    rmSync(outDir, { recursive: true, force: true });
  }
  rmSync(folder, { recursive: true, force: true });
  const ranked = rows.filter((r) => r.bestValLoss !== null).sort((a, b) => a.bestValLoss! - b.bestValLoss!);
  return {
    corpus: `${CORPUS} src/, the files the default split trains on (${files})`, base: base.dir, steps, data,
    loadAverage: { start: loadBefore.map((l) => +l.toFixed(2)), end: os.loadavg().map((l) => +l.toFixed(2)) },
    rates: rows,
    lowestBestValLoss: ranked[0]?.learningRate ?? null,
    presetFineTuneLearningRate: loadPreset(DEFAULT_PRESET).train.fineTuneLearningRate,
  };
}

if (require.main === module && /fineTuneRate\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  const { values } = parseArgs({ options: { steps: { type: 'string' }, rates: { type: 'string' } } });
  printReport(fineTuneRateBench({ steps: values.steps ? Number(values.steps) : undefined, rates: values.rates?.split(',').map(Number) }));
}
