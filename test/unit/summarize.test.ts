// Summaries end to end: documented definitions mixed into the training stream at summaryRate
// (counted by their <|code|> markers, laid out as their own documents), the greedy decoding loop
// and its stop rules on a fake model, a tiny model trained here that summarizes and stops, the
// `summaries` section of eval.json next to the retrieval baseline, and `wlm summarize` errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanFolder, type SourceFile } from '../../models/src/data/files';
import { CodeTokenizer } from '../../models/src/data/tokenizer';
import { tokenizeFiles, openTokenStream } from '../../models/src/data/dataset';
import { minePairs } from '../../models/src/data/summaryPairs';
import { summarize, summarizeWith, cleanSummary, repeatingTokens, DEFAULT_SUMMARY_TOKENS } from '../../models/src/summaries/summarize';
import { evaluateSummaries, minePairsFromFiles } from '../../models/src/eval/summaryEval';
import { trainOnFolder } from '../../models/src/pipeline';
import { evaluateFolder } from '../../models/src/eval/evaluateFolder';
import { wlm, assertCleanError } from './cliRunner';
import { formatEvalTable, type EvalReport } from '../../models/src/eval/report';

const VERBS = ['Adds', 'Removes', 'Finds', 'Counts', 'Sorts', 'Copies'];
const NOUNS = ['item', 'user', 'order', 'token', 'file', 'node', 'value', 'entry'];
const FILES = 24;
const FUNCTIONS_PER_FILE = 4; // each documented: FILES * FUNCTIONS_PER_FILE pairs in all

/** One documented TypeScript function; the summary follows from the name, as in real code. */
function documentedFunction(verb: string, noun: string, i: number): string {
  const name = `${verb.toLowerCase().replace(/s$/, '')}${noun[0].toUpperCase()}${noun.slice(1)}${i}`;
  return [
    `/** ${verb} the ${noun} in the list. */`,
    `export function ${name}(list: ${noun}[], ${noun}: ${noun}): number {`,
    `  let count = 0;`,
    `  for (const other of list) {`,
    `    if (other === ${noun}) count += ${i % 7};`,
    `  }`,
    `  return count;`,
    `}`,
    '',
  ].join('\n');
}

let dir = '';
let project = '';
let files: SourceFile[];
let tokenizer: CodeTokenizer;
let modelDir = '';

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-summarize-'));
  project = path.join(dir, 'project');
  await fs.mkdir(path.join(project, 'src'), { recursive: true });
  for (let f = 0; f < FILES; f++) {
    const parts: string[] = [`// module ${f}\n`];
    for (let k = 0; k < FUNCTIONS_PER_FILE; k++) {
      const i = f * FUNCTIONS_PER_FILE + k;
      parts.push(documentedFunction(VERBS[i % VERBS.length], NOUNS[(i * 3) % NOUNS.length], i));
    }
    await fs.writeFile(path.join(project, 'src', `module${f}.ts`), parts.join('\n'));
  }
  await fs.writeFile(path.join(project, 'notes.txt'), 'plain text, no language the summarizer knows\n');
  files = (await scanFolder(project)).files.filter((f) => f.relPath.endsWith('.ts'));
  tokenizer = await CodeTokenizer.train(files.map((f) => readFileSync(f.absPath, 'utf8')), 512);
});

after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function count(ids: Int32Array, id: number): number {
  let n = 0;
  for (const x of ids) if (x === id) n++;
  return n;
}

test('summary examples are mixed into the token stream at summaryRate, as their own documents', async () => {
  const minedPerFile = minePairs(readFileSync(files[0].absPath, 'utf8'), 'typescript', files[0].relPath).length;
  assert.equal(minedPerFile, FUNCTIONS_PER_FILE, 'the fixture mines one pair per function');
  const total = FILES * FUNCTIONS_PER_FILE;
  const s = tokenizer.special;
  const streams = new Map<number, Int32Array>();
  for (const rate of [0, 0.5, 1]) {
    const out = path.join(dir, `rate-${rate}.bin`);
    const result = await tokenizeFiles(files, tokenizer, out, { summaryRate: rate, blockSize: 64, seed: 7 });
    const stream = openTokenStream(out);
    const ids = stream.read(0, stream.length);
    streams.set(rate, ids);
    const mixed = result.summaries?.mixed ?? 0;
    assert.equal(result.summaries?.mined ?? 0, rate > 0 ? total : 0);
    assert.equal(count(ids, s.code), mixed, `rate ${rate}: one <|code|> marker per mixed pair`);
    assert.equal(count(ids, s.summary), mixed);
    assert.equal(count(ids, s.endOfText), FILES + mixed, 'each example is a document of its own');
    assert.equal(result.tokens, stream.length);
    if (rate === 1) assert.equal(mixed, total);
    if (rate === 0.5) {
      // Binomial(96, 0.5): 48 ± 4 standard deviations.
      assert.ok(mixed >= 28 && mixed <= 68, `rate 0.5 mixed ${mixed} of ${total}`);
    }
  }
  // Rate 0 leaves the stream exactly as without the option.
  const plain = path.join(dir, 'plain.bin');
  await tokenizeFiles(files, tokenizer, plain, { seed: 7 });
  const plainStream = openTokenStream(plain);
  assert.deepEqual(plainStream.read(0, plainStream.length), streams.get(0));

  // Layout: <|endoftext|> <|code|> code <|summary|> summary, then the next document's <|endoftext|>,
  // within one window of blockSize + 1 tokens; the summary decodes to the doc comment's sentence.
  const ids = Array.from(streams.get(1)!);
  let examples = 0;
  for (let i = ids.indexOf(s.code); i >= 0; i = ids.indexOf(s.code, i + 1)) {
    assert.equal(ids[i - 1], s.endOfText);
    const marker = ids.indexOf(s.summary, i);
    const end = ids.indexOf(s.endOfText, marker);
    assert.ok(end - (i - 1) <= 64, `example of ${end - i + 1} tokens exceeds the window`);
    const summary = tokenizer.decode(ids.slice(marker + 1, end));
    assert.match(summary, /^(Adds|Removes|Finds|Counts|Sorts|Copies) the \w+ in the list$/);
    assert.match(tokenizer.decode(ids.slice(i + 1, marker)), /^export function \w+\(list: \w+\[\]/);
    examples++;
  }
  assert.equal(examples, FILES * FUNCTIONS_PER_FILE);

  await assert.rejects(tokenizeFiles(files, tokenizer, path.join(dir, 'x.bin'), { summaryRate: 0.5 }), /summaryRate 0.5 needs the model's blockSize/);
  await assert.rejects(tokenizeFiles(files, tokenizer, path.join(dir, 'x.bin'), { summaryRate: 2, blockSize: 64 }), /summaryRate must be in \[0, 1\], got 2/);
});

test('cleanSummary: one line, no comment markers or tags, no final period', () => {
  assert.equal(cleanSummary('  Adds the   item to the list.\nexport function'), 'Adds the item to the list');
  assert.equal(cleanSummary('/** Adds two numbers */'), 'Adds two numbers');
  assert.equal(cleanSummary(' * Returns the sum @param a first'), 'Returns the sum');
  assert.equal(cleanSummary('Reads \uFFFD'), 'Reads');
  assert.equal(cleanSummary('\n'), '');
});

/** A fake model that spells out `script` (token ids), one per call, then always `after`. */
function scripted(script: number[], after: number, vocabSize: number, loud?: number) {
  const calls: number[][] = [];
  const next = (tokens: readonly number[]) => {
    calls.push(tokens.slice());
    const logits = new Float32Array(vocabSize).fill(-10);
    const step = calls.length - 1;
    logits[step < script.length ? script[step] : after] = 5;
    if (loud !== undefined) logits[loud] = 50; // a special token the model must never emit
    return logits;
  };
  return { next, calls };
}

test('repeatingTokens: the tokens that would close an n-gram already generated', () => {
  assert.deepEqual([...repeatingTokens([1, 2, 3, 1, 2], 3)], [3]);
  assert.deepEqual([...repeatingTokens([1, 2, 1, 2, 4, 1, 2], 3)], [1, 4]);
  assert.deepEqual([...repeatingTokens([1, 2, 3], 1)], [1, 2, 3]);
  assert.deepEqual([...repeatingTokens([1, 2], 3)], []);
  assert.deepEqual([...repeatingTokens([1, 1, 1], 0)], []);
});

test('summarizeWith: greedy until <|endoftext|>, a newline or the budget; specials never emitted', async () => {
  const s = tokenizer.special;
  const words = tokenizer.encode(' Adds the item');
  const byEnd = scripted(words, s.endOfText, tokenizer.vocabSize, s.pad);
  const ended = await summarizeWith(byEnd.next, tokenizer, 'function f() {}', { blockSize: 64 });
  assert.equal(ended.summary, 'Adds the item');
  assert.equal(ended.stopReason, 'endOfText');
  assert.equal(ended.tokens, words.length);
  // The prompt is <|code|> code <|summary|>, and each call extends it by the token picked.
  const prompt = byEnd.calls[0];
  assert.deepEqual(prompt, [s.code, ...tokenizer.encode('function f() {}'), s.summary]);
  assert.equal(ended.promptTokens, prompt.length);
  assert.deepEqual(byEnd.calls[1], [...prompt, words[0]]);

  const newline = tokenizer.encode('\n')[0];
  const byLine = scripted([...words, newline], newline, tokenizer.vocabSize);
  const cut = await summarizeWith(byLine.next, tokenizer, 'x', { blockSize: 64 });
  assert.equal(cut.summary, 'Adds the item');
  assert.equal(cut.stopReason, 'newline');

  const word = tokenizer.encode('item')[0];
  assert.match(tokenizer.decode([word]), /^\w+$/);
  const chatty = scripted([], word, tokenizer.vocabSize);
  const long = await summarizeWith(chatty.next, tokenizer, 'x', { blockSize: 64, maxTokens: 5, noRepeatNgram: 0 });
  assert.equal(long.stopReason, 'budget');
  assert.equal(long.tokens, 5);
  assert.equal(long.summary, tokenizer.decode([word]).repeat(5));
  // By default a 3-gram is never repeated: the loop ends after "w w w" where the next best is <|endoftext|>.
  const looped = await summarizeWith(scripted([], word, tokenizer.vocabSize).next, tokenizer, 'x', { blockSize: 64, maxTokens: 5 });
  assert.equal(looped.tokens, 3);
  assert.equal(looped.stopReason, 'endOfText');

  // Long code is cut so that prompt + budget fit the context.
  const big = scripted([], s.endOfText, tokenizer.vocabSize);
  await summarizeWith(big.next, tokenizer, 'let x = 1;\n'.repeat(200), { blockSize: 64 });
  assert.equal(big.calls[0].length, 64 - DEFAULT_SUMMARY_TOKENS);
  await assert.rejects(summarizeWith(big.next, tokenizer, 'x', { blockSize: 20 }), /context \(20 tokens\) leaves no room/);

  const controller = new AbortController();
  controller.abort();
  await assert.rejects(summarizeWith(big.next, tokenizer, 'x', { blockSize: 64, signal: controller.signal }), { name: 'AbortError' });
});

test('a tiny model trained with summary examples summarizes and stops; eval.json gets a summaries section', async () => {
  modelDir = path.join(dir, 'model');
  const { config } = await trainOnFolder({ folder: project, outDir: modelDir, preset: 'tiny', steps: 40, summaryRate: 1 });
  assert.equal(config.train.summaryRate, 1);
  const recorded = JSON.parse(readFileSync(path.join(modelDir, 'config.json'), 'utf8')).data.summaryPairs;
  assert.ok(recorded.mined > 0 && recorded.mixed === recorded.mined && recorded.tokens > recorded.mixed * 5, JSON.stringify(recorded));

  const result = await summarize(modelDir, 'export function addItem(list: item[], item: item): number {\n  return list.length;\n}');
  assert.equal(typeof result.summary, 'string');
  assert.ok(result.tokens >= 0 && result.tokens <= DEFAULT_SUMMARY_TOKENS, `tokens ${result.tokens}`);
  assert.ok(['endOfText', 'newline', 'budget'].includes(result.stopReason));
  assert.doesNotMatch(result.summary, /\n/);
  assert.equal(result.trainedForSummaries, true);
  assert.ok(result.ms > 0);

  const report: EvalReport = await evaluateFolder({ modelDir, lines: 4, tokens: 128 });
  const section = report.summaries!;
  assert.ok(section, 'the report has a summaries section');
  assert.ok(section.pairs.heldOut > 0 && section.pairs.train > 0, JSON.stringify(section.pairs));
  assert.equal(section.pairs.evaluated, section.pairs.heldOut - section.pairs.duplicates);
  for (const side of [section.model!, section.baseline!]) {
    assert.equal(side.count, section.pairs.evaluated);
    for (const score of [side.bleu, side.rougeL, side.exactMatch]) assert.ok(score >= 0 && score <= 100, `score ${score}`);
  }
  // Retrieval finds a training function with the same verb and noun, whose summary is identical.
  assert.ok(section.baseline!.rougeL > 50, `retrieval ROUGE-L ${section.baseline!.rougeL}`);
  assert.equal(section.model!.latency.count, section.pairs.evaluated);
  assert.ok(section.examples.length > 0 && section.examples.every((e) => typeof e.model === 'string' && e.reference !== ''));
  const written = JSON.parse(readFileSync(path.join(modelDir, 'eval.json'), 'utf8')) as EvalReport;
  assert.deepEqual(written.summaries!.model!.bleu, section.model!.bleu);
  assert.ok(written.model.nextToken.tokens > 0, 'the completion figures are still there');
  assert.match(formatEvalTable(report), /summary BLEU-4 \(baseline: retrieval\)/);
});

test('evaluateSummaries: held-out copies of training code are left out; no pairs says why', async () => {
  const pairs = await minePairsFromFiles(files);
  assert.equal(pairs.length, FILES * FUNCTIONS_PER_FILE);
  const next = scripted([], tokenizer.special.endOfText, tokenizer.vocabSize).next;
  const base = { next, tokenizer, blockSize: 64, modelName: 'fake', summaryRate: 0 };
  const copies = await evaluateSummaries({ ...base, trainPairs: pairs, heldOutPairs: pairs.slice(0, 5) });
  assert.equal(copies.pairs.duplicates, 5);
  assert.equal(copies.model, null);
  assert.match(copies.note!, /all 5 held-out documented functions also occur in the training files/);
  const none = await evaluateSummaries({ ...base, trainPairs: pairs, heldOutPairs: [] });
  assert.match(none.note!, /no documented functions in the held-out files/);
  const scored = await evaluateSummaries({ ...base, trainPairs: pairs.slice(10), heldOutPairs: pairs.slice(0, 10), maxPairs: 4 });
  assert.equal(scored.pairs.evaluated, 4);
  assert.equal(scored.model!.exactMatch, 0, 'an empty summary matches nothing');
  assert.equal(scored.model!.rougeL, 0);
  assert.ok(scored.baseline!.exactMatch > 0, 'retrieval finds same-verb, same-noun functions');
});



test('wlm summarize: prints the summary and its doc comment; one-line errors for bad input', () => {
  assert.ok(modelDir, 'needs the model trained above');
  const file = path.join(project, 'src', 'module0.ts');
  const ok = wlm('summarize', modelDir, `${file}:4`, '--json');
  assert.equal(ok.code, 0, ok.stderr);
  const out = JSON.parse(ok.stdout) as { summary: string; name: string; kind: string; insertLine: number; docComment: string | null };
  assert.equal(out.name, 'addItem0');
  assert.equal(out.kind, 'function');
  assert.equal(out.insertLine, 4, 'the doc comment goes before the definition\'s first line (1-based)');
  if (out.summary) assert.match(out.docComment!, /^\/\*\* .+\. \*\/\n$/);

  assertCleanError(wlm('summarize', modelDir, path.join(project, 'notes.txt') + ':1'), /cannot summarize notes\.txt: unsupported language \(supported: typescript/);
  assertCleanError(wlm('summarize', modelDir, `${file}:1`), /module0\.ts:1: no function, method or class encloses line 1/);
  assertCleanError(wlm('summarize', modelDir, `${file}:999`), /line 999 is outside .*module0\.ts \(it has 38 lines\)/);
  assertCleanError(wlm('summarize', modelDir, file), /expected <file>:<line> \(1-based\)/);
  assertCleanError(wlm('summarize', modelDir, path.join(project, 'missing.ts') + ':3'), /cannot read .*missing\.ts/);
  assertCleanError(wlm('summarize', path.join(dir, 'no-model'), `${file}:4`), /model folder not found/);
  assertCleanError(wlm('train', project, '--summary-rate', '1.5'), /--summary-rate must be a number in \[0, 1\], got "1.5"/);
});
