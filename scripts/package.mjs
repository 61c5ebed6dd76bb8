// Packages the extension into a .vsix with @vscode/vsce, offline, and prints where it went and its
// size. It does not build: run `npm run build` first (npm run package does both).
// Usage: node scripts/package.mjs [--out FILE] [--target linux-x64]
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

const target = option('--target');
const out = path.resolve(root, option('--out') ?? `${manifest.name}-${target ? `${target}-` : ''}${manifest.version}.vsix`);

// Native binaries each platform needs, by VS Code target: without --target the package carries
// them all (webgpu's Dawn builds alone are 137 MB); with one, only that platform's.
const nativeByTarget = {
  'linux-x64': { dawn: 'linux-x64', tokenizers: ['linux-x64-gnu'], ort: 'linux/x64' },
  'linux-arm64': { dawn: 'linux-arm64', tokenizers: ['linux-arm64-gnu'], ort: 'linux/arm64' },
  'alpine-x64': { dawn: null, tokenizers: ['linux-x64-musl'], ort: 'linux/x64' },
  'alpine-arm64': { dawn: null, tokenizers: ['linux-arm64-musl'], ort: 'linux/arm64' },
  'darwin-x64': { dawn: 'darwin-universal', tokenizers: ['darwin-x64', 'darwin-universal'], ort: 'darwin/x64' },
  'darwin-arm64': { dawn: 'darwin-universal', tokenizers: ['darwin-arm64', 'darwin-universal'], ort: 'darwin/arm64' },
  'win32-x64': { dawn: 'win32-x64', tokenizers: ['win32-x64-msvc'], ort: 'win32/x64' },
  'win32-arm64': { dawn: 'win32-arm64', tokenizers: ['win32-arm64-msvc'], ort: 'win32/arm64' },
};
if (target && !nativeByTarget[target]) fail(`unknown --target ${target}; one of ${Object.keys(nativeByTarget).join(', ')}`);

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

// The manifest's entry points must exist, or the .vsix installs and then fails to activate.
for (const entry of [manifest.main, 'dist/server.js', 'dist/worker.js'].filter(Boolean)) {
  if (!existsSync(path.join(root, entry))) fail(`${entry} is missing; HINT: run npm run build first`);
}
if (!manifest.main) fail('package.json has no "main" entry; the extension would have no code to activate');

// .vscodeignore, plus the local folders no package may carry even when .vscodeignore forgets
// them: the e2e tools (600 MB of code-server), probes and caches.
const localOnly = ['.tools/**', '.probes/**', 'test-output/**', 'e2e-screenshots/**', '**/*.vsix', ...otherPlatforms(target)];
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
    skipLicense: !existsSync(path.join(root, 'LICENSE')),
    rewriteRelativeLinks: false,
  });
} catch (err) {
  rmSync(ignoreDir, { recursive: true, force: true });
  fail(`vsce package failed: ${err instanceof Error ? err.message : String(err)}`);
}

rmSync(ignoreDir, { recursive: true, force: true });
const bytes = statSync(out).size;
console.log(`package: ${path.relative(root, out)} ${(bytes / 1024 / 1024).toFixed(1)} MiB (${bytes} bytes) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
