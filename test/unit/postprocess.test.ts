// Where a completion ends and what of it is shown, without a model: the stop rules on finished
// texts, the clean-up, and the context they read around the cursor. The same rules inside the
// token loop are in generate.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanCompletion, cursorContext, findStop, finishCompletion, indentWidth, type CompletionMode } from '../../models/src/infer/postprocess';

/** The context at the `|` of `textWithCursor`. */
function at(textWithCursor: string, mode: CompletionMode = 'line') {
  const offset = textWithCursor.indexOf('|');
  return cursorContext(textWithCursor.slice(0, offset), textWithCursor.slice(offset + 1), mode);
}

/** What the user sees of a raw completion that decoding ended at its token budget. */
const shown = (raw: string, ctx: ReturnType<typeof at>) => finishCompletion(raw, ctx, 'budget').text;

test('cursorContext: the cursor line up to the cursor, the text after it, the last non-blank line above', () => {
  assert.deepEqual(at('a = 1;\n\n  \n  b|;\nc'), { mode: 'line', linePrefix: '  b', suffix: ';\nc', lineAbove: 'a = 1;' });
  assert.equal(at('|x').lineAbove, undefined);
  assert.equal(at('\n\n|').lineAbove, undefined);
});

test('a line completion keeps one line, without trailing space', () => {
  const ctx = at('const total = |');
  assert.equal(shown('items.length;  \nconsole.log(total);', ctx), 'items.length;');
  assert.equal(shown('\nnext line', ctx), '', 'a completion that starts with the line break shows nothing');
});

test('nothing rather than junk: blank, a repeat of what follows, a copy of the line above', () => {
  const ctx = at('function f() {\n  |\n  return 1;\n}');
  assert.equal(cleanCompletion('', ctx), '');
  assert.equal(cleanCompletion('   \t ', ctx), '');
  assert.equal(cleanCompletion('ok\uFFFD', ctx), 'ok', 'a character cut in half at the end goes');
  assert.equal(cleanCompletion('return 1;', ctx), '', 'repeats the next line');
  const loop = at('import a from "a";\n|');
  assert.equal(cleanCompletion('import a from "a";', loop), '', 'repeats the line above');
  assert.equal(cleanCompletion('import b from "b";', loop), 'import b from "b";');
});

test('in the middle of a line: compared with the rest of it, whose part the completion would type twice goes', () => {
  const ctx = at('call(|);');
  assert.equal(cleanCompletion('a, b);', ctx), 'a, b');
  assert.equal(cleanCompletion('a, b)', ctx), 'a, b');
  assert.equal(cleanCompletion('x', ctx), 'x');
  assert.equal(cleanCompletion(');', ctx), '', 'only the rest of the line again');
  assert.equal(cleanCompletion(');', at('f(|);\n}')), '');
});

test('at the end of a line: compared with the whole next line only; a block with all that follows', () => {
  // Consecutive lines often start alike: that is no reason to hide a line completion.
  assert.equal(cleanCompletion('import {', at('|\nimport { a } from "./a";')), 'import {');
  assert.equal(cleanCompletion('* @param', at('|\n * @param b the second')), '* @param');
  assert.equal(cleanCompletion('}', at('|\n  }\n')), '');
  assert.equal(cleanCompletion('}', at('|\n  }\n', 'block')), '');
  assert.equal(cleanCompletion('import {', at('|\nimport { a } from "./a";', 'block')), '');
  assert.equal(cleanCompletion('x);  ', at('|);', 'block')), 'x);');
  assert.equal(cleanCompletion('a();  \n  b();\t', at('|', 'block')), 'a();\n  b();', 'no trailing space on any line');
});

test('a block ends at a blank line, at a dedent (its closing bracket too), after 12 lines, or at its last whole line', () => {
  const ctx = at('function f(x) {\n  |', 'block');
  assert.equal(shown('const y = x * 2;\n  return y;\n}\n\nfunction g() {', ctx), 'const y = x * 2;\n  return y;');
  assert.equal(shown('a();\n  b();\n\n  c();', ctx), 'a();\n  b();');
  assert.equal(shown('a();\nfoo();', ctx), 'a();');
  const lines = Array.from({ length: 20 }, (_, i) => `call${i}();`);
  assert.deepEqual(findStop(lines.join('\n  '), ctx), { end: lines.slice(0, 12).join('\n  ').length, reason: 'maxLines' });
  assert.equal(finishCompletion('a();\n  b(', ctx, 'budget').text, 'a();', 'cut by the budget: the last whole line');
  assert.equal(finishCompletion('a();\n  b(', ctx, 'endOfText').text, 'a();\n  b(', 'ended by the model: as it is');
});

test('a phrase said three times in a row is a loop: the completion keeps it once; code that repeats characters is not', () => {
  const ctx = at('import { fromEvent, scan, |');
  assert.equal(shown('interval, interval, interval, interval, interval, inter', ctx), 'interval,');
  assert.equal(shown('use {@link fromEvent} or {@link fromEvent} or {@link fromEvent} or {@link from', at(' * you probably want to |')), 'use {@link fromEvent} or');
  assert.equal(shown("'Keyrowrowrowrowrowrowrow", at('|')), "'Keyrow");
  assert.deepEqual(findStop('the function to use to use to use to', at('|')), { end: 'the function to use'.length, reason: 'repeat' });
  // twice is not a loop; nor runs of one character or one letter, numbers, or lines that repeat
  for (const code of ['a.then(f).then(f);', '0xFFFFFFFF;', "'-a-a-a-a-|'", '[0, 0, 0, 0, 0, 0]', '// ============', 'x = "ab ab";']) {
    assert.equal(findStop(code, at('|')), null, code);
  }
  assert.equal(findStop('a();\n  a();\n  a();\n  a();', at('  |', 'block')), null, 'a block of like lines is left to the block rules');
});

test('one indentation rule: a tab counts 4 columns, wherever blocks are compared', () => {
  assert.equal(indentWidth('\t  x'), 6);
  assert.deepEqual(findStop('a();\n  b();', { mode: 'block', linePrefix: '\t', suffix: '' }), { end: 4, reason: 'blockEnd' });
  assert.equal(findStop('a();\n\tb();', { mode: 'block', linePrefix: '    ', suffix: '' }), null);
});
