// Decoding for completions: the prompt (the one place that decides how much of the document
// reaches the model, in tokens; FIM; token healing) and the token loop (greedy or
// temperature/top-p) that ends and cleans its text with postprocess.ts's rules. It knows nothing of
// onnxruntime: the model is a "next-token logits" function, so every rule here is testable with a
// fake model. session.ts supplies the real function (with its KV cache); the language server
// supplies the document.
import { findStop, finishCompletion, linesAfterCursor, type CursorContext, type StopReason } from './postprocess';

/** The part of CodeTokenizer (tokenizer.ts) that decoding needs. */
export interface DecodingTokenizer {
  readonly vocabSize: number;
  readonly special: { endOfText: number; fimPrefix: number; fimMiddle: number; fimSuffix: number };
  encode(text: string): number[];
  tokenBytes(id: number): Uint8Array;
}

/** Logits (vocabSize) of the token after `tokens`. The caller may cache by prefix (session.ts does). */
export type NextTokenLogits = (tokens: readonly number[]) => Promise<Float32Array> | Float32Array;

/**
 * What generate() asks of the model: logits, or the probabilities themselves where the model has
 * them at hand (session.ts's mixture), which spares a log and an exp per token and vocabulary entry.
 */
export type NextTokenScores = Float32Array | { probs: Float64Array };
export type NextToken = (tokens: readonly number[]) => Promise<NextTokenScores> | NextTokenScores;

/**
 * The token sequences whose next-token scores a beam step is about to ask next() for, one each,
 * all of the same length: a model that can run them together (session.ts, as one batch) does so
 * here, and next() then finds them computed.
 */
export type PrefetchNext = (sequences: readonly (readonly number[])[]) => Promise<void>;

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
// The tokenized text starts at a multiple of this many characters counted from the document's
// start, so that it holds still while the user types (and with it the KV cache built on it).
const CHAR_CUT_STEP = 512;
const TOKEN_WINDOW_STEPS = 8; // the token window's start moves in steps of blockSize / this
const MAX_HEAL_TOKENS = 4;

// The pre-token at the end of the prefix, by GPT-2's regex (the tokenizer's pre-tokenizer): BPE
// tokens never cross its start, so the tokens inside it are the ones the cursor may have cut.
const LAST_PRETOKEN = /(?: ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+)$/u;

const utf8 = new TextEncoder();

/**
 * Where the tokenized text starts: `maxChars` or a little more before `anchor`, at a multiple of
 * CHAR_CUT_STEP, moved on to the next line start when one is near.
 */
function textStart(prefix: string, anchor: number, maxChars: number): number {
  if (anchor <= maxChars) return 0;
  const start = Math.floor((anchor - maxChars) / CHAR_CUT_STEP) * CHAR_CUT_STEP;
  if (start === 0) return 0;
  const lineStart = prefix.indexOf('\n', start - 1) + 1;
  return lineStart > 0 && lineStart <= anchor && lineStart - start < CHAR_CUT_STEP ? lineStart : start;
}

/** The suffix's first `maxChars` characters, ending at a line end when one is near. */
function suffixHead(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const lineEnd = text.lastIndexOf('\n', maxChars);
  return text.slice(0, lineEnd > maxChars / 2 ? lineEnd : maxChars);
}

/** How many of `ids` lie wholly within their text's first `bytes` bytes. */
function tokensWithin(tok: DecodingTokenizer, ids: readonly number[], bytes: number): number {
  let covered = 0;
  let k = 0;
  while (k < ids.length && covered + tok.tokenBytes(ids[k]).length <= bytes) covered += tok.tokenBytes(ids[k++]).length;
  return k;
}

/**
 * How many tokens to drop from the front of `total` so that the rest fits `budget`, in multiples
 * of `step`. The count is taken from the `beforeLine` tokens that precede the cursor's line, and
 * the line may run into the generation budget by up to `lineRoom` tokens, so typing within a line
 * never moves the window (and the KV cache keeps all but the new positions); a line longer than
 * that moves it like any other text.
 */
function windowStart(total: number, beforeLine: number, budget: number, lineRoom: number, step: number): number {
  const drop = Math.max(0, Math.ceil((beforeLine - budget) / step) * step);
  if (total - drop <= budget + lineRoom) return drop;
  return Math.ceil((total - budget) / step) * step;
}

/** Removes the tokens of the text's last pre-token (at most MAX_HEAL_TOKENS, at least one). */
function healTail(tok: DecodingTokenizer, ids: number[], text: string): { ids: number[]; healBytes: Uint8Array } {
  const tailBytes = utf8.encode(LAST_PRETOKEN.exec(text)?.[0] ?? '').length;
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
  const k = tokensWithin(tok, ids, bytes.length);
  const covered = ids.slice(0, k).reduce((n, id) => n + tok.tokenBytes(id).length, 0);
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
 * The prompt for a cursor between `prefix` and `suffix`, and the one place that decides how much
 * of the document reaches the model. `prefix` is the document's text before the cursor from its
 * start (or from any point that does not move while the user types): the windows below are
 * counted from there, so that they hold still and the KV cache is reused. Plain: the end of the
 * prefix (after <|endoftext|> when it reaches the document's start, as documents start in
 * training). FIM, when the model knows it and the suffix has text:
 * <|endoftext|><|fim_prefix|>prefix<|fim_suffix|>suffix<|fim_middle|>, the layout of dataset.ts's
 * FIM examples (prefix-suffix-middle, the middle ended by <|endoftext|>).
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

  // The text: cut before the cursor's line (before the cursor itself when that line is long), so
  // that typing within the line does not move the cut.
  const maxChars = prefixBudget * CHARS_PER_TOKEN_BOUND;
  const lineStart = prefix.lastIndexOf('\n') + 1;
  const from = textStart(prefix, Math.max(lineStart, prefix.length - maxChars), maxChars);
  const text = prefix.slice(from);
  const beforeCode = heal && /\s$/.test(text) ? encodeBeforeCode(tok, text) : null;
  let ids = beforeCode ? beforeCode.ids : tok.encode(text);
  // A document starts after <|endoftext|>, as in training (a FIM example has its own in front).
  const documentStart = from === 0 && !useFim ? [tok.special.endOfText] : [];
  // The tokens: the window, counted from the line break that starts the cursor's line.
  const beforeLine = documentStart.length + tokensWithin(tok, ids, utf8.encode(prefix.slice(from, Math.max(from, lineStart - 1))).length);
  ids = [...documentStart, ...ids];
  ids = ids.slice(windowStart(ids.length, beforeLine, prefixBudget, Math.floor(opts.maxTokens / 2), step));

  let healBytes: Uint8Array = new Uint8Array(0);
  if (beforeCode && beforeCode.rest.length > 0) healBytes = beforeCode.rest;
  else if (heal && ids.length > 0) ({ ids, healBytes } = healTail(tok, ids, text));

  if (useFim) {
    // dataset.ts writes every example, FIM ones too, after an <|endoftext|>.
    const s = tok.special;
    return { ids: [s.endOfText, s.fimPrefix, ...ids, s.fimSuffix, ...suffixIds, s.fimMiddle], healBytes, fim: true };
  }
  // Never feed an empty prompt: the start of a document is what the model saw after <|endoftext|>.
  return { ids: ids.length === 0 ? [tok.special.endOfText] : ids, healBytes, fim: false };
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

/** softmax(logits) into `out`; -Infinity gives 0. */
export function softmax(logits: ArrayLike<number>, out: Float64Array): Float64Array {
  if (logits.length !== out.length) throw new Error(`softmax: ${logits.length} logits for ${out.length} outputs`);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** Picks a token from probabilities where disallowed entries are 0 (they need not sum to 1). */
export function pickToken(probs: Float64Array, temperature: number, topP: number, random: () => number): number {
  let best = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
  if (!(temperature > 0)) return best;
  const order: number[] = [];
  const weights = new Float64Array(probs.length); // softmax(logits / temperature), unnormalised
  let sum = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    weights[i] = (probs[i] / probs[best]) ** (1 / temperature);
    sum += weights[i];
    order.push(i);
  }
  order.sort((a, b) => weights[b] - weights[a]);
  let kept = 0;
  let mass = 0;
  while (kept < order.length && mass < topP * sum) mass += weights[order[kept++]];
  let r = random() * mass;
  for (let k = 0; k < kept; k++) {
    r -= weights[order[k]];
    if (r <= 0) return order[k];
  }
  return order[kept - 1];
}

// ---------------------------------------------------------------------------------------------
// The loop.

export interface GenerateOptions extends SamplingOptions, CursorContext {
  next: NextToken;
  tokenizer: DecodingTokenizer;
  prompt: Prompt;
  maxTokens: number;
  blockSize: number;
  signal?: AbortSignal;
  beamWidth?: number; // the beam in the middle of a line (default MID_LINE_BEAM_WIDTH); 1: greedy only
  prefetch?: PrefetchNext; // runs a beam step's paths together before next() asks for each
}

export interface GenerateResult {
  text: string; // what to insert at the cursor
  tokens: number; // tokens generated (healed ones included)
  stopReason: StopReason;
  // Natural-log probability of each picked token among the allowed ones (the probabilities after
  // masking, renormalised): the confidence a filter reads. Mean and minimum; 0 when nothing was generated.
  meanLogProb: number;
  minLogProb: number;
  phaseMs: GeneratePhaseMs;
}

/** Where the milliseconds of a generate() call went. */
export interface GeneratePhaseMs {
  prefill: number; // the first next() call: the prompt's positions not already cached
  decode: number; // the other next() calls, sampling and stop checks
  postprocess: number; // finishCompletion: the cut and the clean-up
}

/** Ids of the k best scores, best first; ties go to the lower id. */
export function topK(scores: ArrayLike<number>, k: number, start = 0, vocab = scores.length - start): number[] {
  const best: number[] = []; // kept sorted best first; k is small, so insertion beats a full sort
  for (let i = 0; i < vocab; i++) {
    const s = scores[start + i];
    if (best.length === k && s <= scores[start + best[k - 1]]) continue;
    let at = best.length;
    while (at > 0 && s > scores[start + best[at - 1]]) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
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

/** A token the loop picked, and the best one it beat: where another path may branch off. */
interface Pick {
  id: number;
  logProb: number; // among the allowed tokens, as GenerateResult's confidence reads it
  runnerUp: number; // -1: none, or not to be tried (sampling; a pick that already is a runner-up)
  runnerUpLogProb: number;
  choices?: readonly Choice[]; // where a beam will follow the path: the step's best tokens, best first
}

/** A token a step may take, with its log-probability among the allowed tokens. */
interface Choice {
  id: number;
  logProb: number;
}

/** The `width` most probable tokens in `probs` (summing to `sum`), best first, none ruled out. */
function bestChoices(probs: Float64Array, sum: number, width: number): Choice[] {
  return topK(probs, width)
    .filter((id) => probs[id] > 0)
    .map((id) => ({ id, logProb: Math.log(probs[id] / sum) }));
}

// A greedy completion that would show nothing where the user expects a line (see wantsDetour)
// takes the runner-up at one of its closest calls instead, at most this many tries, each only
// where the runner-up had at least DETOUR_MIN_PROB: a guess the model barely holds is no better
// than nothing. On rxjs's held-out lines (base fine-tuned 5 minutes, the editor's mixture) 11
// of 200 line starts showed nothing: 8 were copies of the line above or below, 3 a blank line.
const MAX_DETOURS = 2;
const DETOUR_MIN_PROB = 0.05;

/**
 * Whether an empty completion should try another path: at a blank line (the user is about to
 * write one), or at the end of a line when the completion was hidden as a copy of the next line.
 * Not in the middle of a line's text, nor where the model ended a line that has text (a line
 * that is done is rightly shown nothing).
 */
function wantsDetour(ctx: CursorContext, raw: string): boolean {
  if (linesAfterCursor(ctx.suffix).rest.trim() !== '') return false;
  return ctx.linePrefix.trim() === '' || raw.split('\n')[0].trim() !== '';
}

// In the middle of a line's text, a beam of this many paths looks for a more probable way to end
// the line than greedy decoding's, which commits to each token before it sees the rest. Its line is
// shown unless the greedy line starts with it (the beam stopped sooner on the same path: prose may
// end a line at almost any word, and the longer line costs nothing to accept a word at a time).
// The greedy line bounds the search: a path less probable than that whole line is dropped, as a
// finished path's would be. The beam reads greedy's own steps from decoding (Pick.choices) and
// asks the model only for the paths that leave it, a step's together (GenerateOptions.prefetch).
// On rxjs's 1,752 held-out mid-line cursors (the editor's mixture, every line completed), greedy
// -> a beam of 2: the base fine-tuned 1,096 steps, exact match 32.48 -> 35.33% (+2.85 ± 0.49), edit
// similarity 62.62 -> 64.14 (+1.53 ± 0.42); the base alone 28.20 -> 31.05% (+2.85 ± 0.59), 57.34
// -> 58.78 (+1.43 ± 0.51). A beam of 3 did no better (exact match -0.46 ± 0.31 and +0.34 ± 0.34
// against 2, edit similarity +0.36 ± 0.26 and +0.55 ± 0.31 to 2's advantage) and took twice the
// time: typing through the language server (--only latency), requests that reach the model, p50
// 3.6-4.1 ms greedy, 5.5-6.5 with 2, 7.3-10.8 with 3 (interleaved runs on one 2-core machine; the
// beam of 3 before it was bounded by greedy's line and batched: 8.2-9.4 ms against greedy's 4.5).
// Beams of 4 and 6 once gave no more exact match and less similarity; showing the beam's line even
// where greedy's extends it, similarity +0.16 and -0.81. Lines from their start stay greedy: there
// the most probable line is a blank one or a bare ' *' in a doc comment (beam of 4, 300 lines:
// edit similarity -17).
export const MID_LINE_BEAM_WIDTH = 2;

/** Whether the beam runs: greedy line completions with text before the cursor on its line. */
function wantsBeam(ctx: CursorContext, temperature: number, width: number): boolean {
  return width > 1 && !(temperature > 0) && ctx.mode === 'line' && ctx.linePrefix.trim() !== '';
}

/**
 * Generates until a stop rule fires. While healed text is pending, only tokens that start with
 * it, or are a prefix of it, may be picked; the healed text itself is not part of the result.
 * Greedy decoding whose completion would show nothing where a line is wanted takes a detour; in
 * the middle of a line a beam may find a more probable line.
 */
export async function generate(opts: GenerateOptions): Promise<GenerateResult> {
  const started = performance.now();
  const tok = opts.tokenizer;
  const random = seededRandom(opts.seed ?? 0x5eed);
  const temperature = opts.temperature ?? 0;
  const topP = opts.topP ?? 0.95;
  const healLength = opts.prompt.healBytes.length;
  const textDecoder = new TextDecoder('utf-8');
  const silent = silentTokens(tok);
  const probs = new Float64Array(tok.vocabSize);
  let prefillMs = -1;
  let postprocessMs = 0;

  /** The healed text a path has yet to produce, and its text after the cursor ('' while any is pending). */
  const readPath = (picks: readonly Pick[]): { pending: Uint8Array; visible: string } => {
    const bytes = concatBytes(picks.map((p) => tok.tokenBytes(p.id)));
    const pending = opts.prompt.healBytes.subarray(Math.min(bytes.length, healLength));
    return { pending, visible: pending.length > 0 ? '' : textDecoder.decode(bytes.subarray(healLength)) };
  };
  /** Where a path stops after its last pick, if it does: every path's stop rules, greedy or beam. */
  const endOf = (picks: Pick[]): DecodedPath | null => {
    if (picks.length > 0 && picks[picks.length - 1].id === tok.special.endOfText) return { picks, visible: readPath(picks.slice(0, -1)).visible, ended: 'endOfText' };
    const { pending, visible } = readPath(picks);
    if (picks.length > 0 && pending.length === 0 && findStop(visible, opts)) return { picks, visible, ended: 'budget' };
    if (picks.length >= opts.maxTokens) return { picks, visible, ended: 'budget' };
    if (opts.prompt.ids.length + picks.length >= opts.blockSize) return { picks, visible, ended: 'context' };
    return null;
  };
  /** Fills `probs` with the next token's probabilities after a path, 0 for the tokens ruled out; returns their sum. */
  const scoreNext = async (picks: readonly Pick[]): Promise<number> => {
    throwIfAborted(opts.signal);
    const asked = performance.now();
    const scores = await opts.next([...opts.prompt.ids, ...picks.map((p) => p.id)]);
    if (prefillMs < 0) prefillMs = performance.now() - asked;
    throwIfAborted(opts.signal);
    // Probabilities from here on: a token ruled out is a 0, the confidence a division.
    if (scores instanceof Float32Array) softmax(scores, probs);
    else probs.set(scores.probs);
    for (const id of silent) probs[id] = 0;
    const { pending } = readPath(picks);
    if (pending.length > 0) {
      probs[tok.special.endOfText] = 0;
      for (let id = 0; id < probs.length; id++) {
        const b = tok.tokenBytes(id);
        if (b.length === 0 || !(startsWith(b, pending) || startsWith(pending, b))) probs[id] = 0;
      }
    }
    let sum = 0;
    for (let id = 0; id < probs.length; id++) sum += probs[id];
    return sum;
  };

  const beamWidth = opts.beamWidth ?? MID_LINE_BEAM_WIDTH;
  const beamFollows = wantsBeam(opts, temperature, beamWidth);
  /** Decodes on from a path already taken (`picks`) until a stop rule fires. */
  const decode = async (picks: Pick[]): Promise<DecodedPath> => {
    for (let ended = endOf(picks); ; ended = endOf(picks)) {
      if (ended) return ended;
      const sum = await scoreNext(picks);
      // A beam that will follow keeps the step's best tokens; they hold the best two already.
      const choices = beamFollows ? bestChoices(probs, sum, beamWidth) : undefined;
      const { best, second } = choices?.length ? { best: choices[0].id, second: choices[1]?.id ?? -1 } : bestTwo(probs);
      const id = temperature > 0 ? pickToken(probs, temperature, topP, random) : best;
      const runnerUp = temperature > 0 ? -1 : second;
      picks.push({ id, logProb: Math.log(probs[id] / sum), runnerUp, runnerUpLogProb: runnerUp < 0 ? -Infinity : Math.log(probs[runnerUp] / sum), choices });
    }
  };
  const finish = (path: DecodedPath) => {
    const began = performance.now();
    const done = finishCompletion(path.visible, opts, path.ended);
    postprocessMs += performance.now() - began;
    return done;
  };

  /**
   * The `width` most probable paths, grown a token at a time until no unfinished one is more
   * probable than the best finished or than `floor` (the greedy line's log-probability). Paths
   * that show the same text pool their probability; texts rank by that log-probability over the
   * token count of their likeliest path. Null when no path finished above the floor.
   */
  const beamSearch = async (width: number, greedy: readonly Pick[]): Promise<{ path: DecodedPath; done: ReturnType<typeof finish> } | null> => {
    const floor = greedy.reduce((sum, p) => sum + p.logProb, 0);
    // onGreedy: the path is greedy's so far, whose next choices decoding kept (Pick.choices).
    type Beam = { picks: Pick[]; logProb: number; onGreedy: boolean };
    let live: Beam[] = [{ picks: [], logProb: 0, onGreedy: true }];
    const ended: { path: DecodedPath; logProb: number }[] = [];
    const known = (beam: Beam) => (beam.onGreedy ? greedy[beam.picks.length]?.choices : undefined);
    while (live.length > 0) {
      const grown: (Beam & { path: DecodedPath | null })[] = [];
      const toRun = live.filter((beam) => !known(beam));
      if (opts.prefetch && toRun.length > 1) await opts.prefetch(toRun.map((beam) => [...opts.prompt.ids, ...beam.picks.map((p) => p.id)]));
      for (const beam of live) {
        const choices = known(beam) ?? bestChoices(probs, await scoreNext(beam.picks), width);
        for (const { id, logProb } of choices) {
          const picks = [...beam.picks, { id, logProb, runnerUp: -1, runnerUpLogProb: -Infinity }];
          const onGreedy = beam.onGreedy && greedy[beam.picks.length]?.id === id;
          grown.push({ picks, logProb: beam.logProb + logProb, onGreedy, path: endOf(picks) });
        }
      }
      const kept = grown.sort((a, b) => b.logProb - a.logProb).slice(0, width);
      for (const k of kept) if (k.path) ended.push({ path: k.path, logProb: k.logProb });
      const bestEnded = Math.max(floor, ...ended.map((e) => e.logProb));
      live = kept.filter((k) => !k.path && k.logProb > bestEnded);
    }
    if (ended.length === 0) return null;
    const byText = new Map<string, { logProb: number; path: DecodedPath; pathLogProb: number; done: ReturnType<typeof finish> }>();
    for (const { path, logProb } of ended) {
      const done = finish(path);
      const same = byText.get(done.text);
      if (!same) byText.set(done.text, { logProb, path, pathLogProb: logProb, done });
      else {
        same.logProb = logAddExp(same.logProb, logProb);
        if (logProb > same.pathLogProb) [same.path, same.pathLogProb] = [path, logProb];
      }
    }
    const perToken = (line: { logProb: number; path: DecodedPath }) => line.logProb / Math.max(1, line.path.picks.length);
    return [...byText.values()].reduce((a, b) => (perToken(b) > perToken(a) ? b : a));
  };

  let path = await decode([]);
  let done = finish(path);
  if (done.text === '' && wantsDetour(opts, path.visible)) {
    // The closest calls first: the smallest gap between the pick and its runner-up.
    const branches = path.picks
      .map((p, at) => ({ at, gap: p.logProb - p.runnerUpLogProb, p }))
      .filter(({ p }) => p.runnerUp >= 0 && p.runnerUpLogProb >= Math.log(DETOUR_MIN_PROB))
      .sort((a, b) => a.gap - b.gap)
      .slice(0, MAX_DETOURS);
    for (const { at, p } of branches) {
      const detour = await decode([...path.picks.slice(0, at), { id: p.runnerUp, logProb: p.runnerUpLogProb, runnerUp: -1, runnerUpLogProb: -Infinity }]);
      const detourDone = finish(detour);
      if (detourDone.text !== '') {
        [path, done] = [detour, detourDone];
        break;
      }
    }
  }
  if (beamFollows) {
    const beamed = await beamSearch(beamWidth, path.picks);
    if (beamed && !done.text.startsWith(beamed.done.text)) ({ path, done } = beamed);
  }
  const logProbs = path.picks.map((p) => p.logProb);
  const generated = path.picks.length - (path.ended === 'endOfText' ? 1 : 0);
  const decodeMs = performance.now() - started - Math.max(0, prefillMs) - postprocessMs;
  return {
    text: done.text,
    tokens: generated,
    stopReason: done.stopReason,
    meanLogProb: logProbs.length ? logProbs.reduce((a, b) => a + b, 0) / logProbs.length : 0,
    minLogProb: logProbs.length ? Math.min(...logProbs) : 0,
    phaseMs: { prefill: Math.max(0, prefillMs), decode: decodeMs, postprocess: postprocessMs },
  };
}

interface DecodedPath {
  picks: Pick[];
  visible: string; // the text after the cursor, before the stop rules cut and clean it
  ended: StopReason; // why the token loop stopped
}

/** In one pass: the most probable id (the lower on a tie, as pickToken) and the next one (-1 when every other is ruled out). */
function bestTwo(probs: Float64Array): { best: number; second: number } {
  let best = 0;
  let second = -1;
  for (let i = 1; i < probs.length; i++) {
    const p = probs[i];
    if (p > probs[best]) {
      second = best;
      best = i;
    } else if (p > 0 && (second < 0 || p > probs[second])) second = i;
  }
  if (second >= 0 && !(probs[second] > 0)) second = -1;
  return { best, second };
}

/** log(exp(a) + exp(b)) without overflow. */
function logAddExp(a: number, b: number): number {
  const hi = Math.max(a, b);
  return hi === -Infinity ? hi : hi + Math.log(Math.exp(a - hi) + Math.exp(b - hi));
}
