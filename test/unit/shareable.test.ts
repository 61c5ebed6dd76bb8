// What a model folder reveals, checked on a completed `wlm train` of the sample project: no token
// files and no resume state in it or beside it; no file of it holds a long line of the training
// code as bytes; the n-gram does hold the code (decoded through the tokenizer it completes lines of
// the training files verbatim, and not those of the held-out files); `wlm export --shareable`
// leaves the n-gram and the mixture out, says so, and the copy still completes code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { wlm, assertCleanError } from './cliRunner';
import { NGramModel } from '../../models/src/infer/ngram';
import { CodeTokenizer } from '../../models/src/data/tokenizer';
import { scanFolder, type SourceFile } from '../../models/src/data/files';
import { splitFiles } from '../../models/src/data/dataset';
import { readModelConfig } from '../../models/src/model/checkpoint';

const root = path.resolve(__dirname, '..', '..');
const sample = path.join(root, 'test', 'fixtures', 'sample-project');
const LONG = 24; // characters (trimmed): a line this long is the code's own, not a common fragment
let scratch = '';
let model = '';

before(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'wlm-shareable-'));
  model = path.join(scratch, 'models', 'm');
  const trained = wlm('train', sample, '--preset', 'tiny', '--steps', '30', '--out', model);
  assert.equal(trained.code, 0, trained.stderr);
});
after(() => rmSync(scratch, { recursive: true, force: true }));

const filesIn = (dir: string): string[] => readdirSync(dir, { recursive: true }).map(String).filter((f) => statSync(path.join(dir, f)).isFile()).sort();

async function split(): Promise<{ train: SourceFile[]; val: SourceFile[] }> {
  const config = await readModelConfig(model);
  return splitFiles((await scanFolder(sample)).files, config.train.valFraction, config.train.seed);
}

/** Files of `dir` holding a long line of `files` as bytes (JSON-escaped too); `except` not searched. */
function verbatimLines(dir: string, files: SourceFile[], except: string[] = []): string[] {
  const lines = new Set(files.flatMap((f) => readFileSync(f.absPath, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.length >= LONG)));
  assert.ok(lines.size > 100, `only ${lines.size} long lines to look for`);
  const found: string[] = [];
  for (const file of filesIn(dir).filter((f) => !except.includes(f))) {
    const bytes = readFileSync(path.join(dir, file));
    for (const line of lines) if (bytes.includes(line) || bytes.includes(JSON.stringify(line).slice(1, -1))) found.push(`${file}: ${line}`);
  }
  return found;
}

/**
 * Of the long lines of `files`, how many the n-gram completes verbatim for 20+ characters from a
 * third of the way in, decoding greedily: what it holds, followed token by token (a beam stops
 * sooner, where some line of the training files ended).
 */
async function ngramRecall(ngram: NGramModel, tokenizer: CodeTokenizer, files: SourceFile[]): Promise<{ lines: number; recalled: number }> {
  let lines = 0;
  let recalled = 0;
  for (const file of files) {
    const text = readFileSync(file.absPath, 'utf8');
    let offset = 0;
    for (const line of text.split('\n')) {
      const trimmed = line.trim();
      if (trimmed.length >= 40) {
        const cut = offset + line.length - trimmed.length + Math.floor(trimmed.length / 3);
        const want = text.slice(cut, offset + line.length);
        const { text: got } = await ngram.complete(tokenizer, text.slice(0, cut), text.slice(offset + line.length), { blockSize: 128, maxTokens: 64, beamWidth: 1 });
        let same = 0;
        while (same < want.length && got[same] === want[same]) same++;
        lines++;
        if (same >= 20) recalled++;
      }
      offset += line.length + 1;
    }
  }
  return { lines, recalled };
}

test('a completed wlm train: no token files or resume state, in the model folder or beside it', () => {
  const files = filesIn(model);
  assert.deepEqual(files.filter((f) => f.endsWith('.bin')), ['ngram.bin', 'weights.bin'], files.join(', '));
  assert.ok(!files.some((f) => f.startsWith('data') || f.startsWith('resume')), files.join(', '));
  assert.deepEqual(readdirSync(path.dirname(model)), ['m'], 'no run cache left beside it, and no lock');
});

test('no file of the model folder holds a long line of the code; the n-gram holds the training code, decoded', async () => {
  const { train, val } = await split();
  assert.deepEqual(verbatimLines(model, [...train, ...val]), [], 'no long source line in any file, as bytes');
  // ngram.bin stores token ids, so a byte search finds nothing in it either: the claim that it holds
  // the code is checked by decoding. Lines of the training files come back verbatim; held-out ones do not.
  const ngram = await NGramModel.load(path.join(model, 'ngram.bin'));
  const tokenizer = await CodeTokenizer.load(path.join(model, 'tokenizer.json'));
  const seen = await ngramRecall(ngram, tokenizer, train);
  const heldOut = await ngramRecall(ngram, tokenizer, val);
  assert.ok(seen.lines > 100 && heldOut.lines > 10, JSON.stringify({ seen, heldOut }));
  assert.ok(seen.recalled / seen.lines > 0.3, `the n-gram completes ${seen.recalled} of ${seen.lines} training lines verbatim for 20+ characters`);
  assert.ok(heldOut.recalled / heldOut.lines < 0.1, `and ${heldOut.recalled} of ${heldOut.lines} held-out lines`);
});

test('wlm export --shareable: the n-gram and the mixture left out and said, the paths replaced, the copy completes', async () => {
  const out = path.join(scratch, 'shared');
  const exported = wlm('export', model, '--shareable', '--out', out, '--json');
  assert.equal(exported.code, 0, exported.stderr);
  const copy = JSON.parse(exported.stdout) as { copied: string[]; leftOut: { file: string; why: string }[] };
  assert.deepEqual(copy.copied, ['config.json', 'metrics.jsonl', 'model.json', 'model.onnx', 'tokenizer.json', 'weights.bin']);
  assert.deepEqual(copy.leftOut.map((l) => l.file), ['mixture.json', 'ngram.bin']);
  assert.match(copy.leftOut[1].why, /verbatim/);
  assert.deepEqual(filesIn(out), copy.copied);
  const { train, val } = await split();
  assert.deepEqual(verbatimLines(out, [...train, ...val]), []);
  const config = await readModelConfig(out);
  assert.equal(config.data.root, 'sample-project', "the workspace's path gives way to its folder name");
  assert.ok(!readFileSync(path.join(out, 'config.json'), 'utf8').includes(sample));

  const said = wlm('export', model, '--shareable', '--out', path.join(scratch, 'shared-2'));
  assert.equal(said.code, 0, said.stderr);
  assert.match(said.stdout, /left out ngram\.bin: the workspace n-gram/);
  assert.match(said.stderr, /can still reproduce fragments/);

  const completed = wlm('complete', out, `${path.join(sample, 'src', 'queue.ts')}:12:5`, '--json');
  assert.equal(completed.code, 0, completed.stderr);
  assert.equal(typeof JSON.parse(completed.stdout).text, 'string');
  assert.equal(existsSync(path.join(out, 'ngram.bin')), false, 'serving did not bring the n-gram back');

  assertCleanError(wlm('export', model, '--shareable'), /--shareable writes its copy to --out DIR: pass both/);
  assertCleanError(wlm('export', model, '--out', path.join(scratch, 'x')), /pass both/);
  assertCleanError(wlm('export', model, '--shareable', '--out', out), /already exists; a shareable copy goes into a new folder/);
});
