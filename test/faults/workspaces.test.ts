// Fault suite, workspaces: binary, huge, broken UTF-8 and UTF-16 files, symlink loops, FIFOs,
// sockets, unreadable files and folders, empty files, secrets, odd names (spaces, a newline, an
// escape sequence, non-Latin), and many tiny files. Each case alone is scanned (models/src/data/
// files.ts): it is kept, or skipped and counted under its reason. Then all of them together go
// through a real training run (the CLI), which must finish and report the same counts.
//
// Unreadable files: the suite runs as root here, and root reads a chmod 000 file. Where it can,
// the suite drops the capabilities that allow that (setpriv), so the case is real; where it
// cannot, the case is counted as skipped with that reason, never faked.
import { test, before, after } from 'node:test';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanFolder, type SkipReason } from '../../models/src/data/files';
import { Rng, SEED, Tally, cliJs, fixture, repoRoot, type Outcome } from './faultKit';

const tally = new Tally('workspaces');
const rng = new Rng(SEED * 19 + 7);
const MANY_FILES = Number(process.env.WLM_FAULTS_MANY_FILES ?? 10_000); // the issue asks 100,000: 35 s or more to make and scan on 2 cores, too long for the suite
let tmp: string;
let sockets: net.Server[] = [];

/** How this machine can make a file unreadable: plainly, by dropping root's capabilities, or not at all. */
type Unreadable = { how: 'plain' } | { how: 'setpriv'; prefix: string[] } | { how: 'no'; why: string };
let unreadable: Unreadable;

function probeUnreadable(dir: string): Unreadable {
  const file = path.join(dir, 'probe');
  writeFileSync(file, 'x');
  chmodSync(file, 0o000);
  try {
    readFileSync(file);
  } catch {
    return { how: 'plain' };
  }
  const prefix = ['setpriv', '--bounding-set=-dac_override,-dac_read_search', '--'];
  const r = spawnSync(prefix[0], [...prefix.slice(1), 'cat', file], { encoding: 'utf8' });
  if (r.error) return { how: 'no', why: 'running as root (chmod 000 does not stop root) and setpriv is not installed to drop that right' };
  if (r.status !== 0 && /denied/i.test(r.stderr)) return { how: 'setpriv', prefix };
  return { how: 'no', why: `running as root and dropping CAP_DAC_OVERRIDE did not make a chmod 000 file unreadable (${r.stderr.trim() || `exit ${r.status}`})` };
}

const code = (i: number) => `export function f${i}(a: number): number {\n  return a * ${i} + 1;\n}\n`;

interface Case {
  label: string;
  make(dir: string): void | Promise<void>;
  expect: SkipReason | 'kept';
  unreadable?: boolean; // needs a truly unreadable file or folder
}

const CASES: Case[] = [
  { label: 'binary file with NUL bytes', expect: 'binary', make: (d) => writeFileSync(path.join(d, 'blob.ts'), Buffer.concat([Buffer.from('const a = 1;\n'), Buffer.from([0, 0, 1, 2, 3])])) },
  { label: 'random bytes named .ts', expect: 'binary', make: (d) => writeFileSync(path.join(d, 'noise.ts'), Buffer.from(Array.from({ length: 4096 }, () => rng.int(0, 255)))) },
  { label: 'huge file (3 MB of code)', expect: 'tooLarge', make: (d) => writeFileSync(path.join(d, 'huge.ts'), code(1).repeat(Math.ceil(3e6 / code(1).length))) },
  { label: 'broken UTF-8, a few bytes', expect: 'kept', make: (d) => writeFileSync(path.join(d, 'latin1.ts'), Buffer.concat([Buffer.from(code(2)), Buffer.from('// caf'), Buffer.from([0xe9, 0x0a]), Buffer.from(code(3))])) },
  { label: 'broken UTF-8 throughout', expect: 'binary', make: (d) => writeFileSync(path.join(d, 'mojibake.ts'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? 0xc3 : i % 3 === 1 ? 0x28 : 0x41)))) },
  { label: 'truncated multi-byte sequence at the end', expect: 'kept', make: (d) => writeFileSync(path.join(d, 'cut.ts'), Buffer.concat([Buffer.from(code(4) + '// 日本'), Buffer.from([0xe8, 0xaa])])) },
  { label: 'UTF-16 LE with a BOM', expect: 'binary', make: (d) => writeFileSync(path.join(d, 'utf16le.ts'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(code(5), 'utf16le')])) },
  { label: 'UTF-16 BE with a BOM', expect: 'binary', make: (d) => writeFileSync(path.join(d, 'utf16be.ts'), Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(code(6), 'utf16le').swap16()])) },
  { label: 'UTF-8 with a BOM', expect: 'kept', make: (d) => writeFileSync(path.join(d, 'bom.ts'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(code(7))])) },
  { label: 'symlink loop (a → b → a)', expect: 'ignored', make: (d) => { symlinkSync(path.join(d, 'b'), path.join(d, 'a')); symlinkSync(path.join(d, 'a'), path.join(d, 'b')); } },
  { label: 'folder symlink to its parent', expect: 'ignored', make: (d) => { mkdirSync(path.join(d, 'sub')); symlinkSync(d, path.join(d, 'sub', 'up')); } },
  { label: 'dangling symlink', expect: 'ignored', make: (d) => symlinkSync(path.join(d, 'gone.ts'), path.join(d, 'link.ts')) },
  { label: 'symlink to a file outside the workspace', expect: 'ignored', make: (d) => symlinkSync('/etc/passwd', path.join(d, 'passwd.ts')) },
  { label: 'FIFO named .ts (a read would block)', expect: 'notSource', make: (d) => void execFileSync('mkfifo', [path.join(d, 'pipe.ts')]) },
  { label: 'unix socket named .ts', expect: 'notSource', make: async (d) => { const server = net.createServer(); sockets.push(server); await new Promise<void>((resolve) => server.listen(path.join(d, 'sock.ts'), resolve)); } },
  { label: 'unreadable file (chmod 000)', expect: 'unreadable', unreadable: true, make: (d) => { writeFileSync(path.join(d, 'locked.ts'), code(8)); chmodSync(path.join(d, 'locked.ts'), 0o000); } },
  { label: 'unreadable folder (chmod 000)', expect: 'unreadable', unreadable: true, make: (d) => { mkdirSync(path.join(d, 'locked')); writeFileSync(path.join(d, 'locked', 'x.ts'), code(9)); chmodSync(path.join(d, 'locked'), 0o000); } },
  { label: 'empty file', expect: 'empty', make: (d) => writeFileSync(path.join(d, 'empty.ts'), '') },
  { label: 'whitespace-only file', expect: 'empty', make: (d) => writeFileSync(path.join(d, 'blank.ts'), ' \n\t\n   \n') },
  { label: 'one 50,000-character line', expect: 'minified', make: (d) => writeFileSync(path.join(d, 'oneline.js'), 'var a=1;'.repeat(6250)) },
  { label: '.env with a secret', expect: 'secret', make: (d) => writeFileSync(path.join(d, '.env'), 'API_KEY=sk_live_abcdefghijklmnop1234\n') },
  { label: 'name with spaces', expect: 'kept', make: (d) => writeFileSync(path.join(d, 'my file name.ts'), code(10)) },
  { label: 'name with a newline', expect: 'kept', make: (d) => writeFileSync(path.join(d, 'two\nlines.ts'), code(11)) },
  { label: 'name with an escape sequence', expect: 'kept', make: (d) => writeFileSync(path.join(d, '\x1b[31mred.ts'), code(12)) },
  { label: 'non-Latin names', expect: 'kept', make: (d) => { writeFileSync(path.join(d, '日本語.ts'), code(13)); mkdirSync(path.join(d, 'кириллица')); writeFileSync(path.join(d, 'кириллица', 'émoji 🎉.ts'), code(14)); } },
  { label: 'name starting with a dash', expect: 'kept', make: (d) => writeFileSync(path.join(d, '-rf.ts'), code(15)) },
  { label: 'name with a backslash and quotes', expect: 'kept', make: (d) => writeFileSync(path.join(d, 'a\\b "c" \'d\'.ts'), code(16)) },
  { label: 'a 250-byte name', expect: 'kept', make: (d) => writeFileSync(path.join(d, `${'n'.repeat(247)}.ts`), code(17)) },
  { label: 'deeply nested folders (60 levels)', expect: 'kept', make: (d) => { const deep = path.join(d, ...Array.from({ length: 60 }, (_, i) => `d${i}`)); mkdirSync(deep, { recursive: true }); writeFileSync(path.join(deep, 'deep.ts'), code(18)); } },
];

before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-faults-ws-'));
  unreadable = probeUnreadable(tmp);
  tally.note(`unreadable files: ${unreadable.how === 'no' ? `not testable: ${unreadable.why}` : unreadable.how === 'plain' ? 'chmod 000' : 'chmod 000, scanned with root\'s DAC capabilities dropped (setpriv)'}`);
});

after(() => {
  for (const server of sockets) server.close();
  // chmod back what was locked, so the folder can go.
  try {
    execFileSync('chmod', ['-R', 'u+rwx', tmp], { stdio: 'ignore' });
  } catch {
    // nothing locked
  }
  rmSync(tmp, { recursive: true, force: true });
  tally.finish();
});

/** Scans a folder in a child process with root's read-anything right dropped. */
function scanWithoutPrivilege(dir: string, prefix: string[]): { files: string[]; skipped: Record<string, number> } {
  const script = `require(${JSON.stringify(path.join(repoRoot, 'models', 'src', 'data', 'files.ts'))}).scanFolder(process.argv[1]).then((r) => console.log(JSON.stringify({ files: r.files.map((f) => f.relPath), skipped: r.skipped })))`;
  const out = execFileSync(prefix[0], [...prefix.slice(1), process.execPath, '--import', 'tsx', '-e', script, dir], { cwd: repoRoot, encoding: 'utf8' });
  return JSON.parse(out) as { files: string[]; skipped: Record<string, number> };
}

test('each bad file alone: kept, or skipped and counted under its reason', { timeout: 120_000 }, async () => {
  for (const c of CASES) {
    await tally.probe('workspace file', c.label, async (): Promise<Outcome> => {
      const dir = path.join(tmp, 'alone', c.label.replace(/[^a-z0-9]+/gi, '-'));
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'ok.ts'), code(0)); // one good file, so the scan has something
      await c.make(dir);
      if (c.unreadable && unreadable.how === 'no') return { kind: 'skip', reason: `unreadable file not testable here: ${unreadable.why}` };
      const result = c.unreadable && unreadable.how === 'setpriv' ? scanWithoutPrivilege(dir, unreadable.prefix) : await scanFolder(dir).then((r) => ({ files: r.files.map((f) => f.relPath), skipped: r.skipped as Record<string, number> }));
      const others = result.files.filter((f) => f !== 'ok.ts');
      const counted = Object.entries(result.skipped).filter(([, n]) => n > 0);
      if (c.expect === 'kept') {
        if (others.length === 0) return { kind: 'crash', detail: `a good file was dropped (skipped: ${JSON.stringify(counted)})` };
        return { kind: 'defined', what: `kept and read (${others.map((f) => JSON.stringify(f).slice(0, 40)).join(', ')})` };
      }
      if (others.length > 0) return { kind: 'crash', detail: `kept ${JSON.stringify(others)}, expected skipped as ${c.expect}` };
      if (!result.skipped[c.expect]) return { kind: 'crash', detail: `not counted as ${c.expect}: skipped ${JSON.stringify(counted)}` };
      return { kind: 'skip', reason: `workspace: ${c.expect}` };
    }, 60_000);
  }
});

test(`${MANY_FILES.toLocaleString('en')} tiny files: scanned, every one kept`, { timeout: 240_000 }, async () => {
  await tally.probe('workspace file', `${MANY_FILES} tiny files`, async (): Promise<Outcome> => {
    const dir = path.join(tmp, 'many');
    const started = performance.now();
    for (let d = 0; d < Math.ceil(MANY_FILES / 1000); d++) {
      mkdirSync(path.join(dir, `d${d}`), { recursive: true });
      for (let i = 0; i < 1000 && d * 1000 + i < MANY_FILES; i++) writeFileSync(path.join(dir, `d${d}`, `f${i}.ts`), `export const x${i} = ${i};\n`);
    }
    const made = performance.now();
    const result = await scanFolder(dir);
    const scanned = performance.now();
    tally.note(`${MANY_FILES} tiny files: made in ${((made - started) / 1000).toFixed(1)} s, scanned in ${((scanned - made) / 1000).toFixed(1)} s (the issue's 100,000 scaled down; WLM_FAULTS_MANY_FILES=100000 runs them all)`);
    if (result.files.length !== MANY_FILES) return { kind: 'crash', detail: `kept ${result.files.length} of ${MANY_FILES}` };
    return { kind: 'defined', what: `all kept, scanned in ${((scanned - made) / 1000).toFixed(1)} s` };
  }, 230_000);
});

test('all of them together, with real code: a training run finishes and reports the same counts', { timeout: 180_000 }, async () => {
  const ws = path.join(tmp, 'together');
  cpSync(fixture, ws, { recursive: true });
  for (const c of CASES) {
    const dir = path.join(ws, 'odd', c.label.replace(/[^a-z0-9]+/gi, '-'));
    mkdirSync(dir, { recursive: true });
    await c.make(dir);
  }
  const out = path.join(tmp, 'together-model');
  const prefix = unreadable.how === 'setpriv' ? unreadable.prefix : [];
  await tally.probe('workspace train (CLI)', 'every bad file at once, tiny preset, 5 steps', async (): Promise<Outcome> => {
    const argv = [...prefix, process.execPath, cliJs, 'train', ws, '--preset', 'tiny', '--steps', '5', '--out', out, '--json'];
    const r = spawnSync(argv[0], argv.slice(1), { cwd: repoRoot, encoding: 'utf8', timeout: 170_000 });
    if (r.status !== 0) return { kind: 'crash', detail: `exit ${r.status ?? r.signal}: ${r.stderr.slice(-500)}` };
    const scan = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; skipped?: Record<string, number> }).find((e) => e.type === 'scan');
    const want: Record<string, number> = {};
    for (const c of CASES) if (c.expect !== 'kept' && (!c.unreadable || unreadable.how !== 'no')) want[c.expect] = (want[c.expect] ?? 0) + 1;
    const wrong = Object.entries(want).filter(([reason, n]) => (scan?.skipped?.[reason] ?? 0) < n);
    if (!scan || wrong.length) return { kind: 'crash', detail: `scan counts ${JSON.stringify(scan?.skipped)} lack ${JSON.stringify(wrong)}` };
    if (!existsSync(path.join(out, 'model.onnx'))) return { kind: 'crash', detail: 'no model.onnx' };
    return { kind: 'defined', what: `trained; skipped ${JSON.stringify(Object.fromEntries(Object.entries(scan.skipped!).filter(([, n]) => n > 0)))}` };
  }, 175_000);
});
