// Tokenizer: exact vocabulary layout, exact round trips, specials only by id, the two encoders
// agreeing id for id, and the saved file loading in Hugging Face's own library.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tokenizer as NativeTokenizer } from 'tokenizers';
import { CodeTokenizer, SPECIAL_TOKENS, MIN_VOCAB_SIZE } from '../../models/src/data/tokenizer';

const SAMPLE = path.join(__dirname, '..', 'fixtures', 'sample-project');

function sampleTexts(dir = SAMPLE): string[] {
  const texts: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) texts.push(...sampleTexts(full));
    else texts.push(readFileSync(full, 'utf8'));
  }
  return texts;
}

const TRICKY = [
  'const greeting = "你好，世界"; // 世界',
  'emoji 😀👍🏽 and a flag 🇫🇷, zero-width joiner 👩‍💻',
  'windows\r\nline\r\nendings\r\n',
  '\tindented\twith\ttabs\n\t\tdeeper\n',
  'control bytes \u0000\u0001\u001b[0m \u007f and é ñ ß Ω ж',
  '\uFEFFstarts with a byte order mark',
  '    trailing spaces   \n\n\n   \n',
  'def f(x):\n    return x  # 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 outside the BMP\n',
];

let texts: string[];
let tokenizer: CodeTokenizer;
let trainMs: number;

before(async () => {
  texts = sampleTexts();
  const started = performance.now();
  tokenizer = await CodeTokenizer.train(texts, 512);
  trainMs = performance.now() - started;
});

test('vocabulary is exactly the requested size, specials are the last 7 ids in order', () => {
  assert.equal(tokenizer.vocabSize, 512);
  assert.deepEqual(tokenizer.special, {
    endOfText: 505, fimPrefix: 506, fimMiddle: 507, fimSuffix: 508, code: 509, summary: 510, pad: 511,
  });
  assert.equal(tokenizer.mergeCount, 512 - MIN_VOCAB_SIZE, 'the sample project offers more merges than 249');
  const json = JSON.parse(tokenizer.toJSON());
  assert.deepEqual(json.added_tokens.map((t: { content: string; id: number; special: boolean }) => [t.content, t.id, t.special]),
    SPECIAL_TOKENS.map((content, i) => [content, 505 + i, true]));
  assert.equal(Object.keys(json.model.vocab).length, 512);
  assert.equal(json.decoder.type, 'ByteLevel');
  assert.equal(json.model.vocab['Ġ'], 32, 'byte ids equal byte values');
});

test('round trips exactly: Unicode, emoji, CRLF, tabs, bytes never seen in training', () => {
  for (const text of [...TRICKY, ...texts]) {
    const ids = tokenizer.encode(text);
    assert.equal(tokenizer.decode(ids), text, JSON.stringify(text.slice(0, 40)));
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tokenizer.special.endOfText));
  }
  assert.deepEqual(tokenizer.encode(''), []);
});

test('text that spells a special token is plain text', async () => {
  const text = `before ${SPECIAL_TOKENS.join(' ')} after<|endoftext|>`;
  const ids = tokenizer.encode(text);
  const [batchIds] = await tokenizer.encodeBatch([text]);
  for (const list of [ids, batchIds]) {
    assert.ok(list.every((id) => id < tokenizer.vocabSize - SPECIAL_TOKENS.length), `special id in ${list}`);
  }
  assert.equal(tokenizer.decode(ids), text);
});

test('specials decode to nothing; tokenBytes gives the UTF-8 bytes of the text', () => {
  const s = tokenizer.special;
  assert.equal(tokenizer.decode([s.endOfText, ...tokenizer.encode('x = 1'), s.pad, s.fimMiddle]), 'x = 1');
  assert.equal(tokenizer.tokenBytes(s.code).length, 0);
  const text = TRICKY[0];
  const bytes = Buffer.concat(tokenizer.encode(text).map((id) => tokenizer.tokenBytes(id)));
  assert.deepEqual(bytes, Buffer.from(text, 'utf8'));
  assert.throws(() => tokenizer.tokenBytes(512), /outside the vocabulary \[0, 512\)/);
  assert.throws(() => tokenizer.decode([-1]), /outside the vocabulary/);
});

test('pure-JS encode and native encodeBatch give identical ids, long texts included', async () => {
  const long = texts.join('\n') + TRICKY.join('\n'); // > 4096 chars: the batch path splits it
  assert.ok(long.length > 20_000);
  const inputs = [...texts, ...TRICKY, long, ''];
  const batch = await tokenizer.encodeBatch(inputs);
  inputs.forEach((text, i) => assert.deepEqual(batch[i], tokenizer.encode(text), JSON.stringify(text.slice(0, 40))));
});

test('batch encoding cuts long texts only where the ids cannot change (random texts)', async () => {
  // Random mixes of the characters that decide pre-token boundaries: newlines after letters,
  // digits, quotes, spaces, tabs, CR; multi-byte characters. Deterministic generator.
  const alphabet = ['a', 'Z', ' ', '  ', '\n', '\n', '\t', '\r', '7', "'", 's', "'s", '{', ';', '.', 'é', '😀', '世'];
  let state = 12345;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 0x100000000;
  const randomTexts = Array.from({ length: 4 }, () => Array.from({ length: 6000 }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''));
  const batch = await tokenizer.encodeBatch(randomTexts);
  randomTexts.forEach((text, i) => {
    assert.deepEqual(batch[i], tokenizer.encode(text));
    assert.equal(tokenizer.decode(batch[i]), text);
  });
});

test('the newline and the next line\'s indentation are learned as one token', () => {
  // The trainer reads line by line; tokenizer.ts works around it. Without that, no token would
  // start with "\n" followed by spaces.
  const ids = tokenizer.encode('{\n        return x;\n');
  const pieces = ids.map((id) => Buffer.from(tokenizer.tokenBytes(id)).toString('utf8'));
  assert.ok(pieces.some((p) => /^\n {2,}$/.test(p)), JSON.stringify(pieces));
});

test('save and load give the same tokenizer; Hugging Face tokenizers reads the file', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-tok-'));
  try {
    const file = path.join(dir, 'tokenizer.json');
    await tokenizer.save(file);
    const loaded = await CodeTokenizer.load(file);
    assert.equal(loaded.toJSON(), tokenizer.toJSON());
    const sample = texts[3];
    const ids = loaded.encode(sample);
    assert.deepEqual(ids, tokenizer.encode(sample));
    const hf = NativeTokenizer.fromFile(file);
    assert.equal(hf.getVocabSize(true), 512);
    assert.equal(await hf.decode(ids, true), sample);
    assert.equal(hf.tokenToId('<|fim_middle|>'), tokenizer.special.fimMiddle);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('training is deterministic', async () => {
  const again = await CodeTokenizer.train(texts, 512);
  assert.equal(again.toJSON(), tokenizer.toJSON());
});

test('a corpus too small for the vocabulary pads with reserved ids; sizes stay exact', async () => {
  const small = await CodeTokenizer.train(['let a = 1;\nlet b = 2;\n'], 600);
  assert.equal(small.vocabSize, 600);
  assert.ok(small.mergeCount > 0 && small.mergeCount < 600 - MIN_VOCAB_SIZE, `merges ${small.mergeCount}`);
  assert.equal(small.special.pad, 599);
  assert.equal(small.decode([256 + small.mergeCount]), '', 'reserved ids decode to nothing');
  assert.equal(small.decode(small.encode(TRICKY[1])), TRICKY[1]);
  const empty = await CodeTokenizer.train([], MIN_VOCAB_SIZE);
  assert.equal(empty.vocabSize, MIN_VOCAB_SIZE);
  assert.equal(empty.encode('ab').length, 2);
});

test('bad input gives clear errors', async () => {
  await assert.rejects(CodeTokenizer.train(['x'], 100), /vocabSize must be an integer in \[263, .*got 100/);
  await assert.rejects(CodeTokenizer.train(['x'], 300.5), /got 300.5/);
  assert.throws(() => CodeTokenizer.fromJSON('{'), /not valid JSON/);
  assert.throws(() => CodeTokenizer.fromJSON('{}'), /not a byte-level BPE/);
  const broken = JSON.parse(tokenizer.toJSON());
  broken.added_tokens.pop();
  assert.throws(() => CodeTokenizer.fromJSON(JSON.stringify(broken)), /special token <\|pad\|> must have id 511/);
  await assert.rejects(CodeTokenizer.load('/nonexistent/tokenizer.json'), /cannot read tokenizer \/nonexistent\/tokenizer.json \(ENOENT\)/);
});

test('figures: training time and characters per token on the sample project', () => {
  const chars = texts.reduce((n, t) => n + t.length, 0);
  const tokens = texts.reduce((n, t) => n + tokenizer.encode(t).length, 0);
  const charsPerToken = chars / tokens;
  console.log(`# tokenizer 512: trained in ${trainMs.toFixed(0)} ms on ${chars} chars; ${charsPerToken.toFixed(2)} chars/token`);
  assert.ok(charsPerToken > 1.8, `chars/token ${charsPerToken}`); // bytes alone would be ~1.0
});
