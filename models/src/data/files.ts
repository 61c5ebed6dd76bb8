// Which workspace files a model may learn from, and their text. Owns the walk (.gitignore files,
// user excludes, always-skipped folders), the skip reasons and their counts, and which files are
// never opened because they usually hold secrets. The secrets inside the files it does read are
// secrets.ts's to scrub; it does not tokenize or split files (dataset.ts).
//
// Order of the checks, cheapest and most private first: by path (ignored, excluded, secret,
// notSource, generated), by size (tooLarge, empty), then by content (unreadable, binary,
// minified, generated markers). A secret file is never opened.
import { promises as fs, type Dirent } from 'node:fs';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { scrubSecrets } from './secrets';

export type SkipReason =
  | 'ignored'
  | 'excluded'
  | 'binary'
  | 'minified'
  | 'generated'
  | 'tooLarge'
  | 'secret'
  | 'notSource'
  | 'unreadable'
  | 'empty';

export const SKIP_REASONS: readonly SkipReason[] = [
  'ignored', 'excluded', 'binary', 'minified', 'generated', 'tooLarge', 'secret', 'notSource', 'unreadable', 'empty',
];

export interface ScanOptions {
  exclude?: string[]; // gitignore-style globs relative to the root, on top of .gitignore files
  maxFileBytes?: number; // larger files are skipped as tooLarge; default 1 MiB
}

export interface SourceFile {
  relPath: string; // posix separators, relative to the scanned root
  absPath: string;
  bytes: number;
}

export interface ScanResult {
  files: SourceFile[]; // sorted by relPath, so every later step is deterministic
  skipped: Record<SkipReason, number>; // files (or whole folders, counted once) left out, by reason
  totalBytes: number; // of the files kept
}

export const DEFAULT_MAX_FILE_BYTES = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Decisions by path. Folders are pruned whole: their files are never listed.

/** Never descended into: version control and dependencies (not the user's code). */
const ALWAYS_IGNORED_DIRS = new Set(['.git', 'node_modules', '.hg', '.svn', 'bower_components', '.venv', 'venv', '.tox']);
/** Build outputs and caches: generated, so learning them teaches the model the compiler's style. */
const GENERATED_DIRS = new Set(['dist', 'build', 'out', 'coverage', '.next', '.nuxt', '__pycache__', '.pytest_cache', '.mypy_cache', '.parcel-cache', '.turbo']);

const LOCKFILES = new Set([
  'package-lock.json', 'npm-shrinkwrap.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'Cargo.lock',
  'poetry.lock', 'Pipfile.lock', 'composer.lock', 'Gemfile.lock', 'go.sum', 'packages.lock.json', 'uv.lock',
]);
const GENERATED_NAME = /\.min\.(js|mjs|cjs|css)$|\.(js|css)\.map$|\.bundle\.js$|\.d\.ts\.map$|\.pb\.go$|_pb2\.py$|\.g\.dart$/i;

const SECRET_NAME = new RegExp(
  [
    '^\\.env($|\\.)', // .env, .env.local, .env.production ...
    '\\.(pem|key|p12|pfx|jks|keystore|kdbx|gpg|asc|ppk|der|crt|cer)$',
    '^id_(rsa|dsa|ecdsa|ed25519)', // ssh keys and their .pub siblings
    '^credentials', // credentials, credentials.json, ...
    '^\\.(npmrc|pypirc|netrc|pgpass|htpasswd|git-credentials|dockercfg)$',
    '^secrets?\\.(json|ya?ml|toml|ini)$',
    'service[-_]?account.*\\.json$',
  ].join('|'),
  'i',
);

const NOT_SOURCE_EXTENSIONS = new Set([
  // images and design files
  'png', 'jpg', 'jpeg', 'gif', 'bmp', 'ico', 'icns', 'webp', 'tif', 'tiff', 'psd', 'ai', 'sketch', 'fig', 'svg', 'heic', 'avif',
  // fonts
  'woff', 'woff2', 'ttf', 'otf', 'eot',
  // audio and video
  'mp3', 'wav', 'ogg', 'flac', 'aac', 'm4a', 'mp4', 'mov', 'avi', 'mkv', 'webm',
  // archives and packages
  'zip', 'tar', 'gz', 'tgz', 'bz2', 'xz', '7z', 'rar', 'jar', 'war', 'ear', 'vsix', 'whl', 'deb', 'rpm', 'dmg', 'iso', 'nupkg',
  // compiled code and native libraries
  'exe', 'dll', 'so', 'dylib', 'a', 'lib', 'o', 'obj', 'class', 'pyc', 'pyo', 'wasm', 'node', 'bin',
  // documents
  'pdf', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'odt', 'ods', 'epub',
  // data, databases and model weights
  'csv', 'tsv', 'parquet', 'arrow', 'avro', 'npy', 'npz', 'pkl', 'pickle', 'h5', 'hdf5', 'onnx', 'pt', 'pth', 'ckpt',
  'safetensors', 'tflite', 'db', 'sqlite', 'sqlite3', 'mdb', 'dat', 'log',
]);

function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
}

export function isSecretFileName(name: string): boolean {
  return SECRET_NAME.test(name);
}

function reasonByName(name: string): SkipReason | null {
  if (isSecretFileName(name)) return 'secret';
  if (NOT_SOURCE_EXTENSIONS.has(extensionOf(name))) return 'notSource';
  if (LOCKFILES.has(name) || GENERATED_NAME.test(name)) return 'generated';
  return null;
}

// ---------------------------------------------------------------------------------------------
// Decisions by content.

const SNIFF_BYTES = 8000; // as git does: a NUL in the first 8000 bytes means binary
const MAX_REPLACEMENT_SHARE = 0.01; // more broken UTF-8 than this: not text worth learning
const MINIFIED_LONGEST_LINE = 4000;
const MINIFIED_MEAN_LINE = 300;
const GENERATED_MARKER = /@generated\b|\bDO NOT EDIT\b|<auto-generated|\bautogenerated by\b/i;
const MARKER_SEARCH_CHARS = 2048; // markers sit in the file header

/** Why decoded file content is not worth learning, or null if it is. */
export function classifyContent(buffer: Uint8Array, text: string): SkipReason | null {
  if (buffer.length === 0 || text.trim().length === 0) return 'empty';
  if (buffer.subarray(0, SNIFF_BYTES).includes(0)) return 'binary';
  let replacements = 0;
  for (let i = text.indexOf('\uFFFD'); i >= 0; i = text.indexOf('\uFFFD', i + 1)) replacements++;
  if (replacements > 8 && replacements > text.length * MAX_REPLACEMENT_SHARE) return 'binary';
  let lines = 1;
  let longest = 0;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
    longest = Math.max(longest, i - lineStart);
    lineStart = i + 1;
    lines++;
  }
  longest = Math.max(longest, text.length - lineStart);
  if (longest > MINIFIED_LONGEST_LINE || text.length / lines > MINIFIED_MEAN_LINE) return 'minified';
  if (GENERATED_MARKER.test(text.slice(0, MARKER_SEARCH_CHARS))) return 'generated';
  return null;
}

const utf8 = new TextDecoder('utf-8'); // not fatal: broken sequences become U+FFFD

interface ReadOutcome {
  text: string | null;
  reason?: SkipReason;
}

async function readAndClassify(absPath: string): Promise<ReadOutcome> {
  let buffer: Uint8Array;
  try {
    buffer = await fs.readFile(absPath);
  } catch {
    return { text: null, reason: 'unreadable' };
  }
  const text = utf8.decode(buffer);
  const reason = classifyContent(buffer, text);
  return reason ? { text: null, reason } : { text };
}

// ---------------------------------------------------------------------------------------------
// The walk.

interface IgnoreLevel {
  dir: string; // relative to the root, posix, '' for the root
  rules: Ignore;
}

/** Deepest .gitignore first: a nested file overrides its parents, as in git. */
function ignoredByGitignore(levels: IgnoreLevel[], relPath: string, isDir: boolean): boolean {
  for (let i = levels.length - 1; i >= 0; i--) {
    const { dir, rules } = levels[i];
    const local = (dir ? relPath.slice(dir.length + 1) : relPath) + (isDir ? '/' : '');
    const result = rules.test(local);
    if (result.ignored) return true;
    if (result.unignored) return false;
  }
  return false;
}

async function readGitignore(absDir: string): Promise<Ignore | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(absDir, '.gitignore'), 'utf8');
  } catch {
    return null;
  }
  return ignore().add(text);
}

/** Why the walk does not enter a folder, or null: always skipped or gitignored, excluded, generated. */
function folderSkipReason(name: string, relPath: string, levels: IgnoreLevel[], excluded: Ignore): SkipReason | null {
  if (ALWAYS_IGNORED_DIRS.has(name) || ignoredByGitignore(levels, relPath, true)) return 'ignored';
  if (excluded.ignores(relPath + '/')) return 'excluded';
  if (GENERATED_DIRS.has(name)) return 'generated';
  return null;
}

/** Why a file is not read, judged by its path alone, or null: gitignored, excluded, then by name. */
function fileSkipReason(name: string, relPath: string, levels: IgnoreLevel[], excluded: Ignore): SkipReason | null {
  if (ignoredByGitignore(levels, relPath, false)) return 'ignored';
  if (excluded.ignores(relPath)) return 'excluded';
  return reasonByName(name);
}

function sizeSkipReason(bytes: number, maxFileBytes: number): SkipReason | null {
  if (bytes > maxFileBytes) return 'tooLarge';
  if (bytes === 0) return 'empty';
  return null;
}

function emptyCounts(): Record<SkipReason, number> {
  return Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
}

export async function scanFolder(root: string, opts: ScanOptions = {}): Promise<ScanResult> {
  const absRoot = path.resolve(root);
  let rootStat;
  try {
    rootStat = await fs.stat(absRoot);
  } catch {
    throw new Error(`folder not found: ${absRoot}; hint: open a folder with source code, or pass its path`);
  }
  if (!rootStat.isDirectory()) throw new Error(`not a folder: ${absRoot}; hint: pass the folder that holds the file`);
  const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (!(Number.isFinite(maxFileBytes) && maxFileBytes > 0)) {
    throw new Error(`maxFileBytes must be a positive number, got ${opts.maxFileBytes}`);
  }
  const excluded = ignore().add(opts.exclude ?? []);

  const files: SourceFile[] = [];
  const skipped = emptyCounts();

  const walk = async (relDir: string, levels: IgnoreLevel[]): Promise<void> => {
    const absDir = relDir ? path.join(absRoot, relDir) : absRoot;
    let entries: Dirent[];
    try {
      entries = await fs.readdir(absDir, { withFileTypes: true });
    } catch {
      skipped.unreadable++;
      return;
    }
    const own = await readGitignore(absDir);
    const here = own ? [...levels, { dir: relDir, rules: own }] : levels;
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

    for (const entry of entries) {
      const relPath = relDir ? `${relDir}/${entry.name}` : entry.name;
      if (entry.isSymbolicLink()) {
        // Never followed: a link can leave the workspace or loop.
        skipped.ignored++;
        continue;
      }
      if (entry.isDirectory()) {
        const reason = folderSkipReason(entry.name, relPath, here, excluded);
        if (reason) skipped[reason]++;
        else await walk(relPath, here);
        continue;
      }
      if (!entry.isFile()) {
        skipped.notSource++; // fifos, sockets, devices: never opened (a fifo would block the read)
        continue;
      }
      const byPath = fileSkipReason(entry.name, relPath, here, excluded);
      if (byPath) {
        skipped[byPath]++;
        continue;
      }
      const absPath = path.join(absDir, entry.name);
      let bytes: number;
      try {
        bytes = (await fs.stat(absPath)).size;
      } catch {
        skipped.unreadable++;
        continue;
      }
      const bySize = sizeSkipReason(bytes, maxFileBytes);
      if (bySize) {
        skipped[bySize]++;
        continue;
      }
      const outcome = await readAndClassify(absPath);
      if (outcome.reason) {
        skipped[outcome.reason]++;
        continue;
      }
      files.push({ relPath, absPath, bytes });
    }
  };

  await walk('', []);
  files.sort((a, b) => (a.relPath < b.relPath ? -1 : a.relPath > b.relPath ? 1 : 0));
  return { files, skipped, totalBytes: files.reduce((n, f) => n + f.bytes, 0) };
}

/**
 * The text of a scanned file, secrets scrubbed, ready to learn from; null with the reason when
 * it turns out not to be (changed since the scan, binary, minified, generated, unreadable).
 */
export async function readSourceTextWithReason(file: SourceFile): Promise<ReadOutcome> {
  const byName = reasonByName(path.basename(file.absPath));
  if (byName) return { text: null, reason: byName }; // never open a secret file, whoever asks
  const outcome = await readAndClassify(file.absPath);
  return outcome.text === null ? { text: null, reason: outcome.reason } : { text: scrubSecrets(outcome.text, file.relPath) };
}

export async function readSourceText(file: SourceFile): Promise<string | null> {
  return (await readSourceTextWithReason(file)).text;
}

/**
 * One file of the workspace judged as scanFolder() judges it (a file just saved, or changed on
 * disk): its text, secrets scrubbed, or why it is not read. The same rules, in the same order: the
 * folders above it, then the file by path, size and content. A file outside `root`, or reached
 * through a link, is 'ignored'; one that is gone is 'unreadable'.
 */
export async function readWorkspaceFile(root: string, absPath: string, opts: ScanOptions = {}): Promise<{ relPath: string; text: string | null; reason?: SkipReason }> {
  const absRoot = path.resolve(root);
  const relPath = path.relative(absRoot, path.resolve(absPath)).split(path.sep).join('/');
  const skip = (reason: SkipReason) => ({ relPath, text: null, reason });
  if (relPath === '' || relPath === '..' || relPath.startsWith('../') || path.isAbsolute(relPath)) return skip('ignored');
  const excluded = ignore().add(opts.exclude ?? []);
  const parts = relPath.split('/');
  let levels: IgnoreLevel[] = [];
  for (let i = 0; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    const own = await readGitignore(dir ? path.join(absRoot, dir) : absRoot);
    if (own) levels = [...levels, { dir, rules: own }];
    const rel = parts.slice(0, i + 1).join('/');
    const stat = await fs.lstat(path.join(absRoot, rel)).catch(() => null);
    if (!stat) return skip('unreadable');
    if (stat.isSymbolicLink()) return skip('ignored');
    if (i < parts.length - 1) {
      const reason = folderSkipReason(parts[i], rel, levels, excluded);
      if (reason) return skip(reason);
    } else {
      if (!stat.isFile()) return skip('notSource');
      const reason = fileSkipReason(parts[i], relPath, levels, excluded) ?? sizeSkipReason(stat.size, opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES);
      if (reason) return skip(reason);
    }
  }
  const outcome = await readAndClassify(path.join(absRoot, relPath));
  return outcome.text === null ? skip(outcome.reason ?? 'unreadable') : { relPath, text: scrubSecrets(outcome.text, relPath) };
}
