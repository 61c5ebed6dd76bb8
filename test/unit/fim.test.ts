// Fill-in-the-middle examples as dataset.ts cuts them: middles shaped like editor requests (line
// remainders, spans inside a line, a few lines) and chunks small enough to share one window.
// The PSM token layout of whole documents is tested in dataset.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CodeTokenizer } from '../../models/src/data/tokenizer';
import { fimChunks, fimCuts, openTokenStream, tokenizeFiles } from '../../models/src/data/dataset';

const CODE = Array.from({ length: 40 }, (_, i) =>
  i % 5 === 4 ? '' : `${'  '.repeat(i % 3)}const value${i} = compute(${i}, "arg${i}") + other${i};`,
).join('\n');

/** A seeded stream of 32-bit draws, like dataset.ts's generator. */
function draws(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
}

test('fimCuts: middles are line remainders, spans in a line or a few lines; never empty, never in indentation', () => {
  const draw = draws(7);
  const runs = 2000;
  let lineRemainders = 0;
  let insideLine = 0;
  for (let i = 0; i < runs; i++) {
    const [a, b] = fimCuts(CODE, draw);
    const middle = CODE.slice(a, b);
    assert.ok(0 <= a && a <= b && b <= CODE.length, `cuts ${a}, ${b} within the text`);
    assert.ok(middle.length > 0 || a === b, 'an empty middle only as a zero-width span');
    assert.ok(middle.split('\n').length <= 4 + 1, `at most 4 more lines, got ${JSON.stringify(middle)}`);
    const lineStart = CODE.lastIndexOf('\n', a - 1) + 1;
    const indent = /^[ \t]*/.exec(CODE.slice(lineStart))![0].length;
    assert.ok(a >= lineStart + indent, `cut at ${a} inside the indentation of the line at ${lineStart}`);
    const endsLine = b === CODE.length || CODE[b] === '\n';
    if (!middle.includes('\n') && endsLine && middle.length > 0) lineRemainders++;
    if (!middle.includes('\n')) insideLine++;
  }
  // Half are line remainders by construction, and spans reaching the line end add a little.
  assert.ok(lineRemainders / runs > 0.45 && lineRemainders / runs < 0.7, `line remainders: ${lineRemainders} of ${runs}`);
  assert.ok(insideLine / runs > 0.7, `single-line middles: ${insideLine} of ${runs}`);
});

test('fimCuts: text without content lines falls back to uniform cuts; never splits a surrogate pair', () => {
  const [a, b] = fimCuts('\n\n   \n', draws(1));
  assert.ok(0 <= a && a <= b && b <= 6);
  const emoji = 'x = "😀😀😀😀";\n';
  for (let seed = 0; seed < 200; seed++) {
    for (const cut of fimCuts(emoji, draws(seed))) assert.ok(!/[\uDC00-\uDFFF]/.test(emoji[cut] ?? ''), `cut ${cut} splits a pair`);
  }
});

test('fimChunks: cut at line ends, about maxChars each, and join back to the text', () => {
  const chunks = fimChunks(CODE, 128);
  assert.equal(chunks.join(''), CODE);
  assert.ok(chunks.length >= CODE.length / 128, `${chunks.length} chunks`);
  chunks.slice(0, -1).forEach((chunk) => {
    assert.ok(chunk.endsWith('\n'), 'a chunk ends at a line end');
    assert.ok(chunk.length <= 128, `chunk of ${chunk.length} chars`);
  });
  // A line longer than maxChars is a chunk of its own.
  const long = `short\n${'x'.repeat(300)}\nend`;
  assert.deepEqual(fimChunks(long, 100), ['short\n', `${'x'.repeat(300)}\n`, 'end']);
  assert.deepEqual(fimChunks('', 100), []);
});

test('tokenizeFiles with a blockSize: several window-sized FIM examples per long document, each middle ended by <|endoftext|>, text preserved', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-fim-'));
  try {
    const file = path.join(dir, 'a.ts');
    await fs.writeFile(file, CODE);
    const tokenizer = await CodeTokenizer.train([CODE], 300);
    const s = tokenizer.special;
    const files = [{ relPath: 'a.ts', absPath: file, bytes: CODE.length }];
    for (const fimRate of [1, 0.5]) {
      const out = path.join(dir, `fim-${fimRate}.bin`);
      await tokenizeFiles(files, tokenizer, out, { fimRate, blockSize: 64, seed: 5 });
      const stream = openTokenStream(out);
      const ids = Array.from(stream.read(0, stream.length));
      // Segments between <|endoftext|>: a FIM example, or plain text.
      const pieces: number[][] = [];
      for (const id of ids) {
        if (id === s.endOfText) pieces.push([]);
        else pieces[pieces.length - 1].push(id);
      }
      let text = '';
      let examples = 0;
      for (const piece of pieces) {
        if (piece[0] !== s.fimPrefix) {
          text += tokenizer.decode(piece);
          continue;
        }
        examples++;
        const suffixAt = piece.indexOf(s.fimSuffix);
        const middleAt = piece.indexOf(s.fimMiddle);
        assert.ok(suffixAt > 0 && middleAt > suffixAt, 'sentinels in order');
        // The middle runs to the example's end: an <|endoftext|> follows it, never plain text.
        const middle = tokenizer.decode(piece.slice(middleAt + 1));
        if (fimRate === 1) assert.ok(piece.length <= 64 + 1, `an example of ${piece.length} tokens does not fit a 64-token window`);
        text += tokenizer.decode(piece.slice(1, suffixAt)) + middle + tokenizer.decode(piece.slice(suffixAt + 1, middleAt));
      }
      assert.equal(text, CODE, 'every chunk reassembles, in order');
      if (fimRate === 1) assert.equal(examples, fimChunks(CODE, 128).length);
      else assert.ok(examples > 0 && examples < fimChunks(CODE, 128).length, `${examples} FIM chunks at rate 0.5`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
