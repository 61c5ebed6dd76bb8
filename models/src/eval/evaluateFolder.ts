// `wlm eval` and the server's evaluate job: loads a model folder, rebuilds its held-out data (or
// takes a folder given), trains the n-gram baseline on the model's training files (tokenized again
// from its sources: a model folder keeps no token files, model/runCache.ts), runs the
// completion suite (evaluate.ts) and the summaries suite (summaryEval.ts), and writes their
// sections as one report, once (report.ts owns eval.json). The model side runs on the ONNX
// session, the engine that serves completions. It computes no figure itself.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readModelConfig, type ModelFolderConfig } from '../model/checkpoint';
import { existingTokenFile } from '../model/runCache';
import { CodeTokenizer } from '../data/tokenizer';
import { scanFolder, readSourceText, type SourceFile } from '../data/files';
import { splitFiles, tokenizeFiles, openTokenStream } from '../data/dataset';
import { NGramModel } from '../infer/ngram';
import { CompletionSession } from '../infer/session';
import { CACHE_ORDER, MIXTURE_FILE } from '../infer/mixture';
import { evaluateModel, type EvalDocument, type EvalSystem } from './evaluate';
import { evaluateModelSummaries } from './summaryEval';
import { composeEvalReport, writeEvalReport, type EvalReport } from './report';
import { UserError } from '../util/errors';

/** A run's files, split into training and held-out as the run split them. */
type Split = ReturnType<typeof splitFiles>;

export { formatEvalTable } from './report';

export interface EvaluateFolderOptions {
  modelDir: string;
  folder?: string; // held-out code to evaluate on; default: the model's own validation split
  lines?: number; // held-out lines to complete (default 200)
  tokens?: number; // next-token predictions to score (default 4096)
  signal?: AbortSignal;
  onProgress?: (p: { phase: string; done: number; total: number }) => void;
  // 'model': the GPT alone (default). 'editor': what the editor shows — the GPT mixed with the
  // workspace n-gram and the cache of the document being completed (mixture.ts), built first
  // when the folder has no ngram.bin/mixture.json; completions heal tokens as always.
  system?: 'model' | 'editor';
}

export async function evaluateFolder(opts: EvaluateFolderOptions): Promise<EvalReport> {
  const modelDir = path.resolve(opts.modelDir);
  const config = await readModelConfig(modelDir);

  // Held-out files: the folder given, or the validation split recorded by the model's settings.
  let valFiles: SourceFile[];
  let split: Split | undefined; // the run's own, when the model's folder was scanned for it
  if (opts.folder) {
    valFiles = (await scanFolder(path.resolve(opts.folder))).files;
  } else {
    if (!existsSync(config.data.root)) throw new UserError(`the folder this model was trained on (${config.data.root}) is gone; pass a folder to evaluate on`);
    split = await runSplit(config);
    valFiles = split.val;
  }
  if (valFiles.length === 0) throw new UserError('no held-out source files to evaluate on');
  const docs: EvalDocument[] = [];
  for (const file of valFiles) {
    const text = await readSourceText(file);
    if (text !== null) docs.push({ relPath: file.relPath, text });
  }

  const editor = opts.system === 'editor';
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'wlm-eval-'));
  let opened: CompletionSession | undefined;
  try {
    const modelTokens = await modelTokenFiles(modelDir, config, await CodeTokenizer.load(path.join(modelDir, 'tokenizer.json')), scratch, opts.signal, split);
    if (editor && !existsSync(path.join(modelDir, MIXTURE_FILE))) await CompletionSession.buildMixture(modelDir, { signal: opts.signal, tokens: modelTokens });
    const session = (opened = await CompletionSession.open(modelDir, { mixture: editor }));
    const mixture = session.mixture;
    const valFile = path.join(scratch, 'val.bin');
    await tokenizeFiles(valFiles, session.tokenizer, valFile, { seed: config.train.seed, signal: opts.signal });
    const valTokens = openTokenStream(valFile);
    if (valTokens.length < config.model.blockSize + 1) {
      throw new UserError(`held-out files hold ${valTokens.length} tokens, fewer than one ${config.model.blockSize + 1}-token window; evaluate on a larger folder`);
    }
    // The same completion budget for both sides (the session caps it at half the context).
    const maxTokens = Math.min(48, Math.floor(config.model.blockSize / 2));
    const ngram = NGramModel.train(openTokenStream(modelTokens.train), { vocabSize: config.model.vocabSize });
    const model: EvalSystem = {
      name: mixture ? `editor: GPT ${config.preset} + ${mixture.ngram.order}-gram + cache (onnxruntime ${session.provider})` : `GPT ${config.preset} (onnxruntime ${session.provider})`,
      score: async (windows, batchSize, blockSize) => {
        const vocab = config.model.vocabSize;
        const out = new Float32Array(batchSize * blockSize * vocab);
        for (let b = 0; b < batchSize; b++) {
          const row = Array.from(windows.subarray(b * blockSize, (b + 1) * blockSize));
          const logits = await session.logitsUncached(row);
          if (!mixture) {
            out.set(logits, b * blockSize * vocab);
            continue;
          }
          // The cache holds the window's earlier tokens: all the scorer knows of the document.
          mixture.cache.setCurrent(null);
          for (let t = 0; t < blockSize; t++) {
            mixture.cache.appendCurrent(row[t]);
            const context = row.slice(Math.max(0, t + 1 - CACHE_ORDER), t + 1);
            mixture.logProbs(logits.subarray(t * vocab, (t + 1) * vocab), context, out.subarray((b * blockSize + t) * vocab, (b * blockSize + t + 1) * vocab));
          }
        }
        return out;
      },
      // With the mixture, the cache holds this document's text before and after the cursor.
      complete: async (prefix, suffix) => (await session.complete({ prefix, suffix, mode: 'line', maxTokens, signal: opts.signal })).text,
    };
    const completion = await evaluateModel({
      model,
      ngram,
      tokenizer: session.tokenizer,
      valTokens,
      valFiles: docs,
      blockSize: config.model.blockSize,
      lines: opts.lines,
      maxTokens,
      tokens: opts.tokens,
      seed: config.train.seed,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    const summaries = await evaluateModelSummaries({ session, config, valFiles, signal: opts.signal, onProgress: opts.onProgress });
    const report = composeEvalReport(completion, summaries);
    await writeEvalReport(modelDir, report);
    return report;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
    await opened?.close();
  }
}

/**
 * The model's training and held-out token files: those its run left (an older model folder's
 * data/, or the cache of a run that has not ended), else tokenized again from its sources
 * (config.data.root, split as the run split it) into `scratch`, as plain code: no FIM or summary
 * examples, which are for a GPT to learn from. For the n-gram baseline and a mixture built afresh.
 */
export async function modelTokenFiles(modelDir: string, config: ModelFolderConfig, tokenizer: CodeTokenizer, scratch: string, signal?: AbortSignal, runFiles?: Split): Promise<{ train: string; val: string }> {
  const train = existingTokenFile(modelDir, 'train.bin');
  const val = existingTokenFile(modelDir, 'val.bin');
  if (train && val) return { train, val };
  if (!existsSync(config.data.root)) {
    throw new UserError(`the folder this model was trained on (${config.data.root}) is gone: the n-gram baseline counts its training files, and a model folder keeps no token files; hint: evaluate where that folder is`);
  }
  const split = runFiles ?? (await runSplit(config));
  const files = { train: path.join(scratch, 'model-train.bin'), val: path.join(scratch, 'model-val.bin') };
  await tokenizeFiles(split.train, tokenizer, files.train, { seed: config.train.seed, signal });
  await tokenizeFiles(split.val, tokenizer, files.val, { seed: config.train.seed, signal });
  return files;
}

/** The run's training and held-out files, split again as the run split them (its seed, its excludes). */
async function runSplit(config: ModelFolderConfig): Promise<Split> {
  const scan = await scanFolder(config.data.root, { exclude: config.data.exclude });
  return splitFiles(scan.files, config.train.valFraction, config.train.seed);
}
