// Packages the extension into a .vsix with @vscode/vsce, offline, and prints where it went and its
// size. By default it builds this machine's platform only, carrying that platform's native binaries
// and no other's; --target names another, --all builds one .vsix per supported platform. It does
// not build the bundles: run `npm run build` first (npm run package does both).
// Usage: node scripts/package.mjs [--out FILE] [--target linux-x64 | --all]
import { createVSIX } from '@vscode/vsce';
import { existsSync, statSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

function option(name) {
  const at = process.argv.indexOf(name);
  if (at < 0) return undefined;
  const value = process.argv[at + 1];
  if (!value || value.startsWith('--')) fail(`${name} needs a value`);
  return value;
}

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

// Native binaries each platform needs, by VS Code target; a package carries only its target's
// (webgpu's Dawn builds alone are 137 MB for all of them). Platforms where a binary we need cannot
// load are not offered: onnxruntime-node ships glibc builds only (no Alpine) and none for Intel macOS.
const nativeByTarget = {
  'linux-x64': { dawn: 'linux-x64', tokenizers: ['linux-x64-gnu'], ort: 'linux/x64' },
  'linux-arm64': { dawn: 'linux-arm64', tokenizers: ['linux-arm64-gnu'], ort: 'linux/arm64' },
  'darwin-arm64': { dawn: 'darwin-universal', tokenizers: ['darwin-arm64', 'darwin-universal'], ort: 'darwin/arm64' },
  'win32-x64': { dawn: 'win32-x64', tokenizers: ['win32-x64-msvc'], ort: 'win32/x64' },
  'win32-arm64': { dawn: 'win32-arm64', tokenizers: ['win32-arm64-msvc'], ort: 'win32/arm64' },
};

/** This machine's VS Code target (musl Linux reports no glibc version). */
function hostTarget() {
  const glibc = process.platform === 'linux' ? process.report?.getReport()?.header?.glibcVersionRuntime : 'n/a';
  const name = process.platform === 'linux' && !glibc ? `alpine-${process.arch}` : `${process.platform}-${process.arch}`;
  if (!nativeByTarget[name]) fail(`this machine is ${name}, which Workspace LM does not support (its native binaries do not load there); pass --target one of ${Object.keys(nativeByTarget).join(', ')}`);
  return name;
}

const all = process.argv.includes('--all');
if (all && (process.argv.includes('--target') || process.argv.includes('--out'))) fail('--all builds every target with its own name; leave out --target and --out');
const targets = all ? Object.keys(nativeByTarget) : [option('--target') ?? hostTarget()];
for (const target of targets) {
  if (!nativeByTarget[target]) fail(`unknown --target ${target}; one of ${Object.keys(nativeByTarget).join(', ')}`);
}

/** .vscodeignore lines that drop every other platform's binaries (negations keep the target's). */
function otherPlatforms(name) {
  const keep = nativeByTarget[name];
  if (!keep) return [];
  return [
    'node_modules/webgpu/dist/**',
    ...(keep.dawn ? [`!node_modules/webgpu/dist/${keep.dawn}/**`] : []),
    'node_modules/tokenizers/tokenizers.*.node',
    ...keep.tokenizers.map((t) => `!node_modules/tokenizers/tokenizers.${t}.node`),
    'node_modules/onnxruntime-node/bin/napi-v*/*/**',
    `!node_modules/onnxruntime-node/bin/napi-v*/${keep.ort}/**`,
  ];
}

// Packages that only run at install time: onnxruntime-node's install script downloads its CUDA
// files with adm-zip and global-agent, which nothing loads once installed. Everything a production
// dependency needs at run time is kept; what is reachable only through those edges is left out.
const INSTALL_ONLY = { 'onnxruntime-node': ['adm-zip', 'global-agent'] };

/** .vscodeignore lines for production packages that no run-time dependency reaches. */
function installOnlyPackages() {
  const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')).packages;
  const resolve = (from, name) => {
    for (let dir = from; ; ) {
      const key = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (lock[key]) return key;
      if (!dir) return null;
      const at = dir.lastIndexOf('/node_modules/');
      dir = at < 0 ? '' : dir.slice(0, at);
    }
  };
  const reached = new Set();
  const visit = (key) => {
    if (!key || reached.has(key)) return;
    reached.add(key);
    const name = key.split('node_modules/').pop();
    const entry = lock[key];
    for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      if (!(INSTALL_ONLY[name] ?? []).includes(dep)) visit(resolve(key, dep));
    }
  };
  for (const name of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) visit(resolve('', name));
  return Object.keys(lock).filter((key) => key.startsWith('node_modules/') && !lock[key].dev && !reached.has(key)).map((key) => `${key}/**`);
}

// The manifest's entry points must exist, or the .vsix installs and then fails to activate.
for (const entry of [manifest.main, 'dist/server.js', 'dist/worker.js'].filter(Boolean)) {
  if (!existsSync(path.join(root, entry))) fail(`${entry} is missing; HINT: run npm run build first`);
}
if (!manifest.main) fail('package.json has no "main" entry; the extension would have no code to activate');

for (const target of targets) await packageFor(target);

/** One .vsix for one VS Code target: .vscodeignore, plus every other platform's binaries left out. */
async function packageFor(target) {
  const out = path.resolve(root, option('--out') ?? `${manifest.name}-${target}-${manifest.version}.vsix`);
  // The local folders no package may carry even when .vscodeignore forgets them: the e2e tools
  // (600 MB of code-server), probes and caches.
  const localOnly = ['.tools/**', '.probes/**', 'test-output/**', 'e2e-screenshots/**', '**/*.vsix', ...otherPlatforms(target), ...installOnlyPackages()];
  const ignoreDir = mkdtempSync(path.join(os.tmpdir(), 'wlm-package-'));
  const ignoreFile = path.join(ignoreDir, '.vscodeignore');
  const projectIgnore = existsSync(path.join(root, '.vscodeignore')) ? readFileSync(path.join(root, '.vscodeignore'), 'utf8') : '';
  writeFileSync(ignoreFile, `${projectIgnore.trimEnd()}\n${localOnly.join('\n')}\n`);

  const started = Date.now();
  try {
    await createVSIX({
      cwd: root,
      packagePath: out,
      target,
      ignoreFile,
      // Offline and private: no repository to link to, no gallery to publish to.
      allowMissingRepository: true,
      rewriteRelativeLinks: false,
    });
  } catch (err) {
    fail(`vsce package failed for ${target}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    rmSync(ignoreDir, { recursive: true, force: true });
  }
  const bytes = statSync(out).size;
  console.log(`package: ${path.relative(root, out)} ${(bytes / 1024 / 1024).toFixed(1)} MiB (${bytes} bytes) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
