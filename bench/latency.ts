// Completion latency on held-out real code: onnxruntime with the KV cache (what the editor uses)
// against the tfjs model recomputing its whole context per token (the baseline), in one run.
// Cold: a fresh cache per request. Typing: a keystroke sequence through each line, so each request
// extends the previous prompt by one character and the KV cache can reuse it.
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import { readModelConfig, readWeights } from '../models/src/model/checkpoint';
import { scanFolder, readSourceText } from '../models/src/data/files';
import { splitFiles } from '../models/src/data/dataset';
import { CompletionSession } from '../models/src/infer/session';
import { selectBackend } from '../models/src/train/backend';
import { GPT } from '../models/src/model/gpt';
import { percentile, summarizeLatency } from '../models/src/eval/metrics';

export interface LatencyOptions {
  modelDir: string;
  coldRequests?: number; // default 60
  typedLines?: number; // default 12
  baselineRequests?: number; // tfjs requests (slow); default 8
  maxTokens?: number; // default 16
}

interface Cursor { prefix: string; suffix: string; line: string }

/** Line starts in held-out files, deterministic: every k-th non-blank line after the first 20. */
async function heldOutCursors(modelDir: string, count: number): Promise<Cursor[]> {
  const config = await readModelConfig(modelDir);
  const scan = await scanFolder(config.data.root);
  const { val } = splitFiles(scan.files, config.train.valFraction, config.train.seed);
  const cursors: Cursor[] = [];
  for (const file of val) {
    const text = await readSourceText(file);
    if (!text) continue;
    const lines = text.split('\n');
    let offset = 0;
    lines.forEach((line, i) => {
      const indent = line.length - line.trimStart().length;
      if (i >= 20 && line.trim().length >= 8 && i % 7 === 0) {
        cursors.push({ prefix: text.slice(0, offset + indent), suffix: text.slice(offset + indent), line: line.slice(indent) });
      }
      offset += line.length + 1;
    });
  }
  // Spread the picks over all files.
  const step = Math.max(1, Math.floor(cursors.length / count));
  return cursors.filter((_, i) => i % step === 0).slice(0, count);
}

function stats(ms: number[]) {
  const { histogram: _, ...s } = summarizeLatency(ms);
  return s;
}

export async function latencyBench(opts: LatencyOptions) {
  const modelDir = path.resolve(opts.modelDir);
  const maxTokens = opts.maxTokens ?? 16;
  const cursors = await heldOutCursors(modelDir, opts.coldRequests ?? 60);
  const session = await CompletionSession.open(modelDir);

  // Cold: no KV cache to reuse; decoded as the editor does (with the mixture when the folder has one).
  const cold: number[] = [];
  let generated = 0;
  let decodeMs = 0;
  for (const c of cursors) {
    session.resetCache();
    const r = await session.complete({ prefix: c.prefix, suffix: c.suffix, mode: 'line', maxTokens });
    cold.push(r.ms);
    generated += r.tokens;
    decodeMs += r.ms;
  }

  // Typing: one request per keystroke through each line; the KV cache holds the previous prompt.
  // Twice: the GPT alone, and what the editor serves (mixed with the n-gram and the files cache).
  const typingRun = async (mixture: boolean) => {
    const ms: number[] = [];
    const computed: number[] = [];
    for (const c of cursors.slice(0, opts.typedLines ?? 12)) {
      session.resetCache();
      const typed = c.line.slice(0, 24);
      for (let k = 0; k <= typed.length; k++) {
        const r = await session.complete({ prefix: c.prefix + typed.slice(0, k), suffix: c.suffix.slice(k), mode: 'line', maxTokens, mixture });
        if (k > 0) {
          ms.push(r.ms);
          computed.push(r.computedTokens);
        }
      }
    }
    return { ...stats(ms), medianPositionsComputed: percentile(computed, 50) };
  };
  const typingModel = await typingRun(false);
  const typingEditor = session.mixture !== null ? await typingRun(true) : null;
  const provider = session.provider;
  const blockSize = session.config.blockSize;
  const tokenizer = session.tokenizer;
  await session.close();

  // Baseline: the tfjs model, greedy, recomputing the whole window for every new token.
  const backend = await selectBackend();
  const config = await readModelConfig(modelDir);
  const gpt = new GPT(config.model);
  gpt.loadWeights(await readWeights(modelDir));
  const tfjs: number[] = [];
  let tfjsTokens = 0;
  for (const c of cursors.slice(0, opts.baselineRequests ?? 8)) {
    const started = performance.now();
    const ids = tokenizer.encode(c.prefix).slice(-(blockSize - maxTokens));
    for (let t = 0; t < maxTokens; t++) {
      const next = tf.tidy(() => {
        const logits = gpt.forward(tf.tensor2d([ids], [1, ids.length], 'int32'));
        return tf.argMax(tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]), -1);
      });
      const id = (await next.data())[0];
      next.dispose();
      ids.push(id);
      tfjsTokens++;
      if (tokenizer.decode([id]).includes('\n')) break;
    }
    tfjs.push(performance.now() - started);
  }
  gpt.dispose();

  return {
    model: config.name,
    preset: config.preset,
    blockSize,
    maxTokens,
    onnx: {
      provider,
      mixture: session.mixture !== null,
      cold: stats(cold),
      typing: typingModel,
      typingEditor: typingEditor,
      decodeTokensPerSecond: Math.round(generated / (decodeMs / 1000)),
    },
    tfjsBaseline: {
      backend: backend.name,
      cold: stats(tfjs),
      decodeTokensPerSecond: Math.round(tfjsTokens / (tfjs.reduce((a, b) => a + b, 0) / 1000)),
    },
    targets: { typingP50Ms: 15, typingP95Ms: 40 },
  };
}
