// The UI scenarios of the end-to-end run, in the order a user meets them: a fresh workspace gets
// ghost text from the shipped base model with no training, the packaged extension
// shows up, trains a tiny model from the palette, completes code with ghost text, shows the run in
// its metrics panel, summarises a function, snoozes completions from the status bar menu, and
// survives a second training cancelled from its notification. Then, in a second code-server with
// workspace trust on, an untrusted folder offers no training in the palette. Each is a named
// function over one Workbench; run.ts sequences them, screenshots failures and counts.
// Selectors come from selectors.ts; the gestures from driver.ts.
import * as assert from 'node:assert/strict';
import { promises as fs, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { CodeServer, Workbench } from './driver';
import * as sel from './selectors';
import { repoRoot } from './driver';
import { runCacheDir } from '../../models/src/model/runCache';

export interface ScenarioContext {
  workbench: Workbench;
  workspace: string; // the temp copy of the fixture project
  server: CodeServer;
  state: { firstModel?: string; trainMs?: number; baseModel?: string; baseGhost?: string };
  opened: { startedAt: number; readyAt: number }; // when the workbench's page was asked for, and when it showed
}

/** Which code-server a scenario needs: the main one (every folder trusted), or one with workspace trust on. */
export type Session = 'trusted' | 'untrusted';

export interface Scenario {
  name: string;
  needs?: string[]; // names of scenarios that must have passed first
  session?: Session; // default 'trusted'
  /** Why the scenario cannot run with this build (e.g. its command is not contributed), or null. */
  unavailable?: () => string | null;
  run(ctx: ScenarioContext): Promise<void>;
}

const TRAIN = 'Workspace LM: Train Model on Workspace';
const FINE_TUNE = 'Workspace LM: Fine-tune Model';
const SELECT = 'Workspace LM: Select Model';
const CANCEL = 'Workspace LM: Cancel Training';
const EVALUATE = 'Workspace LM: Evaluate Model';
const SUMMARIZE = 'Workspace LM: Summarize Function';
// A line start the tiny model, trained for seconds on the fixture, continues with visible text
// ("value * …"); after "export function " it may well propose only a line break.
const TYPED_PREFIX = '  return ';
const TRAIN_TIMEOUT_MS = 180_000; // the tiny preset; generous for a loaded 2-core CI machine
// The goal is 60 s for a 3 MB workspace; the fixture is far smaller. Generous for a loaded machine.
const BASE_GHOST_TIMEOUT_MS = 120_000;
const PREPARING = /preparing completions from the base model/;

interface ManifestCommand {
  command: string;
  title: string;
  category?: string;
}

function contributedTitles(): string[] {
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  return ((manifest.contributes?.commands ?? []) as ManifestCommand[]).map((c) => (c.category ? `${c.category}: ${c.title}` : c.title));
}

/** Model folders of this workspace, wherever the extension keeps them in the temp profile (not the store's files, e.g. active.json). */
function modelFolders(server: CodeServer): string[] {
  const storage = path.join(server.userDataDir, 'User', 'workspaceStorage');
  if (!existsSync(storage)) return [];
  const found: string[] = [];
  for (const hash of readdirSync(storage)) {
    const models = path.join(storage, hash, 'workspace-lm.workspace-lm', 'models');
    // Dot-folders are not models: .wlm-cache holds the runs' token files and resume state (model/runCache.ts).
    if (existsSync(models)) for (const entry of readdirSync(models, { withFileTypes: true })) if (entry.isDirectory() && !entry.name.startsWith('.')) found.push(path.join(models, entry.name));
  }
  return found;
}

/** Picks the first row of the quick pick that offers `expected`, after checking it is the first. */
async function acceptFirstPick(wb: Workbench, expected: string): Promise<void> {
  // The palette's own rows linger for a moment after a command opens its quick pick.
  await wb.page.locator(sel.quickInput.rowWithText(expected)).first().waitFor({ state: 'visible', timeout: 15_000 });
  const text = await wb.page.locator(sel.quickInput.row).first().innerText();
  assert.ok(text.includes(expected), `the first quick pick row is ${JSON.stringify(text)}, expected it to offer ${JSON.stringify(expected)}`);
  await wb.page.keyboard.press('Enter');
}

/** Starts a training of the workspace's preset (tiny) from the palette; returns the row's text (with its estimate). */
async function startTraining(wb: Workbench): Promise<string> {
  await wb.runCommand(TRAIN);
  await wb.page.locator(sel.quickInput.rowWithText('tiny')).first().waitFor({ state: 'visible', timeout: 15_000 });
  const row = await wb.page.locator(sel.quickInput.row).first().innerText();
  await acceptFirstPick(wb, 'tiny');
  return row;
}

/** Waits until the status bar shows a running training (the client's progress item). */
async function waitForTrainingProgress(wb: Workbench, timeoutMs: number): Promise<string> {
  const item = wb.page.locator(sel.workbench.statusBarItem('WLM training')).first();
  await item.waitFor({ state: 'visible', timeout: timeoutMs });
  return (await item.innerText()).trim();
}

/** Ghost text within `timeoutMs`, asking explicitly (Alt+\\) at the start and halfway; '' if none. */
async function askForGhost(wb: Workbench, timeoutMs: number): Promise<string> {
  await wb.page.keyboard.press('Alt+Backslash');
  const ghost = await wb.waitForGhostText(timeoutMs / 2);
  if (ghost) return ghost;
  await wb.page.keyboard.press('Alt+Backslash');
  return wb.waitForGhostText(timeoutMs / 2);
}

/**
 * Asks again for ghost text at the cursor of the active editor, with the same text: a keystroke
 * typed and taken back makes a new document version, so VS Code asks the provider anew instead of
 * reusing its last answer for this place.
 */
async function retypeAndAskForGhost(wb: Workbench, timeoutMs: number): Promise<string> {
  await wb.runCommand('View: Focus Active Editor Group');
  await wb.page.keyboard.type('x');
  await wb.page.keyboard.press('Backspace');
  return askForGhost(wb, timeoutMs);
}

/** The model folder a running training writes: the first one that was not there before. */
async function newModelFolder(server: CodeServer, before: Set<string>, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = modelFolders(server).find((dir) => !before.has(dir));
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`no new model folder within ${timeoutMs} ms; folders: ${JSON.stringify(modelFolders(server))}`);
}

/** Opens a file, adds a fresh line at its end, types `typed` and returns the ghost text shown ('' if none). */
async function typeAndWaitForGhost(wb: Workbench, file: string, typed: string, timeoutMs: number): Promise<string> {
  await wb.openFile(file);
  const page = wb.page;
  await page.locator(sel.editor.lines).first().click();
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Enter');
  await page.keyboard.type(typed, { delay: 40 });
  let ghost = await wb.waitForGhostText(timeoutMs / 2);
  if (!ghost) {
    // Typing may have outrun the model's first load: ask for a suggestion explicitly (Alt+\).
    await page.keyboard.press('Alt+Backslash');
    ghost = await wb.waitForGhostText(timeoutMs / 2);
  }
  return ghost;
}

const normalise = (s: string) => s.replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim();

/** Files and bytes of a folder, .vscode left out (what the fixture brings). */
function folderSize(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === '.vscode') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = folderSize(full);
      files += sub.files;
      bytes += sub.bytes;
    } else if (entry.isFile()) {
      files += 1;
      bytes += statSync(full).size;
    }
  }
  return { files, bytes };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export const scenarios: Scenario[] = [
  {
    name: '0. a fresh workspace gets ghost text from the base model without training',
    async run(ctx) {
      // Played first, in the window just opened on the fixture with a fresh profile: no model folder
      // of its own, no Train command. The server prepares one from the shipped base by itself.
      const wb = ctx.workbench;
      const page = wb.page;
      await wb.openFile('length.ts');
      await page.locator(sel.editor.lines).first().click();
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Enter');
      await page.keyboard.type(TYPED_PREFIX, { delay: 40 });
      let ghost = await wb.waitForGhostText(2_000);
      const deadline = Date.now() + BASE_GHOST_TIMEOUT_MS;
      while (!ghost.trim() && Date.now() < deadline) {
        // Until the base serves, the server has nothing to answer with, and VS Code does not ask
        // again by itself: type on (a keystroke and its undo, a new version) and ask (Alt+\).
        await page.keyboard.type('x');
        await page.keyboard.press('Backspace');
        await page.keyboard.press('Alt+Backslash');
        ghost = await wb.waitForGhostText(2_000);
      }
      const ghostAt = Date.now();
      await wb.screenshot('base-ghost-text');
      const history = await wb.statusBarHistory();
      await page.keyboard.press('Escape');
      await wb.runCommand('File: Revert File'); // later scenarios type at the end of this file again
      const texts = history.map((h) => h.text);
      assert.ok(ghost.trim(), `no ghost text from the base model within ${BASE_GHOST_TIMEOUT_MS / 1000} s after typing ${JSON.stringify(TYPED_PREFIX)} in a fresh workspace; the status bar showed ${JSON.stringify(texts)}`);
      // The status bar said what happened: preparing from the base, then the prepared model serving.
      const preparing = history.find((h) => PREPARING.test(h.text));
      assert.ok(preparing, `the status bar never said it was preparing completions from the base model: ${JSON.stringify(texts)}`);
      const serving = history.find((h) => h.at >= preparing.at && /WLM: base-/.test(h.text));
      assert.ok(serving, `the status bar never named a base-… model serving after preparing: ${JSON.stringify(texts)}`);
      await page.locator(sel.workbench.statusBarItem('WLM: base-')).first().waitFor({ state: 'visible', timeout: 10_000 });
      // One model folder, made from the base without a gradient step; nothing was trained.
      const folders = modelFolders(ctx.server);
      assert.equal(folders.length, 1, `expected one model folder (the prepared base), found ${JSON.stringify(folders)}`);
      const name = path.basename(folders[0]);
      assert.match(name, /^base-/, `the only model folder is not a prepared base: ${folders[0]}`);
      const config = JSON.parse(readFileSync(path.join(folders[0], 'config.json'), 'utf8')) as { step?: number; start?: { from?: string } };
      assert.equal(config.step, 0, `the prepared folder ${name} records step ${config.step}: it was trained`);
      assert.equal(config.start?.from, 'base', `the prepared folder ${name} does not record the base as its start: ${JSON.stringify(config.start)}`);
      ctx.state.baseModel = name;
      // The metrics panel lists the prepared folder, and never showed its preparation as a training run.
      await page.locator(sel.workbench.activityEntry('Workspace LM')).first().click({ timeout: 15_000 });
      const view = wb.webviewFrame();
      await view.locator('#runs .run-name', { hasText: name }).first().waitFor({ state: 'visible', timeout: 30_000 });
      const live = (await view.locator('#live').isHidden()) ? '' : await view.locator('#live').innerText({ timeout: 10_000 });
      await wb.screenshot('base-metrics-panel');
      await page.locator(sel.workbench.activityEntry('Explorer')).first().click({ timeout: 15_000 }); // scenario 3 opens the panel with a click
      assert.doesNotMatch(live, /Training|Trained/, `the metrics panel shows the preparation from the base as a training run: ${JSON.stringify(live)}`);
      const { files, bytes } = folderSize(ctx.workspace);
      const since = (at: number) => seconds(at - ctx.opened.readyAt);
      ctx.state.baseGhost =
        `${since(ghostAt)} after the workbench showed (${seconds(ghostAt - ctx.opened.startedAt)} after it was asked for); ` +
        `status bar "preparing…" at ${since(preparing.at)}, "${serving.text}" at ${since(serving.at)}; fixture ${files} files, ${(bytes / 1024).toFixed(1)} KiB`;
      console.log(`     ghost text ${JSON.stringify(ghost)} from "${name}" ${ctx.state.baseGhost}`);
    },
  },
  {
    name: 'the packaged extension installs, activates and lists its commands in the palette',
    async run({ workbench }) {
      // The status bar item appears once the extension has activated (onStartupFinished).
      await workbench.page.locator(sel.workbench.statusBarItem('WLM')).first().waitFor({ state: 'visible', timeout: 60_000 });
      const titles = await workbench.paletteTitles('Workspace LM');
      await workbench.screenshot('palette-commands');
      for (const title of [TRAIN, FINE_TUNE, EVALUATE]) assert.ok(titles.includes(title), `"${title}" not in the palette: ${JSON.stringify(titles)}`);
      // Offered only while a job runs (the workspaceLm.jobRunning context key).
      assert.ok(!titles.includes(CANCEL), `"${CANCEL}" is in the palette with no job running: ${JSON.stringify(titles)}`);
    },
  },
  {
    name: '1. Train Model on Workspace (tiny) shows progress and a finish notification',
    needs: ['the packaged extension installs, activates and lists its commands in the palette'],
    async run(ctx) {
      const wb = ctx.workbench;
      const t0 = Date.now();
      const row = await startTraining(wb);
      // The preset pick says how long each preset trains here (nothing trained yet: its recorded speed).
      assert.match(row, /about \d+ (s|min)[^\n]* of training here/, `the tiny row gives no time for this machine: ${JSON.stringify(row)}`);
      // tiny is not the base model's size: it trains from scratch, and its row says so.
      assert.match(row, /from scratch/, `the tiny row does not say it trains from scratch: ${JSON.stringify(row)}`);
      const progress = await waitForTrainingProgress(wb, 60_000);
      await wb.screenshot('train-progress');
      assert.match(progress, /WLM training/);
      const message = await wb.waitForToast(/trained \(\d+ steps/, TRAIN_TIMEOUT_MS);
      ctx.state.trainMs = Date.now() - t0;
      await wb.screenshot('train-finished');
      const name = /"([^"]+)" trained/.exec(message)?.[1];
      assert.ok(name, `no model name in the finish notification: ${message}`);
      assert.match(message, /now serves completions/, `the new model is not serving: ${message}`);
      ctx.state.firstModel = name;
      // The model folder is complete on disk: the exported ONNX graph and the logged metrics.
      const folder = modelFolders(ctx.server).find((dir) => path.basename(dir) === name);
      assert.ok(folder, `model folder "${name}" not found; folders: ${JSON.stringify(modelFolders(ctx.server))}`);
      for (const file of ['config.json', 'tokenizer.json', 'model.json', 'weights.bin', 'model.onnx', 'metrics.jsonl']) {
        assert.ok(existsSync(path.join(folder, file)), `${file} missing in ${folder}`);
      }
      await wb.page.locator(sel.workbench.statusBarItem(`WLM: ${name}`)).first().waitFor({ state: 'visible', timeout: 30_000 });
      console.log(`     trained "${name}" in ${((ctx.state.trainMs ?? 0) / 1000).toFixed(1)} s: ${message}; its row said ${JSON.stringify(row.replace(/\s+/g, ' '))}`);
    },
  },
  {
    name: '2. ghost text from the trained model, accepted with Tab, is in the saved file',
    needs: ['1. Train Model on Workspace (tiny) shows progress and a finish notification'],
    async run({ workbench: wb, workspace }) {
      const file = path.join(workspace, 'src', 'length.ts');
      const original = await fs.readFile(file, 'utf8');
      const typed = TYPED_PREFIX;
      const ghost = await typeAndWaitForGhost(wb, 'length.ts', typed, 60_000);
      await wb.screenshot('ghost-text');
      assert.ok(ghost.trim(), `no ghost text within 60 s after typing ${JSON.stringify(typed)} at the end of src/length.ts`);
      await wb.page.keyboard.press('Tab');
      await wb.page.keyboard.press('Control+S');
      // The save lands on disk a moment after the keystroke.
      const deadline = Date.now() + 10_000;
      let saved = original;
      while (Date.now() < deadline && saved === original) {
        await wb.page.waitForTimeout(200);
        saved = await fs.readFile(file, 'utf8');
      }
      await wb.screenshot('ghost-accepted-saved');
      assert.notEqual(saved, original, 'src/length.ts did not change on disk after Tab and Ctrl+S');
      const tail = normalise(saved.slice(original.length));
      const firstGhostLine = normalise(ghost.split('\n')[0]);
      assert.ok(tail.startsWith(normalise(typed)), `the saved file does not end with the typed text: ${JSON.stringify(tail)}`);
      assert.ok(tail.includes(firstGhostLine), `the saved text ${JSON.stringify(tail)} lacks the accepted ghost text ${JSON.stringify(firstGhostLine)}`);
      console.log(`     ghost text ${JSON.stringify(ghost)} accepted; saved tail ${JSON.stringify(tail)}`);
      // Put the fixture back so later trainings see the original file; the saved (clean) editor
      // reloads it from disk by itself.
      await fs.writeFile(file, original);
    },
  },
  {
    name: '3. the metrics panel shows the run, its loss curve points and evaluation figures',
    needs: ['1. Train Model on Workspace (tiny) shows progress and a finish notification'],
    async run(ctx) {
      const wb = ctx.workbench;
      const name = ctx.state.firstModel!;
      // Evaluate first, so the panel has figures against the n-gram baseline to show.
      await wb.runCommand(EVALUATE);
      await acceptFirstPick(wb, name);
      // Open the panel once eval.json is on disk. (Opened while the evaluation still runs, the
      // panel has been seen to keep "not evaluated yet": reported, not papered over here.)
      const evalFile = path.join(modelFolders(ctx.server).find((dir) => path.basename(dir) === name)!, 'eval.json');
      const evalDeadline = Date.now() + 120_000;
      while (!existsSync(evalFile) && Date.now() < evalDeadline) await wb.page.waitForTimeout(250);
      assert.ok(existsSync(evalFile), `the evaluation wrote no ${evalFile} within 120 s`);
      await wb.page.locator(sel.workbench.activityEntry('Workspace LM')).first().click({ timeout: 15_000 });
      const view = wb.webviewFrame();
      await view.locator('#runs .run-name', { hasText: name }).first().waitFor({ state: 'visible', timeout: 60_000 });
      // Show this run: the panel keeps the run it showed last (scenario 0's prepared base), as a user finds it.
      await view.locator('#runs .run-name', { hasText: name }).first().click({ timeout: 10_000 });
      await wb.screenshot('metrics-panel');
      // The view's title bar: Train, Evaluate, Refresh.
      for (const action of ['Train Model on Workspace', 'Evaluate Model', 'Refresh Metrics']) {
        await wb.page.locator(sel.panes.titleAction(action)).first().waitFor({ state: 'visible', timeout: 10_000 });
      }
      // The finished run is no longer shown as training (the job's end reached the panel).
      const live = await view.locator('#live').innerText({ timeout: 10_000 }).catch(() => '');
      assert.doesNotMatch(live, /^Training|ETA/, `the panel still shows the finished run as training: ${JSON.stringify(live)}`);
      // The loss chart says how many points it plotted; metrics.jsonl on disk is the reference.
      const folder = modelFolders(ctx.server).find((dir) => path.basename(dir) === name)!;
      const logged = readFileSync(path.join(folder, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { trainLoss?: number; valLoss?: number });
      const chart = view.locator('#curves .chart[data-points]').first();
      await chart.waitFor({ state: 'attached', timeout: 30_000 });
      const points = JSON.parse((await chart.getAttribute('data-points')) ?? '{}') as Record<string, number>;
      const trainPoints = Object.entries(points).find(([label]) => label.startsWith('train'))?.[1];
      assert.equal(trainPoints, logged.filter((m) => m.trainLoss !== undefined).length, `loss chart points ${JSON.stringify(points)} vs ${logged.length} lines in metrics.jsonl`);
      assert.ok(trainPoints! >= 2, `only ${trainPoints} training loss points`);
      // Evaluation figures: the model's and the n-gram baseline's, once the evaluation is done.
      const modelCells = view.locator('#eval-tables td.model');
      await modelCells.first().waitFor({ state: 'visible', timeout: 60_000 }).catch(async (err: Error) => {
        const section = await view.locator('#eval').evaluate((e) => `hidden=${(e as HTMLElement).hidden} ${e.outerHTML.slice(0, 600)}`).catch(() => 'no #eval element');
        throw new Error(`${err.message.split('\n')[0]}; the panel's evaluation section: ${section}`);
      });
      await wb.screenshot('metrics-panel-evaluation');
      const figures = await modelCells.allInnerTexts();
      const baselines = await view.locator('#eval-tables td.baseline').allInnerTexts();
      assert.ok(figures.length >= 3, `only ${figures.length} evaluation figures: ${JSON.stringify(figures)}`);
      assert.ok(figures.every((f) => /\d/.test(f)), `evaluation figures without numbers: ${JSON.stringify(figures)}`);
      assert.ok(baselines.some((f) => /\d/.test(f)), `no n-gram baseline figures: ${JSON.stringify(baselines)}`);
      // Local usage: scenario 2 saw ghost text and accepted it with Tab.
      const shown = Number(await view.locator('#usage-shown').innerText({ timeout: 10_000 }));
      const accepted = Number(await view.locator('#usage-accepted').innerText({ timeout: 10_000 }));
      assert.ok(shown >= 1 && accepted >= 1 && accepted <= shown, `usage counters: ${shown} shown, ${accepted} accepted`);
      console.log(`     panel: ${trainPoints} loss points, ${figures.length} evaluation figures, e.g. ${figures.slice(0, 3).join(' / ')}; usage ${shown} shown, ${accepted} accepted`);
    },
  },
  {
    name: '4. Summarize Function shows a proposal',
    needs: ['1. Train Model on Workspace (tiny) shows progress and a finish notification'],
    unavailable: () => (contributedTitles().includes(SUMMARIZE) ? null : `"${SUMMARIZE}" is not contributed by package.json yet`),
    async run({ workbench: wb }) {
      await wb.openFile('check.ts');
      // Line 12 is inside roundTo(): "  const factor = 10 ** places;".
      await wb.goToLine(12);
      await wb.runCommand(SUMMARIZE);
      const message = await wb.waitForToast(/summary of function roundTo|no summary for function roundTo/, 60_000);
      await wb.screenshot('summarize-proposal');
      const summary = /summary of function roundTo: "(.*)"/s.exec(message)?.[1];
      assert.ok(summary !== undefined, `no proposal, the extension said: ${message}`);
      assert.ok(summary.trim().length > 0, `an empty proposal: ${message}`);
      // Accepting the proposal inserts it as a doc comment above the function: one more occurrence
      // of its words in the editor than before (a short proposal may occur in the code already).
      // The doc comment may capitalise the proposal and end it with a full stop: compare in lower case.
      const words = normalise(summary).toLowerCase().split(' ').slice(0, 3).join(' ');
      const occurrences = async () => normalise(await wb.page.locator(sel.editor.lines).first().innerText()).toLowerCase().split(words).length - 1;
      const before = await occurrences();
      await wb.page.locator(sel.notifications.toastButton('summary of function roundTo', 'Insert Doc Comment')).click({ timeout: 10_000 });
      const deadline = Date.now() + 10_000;
      let after = before;
      while (Date.now() < deadline && after <= before) {
        await wb.page.waitForTimeout(200);
        after = await occurrences();
      }
      await wb.screenshot('summarize-inserted');
      await wb.runCommand('File: Revert File'); // leave check.ts as it is on disk for the windows that follow
      assert.ok(after > before, `the inserted doc comment (${JSON.stringify(words)}) did not appear in the editor`);
      console.log(`     proposal for roundTo: ${JSON.stringify(summary)}`);
    },
  },
  {
    name: '5. snoozed from the status bar menu, no ghost text appears; resumed, it comes back',
    needs: ['1. Train Model on Workspace (tiny) shows progress and a finish notification'],
    async run({ workbench: wb, state }) {
      const first = state.firstModel!;
      // A site where the model shows text; the same text is asked about snoozed, then resumed.
      const before = await typeAndWaitForGhost(wb, 'speed.ts', TYPED_PREFIX, 60_000);
      assert.ok(before.trim(), 'no ghost text at the site before snoozing');
      await wb.page.keyboard.press('Escape');
      try {
        await wb.clickStatusBarItem(`WLM: ${first}`);
        await wb.pickRow('Snooze completions for 5 minutes');
        await wb.page.locator(sel.workbench.statusBarItem('WLM: snoozed')).first().waitFor({ state: 'visible', timeout: 10_000 });
        await wb.screenshot('snoozed-status-bar');
        const whileSnoozed = await retypeAndAskForGhost(wb, 8_000);
        await wb.screenshot('snoozed-no-ghost-text');
        assert.equal(whileSnoozed, '', `ghost text while snoozed: ${JSON.stringify(whileSnoozed)}`);
        await wb.clickStatusBarItem('WLM: snoozed');
        await wb.pickRow('Resume completions');
        await wb.page.locator(sel.workbench.statusBarItem(`WLM: ${first}`)).first().waitFor({ state: 'visible', timeout: 10_000 });
        const resumed = await retypeAndAskForGhost(wb, 30_000);
        await wb.screenshot('resumed-ghost-text');
        assert.ok(resumed.trim(), `no ghost text within 30 s after "Resume completions", where ${JSON.stringify(before)} showed before the snooze`);
        console.log(`     before: ${JSON.stringify(before)}; snoozed: none in 8 s; resumed: ${JSON.stringify(resumed)}`);
      } finally {
        await wb.page.keyboard.press('Escape');
        await wb.runCommand('File: Revert File');
      }
    },
  },
  {
    name: "6. a second training (small, fine-tuning the base) cancelled from its notification's Cancel button keeps its checkpoint; the first model still serves",
    needs: ['1. Train Model on Workspace (tiny) shows progress and a finish notification'],
    async run(ctx) {
      const wb = ctx.workbench;
      const first = ctx.state.firstModel!;
      const before = new Set(modelFolders(ctx.server));
      // small: 2000 steps and a 10-minute budget, so the run is surely under way when Cancel is clicked.
      // It is the base model's size: Train asks where to start from, and fine-tuning the base is offered first.
      await wb.runCommand(TRAIN);
      await wb.pickRow('small');
      await acceptFirstPick(wb, 'Fine-tune the pre-trained base model');
      const toast = wb.page.locator(sel.notifications.toastWithText('Workspace LM: training small')).first();
      await toast.waitFor({ state: 'visible', timeout: 30_000 });
      // While it runs the palette offers Cancel Training (the workspaceLm.jobRunning context key).
      const titles = await wb.paletteTitles('Workspace LM');
      assert.ok(titles.includes(CANCEL), `"${CANCEL}" is not in the palette while a job runs: ${JSON.stringify(titles)}`);
      // The notification shows the steps and the time left; the folder gets its first steps.
      const folder = await newModelFolder(ctx.server, before, 60_000);
      // Closing the palette with Escape may also have hidden the toast: the notification centre
      // holds the same progress notification, Cancel button included.
      if (!(await toast.isVisible())) await wb.runCommand('Notifications: Show Notifications');
      const progressText = await wb.waitForToast(/step \d+\/\d+.*left/, 180_000);
      await wb.screenshot('training-notification');
      const metricsFile = path.join(folder, 'metrics.jsonl');
      assert.ok(existsSync(metricsFile), `no metrics.jsonl in ${folder} while the notification says ${JSON.stringify(progressText)}`);
      const inCentre = `.notifications-center .notification-list-item:has-text("Workspace LM: training small") .monaco-button:has-text("Cancel")`;
      await wb.page.locator(`${sel.notifications.toastButton('Workspace LM: training small', 'Cancel')}, ${inCentre}`).first().click({ timeout: 10_000 });
      const message = await wb.waitForToast(/cancelled at step \d+/, 120_000);
      await toast.waitFor({ state: 'hidden', timeout: 30_000 });
      await wb.screenshot('training-cancelled');
      const step = Number(/cancelled at step (\d+)/.exec(message)![1]);
      assert.ok(step >= 1 && step < 2000, `cancelled at step ${step}`);
      // The last checkpoint stays: config.json records the step it was saved at, with the resume state.
      const config = JSON.parse(readFileSync(path.join(folder, 'config.json'), 'utf8')) as { step: number; start?: { from?: string } };
      assert.equal(config.step, step, `config.json of ${folder} says step ${config.step}, the notification ${step}`);
      assert.equal(config.start?.from, 'base', `the fine-tune's checkpoint does not record the base as its start: ${JSON.stringify(config.start)}`);
      // The resume state sits in the run cache beside the models folder, never in the model folder (model/runCache.ts).
      assert.ok(existsSync(path.join(runCacheDir(folder), 'resume')), `no resume state in ${runCacheDir(folder)}`);
      assert.ok(!existsSync(path.join(folder, 'resume')) && !existsSync(path.join(folder, 'data')), `training data in ${folder}: ${JSON.stringify(readdirSync(folder))}`);
      // The first model still serves, and Cancel Training left the palette with the job.
      await wb.page.locator(sel.workbench.statusBarItem(`WLM: ${first}`)).first().waitFor({ state: 'visible', timeout: 30_000 });
      const after = await wb.paletteTitles('Workspace LM');
      assert.ok(!after.includes(CANCEL), `"${CANCEL}" is still in the palette after the job ended`);
      const ghost = await typeAndWaitForGhost(wb, 'speed.ts', TYPED_PREFIX, 60_000);
      await wb.screenshot('completions-after-cancel');
      await wb.page.keyboard.press('Escape');
      // Typed lines left in open editors would feed the completion cache of the next window.
      await wb.runCommand('File: Revert File');
      assert.ok(ghost.trim(), `no ghost text from "${first}" after the cancelled training (${message})`);
      console.log(`     notification said ${JSON.stringify(progressText)}; ${message}; still serving "${first}": ${JSON.stringify(ghost)}`);
    },
  },
  {
    name: '7. no error notification from Workspace LM during the scenarios',
    async run({ workbench: wb }) {
      await wb.runCommand('Notifications: Show Notifications');
      await wb.page.locator('.notifications-center').waitFor({ state: 'visible', timeout: 10_000 });
      await wb.screenshot('notification-center');
      const errors: string[] = [];
      for (const item of await wb.page.locator(sel.notifications.centerItem).all()) {
        if ((await item.locator(sel.notifications.itemErrorIcon).count()) === 0) continue;
        const message = await item.locator('.notification-list-item-message').innerText();
        const source = await item.locator(sel.notifications.itemSource).innerText().catch(() => '');
        if (/Workspace LM/.test(`${message} ${source}`)) errors.push(message);
      }
      await wb.page.keyboard.press('Escape');
      assert.deepEqual(errors, [], `error notifications: ${JSON.stringify(errors)}`);
    },
  },
  {
    name: '8. in an untrusted folder the palette offers no Train or Fine-tune, and the rest still',
    session: 'untrusted',
    async run({ workbench: wb }) {
      // Restricted Mode is on (the window is really untrusted) and the extension has activated.
      await wb.page.locator(sel.workbench.statusBarItem('Restricted Mode')).first().waitFor({ state: 'visible', timeout: 60_000 });
      await wb.page.locator(sel.workbench.statusBarItem('WLM')).first().waitFor({ state: 'visible', timeout: 60_000 });
      const titles = await wb.paletteTitles('Workspace LM');
      await wb.screenshot('untrusted-palette');
      assert.ok(titles.includes(SELECT), `"${SELECT}" is not in the palette: ${JSON.stringify(titles)}`);
      for (const hidden of [TRAIN, FINE_TUNE]) assert.ok(!titles.includes(hidden), `"${hidden}" is in the palette of an untrusted folder: ${JSON.stringify(titles)}`);
      console.log(`     untrusted palette: ${JSON.stringify(titles)}`);
    },
  },
];
