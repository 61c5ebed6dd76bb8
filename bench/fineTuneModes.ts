// `npm run bench -- --only finetune`: the three ways Train fine-tunes the pre-trained base (issue
// #13, item 5) on one budget. The bundled base (models/base) is fine-tuned on rxjs@7.8.2's src/
// for the same number of optimizer steps, on the same batches, three ways: the whole model, the
// last 2 blocks (embeddings and the lower blocks fixed), low-rank adapters (merged when saved) —
// the adapters twice: at the preset's learning rate, and at 5 times it, as LoRA recipes usually
// take a higher rate than whole-model fine-tuning (so a gap is not merely the rate's).
// The budget is in steps, not minutes: the machine is shared and its speed drifts. Each model is
// scored as it serves (model.onnx) on every token of rxjs's held-out files, which the runs never
// see (they train on a copy of the other files, corpus.ts benchSplit), next to the base as it is;
// all share the base's tokenizer, so loss per token compares as well as bits per byte. It owns no
// model logic: training is pipeline.ts, the session session.ts, the figures metrics.ts.
//
//   node --import tsx bench/fineTuneModes.ts [--steps 150]
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { printReport } from './report';
import { trainOnFolder, type TrainOnFolderOptions } from '../models/src/pipeline';
import { DEFAULT_LORA_RANK, loadPreset } from '../models/src/model/config';
import { baseModelDir, findBaseModel } from '../models/src/model/base';
import { CompletionSession } from '../models/src/infer/session';
import { benchSplit, CACHE_DIR } from './corpus';
import { scoreHeldOutText, type HeldOutText } from './heldOutText';

const CORPUS = 'rxjs@7.8.2';

export interface FineTuneModesOptions {
  steps: number; // optimizer steps of every mode
}

type HeldOut = HeldOutText;

interface ModeReport {
  mode: string;
  learningRate: number; // peak
  steps: number;
  tokensPerSecond: number; // training tokens over step time (evaluation excluded), gradient workers included
  trainSeconds: number; // the whole training call: steps, evaluations, checkpoints
  bestValLoss: number | null; // the trainer's own validation (random windows of the held-out files)
  heldOut: HeldOut; // every held-out token, through model.onnx
}

export async function fineTuneModesBench(opts: FineTuneModesOptions): Promise<object> {
  const loadBefore = os.loadavg();
  const base = await findBaseModel(baseModelDir());
  if (!base) throw new Error(`no base model at ${baseModelDir()} (hint: npm run pretrain, or point WLM_BASE_MODEL at one)`);
  const split = await benchSplit(CORPUS);
  const runsDir = path.join(CACHE_DIR, 'runs');
  mkdirSync(runsDir, { recursive: true });
  const nLayer = base.config.model.nLayer;
  const learningRate = loadPreset(base.config.preset).train.learningRate; // the adapters' default (the whole model and the last layers take fineTuneLearningRate)
  const modes: { mode: string; key: string; options: Partial<TrainOnFolderOptions> }[] = [
    { mode: 'full', key: 'full', options: {} },
    { mode: 'last 2 layers', key: 'last2', options: { freezeLayers: nLayer - 2 } },
    { mode: `lora rank ${DEFAULT_LORA_RANK}`, key: 'lora', options: { loraRank: DEFAULT_LORA_RANK } },
    { mode: `lora rank ${DEFAULT_LORA_RANK}, learning rate x5`, key: 'lora-lr5', options: { loraRank: DEFAULT_LORA_RANK, learningRate: 5 * learningRate } },
  ];

  // The base as it is, in a scratch copy (the session writes model.onnx next to the weights).
  const baseCopy = path.join(runsDir, 'finetune-base');
  rmSync(baseCopy, { recursive: true, force: true });
  mkdirSync(baseCopy);
  for (const file of ['config.json', 'tokenizer.json', 'model.json', 'weights.bin']) copyFileSync(path.join(base.dir, file), path.join(baseCopy, file));
  const heldOutFiles = split.heldOut;
  const baseScores = await scoreHeldOut(baseCopy, heldOutFiles);

  const rows: ModeReport[] = [];
  for (const { mode, key, options } of modes) {
    const outDir = path.join(runsDir, `finetune-${key}`);
    rmSync(outDir, { recursive: true, force: true });
    process.stderr.write(`fine-tune modes: ${mode}, ${opts.steps} steps\n`);
    const started = Date.now();
    const { config, result } = await trainOnFolder({ folder: split.trainingFolder, outDir, base: base.dir, steps: opts.steps, minutes: 0, skipExport: true, ...options });
    const trainSeconds = (Date.now() - started) / 1000;
    if (config.start?.from !== 'base') throw new Error(`the ${mode} run did not start from the base: ${config.start?.reason}`);
    // The same batches for every mode: the same seed and share as the split that made the copy.
    if (config.train.seed !== base.config.train.seed || config.train.valFraction !== base.config.train.valFraction) throw new Error('the runs split the corpus unlike the scorer');
    rows.push({
      mode, learningRate: config.train.learningRate, steps: result.step, tokensPerSecond: Math.round(result.tokensPerSecond), trainSeconds: Math.round(trainSeconds),
      bestValLoss: result.bestValLoss === null ? null : +result.bestValLoss.toFixed(4), heldOut: await scoreHeldOut(outDir, heldOutFiles),
    });
  }
  return {
    corpus: CORPUS, base: base.dir, steps: opts.steps, heldOutFiles: heldOutFiles.length, loadAverage: { start: loadBefore.map((l) => +l.toFixed(2)), end: os.loadavg().map((l) => +l.toFixed(2)) }, // 1, 5, 15 minutes: the machine is shared
    base0: baseScores, modes: rows,
  };
}

/** Every held-out token once, through the folder's model.onnx (heldOutText.ts). */
async function scoreHeldOut(modelDir: string, files: Parameters<typeof scoreHeldOutText>[1]): Promise<HeldOut> {
  const session = await CompletionSession.open(modelDir);
  try {
    return await scoreHeldOutText(session, files);
  } finally {
    await session.close();
  }
}

if (require.main === module && /fineTuneModes\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  const { values } = parseArgs({ options: { steps: { type: 'string' } } });
  printReport(fineTuneModesBench({ steps: Number(values.steps ?? 150) }));
}
