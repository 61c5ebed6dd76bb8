// Training data and settings for trainer tests (train.test.ts, lora.test.ts): a token stream with
// structure to learn, and a short run's settings, so that runs compare bit for bit.
import { BatchSampler, type TokenStream } from '../../models/src/data/dataset';
import { DEFAULT_TRAIN, type TrainConfig } from '../../models/src/model/config';
import type { TrainData } from '../../models/src/train/train';

/** A token stream with structure to learn (ids below 40): a repeating pattern with some noise. */
export function learnableStream(length: number, seed: number): TokenStream {
  const tokens = new Int32Array(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    tokens[i] = (s >>> 24) % 8 === 0 ? (s >>> 16) % 40 : (i * 3) % 17;
  }
  return { length, read: (start, count) => tokens.slice(start, start + count) };
}

/** Training and validation batches of learnableStream for windows of `blockSize`. */
export function learnableData(blockSize: number, seed = 1): TrainData {
  return { train: new BatchSampler(learnableStream(2000, seed), blockSize, seed), val: new BatchSampler(learnableStream(500, seed + 7), blockSize, seed + 1) };
}

/** A short run's settings: batch 4, 12 steps, evaluated every 4. */
export function shortRunConfig(overrides: Partial<TrainConfig>): TrainConfig {
  return { ...DEFAULT_TRAIN, batchSize: 4, microBatchSize: 4, learningRate: 1e-2, minLearningRate: 1e-3, warmupSteps: 2, maxSteps: 12, evalInterval: 4, evalBatches: 2, ...overrides };
}
