// (code, summary) pairs, the training data of Summarize Function: mined from the documented
// definitions of a source text (sourceScanner.ts finds them, docComments.ts reads the summary),
// de-duplicated against training, and laid out as tokens for training and for the prompt. Pure
// functions on strings: it reads no files and generates nothing (summaries/summarize.ts does).
import { findDefinitions, definitionCode, languageOf, languageSpec } from './sourceScanner';
import { summaryFromComment, DEFAULT_MAX_SUMMARY_WORDS } from './docComments';

export interface SummaryPair {
  code: string; // the definition (decorators included, doc comment and docstring excluded), dedented, bounded
  summary: string; // first sentence of the doc comment, markup and tags removed, no final period
  name?: string; // the defined name when there is one
  line: number; // 0-based line of the definition's keyword line (`def`, `function`, `fn`, ...)
  language: string; // VS Code language id
  docStart: number; // offset of the doc comment (or docstring literal) in the text
  docEnd: number; // offset just past it
  defStart: number; // offset where the definition starts (its first decorator, if any)
}

export interface MineOptions {
  maxCodeLines?: number; // code is cut at a line boundary past this many lines (default 80)
  maxCodeChars?: number; // ... or past this many characters (default 4000)
  maxSummaryWords?: number; // longer first sentences are prose, not summaries: skipped (default 48)
}

const DEFAULT_MAX_CODE_LINES = 80;
const DEFAULT_MAX_CODE_CHARS = 4000;

function bound(code: string, maxLines: number, maxChars: number): string {
  let rows = code.split('\n');
  if (rows.length > maxLines) rows = rows.slice(0, maxLines);
  let bounded = rows.join('\n');
  if (bounded.length > maxChars) {
    const cut = bounded.lastIndexOf('\n', maxChars);
    bounded = bounded.slice(0, cut > 0 ? cut : maxChars);
  }
  return bounded.replace(/\s+$/, '');
}

/**
 * (code, summary) pairs from the documented definitions of one source text. Definitions whose doc
 * comment gives no summary (licences, directives, commented-out code, tag-only comments) and
 * comments separated from the code by a blank line give no pair. Unknown languages give [].
 */
export function minePairs(text: string, languageId: string, relPath?: string, opts: MineOptions = {}): SummaryPair[] {
  const spec = languageSpec(languageId) ?? (relPath ? languageSpec(languageOf(relPath) ?? '') : undefined);
  if (!spec || text.trim() === '') return [];
  const language = languageSpec(languageId) ? languageId : languageOf(relPath ?? '')!;
  const maxLines = opts.maxCodeLines ?? DEFAULT_MAX_CODE_LINES;
  const maxChars = opts.maxCodeChars ?? DEFAULT_MAX_CODE_CHARS;
  const pairs: SummaryPair[] = [];
  for (const definition of findDefinitions(text, spec)) {
    const doc = definition.doc;
    if (!doc) continue;
    const summary = summaryFromComment(doc.body, doc.style, opts.maxSummaryWords ?? DEFAULT_MAX_SUMMARY_WORDS);
    if (!summary) continue;
    const code = bound(definitionCode(text, definition), maxLines, maxChars);
    if (code === '') continue;
    pairs.push({
      code, summary, name: definition.name, line: definition.keywordLine, language,
      docStart: doc.start, docEnd: doc.end, defStart: definition.headStart,
    });
  }
  return pairs;
}

/** The code with all whitespace removed: copies that differ only in layout share this key. */
function codeKey(code: string): string {
  return code.replace(/\s+/g, '');
}

/**
 * The held-out pairs whose code does not also occur among the training pairs (whitespace aside), and
 * each only once. Workspaces hold copies (src/ and dist/, vendored files): without this, retrieval
 * would score its own training data.
 */
export function withoutDuplicates<T extends { code: string }>(heldOut: readonly T[], train: readonly { code: string }[]): T[] {
  const seen = new Set(train.map((pair) => codeKey(pair.code)));
  const kept: T[] = [];
  for (const pair of heldOut) {
    const key = codeKey(pair.code);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(pair);
  }
  return kept;
}

// ---------------------------------------------------------------------------------------------
// Token layout for training and generation

/** What the layout needs of the tokenizer (CodeTokenizer has it). */
export interface SummaryTokenizer {
  encode(text: string): number[];
  special: { code: number; summary: number; endOfText: number };
}

/**
 * A training sequence `<|code|> code <|summary|> summary <|endoftext|>` of at most maxTokens ids.
 * The markers are the reserved special ids (the text "<|code|>" would encode as plain text). When
 * it does not fit, the summary keeps up to half the budget and the code loses its tail.
 */
export function summaryTrainingTokens(pair: { code: string; summary: string }, tokenizer: SummaryTokenizer, maxTokens: number): number[] {
  if (!Number.isInteger(maxTokens) || maxTokens < 5) throw new Error(`summaryTrainingTokens: maxTokens must be an integer >= 5, got ${maxTokens}`);
  const { code, summary, endOfText } = tokenizer.special;
  const summaryIds = tokenizer.encode(pair.summary).slice(0, Math.floor((maxTokens - 3) / 2));
  const codeIds = tokenizer.encode(pair.code).slice(0, maxTokens - 3 - summaryIds.length);
  return [code, ...codeIds, summary, ...summaryIds, endOfText];
}

/** The prompt whose continuation is a summary: `<|code|> code <|summary|>`, code cut to fit maxTokens. */
export function summaryPromptTokens(codeText: string, tokenizer: SummaryTokenizer, maxTokens: number): number[] {
  if (!Number.isInteger(maxTokens) || maxTokens < 3) throw new Error(`summaryPromptTokens: maxTokens must be an integer >= 3, got ${maxTokens}`);
  const { code, summary } = tokenizer.special;
  return [code, ...tokenizer.encode(codeText).slice(0, maxTokens - 2), summary];
}

