// Where a completion ends and what of it is shown: the stop rules that end decoding (a line, a
// block, a bracket closing one opened before the cursor, a phrase said over and over) and the
// clean-up of the text (trailing space, repeats of what already follows the cursor, a copy of the
// line above). Every rule lives here once; generate.ts applies them to the GPT and the n-gram
// alike, and the language server shows what comes out and nothing else. It does not decode
// (generate.ts) and does not decide whether to complete at all (the language server does).

export type CompletionMode = 'line' | 'block';

export type StopReason = 'endOfLine' | 'blockEnd' | 'blankLine' | 'maxLines' | 'repeat' | 'budget' | 'endOfText' | 'context';

/** What the rules read around the cursor. */
export interface CursorContext {
  mode: CompletionMode; // 'line': to the end of the line; 'block': to the end of the block
  linePrefix: string; // the cursor's line up to the cursor: its indentation is the block's level
  suffix: string; // the text after the cursor, the rest of its line first
  lineAbove?: string; // the last non-blank line above the cursor's line
}

// A tab in indentation counts as this many spaces (VS Code's default tabSize): blocks are compared
// by width, and a file may mix tabs and spaces.
const TAB_WIDTH = 4;
const MAX_BLOCK_LINES = 12; // a longer suggestion is more to read than to type
// A phrase of MIN_LOOP..MAX_LOOP characters said three times in a row on one line is a loop of
// the decoder (`interval, interval, interval, …`), not code. Shorter runs are code (`===`, `0x000`).
const MIN_LOOP = 3;
const MAX_LOOP = 40;
const NEWLINE = 10;
const OPENERS = '([{';
const CLOSERS = ')]}';

/** The context for a cursor between `prefix` and `suffix` (either may be a whole document). */
export function cursorContext(prefix: string, suffix: string, mode: CompletionMode): CursorContext {
  const lineStart = prefix.lastIndexOf('\n') + 1;
  let lineAbove: string | undefined;
  for (let end = lineStart - 1; end > 0 && lineAbove === undefined; ) {
    const start = prefix.lastIndexOf('\n', end - 1) + 1;
    const line = prefix.slice(start, end);
    if (line.trim() !== '') lineAbove = line;
    end = start - 1;
  }
  return { mode, linePrefix: prefix.slice(lineStart), suffix, lineAbove };
}

export function indentWidth(line: string): number {
  let width = 0;
  for (const ch of line) {
    if (ch === ' ') width++;
    else if (ch === '\t') width += TAB_WIDTH;
    else break;
  }
  return width;
}

/** The rest of the cursor's line and the line after it (undefined at the end of the text). */
export function linesAfterCursor(suffix: string): { rest: string; next: string | undefined } {
  const newline = suffix.indexOf('\n');
  if (newline < 0) return { rest: suffix, next: undefined };
  const after = suffix.indexOf('\n', newline + 1);
  return { rest: suffix.slice(0, newline), next: suffix.slice(newline + 1, after < 0 ? undefined : after) };
}

/**
 * The index in `text` of a bracket that closes one opened before the cursor (brackets inside the
 * completion's own strings do not count), or -1. In line mode only when the line goes on after
 * the cursor: at the end of a line, `{ a }` of `import { a } from './a';` closes a bracket of the
 * prefix and the line still goes on.
 */
function closingBracket(text: string, ctx: CursorContext): number {
  if (ctx.mode === 'line' && linesAfterCursor(ctx.suffix).rest.trim() === '') return -1;
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
    else if (CLOSERS.includes(ch) && --depth < 0) return i;
  }
  return -1;
}

/**
 * Where a text that ends by saying a phrase three times in a row on one line should end: after the
 * phrase's first pass; or -1. The decoder asks after every token, so a loop is caught as its third
 * pass ends. The phrase holds two different letters at least, so that runs of one character
 * (`FFFFFFFF`, `'-a-a-a-|'`) and numbers (`[0, 0, 0, 0]`) are not loops.
 */
function loopStart(text: string): number {
  const n = text.length;
  for (let period = MIN_LOOP; period <= MAX_LOOP && 3 * period <= n; period++) {
    let j = n - 1;
    while (j >= n - 2 * period && repeats(text, j, period)) j--;
    if (j >= n - 2 * period || !twoLetters(text, n - period, n)) continue;
    let start = n - 3 * period; // back to where the phrase was first said
    while (start > 0 && repeats(text, start - 1 + period, period)) start--;
    return start + period;
  }
  return -1;
}

/** Whether text[i] is the character `period` before it, on the same line. */
function repeats(text: string, i: number, period: number): boolean {
  const c = text.charCodeAt(i);
  return c === text.charCodeAt(i - period) && c !== NEWLINE;
}

/** Whether text[start, end) holds two different ASCII letters. */
function twoLetters(text: string, start: number, end: number): boolean {
  let seen = -1;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i) | 0x20; // lower case
    if (c < 97 || c > 122) continue;
    if (seen < 0) seen = c;
    else if (c !== seen) return true;
  }
  return false;
}

/**
 * Where the completion must end, or null to keep going. Line mode: at the end of the line. Block
 * mode: before a blank line, before a line indented below the cursor's line, or after
 * MAX_BLOCK_LINES lines. Both: after the first pass of a phrase the decoder loops on; at a
 * bracket closing one opened before the cursor — after it, or before it when the text after the
 * cursor already has it. A dedented line goes even when it is that bracket: the block's closer may
 * well be further down, after code the block does not see.
 */
export function findStop(text: string, ctx: CursorContext): { end: number; reason: StopReason } | null {
  let best: { end: number; reason: StopReason } | null = null;
  const consider = (end: number, reason: StopReason): void => {
    if (!best || end < best.end) best = { end, reason };
  };

  const loop = loopStart(text);
  if (loop >= 0) consider(loop, 'repeat');

  const closer = closingBracket(text, ctx);
  if (closer >= 0) {
    const after = ctx.mode === 'line' ? linesAfterCursor(ctx.suffix).rest.trimStart() : ctx.suffix.trimStart();
    consider(after.startsWith(text[closer]) ? text.slice(0, closer).trimEnd().length : closer + 1, 'blockEnd');
  }

  if (ctx.mode === 'line') {
    const newline = text.indexOf('\n');
    if (newline >= 0) consider(newline, 'endOfLine');
    return best;
  }
  const startIndent = indentWidth(ctx.linePrefix);
  let lines = 1;
  for (let lineStart = text.indexOf('\n') + 1; lineStart > 0; ) {
    const next = text.indexOf('\n', lineStart);
    const line = next >= 0 ? text.slice(lineStart, next) : text.slice(lineStart);
    if (line.trim() === '') {
      if (next >= 0) {
        consider(lineStart - 1, 'blankLine');
        break;
      }
    } else if (indentWidth(line) < startIndent) {
      consider(lineStart - 1, 'blockEnd');
      break;
    } else if (++lines > MAX_BLOCK_LINES) {
      consider(lineStart - 1, 'maxLines');
      break;
    }
    lineStart = next + 1;
  }
  return best;
}

/**
 * The completion as decoding left it (`ended`: why the token loop stopped), cut where a stop rule
 * says and cleaned. A block that ran out of tokens ends at its last whole line rather than mid-line.
 */
export function finishCompletion(text: string, ctx: CursorContext, ended: StopReason): { text: string; stopReason: StopReason } {
  const stop = findStop(text, ctx);
  if (stop) return { text: cleanCompletion(text.slice(0, stop.end), ctx), stopReason: stop.reason };
  const lastNewline = text.lastIndexOf('\n');
  const cut = ctx.mode === 'block' && ended !== 'endOfText' && lastNewline > 0 ? text.slice(0, lastNewline) : text;
  return { text: cleanCompletion(cut, ctx), stopReason: ended };
}

/**
 * What to show of a completion, '' for nothing: no trailing whitespace (nor a character cut in
 * half at the end), nothing blank, nothing that only repeats what follows the cursor. In the middle
 * of a line the completion is compared with the rest of that line, and the part of it that the rest
 * already holds is dropped (`a, b);` before `);` shows `a, b`); at the end of a line it is compared
 * with the whole next line only: that a completion starts like the next line (`import {`,
 * ` * @param`) is no reason to hide it, consecutive lines often do. At the start of a line, a copy
 * of the line above is a loop, not a suggestion.
 */
export function cleanCompletion(text: string, ctx: CursorContext): string {
  let shown = text.replace(/\r\n?/g, '\n').replace(/\uFFFD+$/, '').replace(/[ \t]+$/gm, '').trimEnd();
  if (shown.trim() === '') return '';
  const { rest, next } = linesAfterCursor(ctx.suffix);
  if (ctx.mode === 'line' && rest.trim() !== '') {
    if (rest.trimStart().startsWith(shown.trimStart())) return '';
    shown = withoutOverlap(shown, rest.trimEnd());
    if (shown.trim() === '') return '';
  } else if (ctx.mode === 'line') {
    if (next !== undefined && next.trim() === shown.trim()) return '';
  } else if (ctx.suffix.trimStart().startsWith(shown.trimStart())) {
    return '';
  }
  if (ctx.linePrefix.trim() === '' && ctx.lineAbove !== undefined && shown.trim() === ctx.lineAbove.trim()) return '';
  return shown;
}

/** `text` without its longest end that `rest` starts with: the rest of the line stays after the ghost text. */
function withoutOverlap(text: string, rest: string): string {
  for (let k = Math.min(rest.length, text.length); k > 0; k--) {
    if (text.endsWith(rest.slice(0, k))) return text.slice(0, text.length - k);
  }
  return text;
}
