// The file scanner on test/fixtures/files (plus what git cannot store: .git, node_modules, dist,
// a symlink): every skip reason counted, nested .gitignore honoured, secret files never opened,
// broken UTF-8 survived. What is scrubbed from the files it reads: secrets.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, statSync } from 'node:fs';
import * as nodeFs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanFolder, readSourceText, readSourceTextWithReason, readWorkspaceFile, type ScanResult } from '../../models/src/data/files';

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

test('readWorkspaceFile judges one file as the scan does: the files it keeps are read and scrubbed, the others say why, secrets unopened', async () => {
  const all: string[] = [];
  const list = async (dir: string): Promise<void> => {
    for (const entry of await fs.readdir(path.join(root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await list(rel);
      else all.push(rel);
    }
  };
  await list('');
  const before = opened.length;
  nodeFs.promises.readFile = ((file: unknown, ...rest: unknown[]) => (opened.push(String(file)), (realReadFile as (...a: unknown[]) => unknown)(file, ...rest))) as typeof realReadFile;
  const judged = new Map<string, Awaited<ReturnType<typeof readWorkspaceFile>>>();
  try {
    for (const rel of all) judged.set(rel, await readWorkspaceFile(root, path.join(root, ...rel.split('/')), OPTIONS));
  } finally {
    nodeFs.promises.readFile = realReadFile;
  }
  const read = [...judged].filter(([, j]) => j.text !== null).map(([rel]) => rel).sort();
  assert.deepEqual(read, scan.files.map((f) => f.relPath));
  for (const file of scan.files) assert.equal(judged.get(file.relPath)!.text, await readSourceText(file));
  const reasons = Object.fromEntries(['ignored.ts', 'logs/app.ts', 'src/nested/scratch.ts', 'link.ts', 'node_modules/left-pad/index.js', '.git/HEAD', 'vendor/lib.js', 'src/main.spec.ts', 'dist/main.js', 'src/schema.ts', 'src/big.ts', '.env', 'certs/server.pem', 'assets/logo.png', 'src/empty.ts', 'src/bundle.js'].map((rel) => [rel, judged.get(rel)?.reason]));
  assert.deepEqual(reasons, {
    'ignored.ts': 'ignored', 'logs/app.ts': 'ignored', 'src/nested/scratch.ts': 'ignored', 'link.ts': 'ignored', 'node_modules/left-pad/index.js': 'ignored', '.git/HEAD': 'ignored',
    'vendor/lib.js': 'excluded', 'src/main.spec.ts': 'excluded', 'dist/main.js': 'generated', 'src/schema.ts': 'generated', 'src/big.ts': 'tooLarge',
    '.env': 'secret', 'certs/server.pem': 'secret', 'assets/logo.png': 'notSource', 'src/empty.ts': 'empty', 'src/bundle.js': 'minified',
  });
  const secretNames = ['.env', '.env.local', 'server.pem', 'id_rsa', 'credentials.json'];
  assert.deepEqual(opened.slice(before).filter((file) => secretNames.includes(path.basename(file))), []);
  // A saved file's secrets are scrubbed, as the scan's reader scrubs them.
  const saved = path.join(root, 'src', 'saved.ts');
  await fs.writeFile(saved, `export const token = "ghp_${'a1B2c3D4'.repeat(5)}";\nexport const two = 2;\n`);
  const scrubbed = await readWorkspaceFile(root, saved, OPTIONS);
  assert.equal(scrubbed.text, 'export const token = "<redacted>";\nexport const two = 2;\n');
  await fs.rm(saved);
  // Outside the folder, or gone: nothing is read.
  assert.deepEqual(await readWorkspaceFile(path.join(root, 'src'), path.join(root, 'ignored.ts')), { relPath: '../ignored.ts', text: null, reason: 'ignored' });
  assert.deepEqual(await readWorkspaceFile(root, path.join(root, 'src', 'gone.ts')), { relPath: 'src/gone.ts', text: null, reason: 'unreadable' });
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
