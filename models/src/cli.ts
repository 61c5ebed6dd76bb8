#!/usr/bin/env node
// `wlm`: the command line over the models library — train, eval, complete, summarize, export.
// Owns argument parsing, progress display and exit codes; every decision about models lives in
// the library. Bad input ends with a one-line error and a non-zero exit code.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { promises as fs, existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { PRESET_NAMES, isPresetName } from './model/config';
import { trainOnFolder, UserError, describeSkipped, type PipelineEvent } from './pipeline';
import { BACKEND_NAMES, type BackendName } from './train/backend';
import { readModelConfig } from './model/checkpoint';
import { exportOnnx } from './model/onnx';
import { CompletionSession } from './infer/session';
import { evaluateFolder, formatEvalTable } from './eval/evaluateFolder';
import { findFunctionAt, formatDocComment, languageOf, SUMMARY_LANGUAGES } from './data/sourceScanner';
import { summarize } from './summaries/summarize';

const USAGE = `usage:
  wlm train <folder> [--preset tiny|small|base] [--out DIR] [--steps N | --minutes M]
                     [--backend ${BACKEND_NAMES.join('|')}] [--resume] [--exclude GLOB]... [--summary-rate R] [--fim-rate R] [--json]
  wlm eval <model> [<folder>] [--lines N] [--editor] [--json]
  wlm complete <model> <file>:<line>:<col> [--multiline] [--max-tokens N] [--json]
  wlm summarize <model> <file>:<line> [--max-tokens N] [--json]
  wlm export <model> [--quantize [--dynamic]] [--json]`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'train':
      return trainCommand(rest);
    case 'eval':
      return evalCommand(rest);
    case 'complete':
      return completeCommand(rest);
    case 'summarize':
      return summarizeCommand(rest);
    case 'export':
      return exportCommand(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UserError(`unknown command "${command}"\n${USAGE}`);
  }
}

function parse<const O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (err) {
    throw new UserError(`${(err as Error).message}\n${USAGE}`);
  }
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UserError(`--${name} must be a positive integer, got "${value}"`);
  return n;
}

function positiveNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`--${name} must be a positive number, got "${value}"`);
  return n;
}

function requireFolder(folder: string | undefined, what: string): string {
  if (!folder) throw new UserError(`missing ${what}\n${USAGE}`);
  const resolved = path.resolve(folder);
  if (!existsSync(resolved)) throw new UserError(`${what} not found: ${resolved}`);
  if (!statSync(resolved).isDirectory()) throw new UserError(`${what} is not a folder: ${resolved}`);
  return resolved;
}

/** Progress: one JSON object per line with --json, a rewritten status line on a terminal. */
function reporter(json: boolean): (event: PipelineEvent) => void {
  const tty = process.stderr.isTTY;
  return (event) => {
    if (json) {
      process.stdout.write(JSON.stringify(event) + '\n');
      return;
    }
    switch (event.type) {
      case 'status':
        process.stderr.write(`${event.message}\n`);
        break;
      case 'scan':
        process.stderr.write(`${event.files} files, ${(event.bytes / 1024).toFixed(0)} KiB (skipped: ${describeSkipped(event.skipped)})\n`);
        break;
      case 'backend':
        process.stderr.write(`backend: ${event.name} on ${event.device}${event.fallbacks.length ? ` (not used: ${event.fallbacks.join('; ')})` : ''}\n`);
        break;
      case 'log': {
        const m = event.metrics;
        const line = `step ${m.step}/${event.maxSteps}  loss ${m.trainLoss.toFixed(4)}${m.valLoss !== undefined ? `  val ${m.valLoss.toFixed(4)}` : ''}  lr ${m.lr.toExponential(2)}  ${Math.round(m.tokensPerSecond)} tok/s`;
        if (tty && m.valLoss === undefined) process.stderr.write(`\r${line}\x1b[K`);
        else process.stderr.write(`${tty ? '\r' : ''}${line}\n`);
        break;
      }
      case 'export':
        process.stderr.write(`${tty ? '\n' : ''}exported ${event.file} (${(event.bytes / 1e6).toFixed(1)} MB, ${event.ms.toFixed(0)} ms)\n`);
        break;
      case 'mixture':
        process.stderr.write(`completion mixture fitted (${(event.ms / 1000).toFixed(1)} s)\n`);
        break;
    }
  };
}

async function trainCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    preset: { type: 'string' },
    out: { type: 'string' },
    steps: { type: 'string' },
    minutes: { type: 'string' },
    backend: { type: 'string' },
    resume: { type: 'boolean' },
    exclude: { type: 'string', multiple: true },
    'summary-rate': { type: 'string' },
    'fim-rate': { type: 'string' },
    json: { type: 'boolean' },
  });
  const folder = requireFolder(positionals[0], 'folder to train on');
  const summaryRateText = values['summary-rate'] as string | undefined;
  const summaryRate = summaryRateText === undefined ? undefined : Number(summaryRateText);
  if (summaryRate !== undefined && !(summaryRateText!.trim() !== '' && summaryRate >= 0 && summaryRate <= 1)) {
    throw new UserError(`--summary-rate must be a number in [0, 1], got "${summaryRateText}"`);
  }
  const fimRateText = values['fim-rate'] as string | undefined;
  const fimRate = fimRateText === undefined ? undefined : Number(fimRateText);
  if (fimRate !== undefined && !(fimRateText!.trim() !== '' && fimRate >= 0 && fimRate <= 1)) {
    throw new UserError(`--fim-rate must be a number in [0, 1], got "${fimRateText}"`);
  }
  if (positionals.length > 1) throw new UserError(`unexpected argument "${positionals[1]}"\n${USAGE}`);
  const preset = values.preset ?? 'small';
  if (!isPresetName(preset)) throw new UserError(`unknown preset "${preset}"; choose one of: ${PRESET_NAMES.join(', ')}`);
  const backend = values.backend as string | undefined;
  if (backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(backend)) {
    throw new UserError(`unknown backend "${backend}"; choose one of: ${BACKEND_NAMES.join(', ')}`);
  }
  if (values.steps !== undefined && values.minutes !== undefined) throw new UserError('give --steps or --minutes, not both');
  const steps = positiveInt('steps', values.steps as string | undefined);
  const minutes = positiveNumber('minutes', values.minutes as string | undefined);
  const outDir = path.resolve((values.out as string | undefined) ?? path.join('runs', `${path.basename(folder)}-${preset}`));
  if (!values.resume && existsSync(path.join(outDir, 'config.json'))) {
    throw new UserError(`${outDir} already holds a model; pass --resume to continue it or --out for a new folder`);
  }

  const controller = new AbortController();
  const onSignal = () => {
    process.stderr.write('\ninterrupted: stopping after this step, keeping the last good checkpoint\n');
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { modelDir, result } = await trainOnFolder({
      folder,
      outDir,
      preset,
      backend: backend as BackendName | undefined,
      steps,
      minutes: values.steps !== undefined ? 0 : minutes,
      resume: Boolean(values.resume),
      exclude: values.exclude as string[] | undefined,
      summaryRate,
      fimRate,
      signal: controller.signal,
      onEvent: reporter(Boolean(values.json)),
    });
    const summary = { type: 'done', modelDir, step: result.step, bestValLoss: result.bestValLoss, stopReason: result.stopReason };
    if (values.json) console.log(JSON.stringify(summary));
    else console.error(`model saved to ${modelDir} (step ${result.step}, best val loss ${result.bestValLoss?.toFixed(4) ?? 'n/a'}, ${result.stopReason})`);
    return result.stopReason === 'cancelled' ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function evalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { lines: { type: 'string' }, editor: { type: 'boolean' }, json: { type: 'boolean' } });
  const modelDir = requireFolder(positionals[0], 'model folder');
  const folder = positionals[1] !== undefined ? requireFolder(positionals[1], 'folder to evaluate on') : undefined;
  await readModelConfig(modelDir);
  // --editor scores what the editor shows (GPT + n-gram + cache mixture) instead of the GPT alone.
  const report = await evaluateFolder({ modelDir, folder, lines: positiveInt('lines', values.lines as string | undefined), system: values.editor ? 'editor' : 'model' });
  if (values.json) console.log(JSON.stringify(report));
  else console.log(formatEvalTable(report));
  return 0;
}

function parseCursor(spec: string | undefined): { file: string; line: number; col: number } {
  const match = spec ? /^(.*):(\d+):(\d+)$/.exec(spec) : null;
  if (!match) throw new UserError(`expected <file>:<line>:<col> (1-based), got "${spec ?? ''}"`);
  return { file: path.resolve(match[1]), line: Number(match[2]), col: Number(match[3]) };
}

async function completeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    multiline: { type: 'boolean' },
    'max-tokens': { type: 'string' },
    json: { type: 'boolean' },
  });
  const modelDir = requireFolder(positionals[0], 'model folder');
  const cursor = parseCursor(positionals[1]);
  let text: string;
  try {
    text = await fs.readFile(cursor.file, 'utf8');
  } catch {
    throw new UserError(`cannot read ${cursor.file}`);
  }
  const lines = text.split('\n');
  if (cursor.line < 1 || cursor.line > lines.length) {
    throw new UserError(`line ${cursor.line} is outside ${cursor.file} (it has ${lines.length} lines)`);
  }
  const lineText = lines[cursor.line - 1].replace(/\r$/, '');
  if (cursor.col < 1 || cursor.col > lineText.length + 1) {
    throw new UserError(`column ${cursor.col} is outside line ${cursor.line} (it has ${lineText.length} characters)`);
  }
  const offset = lines.slice(0, cursor.line - 1).reduce((n, l) => n + l.length + 1, 0) + cursor.col - 1;
  const maxTokens = positiveInt('max-tokens', values['max-tokens'] as string | undefined) ?? 32;
  const session = await CompletionSession.open(modelDir);
  try {
    const result = await session.complete({
      prefix: text.slice(0, offset),
      suffix: text.slice(offset),
      mode: values.multiline ? 'block' : 'line',
      maxTokens,
    });
    if (values.json) console.log(JSON.stringify({ ...result, provider: session.provider }));
    else {
      console.error(`${cursor.file}:${cursor.line}:${cursor.col} (${session.provider}, ${result.ms.toFixed(1)} ms, ${result.tokens} tokens)`);
      console.log(`${lineText.slice(0, cursor.col - 1)}\x1b[2m${result.text}\x1b[0m`);
    }
  } finally {
    await session.close();
  }
  return 0;
}

/** Proposes a summary of the function, method or class around <file>:<line> and prints it as a doc comment. */
async function summarizeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { 'max-tokens': { type: 'string' }, json: { type: 'boolean' } });
  const modelDir = requireFolder(positionals[0], 'model folder');
  const match = positionals[1] ? /^(.*):(\d+)$/.exec(positionals[1]) : null;
  if (!match) throw new UserError(`expected <file>:<line> (1-based), got "${positionals[1] ?? ''}"`);
  const file = path.resolve(match[1]);
  const line = Number(match[2]);
  const maxTokens = positiveInt('max-tokens', values['max-tokens'] as string | undefined);
  const languageId = languageOf(file);
  if (!languageId) throw new UserError(`cannot summarize ${path.basename(file)}: unsupported language (supported: ${SUMMARY_LANGUAGES.join(', ')})`);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new UserError(`cannot read ${file}`);
  }
  const lineCount = text.split('\n').length;
  if (line < 1 || line > lineCount) throw new UserError(`line ${line} is outside ${file} (it has ${lineCount} lines)`);
  const definition = findFunctionAt(text, languageId, line - 1);
  if (!definition.ok) throw new UserError(`${file}:${line}: ${definition.reason}`);
  await readModelConfig(modelDir);
  const result = await summarize(modelDir, definition.code, { maxTokens });
  const comment = formatDocComment(result.summary, languageId, definition.insert.indent);
  if (values.json) {
    // insertLine: 1-based line the doc comment goes before; docComment null when the summary is empty.
    console.log(JSON.stringify({ ...result, name: definition.name, kind: definition.kind, insertLine: definition.insert.line + 1, docComment: comment.ok ? comment.text : null }));
    return 0;
  }
  const where = `${definition.kind} ${definition.name ?? '(anonymous)'} at line ${definition.startLine + 1}`;
  console.error(`${file}:${line}: ${where} (${result.ms.toFixed(0)} ms, ${result.tokens} tokens)`);
  if (!result.trainedForSummaries) console.error('note: this model was trained without summary examples (train.summaryRate 0); expect noise');
  if (!comment.ok) throw new UserError(`the model proposed no summary for ${where} (hint: train longer, or with a higher summaryRate)`);
  console.log(result.summary);
  process.stdout.write(comment.text);
  return 0;
}

async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { quantize: { type: 'boolean' }, dynamic: { type: 'boolean' }, json: { type: 'boolean' } });
  const modelDir = requireFolder(positionals[0], 'model folder');
  await readModelConfig(modelDir);
  if (values.dynamic && !values.quantize) throw new UserError('--dynamic refines --quantize; pass both');
  // --quantize: int8 weights (a quarter of the size); --dynamic: int8 matrix products too (faster on CPU).
  const result = await exportOnnx(modelDir, { quantize: values.dynamic ? 'dynamic' : Boolean(values.quantize) });
  if (values.json) console.log(JSON.stringify(result));
  else console.log(`wrote ${result.file} (${(result.bytes / 1e6).toFixed(2)} MB) in ${result.ms.toFixed(0)} ms`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    // Library errors about bad input are written for users; anything else gets its stack with --debug.
    if (process.env.WLM_DEBUG && err instanceof Error) console.error(err.stack);
    console.error(`wlm: ${message.split('\n').join('\n     ')}`);
    process.exitCode = 1;
  },
);
