// Decoding for completions: prompt building (context window, FIM, token healing), the token loop
// (greedy or temperature/top-p), stop rules and post-processing. It knows nothing of onnxruntime:
// the model is a "next-token logits" function, so every rule here is testable with a fake model.
// session.ts supplies the real function (with its KV cache); the language server supplies context.

/** The part of CodeTokenizer (tokenizer.ts) that decoding needs. */
export interface DecodingTokenizer {
  readonly vocabSize: number;
  readonly special: { endOfText: number; fimPrefix: number; fimMiddle: number; fimSuffix: number };
  encode(text: string): number[];
  tokenBytes(id: number): Uint8Array;
}

/** Logits (vocabSize) of the token after `tokens`. The caller may cache by prefix (session.ts does). */
export type NextTokenLogits = (tokens: readonly number[]) => Promise<Float32Array> | Float32Array;

export type CompletionMode = 'line' | 'block';

export interface PromptOptions {
  blockSize: number; // the model's context; prompt + generated tokens must fit
  maxTokens: number; // generation budget, reserved out of the context
  fim: boolean; // the model was trained with FIM examples: use the suffix when there is one
  heal?: boolean; // token healing at the cursor (default true)
}

export interface Prompt {
  ids: number[]; // what the model is fed
  healBytes: Uint8Array; // text removed from the end of the prefix; the output must start with it
  fim: boolean; // whether the FIM layout was used
}

// How much of a long document is tokenized at all: a generous multiple of the token budget.
const CHARS_PER_TOKEN_BOUND = 8;
// Long prefixes are cut at multiples of these, so the prompt's first tokens (and the KV cache
// built on them) stay the same while the user types; otherwise every keystroke would shift them.
const CHAR_CUT_STEP = 512;
const TOKEN_WINDOW_STEPS = 8; // the token window's start moves in steps of blockSize / this
const MAX_HEAL_TOKENS = 4;

// The pre-token at the end of the prefix, by GPT-2's regex (the tokenizer's pre-tokenizer): BPE
// tokens never cross its start, so the tokens inside it are the ones the cursor may have cut.
const LAST_PRETOKEN = /(?: ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+)$/u;

const utf8 = new TextEncoder();

/** The prefix's last `maxChars` characters or a little more, starting at a line start when one is near. */
function stableTail(text: string, maxChars: number): { text: string; cut: boolean } {
  if (text.length <= maxChars) return { text, cut: false };
  const start = Math.floor((text.length - maxChars) / CHAR_CUT_STEP) * CHAR_CUT_STEP;
  const lineStart = text.indexOf('\n', start);
  const from = lineStart >= 0 && lineStart - start < CHAR_CUT_STEP ? lineStart + 1 : start;
  return { text: text.slice(from), cut: true };
}

/** The suffix's first `maxChars` characters, ending at a line end when one is near. */
function suffixHead(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const lineEnd = text.lastIndexOf('\n', maxChars);
  return text.slice(0, lineEnd > maxChars / 2 ? lineEnd : maxChars);
}

/** Keeps at most `budget` tokens from the end, dropping from the start in steps (see above). */
function windowFromEnd(ids: number[], budget: number, step: number): number[] {
  if (ids.length <= budget) return ids;
  const drop = Math.ceil((ids.length - budget) / step) * step;
  return ids.slice(drop);
}

/** Removes the tokens of the prefix's last pre-token (at most MAX_HEAL_TOKENS, at least one). */
function healTail(tok: DecodingTokenizer, ids: number[], prefix: string): { ids: number[]; healBytes: Uint8Array } {
  const tailBytes = utf8.encode(LAST_PRETOKEN.exec(prefix)?.[0] ?? '').length;
  let removed = 0;
  let cut = ids.length;
  while (cut > 0 && ids.length - cut < MAX_HEAL_TOKENS) {
    const n = tok.tokenBytes(ids[cut - 1]).length;
    if (n === 0 || (cut < ids.length && removed + n > tailBytes)) break;
    removed += n;
    cut--;
  }
  const healBytes = concatBytes(ids.slice(cut).map((id) => tok.tokenBytes(id)));
  return { ids: ids.slice(0, cut), healBytes };
}

/**
 * The tokens of a text that ends in whitespace as training saw them with code right after it,
 * and the bytes left over for healing. GPT-2's pre-tokenizer cuts a run of whitespace before its
 * last character, which starts the next word: "\n    return" is "\n   " + " return". Healing the
 * whole run instead let the first pick be any split of it (deep indentation takes several
 * tokens), after which a model sees whitespace tokens it never saw before code.
 */
function encodeBeforeCode(tok: DecodingTokenizer, text: string): { ids: number[]; rest: Uint8Array } {
  const bytes = utf8.encode(text);
  const ids = tok.encode(text + 'x');
  let covered = 0;
  let k = 0;
  while (k < ids.length && covered + tok.tokenBytes(ids[k]).length <= bytes.length) covered += tok.tokenBytes(ids[k++]).length;
  return { ids: ids.slice(0, k), rest: bytes.subarray(covered) };
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * The prompt for a cursor between `prefix` and `suffix`. Plain: the end of the prefix (after
 * <|endoftext|> when the whole file fits, as documents start in training). FIM, when the model
 * knows it and the suffix has text: <|endoftext|><|fim_prefix|>prefix<|fim_suffix|>suffix<|fim_middle|>,
 * the layout of dataset.ts's FIM examples (prefix-suffix-middle, the middle ended by <|endoftext|>).
 */
export function buildPrompt(tok: DecodingTokenizer, prefix: string, suffix: string, opts: PromptOptions): Prompt {
  const budget = opts.blockSize - opts.maxTokens;
  if (!(opts.maxTokens >= 1) || budget < 4) {
    throw new Error(`completion budget of ${opts.maxTokens} tokens leaves ${budget} of the ${opts.blockSize}-token context for the prompt; ask for fewer tokens`);
  }
  const step = Math.max(1, Math.floor(opts.blockSize / TOKEN_WINDOW_STEPS));
  // FIM needs 4 special tokens and room for both sides; tiny budgets complete the prefix only.
  const useFim = opts.fim && suffix.trim().length > 0 && budget >= 16;
  const heal = opts.heal ?? true;

  let suffixIds: number[] = [];
  let prefixBudget = budget;
  if (useFim) {
    const suffixBudget = Math.floor(budget / 4);
    suffixIds = tok.encode(suffixHead(suffix, suffixBudget * CHARS_PER_TOKEN_BOUND)).slice(0, suffixBudget);
    prefixBudget = budget - suffixIds.length - 4;
  }
  const tail = stableTail(prefix, prefixBudget * CHARS_PER_TOKEN_BOUND);
  const beforeCode = heal && /\s$/.test(tail.text) ? encodeBeforeCode(tok, tail.text) : null;
  let prefixIds = beforeCode ? beforeCode.ids : tok.encode(tail.text);
  // The whole file fits (with room for the <|endoftext|> that starts a document): no window.
  const wholeFile = !useFim && !tail.cut && prefixIds.length < prefixBudget;
  prefixIds = windowFromEnd(prefixIds, prefixBudget, step);

  let healBytes: Uint8Array = new Uint8Array(0);
  if (beforeCode && beforeCode.rest.length > 0) healBytes = beforeCode.rest;
  else if (heal && prefixIds.length > 0) ({ ids: prefixIds, healBytes } = healTail(tok, prefixIds, prefix));

  if (useFim) {
    // dataset.ts writes every example, FIM ones too, after an <|endoftext|>.
    const s = tok.special;
    return { ids: [s.endOfText, s.fimPrefix, ...prefixIds, s.fimSuffix, ...suffixIds, s.fimMiddle], healBytes, fim: true };
  }
  // Never feed an empty prompt: the start of a document is what the model saw after <|endoftext|>.
  const ids = wholeFile || prefixIds.length === 0 ? [tok.special.endOfText, ...prefixIds] : prefixIds;
  return { ids, healBytes, fim: false };
}

// ---------------------------------------------------------------------------------------------
// Stop rules, on the text generated after the cursor.

export type StopReason = 'endOfLine' | 'blockEnd' | 'blankLine' | 'budget' | 'endOfText' | 'context';

export interface StopContext {
  mode: CompletionMode;
  linePrefix: string; // the cursor's line up to the cursor: its indentation is the block's level
  suffix: string; // the text after the cursor
}

const OPENERS = '([{';
const CLOSERS = ')]}';

function indentWidth(line: string): number {
  let width = 0;
  for (const ch of line) {
    if (ch === ' ') width++;
    else if (ch === '\t') width += 4;
    else break;
  }
  return width;
}

/**
 * Where the completion must end, or null to keep going. Line mode: at the end of the line.
 * Block mode: before a blank line, before a line indented below the cursor's line. Both: at a
 * bracket that closes one opened before the cursor (left out when the suffix already has it) —
 * in line mode only when the line goes on after the cursor: at the end of a line, `{ a }` of
 * `import { a } from './a';` closes a bracket of the prefix and the line still goes on.
 */
export function findStop(text: string, ctx: StopContext): { end: number; reason: StopReason } | null {
  let best: { end: number; reason: StopReason } | null = null;
  const consider = (end: number, reason: StopReason): void => {
    if (!best || end < best.end) best = { end, reason };
  };

  if (ctx.mode === 'line') {
    const newline = text.indexOf('\n');
    if (newline >= 0) consider(newline, 'endOfLine');
  } else {
    const startIndent = indentWidth(ctx.linePrefix);
    let lineStart = text.indexOf('\n') + 1;
    while (lineStart > 0) {
      const next = text.indexOf('\n', lineStart);
      const line = next >= 0 ? text.slice(lineStart, next) : text.slice(lineStart);
      const complete = next >= 0;
      if (line.trim().length === 0) {
        if (complete) {
          consider(lineStart - 1, 'blankLine');
          break;
        }
      } else if (indentWidth(line) < startIndent) {
        consider(lineStart - 1, 'blockEnd');
        break;
      }
      lineStart = next + 1;
    }
  }

  // Brackets, skipping string literals opened inside the completion.
  const restOfLine = ctx.suffix.split('\n', 1)[0];
  if (ctx.mode === 'line' && restOfLine.trim() === '') return best;
  const after = ctx.mode === 'line' ? restOfLine.trimStart() : ctx.suffix.trimStart();
  let depth = 0;
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote || (ch === '\n' && quote !== '`')) quote = '';
      continue;
    }
    if (ch === '"' || ch === "'" || ch === '`') quote = ch;
    else if (OPENERS.includes(ch)) depth++;
    else if (CLOSERS.includes(ch) && --depth < 0) {
      const suffixHasIt = after.startsWith(ch);
      consider(suffixHasIt ? text.slice(0, i).trimEnd().length : i + 1, 'blockEnd');
      break;
    }
  }
  return best;
}

/**
 * Final clean-up: no trailing whitespace; nothing when it is blank or only repeats what follows.
 * A line completion is compared with the rest of its line, or, at the end of a line, with the
 * whole next line: that a completion starts like the next line (`import {`, ` * @param`) is no
 * reason to hide it — consecutive lines of code often do.
 */
export function finishCompletion(text: string, suffix: string, mode: CompletionMode = 'block'): string {
  const trimmed = text.replace(/\uFFFD+$/, '').trimEnd();
  if (trimmed.trim().length === 0) return '';
  if (mode === 'block') return suffix.trimStart().startsWith(trimmed.trimStart()) ? '' : trimmed;
  const [restOfLine, nextLine] = suffix.split('\n', 2);
  if (restOfLine.trim() !== '') return restOfLine.trimStart().startsWith(trimmed.trimStart()) ? '' : trimmed;
  return nextLine !== undefined && nextLine.trim() === trimmed.trim() ? '' : trimmed;
}

// ---------------------------------------------------------------------------------------------
// Sampling.

export interface SamplingOptions {
  temperature?: number; // 0 (default) = greedy
  topP?: number; // nucleus sampling mass, used when temperature > 0 (default 0.95)
  seed?: number; // makes sampling reproducible
}

/** mulberry32: small, fast, seedable; quality is ample for picking tokens. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks a token from logits where disallowed entries are -Infinity. */
export function pickToken(logits: Float32Array, temperature: number, topP: number, random: () => number): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (!(temperature > 0)) return best;
  const order: number[] = [];
  const probs = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] === -Infinity) continue;
    probs[i] = Math.exp((logits[i] - logits[best]) / temperature);
    sum += probs[i];
    order.push(i);
  }
  order.sort((a, b) => probs[b] - probs[a]);
  let kept = 0;
  let mass = 0;
  while (kept < order.length && mass < topP * sum) mass += probs[order[kept++]];
  let r = random() * mass;
  for (let k = 0; k < kept; k++) {
    r -= probs[order[k]];
    if (r <= 0) return order[k];
  }
  return order[kept - 1];
}

// ---------------------------------------------------------------------------------------------
// The loop.

export interface GenerateOptions extends SamplingOptions, StopContext {
  next: NextTokenLogits;
  tokenizer: DecodingTokenizer;
  prompt: Prompt;
  maxTokens: number;
  blockSize: number;
  signal?: AbortSignal;
}

export interface GenerateResult {
  text: string; // what to insert at the cursor
  tokens: number; // tokens generated (healed ones included)
  stopReason: StopReason;
  // Natural-log probability of each picked token among the allowed ones (softmax of the logits
  // after masking): the confidence a filter reads. Mean and minimum; 0 when nothing was generated.
  meanLogProb: number;
  minLogProb: number;
}

/** log softmax(logits)[id], over the entries that are not -Infinity. */
export function logProbOf(logits: Float32Array, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[id] - max - Math.log(sum);
}

function startsWith(bytes: Uint8Array, head: Uint8Array): boolean {
  if (head.length > bytes.length) return false;
  for (let i = 0; i < head.length; i++) if (bytes[i] !== head[i]) return false;
  return true;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const err = new Error('completion cancelled');
    err.name = 'AbortError';
    throw err;
  }
}

const silentCache = new WeakMap<DecodingTokenizer, number[]>();

/** Tokens with no text (specials, reserved fillers): never emitted; <|endoftext|> ends instead. */
function silentTokens(tok: DecodingTokenizer): number[] {
  let silent = silentCache.get(tok);
  if (!silent) {
    silent = [];
    for (let id = 0; id < tok.vocabSize; id++) if (id !== tok.special.endOfText && tok.tokenBytes(id).length === 0) silent.push(id);
    silentCache.set(tok, silent);
  }
  return silent;
}

/**
 * Generates until a stop rule fires. While healed text is pending, only tokens that start with
 * it, or are a prefix of it, may be picked; the healed text itself is not part of the result.
 */
export async function generate(opts: GenerateOptions): Promise<GenerateResult> {
  const tok = opts.tokenizer;
  const random = seededRandom(opts.seed ?? 0x5eed);
  const temperature = opts.temperature ?? 0;
  const topP = opts.topP ?? 0.95;
  const textDecoder = new TextDecoder('utf-8');
  const healLength = opts.prompt.healBytes.length;
  let pending = opts.prompt.healBytes;
  const tokens = [...opts.prompt.ids];
  const chunks: Uint8Array[] = [];
  let generated = 0;

  const silent = silentTokens(tok);

  let logProbSum = 0;
  let logProbMin = Infinity;
  let picked = 0;
  const confidence = () => ({ meanLogProb: picked ? logProbSum / picked : 0, minLogProb: picked ? logProbMin : 0 });

  const visibleText = (): string => textDecoder.decode(concatBytes(chunks).subarray(healLength));
  let reason: StopReason = 'budget';
  let text = '';
  while (generated < opts.maxTokens) {
    if (tokens.length >= opts.blockSize) {
      reason = 'context';
      break;
    }
    throwIfAborted(opts.signal);
    const logits = Float32Array.from(await opts.next(tokens));
    throwIfAborted(opts.signal);
    for (const id of silent) logits[id] = -Infinity;
    if (pending.length > 0) {
      logits[tok.special.endOfText] = -Infinity;
      for (let id = 0; id < logits.length; id++) {
        const b = tok.tokenBytes(id);
        if (b.length === 0 || !(startsWith(b, pending) || startsWith(pending, b))) logits[id] = -Infinity;
      }
    }
    const id = pickToken(logits, temperature, topP, random);
    const logProb = logProbOf(logits, id);
    logProbSum += logProb;
    logProbMin = Math.min(logProbMin, logProb);
    picked++;
    if (id === tok.special.endOfText) {
      reason = 'endOfText';
      break;
    }
    const bytes = tok.tokenBytes(id);
    tokens.push(id);
    chunks.push(bytes);
    generated++;
    pending = pending.subarray(Math.min(bytes.length, pending.length));
    if (pending.length > 0) continue;
    const stop = findStop(visibleText(), opts);
    if (stop) {
      text = visibleText().slice(0, stop.end);
      return { text: finishCompletion(text, opts.suffix, opts.mode), tokens: generated, stopReason: stop.reason, ...confidence() };
    }
  }
  text = pending.length > 0 ? '' : visibleText();
  // A block cut off by the budget ends at its last whole line rather than mid-line.
  const lastNewline = text.lastIndexOf('\n');
  if (opts.mode === 'block' && reason !== 'endOfText' && lastNewline > 0) text = text.slice(0, lastNewline);
  return { text: finishCompletion(text, opts.suffix, opts.mode), tokens: generated, stopReason: reason, ...confidence() };
}
