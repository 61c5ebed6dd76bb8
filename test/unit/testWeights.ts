// Random but seeded GPT weights for tests that need a model folder without training one.
import type { GPTConfig } from '../../models/src/model/config';
import { parameterShapes, type WeightTensor } from '../../models/src/model/checkpoint';
import { seededRandom } from '../../models/src/infer/generate';

/** Every parameter of `c`, LayerNorm gains 1 and the rest uniform in ±0.25, the same for a seed. */
export function randomWeights(c: GPTConfig, seed: number): Map<string, WeightTensor> {
  const random = seededRandom(seed);
  const weights = new Map<string, WeightTensor>();
  for (const [name, shape] of parameterShapes(c)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = name.endsWith('.g') ? 1 : (random() - 0.5) * 0.5;
    weights.set(name, { shape, data });
  }
  return weights;
}
