// The tree shows the design: imports run one way, down, and never in a circle. models/src is in
// wings ranked bottom to top (util; model and data; train and infer; summaries; eval; then
// pipeline.ts and cli.ts); a file imports its own wing or a lower one, never a sibling of the same
// rank. Across the top level: client and server meet only in protocol/, and models imports neither.
// Import lists come from TypeScript's own pre-processor, so comments and strings do not count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const root = path.resolve(__dirname, '..', '..');
const SOURCE_ROOTS = ['client/src', 'client/media', 'server/src', 'models/src', 'models/pretrain', 'protocol'];

/** Every .ts file under the source roots, as paths relative to the repository root. */
function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(path.join(root, dir)).sort()) {
      const rel = path.posix.join(dir, name);
      if (statSync(path.join(root, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(rel);
    }
  };
  for (const dir of SOURCE_ROOTS) if (existsSync(path.join(root, dir))) walk(dir);
  return out;
}

/** The repository files a source file imports (relative specifiers only; packages are not ours). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true);
  const targets: string[] = [];
  for (const { fileName } of info.importedFiles) {
    if (!fileName.startsWith('.') || /\.(css|json)$/.test(fileName)) continue; // packages and assets are not ours to rank
    const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), fileName)).replace(/\.(js|ts)$/, '');
    const resolved = [`${base}.ts`, `${base}/index.ts`].find((candidate) => existsSync(path.join(root, candidate)));
    assert.ok(resolved, `${file} imports ${fileName}, which resolves to no .ts file`);
    targets.push(resolved);
  }
  return targets;
}

function importGraph(): Map<string, string[]> {
  return new Map(sourceFiles().map((file) => [file, importsOf(file)]));
}

/** Strongly connected components with more than one file (or a file importing itself): the circles. */
function circles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

// models/src wings, bottom first. Same rank: siblings that must not import each other. The
// pre-training recipe (models/pretrain) sits above the library it drives.
const WING_RANK: Record<string, number> = { util: 0, model: 1, data: 1, train: 2, infer: 2, summaries: 3, eval: 4, '': 5, pretrain: 6 };

function wingOf(file: string): string {
  if (file.startsWith('models/pretrain/')) return 'pretrain';
  const rest = file.slice('models/src/'.length);
  return rest.includes('/') ? rest.split('/')[0] : '';
}

function topOf(file: string): string {
  return file.startsWith('client/') ? 'client' : file.split('/')[0];
}

// Which top-level parts each may import: client and server talk only through protocol/.
const TOP_ALLOWED: Record<string, string[]> = {
  client: ['client', 'protocol', 'models'],
  server: ['server', 'protocol', 'models'],
  protocol: ['protocol', 'models'],
  models: ['models'],
};

function layerViolations(graph: Map<string, string[]>): string[] {
  const problems: string[] = [];
  for (const [file, targets] of graph) {
    for (const target of targets) {
      const from = topOf(file);
      const to = topOf(target);
      if (!TOP_ALLOWED[from]?.includes(to)) problems.push(`${file} imports ${target}: ${from} may import only ${TOP_ALLOWED[from]?.join(', ')}`);
      if (from !== 'models' || to !== 'models') continue;
      const wing = wingOf(file);
      const targetWing = wingOf(target);
      if (wing in WING_RANK && targetWing in WING_RANK && wing !== targetWing && WING_RANK[targetWing] >= WING_RANK[wing]) {
        problems.push(`${file} imports ${target}: the ${wing || 'top'} wing may import only lower wings`);
      }
      if (!(wing in WING_RANK)) problems.push(`${file} is in models/src/${wing}, which is not a known wing`);
    }
  }
  return problems;
}

test('no import circles anywhere in client, server, protocol or models', () => {
  const graph = importGraph();
  assert.ok(graph.size > 40, `found only ${graph.size} source files: is the walk looking in the right place?`);
  assert.deepEqual(circles(graph), []);
});

test('imports run one way, down: models wings by rank, client and server only through protocol', () => {
  assert.deepEqual(layerViolations(importGraph()), []);
});

test('the checks catch what they are for: a circle and an upward import in a made-up graph', () => {
  const graph = new Map<string, string[]>([
    ['models/src/infer/ngram.ts', ['models/src/eval/metrics.ts']],
    ['models/src/eval/metrics.ts', ['models/src/infer/ngram.ts']],
    ['client/src/commands.ts', ['server/src/jobs.ts']],
    ['server/src/jobs.ts', []],
  ]);
  assert.deepEqual(circles(graph), [['models/src/eval/metrics.ts', 'models/src/infer/ngram.ts']]);
  const problems = layerViolations(graph);
  assert.ok(problems.some((p) => p.startsWith('models/src/infer/ngram.ts imports models/src/eval/metrics.ts')), problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('client/src/commands.ts imports server/src/jobs.ts')), problems.join('\n'));
});

test('every source file opens with a comment saying what it owns', () => {
  const bare = sourceFiles().filter((file) => !/^(#![^\n]*\n)?\s*\/\//.test(readFileSync(path.join(root, file), 'utf8')));
  assert.deepEqual(bare, []);
});
