// The UI scenarios of the end-to-end run, in the order a user meets them: the packaged extension
// shows up, trains a tiny model from the palette, completes code with ghost text, shows the run in
// its metrics panel, summarises a function, and survives a cancelled second training. Each is a
// named function over one Workbench; run.ts sequences them, screenshots failures and counts.
// Selectors come from selectors.ts; the gestures from driver.ts.
import * as assert from 'node:assert/strict';
import { promises as fs, existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { CodeServer, Workbench } from './driver';
import * as sel from './selectors';
import { repoRoot } from './driver';

export interface ScenarioContext {
  workbench: Workbench;
  workspace: string; // the temp copy of the fixture project
  server: CodeServer;
  state: { firstModel?: string; trainMs?: number };
}

export interface Scenario {
  name: string;
  needs?: string[]; // names of scenarios that must have passed first
  /** Why the scenario cannot run with this build (e.g. its command is not contributed), or null. */
  unavailable?: () => string | null;
  run(ctx: ScenarioContext): Promise<void>;
}

const TRAIN = 'Workspace LM: Train Model on Workspace';
const CANCEL = 'Workspace LM: Cancel Training';
const EVALUATE = 'Workspace LM: Evaluate Model';
const SUMMARIZE = 'Workspace LM: Summarize Function';
// A line start the tiny model, trained for seconds on the fixture, continues with visible text
// ("value * …"); after "export function " it may well propose only a line break.
const TYPED_PREFIX = '  return ';
const TRAIN_TIMEOUT_MS = 180_000; // the tiny preset; generous for a loaded 2-core CI machine

interface ManifestCommand {
  command: string;
  title: string;
  category?: string;
}

function contributedTitles(): string[] {
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  return ((manifest.contributes?.commands ?? []) as ManifestCommand[]).map((c) => (c.category ? `${c.category}: ${c.title}` : c.title));
}

/** Model folders of this workspace, wherever the extension keeps them in the temp profile. */
function modelFolders(server: CodeServer): string[] {
  const storage = path.join(server.userDataDir, 'User', 'workspaceStorage');
  if (!existsSync(storage)) return [];
  const found: string[] = [];
  for (const hash of readdirSync(storage)) {
    const models = path.join(storage, hash, 'workspace-lm.workspace-lm', 'models');
    if (existsSync(models)) for (const name of readdirSync(models)) found.push(path.join(models, name));
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

/** Starts a training of the workspace's preset (tiny) from the palette. */
async function startTraining(wb: Workbench): Promise<void> {
  await wb.runCommand(TRAIN);
  await acceptFirstPick(wb, 'tiny');
}

/** Waits until the status bar shows a running training (the client's progress item). */
async function waitForTrainingProgress(wb: Workbench, timeoutMs: number): Promise<string> {
  const item = wb.page.locator(sel.workbench.statusBarItem('WLM training')).first();
  await item.waitFor({ state: 'visible', timeout: timeoutMs });
  return (await item.innerText()).trim();
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

export const scenarios: Scenario[] = [
  {
    name: 'the packaged extension installs, activates and lists its commands in the palette',
    async run({ workbench }) {
      // The status bar item appears once the extension has activated (onStartupFinished).
      await workbench.page.locator(sel.workbench.statusBarItem('WLM')).first().waitFor({ state: 'visible', timeout: 60_000 });
      const titles = await workbench.paletteTitles('Workspace LM');
      await workbench.screenshot('palette-commands');
      for (const title of [TRAIN, CANCEL, EVALUATE]) assert.ok(titles.includes(title), `"${title}" not in the palette: ${JSON.stringify(titles)}`);
    },
  },
  {
    name: '1. Train Model on Workspace (tiny) shows progress and a finish notification',
    needs: ['the packaged extension installs, activates and lists its commands in the palette'],
    async run(ctx) {
      const wb = ctx.workbench;
      const t0 = Date.now();
      await startTraining(wb);
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
      console.log(`     trained "${name}" in ${((ctx.state.trainMs ?? 0) / 1000).toFixed(1)} s: ${message}`);
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
      await wb.screenshot('metrics-panel');
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
      assert.ok(after > before, `the inserted doc comment (${JSON.stringify(words)}) did not appear in the editor`);
      console.log(`     proposal for roundTo: ${JSON.stringify(summary)}`);
    },
  },
  {
    name: '5. a cancelled second training leaves the previous model serving completions',
    needs: ['1. Train Model on Workspace (tiny) shows progress and a finish notification'],
    async run(ctx) {
      const wb = ctx.workbench;
      const first = ctx.state.firstModel!;
      await startTraining(wb);
      await waitForTrainingProgress(wb, 60_000);
      await wb.screenshot('second-training-running');
      await wb.runCommand(CANCEL);
      const message = await wb.waitForToast(/cancelled at step \d+/, 120_000);
      await wb.screenshot('second-training-cancelled');
      await wb.page.locator(sel.workbench.statusBarItem(`WLM: ${first}`)).first().waitFor({ state: 'visible', timeout: 30_000 });
      const ghost = await typeAndWaitForGhost(wb, 'speed.ts', TYPED_PREFIX, 60_000);
      await wb.screenshot('completions-after-cancel');
      assert.ok(ghost.trim(), `no ghost text from "${first}" after the cancelled training (${message})`);
      await wb.page.keyboard.press('Escape');
      console.log(`     ${message}; still serving "${first}": ${JSON.stringify(ghost)}`);
    },
  },
  {
    name: '6. no error notification from Workspace LM during the scenarios',
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
];
