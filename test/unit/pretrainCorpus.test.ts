// The pre-training corpus (models/pretrain/corpus.ts), without the network: the manifest's pins and
// licences, rxjs kept out, the licence check's refusals, which files of a package are taken, and
// the deduplication of exact and near copies. It does not fetch from npm (the real run does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  checkLicense,
  declaredLicenses,
  Deduplicator,
  estimatedJaccard,
  excludesForFolder,
  fetchPackage,
  loadManifest,
  manifestProblems,
  minHashSignature,
  readLicenseText,
  selectFiles,
  wordBagHashes,
  tarballDigests,
  HELD_OUT_PACKAGES,
  MANIFEST_FILE,
  PERMISSIVE_LICENSES,
  type Manifest,
  type ManifestPackage,
} from '../../models/pretrain/corpus';

const MIT_TEXT = `MIT License

Copyright (c) 2020 Someone

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
`;

const GPL_TEXT = `                    GNU GENERAL PUBLIC LICENSE
                       Version 3, 29 June 2007

 Copyright (C) 2007 Free Software Foundation, Inc. <https://fsf.org/>
 Everyone is permitted to copy and distribute verbatim copies
 of this license document, but changing it is not allowed.
`;

const APACHE_TEXT = `
                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/
`;

async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `wlm-pretrain-${prefix}-`));
}

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), text);
  }
}

function entryFor(name: string, folders: string[], exclude?: string[]): ManifestPackage {
  return { name, version: '1.0.0', license: 'MIT', licenseFile: 'LICENSE', integrity: 'sha512-' + 'A'.repeat(86) + '==', shasum: '0'.repeat(40), folders, exclude };
}

// ---------------------------------------------------------------------------------------------
// The manifest.

test('the manifest pins exact versions, permissive licences, sound digests, and no rxjs', () => {
  const manifest = loadManifest(); // throws with every problem listed if it is not sound
  assert.ok(manifest.packages.length >= 20, `a few dozen packages, got ${manifest.packages.length}`);
  for (const p of manifest.packages) {
    assert.match(p.version, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, `${p.name}: exact version`);
    assert.ok((PERMISSIVE_LICENSES as readonly string[]).includes(p.license), `${p.name}: ${p.license}`);
    assert.match(p.integrity, /^sha512-/, `${p.name}: integrity`);
    assert.ok(p.folders.length > 0, `${p.name}: folders`);
  }
  const names = manifest.packages.map((p) => p.name);
  assert.ok(!names.includes('rxjs'), 'rxjs is the bench\'s held-out corpus');
  assert.ok(!names.some((n) => n.startsWith('@rxjs/')));
  assert.ok(!readFileSync(MANIFEST_FILE, 'utf8').toLowerCase().includes('"rxjs'), 'no entry names rxjs');
  assert.deepEqual(HELD_OUT_PACKAGES, ['rxjs']);
});

test('manifestProblems names a range, a tag, a copyleft licence, rxjs and a path leaving the package', () => {
  const good = loadManifest();
  const bad: Manifest = {
    ...good,
    packages: [
      { ...good.packages[0], version: '^4.1.0' },
      { ...good.packages[1], version: 'latest' },
      { ...good.packages[2], license: 'GPL-3.0' },
      { ...good.packages[3], name: 'rxjs', version: '7.8.2' },
      { ...good.packages[4], folders: ['../../etc'] },
    ],
  };
  const problems = manifestProblems(bad);
  assert.equal(problems.length, 5, problems.join('\n'));
  assert.match(problems[0], /version must be exact/);
  assert.match(problems[1], /version must be exact/);
  assert.match(problems[2], /GPL-3\.0.*is not one of/);
  assert.match(problems[3], /rxjs.*held-out/);
  assert.match(problems[4], /must stay inside the package/);
});

// ---------------------------------------------------------------------------------------------
// Licences.

test('the licence text is read as the licence it is, BSD-3 variants included', () => {
  assert.deepEqual(readLicenseText(MIT_TEXT), { found: ['MIT'], restrictive: null });
  assert.deepEqual(readLicenseText(APACHE_TEXT).found, ['Apache-2.0']);
  const bsd = 'Redistribution and use in source and binary forms, with or without modification, are permitted provided that the following conditions are met:';
  assert.deepEqual(readLicenseText(bsd).found, ['BSD-2-Clause']);
  assert.deepEqual(readLicenseText(`${bsd}\n- The names of any contributors may not be used to endorse or promote products`).found, ['BSD-3-Clause']);
  assert.deepEqual(readLicenseText(`${bsd}\n3. Neither the name of the copyright holder nor the names`).found, ['BSD-3-Clause']);
  assert.match(readLicenseText(GPL_TEXT).restrictive ?? '', /GNU GENERAL PUBLIC LICENSE/);
  assert.deepEqual(declaredLicenses({ license: '(MIT OR Apache-2.0)' }), ['MIT', 'Apache-2.0']);
  assert.deepEqual(declaredLicenses({ licenses: [{ type: 'ISC' }] }), ['ISC']);
});

test('checkLicense accepts an MIT package and refuses GPL, a missing file, and a disagreement', async () => {
  const root = await tempDir('licence');
  try {
    const pkg = async (license: string, files: Record<string, string>) => {
      const dir = await fs.mkdtemp(path.join(root, 'p-'));
      await writeTree(dir, { 'package.json': JSON.stringify({ name: 'p', version: '1.0.0', license }), ...files });
      return dir;
    };
    const mit = await pkg('MIT', { LICENSE: MIT_TEXT });
    const mitLowercase = await pkg('MIT', { 'license.md': MIT_TEXT });
    const gpl = await pkg('MIT', { LICENSE: GPL_TEXT });
    const mixed = await pkg('MIT', { LICENSE: MIT_TEXT + '\n' + GPL_TEXT });
    const missing = await pkg('MIT', {});
    const gplDeclared = await pkg('GPL-3.0', { LICENSE: MIT_TEXT });
    const disagree = await pkg('MIT', { LICENSE: APACHE_TEXT });
    const unknown = await pkg('MIT', { LICENSE: 'All rights reserved.' });

    assert.deepEqual(checkLicense(mit, 'p@1.0.0'), { license: 'MIT', licenseFile: 'LICENSE' });
    assert.deepEqual(checkLicense(mitLowercase, 'p@1.0.0'), { license: 'MIT', licenseFile: 'license.md' });
    // package.json says MIT, the file is the GPL: refused, naming the package and what the file says.
    assert.throws(() => checkLicense(gpl, 'p@1.0.0'), /refused p@1\.0\.0: its LICENSE mentions "GNU GENERAL PUBLIC LICENSE"/);
    // A GPL text beside an MIT one (a mixed licence file): still refused.
    assert.throws(() => checkLicense(mixed, 'p@1.0.0'), /GNU GENERAL PUBLIC LICENSE/);
    assert.throws(() => checkLicense(missing, 'p@1.0.0'), /refused p@1\.0\.0: its tarball has no LICENSE file/);
    assert.throws(() => checkLicense(gplDeclared, 'p@1.0.0'), /package\.json says "GPL-3\.0", not one of/);
    assert.throws(() => checkLicense(disagree, 'p@1.0.0'), /says MIT but its LICENSE reads as Apache-2\.0/);
    assert.throws(() => checkLicense(unknown, 'p@1.0.0'), /reads as no licence text we recognise/);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Fetching, from a cached tarball (a mismatch would call npm, so only the matching case is here).

test('fetchPackage unpacks a cached tarball whose digests match, and checks its name and version', async () => {
  const root = await tempDir('fetch');
  try {
    await writeTree(path.join(root, 'src'), { 'package/package.json': JSON.stringify({ name: '@scope/lib', version: '1.2.3' }), 'package/lib/a.js': 'exports.a = 1;\n' });
    const cacheDir = path.join(root, 'cache');
    const tarball = path.join(cacheDir, 'tarballs', 'scope__lib-1.2.3.tgz');
    await fs.mkdir(path.dirname(tarball), { recursive: true });
    execFileSync('tar', ['-czf', tarball, '-C', path.join(root, 'src'), 'package']);
    const digests = tarballDigests(await fs.readFile(tarball));
    assert.match(digests.integrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
    assert.match(digests.shasum, /^[0-9a-f]{40}$/);

    const entry = { ...entryFor('@scope/lib', ['lib']), version: '1.2.3', ...digests };
    const unpacked = await fetchPackage(entry, cacheDir);
    assert.equal(await fs.readFile(path.join(unpacked, 'lib', 'a.js'), 'utf8'), 'exports.a = 1;\n');
    assert.equal(await fetchPackage(entry, cacheDir), unpacked, 'the second call reuses the unpacked folder');

    // Same bytes, wrong version in the manifest: the tarball's package.json disagrees.
    await fs.copyFile(tarball, path.join(cacheDir, 'tarballs', 'scope__lib-9.9.9.tgz'));
    await assert.rejects(fetchPackage({ ...entry, version: '9.9.9' }, cacheDir), /refused @scope\/lib@9\.9\.9: its package\.json says @scope\/lib@1\.2\.3/);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Which files.

test('selectFiles keeps hand-written source and counts every file it drops by reason', async () => {
  const root = await tempDir('select');
  try {
    const code = (name: string) => `export function ${name}(a: number, b: number): number {\n  return a + b;\n}\n`;
    await writeTree(root, {
      'package.json': '{}',
      'README.md': '# readme\n',
      'dist/index.js': 'exports.x = 1;\n', // not in folders: never looked at
      'src/add.ts': code('add'),
      'src/crlf.js': 'module.exports = 1;\r\nmodule.exports.b = 2;\r\n',
      'src/types.d.ts': 'export declare const x: number;\n',
      'src/styles.css': 'a { color: red; }\n',
      'src/vendor/leftpad.js': 'module.exports = function leftpad() {};\n',
      'src/__fixtures__/input.ts': code('fixture'),
      'src/rxjs/Observable.ts': code('observable'),
      'src/compiled.js': '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.a = 1;\n',
      'src/withMap.js': 'exports.a = 1;\n//# sourceMappingURL=withMap.js.map\n',
      'src/api.ts': '// Code generated by openapi-generator. DO NOT EDIT.\nexport const a = 1;\n',
      'src/client.ts': '/**\n * File generated from our OpenAPI spec by Stainless.\n */\nexport const b = 2;\n',
      'src/prose.js': '/** Returns the keys generated by `fn`. */\nexport const keys = (fn) => fn();\n',
      'src/bundle.min.js': 'var a=1;\n',
      'src/locale/fr.js': 'export default { hello: "bonjour" };\n',
      'src/deep/locale/keep.js': 'export const keep = true;\n',
    });
    const { files, dropped } = await selectFiles(root, entryFor('p', ['src'], ['src/locale/']));
    assert.deepEqual(files.map((f) => f.relPath), ['src/add.ts', 'src/crlf.js', 'src/deep/locale/keep.js', 'src/prose.js']);
    assert.equal(files[1].text, 'module.exports = 1;\nmodule.exports.b = 2;\n', 'line ends normalised');
    const nonZero = Object.fromEntries(Object.entries(dropped).filter(([, n]) => n > 0));
    assert.deepEqual(nonZero, { excluded: 1, generated: 3, notCode: 1, declaration: 1, fixture: 1, vendored: 1, heldOut: 1, compiled: 2 });
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('excludesForFolder anchors package-relative patterns to the folder it scans', () => {
  assert.deepEqual(excludesForFolder(['src/*/', '!src/internal/', 'lib/x/', '**/fixtures/'], 'src/'), ['/*/', '!/internal/', '**/fixtures/']);
  assert.deepEqual(excludesForFolder(['tslib.es6.js'], ''), ['/tslib.es6.js']);
});

// ---------------------------------------------------------------------------------------------
// Duplicates.

const ORIGINAL = `import { EventEmitter } from 'node:events';

export interface QueueOptions {
  concurrency: number;
  timeoutMs: number;
}

export class TaskQueue extends EventEmitter {
  private readonly pending: Array<() => Promise<void>> = [];
  private running = 0;

  constructor(private readonly options: QueueOptions) {
    super();
  }

  push(task: () => Promise<void>): void {
    this.pending.push(task);
    this.drain();
  }

  private drain(): void {
    while (this.running < this.options.concurrency && this.pending.length > 0) {
      const task = this.pending.shift()!;
      this.running++;
      const timer = setTimeout(() => this.emit('timeout', task), this.options.timeoutMs);
      task()
        .catch((error) => this.emit('error', error))
        .finally(() => {
          clearTimeout(timer);
          this.running--;
          this.emit('done');
          this.drain();
        });
    }
  }

  get size(): number {
    return this.pending.length + this.running;
  }
}
`;

// The same code re-indented and re-wrapped: only whitespace differs.
const EXACT_COPY = ORIGINAL.replace(/^ {2}/gm, '\t').replace(/\n\n/g, '\n');

// The same code with two variables renamed.
const NEAR_COPY = ORIGINAL.replace(/\btimer\b/g, 'handle').replace(/\berror\b/g, 'reason');

const DIFFERENT = `export function parseDuration(text: string): number {
  const match = /^(\\d+)(ms|s|m|h)$/.exec(text.trim());
  if (!match) throw new Error(\`not a duration: \${text}\`);
  const value = Number(match[1]);
  switch (match[2]) {
    case 'ms': return value;
    case 's': return value * 1000;
    case 'm': return value * 60_000;
    default: return value * 3_600_000;
  }
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return \`\${ms}ms\`;
  if (ms < 60_000) return \`\${(ms / 1000).toFixed(1)}s\`;
  return \`\${Math.round(ms / 60_000)}m\`;
}
`;

function exactJaccard(a: Set<number>, b: Set<number>): number {
  let shared = 0;
  for (const x of a) if (b.has(x)) shared++;
  return shared / (a.size + b.size - shared);
}

test('MinHash estimates the word bags\' Jaccard similarity within its standard error', () => {
  const a = wordBagHashes(ORIGINAL);
  const b = wordBagHashes(NEAR_COPY);
  const c = wordBagHashes(DIFFERENT);
  const near = exactJaccard(a, b);
  assert.ok(near > 0.85 && near < 1, `near copy's Jaccard ${near}`);
  assert.ok(exactJaccard(a, c) < 0.05);
  // 128 hashes: standard error sqrt(J(1-J)/128) ≈ 0.03 near 0.9; allow three of them.
  assert.ok(Math.abs(estimatedJaccard(minHashSignature(a), minHashSignature(b)) - near) < 0.1);
  assert.equal(estimatedJaccard(minHashSignature(a), minHashSignature(a)), 1);
  assert.ok(estimatedJaccard(minHashSignature(a), minHashSignature(c)) < 0.1);
});

test('the deduplicator drops an exact copy and a near copy and keeps a different file', () => {
  const dedup = new Deduplicator();
  assert.deepEqual(dedup.add('a/queue.ts', ORIGINAL), { kind: 'kept' });
  assert.deepEqual(dedup.add('b/queue.ts', EXACT_COPY), { kind: 'exactDuplicate', of: 'a/queue.ts' });
  const near = dedup.add('c/queue.ts', NEAR_COPY);
  assert.equal(near.kind, 'nearDuplicate');
  assert.equal(near.kind === 'nearDuplicate' && near.of, 'a/queue.ts');
  assert.ok(near.kind === 'nearDuplicate' && near.similarity >= 0.85);
  assert.deepEqual(dedup.add('d/duration.ts', DIFFERENT), { kind: 'kept' });
  // A dropped copy is not kept: a copy of the copy is judged against the original alone.
  assert.equal(dedup.add('e/queue.ts', NEAR_COPY).kind, 'exactDuplicate');
});
