// A copy of a model folder fit to give to someone else (`wlm export <model> --shareable --out DIR`):
// what the GPT needs to serve, without what holds the code it was trained on word for word. It
// owns the list of what a shareable copy keeps, and why each other file is left out; the copy is
// said, never silent. The weights stay: they were trained on the code and can still reproduce
// fragments of it (README.md, "What a model folder reveals").
import { promises as fs, existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { readModelConfig, writeModelConfig } from './model/checkpoint';
import { ONNX_FILE } from './model/onnx';
import { MIXTURE_FILE, NGRAM_FILE } from './infer/mixture';
import { UserError } from './util/errors';

/** What a shareable copy keeps: the model itself (config.json is rewritten, the rest copied as they are). */
const KEPT = new Set(['config.json', 'tokenizer.json', 'model.json', 'weights.bin', ONNX_FILE, 'metrics.jsonl']);

/** Why the other files of a model folder are left out. */
const LEFT_OUT_BECAUSE: Record<string, string> = {
  [NGRAM_FILE]: "the workspace n-gram: the code's token sequences, verbatim",
  [MIXTURE_FILE]: 'the completion mixture, fitted around that n-gram (the copy serves the GPT alone)',
  'eval.json': 'the evaluation report: its examples quote lines of the held-out code',
  data: "an older run's token files: the code itself, as tokens",
  resume: "an older run's resume state (weights and optimizer moments mid-run)",
  'resume.old': "an older run's resume state",
};

export interface ShareableCopy {
  outDir: string;
  copied: string[];
  leftOut: { file: string; why: string }[];
}

/**
 * Writes the shareable copy of `modelDir` into `outDir`, a folder that must not exist yet. In
 * config.json the workspace's path, its commit and the parent's path give way to folder names.
 */
export async function exportShareable(modelDir: string, outDir: string): Promise<ShareableCopy> {
  const from = path.resolve(modelDir);
  const to = path.resolve(outDir);
  const config = await readModelConfig(from);
  if (existsSync(to)) throw new UserError(`${to} already exists; a shareable copy goes into a new folder`);
  if (to === from || to.startsWith(from + path.sep)) throw new UserError(`the shareable copy cannot go inside the model folder itself (${to})`);
  const copied: string[] = [];
  const leftOut: { file: string; why: string }[] = [];
  const entries = readdirSync(from).sort();
  await fs.mkdir(to, { recursive: true });
  try {
    for (const entry of entries) {
      if (!KEPT.has(entry)) {
        leftOut.push({ file: entry, why: LEFT_OUT_BECAUSE[entry] ?? (entry.endsWith('.tmp') ? 'a temporary file of an interrupted write' : 'not part of what the model needs to serve') });
        continue;
      }
      if (entry === 'config.json') {
        await writeModelConfig(to, {
          ...config,
          data: { ...config.data, root: path.basename(config.data.root), gitCommit: undefined },
          parent: config.parent ? path.basename(config.parent) : undefined,
        });
      } else {
        await fs.copyFile(path.join(from, entry), path.join(to, entry));
      }
      copied.push(entry);
    }
  } catch (err) {
    await fs.rm(to, { recursive: true, force: true }); // no half copy left to be shared
    throw err;
  }
  return { outDir: to, copied, leftOut };
}
