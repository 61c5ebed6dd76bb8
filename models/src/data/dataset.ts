// Files → token stream on disk → batches. Owns the train/val split (by file), the token file
// format, fill-in-the-middle rewriting, the mixing in of (code, summary) examples, and the sampling
// of training and validation windows. It does not choose files (files.ts), learn the vocabulary
// (tokenizer.ts), mine doc comments (summaryPairs.ts) or touch tensors (train.ts).
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSourceText, type SourceFile } from './files';
import type { CodeTokenizer } from './tokenizer';
import { languageOf } from './sourceScanner';
import { minePairs, summaryTrainingTokens } from './summaryPairs';

export interface Batch {
  x: Int32Array; // (batchSize, blockSize) row-major: the inputs
  y: Int32Array; // (batchSize, blockSize): the targets, x shifted left by one token
  batchSize: number;
  blockSize: number;
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: every random choice here is a pure function of a seed and a few
// integers, so a resumed run or a rebuilt dataset makes exactly the same choices.

/** murmur3's finaliser: spreads every input bit over the 32-bit output. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of integers (any safe integer, negative included). */
function hashInts(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    h = mix32(h ^ (v >>> 0));
    h = mix32(h ^ Math.floor(v / 0x100000000) >>> 0);
  }
  return h;
}

/** FNV-1a over the UTF-16 code units of a string: stable across runs and platforms. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** mulberry32: a small, fast generator of uniform 32-bit integers. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A uniform integer in [0, n) from a 32-bit draw (n well below 2^32, so the bias is negligible). */
function below(draw: number, n: number): number {
  return Math.floor((draw / 0x100000000) * n);
}

// ---------------------------------------------------------------------------------------------
// Train/validation split by file: a file's tokens never appear on both sides.

export function splitFiles(files: SourceFile[], valFraction: number, seed: number): { train: SourceFile[]; val: SourceFile[] } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new Error(`valFraction must be in [0, 1), got ${valFraction}`);
  // Where a file lands depends on its path and the seed only, not on which other files exist:
  // adding a file to the workspace does not reshuffle the rest.
  const scored = files
    .map((file) => ({ file, u: hashInts(seed, hashString(file.relPath)) / 0x100000000 }))
    .sort((a, b) => a.u - b.u || (a.file.relPath < b.file.relPath ? -1 : 1));
  let valCount = scored.filter((s) => s.u < valFraction).length;
  // Both sides need a file to mean anything; a lone file is better trained on than held out.
  if (scored.length >= 2) valCount = Math.min(Math.max(valCount, 1), scored.length - 1);
  else valCount = 0;
  const byPath = (a: SourceFile, b: SourceFile) => (a.relPath < b.relPath ? -1 : a.relPath > b.relPath ? 1 : 0);
  return {
    val: scored.slice(0, valCount).map((s) => s.file).sort(byPath),
    train: scored.slice(valCount).map((s) => s.file).sort(byPath),
  };
}

// ---------------------------------------------------------------------------------------------
// Fill-in-the-middle (prefix-suffix-middle order, as in StarCoder): the model learns to write the
// middle of a document given what comes before and after it, which is what an editor asks for.

/** Ids of one FIM example: <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> middle. */
function fimIds(tokenizer: CodeTokenizer, prefix: number[], middle: number[], suffix: number[]): number[] {
  const s = tokenizer.special;
  return [s.fimPrefix].concat(prefix, [s.fimSuffix], suffix, [s.fimMiddle], middle);
}

/**
 * Two cut points, prefix | middle | suffix, drawn the way an editor asks: the rest of a line (half
 * the time), a span inside a line, or a line's rest plus up to 3 more lines. Uniform character
 * spans almost always cross many lines, unlike any completion the server requests.
 */
export function fimCuts(text: string, draw: () => number): [number, number] {
  // [start of content, end before the newline] of each line that has content.
  const lines: [number, number][] = [];
  for (let start = 0; start <= text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const content = start + (text.slice(start, end).length - text.slice(start, end).trimStart().length);
    if (content < end) lines.push([content, end]);
    start = end + 1;
  }
  // Never split a surrogate pair: the halves would not be valid text.
  const onBoundary = (i: number) => (i > 0 && i < text.length && /[\uDC00-\uDFFF]/.test(text[i]) ? i - 1 : i);
  if (lines.length === 0) {
    let a = below(draw(), text.length + 1);
    let b = below(draw(), text.length + 1);
    if (a > b) [a, b] = [b, a];
    return [onBoundary(a), onBoundary(b)];
  }
  const pick = below(draw(), lines.length);
  const [content, end] = lines[pick];
  const kind = below(draw(), 4);
  let a = content + below(draw(), end - content); // inside the line's content: the middle is never empty
  let b = end;
  if (kind === 2) {
    b = content + below(draw(), end - content + 1);
    if (a > b) [a, b] = [b, a];
  } else if (kind === 3) {
    b = lines[Math.min(lines.length - 1, pick + 1 + below(draw(), 3))][1];
  }
  return [onBoundary(a), onBoundary(b)];
}

/**
 * A document cut at line ends into chunks of about maxChars (a line longer than that is a chunk
 * of its own): each chunk is one candidate FIM example, small enough that its prefix, suffix and
 * middle share a training window, as they share the prompt at inference.
 */
export function fimChunks(text: string, maxChars: number): string[] {
  const chunks: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = start + maxChars >= text.length ? text.length : text.lastIndexOf('\n', start + maxChars - 1) + 1;
    if (end <= start) end = text.indexOf('\n', start + maxChars) + 1 || text.length;
    chunks.push(text.slice(start, end));
    start = end;
  }
  return chunks;
}

/**
 * Chars per chunk for a model's context: code runs 2-4 chars per token, so 2 * blockSize chars
 * mostly fit one window with the 4 sentinel tokens; the prompt at inference also keeps its
 * prefix and suffix to about one window.
 */
const FIM_CHUNK_CHARS_PER_TOKEN = 2;

// ---------------------------------------------------------------------------------------------
// The token file: a 16-byte header (magic "WLMT", format version, bytes per token, vocabulary
// size; little-endian uint32s) followed by the tokens, uint16 when every id fits, else uint32.

const TOKEN_FILE_MAGIC = 0x544d4c57; // "WLMT" read as a little-endian uint32
const TOKEN_FILE_VERSION = 1;
const HEADER_BYTES = 16;

function assertLittleEndian(): void {
  if (os.endianness() !== 'LE') throw new Error('token files are little-endian; this machine is big-endian');
}

/** Named like DOM aborts (and generate.ts's) so callers can tell a cancel from a failure. */
function cancelled(): Error {
  const err = new Error('tokenizing cancelled');
  err.name = 'AbortError';
  return err;
}

export interface TokenizeOptions {
  fimRate?: number; // share of chunks (about 2 * blockSize chars; whole documents without a blockSize) rewritten as FIM examples; default 0
  summaryRate?: number; // share of the documented definitions mined from each file that are added as summary examples; default 0
  blockSize?: number; // the model's context: a summary example is laid out to fit one window (needed when summaryRate > 0)
  seed?: number; // which documents, and where they are cut; default 0
  signal?: AbortSignal;
  onProgress?(progress: { files: number; totalFiles: number; tokens: number }): void;
}

/** How much text is handed to the native encoder at once: big enough to use its threads. */
const ENCODE_BATCH_CHARS = 2 << 20;

export interface TokenizeResult {
  tokens: number;
  files: number;
  summaries?: { mined: number; mixed: number; tokens: number }; // with summaryRate > 0: (code, summary) pairs found in the files, added, and their tokens
}

/**
 * Tokenizes files one batch at a time into `outFile`, each document preceded by <|endoftext|>
 * (so every document, the first included, starts the way a completion at the top of a file
 * does). Memory holds one batch, whatever the size of the workspace. The file appears atomically
 * when done; a cancelled run leaves no file behind. Files that turn out unreadable are left out.
 *
 * With summaryRate > 0, the documented definitions of each file are mined (summaryPairs.ts) and a
 * deterministic share of them become documents of their own, just before the file:
 * `<|endoftext|> <|code|> code <|summary|> summary`, ended by the next document's <|endoftext|>,
 * at most blockSize + 1 tokens so that one window can hold a whole example. With fimRate > 0 a
 * share of each file's chunks become FIM examples in its place, each between two <|endoftext|>:
 * `<|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|> middle`, the prompt's layout.
 */
export async function tokenizeFiles(
  files: SourceFile[],
  tokenizer: CodeTokenizer,
  outFile: string,
  opts: TokenizeOptions = {},
): Promise<TokenizeResult> {
  assertLittleEndian();
  const mix = checkMixOptions(opts);
  const summaries = mix.summaryRate > 0 ? { mined: 0, mixed: 0, tokens: 0 } : undefined;
  const out = await createTokenFile(outFile, tokenizer.vocabSize);
  let done = 0;
  try {
    let pending: DocumentLayout[] = [];
    let pendingChars = 0;
    const flush = async () => {
      if (pending.length === 0) return;
      await out.append(await encodeDocuments(pending, tokenizer));
      pending = [];
      pendingChars = 0;
      opts.onProgress?.({ files: done, totalFiles: files.length, tokens: out.tokens });
    };
    for (const file of files) {
      if (opts.signal?.aborted) throw cancelled();
      const text = await readSourceText(file);
      if (text === null) continue;
      pending.push({ segments: fimSegments(file.relPath, text, mix), summaryIds: summaries ? summaryExamples(file.relPath, text, tokenizer, mix, summaries) : [] });
      done++;
      pendingChars += text.length;
      if (pendingChars >= ENCODE_BATCH_CHARS) await flush();
    }
    await flush();
    if (opts.signal?.aborted) throw cancelled();
    await out.commit();
  } finally {
    await out.close();
  }
  return summaries ? { tokens: out.tokens, files: done, summaries } : { tokens: out.tokens, files: done };
}

/** The options that decide what is mixed in, with their defaults, checked. */
interface MixOptions {
  fimRate: number;
  summaryRate: number;
  blockSize?: number;
  seed: number;
}

function checkMixOptions(opts: TokenizeOptions): MixOptions {
  const fimRate = opts.fimRate ?? 0;
  const summaryRate = opts.summaryRate ?? 0;
  if (!(fimRate >= 0 && fimRate <= 1)) throw new Error(`fimRate must be in [0, 1], got ${fimRate}`);
  if (!(summaryRate >= 0 && summaryRate <= 1)) throw new Error(`summaryRate must be in [0, 1], got ${summaryRate}`);
  if (summaryRate > 0 && !(Number.isInteger(opts.blockSize) && opts.blockSize! >= 8)) {
    throw new Error(`tokenizeFiles: summaryRate ${summaryRate} needs the model's blockSize (an integer >= 8), got ${opts.blockSize}`);
  }
  return { fimRate, summaryRate, blockSize: opts.blockSize, seed: opts.seed ?? 0 };
}

/** A token file being written: into a temporary sibling, renamed into place only once committed. */
interface TokenFileWriter {
  readonly tokens: number; // appended so far
  append(ids: number[]): Promise<void>;
  commit(): Promise<void>; // everything is appended: close() renames the file into place
  close(): Promise<void>; // without a commit (an error, a cancel), the temporary file is removed
}

async function createTokenFile(outFile: string, vocabSize: number): Promise<TokenFileWriter> {
  const wide = vocabSize > 0x10000; // ids up to 65535 fit uint16
  const dir = path.dirname(path.resolve(outFile));
  await fs.mkdir(dir, { recursive: true });
  const tmpFile = path.join(dir, `.${path.basename(outFile)}.${process.pid}.${Date.now()}.tmp`);
  const handle = await fs.open(tmpFile, 'w');
  let tokens = 0;
  let committed = false;
  const writer: TokenFileWriter = {
    get tokens() {
      return tokens;
    },
    async append(ids) {
      const array = wide ? Uint32Array.from(ids) : Uint16Array.from(ids);
      await handle.write(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      tokens += ids.length;
    },
    async commit() {
      await handle.sync();
      committed = true;
    },
    async close() {
      await handle.close();
      if (committed) await fs.rename(tmpFile, outFile);
      else await fs.rm(tmpFile, { force: true });
    },
  };
  try {
    const header = new Uint32Array([TOKEN_FILE_MAGIC, TOKEN_FILE_VERSION, wide ? 4 : 2, vocabSize]);
    await handle.write(new Uint8Array(header.buffer));
  } catch (err) {
    await writer.close();
    throw err;
  }
  return writer;
}

/**
 * A document before encoding: segments, each one text (plain) or three (prefix, middle, suffix)
 * for FIM; the summary examples mined from it are already ids.
 */
interface DocumentLayout {
  segments: string[][];
  summaryIds: number[][];
}

/** The document cut into chunks, a seeded share of them rewritten as FIM examples. */
function fimSegments(relPath: string, text: string, mix: MixOptions): string[][] {
  const draw = generator(hashInts(mix.seed, hashString(relPath), 0x46494d)); // "FIM"
  // Without a blockSize the whole document is one chunk.
  const chunks = mix.fimRate > 0 ? fimChunks(text, mix.blockSize ? mix.blockSize * FIM_CHUNK_CHARS_PER_TOKEN : text.length || 1) : [text];
  const segments: string[][] = [];
  let plain = '';
  for (const chunk of chunks) {
    if (mix.fimRate > 0 && draw() / 0x100000000 < mix.fimRate) {
      if (plain) segments.push([plain]);
      plain = '';
      const [a, b] = fimCuts(chunk, draw);
      segments.push([chunk.slice(0, a), chunk.slice(a, b), chunk.slice(b)]);
    } else plain += chunk; // neighbouring plain chunks are one text: tokenized as without FIM
  }
  if (plain || segments.length === 0) segments.push([plain]);
  return segments;
}

/** The chosen summary examples of one file, as ids without their leading <|endoftext|>; counted into `summaries`. */
function summaryExamples(relPath: string, text: string, tokenizer: CodeTokenizer, mix: MixOptions, summaries: { mined: number; mixed: number; tokens: number }): number[][] {
  const pairs = minePairs(text, languageOf(relPath) ?? '', relPath);
  summaries.mined += pairs.length;
  const examples: number[][] = [];
  pairs.forEach((pair, index) => {
    // Chosen by path and position: the same pairs whatever else the workspace holds.
    if (hashInts(mix.seed, hashString(relPath), 0x53554d, index) / 0x100000000 >= mix.summaryRate) return; // "SUM"
    // The layout's own closing <|endoftext|> is dropped: the next document's opens it.
    const example = summaryTrainingTokens(pair, tokenizer, mix.blockSize!).slice(0, -1);
    examples.push(example);
    summaries.mixed++;
    summaries.tokens += example.length + 1;
  });
  return examples;
}

/** The ids of a batch of documents, in one call of the native encoder: each document's summary examples, then the document. */
async function encodeDocuments(docs: DocumentLayout[], tokenizer: CodeTokenizer): Promise<number[]> {
  const encoded = await tokenizer.encodeBatch(docs.flatMap((d) => d.segments.flat()));
  // Appended in a loop: spreading a 300k-token document into push() overflows the stack.
  const ids: number[] = [];
  const append = (more: number[]) => {
    for (const id of more) ids.push(id);
  };
  let next = 0;
  for (const doc of docs) {
    for (const example of doc.summaryIds) {
      ids.push(tokenizer.special.endOfText);
      append(example);
    }
    ids.push(tokenizer.special.endOfText);
    doc.segments.forEach((segment, i) => {
      if (segment.length === 1) append(encoded[next++]);
      else {
        // Inside a document, a FIM example starts after an <|endoftext|> as the prompt does, and
        // its middle ends with one, as a completion should: plain text right after the middle
        // would teach the model to run on past it with the text that follows the suffix.
        if (i > 0 && doc.segments[i - 1].length === 1) ids.push(tokenizer.special.endOfText); // after a FIM example, its own is there
        const [prefix, middle, suffix] = [encoded[next++], encoded[next++], encoded[next++]];
        append(fimIds(tokenizer, prefix, middle, suffix));
        if (i < doc.segments.length - 1) ids.push(tokenizer.special.endOfText);
      }
    });
  }
  return ids;
}

export interface TokenStream {
  readonly length: number;
  read(start: number, count: number): Int32Array;
}

/** Opens a token file written by tokenizeFiles. An empty stream opens; samplers refuse it. */
export function openTokenStream(file: string): TokenStream {
  assertLittleEndian();
  let buffer: Buffer;
  try {
    buffer = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read token file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); hint: tokenize the files first`);
  }
  if (buffer.length < HEADER_BYTES) throw new Error(`corrupt token file ${file}: ${buffer.length} bytes, shorter than its ${HEADER_BYTES}-byte header`);
  const [magic, version, bytesPerToken] = [buffer.readUInt32LE(0), buffer.readUInt32LE(4), buffer.readUInt32LE(8)];
  if (magic !== TOKEN_FILE_MAGIC) throw new Error(`corrupt token file ${file}: bad magic 0x${magic.toString(16)}; hint: delete it to rebuild`);
  if (version !== TOKEN_FILE_VERSION) throw new Error(`token file ${file} has format version ${version}; this build reads version ${TOKEN_FILE_VERSION}`);
  if ((bytesPerToken !== 2 && bytesPerToken !== 4) || (buffer.length - HEADER_BYTES) % bytesPerToken !== 0) {
    throw new Error(`corrupt token file ${file}: ${buffer.length - HEADER_BYTES} bytes of tokens at ${bytesPerToken} bytes each`);
  }
  // Copy out of Node's buffer so the typed array is aligned.
  const body = buffer.buffer.slice(buffer.byteOffset + HEADER_BYTES, buffer.byteOffset + buffer.length);
  const tokens = bytesPerToken === 2 ? new Uint16Array(body) : new Uint32Array(body);
  return {
    length: tokens.length,
    read(start: number, count: number): Int32Array {
      if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > tokens.length) {
        throw new Error(`token read [${start}, ${start + count}) is outside the stream of ${tokens.length} tokens in ${file}`);
      }
      return Int32Array.from(tokens.subarray(start, start + count));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Batches: windows of blockSize + 1 tokens; x is the first blockSize, y the last blockSize.

export class BatchSampler {
  private readonly starts: number; // how many windows fit: start offsets 0 .. starts-1

  constructor(
    private readonly stream: TokenStream,
    readonly blockSize: number,
    private readonly seed: number,
  ) {
    if (!Number.isInteger(blockSize) || blockSize <= 0) throw new Error(`blockSize must be a positive integer, got ${blockSize}`);
    if (stream.length === 0) throw new Error('empty token stream: no text to learn from; hint: check that the folder has source files that are not skipped');
    if (stream.length < blockSize + 1) {
      throw new Error(`token stream has ${stream.length} tokens, fewer than one window of blockSize + 1 = ${blockSize + 1}; hint: add files or use a smaller blockSize`);
    }
    this.starts = stream.length - blockSize;
  }

  /** Random windows, a pure function of (seed, step, micro): a resumed run sees identical data. */
  batch(step: number, micro: number, batchSize: number): Batch {
    for (const [name, value] of [['step', step], ['micro', micro]] as const) {
      if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got ${value}`);
    }
    const draw = generator(hashInts(this.seed, step, micro));
    const starts = Array.from({ length: this.checkBatchSize(batchSize) }, () => below(draw(), this.starts));
    return this.windows(starts);
  }

  /** `count` validation batches of evenly spaced windows over the whole stream, always the same. */
  fixedBatches(count: number, batchSize: number): Batch[] {
    if (!Number.isInteger(count) || count <= 0) throw new Error(`count must be a positive integer, got ${count}`);
    this.checkBatchSize(batchSize);
    const total = count * batchSize;
    const last = this.starts - 1;
    const starts = Array.from({ length: total }, (_, i) => (total === 1 ? 0 : Math.round((i * last) / (total - 1))));
    return Array.from({ length: count }, (_, b) => this.windows(starts.slice(b * batchSize, (b + 1) * batchSize)));
  }

  private checkBatchSize(batchSize: number): number {
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
    return batchSize;
  }

  private windows(starts: number[]): Batch {
    const T = this.blockSize;
    const x = new Int32Array(starts.length * T);
    const y = new Int32Array(starts.length * T);
    starts.forEach((start, row) => {
      const window = this.stream.read(start, T + 1);
      x.set(window.subarray(0, T), row * T);
      y.set(window.subarray(1, T + 1), row * T);
    });
    return { x, y, batchSize: starts.length, blockSize: T };
  }
}
