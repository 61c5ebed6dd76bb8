// How long training takes. For a run under way: where it stands against its two budgets, the
// planned steps and the wall-clock minutes (train.ts stops at whichever runs out first), and the
// time left. For a preset not started yet: how long it would train on this machine, from the speed
// of a model already trained here, else the preset's own recorded measurement. Arithmetic over the
// figures handed in, plus the few reads that gather them; it starts no engine and trains nothing.
import { readModelConfig } from '../../models/src/model/checkpoint';
import { countParameters, type Preset } from '../../models/src/model/config';
import { hasVulkanLoader } from '../../models/src/util/platform';
import type { BackendGuess, PresetEstimate } from '../../protocol/src/customMessages';
import type { ModelStore } from './store';
import type { Settings } from './settings';

// ---------------------------------------------------------------------------------------------
// A run under way

export interface Budget {
  maxSteps: number;
  maxMinutes: number; // 0: no time budget
}

export interface RunProgress {
  percentage: number; // 0–100 of the budget expected to end the run
  etaMs: number | null; // null until two logged steps give a pace
  endsBy: 'maxSteps' | 'maxMinutes';
}

// The last ~20 logged steps: the first steps include compilation and warm-up, so they lie.
const PACE_WINDOW = 21;

/** The pace of a training run from its logged steps, and its progress against both budgets. */
export class RunPace {
  private readonly recent: { step: number; elapsedMs: number }[] = [];

  constructor(readonly budget: Budget) {}

  /** Records a logged step (`elapsedMs`: training time so far, as train.ts measures it for its budget). */
  observe(step: number, elapsedMs: number): RunProgress {
    this.recent.push({ step, elapsedMs });
    if (this.recent.length > PACE_WINDOW) this.recent.shift();
    return this.progress();
  }

  progress(): RunProgress {
    const { maxSteps, maxMinutes } = this.budget;
    const last = this.recent.at(-1) ?? { step: 0, elapsedMs: 0 };
    const budgetMs = maxMinutes > 0 ? maxMinutes * 60_000 : Infinity;
    const byTime = last.elapsedMs / budgetMs; // 0 without a time budget
    const bySteps = last.step / Math.max(1, maxSteps);
    const percentage = Math.min(100, Math.max(0, Math.round(100 * Math.max(bySteps, byTime))));
    const timeLeftMs = Math.max(0, budgetMs - last.elapsedMs);
    const first = this.recent[0];
    const msPerStep = first && last.step > first.step ? (last.elapsedMs - first.elapsedMs) / (last.step - first.step) : NaN;
    if (!(msPerStep > 0) || !Number.isFinite(msPerStep)) {
      // No pace yet; a spent budget still says the run is ending.
      const ending = last.step >= maxSteps || timeLeftMs === 0;
      return { percentage, etaMs: ending ? 0 : null, endsBy: byTime > bySteps ? 'maxMinutes' : 'maxSteps' };
    }
    const stepsLeftMs = Math.max(0, maxSteps - last.step) * msPerStep;
    return stepsLeftMs <= timeLeftMs
      ? { percentage, etaMs: Math.round(stepsLeftMs), endsBy: 'maxSteps' }
      : { percentage, etaMs: Math.round(timeLeftMs), endsBy: 'maxMinutes' };
  }
}

/** "45 s", "12 min", "2 h 5 min": the time left, as a progress message says it. */
export function describeDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// ---------------------------------------------------------------------------------------------
// A preset not started yet

/** What a model folder of this models dir says about the run that made it. */
export interface TrainedRun {
  name: string;
  preset: string;
  createdAt: string;
  backend: string; // backend name, e.g. "wasm"
  tokensPerSecond: number; // config.json timings: training tokens over step time
  fineTuned: boolean; // a fine-tune (frozen layers run faster): not a preset's speed
}

// The presets meant for a GPU (base.json: "For a GPU"): on a CPU they reach a small share of their
// planned steps before their time budget stops them, so starting one there is asked about first.
const PRESETS_FOR_A_GPU: ReadonlySet<string> = new Set(['base']);
const GPU_BACKENDS: ReadonlySet<string> = new Set(['tfjs-node-gpu', 'webgpu']);

/** The runs of the models dir that recorded their speed, newest first; unreadable folders are skipped. */
export async function readTrainedRuns(store: ModelStore): Promise<TrainedRun[]> {
  const runs: TrainedRun[] = [];
  for (const name of await store.names()) {
    try {
      const config = await readModelConfig(store.dirOf(name));
      const tokensPerSecond = config.timings?.tokensPerSecond;
      if (typeof tokensPerSecond !== 'number' || !(tokensPerSecond > 0) || !config.backend?.name) continue;
      runs.push({ name, preset: config.preset, createdAt: config.createdAt, backend: config.backend.name, tokensPerSecond, fineTuned: Boolean(config.parent) });
    } catch {
      // a corrupt or half-written folder measures nothing
    }
  }
  return runs.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** Whether a GPU engine could load here at all: tfjs-node-gpu installed, or WebGPU with a Vulkan loader. */
export function gpuEngineInstalled(): boolean {
  const installed = (pkg: string): boolean => {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      return false;
    }
  };
  return installed('@tensorflow/tfjs-node-gpu') || (installed('webgpu') && hasVulkanLoader());
}

/** The engine a training would run on, as far as the server knows without starting one. */
export function guessBackend(setting: Settings['backend'], runs: TrainedRun[], gpuInstalled: boolean): BackendGuess {
  const deviceOf = (name: string): 'gpu' | 'cpu' => (GPU_BACKENDS.has(name) ? 'gpu' : 'cpu');
  if (setting !== 'auto') return { device: deviceOf(setting), name: setting, reason: `the workspaceLm.backend setting is "${setting}"` };
  const last = runs.find((r) => !r.fineTuned) ?? runs[0];
  if (!gpuInstalled) {
    return { device: 'cpu', name: last?.backend ?? null, reason: 'no GPU engine can load here (@tensorflow/tfjs-node-gpu is not installed, and WebGPU finds no Vulkan loader)' };
  }
  if (last) return { device: deviceOf(last.backend), name: last.backend, reason: `"${last.name}" was trained here on ${last.backend}` };
  return { device: 'unknown', name: null, reason: 'nothing trained here yet: a GPU engine is installed, and the first training will tell whether it starts' };
}

/**
 * How long each preset would train here. The speed is, in order: a model of that preset trained
 * here on this engine; the preset's recorded measurement scaled by how this machine compared on
 * another preset measured on the same engine; the recorded measurement as it stands. A recording
 * made on a CPU says nothing of a GPU, so on a GPU only runs made here count.
 */
export function estimatePresets(presets: Preset[], runs: TrainedRun[], backend: BackendGuess): PresetEstimate[] {
  const sameEngine = runs.filter((r) => !r.fineTuned && (backend.name === null || r.backend === backend.name));
  return presets.map((preset) => {
    const speed = speedHere(preset, presets, sameEngine, backend);
    const { maxSteps, maxMinutes } = preset.train;
    const estimate: PresetEstimate = {
      name: preset.name,
      description: preset.description,
      meantForGpu: PRESETS_FOR_A_GPU.has(preset.name),
      parameters: countParameters(preset.model),
      maxSteps,
      maxMinutes,
      speed,
      trainMs: null,
      endsBy: null,
      expectedSteps: null,
    };
    if (!speed) return estimate;
    const msPerStep = (1000 * preset.train.batchSize * preset.model.blockSize) / speed.tokensPerSecond;
    const stepsMs = maxSteps * msPerStep;
    const budgetMs = maxMinutes > 0 ? maxMinutes * 60_000 : Infinity;
    return stepsMs <= budgetMs
      ? { ...estimate, trainMs: Math.round(stepsMs), endsBy: 'maxSteps', expectedSteps: maxSteps }
      : { ...estimate, trainMs: budgetMs, endsBy: 'maxMinutes', expectedSteps: Math.floor(budgetMs / msPerStep) };
  });
}

// A machine's speed on one preset says how it runs another only for models of a like size: the
// tokens/s of a tiny model are set by each step's fixed costs, not its arithmetic. On one 2-core
// machine, tiny (137K parameters) trained at 32-83K tokens/s against its recorded 14,929 while
// small (1.3M) ran at 1.65x its record; base's record scaled by tiny's 5.6x said base would finish
// 5,000 steps in its 30 minutes there. So the reference is the trained preset closest in size, and
// none more than this many times larger or smaller.
const MAX_SCALING_SIZE_RATIO = 30;

function speedHere(preset: Preset, presets: Preset[], runs: TrainedRun[], backend: BackendGuess): PresetEstimate['speed'] {
  const tokensPerSecond = (n: number) => Math.round(n);
  const own = runs.find((r) => r.preset === preset.name);
  if (own) return { tokensPerSecond: tokensPerSecond(own.tokensPerSecond), source: 'here', detail: `"${own.name}" trained here on ${own.backend}` };
  const measured = preset.measured;
  if (!measured || backend.device === 'gpu' || GPU_BACKENDS.has(measured.backend)) return null;
  const where = `measured on ${measured.measuredOn} (${measured.backend})`;
  // Another preset of a like size, measured on the same engine and also trained here, says how this machine compares.
  const sizeRatio = (other: Preset) => {
    const [a, b] = [countParameters(preset.model), countParameters(other.model)];
    return Math.max(a, b) / Math.min(a, b);
  };
  const references = runs
    .map((run) => ({ run, preset: presets.find((p) => p.name === run.preset) }))
    .filter((r): r is { run: TrainedRun; preset: Preset } => r.preset !== undefined && sizeRatio(r.preset) <= MAX_SCALING_SIZE_RATIO)
    .sort((a, b) => sizeRatio(a.preset) - sizeRatio(b.preset));
  for (const { run, preset: other } of references) {
    const reference = other.measured;
    if (!reference || reference.backend !== measured.backend || run.backend !== measured.backend) continue;
    const factor = run.tokensPerSecond / reference.tokensPerSecond;
    return {
      tokensPerSecond: tokensPerSecond(measured.tokensPerSecond * factor),
      source: 'scaled',
      detail: `${measured.tokensPerSecond} tokens/s ${where}, × ${factor.toFixed(2)}: "${run.name}" (${run.preset}) ran ${run.tokensPerSecond.toFixed(0)} tokens/s here against ${reference.tokensPerSecond} there`,
    };
  }
  return { tokensPerSecond: measured.tokensPerSecond, source: 'measured', detail: where };
}
