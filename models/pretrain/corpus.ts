// The pre-training corpus: npm packages pinned in manifest.json, fetched with `npm pack` into an
// ignored cache, checked (integrity, permissive licence from package.json and licence file),
// cleaned (which files, exact and near duplicates) and written as a folder plus corpus.json.
// It owns the manifest's format, the licence rules and the deduplication. It does not decide which
// workspace files are source (data/files.ts: reused here), tokenize, or train (the pretrain script).
//
//   node --import tsx models/pretrain/corpus.ts [--out DIR] [--manifest FILE] [--cache DIR]
//
// Deterministic for a given manifest: packages in manifest order, files in path order, the first
// copy of a duplicate kept; corpus.json holds no dates or timings.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { scanFolder, readSourceTextWithReason, SKIP_REASONS, type SkipReason } from '../src/data/files';
import { UserError } from '../src/util/errors';
import { writeFileAtomic } from '../src/util/atomicFiles';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const MANIFEST_FILE = path.join(__dirname, 'manifest.json');
export const CACHE_DIR = path.join(REPO_ROOT, '.cache', 'pretrain');
export const DEFAULT_OUT_DIR = path.join(CACHE_DIR, 'corpus');

export const MANIFEST_FORMAT = 'wlm-pretrain-manifest';
export const REPORT_FORMAT = 'wlm-pretrain-corpus';
export const FORMAT_VERSION = 1;

/** Licences a package may carry, as SPDX ids: none asks anything of a model trained on the code. */
export const PERMISSIVE_LICENSES = ['MIT', 'ISC', 'BSD-2-Clause', 'BSD-3-Clause', 'Apache-2.0', '0BSD'] as const;
export type PermissiveLicense = (typeof PERMISSIVE_LICENSES)[number];

/** Never in the corpus, nor vendored inside another package: the bench's held-out code (bench/quality.ts). */
export const HELD_OUT_PACKAGES = ['rxjs'];

// ---------------------------------------------------------------------------------------------
// The manifest.

export interface ManifestPackage {
  name: string; // as on npm, scope included
  version: string; // exact: 1.2.3 or 1.2.3-beta.4, never a range or a tag
  license: string; // SPDX id as the package's own package.json states it
  licenseFile: string; // the licence file's name at the tarball's root
  integrity: string; // npm's dist.integrity (sha512-...), checked against the tarball
  shasum: string; // npm's dist.shasum (sha1, hex), checked too
  folders: string[]; // package-relative folders whose source is taken ('.' for the root)
  exclude?: string[]; // package-relative gitignore-style patterns ('!' re-includes; '**/' any depth)
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof FORMAT_VERSION;
  about?: string;
  packages: ManifestPackage[];
}

const EXACT_VERSION = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/;
const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;

/** Every way the manifest breaks the rules, one line each; empty when it is sound. */
export function manifestProblems(manifest: Manifest): string[] {
  const problems: string[] = [];
  if (manifest.format !== MANIFEST_FORMAT || manifest.version !== FORMAT_VERSION) {
    problems.push(`format must be "${MANIFEST_FORMAT}" version ${FORMAT_VERSION}, got "${manifest.format}" version ${manifest.version}`);
  }
  if (!Array.isArray(manifest.packages) || manifest.packages.length === 0) return [...problems, 'packages: none listed'];
  const seen = new Set<string>();
  for (const p of manifest.packages) {
    const id = `${p.name}@${p.version}`;
    if (!PACKAGE_NAME.test(p.name ?? '')) problems.push(`${id}: not an npm package name`);
    if (seen.has(p.name)) problems.push(`${id}: listed twice`);
    seen.add(p.name);
    if (!EXACT_VERSION.test(p.version ?? '')) problems.push(`${id}: version must be exact (1.2.3), not a range or a tag`);
    if (!(PERMISSIVE_LICENSES as readonly string[]).includes(p.license)) {
      problems.push(`${id}: licence "${p.license}" is not one of ${PERMISSIVE_LICENSES.join(', ')}`);
    }
    if (!LICENSE_FILE_NAME.test(p.licenseFile ?? '')) problems.push(`${id}: licenseFile "${p.licenseFile}" is not a licence file name`);
    if (!/^sha512-[A-Za-z0-9+/]{86}==$/.test(p.integrity ?? '')) problems.push(`${id}: integrity must be npm's sha512-... string`);
    if (!/^[0-9a-f]{40}$/.test(p.shasum ?? '')) problems.push(`${id}: shasum must be 40 hex digits`);
    if (!Array.isArray(p.folders) || p.folders.length === 0) problems.push(`${id}: folders: none listed`);
    for (const folder of [...(p.folders ?? []), ...(p.exclude ?? [])]) {
      if (path.posix.isAbsolute(folder) || folder.split('/').includes('..')) problems.push(`${id}: "${folder}" must stay inside the package`);
    }
    if (isHeldOut(p.name)) problems.push(`${id}: ${p.name} is the bench's held-out corpus and must not be pre-trained on`);
  }
  return problems;
}

function isHeldOut(name: string): boolean {
  return HELD_OUT_PACKAGES.some((held) => name === held || name.startsWith(`@${held}/`));
}

export function loadManifest(file = MANIFEST_FILE): Manifest {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch (err) {
    throw new UserError(`cannot read the corpus manifest ${file}: ${(err as Error).message}`);
  }
  const problems = manifestProblems(manifest);
  if (problems.length) throw new UserError(`corpus manifest ${file} is not sound:\n  ${problems.join('\n  ')}`);
  return manifest;
}

// ---------------------------------------------------------------------------------------------
// Licences: the package.json's word and the licence file's text must both be permissive and agree.

const LICENSE_FILE_NAME = /^(licen[cs]e|copying)([-._][a-z0-9-]+)?(\.(md|txt|markdown))?$/i;

/** Each permissive licence by a sentence of its text (whitespace collapsed before matching). */
const LICENSE_TEXTS: Array<[PermissiveLicense, RegExp]> = [
  ['MIT', /Permission is hereby granted, free of charge, to any person obtaining a copy/i],
  ['Apache-2.0', /Apache License,? Version 2\.0/i],
  // BSD-3 is BSD-2 plus the no-endorsement clause ("Neither the name of ...", or hapi's "The names
  // of any contributors may not be used to endorse ...").
  ['BSD-3-Clause', /Redistribution and use in source and binary forms[\s\S]*(Neither the name|names? of [^.]{0,80}? may not be used to endorse)/i],
  ['BSD-2-Clause', /Redistribution and use in source and binary forms/i],
  // ISC keeps the notice ("provided that ..."); 0BSD is the same grant with that condition struck.
  ['ISC', /Permission to use, copy, modify, and(\/or)? distribute this software for any purpose with or without fee is hereby granted, provided that/i],
  ['0BSD', /Permission to use, copy, modify, and(\/or)? distribute this software for any purpose with or without fee is hereby granted\. THE SOFTWARE IS PROVIDED/i],
];

/** Licences that ask something of derived works, or forbid uses: any mention in the licence file refuses the package. */
const RESTRICTIVE_TEXT = /GNU (Affero |Lesser |Library )?General Public License|\b[AL]?GPL-?[23]|Mozilla Public License|Eclipse Public License|Server Side Public License|Business Source License|Creative Commons[^.]*Non-?Commercial|Commons Clause/i;

export interface LicenseReading {
  found: PermissiveLicense[]; // permissive licences whose text the file contains
  restrictive: string | null; // the first restrictive licence it names, if any
}

export function readLicenseText(text: string): LicenseReading {
  const flat = text.replace(/\s+/g, ' ');
  const found = LICENSE_TEXTS.filter(([, sentence]) => sentence.test(flat)).map(([id]) => id);
  // A BSD-3 text also matches BSD-2's sentence: keep the stronger reading only.
  const unique = found.includes('BSD-3-Clause') ? found.filter((id) => id !== 'BSD-2-Clause') : found;
  return { found: unique, restrictive: flat.match(RESTRICTIVE_TEXT)?.[0] ?? null };
}

/** The package.json's licence as a list of alternatives ("(MIT OR Apache-2.0)" → both). */
export function declaredLicenses(packageJson: { license?: unknown; licenses?: unknown }): string[] {
  const field = packageJson.license ?? packageJson.licenses;
  const ids = (value: unknown): string[] => {
    if (typeof value === 'string') return [value];
    if (Array.isArray(value)) return value.flatMap(ids);
    if (value && typeof value === 'object' && 'type' in value) return ids((value as { type: unknown }).type);
    return [];
  };
  // An AND or WITH expression asks for more than one licence's terms: not handled, so refused.
  return ids(field).flatMap((expr) => (/\b(AND|WITH)\b/.test(expr) ? [expr] : expr.replace(/[()]/g, '').split(/\s+OR\s+/).map((s) => s.trim())));
}

export interface LicenseCheck {
  license: PermissiveLicense;
  licenseFile: string;
}

/**
 * The licence of an unpacked package, read from its own package.json and licence file. Throws a
 * UserError naming the package when either is missing, not permissive, or they disagree.
 */
export function checkLicense(packageRoot: string, label: string): LicenseCheck {
  // Typed in full so that TypeScript knows each call ends the function.
  const refuse: (why: string, hint: string) => never = (why, hint) => {
    throw new UserError(`refused ${label}: ${why}; hint: ${hint}`);
  };
  const pkgFile = path.join(packageRoot, 'package.json');
  if (!existsSync(pkgFile)) refuse('it has no package.json', 'is this an npm package tarball?');
  const declared = declaredLicenses(JSON.parse(readFileSync(pkgFile, 'utf8')));
  if (declared.length === 0) refuse('its package.json states no licence', 'choose a package that declares one');
  const permissive = declared.filter((id): id is PermissiveLicense => (PERMISSIVE_LICENSES as readonly string[]).includes(id));
  if (permissive.length === 0) {
    refuse(`its package.json says "${declared.join(' OR ')}", not one of ${PERMISSIVE_LICENSES.join(', ')}`, 'remove it from the manifest');
  }

  const licenseFile = readdirSync(packageRoot).filter((name) => LICENSE_FILE_NAME.test(name)).sort()[0];
  if (!licenseFile) refuse('its tarball has no LICENSE file', 'a package must ship the licence it claims; choose another version or package');
  const reading = readLicenseText(readFileSync(path.join(packageRoot, licenseFile), 'utf8'));
  if (reading.restrictive) refuse(`its ${licenseFile} mentions "${reading.restrictive}"`, 'remove it from the manifest');
  const agreed = permissive.find((id) => reading.found.includes(id));
  if (!agreed) {
    const said = reading.found.length ? reading.found.join(', ') : 'no licence text we recognise';
    refuse(`its package.json says ${declared.join(' OR ')} but its ${licenseFile} reads as ${said}`, 'read the file; if it is permissive, teach LICENSE_TEXTS its wording');
  }
  return { license: agreed, licenseFile };
}

// ---------------------------------------------------------------------------------------------
// Fetching: `npm pack` into the cache, integrity checked on every use, unpacked once.

function safeName(name: string): string {
  return name.replace(/^@/, '').replace(/\//g, '__');
}

/** npm's integrity string (sha512-<base64>) and shasum (sha1 hex) for the bytes of a tarball. */
export function tarballDigests(bytes: Uint8Array): { integrity: string; shasum: string } {
  return {
    integrity: 'sha512-' + createHash('sha512').update(bytes).digest('base64'),
    shasum: createHash('sha1').update(bytes).digest('hex'),
  };
}

function digestProblem(bytes: Uint8Array, entry: ManifestPackage): string | null {
  const got = tarballDigests(bytes);
  if (got.integrity !== entry.integrity) return `integrity ${got.integrity} differs from the manifest's ${entry.integrity}`;
  if (got.shasum !== entry.shasum) return `shasum ${got.shasum} differs from the manifest's ${entry.shasum}`;
  return null;
}

/** Fetches (or reuses) the package's tarball, checks its digests, and returns its unpacked root. */
export async function fetchPackage(entry: ManifestPackage, cacheDir = CACHE_DIR): Promise<string> {
  const label = `${entry.name}@${entry.version}`;
  const tarballDir = path.join(cacheDir, 'tarballs');
  const tarball = path.join(tarballDir, `${safeName(entry.name)}-${entry.version}.tgz`);
  await fs.mkdir(tarballDir, { recursive: true });

  let bytes = existsSync(tarball) ? await fs.readFile(tarball) : null;
  if (!bytes || digestProblem(bytes, entry)) {
    // Not cached, or a cached copy that no longer matches (interrupted download): fetch afresh.
    const packed = execFileSync('npm', ['pack', label, '--json', '--pack-destination', tarballDir], {
      cwd: tarballDir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const filename = (JSON.parse(packed) as Array<{ filename: string }>)[0].filename;
    await fs.rename(path.join(tarballDir, path.basename(filename)), tarball);
    bytes = await fs.readFile(tarball);
  }
  const problem = digestProblem(bytes, entry);
  if (problem) throw new UserError(`refused ${label}: its tarball's ${problem}; hint: a pinned version never changes on npm, so check the manifest's digests with \`npm view ${label} dist.integrity dist.shasum\``);

  // Unpacked once; the marker (the integrity unpacked) is written only after tar has finished.
  const unpackDir = path.join(cacheDir, 'packages', `${safeName(entry.name)}@${entry.version}`);
  const marker = path.join(unpackDir, '.unpacked');
  if (!existsSync(marker) || readFileSync(marker, 'utf8') !== entry.integrity) {
    await fs.rm(unpackDir, { recursive: true, force: true });
    await fs.mkdir(unpackDir, { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', unpackDir]);
    await fs.writeFile(marker, entry.integrity);
  }
  const tops = readdirSync(unpackDir, { withFileTypes: true }).filter((d) => d.isDirectory());
  if (tops.length !== 1) throw new UserError(`refused ${label}: its tarball holds ${tops.length} top folders, expected one (package/)`);
  const root = path.join(unpackDir, tops[0].name);
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name?: string; version?: string };
  if (pkg.name !== entry.name || pkg.version !== entry.version) {
    throw new UserError(`refused ${label}: its package.json says ${pkg.name}@${pkg.version}`);
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// Which files: data/files.ts's scanner (paths, size, binary, minified, generated markers, secrets
// scrubbed), then the rules a corpus of other people's code needs on top.

export type DropReason =
  | SkipReason
  | 'notCode' // readable, but not JavaScript or TypeScript (README.md, package.json, .css)
  | 'declaration' // .d.ts: types only, mostly emitted by tsc
  | 'fixture' // test fixtures and snapshots: data shaped like code
  | 'vendored' // someone else's code copied in (its licence is not the package's)
  | 'heldOut' // a path naming a held-out package (vendored rxjs)
  | 'compiled' // a compiler's or bundler's output
  | 'exactDuplicate'
  | 'nearDuplicate';

export const DROP_REASONS: readonly DropReason[] = [
  ...SKIP_REASONS, 'notCode', 'declaration', 'fixture', 'vendored', 'heldOut', 'compiled', 'exactDuplicate', 'nearDuplicate',
];

export const CODE_EXTENSIONS = new Set(['.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs']);
const DECLARATION = /\.d\.[cm]?ts$/;
const FIXTURE_DIRS = new Set(['fixtures', 'fixture', '__fixtures__', '__snapshots__', 'snapshots']);
const VENDORED_DIRS = new Set(['vendor', 'vendors', 'vendored', 'third_party', 'third-party', 'thirdparty']);

/**
 * Compiler output that files.ts lets through, because a workspace may hold it knowingly: tsc's
 * inlined helpers and CommonJS preamble or Babel's at the top, a source-map comment at the end.
 * Looked for in the header only, as webpack's own sources hold the preamble in template strings.
 */
const COMPILED_HEADER = /^\s*var __\w+ = \(this && this\.__\w+\) \|\||^\s*Object\.defineProperty\(exports, ["']__esModule["'], \{ value: true \}\)|^\s*function _interopRequireDefault\(|^\s*function _classCallCheck\(/m;
const SOURCE_MAP_COMMENT = /^\/\/# sourceMappingURL=\S+\s*$/m;

/**
 * Generated-file headers beyond files.ts's markers: a workspace's own generator comments are the
 * user's business, a corpus must not learn a code generator's style. A comment line that opens
 * with the claim ("// AUTO-GENERATED by tooling/...", "/* Generated from ...") or says it of the
 * file ("File generated from our OpenAPI spec"); prose such as "keys generated by fn" is not one.
 */
const GENERATED_HEADER = /^\s*(\/\/|\/\*+|\*)\s*(auto-?generated\b|generated (by|from|with|using)\b)|\b(this|the) (file|module|code) (is|was|has been) (automatically |auto-?)?generated\b|\bfile (was )?(auto-?)?generated (by|from)\b/im;
const HEADER_CHARS = 1000;

/** Why a package-relative path is left out before its content is read, or null. */
export function reasonByPath(relPath: string): DropReason | null {
  const parts = relPath.split('/');
  const name = parts[parts.length - 1];
  if (!CODE_EXTENSIONS.has(path.posix.extname(name))) return 'notCode';
  if (DECLARATION.test(name)) return 'declaration';
  const dirs = parts.slice(0, -1);
  if (dirs.some((d) => HELD_OUT_PACKAGES.includes(d))) return 'heldOut';
  if (dirs.some((d) => VENDORED_DIRS.has(d))) return 'vendored';
  if (dirs.some((d) => FIXTURE_DIRS.has(d))) return 'fixture';
  return null;
}

/** Why source text (already past files.ts's checks) is left out, or null. */
export function reasonByContent(relPath: string, text: string): DropReason | null {
  const header = text.slice(0, HEADER_CHARS);
  if (/\.[cm]?jsx?$/.test(relPath) && (COMPILED_HEADER.test(header) || SOURCE_MAP_COMMENT.test(text))) return 'compiled';
  if (GENERATED_HEADER.test(header)) return 'generated';
  return null;
}

/** One form for every file: no byte-order mark, \n line ends, one final newline. */
export function normalizeText(text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n').trimEnd() + '\n';
}

export const MAX_FILE_BYTES = 512 * 1024; // larger hand-written files are rare; larger files are mostly tables

export interface SelectedFile {
  relPath: string; // package-relative, posix
  text: string; // normalised, secrets scrubbed
}

/** The package's source files in path order, and how many were dropped and why (duplicates aside). */
export async function selectFiles(packageRoot: string, entry: ManifestPackage): Promise<{ files: SelectedFile[]; dropped: Record<DropReason, number> }> {
  const dropped = emptyDropCounts();
  const files: SelectedFile[] = [];
  for (const folder of [...new Set(entry.folders.map((f) => f.replace(/\/+$/, '')))].sort()) {
    const prefix = folder === '.' ? '' : `${folder}/`;
    const root = path.join(packageRoot, folder);
    if (!existsSync(root)) throw new UserError(`${entry.name}@${entry.version} has no folder "${folder}"; hint: fix its folders in the manifest`);
    const exclude = excludesForFolder(entry.exclude ?? [], prefix);
    const scan = await scanFolder(root, { exclude, maxFileBytes: MAX_FILE_BYTES });
    for (const reason of SKIP_REASONS) dropped[reason] += scan.skipped[reason];
    for (const file of scan.files) {
      const relPath = prefix + file.relPath;
      const byPath = reasonByPath(relPath);
      if (byPath) {
        dropped[byPath]++;
        continue;
      }
      const read = await readSourceTextWithReason(file);
      if (read.text === null) {
        dropped[read.reason ?? 'unreadable']++;
        continue;
      }
      const byContent = reasonByContent(relPath, read.text);
      if (byContent) {
        dropped[byContent]++;
        continue;
      }
      files.push({ relPath, text: normalizeText(read.text) });
    }
  }
  files.sort((a, b) => (a.relPath < b.relPath ? -1 : a.relPath > b.relPath ? 1 : 0));
  return { files, dropped };
}

/**
 * The manifest's excludes are package-relative; the scanner's are relative to the folder it walks.
 * "src/locale/" under folder src becomes "/locale/": anchored, so it still names src's own child
 * and not every folder called locale.
 */
export function excludesForFolder(patterns: string[], prefix: string): string[] {
  const out: string[] = [];
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const body = negated ? pattern.slice(1) : pattern;
    if (body.startsWith('**/')) out.push(pattern);
    else if (body.startsWith(prefix)) out.push(`${negated ? '!' : ''}/${body.slice(prefix.length)}`);
  }
  return out;
}

function emptyDropCounts(): Record<DropReason, number> {
  return Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
}

// ---------------------------------------------------------------------------------------------
// Duplicates. Exact: the same text up to whitespace. Near: the Jaccard similarity of the two
// files' bags of words (identifiers, keywords, numbers, each counted as often as it occurs), close
// to what Allamanis's near-duplicate detector for code compares (identifier multisets), estimated
// with MinHash and found with locality-sensitive hashing. A file is dropped when it reaches the threshold against a file kept.
//
// Why words and not word 5-shingles (BigCode's choice for prose-like text): renaming a variable
// changes only that variable's occurrences in a bag, but every shingle that spans one of them. On
// a 40-line file with two variables renamed, 5-shingles score 0.47 and the bag 0.87; measured on
// this corpus, the bag's pairs above 0.85 are sibling copies (ascend/descend, LineCurve/LineCurve3,
// zod's v3 and v4 copies of a test).

export interface DedupConfig {
  numHashes: number; // MinHash signature length; the estimate's standard error is about 0.03 at 0.85
  bands: number; // LSH bands of numHashes / bands rows: a pair at 0.85 becomes a candidate 99% of the time
  threshold: number; // estimated Jaccard similarity at which a file counts as a near copy
}

export const DEFAULT_DEDUP: DedupConfig = { numHashes: 128, bands: 16, threshold: 0.85 };

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** MurmurHash3's finaliser: a bijection on 32 bits that mixes every input bit into every output bit. */
function fmix32(x: number): number {
  let h = x;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The text's bag of words as a set: each word paired with its occurrence number ("x#1", "x#2"),
 * so that the sets' Jaccard similarity is the bags' (sum of minimum counts over sum of maximum).
 */
export function wordBagHashes(text: string): Set<number> {
  const counts = new Map<string, number>();
  const hashes = new Set<number>();
  for (const word of text.match(/[A-Za-z0-9_$]+/g) ?? []) {
    const n = (counts.get(word) ?? 0) + 1;
    counts.set(word, n);
    hashes.add(fnv1a(`${word}#${n}`));
  }
  return hashes;
}

/** One hash function per slot (the mixer keyed by a fixed seed); each slot keeps its minimum. */
export function minHashSignature(items: Set<number>, numHashes = DEFAULT_DEDUP.numHashes): Uint32Array {
  const seeds = Array.from({ length: numHashes }, (_, i) => fmix32(Math.imul(i + 1, 0x9e3779b9)));
  const signature = new Uint32Array(numHashes).fill(0xffffffff);
  for (const item of items) {
    for (let i = 0; i < numHashes; i++) {
      const h = fmix32(item ^ seeds[i]);
      if (h < signature[i]) signature[i] = h;
    }
  }
  return signature;
}

/** The share of slots where two signatures agree: an unbiased estimate of their sets' Jaccard similarity. */
export function estimatedJaccard(a: Uint32Array, b: Uint32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

export type DedupVerdict =
  | { kind: 'kept' }
  | { kind: 'exactDuplicate'; of: string }
  | { kind: 'nearDuplicate'; of: string; similarity: number };

export class Deduplicator {
  private readonly exact = new Map<string, string>(); // whitespace-normalised text's hash → first id
  private readonly kept: Array<{ id: string; signature: Uint32Array }> = [];
  private readonly buckets = new Map<string, number[]>(); // band and its rows → indices into kept

  constructor(private readonly config: DedupConfig = DEFAULT_DEDUP) {
    if (config.numHashes % config.bands !== 0) throw new Error(`numHashes ${config.numHashes} must be a multiple of bands ${config.bands}`);
  }

  /** Decides on a file against every file kept so far, and keeps it if it is new. */
  add(id: string, text: string): DedupVerdict {
    const key = createHash('sha256').update(text.replace(/\s+/g, ' ').trim()).digest('hex');
    const first = this.exact.get(key);
    if (first !== undefined) return { kind: 'exactDuplicate', of: first };
    this.exact.set(key, id);

    const words = wordBagHashes(text);
    if (words.size === 0) return { kind: 'kept' }; // no words: only an exact copy can match it
    const signature = minHashSignature(words, this.config.numHashes);
    const bandKeys = this.bandKeys(signature);
    let best: { index: number; similarity: number } | null = null;
    const compared = new Set<number>();
    for (const bandKey of bandKeys) {
      for (const index of this.buckets.get(bandKey) ?? []) {
        if (compared.has(index)) continue;
        compared.add(index);
        const similarity = estimatedJaccard(signature, this.kept[index].signature);
        if (!best || similarity > best.similarity) best = { index, similarity };
      }
    }
    if (best && best.similarity >= this.config.threshold) {
      return { kind: 'nearDuplicate', of: this.kept[best.index].id, similarity: best.similarity };
    }
    const index = this.kept.push({ id, signature }) - 1;
    for (const bandKey of bandKeys) {
      const bucket = this.buckets.get(bandKey);
      if (bucket) bucket.push(index);
      else this.buckets.set(bandKey, [index]);
    }
    return { kind: 'kept' };
  }

  private bandKeys(signature: Uint32Array): string[] {
    const rows = this.config.numHashes / this.config.bands;
    return Array.from({ length: this.config.bands }, (_, b) => `${b}:${signature.subarray(b * rows, (b + 1) * rows).join(',')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The whole build: check every package first, then clean and write.

export interface PackageReport {
  name: string;
  version: string;
  license: PermissiveLicense;
  licenseFile: string;
  integrity: string;
  files: number; // kept
  bytes: number; // kept, UTF-8, after normalising
  dropped: Record<DropReason, number>;
}

export interface CorpusReport {
  format: typeof REPORT_FORMAT;
  version: typeof FORMAT_VERSION;
  manifestSha256: string; // of manifest.json's bytes: which manifest this corpus was built from
  dedup: DedupConfig;
  maxFileBytes: number;
  packages: PackageReport[];
  totals: { packages: number; files: number; bytes: number; dropped: Record<DropReason, number> };
}

export interface BuildOptions {
  manifestFile?: string;
  outDir?: string; // replaced whole; must be absent, empty or a corpus this script wrote
  cacheDir?: string;
  log?: (line: string) => void;
}

export const REPORT_FILE = 'corpus.json';

/** Builds the corpus folder and its corpus.json; returns the report. */
export async function buildCorpus(opts: BuildOptions = {}): Promise<CorpusReport> {
  const manifestFile = opts.manifestFile ?? MANIFEST_FILE;
  const outDir = path.resolve(opts.outDir ?? DEFAULT_OUT_DIR);
  const cacheDir = opts.cacheDir ?? CACHE_DIR;
  const log = opts.log ?? (() => {});
  const manifest = loadManifest(manifestFile);
  await refuseForeignFolder(outDir);

  // Every package fetched and checked before anything is written: one run lists every refusal.
  const checked: Array<{ entry: ManifestPackage; root: string; license: LicenseCheck }> = [];
  const refusals: string[] = [];
  for (const entry of manifest.packages) {
    const label = `${entry.name}@${entry.version}`;
    try {
      const root = await fetchPackage(entry, cacheDir);
      const license = checkLicense(root, label);
      if (license.license !== entry.license || license.licenseFile !== entry.licenseFile) {
        throw new UserError(`refused ${label}: the tarball reads as ${license.license} in ${license.licenseFile}, the manifest says ${entry.license} in ${entry.licenseFile}; hint: correct the manifest`);
      }
      checked.push({ entry, root, license });
      log(`checked ${label} (${license.license}, ${license.licenseFile})`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      refusals.push(err.message);
    }
  }
  if (refusals.length) throw new UserError(`${refusals.length} package(s) refused, no corpus written:\n  ${refusals.join('\n  ')}`);

  const staging = `${outDir}.partial`;
  await fs.rm(staging, { recursive: true, force: true });
  const dedup = new Deduplicator();
  const packages: PackageReport[] = [];
  for (const { entry, root, license } of checked) {
    const { files, dropped } = await selectFiles(root, entry);
    let kept = 0;
    let bytes = 0;
    for (const file of files) {
      const id = `${entry.name}/${file.relPath}`;
      const verdict = dedup.add(id, file.text);
      if (verdict.kind !== 'kept') {
        dropped[verdict.kind]++;
        continue;
      }
      const target = path.join(staging, ...entry.name.split('/'), ...file.relPath.split('/'));
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, file.text);
      kept++;
      bytes += Buffer.byteLength(file.text);
    }
    packages.push({ name: entry.name, version: entry.version, ...license, integrity: entry.integrity, files: kept, bytes, dropped });
    log(`${entry.name}@${entry.version}: ${kept} files, ${(bytes / 1e6).toFixed(2)} MB`);
  }

  const totalsDropped = emptyDropCounts();
  for (const p of packages) for (const r of DROP_REASONS) totalsDropped[r] += p.dropped[r];
  const report: CorpusReport = {
    format: REPORT_FORMAT,
    version: FORMAT_VERSION,
    manifestSha256: createHash('sha256').update(readFileSync(manifestFile)).digest('hex'),
    dedup: DEFAULT_DEDUP,
    maxFileBytes: MAX_FILE_BYTES,
    packages,
    totals: {
      packages: packages.length,
      files: packages.reduce((n, p) => n + p.files, 0),
      bytes: packages.reduce((n, p) => n + p.bytes, 0),
      dropped: totalsDropped,
    },
  };
  await writeFileAtomic(path.join(staging, REPORT_FILE), JSON.stringify(report, null, 2) + '\n');
  await fs.rm(outDir, { recursive: true, force: true });
  await fs.rename(staging, outDir);
  return report;
}

/** The output folder is replaced whole, so it must be one this script wrote (or nothing at all). */
async function refuseForeignFolder(outDir: string): Promise<void> {
  if (!existsSync(outDir)) return;
  const entries = await fs.readdir(outDir);
  if (entries.length === 0 || entries.includes(REPORT_FILE)) return;
  throw new UserError(`--out ${outDir} holds files but no ${REPORT_FILE}; hint: the corpus replaces its folder whole, so pass a new or empty folder`);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' }, manifest: { type: 'string' }, cache: { type: 'string' } } });
  const started = Date.now();
  const report = await buildCorpus({
    outDir: values.out,
    manifestFile: values.manifest,
    cacheDir: values.cache,
    log: (line) => console.log(line),
  });
  const { totals } = report;
  const dropped = DROP_REASONS.filter((r) => totals.dropped[r] > 0).map((r) => `${r} ${totals.dropped[r]}`).join(', ');
  console.log(`corpus: ${totals.packages} packages, ${totals.files} files, ${(totals.bytes / 1e6).toFixed(2)} MB in ${path.resolve(values.out ?? DEFAULT_OUT_DIR)}`);
  console.log(`dropped: ${dropped}`);
  console.log(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (require.main === module && /corpus\.[cm]?[jt]s$/.test(process.argv[1] ?? '')) {
  main().catch((err: Error) => {
    console.error(err instanceof UserError ? err.message : err.stack);
    process.exitCode = 1;
  });
}
