// The typed configuration of a model and of a training run, and the presets that name good pairs
// of them. Owns defaults and validation; it does not know how a model is built or trained.
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

/** The architecture of the GPT. Everything needed to rebuild the graph from a checkpoint. */
export interface GPTConfig {
  vocabSize: number; // tokenizer vocabulary, special tokens included
  blockSize: number; // context length in tokens; position embeddings exist for this many
  nLayer: number; // transformer blocks
  nHead: number; // attention heads per block; nEmbd must divide by it
  nEmbd: number; // width of the residual stream
  dropout: number; // 0 for small data budgets: we are rarely in the overfitting regime
}

/** One training run: optimisation, schedule, evaluation and stopping. */
export interface TrainConfig {
  batchSize: number; // sequences per optimiser step
  microBatchSize: number; // sequences per forward/backward; gradients accumulate up to batchSize
  learningRate: number; // peak learning rate after warm-up
  fineTuneLearningRate: number; // the peak instead, for a run that starts from pre-trained weights and trains them (adapters keep learningRate)
  minLearningRate: number; // floor of the cosine decay
  warmupSteps: number; // linear warm-up from 0 to learningRate
  cooldownFraction: number; // the last share of the run in which the cosine decays; before it the rate stays at its peak
  maxSteps: number; // optimiser steps; the decay reaches minLearningRate here or at maxMinutes, whichever comes first
  maxMinutes: number; // wall-clock budget; 0 means none
  weightDecay: number; // AdamW decoupled decay, applied to matrices only
  beta1: number;
  beta2: number;
  gradClip: number; // global L2 norm clip; 0 disables
  evalInterval: number; // validate (and maybe checkpoint) every this many steps
  evalBatches: number; // validation micro-batches averaged per evaluation
  patience: number; // stop after this many evaluations without improvement; 0 disables
  logInterval: number; // append to metrics.jsonl every this many steps
  seed: number; // initialisation, data order, split
  valFraction: number; // share of files held out for validation (split by file)
  fimRate: number; // share of documents rewritten as fill-in-the-middle examples
  summaryRate: number; // share of mined (code, summary) pairs mixed into training
}

/** What a preset records about itself, measured on the machine named in `measuredOn`. */
export interface PresetMeasurements {
  parameters: number;
  measuredOn: string;
  backend: string;
  tokensPerSecond: number;
  note: string;
}

export interface Preset {
  name: string;
  description: string;
  model: GPTConfig;
  train: TrainConfig;
  measured?: PresetMeasurements;
}

export const PRESET_NAMES = ['tiny', 'small', 'base'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];
export const DEFAULT_PRESET: PresetName = 'small';

export const DEFAULT_TRAIN: TrainConfig = {
  batchSize: 16,
  microBatchSize: 16,
  learningRate: 1e-3,
  fineTuneLearningRate: 1.5e-4,
  minLearningRate: 1e-4,
  warmupSteps: 20,
  cooldownFraction: 1,
  maxSteps: 1000,
  maxMinutes: 0,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  gradClip: 1.0,
  evalInterval: 50,
  evalBatches: 8,
  patience: 0,
  logInterval: 1,
  seed: 1337,
  valFraction: 0.1,
  fimRate: 0.0,
  summaryRate: 0.0,
};

/** Where the preset JSON files live, both from sources (models/src/model) and from the bundle (dist). */
function presetsDir(): string {
  const candidates = [
    path.resolve(__dirname, '..', '..', 'presets'),
    path.resolve(__dirname, '..', 'models', 'presets'),
  ];
  for (const dir of candidates) {
    try {
      if (readdirSync(dir).some((f) => f.endsWith('.json'))) return dir;
    } catch {
      // try the next candidate
    }
  }
  throw new Error(`presets folder not found (looked in ${candidates.join(', ')})`);
}

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

export function loadPreset(name: string): Preset {
  if (!isPresetName(name)) {
    throw new Error(`unknown preset "${name}"; choose one of: ${PRESET_NAMES.join(', ')}`);
  }
  const raw = JSON.parse(readFileSync(path.join(presetsDir(), `${name}.json`), 'utf8')) as Preset;
  const preset: Preset = { ...raw, train: { ...DEFAULT_TRAIN, ...raw.train } };
  validateGPTConfig(preset.model);
  validateTrainConfig(preset.train);
  return preset;
}

export function validateGPTConfig(c: GPTConfig): void {
  const ints: (keyof GPTConfig)[] = ['vocabSize', 'blockSize', 'nLayer', 'nHead', 'nEmbd'];
  for (const key of ints) {
    if (!Number.isInteger(c[key]) || c[key] <= 0) {
      throw new Error(`model config: ${key} must be a positive integer, got ${c[key]}`);
    }
  }
  if (c.nEmbd % c.nHead !== 0) {
    throw new Error(`model config: nEmbd (${c.nEmbd}) must be divisible by nHead (${c.nHead})`);
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) {
    throw new Error(`model config: dropout must be in [0, 1), got ${c.dropout}`);
  }
}

export function validateTrainConfig(t: TrainConfig): void {
  const positiveInts: (keyof TrainConfig)[] = ['batchSize', 'microBatchSize', 'maxSteps', 'evalInterval', 'evalBatches', 'logInterval'];
  for (const key of positiveInts) {
    if (!Number.isInteger(t[key]) || t[key] <= 0) {
      throw new Error(`train config: ${key} must be a positive integer, got ${t[key]}`);
    }
  }
  if (t.batchSize % t.microBatchSize !== 0) {
    throw new Error(`train config: batchSize (${t.batchSize}) must be a multiple of microBatchSize (${t.microBatchSize})`);
  }
  for (const key of ['learningRate', 'fineTuneLearningRate'] as const) {
    if (!(t[key] > 0)) throw new Error(`train config: ${key} must be > 0, got ${t[key]}`);
  }
  if (!(t.valFraction > 0 && t.valFraction < 1)) {
    throw new Error(`train config: valFraction must be in (0, 1), got ${t.valFraction}`);
  }
  for (const key of ['fimRate', 'summaryRate', 'cooldownFraction'] as const) {
    if (!(t[key] >= 0 && t[key] <= 1)) throw new Error(`train config: ${key} must be in [0, 1], got ${t[key]}`);
  }
}

/**
 * Low-rank adapters (LoRA) for a fine-tune: each block's attention and MLP matrix trains as
 * W0 + (alpha / rank) · A · B with W0 fixed (train/lora.ts), merged into W when saved.
 */
export interface LoraConfig {
  rank: number; // columns of A and rows of B; DEFAULT_LORA_RANK unless asked
  alpha: number; // the update is scaled by alpha / rank; 2 * rank, so the scale (2) and the learning rate that suits it do not move with the rank
}

export const DEFAULT_LORA_RANK = 8; // the LoRA paper's and minLoRA's usual rank

export function loraConfig(rank = DEFAULT_LORA_RANK): LoraConfig {
  return { rank, alpha: 2 * rank };
}

export function validateLoraConfig(l: LoraConfig, model: GPTConfig): void {
  if (!Number.isInteger(l.rank) || l.rank < 1 || l.rank > model.nEmbd) {
    throw new Error(`LoRA: rank must be an integer from 1 to ${model.nEmbd} (the model's width), got ${l.rank}`);
  }
  if (!(l.alpha > 0)) throw new Error(`LoRA: alpha must be > 0, got ${l.alpha}`);
}

/** Parameters of the GPT, counted the way gpt.ts allocates them (tied output head). */
export function countParameters(c: GPTConfig): number {
  const d = c.nEmbd;
  const perBlock = 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d);
  return c.vocabSize * d + c.blockSize * d + c.nLayer * perBlock + 2 * d;
}
