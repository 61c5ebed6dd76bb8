// The file scanner on test/fixtures/files (plus what git cannot store: .git, node_modules, dist,
// a symlink): every skip reason counted, nested .gitignore honoured, secret files never opened,
// broken UTF-8 survived. What is scrubbed from the files it reads: secrets.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, statSync } from 'node:fs';
import * as nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanFolder, readSourceText, readSourceTextWithReason, type ScanResult } from '../../models/src/data/files';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'files');
const SAMPLE = path.join(__dirname, '..', 'fixtures', 'sample-project');
const OPTIONS = { exclude: ['vendor/', '*.spec.ts'], maxFileBytes: 4096 };

let root: string;
let scan: ScanResult;
const opened: string[] = [];
const realReadFile = nodeFs.promises.readFile;
const realOpen = nodeFs.promises.open;

before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'wlm-files-'));
  await fs.cp(FIXTURE, root, { recursive: true });
  await fs.mkdir(path.join(root, '.git'));
  await fs.writeFile(path.join(root, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  await fs.mkdir(path.join(root, 'node_modules', 'left-pad'), { recursive: true });
  await fs.writeFile(path.join(root, 'node_modules', 'left-pad', 'index.js'), 'module.exports = 1;\n');
  await fs.mkdir(path.join(root, 'dist'));
  await fs.writeFile(path.join(root, 'dist', 'main.js'), 'exports.main = 1;\n');
  await fs.symlink(path.join(root, 'src', 'main.ts'), path.join(root, 'link.ts'));

  // Record every file the scanner opens, to prove that secret files are never among them.
  const spy = <F extends (...args: never[]) => unknown>(real: F) =>
    ((file: unknown, ...rest: unknown[]) => {
      opened.push(String(file));
      return (real as unknown as (...a: unknown[]) => unknown)(file, ...rest);
    }) as unknown as F;
  nodeFs.promises.readFile = spy(realReadFile);
  nodeFs.promises.open = spy(realOpen);
  try {
    scan = await scanFolder(root, OPTIONS);
  } finally {
    nodeFs.promises.readFile = realReadFile;
    nodeFs.promises.open = realOpen;
  }
});

after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

test('keeps exactly the source files, sorted, with their sizes', () => {
  assert.deepEqual(scan.files.map((f) => f.relPath), [
    '.gitignore',
    'src/main.ts',
    'src/mostly-ok.ts',
    'src/nested/.gitignore',
    'src/nested/greet.ts',
    'src/nested/keep.local.ts',
    'src/scratch.ts',
    'src/util.py',
  ]);
  for (const file of scan.files) {
    assert.equal(file.absPath, path.join(root, ...file.relPath.split('/')));
    assert.equal(file.bytes, statSync(file.absPath).size);
  }
  assert.equal(scan.totalBytes, scan.files.reduce((n, f) => n + f.bytes, 0));
});

test('counts every skip reason', () => {
  assert.deepEqual(scan.skipped, {
    ignored: 7, // ignored.ts, logs/, src/nested/scratch.ts, src/other.local.ts, .git/, node_modules/, link.ts
    excluded: 2, // vendor/, src/main.spec.ts
    binary: 2, // src/compiled.js (NUL bytes), src/latin1.txt (mostly invalid UTF-8)
    minified: 1, // src/bundle.js
    generated: 4, // package-lock.json, src/app.min.js, src/schema.ts (@generated), dist/
    tooLarge: 1, // src/big.ts
    secret: 5, // .env, .env.local, certs/server.pem, id_rsa, config/credentials.json
    notSource: 2, // assets/logo.png, assets/fonts.zip
    unreadable: 0,
    empty: 2, // src/empty.ts, src/blank.py (whitespace only)
  });
});

test('nested .gitignore rules apply below their folder only, negation included', () => {
  const kept = new Set(scan.files.map((f) => f.relPath));
  assert.ok(!kept.has('src/nested/scratch.ts'), 'ignored by src/nested/.gitignore');
  assert.ok(kept.has('src/scratch.ts'), 'the nested rule does not reach the parent folder');
  assert.ok(!kept.has('src/other.local.ts'), 'ignored by the root *.local.ts');
  assert.ok(kept.has('src/nested/keep.local.ts'), 're-included by the nested !keep.local.ts');
});

test('secret files are never opened', () => {
  assert.ok(opened.length > 0, 'the spy saw the scanner read files');
  const secretNames = ['.env', '.env.local', 'server.pem', 'id_rsa', 'credentials.json'];
  const touched = opened.filter((file) => secretNames.includes(path.basename(file)));
  assert.deepEqual(touched, []);
});

test('readSourceText: broken UTF-8 becomes U+FFFD; secret files give null unread', async () => {
  const mostlyOk = scan.files.find((f) => f.relPath === 'src/mostly-ok.ts')!;
  const text = await readSourceText(mostlyOk);
  assert.ok(text !== null && text.includes('caf\uFFFD') && text.includes('Köln') && text.includes('stray byte \uFFFD here'));
  const secret = { relPath: 'id_rsa', absPath: path.join(root, 'id_rsa'), bytes: 15 };
  const before = opened.length;
  assert.deepEqual(await readSourceTextWithReason(secret), { text: null, reason: 'secret' });
  assert.equal(opened.length, before);
  const vanished = { relPath: 'gone.ts', absPath: path.join(root, 'gone.ts'), bytes: 10 };
  assert.deepEqual(await readSourceTextWithReason(vanished), { text: null, reason: 'unreadable' });
  const minified = { relPath: 'src/bundle.js', absPath: path.join(root, 'src', 'bundle.js'), bytes: 1 };
  assert.deepEqual(await readSourceTextWithReason(minified), { text: null, reason: 'minified' });
});

test('a missing or non-folder root is a clear error', async () => {
  await assert.rejects(scanFolder(path.join(root, 'nope')), /folder not found: .*nope/);
  await assert.rejects(scanFolder(path.join(root, 'src', 'main.ts')), /not a folder: .*main\.ts/);
  await assert.rejects(scanFolder(root, { maxFileBytes: -1 }), /maxFileBytes must be a positive number, got -1/);
});

test('the sample project scans clean', async () => {
  const sample = await scanFolder(SAMPLE);
  assert.ok(sample.files.length >= 15, `${sample.files.length} files`);
  assert.ok(sample.totalBytes > 20_000 && sample.totalBytes < 40_000, `${sample.totalBytes} bytes`);
  assert.equal(Object.values(sample.skipped).reduce((a, b) => a + b, 0), 0);
});
