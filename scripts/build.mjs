// Bundles the CLI, the language server, its training worker and the VS Code client with esbuild.
// Native and wasm-carrying packages stay external: they are loaded from node_modules at run time.
import * as esbuild from 'esbuild';
import { existsSync } from 'node:fs';

const nodeTargets = [
  { in: 'models/src/cli.ts', out: 'cli' },
  { in: 'server/src/server.ts', out: 'server' },
  { in: 'server/src/worker.ts', out: 'worker' },
  { in: 'models/src/train/parallel.ts', out: 'parallel' }, // gradient worker threads, loaded next to the bundle
  { in: 'bench/bench.ts', out: 'bench' },
].filter((entry) => existsSync(entry.in));

await esbuild.build({
  entryPoints: nodeTargets,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  packages: 'external',
  logLevel: 'warning',
});

if (existsSync('client/src/extension.ts')) {
  await esbuild.build({
    entryPoints: [{ in: 'client/src/extension.ts', out: 'extension' }],
    outdir: 'dist',
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: true,
    external: ['vscode'],
    logLevel: 'warning',
  });
}

// The metrics panel's page script and styles (uPlot bundled in: the webview loads nothing remote).
const { buildPanel } = await import('./build-panel.mjs');
await buildPanel();
