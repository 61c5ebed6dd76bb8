// A stand-in for the pre-trained base model in tests: a tiny model trained for a few steps on the
// sample project's TypeScript and JavaScript (src/), shaped like models/base (config, tokenizer,
// weights), so that runs starting from "the base" take seconds. Holds no tests.
import * as path from 'node:path';
import { trainOnFolder } from '../../models/src/pipeline';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const sampleProject = path.join(repoRoot, 'test', 'fixtures', 'sample-project');

/** Trains the stand-in into `dir` (the tiny preset: it is the base's architecture here) and returns `dir`. */
export async function makeStandInBase(dir: string, steps = 30): Promise<string> {
  await trainOnFolder({ folder: path.join(sampleProject, 'src'), outDir: dir, preset: 'tiny', steps, name: 'base', skipExport: true });
  return dir;
}
