// `npm run bench`: speed and quality of the whole chain on real code (rxjs@7.8.2's src/, fetched
// from the npm registry into .bench-cache/). Prints one JSON object. Each training-speed figure is
// measured in a child process of its own so that its peak RSS is its own.
//
//   node dist/bench.js [--only speed,latency,quality] [--speed-steps N] [--quality-minutes M]
//   node dist/bench.js --only base [--base-scale 0.2] [--base-lines N|all] [--base-workspaces rxjs,msw]   (long: not run by default)
//   node dist/bench.js --only latency,whiletraining,scale [--latency-lines N] [--latency-chars N] [--scale-sizes 1,5,20]
//   node dist/bench.js --only finetune [--finetune-steps 150]   (4 runs of 150 steps, ~10 minutes on 2 idle cores: not run by default)
//   node dist/bench.js --only finetune-rate [--finetune-rate-steps 1429] [--finetune-rates 0.002,0.00015]   (~5 minutes a rate: not run by default)
//   node dist/bench.js --only fim [--fim-steps 400] [--fim-rates 0,0.5] [--fim-lines 200]   (an arm of ~8 minutes on 1 idle core per rate: not run by default)
//   latency: through the built server (serverLatency.ts); latency-session: the older in-process figures (latency.ts)
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_PRESET, countParameters, loadPreset, type PresetName } from '../models/src/model/config';
import { trainOnFolder } from '../models/src/pipeline';
import { ensureCorpus, CACHE_DIR } from './corpus';
import { latencyBench } from './latency';
import { qualityBench } from './quality';
import { baseQualityBench, parseLines } from './baseQuality';
import { serverLatencyBench, whileTrainingBench } from './serverLatency';
import { scaleBench, scaleChild } from './scale';
import { torchSpeed, type ProductSpeed } from './torchSpeed';
import { fineTuneModesBench } from './fineTuneModes';
import { fineTuneRateBench } from './fineTuneRate';
import { fimRateBench } from './fimRate';
import { evaluateFolder } from '../models/src/eval/evaluateFolder';
import { printReport } from './report';

const CORPUS = 'rxjs@7.8.2';

interface SpeedResult {
  config: string;
  preset: PresetName;
  parameters: number;
  backend: string;
  device: string;
  batchSize: number;
  microBatchSize: number;
  blockSize: number;
  steps: number;
  tokensPerSecond: number; // median over the steps after the first two (compilation, warm-up)
  gflopsPerSecond: number; // (6N + 12·L·T·d) FLOPs per token, forward + backward
  peakRssMB: number;
}

/** Training FLOPs per token, forward and backward (PaLM appendix / nanoGPT's estimate). */
function flopsPerToken(preset: PresetName): number {
  const m = loadPreset(preset).model;
  return 6 * countParameters(m) + 12 * m.nLayer * m.nEmbd * m.blockSize;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}

/** Runs in a child process: a short training run, its throughput and its own peak RSS. */
async function speedChild(preset: PresetName, steps: number, label: string, backend?: string): Promise<SpeedResult> {
  const corpus = ensureCorpus(CORPUS);
  const outDir = path.join(CACHE_DIR, 'runs', `speed-${preset}-${backend ?? 'default'}`);
  rmSync(outDir, { recursive: true, force: true });
  const perStep: number[] = [];
  let backendName = '';
  let device = '';
  const { config } = await trainOnFolder({
    folder: corpus,
    outDir,
    preset,
    steps,
    minutes: 0,
    backend: backend as never,
    skipExport: true,
    onEvent: (e) => {
      if (e.type === 'log') perStep.push(e.metrics.tokensPerSecond);
      if (e.type === 'backend') [backendName, device] = [e.name, e.device];
    },
  });
  const tokensPerSecond = median(perStep.slice(2));
  const result: SpeedResult = {
    config: label,
    preset,
    parameters: countParameters(config.model),
    backend: backendName,
    device,
    batchSize: config.train.batchSize,
    microBatchSize: config.train.microBatchSize,
    blockSize: config.model.blockSize,
    steps,
    tokensPerSecond: Math.round(tokensPerSecond),
    gflopsPerSecond: +((tokensPerSecond * flopsPerToken(preset)) / 1e9).toFixed(2),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  return result;
}

function runChild(args: string[], env: Record<string, string> = {}): unknown {
  const out = execFileSync(process.execPath, [__filename, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** The whole report: the sections named by --only, in order. */
async function benchReport(values: BenchArgs): Promise<Record<string, unknown>> {
  const only = new Set((values.only ?? 'speed,latency,whiletraining,scale,quality').split(','));
  const speedSteps = values['speed-steps'] ?? '12';
  const report: Record<string, unknown> = { corpus: CORPUS, date: new Date().toISOString(), node: process.version };
  mkdirSync(CACHE_DIR, { recursive: true });
  ensureCorpus(CORPUS);

  if (only.has('speed')) {
    report.trainingSpeed = [
      // The baseline in the same run: the default preset on one thread (no gradient workers).
      runChild(['--child', 'speed', '--preset', DEFAULT_PRESET, '--label', `${DEFAULT_PRESET}, 1 thread`, '--speed-steps', speedSteps], { WLM_TRAIN_THREADS: '1' }),
      runChild(['--child', 'speed', '--preset', DEFAULT_PRESET, '--label', DEFAULT_PRESET, '--speed-steps', speedSteps]),
      runChild(['--child', 'speed', '--preset', 'base', '--label', 'base', '--speed-steps', speedSteps]),
      // The CPU engine before onnxruntime: TensorFlow.js on wasm with a gradient worker per core.
      runChild(['--child', 'speed', '--preset', DEFAULT_PRESET, '--label', `${DEFAULT_PRESET}, tfjs wasm`, '--backend', 'wasm', '--speed-steps', speedSteps]),
    ];
    // The PyTorch reference on the same cores, bracketed by the default preset's run above
    // and one more right after it: the ratio is against their mean, so load that drifts on a
    // shared machine weighs on both sides.
    report.torchReference = torchSpeed(DEFAULT_PRESET, Number(speedSteps), [
      (report.trainingSpeed as ProductSpeed[])[1],
      () => runChild(['--child', 'speed', '--preset', DEFAULT_PRESET, '--label', `${DEFAULT_PRESET}, after torch`, '--speed-steps', speedSteps]) as ProductSpeed,
    ]);
  }
  if (only.has('latency')) {
    // Through the built language server, as the editor drives it (serverLatency.ts).
    report.serverLatency = await serverLatencyBench({
      linesPerRegion: values['latency-lines'] !== undefined ? Number(values['latency-lines']) : undefined,
      maxChars: values['latency-chars'] !== undefined ? Number(values['latency-chars']) : undefined,
    });
  }
  if (only.has('whiletraining')) {
    report.latencyWhileTraining = await whileTrainingBench();
  }
  if (only.has('scale')) {
    report.scale = await scaleBench(runChild, values['scale-sizes']?.split(',').map(Number));
    // The language server's memory while serving (measured by the latency section, when it ran).
    (report.scale as Record<string, unknown>).serverMemory = (report.serverLatency as { serverMemory?: unknown } | undefined)?.serverMemory ?? 'run with --only latency,scale';
  }
  if (only.has('latency-session')) {
    // A default-preset model trained briefly on rxjs: latency depends on the size, not on the quality.
    const modelDir = path.join(CACHE_DIR, 'runs', `latency-${DEFAULT_PRESET}`);
    rmSync(modelDir, { recursive: true, force: true });
    await trainOnFolder({ folder: ensureCorpus(CORPUS), outDir: modelDir, preset: DEFAULT_PRESET, steps: 30, minutes: 0 });
    report.completionLatency = await latencyBench({ modelDir });
  }
  if (only.has('quality')) {
    // The budget: 15 minutes of CPU training with the default preset.
    report.quality = await qualityBench({ minutes: Number(values['quality-minutes'] ?? 15), preset: DEFAULT_PRESET });
    // Summaries of held-out rxjs functions from the same model (its JSDoc is rich), against the
    // retrieval baseline: evaluateFolder adds them to eval.json.
    report.summaries = (await evaluateFolder({ modelDir: path.join(CACHE_DIR, 'runs', `quality-${DEFAULT_PRESET}`), lines: 20 })).summaries;
  }
  if (only.has('base')) {
    // The pre-trained base against scratch and the 4-gram, budgets in calibrated steps (baseQuality.ts).
    report.base = await baseQualityBench({
      scale: values['base-scale'] !== undefined ? Number(values['base-scale']) : undefined,
      lines: parseLines(values['base-lines']),
      workspaces: values['base-workspaces'] !== undefined ? (values['base-workspaces'].split(',') as ('rxjs' | 'msw')[]) : undefined,
    });
  }
  if (only.has('finetune')) {
    // The base fine-tuned on rxjs the three ways (whole model, last 2 blocks, LoRA), on one step budget (fineTuneModes.ts).
    report.fineTuneModes = await fineTuneModesBench({ steps: Number(values['finetune-steps'] ?? 150) });
  }
  if (only.has('finetune-rate')) {
    // The base fine-tuned at each peak learning rate on rxjs's training files only (fineTuneRate.ts).
    report.fineTuneRate = await fineTuneRateBench({
      steps: values['finetune-rate-steps'] !== undefined ? Number(values['finetune-rate-steps']) : undefined,
      rates: values['finetune-rates'] !== undefined ? values['finetune-rates'].split(',').map(Number) : undefined,
    });
  }
  if (only.has('fim')) {
    // The base's pre-training continued at each FIM rate, lines completed with and without the suffix (fimRate.ts).
    report.fimRate = await fimRateBench({
      steps: values['fim-steps'] !== undefined ? Number(values['fim-steps']) : undefined,
      rates: values['fim-rates'] !== undefined ? values['fim-rates'].split(',').map(Number) : undefined,
      lines: values['fim-lines'] !== undefined ? Number(values['fim-lines']) : undefined,
    });
  }
  return report;
}

function parseBenchArgs() {
  return parseArgs({
    options: {
      child: { type: 'string' },
      preset: { type: 'string' },
      label: { type: 'string' },
      backend: { type: 'string' },
      only: { type: 'string' },
      'speed-steps': { type: 'string' },
      'quality-minutes': { type: 'string' },
      'base-scale': { type: 'string' }, // --only base: every training budget times this (0.2: a quick run)
      'base-lines': { type: 'string' }, // --only base: held-out lines per workspace, or all (the default)
      'base-workspaces': { type: 'string' }, // --only base: rxjs, msw or both (default rxjs,msw)
      folder: { type: 'string' }, // --child scale: the workspace
      'scale-sizes': { type: 'string' }, // --only scale: workspace sizes in MB (default 1,5,20)
      'latency-lines': { type: 'string' }, // --only latency: lines typed per file and region (default 4)
      'latency-chars': { type: 'string' }, // --only latency: characters typed per line at most (default 32)
      'finetune-steps': { type: 'string' }, // --only finetune: optimizer steps of each fine-tune mode (default 150)
      'finetune-rate-steps': { type: 'string' }, // --only finetune-rate: optimizer steps of each rate's run (default 1429)
      'finetune-rates': { type: 'string' }, // --only finetune-rate: comma-separated peak learning rates (default 0.002,0.0007,0.0003,0.00015,0.00008)
      'fim-steps': { type: 'string' }, // --only fim: optimizer steps of continued pre-training per FIM rate (default 400)
      'fim-rates': { type: 'string' }, // --only fim: comma-separated FIM rates, one arm each (default 0,0.5)
      'fim-lines': { type: 'string' }, // --only fim: held-out rxjs lines (default 200)
    },
  }).values;
}
type BenchArgs = ReturnType<typeof parseBenchArgs>;

const values = parseBenchArgs();
if (values.child === 'scale') printReport(scaleChild(values.folder!), undefined, true);
else if (values.child === 'speed') printReport(speedChild(values.preset as PresetName, Number(values['speed-steps'] ?? 12), values.label ?? values.preset!, values.backend), undefined, true);
else printReport(benchReport(values), path.join(CACHE_DIR, 'last-bench.json'));
