// Bundles the metrics panel's page (client/media/panel.ts, uPlot and the styles) for the webview:
// dist/media/panel.js and dist/media/panel.css. Browser code, so its own esbuild run; called from
// scripts/build.mjs and from the panel test. `node scripts/build-panel.mjs [OUTDIR]`.
import * as esbuild from 'esbuild';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function buildPanel(outdir = path.join(repoRoot, 'dist', 'media')) {
  await esbuild.build({
    entryPoints: [{ in: path.join(repoRoot, 'client/media/panel.ts'), out: 'panel' }],
    outdir,
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: ['chrome114'], // VS Code 1.90's Electron
    minify: true,
    sourcemap: false,
    legalComments: 'linked', // uPlot's MIT licence travels with the bundle
    logLevel: 'warning',
  });
  return { script: path.join(outdir, 'panel.js'), style: path.join(outdir, 'panel.css') };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildPanel(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
}
