// Mining (code, summary) pairs, the definition at a line, doc comment formatting, the token layout,
// and the retrieval baseline. Fixtures in test/fixtures/summaries hold one small file per language
// with the tricky cases (licence headers, decorators, overloads, detached and commented-out code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { languageOf } from '../../models/src/data/sourceScanner';
import { summaryFromComment } from '../../models/src/data/docComments';
import { minePairs, summaryPromptTokens, summaryTrainingTokens, withoutDuplicates, type SummaryPair } from '../../models/src/data/summaryPairs';
import { findFunctionAt, formatDocComment } from '../../models/src/summaries/functionAt';
import { codeWords, evaluateRetrievalBaseline, jaccard, RetrievalBaseline } from '../../models/src/summaries/baseline';
import { smoothedBleu } from '../../models/src/summaries/textMetrics';
import { CodeTokenizer } from '../../models/src/data/tokenizer';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'summaries');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');
const named = (pairs: SummaryPair[]): [string | undefined, string][] => pairs.map((pair) => [pair.name, pair.summary]);
// The TypeScript sample is stored as .txt: tsc type-checks test/**/*.ts and fixture code need not compile.
const TS_SAMPLE = fixture('sample-ts.txt');

test('languageOf maps file names to VS Code language ids', () => {
  assert.equal(languageOf('src/a/b.ts'), 'typescript');
  assert.equal(languageOf('types/index.d.ts'), 'typescript');
  assert.equal(languageOf('App.TSX'), 'typescriptreact');
  assert.equal(languageOf('lib\\util.mjs'), 'javascript');
  assert.equal(languageOf('tool.py'), 'python');
  assert.equal(languageOf('main.rs'), 'rust');
  assert.equal(languageOf('Program.cs'), 'csharp');
  assert.equal(languageOf('run.sh'), 'shellscript');
  assert.equal(languageOf('Makefile'), undefined);
  assert.equal(languageOf('.bashrc'), undefined);
  assert.equal(languageOf('notes.md'), undefined);
});

test('TypeScript: functions, overloads, const arrows, classes, decorated methods and arrow properties', () => {
  const pairs = minePairs(TS_SAMPLE, 'typescript');
  assert.deepEqual(named(pairs), [
    ['add', 'Adds two numbers and returns their sum'],
    ['format', 'Formats a value as text, e.g. a number or a date'],
    ['parseConfig', 'Parses a configuration from JSON text'],
    ['double', 'The doubling arrow, without braces'],
    ['JobQueue', 'A queue of pending jobs'],
    ['push', 'Pushes a job onto the queue'],
    ['pop', 'Pops the next job, or undefined when the queue is empty'],
    ['onTick', 'Handles a tick with an arrow property'],
  ]);
  // Not mined: the licence header, the eslint directive, the comment cut off by a blank line, the
  // @deprecated-only comment, the plain constant, and size() under commented-out code.
  const byName = new Map(pairs.map((pair) => [pair.name, pair]));
  const add = byName.get('add')!;
  assert.equal(add.code, 'export function add(a: number, b: number): number {\n  return a + b;\n}');
  assert.equal(add.language, 'typescript');
  assert.equal(TS_SAMPLE.slice(add.docStart, add.docEnd), '/** Adds two numbers and returns their sum. More text here. */');
  assert.ok(TS_SAMPLE.slice(add.defStart).startsWith('export function add('));
  assert.equal(TS_SAMPLE.split('\n')[add.line], 'export function add(a: number, b: number): number {');
  // Overload signatures and the implementation are one definition, documented by the first comment.
  const format = byName.get('format')!;
  assert.equal(format.code.split('\n').filter((row) => row.startsWith('export function format(')).length, 3);
  assert.ok(format.code.endsWith("return `${braces}${String(value)}`;\n}"), format.code);
  // Decorators belong to the code; methods are dedented; the doc comment is not part of the code.
  assert.ok(byName.get('JobQueue')!.code.startsWith("@Injectable({\n  providedIn: 'root',\n})\nexport class JobQueue"));
  assert.equal(byName.get('push')!.code, '@Log()\npush(job: string): void {\n  if (job.length > 0) {\n    this.jobs.push(job);\n  }\n}');
  assert.equal(byName.get('double')!.code, 'const double = (x: number) => x * 2;');
  assert.equal(byName.get('onTick')!.code, "private onTick = (n: number): void => {\n  this.emit('tick', n);\n};");
  for (const pair of pairs) assert.ok(!pair.code.includes(TS_SAMPLE.slice(pair.docStart, pair.docEnd)), `${pair.name} code holds its doc comment`);
});

test('JavaScript lexing: braces inside strings, templates and regex literals do not end a body', () => {
  const text = [
    '/** Escapes braces in text. */',
    'function escape(s) {',
    "  const re = /[{}]/g; const t = `${s.replace(re, '}')}{`;",
    '  return t + "}";',
    '}',
    '/** Second function. */',
    'function second() { return 2; }',
    '/** Parses the input. */',
    'module.exports.parse = function (input) {',
    '  return input;',
    '};',
    '/** Not a function value. */',
    'module.exports.version = 3;',
  ].join('\n');
  const pairs = minePairs(text, 'javascript');
  assert.deepEqual(named(pairs), [['escape', 'Escapes braces in text'], ['second', 'Second function'], ['parse', 'Parses the input']]);
  assert.equal(pairs[2].code, 'module.exports.parse = function (input) {\n  return input;\n};');
  assert.equal(pairs[0].code.split('\n').length, 4);
  assert.equal(pairs[1].code, 'function second() { return 2; }');
});

test('TypeScript types and statements without semicolons end where they should', () => {
  const text = [
    '/** Adds one, no semicolons. */',
    'const inc = (x) => x + 1',
    'const other = 2',
    '/** A union type. */',
    'export type Shape =',
    "  | { kind: 'circle' }",
    "  | { kind: 'square' }",
    '/** Describes a point. */',
    'export interface Point<T extends { x: number }> {',
    '  x: number',
    '}',
    '/** Colours. */',
    'export const enum Colour { Red, Green }',
    '/** Returns a literal type. */',
    'function origin(): { x: number } {',
    '  return { x: 0 }',
    '}',
  ].join('\n');
  const pairs = minePairs(text, 'typescript');
  assert.deepEqual(pairs.map((pair) => [pair.name, pair.code.split('\n').length]), [['inc', 1], ['Shape', 3], ['Point', 3], ['Colour', 1], ['origin', 3]]);
  assert.deepEqual(pairs.map((pair) => findFunctionAt(text, 'typescript', pair.line).ok && pair.summary), [
    'Adds one, no semicolons', 'A union type', 'Describes a point', 'Colours', 'Returns a literal type',
  ]);
});

test('Python: docstrings, # blocks, decorators; headers, commented-out code and empty docstrings skipped', () => {
  const text = fixture('sample.py');
  const pairs = minePairs(text, 'python');
  assert.deepEqual(named(pairs), [
    ['add', 'Return the sum of a and b'],
    ['multiply', 'Multiply two numbers and return the product'],
    ['fib', 'Compute the n-th Fibonacci number'],
    ['Stack', 'A last-in, first-out stack of object items'],
    ['push', 'Push item onto the stack'],
    ['pop', 'Remove and return the top item'],
  ]);
  const byName = new Map(pairs.map((pair) => [pair.name, pair]));
  // The docstring is the summary, so it leaves the code.
  assert.equal(byName.get('add')!.code, 'def add(a, b):\n    total = a + b\n    return total');
  assert.ok(text.slice(byName.get('add')!.docStart, byName.get('add')!.docEnd).startsWith('"""Return the sum'));
  assert.ok(byName.get('fib')!.code.startsWith('@functools.lru_cache(maxsize=None)\ndef fib(n: int) -> int:\n    if n < 2:'));
  assert.equal(byName.get('pop')!.code, 'def pop(self):\n    return self.items.pop()');
  // A "def" inside a string is not a definition, and it does not end push's body.
  assert.ok(byName.get('push')!.code.endsWith('\n    self.items.append(item)'), byName.get('push')!.code);
  assert.equal(pairs.some((pair) => pair.name === 'not_a_function' || pair.name === 'divide' || pair.name === 'empty_doc'), false);
});

test('CRLF line endings and tab indentation mine the same pairs', () => {
  const python = fixture('sample.py');
  const expected = minePairs(python, 'python').map((pair) => [pair.name, pair.summary, pair.code]);
  const crlf = minePairs(python.replace(/\n/g, '\r\n'), 'python').map((pair) => [pair.name, pair.summary, pair.code]);
  assert.deepEqual(crlf, expected);
  // Tabs count as Python counts them (to the next multiple of 8), so a tab-indented body stays in.
  const tabs = minePairs(python.replace(/^((?:    )+)/gm, (m) => '\t'.repeat(m.length / 4)), 'python');
  assert.deepEqual(tabs.map((pair) => [pair.name, pair.summary, pair.code.replace(/\t/g, '    ')]), expected);
});

test('Rust, C#, Go, Java, C, shell and Ruby fixtures', () => {
  assert.deepEqual(named(minePairs(fixture('sample.rs'), 'rust')), [
    ['max_of', 'Returns the larger of two values'],
    ['Point', 'A point in the plane, see Point::norm'],
    ['norm', 'Computes the Euclidean norm of the point'],
    ['Shape', 'Shapes we can draw'],
    ['area', 'Area of the shape'],
  ]);
  assert.deepEqual(named(minePairs(fixture('Sample.cs'), 'csharp')), [
    ['Counter', 'Keeps a running System.Int32 total'],
    ['Add', 'Adds amount to the total'],
    ['Get', 'Gets the current total'],
  ]);
  assert.deepEqual(named(minePairs(fixture('sample.go'), 'go')), [
    ['Join', 'Join concatenates the parts with a separator'],
    ['Buffer', 'Buffer collects bytes'],
    ['Len', 'Len reports the number of bytes in the buffer'],
  ]);
  assert.deepEqual(named(minePairs(fixture('Sample.java'), 'java')), [
    ['Strings', 'Utility methods for strings'],
    ['isEmpty', 'Returns true if the string is null or empty'],
    ['reverse', 'Reverses the characters of s'],
  ]);
  assert.deepEqual(named(minePairs(fixture('sample.c'), 'c')), [
    ['clamp', 'Clamp a value into the range [lo, hi]'],
    ['greet', 'Print a greeting to standard output'],
    ['length_of', 'Length of a string, in bytes'],
  ]);
  assert.deepEqual(named(minePairs(fixture('sample.sh'), 'shellscript')), [
    ['log', 'Print a message to standard error'],
    ['count_args', 'Count the arguments given'],
  ]);
  assert.deepEqual(named(minePairs(fixture('sample.rb'), 'ruby')), [
    ['Account', 'A bank account with a balance'],
    ['deposit', 'Deposit money into the account'],
  ]);
  // Lifetimes ('a) are not char literals, and a '}' char literal does not close the body.
  const rust = minePairs(fixture('sample.rs'), 'rust');
  assert.equal(rust[0].code, "pub fn max_of<'a>(a: &'a i32, b: &'a i32) -> &'a i32 {\n    if a > b { a } else { b }\n}");
  assert.ok(rust[2].code.endsWith('.sqrt()\n}'));
  assert.ok(minePairs(fixture('Sample.cs'), 'csharp')[1].code.startsWith('[Obsolete("Use AddChecked")]\npublic void Add(int amount)\n{'));
});

test('summaryFromComment cleans tags, markup and whitespace and keeps the first sentence', () => {
  assert.equal(summaryFromComment('Parses a {@link Config | configuration}\n  from `JSON`   text. More.'), 'Parses a configuration from JSON text');
  assert.equal(summaryFromComment('Uses {@link Map} and {@linkcode Set}.'), 'Uses Map and Set');
  assert.equal(summaryFromComment('Returns <code>true</code> when x &lt; y, i.e. smaller.'), 'Returns true when x < y, i.e. smaller');
  assert.equal(summaryFromComment('Version 1.5 of the API. Second sentence.'), 'Version 1.5 of the API');
  assert.equal(summaryFromComment('@param x the value\n@returns nothing'), '');
  assert.equal(summaryFromComment('@deprecated use bar instead'), '');
  assert.equal(summaryFromComment('@description Loads the file.\n@param f file'), 'Loads the file');
  assert.equal(summaryFromComment('\\brief Clamp a value.', 'jsdoc'), 'Clamp a value');
  assert.equal(summaryFromComment('See [the docs](https://x.y/z) for **details**.', 'triple'), 'See the docs for details');
  assert.equal(summaryFromComment('Uses :func:`os.path.join` and ``repr``.', 'docstring'), 'Uses os.path.join and repr');
  assert.equal(summaryFromComment('Sort items\nin place.\n\nArgs:\n  items: the list', 'docstring'), 'Sort items in place');
  assert.equal(summaryFromComment('<summary>Adds <paramref name="x"/> once.</summary>', 'triple'), 'Adds x once');
  assert.equal(summaryFromComment('TODO: write docs'), '');
  assert.equal(summaryFromComment('Copyright 2026 Example Corp.'), '');
  assert.equal(summaryFromComment('(c) 2026 Example Corp. MIT.', 'line'), '');
  assert.equal(summaryFromComment('@license MIT'), '');
  assert.equal(summaryFromComment('Prints the license text.'), 'Prints the license text');
  assert.equal(summaryFromComment('eslint-disable-next-line no-console', 'line'), '');
  assert.equal(summaryFromComment('const x = compute(1);\nreturn x;', 'line'), '');
  assert.equal(summaryFromComment('   \n  \n'), '');
  assert.equal(summaryFromComment('word '.repeat(60)), '');
  assert.equal(summaryFromComment('word '.repeat(60), 'jsdoc', 100).split(' ').length, 60);
});

test('minePairs bounds the code and answers unknown or empty input with no pairs', () => {
  const body = Array.from({ length: 200 }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const text = `/** A long function. */\nfunction long() {\n${body}\n}\n`;
  const [pair] = minePairs(text, 'typescript', undefined, { maxCodeLines: 10 });
  assert.equal(pair.code.split('\n').length, 10);
  const [short] = minePairs(text, 'typescript', undefined, { maxCodeChars: 100 });
  assert.ok(short.code.length <= 100 && short.code.endsWith(';'), short.code);
  assert.equal(minePairs(text, 'typescript').pop()!.code.split('\n').length, 80);
  assert.deepEqual(minePairs(text, 'cobol'), []);
  assert.equal(minePairs(text, 'plaintext', 'src/x.ts').length, 1); // falls back on the file name
  assert.deepEqual(minePairs('', 'typescript'), []);
  assert.deepEqual(minePairs('\u0000\u0001 binary', 'python'), []);
});

test('findFunctionAt returns the innermost definition, its doc comment and where a new one goes', () => {
  const push = findFunctionAt(TS_SAMPLE, 'typescript', 62); // inside push's body
  assert.ok(push.ok);
  assert.equal(push.name, 'push');
  assert.equal(push.kind, 'method');
  assert.equal(push.startLine, 59); // the @Log() decorator
  assert.equal(push.endLine, 64);
  assert.equal(push.doc?.summary, 'Pushes a job onto the queue');
  assert.deepEqual(push.insert, { line: 59, indent: '  ', placement: 'above' });
  const onDoc = findFunctionAt(TS_SAMPLE, 'typescript', 58); // on push's doc comment
  assert.ok(onDoc.ok && onDoc.name === 'push');
  const size = findFunctionAt(TS_SAMPLE, 'typescript', 80);
  assert.ok(size.ok && size.name === 'size' && size.doc === undefined);
  const queue = findFunctionAt(TS_SAMPLE, 'typescript', 57); // between members: the class
  assert.ok(queue.ok && queue.name === 'JobQueue' && queue.kind === 'class');

  const python = fixture('sample.py');
  const inString = findFunctionAt(python, 'python', 47); // the "def" inside push's string
  assert.ok(inString.ok && inString.name === 'push');
  assert.deepEqual(inString.insert, { line: 45, indent: '        ', placement: 'bodyStart' });
  const init = findFunctionAt(python, 'python', 42);
  assert.ok(init.ok && init.name === '__init__' && init.kind === 'method' && init.doc === undefined);

  const notFound = findFunctionAt(TS_SAMPLE, 'typescript', 4);
  assert.ok(!notFound.ok && /no function, method or class encloses line 5/.test(notFound.reason));
  const oneLiner = findFunctionAt(python, 'python', 67);
  assert.ok(!oneLiner.ok && /one_liner at line 68 has its body on the header line/.test(oneLiner.reason));
  const cobol = findFunctionAt('x', 'cobol', 0);
  assert.ok(!cobol.ok && /unsupported language "cobol" \(supported: typescript/.test(cobol.reason));
  const empty = findFunctionAt('  \n', 'python', 0);
  assert.ok(!empty.ok && /empty/.test(empty.reason));
  const outside = findFunctionAt('def f():\n    pass\n', 'python', 9);
  assert.ok(!outside.ok && /line 9 \(0-based\) is outside the document, which has lines 0..2/.test(outside.reason));
});

test('formatDocComment writes the style of each language', () => {
  const text = (summary: string, languageId: string, indent: string, width?: number): string => {
    const result = formatDocComment(summary, languageId, indent, { width });
    assert.ok(result.ok, result.ok ? '' : result.reason);
    return result.text;
  };
  assert.equal(text('returns the sum', 'typescript', '  '), '  /** Returns the sum. */\n');
  assert.equal(text('closes */ early', 'java', ''), '/** Closes *\\/ early. */\n');
  assert.equal(text('one two three four five six', 'typescript', '', 24), '/**\n * One two three four\n * five six.\n */\n');
  assert.equal(text('Returns the sum!', 'rust', '    '), '    /// Returns the sum!\n');
  assert.equal(text('adds a < b', 'csharp', ''), '/// <summary>\n/// Adds a &lt; b.\n/// </summary>\n');
  assert.equal(text('join parts', 'go', '\t'), '\t// Join parts.\n');
  assert.equal(text('print it', 'shellscript', ''), '# Print it.\n');
  assert.equal(text('double the value', 'python', '    '), '    """Double the value."""\n');
  assert.equal(text('one two three four five six', 'python', '', 24), '"""One two three four\nfive six.\n"""\n');
  const empty = formatDocComment('   ', 'typescript', '');
  assert.ok(!empty.ok && /summary is empty/.test(empty.reason));
  const cobol = formatDocComment('x', 'cobol', '');
  assert.ok(!cobol.ok && /unsupported language "cobol"/.test(cobol.reason));
  const badIndent = formatDocComment('x', 'python', 'ab');
  assert.ok(!badIndent.ok && /indent must be spaces or tabs/.test(badIndent.reason));
});

test('a summary written at findFunctionAt insert point is mined back', () => {
  const cases: [string, string, number][] = [
    ['class A:\n    def f(self, x):\n        return x * 2\n', 'python', 2],
    ['class A {\n  f(x: number): number {\n    return x * 2;\n  }\n}\n', 'typescript', 2],
    ['impl A {\n    pub fn f(&self) -> u32 {\n        2\n    }\n}\n', 'rust', 2],
    ['package a\n\nfunc F() int {\n\treturn 2\n}\n', 'go', 3],
  ];
  for (const [source, languageId, line] of cases) {
    const at = findFunctionAt(source, languageId, line);
    assert.ok(at.ok, at.ok ? '' : at.reason);
    const comment = formatDocComment('double the value', languageId, at.insert.indent);
    assert.ok(comment.ok);
    const rows = source.split('\n');
    rows.splice(at.insert.line, 0, comment.text.replace(/\n$/, ''));
    const pairs = minePairs(rows.join('\n'), languageId);
    assert.deepEqual(named(pairs).pop(), [at.name, 'Double the value'], languageId);
  }
});

test('token layout: <|code|> code <|summary|> summary <|endoftext|> with the reserved ids', () => {
  // A byte-per-character stand-in for CodeTokenizer; the specials are the last ids as in the contract.
  const tokenizer = {
    encode: (text: string) => Array.from(text, (c) => c.charCodeAt(0) % 200),
    special: { code: 1004, summary: 1005, endOfText: 1000 },
  };
  assert.deepEqual(summaryTrainingTokens({ code: 'ab', summary: 'c' }, tokenizer, 16), [1004, 97, 98, 1005, 99, 1000]);
  // Too long: the summary keeps at most half the budget, the code loses its tail.
  const long = summaryTrainingTokens({ code: 'x'.repeat(50), summary: 'y'.repeat(50) }, tokenizer, 13);
  assert.equal(long.length, 13);
  assert.deepEqual(long, [1004, ...Array(5).fill(120), 1005, ...Array(5).fill(121), 1000]);
  assert.deepEqual(summaryPromptTokens('abcdef', tokenizer, 5), [1004, 97, 98, 99, 1005]);
  assert.throws(() => summaryTrainingTokens({ code: 'a', summary: 'b' }, tokenizer, 4), /maxTokens must be an integer >= 5, got 4/);
});

test('token layout with the real CodeTokenizer: specials as ids, code and summary decode back', async () => {
  const tokenizer = await CodeTokenizer.train([TS_SAMPLE, fixture('sample.py'), fixture('sample.rs')], 400);
  const pair = minePairs(fixture('sample.py'), 'python')[0];
  const ids = summaryTrainingTokens(pair, tokenizer, 256);
  const { code, summary, endOfText } = tokenizer.special;
  assert.equal(ids[0], code);
  assert.equal(ids[ids.length - 1], endOfText);
  const split = ids.indexOf(summary);
  assert.ok(split > 0 && ids.lastIndexOf(summary) === split);
  assert.equal(tokenizer.decode(ids.slice(1, split)), pair.code);
  assert.equal(tokenizer.decode(ids.slice(split + 1, -1)), pair.summary);
  // The markers as text stay text: they never turn into the reserved ids.
  assert.ok(!tokenizer.encode('<|code|> x <|summary|>').includes(code));
});

test('withoutDuplicates drops held-out code that training already holds, whitespace aside', () => {
  const train = [{ code: 'function a() {\n  return 1;\n}', summary: 'One' }];
  const heldOut = [
    { code: 'function a() { return 1; }', summary: 'One again' }, // a copy, laid out differently
    { code: 'function b() { return 2; }', summary: 'Two' },
    { code: 'function b() {\treturn 2; }', summary: 'Two again' }, // a copy within the held-out set
  ];
  assert.deepEqual(withoutDuplicates(heldOut, train).map((pair) => pair.summary), ['Two']);
  assert.deepEqual(withoutDuplicates([], train), []);
});

test('retrieval baseline: Jaccard over identifier words picks the nearest training summary', () => {
  assert.deepEqual([...codeWords('function getUserName(user_id) { return HTTPServer; }')].sort(), [
    'get', 'getusername', 'http', 'httpserver', 'id', 'name', 'server', 'user', 'user_id',
  ].sort());
  assert.equal(jaccard(new Set(['a', 'b', 'c']), new Set(['b', 'c', 'd'])), 2 / 4);
  assert.equal(jaccard(new Set(), new Set()), 0);
  const train = [
    { code: 'function readConfigFile(path) { return fs.readFileSync(path); }', summary: 'Reads the config file' },
    { code: 'function sumNumbers(values) { return values.reduce((a, b) => a + b); }', summary: 'Sums the numbers' },
    { code: 'function other() {}', summary: 'Sums the numbers' },
  ];
  const baseline = new RetrievalBaseline(train);
  const hit = baseline.predict('function readSettingsFile(filePath) { return fs.readFileSync(filePath); }');
  assert.equal(hit.summary, 'Reads the config file');
  assert.equal(hit.index, 0);
  // Query words: readsettingsfile read settings file filepath path fs readfilesync sync (9); training
  // pair 0: readconfigfile read config file path fs readfilesync sync (8); shared: read file path fs readfilesync sync (6).
  assert.equal(hit.score, 6 / (9 + 8 - 6));
  // No shared word: the most common training summary, index -1.
  assert.deepEqual(baseline.predict('zzz qqq'), { summary: 'Sums the numbers', score: 0, index: -1 });
  assert.throws(() => new RetrievalBaseline([]), /no training pairs/);
});

test('retrieval baseline on mined fixture pairs is scored with BLEU and ROUGE-L', () => {
  const train = minePairs(fixture('sample.py'), 'python');
  const heldOut = [{ code: 'def add_all(a, b, c):\n    total = a + b + c\n    return total', summary: 'Return the sum of a, b and c' }];
  const scores = evaluateRetrievalBaseline(train, heldOut);
  assert.deepEqual(scores.predictions, ['Return the sum of a and b']);
  assert.equal(scores.count, 1);
  assert.equal(scores.bleu, smoothedBleu('Return the sum of a and b', 'Return the sum of a, b and c'));
  // LCS "return the sum of a and" = 6 of 7 predicted and 9 reference tokens; F with beta 1.2.
  const precision = 6 / 7;
  const recall = 6 / 9;
  assert.ok(Math.abs(scores.rougeL - ((2.44 * precision * recall) / (recall + 1.44 * precision)) * 100) < 1e-9, `rougeL ${scores.rougeL}`);
  assert.equal(scores.exactMatch, 0);
});
