// Decoding without a model: a toy tokenizer (GPT-2 pre-tokens, greedy longest match) and
// fake "next-token logits" functions — a script that emits fixed tokens, and an oracle that
// only knows the canonical tokenization of one text — exercise prompts, stops in the token loop
// and healing. The stop and clean-up rules on their own are in postprocess.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildPrompt,
  generate,
  pickToken,
  softmax,
  seededRandom,
  type DecodingTokenizer,
  type NextTokenLogits,
  type Prompt,
} from '../../models/src/infer/generate';
import { findStop, type CursorContext } from '../../models/src/infer/postprocess';

const PRETOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const MULTI = ['function', ' hello', ' hel', 'hel', 'lo', '()', ' {', '\n  ', '  ', '    ', ' return', 'return', ' world', 'const', ' x', ' =', 'console', '.log', '(x', ');'];
const SPECIALS = ['<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|code|>', '<|summary|>', '<|pad|>'];

class ToyTokenizer implements DecodingTokenizer {
  readonly pieces: string[];
  readonly vocabSize: number;
  readonly special;
  private readonly ids = new Map<string, number>();
  constructor() {
    const singles = ['\n', '\t', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))];
    this.pieces = [...singles, ...MULTI];
    this.pieces.forEach((p, i) => this.ids.set(p, i));
    const first = this.pieces.length;
    this.vocabSize = first + SPECIALS.length;
    this.special = { endOfText: first, fimPrefix: first + 1, fimMiddle: first + 2, fimSuffix: first + 3 };
  }
  id(piece: string): number {
    const id = this.ids.get(piece);
    if (id === undefined) throw new Error(`toy vocabulary has no "${piece}"`);
    return id;
  }
  encode(text: string): number[] {
    const out: number[] = [];
    for (const pre of text.match(PRETOKEN) ?? []) {
      for (let i = 0; i < pre.length; ) {
        let len = Math.min(10, pre.length - i);
        while (!this.ids.has(pre.slice(i, i + len))) len--;
        out.push(this.id(pre.slice(i, i + len)));
        i += len;
      }
    }
    return out;
  }
  tokenBytes(id: number): Uint8Array {
    return id < this.pieces.length ? new TextEncoder().encode(this.pieces[id]) : new Uint8Array(0);
  }
  decode(ids: number[]): string {
    return ids.map((id) => (id < this.pieces.length ? this.pieces[id] : '')).join('');
  }
}

const tok = new ToyTokenizer();
const plainPrompt: Prompt = { ids: [tok.special.endOfText], healBytes: new Uint8Array(0), fim: false };

/** Emits `script[k]` as the k-th generated token, whatever the context. */
function scripted(script: number[], promptLength: number): NextTokenLogits {
  return (tokens) => {
    const logits = new Float32Array(tok.vocabSize);
    logits[script[tokens.length - promptLength] ?? tok.id('#')] = 10;
    return logits;
  };
}

/** Knows only the canonical tokens of `target`: continues it from a canonical prefix, else says '#'. */
function oracle(target: string): NextTokenLogits {
  const canonical = tok.encode(target);
  return (tokens) => {
    const context = tokens[0] === tok.special.endOfText ? tokens.slice(1) : [...tokens];
    const onTrack = context.length <= canonical.length && context.every((id, i) => id === canonical[i]);
    const logits = new Float32Array(tok.vocabSize);
    logits[tok.id('#')] = 5;
    if (onTrack) logits[context.length < canonical.length ? canonical[context.length] : tok.special.endOfText] = 10;
    return logits;
  };
}

async function run(script: string[], ctx: CursorContext, maxTokens = 32) {
  const ids = script.map((p) => (p === '<|endoftext|>' ? tok.special.endOfText : tok.id(p)));
  const { meanLogProb: _mean, minLogProb: _min, phaseMs: _ms, ...result } = await generate({ next: scripted(ids, 1), tokenizer: tok, prompt: plainPrompt, maxTokens, blockSize: 256, ...ctx });
  return result;
}

test('line mode stops at the end of the line', async () => {
  const r = await run(['return', ' world', ';', '\n', '  ', 'x'], { mode: 'line', linePrefix: '  ', suffix: '' });
  assert.deepEqual(r, { text: 'return world;', tokens: 4, stopReason: 'endOfLine' });
});

test('block mode stops before a blank line', async () => {
  const r = await run(['\n', '  ', 'return', ' world', ';', '\n', '\n', 'x'], { mode: 'block', linePrefix: 'function f() {', suffix: '' });
  assert.deepEqual(r, { text: '\n  return world;', tokens: 7, stopReason: 'blankLine' });
});

test('block mode stops when the indentation drops below the starting level', async () => {
  const r = await run(['return', ' world', ';', '\n', '  ', '}', '\n'], { mode: 'block', linePrefix: '    ', suffix: '' });
  assert.deepEqual(r, { text: 'return world;', tokens: 6, stopReason: 'blockEnd' });
});

test('a bracket closing past balance ends the completion; left out when the suffix has it', async () => {
  const script = ['a', ',', ' ', 'b', ')', ';', '\n'];
  const withSuffix = await run(script, { mode: 'line', linePrefix: 'foo(', suffix: ')\n' });
  assert.deepEqual(withSuffix, { text: 'a, b', tokens: 5, stopReason: 'blockEnd' });
  const otherCloser = await run(script, { mode: 'line', linePrefix: 'foo(', suffix: ' + 1\n' });
  assert.deepEqual(otherCloser, { text: 'a, b)', tokens: 5, stopReason: 'blockEnd' });
  // At the end of a line the closer is part of the line, which goes on: `import { a } from './a';`
  const endOfLine = await run(script, { mode: 'line', linePrefix: 'foo(', suffix: '\n)' });
  assert.deepEqual(endOfLine, { text: 'a, b);', tokens: 7, stopReason: 'endOfLine' });
  const blockMode = await run(['a', ';', '\n', '}', '\n', 'x'], { mode: 'block', linePrefix: 'if (x) {', suffix: '\n}' });
  assert.deepEqual(blockMode, { text: 'a;', tokens: 4, stopReason: 'blockEnd' });
  // brackets opened inside the completion, or inside its strings, do not count
  assert.equal(findStop('f(a)[0] + ")"', { mode: 'line', linePrefix: '', suffix: '' }), null);
});

test('a decoder looping on a phrase stops there and shows the phrase once', async () => {
  const looping = await run(['x', ',', ' world', ',', ' world', ',', ' world', ',', ' world', ',', ' world'], { mode: 'line', linePrefix: 'f(', suffix: '\n' });
  assert.deepEqual(looping, { text: 'x, world', tokens: 7, stopReason: 'repeat' });
});

test('the token budget, <|endoftext|> and the context window end generation', async () => {
  const budget = await run(['a', 'b', 'c', 'd', 'e'], { mode: 'line', linePrefix: '', suffix: '' }, 3);
  assert.deepEqual(budget, { text: 'abc', tokens: 3, stopReason: 'budget' });
  const eot = await run(['a', 'b', '<|endoftext|>', 'c'], { mode: 'line', linePrefix: '', suffix: '' });
  assert.deepEqual(eot, { text: 'ab', tokens: 2, stopReason: 'endOfText' });
  const ids = ['a', 'b', 'c', 'd'].map((p) => tok.id(p));
  const context = await generate({ next: scripted(ids, 1), tokenizer: tok, prompt: plainPrompt, maxTokens: 10, blockSize: 3, mode: 'line', linePrefix: '', suffix: '' });
  assert.deepEqual({ text: context.text, tokens: context.tokens, stopReason: context.stopReason }, { text: 'ab', tokens: 2, stopReason: 'context' });
});

test('a block cut by the budget ends at its last whole line', async () => {
  const r = await run(['x', ' =', ' ', '1', ';', '\n', 'y', ' ='], { mode: 'block', linePrefix: '', suffix: '' }, 8);
  assert.deepEqual(r, { text: 'x = 1;', tokens: 8, stopReason: 'budget' });
});

test('specials other than <|endoftext|> are never emitted', async () => {
  const next: NextTokenLogits = () => {
    const logits = new Float32Array(tok.vocabSize);
    logits[tok.special.fimMiddle] = 20;
    logits[tok.id('z')] = 1;
    return logits;
  };
  const r = await generate({ next, tokenizer: tok, prompt: plainPrompt, maxTokens: 2, blockSize: 64, mode: 'line', linePrefix: '', suffix: '' });
  assert.equal(r.text, 'zz');
});

test('FIM prompt: <|endoftext|><|fim_prefix|>prefix<|fim_suffix|>suffix<|fim_middle|>, only when the model knows FIM', () => {
  const prefix = 'const x = ';
  const suffix = ';\nconsole.log(x);';
  const p = buildPrompt(tok, prefix, suffix, { blockSize: 64, maxTokens: 8, fim: true });
  assert.equal(p.fim, true);
  assert.deepEqual(p.ids.slice(0, 2), [tok.special.endOfText, tok.special.fimPrefix]);
  assert.equal(p.ids[p.ids.length - 1], tok.special.fimMiddle);
  const s = p.ids.indexOf(tok.special.fimSuffix);
  assert.deepEqual(p.ids.slice(s + 1, -1), tok.encode(suffix));
  assert.equal(tok.decode(p.ids.slice(2, s)) + new TextDecoder().decode(p.healBytes), prefix);

  const plain = buildPrompt(tok, prefix, suffix, { blockSize: 64, maxTokens: 8, fim: false });
  assert.equal(plain.fim, false);
  assert.ok(!plain.ids.includes(tok.special.fimSuffix));
  assert.equal(buildPrompt(tok, prefix, '  \n', { blockSize: 64, maxTokens: 8, fim: true }).fim, false);
});

test('the prompt fits the context minus the budget, and its start holds still while typing', () => {
  const line = 'console.log(x);\n';
  const prefix = line.repeat(120) + 'const x = hel';
  const opts = { blockSize: 64, maxTokens: 16, fim: false };
  const a = buildPrompt(tok, prefix, '', opts);
  const b = buildPrompt(tok, prefix + 'l', '', opts);
  // 64 - 16 tokens for the text before the cursor's line; that line may take half the budget's 16.
  assert.ok(a.ids.length <= 56 && a.ids.length >= 40, `prompt of ${a.ids.length} tokens`);
  assert.ok(b.ids.length <= 56);
  assert.deepEqual(b.ids.slice(0, a.ids.length - 1), a.ids.slice(0, -1));
  assert.throws(() => buildPrompt(tok, prefix, '', { blockSize: 64, maxTokens: 62, fim: false }), /leaves 2 of the 64-token context/);
});

test('typing a line deep in a long document: each prompt keeps all of the previous one but its healed end', () => {
  const prefix = 'function hello() {\n  return world;\n}\nconsole.log(x);\n'.repeat(200); // 10K characters
  const line = '  const x = hello() + world;'; // 10 tokens: within the 16 a line may take (half the 32 generated)
  const opts = { blockSize: 64, maxTokens: 32, fim: false };
  let previous = buildPrompt(tok, prefix, '', opts);
  for (let k = 1; k <= line.length; k++) {
    const prompt = buildPrompt(tok, prefix + line.slice(0, k), '', opts);
    let common = 0;
    while (common < previous.ids.length && prompt.ids[common] === previous.ids[common]) common++;
    assert.ok(common >= previous.ids.length - 4, `at "${line.slice(0, k)}": ${common} of ${previous.ids.length} tokens kept`);
    assert.ok(prompt.ids.length <= 32 + 16, `at "${line.slice(0, k)}": prompt of ${prompt.ids.length} tokens`);
    previous = prompt;
  }
  // A line longer than its room moves the window, in steps, and the prompt still fits.
  const long = buildPrompt(tok, prefix + '  x = ' + 'hello + '.repeat(40), '', opts);
  assert.ok(long.ids.length <= 48 && long.ids.length >= 24, `prompt of ${long.ids.length} tokens`);
});

test('token healing: a prompt cut mid-token completes as the uncut prompt would', async () => {
  const target = 'function hello() {\n  return world;\n}\n';
  const next = oracle(target);
  const complete = async (prefix: string, heal: boolean) => {
    const prompt = buildPrompt(tok, prefix, '', { blockSize: 128, maxTokens: 32, fim: false, heal });
    return (await generate({ next, tokenizer: tok, prompt, maxTokens: 32, blockSize: 128, mode: 'block', linePrefix: prefix.slice(prefix.lastIndexOf('\n') + 1), suffix: '' })).text;
  };
  const uncut = await complete('function hello', false);
  assert.equal(uncut, '() {\n  return world;\n}');
  assert.equal(await complete('function hel', true), 'lo' + uncut);
  assert.equal(await complete('function hello', true), uncut);
  // without healing the cut prompt is off the model's track ("hel" is never followed by "lo")
  assert.notEqual(await complete('function hel', false), 'lo' + uncut);
  // after indentation: the whitespace token is healed too, and the block ends at the dedent
  assert.equal(await complete('function hello() {\n  ', true), 'return world;');
});

test('token healing after indentation: the run reaches the model cut where training cut it', async () => {
  // 20 spaces take six toy tokens: more than healing may remove, so healing the whole run left
  // "\n" + 2 spaces + 4 spaces in the prompt, a split no training text ever had before code.
  const indent = ' '.repeat(20);
  const prefix = `function hello() {\n${indent}`;
  const next = oracle(`${prefix}return world;\n}\n`);
  const prompt = buildPrompt(tok, prefix, '\n}\n', { blockSize: 128, maxTokens: 16, fim: false });
  assert.equal(new TextDecoder().decode(prompt.healBytes), ' '); // the space that starts " return"
  assert.deepEqual(prompt.ids.slice(1), tok.encode(prefix.slice(0, -1)));
  const r = await generate({ next, tokenizer: tok, prompt, maxTokens: 16, blockSize: 128, mode: 'line', linePrefix: indent, suffix: '\n}\n' });
  assert.equal(r.text, 'return world;');
});

test('sampling: greedy by default, seeded and reproducible with a temperature, top-p keeps the head', () => {
  const probs = softmax(Float32Array.from([0, 2, 1.5, -Infinity]), new Float64Array(4)); // the last one ruled out
  assert.equal(probs[3], 0);
  assert.equal(pickToken(probs, 0, 0.9, Math.random), 1);
  const counts = [0, 0, 0, 0];
  const random = seededRandom(42);
  for (let i = 0; i < 2000; i++) counts[pickToken(probs, 1, 1, random)]++;
  assert.equal(counts[3], 0);
  // softmax of [0, 2, 1.5]: 0.078, 0.574, 0.348
  assert.ok(Math.abs(counts[1] / 2000 - 0.574) < 0.04 && Math.abs(counts[0] / 2000 - 0.078) < 0.03, `counts ${counts}`);
  const r1 = seededRandom(7), r2 = seededRandom(7);
  assert.deepEqual(Array.from({ length: 20 }, () => pickToken(probs, 1, 1, r1)), Array.from({ length: 20 }, () => pickToken(probs, 1, 1, r2)));
  const narrow = seededRandom(1);
  for (let i = 0; i < 200; i++) assert.equal(pickToken(probs, 1, 0.5, narrow), 1);
});

test('an aborted signal stops generation between tokens', async () => {
  const controller = new AbortController();
  let calls = 0;
  const next: NextTokenLogits = () => {
    if (++calls === 3) controller.abort();
    const logits = new Float32Array(tok.vocabSize);
    logits[tok.id('a')] = 1;
    return logits;
  };
  await assert.rejects(
    generate({ next, tokenizer: tok, prompt: plainPrompt, maxTokens: 10, blockSize: 64, mode: 'line', linePrefix: '', suffix: '', signal: controller.signal }),
    { name: 'AbortError' },
  );
  assert.equal(calls, 3);
});

test('confidence: the mean and minimum log-probability of the picked tokens, after masking', async () => {
  // Two picks with logit 10 against zeros elsewhere, then one with logit 2: log softmax by hand.
  const allowed = tok.vocabSize - (tok.vocabSize - tok.special.endOfText - 1); // specials other than <|endoftext|> are masked
  const picks = [tok.id('return'), tok.id(' world'), tok.id('\n')];
  const next: NextTokenLogits = (tokens) => {
    const logits = new Float32Array(tok.vocabSize);
    const k = tokens.length - 1;
    logits[picks[k]] = k < 2 ? 10 : 2;
    return logits;
  };
  const r = await generate({ next, tokenizer: tok, prompt: plainPrompt, maxTokens: 8, blockSize: 256, mode: 'line', linePrefix: '', suffix: '' });
  assert.equal(r.text, 'return world');
  const strong = 10 - Math.log(Math.exp(10) + allowed - 1);
  const weak = 2 - Math.log(Math.exp(2) + allowed - 1);
  assert.ok(Math.abs(r.minLogProb - weak) < 1e-6, `min ${r.minLogProb} vs ${weak}`);
  assert.ok(Math.abs(r.meanLogProb - (2 * strong + weak) / 3) < 1e-6, `mean ${r.meanLogProb}`);
});

test('a model that answers with probabilities decodes as one that answers with their logits', async () => {
  const picks = [tok.id('return'), tok.id(' world'), tok.id('\n')];
  const logitsAt = (tokens: readonly number[]) => {
    const logits = Float32Array.from({ length: tok.vocabSize }, (_, id) => Math.sin(id) - 3);
    logits[picks[Math.min(tokens.length - 1, 2)]] = 1.5;
    return logits;
  };
  const opts = { tokenizer: tok, prompt: plainPrompt, maxTokens: 8, blockSize: 256, mode: 'line' as const, linePrefix: '', suffix: '' };
  const fromLogits = await generate({ ...opts, next: logitsAt });
  const fromProbs = await generate({ ...opts, next: (tokens) => ({ probs: softmax(logitsAt(tokens), new Float64Array(tok.vocabSize)) }) });
  assert.equal(fromProbs.text, 'return world');
  assert.deepEqual([fromProbs.text, fromProbs.tokens, fromProbs.stopReason], [fromLogits.text, fromLogits.tokens, fromLogits.stopReason]);
  assert.ok(Math.abs(fromProbs.meanLogProb - fromLogits.meanLogProb) < 1e-6 && Math.abs(fromProbs.minLogProb - fromLogits.minLogProb) < 1e-6);
});

/**
 * A model that knows a few continuations, each with a probability: after the generated text `t`,
 * `table[t]` gives the next pieces' probabilities ('<eot>' for <|endoftext|>); the rest of the
 * vocabulary shares 1% between them.
 */
function branching(table: Record<string, Record<string, number>>): NextTokenLogits {
  return (tokens) => {
    const text = tok.decode([...tokens.slice(1)]);
    const known = table[text] ?? {};
    const logits = new Float32Array(tok.vocabSize).fill(Math.log(0.01 / tok.vocabSize));
    for (const [piece, p] of Object.entries(known)) logits[piece === '<eot>' ? tok.special.endOfText : tok.id(piece)] = Math.log(p);
    return logits;
  };
}

test('at a blank line, a completion that would show nothing takes the runner-up at its closest call', async () => {
  const opts = { tokenizer: tok, prompt: plainPrompt, maxTokens: 8, blockSize: 256, mode: 'line' as const, suffix: '\nfoo();' };
  // The model's best guess is a blank line; its runner-up is a line of code.
  const blankFirst = branching({ '': { '\n': 0.6, 'return': 0.3 }, 'return': { ';': 0.9 }, 'return;': { '\n': 0.9 } });
  assert.equal((await generate({ ...opts, next: blankFirst, linePrefix: '  ' })).text, 'return;');
  // A copy of the line above is not shown: the detour branches where the pick was closest.
  const copy = branching({ '': { 'x': 0.9 }, 'x': { ' =': 0.9 }, 'x =': { ' ': 0.9 }, 'x = ': { '1': 0.5, '2': 0.4 }, 'x = 1': { ';': 0.9 }, 'x = 2': { ';': 0.9 }, 'x = 1;': { '\n': 0.9 }, 'x = 2;': { '\n': 0.9 } });
  const r = await generate({ ...opts, next: copy, linePrefix: '', lineAbove: 'x = 1;' });
  assert.equal(r.text, 'x = 2;');
  assert.ok(Math.abs(r.minLogProb - Math.log(0.4 / 0.91)) < 1e-3, `the detour's confidence counts its runner-up: ${r.minLogProb}`);
  // A runner-up the model barely holds is no better than nothing.
  const unlikely = branching({ '': { '\n': 0.97, 'return': 0.02 }, 'return': { ';': 0.9 }, 'return;': { '\n': 0.9 } });
  assert.equal((await generate({ ...opts, next: unlikely, linePrefix: '  ' })).text, '');
});

test('a line with text that the model ends shows nothing: no detour there, nor in the middle of a line', async () => {
  const endsHere = branching({ '': { '\n': 0.6, ';': 0.3 }, ';': { '\n': 0.9 } });
  const opts = { tokenizer: tok, prompt: plainPrompt, maxTokens: 8, blockSize: 256, mode: 'line' as const, next: endsHere };
  assert.equal((await generate({ ...opts, linePrefix: '  foo()', suffix: '\nbar();' })).text, '');
  // With text after the cursor, a completion that repeats it is rightly hidden.
  const repeats = branching({ '': { ')': 0.6, 'x': 0.3 }, ')': { '\n': 0.9 }, 'x': { ')': 0.9 } });
  assert.equal((await generate({ ...opts, next: repeats, linePrefix: '  foo(', suffix: ')\nbar();' })).text, '');
  // Sampling never detours: its picks are not the model's best to begin with.
  const blankFirst = branching({ '': { '\n': 0.999, 'return': 0.0009 } });
  assert.equal((await generate({ ...opts, next: blankFirst, linePrefix: '  ', suffix: '', temperature: 0.5, seed: 1 })).text, '');
});

test('in the middle of a line, a beam shows the most probable line where greedy decoding committed too soon', async () => {
  // Greedy takes 'a' (0.5 against 0.45), then 'a1': 0.5 x 0.3 x 0.9. The line 'b;' is 0.45 x 0.9 x 0.9.
  const table = { '': { 'a': 0.5, 'b': 0.45 }, 'a': { '1': 0.3, '2': 0.3, '3': 0.3 }, 'a1': { '\n': 0.9 }, 'a2': { '\n': 0.9 }, 'a3': { '\n': 0.9 }, 'b': { ';': 0.9 }, 'b;': { '\n': 0.9 } };
  const opts = { tokenizer: tok, prompt: plainPrompt, maxTokens: 8, blockSize: 256, mode: 'line' as const, suffix: '\nbar();', next: branching(table) };
  const beamed = await generate({ ...opts, linePrefix: '  foo(' });
  assert.equal(beamed.text, 'b;');
  assert.ok(Math.abs(beamed.meanLogProb - Math.log((0.45 / 0.96) * (0.9 / 0.91) ** 2) / 3) < 1e-3, `the confidence is the shown path's: ${beamed.meanLogProb}`);
  assert.equal((await generate({ ...opts, linePrefix: '  foo(', beamWidth: 1 })).text, 'a1', 'a beam of 1 is greedy decoding');
  // From a line's start, and when sampling, decoding stays as it was.
  assert.equal((await generate({ ...opts, linePrefix: '  ' })).text, 'a1');
  assert.equal((await generate({ ...opts, linePrefix: '  foo(', mode: 'block' })).text, 'a1');
});

test('the beam pools the paths that show the same line, and never cuts short the greedy line it starts', async () => {
  // 'b' ends the line two ways (0.25 and 0.22): together, per token, more probable than 'a1' (0.28 in three tokens).
  const pooled = branching({ '': { 'a': 0.5, 'b': 0.46 }, 'a': { '1': 0.5, '2': 0.2, '3': 0.2 }, 'a1': { '\n': 0.9 }, 'b': { '\n': 0.5, '\n  ': 0.45 } });
  // A beam of 3 holds both of 'b''s paths.
  const opts = { tokenizer: tok, prompt: plainPrompt, maxTokens: 8, blockSize: 256, mode: 'line' as const, suffix: '\nbar();', linePrefix: '  foo(', beamWidth: 3 };
  assert.equal((await generate({ ...opts, next: pooled })).text, 'b');
  assert.equal((await generate({ ...opts, next: pooled, beamWidth: 1 })).text, 'a1');
  // The beam's best line is 'x' (0.9 x 0.45); greedy goes on to 'x; x', which starts with it and is shown.
  const longer = branching({ '': { 'x': 0.9 }, 'x': { ';': 0.5, '\n': 0.45 }, 'x;': { ' x': 0.2, ' =': 0.19, ' return': 0.18, '\n': 0.15 }, 'x; x': { '\n': 0.9 } });
  assert.equal((await generate({ ...opts, next: longer })).text, 'x; x');
});

test('the beam grows only paths more probable than the whole greedy line, and asks the model only for the paths that leave it, a step\'s together', async () => {
  const opts = { tokenizer: tok, prompt: plainPrompt, maxTokens: 8, blockSize: 256, mode: 'line' as const, suffix: '\nbar();', linePrefix: '  foo(' };
  const recorded = (table: Record<string, Record<string, number>>) => {
    const model = branching(table);
    const asked: string[] = [];
    const batches: string[][] = [];
    const next: NextTokenLogits = (tokens) => {
      asked.push(tok.decode([...tokens.slice(1)]));
      return model(tokens);
    };
    const prefetch = async (sequences: readonly (readonly number[])[]) => {
      batches.push(sequences.map((t) => tok.decode([...t.slice(1)])));
    };
    return { next, prefetch, asked, batches };
  };
  // Greedy's line 'x;' is 0.7 x 0.9 x 0.9; 'y' alone (0.25) is less probable than all of it: no path starts with it.
  const confident = recorded({ '': { 'x': 0.7, 'y': 0.25 }, 'x': { ';': 0.9, ',': 0.05 }, 'x;': { '\n': 0.9 }, 'y': { ';': 0.9 }, 'y;': { '\n': 0.9 } });
  assert.equal((await generate({ ...opts, next: confident.next, prefetch: confident.prefetch })).text, 'x;');
  assert.deepEqual(confident.asked, ['', 'x', 'x;'], 'greedy decoding\'s steps, each once; the beam reads them from it');
  assert.deepEqual(confident.batches, []);
  // Greedy's 'x1' is 0.5 x 0.3 x 0.9; 'y;' and 'y,' are both more probable, and leave greedy's path at the same step.
  const unsure = recorded({ '': { 'x': 0.5, 'y': 0.45 }, 'x': { '1': 0.3, '2': 0.3, '3': 0.3 }, 'x1': { '\n': 0.9 }, 'y': { ';': 0.5, ',': 0.45 }, 'y;': { '\n': 0.9 }, 'y,': { '\n': 0.9 } });
  assert.equal((await generate({ ...opts, next: unsure.next, prefetch: unsure.prefetch })).text, 'y;');
  assert.deepEqual(unsure.asked, ['', 'x', 'x1', 'y', 'y;', 'y,']);
  assert.deepEqual(unsure.batches, [['y;', 'y,']], 'a step with two paths to run offers them together first; one alone is just asked for');
});
