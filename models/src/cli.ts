#!/usr/bin/env node
// `wlm`: the command line over the models library — train, fine-tune, eval, complete, summarize,
// export, models, bench; `wlm <command> --help` for each.
// Owns argument parsing, progress display and exit codes; every decision about models lives in
// the library. Bad input ends with a one-line error and a non-zero exit code.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { promises as fs, existsSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { DEFAULT_PRESET, PRESET_NAMES, isPresetName } from './model/config';
import { trainOnFolder, describeSkipped, type PipelineEvent, type TrainOnFolderOptions } from './pipeline';
import { BACKEND_NAMES, type BackendName } from './train/backend';
import { hasModelConfig, readModelConfig } from './model/checkpoint';
import { BASE_MODEL_ENV, baseModelDir } from './model/base';
import { ModelStore } from './model/store';
import { acquireTrainingLock } from './model/storeLock';
import { exportShareable } from './shareable';
import { changedFilesSince } from './data/changedFiles';
import { exportOnnx } from './model/onnx';
import { CompletionSession } from './infer/session';
import { evaluateFolder, formatEvalTable } from './eval/evaluateFolder';
import { languageOf, SUMMARY_LANGUAGES } from './data/sourceScanner';
import { findFunctionAt, formatDocComment } from './summaries/functionAt';
import { summarize } from './summaries/summarize';
import { UserError, printable } from './util/errors';

/** A flag of a command: its value's name in the usage line (none for a switch) and one line of help. */
interface Flag {
  value?: string; // e.g. 'N' or 'tiny|small|base'; absent: a boolean switch
  multiple?: boolean; // may be given more than once
  help: string;
}

type Values = Record<string, string | boolean | string[] | undefined>;

interface Command {
  args: string; // the positional arguments, as the usage line shows them
  summary: string;
  flags: Record<string, Flag>;
  run(values: Values, positionals: string[]): Promise<number>;
}

const JSON_FLAG: Flag = { help: 'machine-readable output: JSON on stdout' };

const COMMANDS: Record<string, Command> = {
  train: {
    args: '<folder>',
    summary: `train a model on the code in a folder: the pre-trained base fine-tuned (${BASE_MODEL_ENV} may name another base), or from scratch where it cannot be (Ctrl+C stops after the current step; --resume continues)`,
    flags: {
      preset: { value: PRESET_NAMES.join('|'), help: `model size (default ${DEFAULT_PRESET}); a preset that is not the base's architecture trains from scratch` },
      out: { value: 'DIR', help: 'the model folder to create (default runs/<folder>-<preset>)' },
      steps: { value: 'N', help: "optimizer steps, instead of the preset's time budget" },
      minutes: { value: 'M', help: "wall-clock budget in minutes; 0: no gradient step, the base as it is with this folder's n-gram and completion mixture" },
      'from-scratch': { help: "a tokenizer of this folder's own and random weights, instead of the pre-trained base" },
      lora: { value: 'R', help: 'fine-tune the base through low-rank adapters of rank R (8 is usual) instead of all its weights; merged into them when saved' },
      backend: { value: BACKEND_NAMES.join('|'), help: 'force a training engine (default: the best that loads here)' },
      resume: { help: 'continue the run saved in --out' },
      exclude: { value: 'GLOB', multiple: true, help: 'leave files out, on top of .gitignore' },
      'summary-rate': { value: 'R', help: 'share of documented definitions mixed in as summary examples, 0 to 1' },
      'fim-rate': { value: 'R', help: 'share of documents rewritten as fill-in-the-middle examples, 0 to 1' },
      json: JSON_FLAG,
    },
    run: trainCommand,
  },
  'fine-tune': {
    args: '<model> <folder>',
    summary: "continue a model on a folder: all of it, the files changed since the model was trained, or chosen files (the completion mixture's n-gram counts the whole folder)",
    flags: {
      scope: { value: 'changed|folder|files', help: 'which files (default changed: git diff against the commit the model saw, or newer files)' },
      files: { value: 'FILE', multiple: true, help: 'with --scope files: a file to train on, relative to the folder' },
      'freeze-layers': { value: 'K', help: 'keep the embeddings and the lowest K blocks fixed (default 0)' },
      lora: { value: 'R', help: "train low-rank adapters of rank R (8 is usual) instead of the model's weights; merged into them when saved" },
      out: { value: 'DIR', help: 'the new model folder (default <model>-ft)' },
      steps: { value: 'N', help: 'optimizer steps' },
      minutes: { value: 'M', help: 'wall-clock budget in minutes' },
      'learning-rate': { value: 'LR', help: "peak learning rate (default: the preset's fine-tune rate; with --lora, its from-scratch rate)" },
      backend: { value: BACKEND_NAMES.join('|'), help: 'force a training engine' },
      exclude: { value: 'GLOB', multiple: true, help: 'leave files out, on top of .gitignore' },
      json: JSON_FLAG,
    },
    run: fineTuneCommand,
  },
  eval: {
    args: '<model> [<folder>]',
    summary: 'score a model against the n-gram baseline on held-out files (the model\'s own split, or a folder)',
    flags: {
      lines: { value: 'N', help: 'held-out lines to complete (default 200)' },
      editor: { help: 'score what the editor shows: the GPT mixed with the workspace n-gram and the open-files cache' },
      json: JSON_FLAG,
    },
    run: evalCommand,
  },
  complete: {
    args: '<model> <file>:<line>:<col>',
    summary: 'complete the code at a cursor (1-based line and column)',
    flags: {
      multiline: { help: 'complete a block instead of the rest of the line' },
      'max-tokens': { value: 'N', help: 'tokens to generate at most (default 32)' },
      json: JSON_FLAG,
    },
    run: completeCommand,
  },
  summarize: {
    args: '<model> <file>:<line>',
    summary: 'propose a doc comment for the function, method or class around a line',
    flags: { 'max-tokens': { value: 'N', help: 'tokens of summary at most' }, json: JSON_FLAG },
    run: summarizeCommand,
  },
  export: {
    args: '<model>',
    summary: 'write model.onnx, the file completions are served from; or, with --shareable, a copy of the model fit to give away',
    flags: {
      quantize: { help: 'int8 weights: a quarter of the size' },
      dynamic: { help: 'with --quantize: int8 matrix products too (faster on CPU)' },
      shareable: { help: "copy the model to --out without what holds its code verbatim (the n-gram, the mixture, eval.json's examples); says what it left out" },
      out: { value: 'DIR', help: 'with --shareable: the new folder to write' },
      json: JSON_FLAG,
    },
    run: exportCommand,
  },
  models: {
    args: '[list | select <name> | delete <name>]',
    summary: 'the models in a models folder: list them, choose the one that serves, delete one',
    flags: { dir: { value: 'DIR', help: 'the models folder (default runs)' }, json: JSON_FLAG },
    run: modelsCommand,
  },
  bench: {
    args: '',
    summary: 'speed and quality on real code fetched from the npm registry (a development checkout only)',
    flags: {
      only: { value: 'SECTIONS', help: 'comma-separated sections, e.g. speed,latency,quality' },
      'quality-minutes': { value: 'M', help: 'training budget of the quality section' },
      'speed-steps': { value: 'N', help: 'optimizer steps of each training-speed run (default 12)' },
      'latency-lines': { value: 'N', help: 'the latency sections: lines typed per file, early and deep (default 4)' },
      'latency-chars': { value: 'N', help: 'the latency sections: characters typed per line at most (default 32)' },
      'scale-sizes': { value: 'MB,…', help: 'the scale section: workspace sizes in MB (default 1,5,20)' },
      'finetune-steps': { value: 'N', help: 'optimizer steps of each fine-tune mode in the finetune section (default 150)' },
      'fim-steps': { value: 'N', help: 'the fim section (--only fim): optimizer steps of continued pre-training per FIM rate (default 400)' },
      'fim-rates': { value: 'R,…', help: 'the fim section: FIM rates compared, one arm each (default 0,0.5)' },
      'fim-lines': { value: 'N', help: 'the fim section: held-out rxjs lines (default 200)' },
      'base-scale': { value: 'X', help: 'the base section (--only base): every training budget times X, e.g. 0.2 for a quick run (default 1)' },
      'base-lines': { value: 'N', help: 'the base section: held-out lines per workspace (default 200)' },
      'base-workspaces': { value: 'W,…', help: 'the base section: rxjs, msw or both (default rxjs,msw)' },
    },
    run: benchCommand,
  },
};

function usageLine(name: string, command: Command): string {
  const flags = Object.entries(command.flags).map(([flag, spec]) => `[--${flag}${spec.value ? ` ${spec.value}` : ''}]${spec.multiple ? '...' : ''}`);
  return ['wlm', name, command.args, ...flags, '[--help]'].filter(Boolean).join(' ');
}

const USAGE = `usage:\n${Object.entries(COMMANDS).map(([name, command]) => `  ${usageLine(name, command)}`).join('\n')}\n  wlm <command> --help`;

function commandHelp(name: string, command: Command): string {
  const width = 24; // a longer flag pushes its help along rather than widening every row
  const rows = Object.entries(command.flags).map(([flag, spec]) => `  --${`${flag}${spec.value ? ` ${spec.value}` : ''}`.padEnd(width)}  ${spec.help}`);
  return [`usage: ${usageLine(name, command)}`, '', command.summary, '', ...rows, `  --${'help'.padEnd(width)}  this text`].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    console.log(USAGE);
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UserError(`unknown command "${name}"\n${USAGE}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(commandHelp(name, command));
    return 0;
  }
  const { values, positionals } = parse(name, command, rest);
  return command.run(values, positionals);
}

function parse(name: string, command: Command, args: string[]): { values: Values; positionals: string[] } {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [flag, spec] of Object.entries(command.flags)) options[flag] = { type: spec.value ? 'string' : 'boolean', ...(spec.multiple ? { multiple: true } : {}) };
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (err) {
    throw new UserError(`${(err as Error).message}\nusage: ${usageLine(name, command)}`);
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

async function trainCommand(values: Values, positionals: string[]): Promise<number> {
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
  if (positionals.length > 1) throw new UserError(`unexpected argument "${positionals[1]}"\nusage: ${usageLine('train', COMMANDS.train)}`);
  const preset = (values.preset as string | undefined) ?? DEFAULT_PRESET;
  if (!isPresetName(preset)) throw new UserError(`unknown preset "${preset}"; choose one of: ${PRESET_NAMES.join(', ')}`);
  const backend = values.backend as string | undefined;
  if (backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(backend)) {
    throw new UserError(`unknown backend "${backend}"; choose one of: ${BACKEND_NAMES.join(', ')}`);
  }
  if (values.steps !== undefined && values.minutes !== undefined) throw new UserError('give --steps or --minutes, not both');
  const steps = positiveInt('steps', values.steps as string | undefined);
  // --minutes 0: no training at all, a serving folder made from the base (pipeline.ts noTraining).
  const noTraining = typeof values.minutes === 'string' && values.minutes.trim() !== '' && Number(values.minutes) === 0;
  const minutes = noTraining ? undefined : positiveNumber('minutes', values.minutes as string | undefined);
  const fromScratch = Boolean(values['from-scratch']);
  if (noTraining && (fromScratch || values.resume)) throw new UserError(`--minutes 0 serves the pre-trained base as it is; it does not go with ${fromScratch ? '--from-scratch' : '--resume'}`);
  const outDir = path.resolve((values.out as string | undefined) ?? path.join('runs', `${path.basename(folder)}-${noTraining ? 'base' : preset}`));
  if (!values.resume && hasModelConfig(outDir)) {
    throw new UserError(`${outDir} already holds a model; pass --resume to continue it or --out for a new folder`);
  }
  return runTraining({
    folder,
    outDir,
    // Without training the folder keeps the base's architecture: a preset is only checked against it.
    preset: noTraining ? (values.preset as string | undefined) : preset,
    backend: backend as BackendName | undefined,
    steps,
    minutes: values.steps !== undefined ? 0 : minutes,
    resume: Boolean(values.resume),
    exclude: values.exclude as string[] | undefined,
    summaryRate,
    fimRate,
    base: fromScratch ? null : baseModelDir(),
    fromScratch,
    noTraining,
    loraRank: positiveInt('lora', values.lora as string | undefined),
  }, Boolean(values.json));
}

/** Trains with Ctrl+C (or a TERM) stopping after the current step; exit 130 when it did. */
async function runTraining(opts: Omit<TrainOnFolderOptions, 'signal' | 'onEvent'>, json: boolean): Promise<number> {
  // One training per models folder at a time (a server's too): the folder --out goes into is locked.
  const lock = acquireTrainingLock(path.dirname(path.resolve(opts.outDir)), { holder: `wlm ${opts.init ? 'fine-tune' : 'train'}`, model: path.basename(path.resolve(opts.outDir)) });
  const controller = new AbortController();
  const onSignal = () => {
    process.stderr.write('\ninterrupted: stopping after this step, keeping the last good checkpoint\n');
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { modelDir, result } = await trainOnFolder({ ...opts, signal: controller.signal, onEvent: reporter(json) });
    const summary = { type: 'done', modelDir, step: result.step, bestValLoss: result.bestValLoss, stopReason: result.stopReason };
    if (json) console.log(JSON.stringify(summary));
    else if (result.stopReason === 'noTraining') console.error(`model saved to ${modelDir} (no gradient step: the base's weights with this folder's n-gram and completion mixture)`);
    else console.error(`model saved to ${modelDir} (step ${result.step}, best val loss ${result.bestValLoss?.toFixed(4) ?? 'n/a'}, ${result.stopReason === 'earlyStop' ? 'stopped early: the held-out loss had stopped improving' : result.stopReason})`);
    return result.stopReason === 'cancelled' ? 130 : 0;
  } finally {
    lock.release();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The model's folder continued on the folder's files (all, changed since the model, or chosen), into a new model folder. */
async function fineTuneCommand(values: Values, positionals: string[]): Promise<number> {
  const modelDir = requireFolder(positionals[0], 'model folder');
  const folder = requireFolder(positionals[1], 'folder to fine-tune on');
  if (positionals.length > 2) throw new UserError(`unexpected argument "${positionals[2]}"\nusage: ${usageLine('fine-tune', COMMANDS['fine-tune'])}`);
  const base = await readModelConfig(modelDir);
  const scope = (values.scope as string | undefined) ?? 'changed';
  if (!['changed', 'folder', 'files'].includes(scope)) throw new UserError(`--scope must be changed, folder or files, got "${scope}"`);
  const chosen = values.files as string[] | undefined;
  if ((scope === 'files') !== Boolean(chosen?.length)) throw new UserError('--files goes with --scope files, and --scope files needs at least one --files');
  const freezeText = values['freeze-layers'] as string | undefined;
  const freezeLayers = freezeText === undefined ? 0 : Number(freezeText);
  if (!Number.isInteger(freezeLayers) || freezeLayers < 0 || freezeLayers > base.model.nLayer) {
    throw new UserError(`--freeze-layers must be an integer from 0 to ${base.model.nLayer} (the model's layers), got "${freezeText}"`);
  }
  const loraRank = positiveInt('lora', values.lora as string | undefined);
  if (loraRank !== undefined && loraRank > base.model.nEmbd) throw new UserError(`--lora must be a rank from 1 to ${base.model.nEmbd} (the model's width), got ${loraRank}`);
  if (loraRank !== undefined && freezeLayers > 0) throw new UserError('give --lora or --freeze-layers, not both');
  const backend = values.backend as string | undefined;
  if (backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(backend)) {
    throw new UserError(`unknown backend "${backend}"; choose one of: ${BACKEND_NAMES.join(', ')}`);
  }
  if (values.steps !== undefined && values.minutes !== undefined) throw new UserError('give --steps or --minutes, not both');
  const steps = positiveInt('steps', values.steps as string | undefined);
  const minutes = positiveNumber('minutes', values.minutes as string | undefined);
  const learningRate = positiveNumber('learning-rate', values['learning-rate'] as string | undefined);
  const exclude = values.exclude as string[] | undefined;

  let files: string[] | undefined;
  if (scope === 'files') files = chosen!.map((f) => (path.isAbsolute(f) ? path.relative(folder, f) : f).split(path.sep).join('/'));
  if (scope === 'changed') {
    const changed = await changedFilesSince(folder, base.data?.gitCommit, new Date(base.createdAt), exclude);
    if (changed.files.length === 0) throw new UserError(`no files changed since ${modelDir} was trained (${changed.how}); pass --scope folder or --scope files`);
    if (!values.json) process.stderr.write(`fine-tune scope: ${changed.files.length} changed files (${changed.how})\n`);
    files = changed.files;
  }
  const outDir = path.resolve((values.out as string | undefined) ?? `${modelDir.replace(/[\\/]+$/, '')}-ft`);
  if (hasModelConfig(outDir)) throw new UserError(`${outDir} already holds a model; pass --out for a new folder`);
  return runTraining({
    folder, outDir, init: modelDir, preset: base.preset, backend: backend as BackendName | undefined,
    steps, minutes: values.steps !== undefined ? 0 : minutes, learningRate, freezeLayers, loraRank, files, exclude,
  }, Boolean(values.json));
}

async function evalCommand(values: Values, positionals: string[]): Promise<number> {
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

async function completeCommand(values: Values, positionals: string[]): Promise<number> {
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
      // The completion dimmed after the line so far, as ghost text; plain text into a pipe or with NO_COLOR.
      const dim = process.stdout.isTTY && !process.env.NO_COLOR ? (t: string) => `\x1b[2m${t}\x1b[0m` : (t: string) => t;
      console.log(`${lineText.slice(0, cursor.col - 1)}${dim(result.text)}`);
    }
  } finally {
    await session.close();
  }
  return 0;
}

/** Proposes a summary of the function, method or class around <file>:<line> and prints it as a doc comment. */
async function summarizeCommand(values: Values, positionals: string[]): Promise<number> {
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

async function exportCommand(values: Values, positionals: string[]): Promise<number> {
  const modelDir = requireFolder(positionals[0], 'model folder');
  await readModelConfig(modelDir);
  if (values.dynamic && !values.quantize) throw new UserError('--dynamic refines --quantize; pass both');
  if (Boolean(values.shareable) !== (values.out !== undefined)) throw new UserError('--shareable writes its copy to --out DIR: pass both');
  if (values.shareable) {
    if (values.quantize) throw new UserError('--shareable copies the model as it is; quantize the copy with a second wlm export');
    return shareableCommand(modelDir, path.resolve(values.out as string), Boolean(values.json));
  }
  // --quantize: int8 weights (a quarter of the size); --dynamic: int8 matrix products too (faster on CPU).
  const result = await exportOnnx(modelDir, { quantize: values.dynamic ? 'dynamic' : Boolean(values.quantize) });
  if (values.json) console.log(JSON.stringify(result));
  else console.log(`wrote ${result.file} (${(result.bytes / 1e6).toFixed(2)} MB) in ${result.ms.toFixed(0)} ms`);
  return 0;
}

/** `wlm export <model> --shareable --out DIR`: the copy, what it holds, what it left out and why. */
async function shareableCommand(modelDir: string, outDir: string, json: boolean): Promise<number> {
  const copy = await exportShareable(modelDir, outDir);
  if (json) {
    console.log(JSON.stringify(copy));
    return 0;
  }
  console.log(`wrote a shareable copy of ${modelDir} to ${copy.outDir}: ${copy.copied.join(', ')}`);
  for (const { file, why } of copy.leftOut) console.log(`  left out ${file}: ${why}`);
  console.error('note: the weights were trained on the code and can still reproduce fragments of it; share the copy only where the code may go');
  return 0;
}

/** `wlm models [list | select <name> | delete <name>]` over a models folder (default runs/). */
async function modelsCommand(values: Values, positionals: string[]): Promise<number> {
  const [action = 'list', name, extra] = positionals;
  const store = new ModelStore(path.resolve((values.dir as string | undefined) ?? 'runs'));
  // A models folder not made yet holds no models; a file in its place is a mistake to say.
  if (existsSync(store.modelsDir) && !statSync(store.modelsDir).isDirectory()) throw new UserError(`models folder is not a folder: ${store.modelsDir}`);
  if (extra !== undefined || (action === 'list' ? name !== undefined : name === undefined) || !['list', 'select', 'delete'].includes(action)) {
    throw new UserError(`expected list, select <name> or delete <name>, got "${positionals.join(' ')}"\nusage: ${usageLine('models', COMMANDS.models)}`);
  }
  if (action === 'select') {
    await store.prepare(name, null);
    await store.writeActive(name);
  } else if (action === 'delete') {
    await store.remove(name, null);
  }
  const { models, active } = await store.list(null);
  if (values.json) {
    console.log(JSON.stringify({ modelsDir: store.modelsDir, active, models }));
    return 0;
  }
  if (action !== 'list') console.error(`${action === 'select' ? 'selected' : 'deleted'} ${name}`);
  if (models.length === 0) console.error(`no models in ${store.modelsDir}`);
  for (const model of models) {
    const figures = model.state === 'ready' || model.state === 'incomplete'
      ? `${model.preset ?? '?'}, step ${model.step ?? '?'}, val loss ${model.bestValLoss?.toFixed(3) ?? 'n/a'}${model.parent ? `, from ${model.parent}` : ''}`
      : '';
    console.log(`${model.active ? '*' : ' '} ${model.name}  ${model.state}${figures ? `  ${figures}` : ''}${model.reason ? `  (${model.reason})` : ''}`);
  }
  return 0;
}

/** Runs the benchmarks next to the CLI (dist/bench.js) or from a source checkout, with the same flags. */
async function benchCommand(values: Values, positionals: string[]): Promise<number> {
  if (positionals.length > 0) throw new UserError(`unexpected argument "${positionals[0]}"\nusage: ${usageLine('bench', COMMANDS.bench)}`);
  const built = path.join(__dirname, 'bench.js');
  const source = path.resolve(__dirname, '..', '..', 'bench', 'bench.ts');
  const args = Object.entries(values).filter(([, v]) => v !== undefined).flatMap(([flag, v]) => [`--${flag}`, String(v)]);
  const argv = existsSync(built) ? [built, ...args] : existsSync(source) ? ['--import', 'tsx', source, ...args] : null;
  if (!argv) throw new UserError('the benchmarks ship with the development checkout, not with the extension; run npm run bench there');
  const child = spawn(process.execPath, argv, { stdio: 'inherit' });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 130 : 1))));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    // Library errors about bad input are written for users; anything else gets its stack with --debug.
    if (process.env.WLM_DEBUG && err instanceof Error) console.error(err.stack);
    // A message may quote a file name or a file's bytes: never let them drive the terminal.
    console.error(`wlm: ${printable(message).split('\n').join('\n     ')}`);
    process.exitCode = 1;
  },
);
