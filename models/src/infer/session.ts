// The completion engine at inference time: a model folder's model.onnx on onnxruntime-node, with
// the best execution provider that works here, a KV cache reused across calls by longest common
// prefix, and generate.ts's decoding on top. Calls are served one at a time, in order (the only
// queue in front of the model), and counted: positions computed and reused, milliseconds per
// phase. It does not decide when to complete (the language server does) and it never trains or
// exports anything but a missing or stale model.onnx.
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import type { GPTConfig } from '../model/config';
import { readModelConfig, type ModelFolderConfig } from '../model/checkpoint';
import { CodeTokenizer } from '../data/tokenizer';
import { exportOnnx, onnxNames, ONNX_FILE } from '../model/onnx';
import { buildPrompt, generate, throwIfAborted, type DecodingTokenizer, type NextTokenScores, type PrefetchNext } from './generate';
import { cursorContext, type CompletionMode, type StopReason } from './postprocess';
import { buildMixture, CACHE_ORDER, Mixture, type MixtureFile } from './mixture';
import { openTokenStream } from '../data/dataset';
import { existingTokenFile } from '../model/runCache';
import { hasVulkanLoader } from '../util/platform';

export type ProviderName = 'cuda' | 'webgpu' | 'cpu';
export const PROVIDERS_BEST_FIRST: readonly ProviderName[] = ['cuda', 'webgpu', 'cpu'];

export interface SessionOptions {
  providers?: readonly ProviderName[]; // tried in this order (default: cuda, webgpu, cpu)
  threads?: number; // intra-op threads for the CPU provider (default: 1 for a small model, else min(2, cores); defaultThreads)
  onLog?: (message: string) => void; // provider fallbacks, exports
  mixture?: boolean; // decode with the model folder's mixture (ngram.bin + mixture.json) when it has one (default true)
}

export interface CompletionRequest {
  prefix: string; // document text before the cursor, from the document's start (generate.ts's buildPrompt picks the window)
  suffix?: string; // document text after the cursor
  mode: CompletionMode; // 'line': to the end of the line; 'block': to the end of the block
  maxTokens: number; // generation budget (capped at half the context)
  signal?: AbortSignal; // checked between tokens
  temperature?: number; // 0 (default) = greedy
  topP?: number;
  seed?: number;
  fim?: boolean; // default: when the model was trained with FIM examples (train.fimRate > 0)
  heal?: boolean; // token healing at the cursor (default true)
  uri?: string; // the document being edited: its observed copy gives way to this prefix and suffix
  mixture?: boolean; // mix with the n-gram and the cache (default: when the folder has a mixture)
  draft?: boolean; // run the n-gram's and the cache's likely next tokens ahead with each position (default: with the mixture; the text is the same either way)
  minMeanLogProb?: number; // show nothing when the mean log-probability of the picked tokens is lower
  beamWidth?: number; // the beam in the middle of a line (default generate.ts's MID_LINE_BEAM_WIDTH); 1: greedy only
}

export interface CompletionResult {
  text: string; // to insert at the cursor, cleaned (postprocess.ts); '' for nothing
  tokens: number; // tokens generated
  ms: number; // wall time of this call
  stopReason: StopReason;
  promptTokens: number;
  computedTokens: number; // positions run through the model (prefillPositions + generated ones)
  prefillPositions: number; // prompt positions run through the model: not found in the KV cache
  reusedPositions: number; // prompt positions whose keys and values came from the KV cache
  draftedPositions: number; // positions run ahead with a drafted token (Mixture.draft), not in computedTokens
  draftHits: number; // of the generated tokens, those whose logits came from a drafted position
  phaseMs: CompletionPhaseMs;
  meanLogProb: number; // confidence of the picked tokens (natural log), what minMeanLogProb is checked against
  minLogProb: number;
  mixed: boolean; // decoded with the mixture
  filtered: boolean; // text was withheld for low confidence (minMeanLogProb)
}

/** Where the milliseconds of a completion went. */
export interface CompletionPhaseMs {
  window: number; // buildPrompt, tokenization left out: which text and tokens reach the model
  tokenize: number; // encoding the text (line by line, through a memo)
  prefill: number; // the prompt's positions not found in the KV cache (mixture included)
  decode: number; // one position per generated token, sampling and stop checks
  postprocess: number; // the cut and the clean-up of the text
}

/** A session's counters since it opened: what the KV cache saved and where the time went. */
export interface CompletionStats {
  requests: number; // completions that reached the model, cancelled ones included
  promptPositions: number; // prompt tokens asked for
  prefillPositions: number; // of those, run through the model
  reusedPositions: number; // of those, taken from the KV cache
  decodedTokens: number; // positions run for generated tokens
  draftedPositions: number; // positions run ahead with a drafted token
  draftHits: number; // generated tokens whose logits came from a drafted position
  batchedPositions: number; // of decodedTokens, those run in a beam step's batch
  ms: CompletionPhaseMs; // summed over the completions that finished
}

function noStats(): CompletionStats {
  return { requests: 0, promptPositions: 0, prefillPositions: 0, reusedPositions: 0, decodedTokens: 0, draftedPositions: 0, draftHits: 0, batchedPositions: 0, ms: { window: 0, tokenize: 0, prefill: 0, decode: 0, postprocess: 0 } };
}

/** Thrown for a model.onnx that onnxruntime cannot load or that is not a Workspace LM graph. */
export class InvalidModelError extends Error {}

const EMPTY = new Float32Array(0);

/** A path the KV cache holds (see CompletionSession's paths). */
interface KvPath {
  tokens: number[];
  past: Map<string, ort.Tensor>; // keys/values per layer, keyed by present_* names
  scores: (PositionScores | undefined)[]; // the scores after each token, where a run kept them
  draftedFrom: number; // tokens from this index on were drafted, not asked for
  used: number; // CompletionSession.pathClock when last used
}

/** A position's next-token logits and their softmax (the graph computes both), rows of vocab. */
interface PositionScores {
  logits: Float32Array;
  probs: Float32Array;
}

function ortBindingDir(): string {
  return path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** Why a provider cannot even be tried here, or null when it is worth trying. */
function providerUnavailable(name: ProviderName): string | null {
  if (name === 'cuda') {
    const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    if (!existsSync(path.join(ortBindingDir(), lib))) return `${lib} is not installed (onnxruntime-node fetches it at install time; needs CUDA 12)`;
  }
  if (name === 'webgpu' && !hasVulkanLoader()) return 'no Vulkan loader (libvulkan.so.1), which its WebGPU needs on Linux';
  return null;
}

// Up to this many weights read per generated token (the blocks' matrices and the output head), one
// intra-op thread decodes faster than two: a position of the `small` preset (1.3M) took 0.3 ms on
// one thread and 0.55-0.65 ms on two (2-core machine), as the pool's hand-offs cost more than the
// work they split, and worse on loaded cores; config A (4.2M, ENGINE-NOTES.md) gains from two.
const ONE_THREAD_MAX_WEIGHTS_PER_TOKEN = 2_000_000;

/** Intra-op threads for the CPU provider when the caller does not say: 1 for small models, else up to 2. */
function defaultThreads(model: GPTConfig): number {
  const weightsPerToken = 12 * model.nLayer * model.nEmbd * model.nEmbd + model.vocabSize * model.nEmbd;
  if (weightsPerToken <= ONE_THREAD_MAX_WEIGHTS_PER_TOKEN) return 1;
  return Math.max(1, Math.min(2, os.availableParallelism()));
}

function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').trim().slice(0, 300);
}

// The cache reads at most this much of a document (its end: closest to where the user works).
const CACHE_TEXT_CHARS = 32768;
const LINE_MEMO_SIZE = 32768; // lines whose ids are kept: the open files' (about 5 MB for 30K lines)
// Drafted tokens run ahead per model run at most (Mixture.draft): each costs about a tenth of a
// run of its own, and a line rarely goes further before decoding parts from the draft.
const DRAFT_TOKENS = 6;
// KV cache paths held at once: a mid-line beam's (generate.ts's MID_LINE_BEAM_WIDTH), the greedy
// line's, and a spare for the paths a beam step leaves behind.
const KV_PATHS = 4;
// warmUp()'s document: ordinary code, so the tokenizer, the mixture and decoding take their usual paths.
const WARM_UP_TEXT = 'export function sum(values) {\n  let total = 0;\n  for (const v of values) {\n    total += v;\n  }\n  return total;\n}\n\n';

/**
 * A text cut into the pieces encodeByLine memoizes: each starts at a "\n" that follows a
 * non-space (a pre-token always starts there), so encoding them one by one gives the ids of the
 * whole text.
 */
function linePieces(text: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (start < text.length) {
    let newline = text.indexOf('\n', start + 1);
    while (newline > 0 && /\s/.test(text[newline - 1])) newline = text.indexOf('\n', newline + 1);
    const end = newline < 0 ? text.length : newline;
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}

/**
 * The text tokens before the next one, for the n-gram and the cache: in a FIM prompt
 * (…<|fim_prefix|>prefix<|fim_suffix|>suffix<|fim_middle|>generated) the prefix's end and what
 * was generated, so the specials and the suffix do not break the context.
 */
function mixtureContext(tokens: readonly number[], special: { fimPrefix: number; fimSuffix: number; fimMiddle: number }): number[] {
  const middle = tokens.lastIndexOf(special.fimMiddle);
  if (middle < 0) return tokens.slice(Math.max(0, tokens.length - CACHE_ORDER));
  const prefixEnd = tokens.lastIndexOf(special.fimSuffix, middle);
  const prefixStart = tokens.lastIndexOf(special.fimPrefix, prefixEnd) + 1;
  const context = [...tokens.slice(prefixStart, prefixEnd), ...tokens.slice(middle + 1)];
  return context.slice(Math.max(0, context.length - CACHE_ORDER));
}

export class CompletionSession {
  readonly modelDir: string;
  readonly config: GPTConfig;
  readonly folderConfig: ModelFolderConfig;
  readonly tokenizer: CodeTokenizer;
  readonly provider: ProviderName;
  readonly fallbacks: string[]; // why better providers were not used
  private readonly session: ort.InferenceSession;
  private readonly headSize: number;

  // KV cache: a few paths, each the tokens it holds, their keys/values per layer (1, nHead,
  // tokens, headSize), and the scores after each of them that came out of a run (a run keeps its
  // last position's, and those of the drafted tokens it ran ahead). Asked for again, they cost
  // nothing: a keystroke's prompt is often the previous one's (the word at the cursor is healed
  // away), and its first picks too. A beam's paths take turns (generate.ts): each keeps its own.
  private paths: KvPath[] = [];
  private pathClock = 0; // when each path was last used: the least recent goes first
  private computedTokens = 0; // positions run, drafted ones left out
  private draftedPositions = 0; // positions run ahead with a drafted token
  private queue: Promise<unknown> = Promise.resolve();
  private totals: CompletionStats = noStats();
  private tokenizeMs = 0;
  /** The tokenizer as buildPrompt sees it: encode() a line at a time through the memo, timed. */
  private readonly promptTokenizer: DecodingTokenizer;
  /** The workspace n-gram and the open-documents cache, when the model folder has them. */
  readonly mixture: Mixture | null;
  // The current document's tokens before the cursor's line and after the cursor: re-encoded only
  // when that text changes, which typing within a line does not do.
  private readonly encoded = new Map<'before' | 'after', { text: string; ids: number[] }>();
  private mixedProbs: Float64Array | null = null; // the mixture's answer at each decoding step
  private readonly lineIds = new Map<string, number[]>(); // encodeByLine's memo, least recently used first
  private lineBreakTokens: Uint8Array | null = null; // breaksLine()'s, per token id
  private readonly memoized = new Set<string>(); // documents whose lines went into the memo when first observed
  private pendingMemo: Promise<void> = Promise.resolve();

  private constructor(modelDir: string, folderConfig: ModelFolderConfig, tokenizer: CodeTokenizer, session: ort.InferenceSession, provider: ProviderName, fallbacks: string[], mixture: Mixture | null) {
    this.mixture = mixture;
    this.modelDir = modelDir;
    this.folderConfig = folderConfig;
    this.config = folderConfig.model;
    this.tokenizer = tokenizer;
    this.session = session;
    this.provider = provider;
    this.fallbacks = fallbacks;
    this.headSize = this.config.nEmbd / this.config.nHead;
    this.promptTokenizer = {
      vocabSize: tokenizer.vocabSize,
      special: tokenizer.special,
      tokenBytes: (id) => tokenizer.tokenBytes(id),
      encode: (text) => {
        const started = performance.now();
        const ids = this.encodeByLine(text);
        this.tokenizeMs += performance.now() - started;
        return ids;
      },
    };
  }

  /** Loads a model folder, exporting model.onnx first when it is missing or older than the weights. */
  static async open(modelDir: string, opts: SessionOptions = {}): Promise<CompletionSession> {
    const dir = path.resolve(modelDir);
    const log = opts.onLog ?? (() => {});
    const folderConfig = await readModelConfig(dir);
    const tokenizer = await CodeTokenizer.load(path.join(dir, 'tokenizer.json'));
    if (tokenizer.vocabSize !== folderConfig.model.vocabSize) {
      throw new InvalidModelError(`tokenizer.json in ${dir} has ${tokenizer.vocabSize} tokens but config.json says vocabSize ${folderConfig.model.vocabSize}; the folder mixes two models`);
    }

    const onnxFile = path.join(dir, ONNX_FILE);
    const onnxTime = await fs.stat(onnxFile).then((s) => s.mtimeMs, () => -1);
    const weightsTime = await fs.stat(path.join(dir, 'weights.bin')).then((s) => s.mtimeMs, () => -1);
    if (onnxTime < 0 || (weightsTime > onnxTime)) {
      const exported = await exportOnnx(dir);
      log(`exported ${exported.file} (${(exported.bytes / 1e6).toFixed(1)} MB, ${exported.ms.toFixed(0)} ms): ${onnxTime < 0 ? 'it was missing' : 'the weights are newer'}`);
    }

    const mixture = opts.mixture === false ? null : await Mixture.load(dir, (id) => tokenizer.tokenBytes(id));
    if (mixture && mixture.vocabSize !== folderConfig.model.vocabSize) {
      throw new InvalidModelError(`ngram.bin in ${dir} has ${mixture.vocabSize} token ids but config.json says vocabSize ${folderConfig.model.vocabSize}; hint: delete ngram.bin and mixture.json`);
    }

    // onnxruntime logs a failed provider at error level on stderr; we report it ourselves.
    ort.env.logLevel = 'fatal';
    const threads = opts.threads ?? defaultThreads(folderConfig.model);
    const fallbacks: string[] = [];
    let loadError: unknown;
    for (const provider of opts.providers ?? PROVIDERS_BEST_FIRST) {
      const unavailable = providerUnavailable(provider);
      if (unavailable) {
        fallbacks.push(`${provider}: ${unavailable}`);
        continue;
      }
      let session: ort.InferenceSession;
      const create = () =>
        ort.InferenceSession.create(onnxFile, {
          executionProviders: [provider],
          intraOpNumThreads: threads,
          interOpNumThreads: 1, // one graph at a time: a second pool would only compete for the cores
          executionMode: 'sequential',
          graphOptimizationLevel: 'all',
          // Idle pool threads sleep instead of spinning: training may share these cores, and on
          // 2 loaded cores spinning made the p95 per-token time 5 ms instead of 1.3 ms.
          // An int8 export (--quantize) holds weight-only DequantizeLinear nodes: with QDQ handling
          // off they are folded to float at load (file 4x smaller, same speed); left on, every
          // run dequantized again (measured 2.7 vs 1.1 ms per token, config A).
          extra: { session: { intra_op: { allow_spinning: '0' }, disable_quant_qdq: '1' } },
        });
      try {
        session = await create();
        // A graph exported before the head took positions (logit_positions) and gave probabilities is exported again:
        // the weights beside it are the model's, and the new graph prefills faster.
        if (session.inputNames.includes(onnxNames.inputIds) && (!session.inputNames.includes(onnxNames.logitPositions) || !session.outputNames.includes(onnxNames.probs))) {
          await session.release();
          const exported = await exportOnnx(dir);
          log(`exported ${exported.file} (${(exported.bytes / 1e6).toFixed(1)} MB, ${exported.ms.toFixed(0)} ms): it was from an older version`);
          session = await create();
        }
      } catch (err) {
        // The CPU provider loads every valid model: when it fails, the file is at fault.
        if (provider === 'cpu') loadError = err;
        else fallbacks.push(`${provider}: ${oneLine(err)}`);
        continue;
      }
      const completion = new CompletionSession(dir, folderConfig, tokenizer, session, provider, fallbacks, mixture);
      try {
        await completion.checkGraph(onnxFile);
      } catch (err) {
        await session.release();
        // A GPU provider may load a graph it cannot run; the CPU provider is the judge of the file.
        if (provider === 'cpu') throw err;
        fallbacks.push(`${provider}: ${oneLine(err)}`);
        continue;
      }
      for (const f of fallbacks) log(`execution provider ${f}`);
      log(`completion session on ${provider} (${threads} threads)${mixture ? `, mixed with a ${mixture.ngram.order}-gram of ${mixture.ngram.trainedTokens} tokens and a cache` : ''}`);
      return completion;
    }
    if (loadError) throw new InvalidModelError(`${ONNX_FILE} in ${dir} is not a valid ONNX model: ${oneLine(loadError)}; hint: delete it and it will be exported again from the checkpoint`);
    throw new Error(`no onnxruntime execution provider could load ${onnxFile}: ${fallbacks.join('; ')}`);
  }

  /**
   * Builds the model folder's mixture (mixture.ts buildMixture): the n-gram counted on the training
   * tokens, the weights fitted on the held-out tokens with this folder's GPT. The token files are
   * the run's (its cache, model/runCache.ts, or an older folder's data/) unless `tokens` names
   * others (eval/evaluateFolder.ts modelTokenFiles rebuilds them from the sources). Run after
   * training and export; a session opened afterwards decodes with it. Seconds (8K held-out predictions).
   */
  static async buildMixture(modelDir: string, opts: { signal?: AbortSignal; threads?: number; tokens?: { train: string; val: string } } = {}): Promise<MixtureFile> {
    const dir = path.resolve(modelDir);
    const files = opts.tokens ?? { train: existingTokenFile(dir, 'train.bin'), val: existingTokenFile(dir, 'val.bin') };
    for (const [name, file] of Object.entries(files)) {
      if (!file || !existsSync(file)) throw new Error(`no ${name}.bin token file for ${dir}${file ? ` (${file} is gone)` : ''}: the mixture needs the model's training and held-out tokens; hint: rebuild them from the sources (wlm eval --editor does)`);
    }
    const session = await CompletionSession.open(dir, { mixture: false, threads: opts.threads });
    try {
      return await buildMixture({
        modelDir: dir,
        trainTokens: openTokenStream(files.train!),
        trainFile: files.train!,
        valTokens: openTokenStream(files.val!),
        endOfText: session.tokenizer.special.endOfText,
        tokenBytes: (id) => session.tokenizer.tokenBytes(id),
        blockSize: session.config.blockSize,
        modelLogits: (window) => session.logitsUncached(window),
        signal: opts.signal,
      });
    } finally {
      await session.close();
    }
  }

  /** A foreign or mismatched graph is caught here, with one position through the model. */
  private async checkGraph(onnxFile: string): Promise<void> {
    const dir = this.modelDir;
    const expectedInputs = [onnxNames.inputIds, onnxNames.logitPositions];
    for (let l = 0; l < this.config.nLayer; l++) expectedInputs.push(onnxNames.pastKey(l), onnxNames.pastValue(l));
    const missing = expectedInputs.filter((n) => !this.session.inputNames.includes(n));
    if (missing.length > 0 || !this.session.outputNames.includes(onnxNames.logits) || !this.session.outputNames.includes(onnxNames.probs)) {
      throw new InvalidModelError(`${ONNX_FILE} in ${dir} is not a valid ONNX model: not a Workspace LM graph for this config (inputs ${this.session.inputNames.slice(0, 4).join(', ')}…; missing ${missing.slice(0, 3).join(', ') || onnxNames.logits}); hint: delete it and it will be exported again`);
    }
    try {
      const { logits } = await this.nextScoresUnlocked([this.tokenizer.special.endOfText]);
      if (logits.length !== this.config.vocabSize) throw new Error(`logits have ${logits.length} entries, expected vocabSize ${this.config.vocabSize}`);
      // A whole window too: onnxruntime sizes its buffers on the first runs, and the first
      // completion would pay for it (a 104-position prefill took 30-65 ms instead of 5).
      await this.nextScoresUnlocked(new Array(this.config.blockSize).fill(this.tokenizer.special.endOfText));
    } catch (err) {
      if (err instanceof InvalidModelError) throw err;
      throw new InvalidModelError(`${ONNX_FILE} in ${dir} is not a valid ONNX model: it does not run with config.json's shapes (${oneLine(err)}); hint: delete ${onnxFile} and it will be exported again`);
    } finally {
      this.resetCache();
    }
  }

  /**
   * Completes the text at the cursor. Calls are served one at a time, in order: the only queue in
   * front of the model. A call whose signal was aborted while it waited is dropped before inference.
   */
  complete(req: CompletionRequest): Promise<CompletionResult> {
    return this.exclusive(() => this.completeUnlocked(req));
  }

  /** Next-token logits after `tokens`, reusing the KV cache for their longest common prefix. */
  nextLogits(tokens: readonly number[]): Promise<Float32Array> {
    return this.exclusive(async () => (await this.nextScoresUnlocked(tokens)).logits.slice());
  }

  /** Logits (T × vocab, row-major) for every position, recomputed from scratch (tests, evaluation). */
  logitsUncached(tokens: readonly number[]): Promise<Float32Array> {
    return this.exclusive(async () => (await this.run(tokens, new Map(), 'every')).logits);
  }

  /**
   * An open document or a recent edit for the mixture's cache (no retraining): call on open and on
   * change (debounced), with the document's full text. No-op without a mixture. It takes effect at
   * once, outside the queue: a completion in flight reads the new counts from its next token on.
   */
  observeDocument(uri: string, text: string): void {
    if (!this.mixture) return;
    if (typeof uri !== 'string' || typeof text !== 'string') throw new Error('observeDocument: uri and text must be strings');
    this.prepareDocument(uri, text);
    this.mixture.cache.observe(uri, this.encodeByLine(text.length > CACHE_TEXT_CHARS ? text.slice(text.length - CACHE_TEXT_CHARS) : text));
  }

  /**
   * A document just opened in the editor: its lines go into the memo now, on the native encoder,
   * so that its first completion does not encode it on this thread (a first request on a 100 KB
   * file took ~160 ms, mostly that).
   */
  prepareDocument(uri: string, text: string): void {
    if (typeof uri !== 'string' || typeof text !== 'string' || this.memoized.has(uri)) return;
    this.memoized.add(uri);
    this.pendingMemo = Promise.all([this.pendingMemo, this.memoizeLines(text)]).then(() => {});
  }

  /** Resolves when the lines of the documents observed so far are in the memo (tests, benchmarks). */
  linesMemoized(): Promise<void> {
    return this.pendingMemo;
  }

  /** A closed document leaves the cache. */
  forgetDocument(uri: string): void {
    this.memoized.delete(uri);
    this.mixture?.cache.forget(uri);
  }

  /**
   * Saved files for the mixture's workspace n-gram (Mixture.takeSavedFiles): each file's text now
   * (secrets scrubbed; null: deleted, or no longer read) and, the first time, the text it had
   * before (what training may have counted). Each text is a document as dataset.ts lays one out,
   * after an <|endoftext|>, tokenized on the native encoder, off this thread. Null without a mixture.
   */
  async takeSavedFiles(files: readonly { key: string; text: string | null; before?: string | null }[]): Promise<{ files: number; tokensIn: number; tokensOut: number; encodeMs: number; updateMs: number } | null> {
    const mixture = this.mixture;
    if (!mixture || files.length === 0) return null;
    // A file's text before the save counts only the first time it is taken in (the mixture then
    // holds what it put in): it is not tokenized again.
    const pending = files.map((f) => (f.before !== undefined && mixture.holdsSavedFile(f.key) ? { ...f, before: undefined } : f));
    const texts = pending.flatMap((f) => [f.text ?? '', f.before ?? '']);
    const encodeStarted = performance.now();
    let encoded: number[][];
    try {
      encoded = await this.tokenizer.encodeBatch(texts);
    } catch {
      encoded = texts.map((text) => this.tokenizer.encode(text)); // no native binding here: slower, on this thread
    }
    const started = performance.now();
    const document = (text: string | null | undefined, i: number): Int32Array | null => {
      if (typeof text !== 'string') return null;
      const ids = new Int32Array(encoded[i].length + 1); // the mixture keeps them: 4 bytes a token
      ids[0] = this.tokenizer.special.endOfText;
      ids.set(encoded[i], 1);
      return ids;
    };
    const taken = mixture.takeSavedFiles(pending.map((f, i) => ({ key: f.key, ids: document(f.text, 2 * i), before: document(f.before, 2 * i + 1) })));
    return { ...taken, encodeMs: started - encodeStarted, updateMs: performance.now() - started };
  }

  /** The counters since the session opened (a copy). */
  stats(): CompletionStats {
    return { ...this.totals, ms: { ...this.totals.ms } };
  }

  /**
   * Types a few characters of a made-up line through the whole completion path (tokenizer, the
   * mixture, drafting, decoding) and forgets them: the first completions of a fresh process paid
   * for compiling that code (a server's first three took 40-340 ms instead of 5-15). For a
   * session about to serve an editor; the counters and the KV cache start empty afterwards.
   */
  async warmUp(): Promise<void> {
    const uri = 'workspace-lm:warm-up';
    const text = WARM_UP_TEXT.repeat(4);
    for (let typed = 1; typed <= 6; typed++) {
      const line = '  const total = values.reduce((sum, v) => sum + v, 0);';
      await this.complete({ prefix: text + line.slice(0, 2 + typed), suffix: '\n}\n', mode: 'line', maxTokens: 16, uri });
    }
    this.memoized.delete(uri);
    this.resetCache();
    this.totals = noStats();
  }

  /** Forgets the KV cache (the next call is a cold run). */
  resetCache(): void {
    this.paths = [];
  }

  /** Waits for the call in flight, then frees the onnxruntime session. */
  async close(): Promise<void> {
    await this.queue.catch(() => {});
    await this.session.release();
  }

  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    const result = this.queue.then(job, job);
    this.queue = result.catch(() => {});
    return result;
  }

  private async completeUnlocked(req: CompletionRequest): Promise<CompletionResult> {
    const started = performance.now();
    throwIfAborted(req.signal);
    if (typeof req.prefix !== 'string' || (req.suffix !== undefined && typeof req.suffix !== 'string')) {
      throw new Error('completion request: prefix (and suffix, if given) must be strings');
    }
    if (!Number.isInteger(req.maxTokens) || req.maxTokens < 1) {
      throw new Error(`completion request: maxTokens must be a positive integer, got ${req.maxTokens}`);
    }
    if (req.mode !== 'line' && req.mode !== 'block') throw new Error(`completion request: mode must be 'line' or 'block', got ${String(req.mode)}`);
    const { blockSize } = this.config;
    const maxTokens = Math.min(req.maxTokens, Math.floor(blockSize / 2));
    const suffix = req.suffix ?? '';
    const fim = req.fim ?? this.folderConfig.train.fimRate > 0;
    const tokenizeBefore = this.tokenizeMs;
    const windowStarted = performance.now();
    const prompt = buildPrompt(this.promptTokenizer, req.prefix, suffix, { blockSize, maxTokens, fim, heal: req.heal });
    const windowMs = performance.now() - windowStarted - (this.tokenizeMs - tokenizeBefore);
    const lineStart = req.prefix.lastIndexOf('\n') + 1;
    const mixture = req.mixture === false ? null : this.mixture;
    // The edited document is not observed (the cache hides it); its lines go into the memo once.
    if (mixture && req.uri !== undefined && !this.memoized.has(req.uri)) this.prepareDocument(req.uri, req.prefix + suffix);
    if (mixture) {
      const encodeStarted = performance.now();
      mixture.cache.setCurrent(req.uri ?? null, this.encodeOnce('before', req.prefix.slice(Math.max(0, lineStart - CACHE_TEXT_CHARS), lineStart)), this.encodeOnce('after', suffix.slice(0, CACHE_TEXT_CHARS / 4)));
      this.tokenizeMs += performance.now() - encodeStarted;
    }
    const tokenizeMs = this.tokenizeMs - tokenizeBefore;
    const mixed = (this.mixedProbs ??= new Float64Array(this.config.vocabSize)); // overwritten at every step, so one per session
    // The cache serves lines from their start too, through the mixture's line-start weights. It
    // once steered them towards other lines of the document (rxjs, before those weights: line-start
    // edit similarity 36.7 with it, 41.2 without); now it helps there: line-start edit similarity
    // with it / without, the bench's models, 200-400 held-out lines a sample: rxjs base+0 47.1 / 44.2,
    // 48.1 / 45.5, 44.4 / 43.2; rxjs base+5 54.3 / 53.1, 56.3 / 54.9, 53.1 / 52.8; msw base+5 69.2 / 45.6.
    // The first call runs the prompt: what the KV cache does not hold is prefilled; the rest decode.
    this.totals.requests++;
    this.totals.promptPositions += prompt.ids.length;
    let prefillPositions = -1;
    let decodedTokens = 0;
    const draftedBefore = this.draftedPositions;
    const hitsBefore = this.totals.draftHits;
    const special = this.tokenizer.special;
    // Drafts, with the mixture: at most DRAFT_TOKENS, within the generation budget, in line mode
    // not past the line's end.
    const endsLine = req.mode === 'line' ? (id: number) => this.breaksLine(id) : () => false;
    const draft =
      mixture && req.draft !== false
        ? (tokens: readonly number[], room: number) => mixture.draft(mixtureContext(tokens, special), Math.min(room, DRAFT_TOKENS, maxTokens - (tokens.length - prompt.ids.length) - 1), endsLine)
        : undefined;
    const next = async (tokens: readonly number[]): Promise<NextTokenScores> => {
      const before = this.computedTokens;
      const { logits, probs } = await this.nextScoresUnlocked(tokens, draft);
      const computed = this.computedTokens - before;
      if (prefillPositions < 0) {
        prefillPositions = computed;
        this.totals.prefillPositions += computed;
        this.totals.reusedPositions += tokens.length - computed;
      } else {
        decodedTokens += computed;
        this.totals.decodedTokens += computed;
      }
      return mixture ? { probs: mixture.probs(logits, mixtureContext(tokens, special), mixed, { modelProbs: probs }) } : logits;
    };
    // A beam step's paths run as one batch; next() then finds each one's scores held.
    const prefetch: PrefetchNext = async (sequences) => {
      const computed = await this.prefetchUnlocked(sequences);
      decodedTokens += computed;
      this.totals.decodedTokens += computed;
    };
    const result = await generate({
      next,
      prefetch,
      tokenizer: this.tokenizer,
      prompt,
      maxTokens,
      blockSize,
      ...cursorContext(req.prefix, suffix, req.mode),
      signal: req.signal,
      temperature: req.temperature,
      topP: req.topP,
      seed: req.seed,
      beamWidth: req.beamWidth,
    });
    const filtered = req.minMeanLogProb !== undefined && result.text !== '' && result.meanLogProb < req.minMeanLogProb;
    const phaseMs: CompletionPhaseMs = { window: windowMs, tokenize: tokenizeMs, ...result.phaseMs };
    for (const phase of Object.keys(phaseMs) as (keyof CompletionPhaseMs)[]) this.totals.ms[phase] += phaseMs[phase];
    prefillPositions = Math.max(0, prefillPositions);
    const draftedPositions = this.draftedPositions - draftedBefore;
    this.totals.draftedPositions += draftedPositions;
    return {
      ...result,
      text: filtered ? '' : result.text,
      mixed: mixture !== null,
      filtered,
      ms: performance.now() - started,
      promptTokens: prompt.ids.length,
      computedTokens: prefillPositions + decodedTokens,
      prefillPositions,
      reusedPositions: prompt.ids.length - prefillPositions,
      draftedPositions,
      draftHits: this.totals.draftHits - hitsBefore,
      phaseMs,
    };
  }

  /** Whether a token's text holds a line break: a line completion ends with it. */
  private breaksLine(id: number): boolean {
    this.lineBreakTokens ??= Uint8Array.from({ length: this.config.vocabSize }, (_, t) => (this.tokenizer.tokenBytes(t).includes(0x0a) ? 1 : 0));
    return this.lineBreakTokens[id] === 1;
  }

  private encodeOnce(which: 'before' | 'after', text: string): number[] {
    const held = this.encoded.get(which);
    if (held && held.text === text) return held.ids;
    const ids = this.encodeByLine(text);
    this.encoded.set(which, { text, ids });
    return ids;
  }

  /**
   * encode(), a line at a time through a memo: the pure-JS encoder takes ~30 ms for 8 KB on a
   * loaded 2-core machine, and between requests only a line or two of a document changes. Pieces
   * start at each "\n" that follows a non-space, where a pre-token always starts, so the ids are
   * those of encoding the whole text.
   */
  private encodeByLine(text: string): number[] {
    const ids: number[] = [];
    for (const piece of linePieces(text)) {
      let pieceIds = this.lineIds.get(piece);
      if (pieceIds) this.lineIds.delete(piece); // refreshed as most recently used
      else pieceIds = this.tokenizer.encode(piece);
      this.rememberLine(piece, pieceIds);
      for (const id of pieceIds) ids.push(id);
    }
    return ids;
  }

  private rememberLine(piece: string, ids: number[]): void {
    if (this.lineIds.size >= LINE_MEMO_SIZE) this.lineIds.delete(this.lineIds.keys().next().value!);
    this.lineIds.set(piece, ids);
  }

  /**
   * A newly opened document's lines into encodeByLine's memo, on the native encoder, off this
   * thread: the first keystroke on a line far from the document's end then finds the text before
   * it (the cache's) and after it (the suffix) encoded. Without it that keystroke encoded up to
   * 40 KB on this thread (three.js's GLTFLoader, 80 KB deep: 40-65 ms of a 65-90 ms request).
   */
  private async memoizeLines(text: string): Promise<void> {
    const pieces = [...new Set(linePieces(text))].filter((piece) => !this.lineIds.has(piece));
    if (pieces.length === 0) return;
    let encoded: number[][];
    try {
      encoded = await this.tokenizer.encodeBatch(pieces);
    } catch {
      return; // no native binding here: lines are encoded as completions need them
    }
    pieces.forEach((piece, i) => this.lineIds.has(piece) || this.rememberLine(piece, encoded[i]));
  }

  /**
   * `draft`, when given, proposes tokens likely to follow `tokens`: what the cache does not hold
   * is run with them in one go, and the logits after each are kept, so that decoding, when it
   * picks them, finds its next logits computed.
   */
  private async nextScoresUnlocked(tokens: readonly number[], draft?: (tokens: readonly number[], room: number) => number[]): Promise<PositionScores> {
    if (tokens.length === 0) throw new Error('nextLogits needs at least one token');
    if (tokens.length > this.config.blockSize) {
      throw new Error(`${tokens.length} tokens exceed the model's context of ${this.config.blockSize}`);
    }
    const { path, common } = this.longestHeld(tokens);
    const held = path && common === tokens.length ? path.scores[common - 1] : undefined;
    if (path && held) {
      path.used = ++this.pathClock;
      if (tokens.length - 1 >= path.draftedFrom) this.totals.draftHits++;
      return held;
    }
    // At least the last token is fed, so that its logits come out.
    const keep = Math.min(common, tokens.length - 1);
    const past = path ? this.pastOf(path, keep) : new Map<string, ort.Tensor>();
    const ahead = draft ? draft(tokens, this.config.blockSize - tokens.length) : [];
    const fed = tokens.slice(keep);
    const { logits, probs, present } = await this.run(ahead.length ? [...fed, ...ahead] : fed, past, ahead.length + 1);
    this.computedTokens += fed.length;
    this.draftedPositions += ahead.length;
    const scores: (PositionScores | undefined)[] = path ? path.scores.slice(0, keep) : [];
    while (scores.length < tokens.length - 1) scores.push(undefined);
    const V = this.config.vocabSize;
    for (let j = 0; j <= ahead.length; j++) scores.push({ logits: logits.subarray(j * V, (j + 1) * V), probs: probs.subarray(j * V, (j + 1) * V) });
    this.hold({ tokens: [...tokens, ...ahead], past: present, scores, draftedFrom: ahead.length ? tokens.length : Infinity, used: ++this.pathClock }, path, keep);
    return scores[tokens.length - 1]!;
  }

  /** The held path that shares the longest start with `tokens` (the most recent on a tie), and how long that start is. */
  private longestHeld(tokens: readonly number[]): { path: KvPath | undefined; common: number } {
    let path: KvPath | undefined;
    let common = 0;
    for (const p of this.paths) {
      let n = 0;
      const limit = Math.min(tokens.length, p.tokens.length);
      while (n < limit && tokens[n] === p.tokens[n]) n++;
      if (!path || n > common || (n === common && p.used > path.used)) [path, common] = [p, n];
    }
    return { path, common };
  }

  /**
   * A path just run, on `keep` positions of `from`: one that goes on from a held path, or leaves
   * it only in its drafted tokens, takes its place; one that branches off earlier is kept beside
   * it, and the least recent path goes past KV_PATHS.
   */
  private hold(next: KvPath, from: KvPath | undefined, keep: number): void {
    const at = from ? this.paths.indexOf(from) : -1;
    if (from && at >= 0 && keep >= Math.min(from.tokens.length, from.draftedFrom)) this.paths[at] = next;
    else {
      this.paths.push(next);
      if (this.paths.length > KV_PATHS) this.paths.splice(this.paths.indexOf(this.paths.reduce((a, b) => (b.used < a.used ? b : a))), 1);
    }
  }

  /**
   * A beam step's sequences (generate.ts's PrefetchNext): those one token longer than a held path
   * run together as one batch of one position each, and each is held as a path of its own, its
   * scores ready for nextScoresUnlocked. The others are left to it. Returns the positions run.
   * A batch of 3 runs in about the time of 1.5 single positions (small preset, 100-120 positions
   * of past, one thread: 0.35 against 0.24 ms).
   */
  private async prefetchUnlocked(sequences: readonly (readonly number[])[]): Promise<number> {
    const batch: { tokens: readonly number[]; from: KvPath }[] = [];
    for (const tokens of sequences) {
      const { path, common } = this.longestHeld(tokens);
      if (!path || tokens.length < 2 || common < tokens.length - 1 || (common === tokens.length && path.scores[common - 1])) continue;
      if (batch.length > 0 && tokens.length !== batch[0].tokens.length) continue;
      batch.push({ tokens, from: path });
    }
    if (batch.length < 2) return 0;
    const { nLayer, nHead } = this.config;
    const hs = this.headSize;
    const V = this.config.vocabSize;
    const B = batch.length;
    const past = batch[0].tokens.length - 1; // positions each path brings
    const feeds: Record<string, ort.Tensor> = {
      [onnxNames.inputIds]: new ort.Tensor('int64', BigInt64Array.from(batch, (b) => BigInt(b.tokens[past])), [B, 1]),
      [onnxNames.logitPositions]: new ort.Tensor('int64', BigInt64Array.of(0n), [1]),
    };
    // (B, nHead, past, headSize): each path's first `past` positions, one after the other.
    const pasts = batch.map(({ from }) => this.pastOf(from, past));
    const rows = nHead * past * hs;
    for (let l = 0; l < nLayer; l++) {
      for (const [pastName, presentName] of [[onnxNames.pastKey(l), onnxNames.presentKey(l)], [onnxNames.pastValue(l), onnxNames.presentValue(l)]]) {
        const data = new Float32Array(B * rows);
        pasts.forEach((held, b) => data.set(held.get(presentName)!.data as Float32Array, b * rows));
        feeds[pastName] = new ort.Tensor('float32', data, [B, nHead, past, hs]);
      }
    }
    const out = await this.session.run(feeds);
    this.totals.batchedPositions += B;
    this.computedTokens += B;
    const logits = out[onnxNames.logits].data as Float32Array;
    const probs = out[onnxNames.probs].data as Float32Array;
    const presentRows = nHead * (past + 1) * hs;
    batch.forEach(({ tokens, from }, b) => {
      const present = new Map<string, ort.Tensor>();
      for (let l = 0; l < nLayer; l++) {
        for (const name of [onnxNames.presentKey(l), onnxNames.presentValue(l)]) {
          present.set(name, new ort.Tensor('float32', (out[name].data as Float32Array).subarray(b * presentRows, (b + 1) * presentRows), [1, nHead, past + 1, hs]));
        }
      }
      const scores: (PositionScores | undefined)[] = from.scores.slice(0, past);
      scores.push({ logits: logits.subarray(b * V, (b + 1) * V), probs: probs.subarray(b * V, (b + 1) * V) });
      this.hold({ tokens: [...tokens], past: present, scores, draftedFrom: Infinity, used: ++this.pathClock }, from, past);
    });
    return B;
  }

  /** A path's first `keep` positions: (1, nHead, keep, headSize) per layer; its own tensors when it holds no more. */
  private pastOf(path: KvPath, keep: number): Map<string, ort.Tensor> {
    if (keep === path.tokens.length) return path.past;
    const truncated = new Map<string, ort.Tensor>();
    if (keep === 0) return truncated;
    const { nHead } = this.config;
    const hs = this.headSize;
    const held = path.tokens.length;
    for (const [name, tensor] of path.past) {
      const src = tensor.data as Float32Array;
      const dst = new Float32Array(nHead * keep * hs);
      for (let h = 0; h < nHead; h++) dst.set(src.subarray(h * held * hs, h * held * hs + keep * hs), h * keep * hs);
      truncated.set(name, new ort.Tensor('float32', dst, [1, nHead, keep, hs]));
    }
    return truncated;
  }

  /**
   * Runs `ids` on top of `past`, keyed by present_* names (an empty map: no past, positions from 0),
   * with the logits of the last `logitsOf` positions or of every one (rows of vocab, in order).
   */
  private async run(ids: readonly number[], past: Map<string, ort.Tensor>, logitsOf: number | 'every'): Promise<PositionScores & { present: Map<string, ort.Tensor> }> {
    const { nLayer, nHead } = this.config;
    const first = logitsOf === 'every' ? 0 : ids.length - logitsOf;
    const positions = BigInt64Array.from({ length: ids.length - first }, (_, i) => BigInt(first + i));
    const feeds: Record<string, ort.Tensor> = {
      [onnxNames.inputIds]: new ort.Tensor('int64', BigInt64Array.from(ids, (id) => BigInt(id)), [1, ids.length]),
      [onnxNames.logitPositions]: new ort.Tensor('int64', positions, [positions.length]),
    };
    for (let l = 0; l < nLayer; l++) {
      for (const [pastName, presentName] of [[onnxNames.pastKey(l), onnxNames.presentKey(l)], [onnxNames.pastValue(l), onnxNames.presentValue(l)]]) {
        feeds[pastName] = past.get(presentName) ?? new ort.Tensor('float32', EMPTY, [1, nHead, 0, this.headSize]);
      }
    }
    const out = await this.session.run(feeds);
    const present = new Map<string, ort.Tensor>();
    for (let l = 0; l < nLayer; l++) {
      present.set(onnxNames.presentKey(l), out[onnxNames.presentKey(l)]);
      present.set(onnxNames.presentValue(l), out[onnxNames.presentValue(l)]);
    }
    return { logits: out[onnxNames.logits].data as Float32Array, probs: out[onnxNames.probs].data as Float32Array, present };
  }
}
