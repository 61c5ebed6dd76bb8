// How the data path scales with the workspace: scan, tokenize (the bundled base's tokenizer, as a
// workspace served from the base is tokenized) and count the completion mixture's n-gram, for
// workspaces of 1, 5 and 20 MB of real code. Each size runs in a child process of its own, so
// that its peak RSS is its own. The functions are the product's, called as pipeline.ts calls them
// for a folder made from the base (scanFolder, splitFiles, tokenizeFiles without FIM or summary
// examples, NGramModel.train at the mixture's order, ngram.bin written).
//
// The workspaces are pinned npm packages fetched with `npm pack` (bench/corpus.ts), their files
// that the scanner keeps taken in turn, one from each package, until the size is reached, and
// copied under .bench-cache/scale/.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { scanFolder, type SourceFile } from '../models/src/data/files';
import { splitFiles, tokenizeFiles, openTokenStream } from '../models/src/data/dataset';
import { CodeTokenizer } from '../models/src/data/tokenizer';
import { NGramModel } from '../models/src/infer/ngram';
import { DEFAULT_MIXTURE_NGRAM_ORDER } from '../models/src/infer/mixture';
import { readModelConfig } from '../models/src/model/checkpoint';
import { loadPreset } from '../models/src/model/config';
import { bundledBaseDir } from '../models/src/model/base';
import { ensureCorpus, CACHE_DIR } from './corpus';

// Real, hand-written JavaScript and TypeScript (the scanner drops their dist/ and minified files).
export const SCALE_PACKAGES = ['three@0.160.0', 'webpack@5.90.3', 'echarts@5.5.0', 'eslint@8.57.0', 'lodash@4.17.21', 'rxjs@7.8.2'];
export const SCALE_SIZES_MB = [1, 5, 20];
const MB = 1e6;
const GOALS = { seconds20MB: 60, peakRssMB20MB: 1536 };

export interface ScaleChildResult {
  files: number;
  bytes: number;
  tokens: number;
  ngramNodes: number | null;
  seconds: { scan: number; tokenize: number; ngram: number; total: number };
  peakRssMB: number;
}

/** A workspace of about `mb` MB: the packages' kept files, one from each in turn, copied. */
async function buildWorkspace(mb: number): Promise<string> {
  const folder = path.join(CACHE_DIR, 'scale', `ws-${mb}MB`);
  const manifest = `${folder}.json`; // beside the folder, so the scan does not see it
  if (existsSync(manifest) && existsSync(folder)) return folder;
  rmSync(folder, { recursive: true, force: true });
  const lists: { name: string; files: SourceFile[] }[] = [];
  for (const spec of SCALE_PACKAGES) {
    const root = ensureCorpus(spec, '');
    lists.push({ name: spec.replace(/[@/]/g, '_'), files: (await scanFolder(root)).files });
  }
  let bytes = 0;
  let copied = 0;
  for (let i = 0; bytes < mb * MB; i++) {
    let any = false;
    for (const { name, files } of lists) {
      if (i >= files.length || bytes >= mb * MB) continue;
      any = true;
      const file = files[i];
      const target = path.join(folder, name, file.relPath);
      mkdirSync(path.dirname(target), { recursive: true });
      cpSync(file.absPath, target);
      bytes += file.bytes;
      copied++;
    }
    if (!any) throw new Error(`the packages hold ${(bytes / MB).toFixed(1)} MB of source, less than ${mb} MB`);
  }
  writeFileSync(manifest, JSON.stringify({ packages: SCALE_PACKAGES, files: copied, bytes }, null, 2));
  return folder;
}

/** In a child process: the data path on one workspace, timed, with this process's peak RSS. */
export async function scaleChild(folder: string): Promise<ScaleChildResult> {
  const base = await readModelConfig(bundledBaseDir());
  const train = loadPreset(base.preset).train;
  const out = path.join(CACHE_DIR, 'scale', `out-${path.basename(folder)}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const started = performance.now();

  const scan = await scanFolder(folder);
  const scanned = performance.now();

  const tokenizer = await CodeTokenizer.load(path.join(bundledBaseDir(), 'tokenizer.json'));
  const split = splitFiles(scan.files, train.valFraction, train.seed);
  const trainTokens = await tokenizeFiles(split.train, tokenizer, path.join(out, 'train.bin'), { seed: train.seed });
  const valTokens = await tokenizeFiles(split.val, tokenizer, path.join(out, 'val.bin'), { seed: train.seed });
  const tokenized = performance.now();

  const ngram = NGramModel.train(openTokenStream(path.join(out, 'train.bin')), { vocabSize: tokenizer.vocabSize, order: DEFAULT_MIXTURE_NGRAM_ORDER });
  await ngram.save(path.join(out, 'ngram.bin'));
  const counted = performance.now();

  const s = (ms: number) => +(ms / 1000).toFixed(2);
  const result: ScaleChildResult = {
    files: scan.files.length,
    bytes: scan.totalBytes,
    tokens: trainTokens.tokens + valTokens.tokens,
    ngramNodes: readFileSync(path.join(out, 'ngram.bin')).readInt32LE(8 + 12), // the header's node count
    seconds: { scan: s(scanned - started), tokenize: s(tokenized - scanned), ngram: s(counted - tokenized), total: s(counted - started) },
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  rmSync(out, { recursive: true, force: true });
  return result;
}

/** Builds the workspaces, runs one child per size, and sets the figures against the goals. */
export async function scaleBench(runChild: (args: string[]) => unknown, sizes = SCALE_SIZES_MB) {
  const rows: (ScaleChildResult & { workspaceMB: number; secondsPerMB: number; rssMBPerMB: number })[] = [];
  for (const mb of sizes) {
    const folder = await buildWorkspace(mb);
    const r = runChild(['--child', 'scale', '--folder', folder]) as ScaleChildResult;
    const actualMB = r.bytes / MB;
    rows.push({ workspaceMB: +actualMB.toFixed(2), ...r, secondsPerMB: +(r.seconds.total / actualMB).toFixed(3), rssMBPerMB: +(r.peakRssMB / actualMB).toFixed(1) });
  }
  const largest = rows[rows.length - 1];
  const smallest = rows[0];
  return {
    packages: SCALE_PACKAGES,
    tokenizer: 'the bundled base model\'s',
    ngramOrder: DEFAULT_MIXTURE_NGRAM_ORDER,
    sizes: rows,
    // Linear growth keeps seconds per MB flat; above 1, the largest workspace cost more per MB.
    secondsPerMBRatioLargestToSmallest: +(largest.secondsPerMB / smallest.secondsPerMB).toFixed(2),
    secondsPerMBRatioLargestToMiddle: rows.length > 2 ? +(largest.secondsPerMB / rows[rows.length - 2].secondsPerMB).toFixed(2) : null,
    goals: {
      ...GOALS,
      measuredAt: `${largest.workspaceMB} MB`,
      pass: largest.seconds.total <= GOALS.seconds20MB && largest.peakRssMB <= GOALS.peakRssMB20MB && largest.secondsPerMB <= 1.25 * smallest.secondsPerMB,
      note: 'pass: the largest size within 60 s and 1.5 GB, and its seconds per MB at most 1.25x the smallest size\'s',
    },
  };
}
