// Code summaries at inference time: a snippet of code in, one line of English out, from a model
// folder trained with summary examples (dataset.ts mixes `<|code|> code <|summary|> summary` into
// its token stream). Greedy decoding after data/summaryPairs.ts's prompt, stopped at <|endoftext|>, a
// newline or a small budget, then cleaned. It does not find the function at the cursor nor write
// the doc comment (functionAt.ts does both) and it scores nothing (eval/summaryEval.ts).
import { performance } from 'node:perf_hooks';
import { summaryPromptTokens, type SummaryTokenizer } from '../data/summaryPairs';
import { CompletionSession } from '../infer/session';
import { throwIfAborted, type NextTokenLogits } from '../infer/generate';

/** Summaries are one short sentence: the mined ones average ~10 words, ~14 tokens. */
export const DEFAULT_SUMMARY_TOKENS = 24;

/** A small model's greedy summary loops ("the source Observable that emits the source Observable
 *  that ..."): a token that would repeat a 3-token sequence already generated is passed over. */
export const DEFAULT_NO_REPEAT_NGRAM = 3;

export interface SummarizeOptions {
  maxTokens?: number; // generation budget (default 24)
  noRepeatNgram?: number; // never repeat an n-gram of generated tokens (default 3; 0 allows repeats)
  signal?: AbortSignal; // checked between tokens
}

export type SummaryStopReason = 'endOfText' | 'newline' | 'budget';

export interface SummaryResult {
  summary: string; // cleaned: one line, no comment markers, no final period; '' when the model proposed nothing
  tokens: number; // tokens generated
  promptTokens: number;
  ms: number; // wall time of this call
  stopReason: SummaryStopReason;
  trainedForSummaries: boolean; // false: the model saw no summary examples (train.summaryRate 0), expect noise
}

/** The part of CodeTokenizer that summarizing needs. */
export interface SummarizingTokenizer extends SummaryTokenizer {
  readonly vocabSize: number;
  decode(ids: number[]): string;
  tokenBytes(id: number): Uint8Array;
}

const textTokenCache = new WeakMap<SummarizingTokenizer, Uint8Array>();

/** 1 for ids that stand for text, 0 for specials and reserved fillers (never part of a summary). */
function textTokenMask(tok: SummarizingTokenizer): Uint8Array {
  let mask = textTokenCache.get(tok);
  if (!mask) {
    mask = new Uint8Array(tok.vocabSize);
    for (let id = 0; id < tok.vocabSize; id++) mask[id] = tok.tokenBytes(id).length > 0 ? 1 : 0;
    textTokenCache.set(tok, mask);
  }
  return mask;
}

/**
 * A generated summary as it should read in a doc comment: the first line, comment markers and
 * doc tags gone, spaces collapsed, no final period, no half character from a cut token.
 */
export function cleanSummary(text: string): string {
  let s = text.split(/\r?\n/, 1)[0].replace(/\uFFFD/g, '');
  s = s.replace(/^\s*(?:\/\*\*?|\*|\/\/\/?|#+|"""|''')\s*/, ''); // a model that learnt raw comments may start with one
  s = s.replace(/\s*(?:\*\/|"""|''')\s*$/, '');
  s = s.replace(/\s@\w+.*$/, ''); // a JSDoc tag ends the summary part
  s = s.replace(/\s+/g, ' ').trim();
  return s.replace(/\s*\.$/, '').trim();
}

/** Tokens that would end an n-gram already present in `generated` (its last n-1 tokens seen before, then that token). */
export function repeatingTokens(generated: readonly number[], n: number): Set<number> {
  const banned = new Set<number>();
  if (n < 1 || generated.length < n - 1) return banned;
  const tail = generated.slice(generated.length - (n - 1));
  for (let i = 0; i + n - 1 < generated.length; i++) {
    let same = true;
    for (let k = 0; k < n - 1 && same; k++) same = generated[i + k] === tail[k];
    if (same) banned.add(generated[i + n - 1]);
  }
  return banned;
}

export interface SummarizeWithOptions extends SummarizeOptions {
  blockSize: number; // the model's context: the prompt is cut so that prompt + budget fit
}

/**
 * The decoding loop on any next-token function (session.ts's KV-cached one, or a fake in tests):
 * greedy over text tokens and <|endoftext|>, which ends the summary, as does a newline.
 */
export async function summarizeWith(next: NextTokenLogits, tok: SummarizingTokenizer, code: string, opts: SummarizeWithOptions): Promise<SummaryResult> {
  const started = performance.now();
  const maxTokens = opts.maxTokens ?? DEFAULT_SUMMARY_TOKENS;
  const noRepeat = opts.noRepeatNgram ?? DEFAULT_NO_REPEAT_NGRAM;
  if (!Number.isInteger(noRepeat) || noRepeat < 0) throw new Error(`summarize: noRepeatNgram must be a non-negative integer, got ${noRepeat}`);
  if (typeof code !== 'string') throw new Error(`summarize: code must be a string, got ${typeof code}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error(`summarize: maxTokens must be a positive integer, got ${maxTokens}`);
  if (!Number.isInteger(opts.blockSize) || opts.blockSize < maxTokens + 3) {
    throw new Error(`summarize: the model's context (${opts.blockSize} tokens) leaves no room for a prompt and ${maxTokens} summary tokens; hint: lower maxTokens`);
  }
  const prompt = summaryPromptTokens(code, tok, opts.blockSize - maxTokens);
  const mask = textTokenMask(tok);
  const eot = tok.special.endOfText;
  const ids = prompt.slice();
  const generated: number[] = [];
  let stopReason: SummaryStopReason = 'budget';
  while (generated.length < maxTokens) {
    throwIfAborted(opts.signal);
    const logits = await next(ids);
    const banned = repeatingTokens(generated, noRepeat);
    let best = eot;
    let bestLogit = logits[eot];
    for (let id = 0; id < logits.length; id++) {
      if (mask[id] === 1 && logits[id] > bestLogit && !banned.has(id)) {
        best = id;
        bestLogit = logits[id];
      }
    }
    if (best === eot) {
      stopReason = 'endOfText';
      break;
    }
    generated.push(best);
    ids.push(best);
    if (tok.decode(generated).includes('\n')) {
      stopReason = 'newline';
      break;
    }
  }
  return {
    summary: cleanSummary(tok.decode(generated)),
    tokens: generated.length,
    promptTokens: prompt.length,
    ms: performance.now() - started,
    stopReason,
    trainedForSummaries: true,
  };
}

/**
 * What the language server calls for "Summarize Function": a one-line summary of `code` (e.g.
 * functionAt.ts findFunctionAt(...).code). Pass an open CompletionSession to reuse it (and its
 * place in the queue of completions); a model folder path opens one for this call alone.
 */
export async function summarize(model: string | CompletionSession, code: string, opts: SummarizeOptions = {}): Promise<SummaryResult> {
  const started = performance.now();
  const session = typeof model === 'string' ? await CompletionSession.open(model) : model;
  try {
    const result = await summarizeWith((tokens) => session.nextLogits(tokens), session.tokenizer, code, { ...opts, blockSize: session.config.blockSize });
    return { ...result, ms: performance.now() - started, trainedForSummaries: session.folderConfig.train.summaryRate > 0 };
  } finally {
    if (typeof model === 'string') await session.close();
  }
}
