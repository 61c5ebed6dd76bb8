// The code tokenizer: a byte-level BPE trained on the workspace, saved as a Hugging Face
// tokenizer.json. Owns training, the file format, encode and decode. It does not read workspace
// files (files.ts) or build token streams (dataset.ts).
//
// Two engines sit behind one class. The native `tokenizers` binding (Rust) trains (in a child
// process, see trainInChildProcess) and encodes datasets fast, but its encode is asynchronous only;
// the pure-JS `@huggingface/tokenizers` encodes synchronously, which the completion path needs.
// Both read the same JSON and give the same ids (checked in test/unit/tokenizer.test.ts).
// Decoding needs neither: a token is a byte string.
import { promises as fs, createWriteStream } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import type { Tokenizer as NativeTokenizer } from 'tokenizers';
import { writeFileAtomic } from '../util/atomicFiles';
import { jsonParseProblem } from '../util/errors';

// The package is dual ESM/CommonJS, but its types are declared as ESM only, which TypeScript will
// not let a CommonJS module import statically; its CommonJS build is what `require` loads.
type JsTokenizerModule = typeof import('@huggingface/tokenizers', { with: { 'resolution-mode': 'import' } });
const { Tokenizer: JsTokenizer } = require('@huggingface/tokenizers') as JsTokenizerModule;
type JsTokenizer = InstanceType<typeof JsTokenizer>;

/** Appended after the BPE vocabulary, in this order: they are always the last ids. */
export const SPECIAL_TOKENS = [
  '<|endoftext|>',
  '<|fim_prefix|>',
  '<|fim_middle|>',
  '<|fim_suffix|>',
  '<|code|>',
  '<|summary|>',
  '<|pad|>',
] as const;

export interface SpecialIds {
  endOfText: number;
  fimPrefix: number;
  fimMiddle: number;
  fimSuffix: number;
  code: number;
  summary: number;
  pad: number;
}

/** 256 byte symbols plus the specials: the smallest vocabulary that can still encode anything. */
export const MIN_VOCAB_SIZE = 256 + SPECIAL_TOKENS.length;
/** Merges learned beyond what the vocabulary can hold are dropped; this caps training work. */
const MAX_VOCAB_SIZE = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The byte-level alphabet (GPT-2): every byte maps to one printable character, so a token is a
// string in the JSON and a byte string on the wire. Printable Latin-1 bytes map to themselves,
// the others to U+0100 onwards in byte order.

function byteToSymbolTable(): string[] {
  const table: string[] = new Array(256);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + next++);
  }
  return table;
}

const BYTE_TO_SYMBOL = byteToSymbolTable();
const SYMBOL_TO_BYTE = new Map(BYTE_TO_SYMBOL.map((symbol, byte) => [symbol, byte]));
const NEWLINE_SYMBOL = BYTE_TO_SYMBOL[0x0a]; // 'Ċ'
const CARRIAGE_RETURN_SYMBOL = BYTE_TO_SYMBOL[0x0d]; // 'č'

/** The bytes a vocabulary string stands for, or null if it is not made of byte symbols. */
function symbolsToBytes(token: string): Uint8Array | null {
  const bytes = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const byte = SYMBOL_TO_BYTE.get(token[i]);
    if (byte === undefined) return null;
    bytes[i] = byte;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// The tokenizer.json we write. Same pre-tokenizer for training and encoding: GPT-2's regex,
// no prefix space (code must round-trip exactly).

const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: null;
  pre_tokenizer: typeof BYTE_LEVEL;
  post_processor: null;
  decoder: typeof BYTE_LEVEL;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

function reservedToken(i: number): string {
  return `<|reserved_${i}|>`;
}

/**
 * Lays out the vocabulary: ids 0..255 are the bytes (id = byte value), then one id per merge in
 * the order learned, then reserved fillers when the corpus offered fewer merges than asked, then
 * the specials. Every id below vocabSize is used exactly once, so the model's vocabSize is exact.
 */
function buildTokenizerJson(merges: [string, string][], vocabSize: number): TokenizerJson {
  const vocab: Record<string, number> = Object.create(null);
  for (let b = 0; b < 256; b++) vocab[BYTE_TO_SYMBOL[b]] = b;
  let nextId = 256;
  const kept: [string, string][] = [];
  const mergeBudget = vocabSize - MIN_VOCAB_SIZE;
  for (const [left, right] of merges) {
    if (kept.length >= mergeBudget) break;
    const merged = left + right;
    // A merge is only usable if both halves already exist; a merged string seen twice would
    // give one string two ids. Neither happens with the trainer's output; skip rather than trust.
    if (!(left in vocab) || !(right in vocab) || merged in vocab) continue;
    vocab[merged] = nextId++;
    kept.push([left, right]);
  }
  for (let i = 0; nextId < vocabSize - SPECIAL_TOKENS.length; i++) vocab[reservedToken(i)] = nextId++;
  const added_tokens = SPECIAL_TOKENS.map((content) => {
    vocab[content] = nextId;
    return { id: nextId++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens,
    normalizer: null,
    pre_tokenizer: { ...BYTE_LEVEL },
    post_processor: null,
    decoder: { ...BYTE_LEVEL },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: kept,
    },
  };
}

/**
 * The JSON both encoders are built from: the same model, but with no added tokens, so that text
 * such as "<|endoftext|>" in a source file is encoded as the characters it is made of and never
 * becomes a special token. Specials enter a token stream only as ids, put there by dataset.ts.
 */
function encoderJson(json: TokenizerJson): TokenizerJson {
  return { ...json, added_tokens: [] };
}

// ---------------------------------------------------------------------------------------------
// Training corpus. The native trainer reads its files line by line, so "\n" followed by the next
// line's indentation — the most frequent token in code — would never be seen whole. We write each
// document on one line with its newlines turned into "\r" (same regex class, no line split), then
// read the merges back with 'č' turned into 'Ċ'. Real "\r" is folded into "\n" first so that the
// two cannot be confused; CRLF files still encode exactly, with slightly less fitting merges.

function toTrainingLine(text: string): string {
  return text.replace(/\r\n?/g, '\n').trimEnd().replace(/\n/g, '\r');
}

function fromTrainingSymbols(token: string): string {
  return token.split(CARRIAGE_RETURN_SYMBOL).join(NEWLINE_SYMBOL);
}

function parseMerges(raw: unknown): [string, string][] {
  if (!Array.isArray(raw)) throw new Error('tokenizer training produced no merges list');
  return raw.map((m): [string, string] => {
    // tokenizers writes [left, right] pairs; older versions wrote "left right" strings.
    if (Array.isArray(m) && m.length === 2) return [String(m[0]), String(m[1])];
    if (typeof m === 'string' && m.indexOf(' ') > 0) {
      const space = m.indexOf(' ');
      return [m.slice(0, space), m.slice(space + 1)];
    }
    throw new Error(`tokenizer training produced an unreadable merge: ${JSON.stringify(m)}`);
  });
}

function loadNative(): typeof import('tokenizers') {
  try {
    // Loaded on first use: encode on the completion path never needs the native binding.
    return require('tokenizers') as typeof import('tokenizers');
  } catch (err) {
    throw new Error(`the native "tokenizers" package could not be loaded (${(err as Error).message}); hint: run npm install in the extension folder`);
  }
}

/**
 * Runs the native BPE trainer in a child process. The trainer draws progress bars on file
 * descriptor 1, which is the LSP channel when the language server trains: a stray byte there
 * breaks the protocol, and no Node API can redirect a native library's stdout in-process. The
 * child's stdout goes nowhere; it also keeps the event loop free while training.
 */
async function trainInChildProcess(corpusFile: string, trainedFile: string): Promise<void> {
  let modulePath: string;
  try {
    modulePath = require.resolve('tokenizers');
  } catch (err) {
    throw new Error(`the native "tokenizers" package is missing (${(err as Error).message}); hint: run npm install in the extension folder`);
  }
  const script = [
    `const native = require(${JSON.stringify(modulePath)});`,
    'const [corpus, out] = process.argv.slice(1);',
    'const trainer = new native.Tokenizer(native.BPE.empty());',
    'trainer.setPreTokenizer(native.byteLevelPreTokenizer(false, true));',
    'trainer.train([corpus]);',
    'trainer.save(out);',
  ].join('\n');
  // Under VS Code, execPath is Electron: ELECTRON_RUN_AS_NODE makes it the Node it stands for.
  const child = spawn(process.execPath, ['-e', script, corpusFile, trainedFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-2000);
  });
  const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
  if (code !== 0) {
    throw new Error(`tokenizer training failed (exit ${code ?? signal}): ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no message'}`);
  }
}

// Chunks for the native batch encoder end just before a "\n" that follows a visible ASCII
// character. No GPT-2 pre-token can hold both (letter, digit and punctuation runs never take a
// newline; whitespace runs start after the visible character), so encoding chunk by chunk gives
// exactly the ids of encoding the whole text. Nearly every line end qualifies, indented code too.
const CHUNK_CHARS = 2048; // measured here: 2 KB chunks encode at ~7 MB/s, 64 KB ones at ~1 MB/s

function splitAtPreTokenBoundaries(text: string, chunkChars: number): string[] {
  const chunks: string[] = [];
  let start = 0;
  while (text.length - start > chunkChars) {
    let cut = -1;
    for (let i = start + chunkChars; i < text.length; i++) {
      const previous = text.charCodeAt(i - 1);
      if (text.charCodeAt(i) === 0x0a && previous >= 0x21 && previous <= 0x7e) {
        cut = i;
        break;
      }
    }
    if (cut < 0) break;
    chunks.push(text.slice(start, cut));
    start = cut;
  }
  chunks.push(text.slice(start));
  return chunks;
}

// ---------------------------------------------------------------------------------------------

export class CodeTokenizer {
  readonly vocabSize: number;
  readonly special: SpecialIds;
  /** Ids below this are text (bytes and merges); the rest are reserved fillers and specials. */
  private readonly textTokens: number;
  private readonly bytesById: Uint8Array[];
  private readonly json: TokenizerJson;
  private readonly jsEncoder: JsTokenizer;
  private nativeEncoder: NativeTokenizer | null = null;
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  private constructor(json: TokenizerJson) {
    this.json = json;
    const vocab = json.model.vocab;
    this.vocabSize = Object.keys(vocab).length;
    this.textTokens = 256 + json.model.merges.length;
    this.bytesById = new Array(this.vocabSize);
    const empty = new Uint8Array(0);
    for (const [token, id] of Object.entries(vocab)) {
      this.bytesById[id] = id < this.textTokens ? (symbolsToBytes(token) as Uint8Array) : empty;
    }
    const firstSpecial = this.vocabSize - SPECIAL_TOKENS.length;
    this.special = {
      endOfText: firstSpecial,
      fimPrefix: firstSpecial + 1,
      fimMiddle: firstSpecial + 2,
      fimSuffix: firstSpecial + 3,
      code: firstSpecial + 4,
      summary: firstSpecial + 5,
      pad: firstSpecial + 6,
    };
    this.jsEncoder = new JsTokenizer(encoderJson(json), {});
  }

  /**
   * Learns a vocabulary of exactly `vocabSize` ids (256 bytes + merges + specials) from `texts`.
   * The texts are streamed to a temporary file for the native trainer, so memory stays flat.
   */
  static async train(texts: Iterable<string> | AsyncIterable<string>, vocabSize: number): Promise<CodeTokenizer> {
    if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE || vocabSize > MAX_VOCAB_SIZE) {
      throw new Error(`tokenizer vocabSize must be an integer in [${MIN_VOCAB_SIZE}, ${MAX_VOCAB_SIZE}] (256 bytes + ${SPECIAL_TOKENS.length} specials + merges), got ${vocabSize}`);
    }
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-bpe-'));
    try {
      const corpusFile = path.join(dir, 'corpus.txt');
      const corpus = createWriteStream(corpusFile, { encoding: 'utf8' });
      let documents = 0;
      try {
        for await (const text of texts) {
          const line = toTrainingLine(text);
          if (line.length === 0) continue;
          if (!corpus.write(line + '\n')) await once(corpus, 'drain');
          documents++;
        }
      } finally {
        corpus.end();
        await once(corpus, 'close');
      }

      let merges: [string, string][] = [];
      if (documents > 0) {
        const trainedFile = path.join(dir, 'trained.json');
        await trainInChildProcess(corpusFile, trainedFile);
        const trained = JSON.parse(await fs.readFile(trainedFile, 'utf8')) as { model?: { merges?: unknown } };
        merges = parseMerges(trained.model?.merges).map(([l, r]) => [fromTrainingSymbols(l), fromTrainingSymbols(r)]);
      }
      return new CodeTokenizer(buildTokenizerJson(merges, vocabSize));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  /** Reads a tokenizer.json written by toJSON(); anything else is rejected with the reason. */
  static fromJSON(text: string): CodeTokenizer {
    let json: TokenizerJson;
    try {
      json = JSON.parse(text) as TokenizerJson;
    } catch (err) {
      throw new Error(`tokenizer.json is not valid JSON (${jsonParseProblem(err)})`);
    }
    validateTokenizerJson(json);
    return new CodeTokenizer(json);
  }

  static async load(file: string): Promise<CodeTokenizer> {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read tokenizer ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); hint: is this a Workspace LM model folder?`);
    }
    try {
      return CodeTokenizer.fromJSON(text);
    } catch (err) {
      throw new Error(`${file}: ${(err as Error).message}`);
    }
  }

  toJSON(): string {
    return JSON.stringify(this.json);
  }

  async save(file: string): Promise<void> {
    await writeFileAtomic(file, this.toJSON());
  }

  /** Plain text to ids, synchronously (pure JS). Special-token text stays plain text. */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.jsEncoder.encode(text, { add_special_tokens: false }).ids;
  }

  /** Many texts at once on the native encoder (several MB/s); same ids as encode(). */
  async encodeBatch(texts: string[]): Promise<number[][]> {
    const encoder = this.native();
    const chunked = texts.map((t) => splitAtPreTokenBoundaries(t, CHUNK_CHARS));
    const flat = chunked.flat().filter((c) => c.length > 0);
    const encodings = flat.length ? await encoder.encodeBatch(flat, { addSpecialTokens: false }) : [];
    const results: number[][] = [];
    let next = 0;
    for (const chunks of chunked) {
      const ids: number[] = [];
      for (const chunk of chunks) {
        if (chunk.length === 0) continue;
        for (const id of encodings[next++].getIds()) ids.push(id);
      }
      results.push(ids);
    }
    return results;
  }

  /** Ids to text. Specials and reserved ids decode to ''; a cut multi-byte character to U+FFFD. */
  decode(ids: number[]): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      const bytes = this.tokenBytes(id);
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let offset = 0;
    for (const bytes of parts) {
      all.set(bytes, offset);
      offset += bytes.length;
    }
    return this.utf8.decode(all);
  }

  /** The raw bytes a token stands for (empty for specials), e.g. for token healing at the cursor. */
  tokenBytes(id: number): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new Error(`token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    }
    return this.bytesById[id];
  }

  /** Merges in the vocabulary (ids 256 .. 256+merges-1); the rest of the BPE part is reserved. */
  get mergeCount(): number {
    return this.textTokens - 256;
  }

  private native(): NativeTokenizer {
    if (!this.nativeEncoder) this.nativeEncoder = loadNative().Tokenizer.fromString(JSON.stringify(encoderJson(this.json)));
    return this.nativeEncoder;
  }
}

function validateTokenizerJson(json: TokenizerJson): void {
  const model = json?.model;
  if (!model || model.type !== 'BPE' || typeof model.vocab !== 'object' || !Array.isArray(model.merges)) {
    throw new Error('not a byte-level BPE tokenizer.json (model.type must be "BPE" with vocab and merges)');
  }
  if (json.pre_tokenizer?.type !== 'ByteLevel' || json.pre_tokenizer.add_prefix_space !== false) {
    throw new Error(`unsupported pre_tokenizer ${JSON.stringify(json.pre_tokenizer)}; expected ByteLevel without prefix space`);
  }
  const vocab = model.vocab;
  const size = Object.keys(vocab).length;
  if (size < MIN_VOCAB_SIZE) throw new Error(`vocabulary has ${size} tokens, fewer than the ${MIN_VOCAB_SIZE} minimum`);
  const seen = new Uint8Array(size);
  for (const [token, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0 || id >= size || seen[id]) {
      throw new Error(`vocabulary ids must be 0..${size - 1}, each once; "${token}" has id ${id}`);
    }
    seen[id] = 1;
  }
  for (let b = 0; b < 256; b++) {
    if (vocab[BYTE_TO_SYMBOL[b]] !== b) throw new Error(`byte ${b} must have id ${b}, found ${vocab[BYTE_TO_SYMBOL[b]]}`);
  }
  const textTokens = 256 + model.merges.length;
  if (textTokens > size - SPECIAL_TOKENS.length) {
    throw new Error(`${model.merges.length} merges do not fit a vocabulary of ${size} with ${SPECIAL_TOKENS.length} specials`);
  }
  model.merges.forEach((merge, i) => {
    const id = Array.isArray(merge) ? vocab[merge[0] + merge[1]] : undefined;
    if (id !== 256 + i) throw new Error(`merge ${i} (${JSON.stringify(merge)}) must produce id ${256 + i}, found ${id}`);
  });
  SPECIAL_TOKENS.forEach((content, i) => {
    const expected = size - SPECIAL_TOKENS.length + i;
    const added = json.added_tokens?.find((t) => t.content === content);
    if (vocab[content] !== expected || !added || added.id !== expected) {
      throw new Error(`special token ${content} must have id ${expected} (the last ${SPECIAL_TOKENS.length} ids), found ${vocab[content]}`);
    }
  });
}
