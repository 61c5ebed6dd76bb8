// Packages the extension into a .vsix with @vscode/vsce, offline, and prints where it went and its
// size. It does not build: run `npm run build` first (npm run package does both).
// Usage: node scripts/package.mjs [--out FILE] [--target linux-x64]
import { createVSIX } from '@vscode/vsce';
import { existsSync, statSync, readFileSync } from 'node:fs';
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

const out = path.resolve(root, option('--out') ?? `${manifest.name}-${manifest.version}.vsix`);
const target = option('--target');

// The manifest's entry points must exist, or the .vsix installs and then fails to activate.
for (const entry of [manifest.main, 'dist/server.js', 'dist/worker.js'].filter(Boolean)) {
  if (!existsSync(path.join(root, entry))) fail(`${entry} is missing; HINT: run npm run build first`);
}
if (!manifest.main) fail('package.json has no "main" entry; the extension would have no code to activate');

const started = Date.now();
try {
  await createVSIX({
    cwd: root,
    packagePath: out,
    target,
    // Offline and private: no repository to link to, no gallery to publish to.
    allowMissingRepository: true,
    skipLicense: !existsSync(path.join(root, 'LICENSE')),
    rewriteRelativeLinks: false,
  });
} catch (err) {
  fail(`vsce package failed: ${err instanceof Error ? err.message : String(err)}`);
}

const bytes = statSync(out).size;
console.log(`package: ${path.relative(root, out)} ${(bytes / 1024 / 1024).toFixed(1)} MiB (${bytes} bytes) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
