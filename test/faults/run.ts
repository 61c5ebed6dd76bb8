// The fault suite's runner (`npm run test:faults`): builds the bundles, trains the one tiny model
// the fault files share, runs test/faults/*.test.ts one file at a time under node:test, then sums
// the tallies the files leave (faultKit.ts) and prints the closing figures. Exits non-zero when a
// test failed, an input crashed, a planted secret came back or a non-local socket was opened. Seeded: WLM_FAULTS_SEED (15);
// `npm run test:faults -- lsp cli` runs only the files whose names contain those words.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SEED, sharedModel, type TallyFile } from './faultKit';

const root = path.resolve(__dirname, '..', '..');
const started = performance.now();

function main(): number {
  const only = process.argv.slice(2);
  const files = readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.ts') && (only.length === 0 || only.some((w) => f.includes(w))))
    .sort()
    .map((f) => path.join(__dirname, f));
  console.log(`fault suite: seed ${SEED}, ${files.length} files`);
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  const tallyDir = mkdtempSync(path.join(os.tmpdir(), 'wlm-faults-tally-'));
  const model = sharedModel();
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, WLM_FAULTS_SEED: String(SEED), WLM_FAULTS_TALLY_DIR: tallyDir, WLM_FAULTS_MODEL: model },
  });
  const tallies = readdirSync(tallyDir).map((f) => JSON.parse(readFileSync(path.join(tallyDir, f), 'utf8')) as TallyFile);
  rmSync(tallyDir, { recursive: true, force: true });
  rmSync(path.dirname(model), { recursive: true, force: true });
  const failures = printFigures(tallies, files.length);
  return run.status !== 0 || failures > 0 ? 1 : 0;
}

/** The closing figures; returns the count of things that must be zero and are not. */
function printFigures(tallies: TallyFile[], expectedFiles: number): number {
  const sum = (pick: (t: TallyFile) => number) => tallies.reduce((n, t) => n + pick(t), 0);
  const skips = new Map<string, number>();
  for (const t of tallies) for (const [reason, n] of Object.entries(t.skips)) skips.set(reason, (skips.get(reason) ?? 0) + n);
  const crashes = tallies.flatMap((t) => t.crashes.map((c) => `${t.file} / ${c.entry} / ${c.input}: ${c.detail}`));
  const kills = { tried: sum((t) => t.kills.tried), survived: sum((t) => t.kills.survived) };
  const sockets = { traced: sum((t) => t.sockets.traced), inet: sum((t) => t.sockets.inet), lines: tallies.flatMap((t) => t.sockets.lines) };
  const by = (pick: (t: TallyFile) => number) => tallies.map((t) => `${t.file} ${pick(t)}`).join(', ');
  const line = (label: string, value: string | number, detail = '') => console.log(`  ${label.padEnd(18)}${String(value).padStart(6)}${detail ? `  ${detail}` : ''}`);
  console.log(`\nfault suite figures (seed ${SEED}, ${((performance.now() - started) / 1000).toFixed(0)} s, ${tallies.length} of ${expectedFiles} files reported):`);
  line('inputs tried', sum((t) => t.inputs), `(${by((t) => t.inputs)})`);
  line('clear errors', sum((t) => t.errors));
  line('defined answers', sum((t) => t.defined), '(served, or the answer the protocol defines: null for a document not open, a clamped character)');
  line('counted skips', sum((t) => Object.values(t.skips).reduce((a, b) => a + b, 0)));
  for (const [reason, n] of [...skips].sort((a, b) => b[1] - a[1])) console.log(`  ${''.padEnd(24)}${String(n).padStart(4)} ${reason}`);
  line('crashes', crashes.length, '(crashed, hung, or an unclear answer; must be 0)');
  for (const c of crashes) console.log(`      ${c}`);
  line('kills survived', `${kills.survived}/${kills.tried}`, 'kill -9 of wlm at seeded moments, and of a language server mid-training with a second server on its models folder (a run that ended first is not counted as survived): each folder served or resumed to the end; the active model kept loading; the lock was taken over');
  for (const t of tallies) for (const k of t.kills.detail) console.log(`      ${k}`);
  const secrets = { tried: sum((t) => t.secrets.tried), reproduced: sum((t) => t.secrets.reproduced) };
  line('secrets reproduced', secrets.reproduced, `of ${secrets.tried} completions asked at planted secrets in the files a model trained on (the GPT alone and the editor's mixture); must be 0`);
  for (const t of tallies) for (const d of t.secrets.detail) console.log(`      ${d}`);
  line('sockets opened', sockets.inet, `non-AF_UNIX sockets in ${sockets.traced} runs under strace (train, eval, completions, the server); must be 0`);
  for (const l of sockets.lines) console.log(`      ${l}`);
  for (const t of tallies) for (const note of t.notes) console.log(`  note (${t.file}): ${note}`);
  // A kill that failed is a crash already; a run that ended before its moment is neither.
  return crashes.length + sockets.inet + secrets.reproduced + (expectedFiles - tallies.length);
}

process.exitCode = main();
