// Fault suite, zero network: train, evaluate and a run of completions from the CLI, then the
// language server training, evaluating and completing, all under `strace -f -e trace=socket,connect`
// (Debian's strace; .ci/run installs it). Every socket opened by any process or thread is listed;
// the only family allowed is AF_UNIX (the server's own pipes, node's internal ones). An AF_INET,
// AF_INET6 or any other family is a failure, printed with its line.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LspClient } from '../lsp/lspClient';
import { EvaluateRequest, TrainRequest, type JobResult } from '../../protocol/src/customMessages';
import { Tally, cliJs, fixture, repoRoot, type Outcome } from './faultKit';

const tally = new Tally('network');
let tmp: string;
const TRACE = ['-f', '-qq', '-e', 'trace=socket,connect,socketpair'];

before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wlm-faults-net-'));
  const probe = spawnSync('strace', ['-V'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, `strace is needed to prove zero network (Debian: apt-get install -y strace; .ci/run installs it): ${probe.error ?? probe.stderr}`);
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
  tally.finish();
});

/** The socket and connect calls of a trace, by address family; anything but AF_UNIX is a finding. */
function readTrace(file: string): { calls: number; families: Record<string, number>; foreign: string[] } {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => /\b(socket|connect|socketpair)\(/.test(l));
  const families: Record<string, number> = {};
  const foreign: string[] = [];
  for (const line of lines) {
    const family = /\b(AF_[A-Z0-9]+|PF_[A-Z0-9]+)\b/.exec(line)?.[1] ?? 'unknown';
    families[family] = (families[family] ?? 0) + 1;
    if (family !== 'AF_UNIX' && family !== 'PF_UNIX') foreign.push(line.trim());
  }
  return { calls: lines.length, families, foreign };
}

function traced(label: string, argv: string[]): Outcome {
  const file = path.join(tmp, `${label.replace(/\W+/g, '-')}.trace`);
  const r = spawnSync('strace', [...TRACE, '-o', file, process.execPath, cliJs, ...argv], { cwd: repoRoot, encoding: 'utf8', timeout: 240_000 });
  if (r.status !== 0) return { kind: 'crash', detail: `${label} failed under strace (exit ${r.status ?? r.signal}): ${r.stderr.slice(-400)}` };
  return judge(label, file);
}

function judge(label: string, file: string): Outcome {
  const trace = readTrace(file);
  tally.data.sockets.traced++;
  tally.data.sockets.inet += trace.foreign.length;
  tally.data.sockets.lines.push(...trace.foreign.map((l) => `${label}: ${l}`));
  tally.note(`${label}: ${trace.calls} socket/connect calls, by family ${JSON.stringify(trace.families)}`);
  if (trace.foreign.length) return { kind: 'crash', detail: `opened ${trace.foreign.length} non-local sockets: ${trace.foreign.slice(0, 3).join(' | ')}` };
  return { kind: 'defined', what: `no network: ${JSON.stringify(trace.families)}` };
}

test('the CLI trains, evaluates and completes without opening a network socket', { timeout: 300_000 }, async () => {
  const model = path.join(tmp, 'model');
  const file = path.join(fixture, 'src', 'inventory.ts');
  await tally.probe('zero network', 'wlm train', async () => traced('wlm train', ['train', fixture, '--preset', 'tiny', '--steps', '10', '--out', model]), 250_000);
  await tally.probe('zero network', 'wlm eval', async () => traced('wlm eval', ['eval', model, '--lines', '30']), 120_000);
  for (const at of ['12:10', '77:1']) {
    await tally.probe('zero network', `wlm complete ${at}`, async () => traced(`wlm complete ${at}`, ['complete', model, `${file}:${at}`]), 60_000);
  }
});

test('the language server trains, evaluates and completes without opening a network socket', { timeout: 300_000 }, async () => {
  const project = path.join(tmp, 'project');
  cpSync(fixture, project, { recursive: true });
  const file = path.join(tmp, 'server.trace');
  await tally.probe('zero network', 'the language server: train, evaluate, complete', async (): Promise<Outcome> => {
    const child = spawn('strace', [...TRACE, '-o', file, process.execPath, path.join(repoRoot, 'dist', 'server.js'), '--stdio'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr!.on('data', () => undefined);
    const client = new LspClient(child);
    client.connection.onRequest('window/workDoneProgress/create', () => null);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await client.connection.sendRequest('initialize', {
      processId: process.pid, rootUri: pathToFileURL(project).href, workspaceFolders: [{ uri: pathToFileURL(project).href, name: 'p' }], capabilities: {},
      // No base model: the train request below is then the only job (a base would start one of its own first).
      initializationOptions: { storageDir: path.join(tmp, 'storage'), baseModel: null, settings: { preset: 'tiny', minTokenProbability: 0 } },
    });
    await client.connection.sendNotification('initialized', {});
    const trained = await client.request<TrainRequest.Params, JobResult>(TrainRequest.type, { preset: 'tiny', steps: 10 });
    await client.request(EvaluateRequest.type, { model: trained.model, lines: 20 });
    const uri = pathToFileURL(path.join(project, 'src', 'inventory.ts')).href;
    const text = readFileSync(path.join(project, 'src', 'inventory.ts'), 'utf8');
    await client.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'typescript', version: 1, text } });
    const lines = text.split('\n');
    for (let line = 5; line < 40; line += 7) await client.completeAt(uri, line, lines[line].length);
    await client.connection.sendRequest('shutdown');
    await client.connection.sendNotification('exit');
    const code = await exited;
    client.connection.dispose();
    if (code !== 0) return { kind: 'crash', detail: `the server exited ${code}` };
    return judge('language server', file);
  }, 280_000);
});
