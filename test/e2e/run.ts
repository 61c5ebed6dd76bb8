// `npm run test:e2e`: the end-to-end run in a real VS Code. Copies the fixture project into a temp
// folder, starts code-server with the packaged .vsix installed, plays the UI scenarios in chromium
// (scenarios.ts), then runs the in-host mocha tests (host/) in a second window, then restarts
// code-server with workspace trust on for the scenarios of an untrusted folder, and prints one line
// per test, the stage timings and "N passed, N failed"; exits non-zero on any failure. It expects
// scripts/e2e-setup.sh, `npm run build` and `npm run package` to have run (npm run test:e2e does).
// Flags: --keep (leave the temp folder), --only REGEX (UI scenarios whose name matches; no
// in-host tests), --vsix FILE (default: the linux-x64 package of this version).
import { promises as fs, existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import { CodeServer, Workbench, checkTools, collectLogs, launchBrowser, makeTempRoot, repoRoot } from './driver';
import { scenarios, type Scenario, type ScenarioContext } from './scenarios';
import type { HostTestResult } from './host/index';

interface Outcome {
  name: string;
  ok: boolean;
  ms: number;
  error?: string;
}

const args = process.argv.slice(2);
const keep = args.includes('--keep');
const only = args.includes('--only') ? new RegExp(args[args.indexOf('--only') + 1]) : undefined;
const vsixArg = args.includes('--vsix') ? args[args.indexOf('--vsix') + 1] : undefined;
const screenshotsDir = path.join(repoRoot, 'e2e-screenshots');
const EXTENSION_ID = 'workspace-lm.workspace-lm';

// Settings for the throwaway profile: nothing that pops up over the editor, no network chatter,
// and no IntelliSense widget that would take the Tab meant for ghost text.
const userSettings = {
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'chat.disableAIFeatures': true,
  'security.workspace.trust.enabled': false,
  'files.autoSave': 'off',
  'editor.inlineSuggest.enabled': true,
  'editor.quickSuggestions': { other: false, comments: false, strings: false },
  'editor.suggestOnTriggerCharacters': false,
  'editor.parameterHints.enabled': false,
  'editor.autoClosingBrackets': 'never',
  'editor.autoClosingQuotes': 'never',
};

// The second code-server, for the scenarios of an untrusted folder: workspace trust on, and no
// startup dialog, so an unknown folder opens in Restricted Mode.
const untrustedSettings = {
  ...userSettings,
  'security.workspace.trust.enabled': true,
  'security.workspace.trust.startupPrompt': 'never',
  'security.workspace.trust.banner': 'never',
};

/** The fixture project: test/e2e/fixture-workspace if present, else the shared sample project. */
function fixtureSource(): string {
  for (const dir of [path.join(repoRoot, 'test', 'e2e', 'fixture-workspace'), path.join(repoRoot, 'test', 'fixtures', 'sample-project')]) {
    if (existsSync(dir)) return dir;
  }
  throw new Error('e2e: no fixture workspace (test/e2e/fixture-workspace or test/fixtures/sample-project)');
}

async function prepareWorkspace(tempRoot: string): Promise<string> {
  const workspace = path.join(tempRoot, 'workspace');
  await fs.cp(fixtureSource(), workspace, { recursive: true });
  await fs.mkdir(path.join(workspace, '.vscode'), { recursive: true });
  // The fixture's own settings: the tiny preset trains in seconds on a CPU.
  await fs.writeFile(
    path.join(workspace, '.vscode', 'settings.json'),
    JSON.stringify({ 'workspaceLm.preset': 'tiny', 'workspaceLm.debounceMs': 50, 'workspaceLm.maxTokens': 16, 'workspaceLm.minTokenProbability': 0 }, null, 2),
  );
  return workspace;
}

/** Bundles the in-host tests next to the repo's node_modules, where their require('mocha') resolves. */
async function buildHostTests(): Promise<string> {
  const outDir = path.join(repoRoot, 'test-output', 'e2e-host');
  await fs.rm(outDir, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [path.join(__dirname, 'host', 'index.ts'), path.join(__dirname, 'host', 'extension.test.ts')],
    outdir: outDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['vscode', 'mocha'],
    logLevel: 'warning',
  });
  return path.join(outDir, 'index.js');
}

// Runs in the page before the workbench reads its configuration. A string, not a function: tsx
// would wrap a function's inner functions in helpers that do not exist in the browser.
const ENABLE_SMOKE_TEST_DRIVER = `(() => {
  const patch = () => {
    const meta = document.getElementById('vscode-workbench-web-configuration');
    const raw = meta && meta.getAttribute('data-settings');
    if (!raw) return false;
    const settings = JSON.parse(raw);
    settings.developmentOptions = Object.assign({}, settings.developmentOptions, { enableSmokeTestDriver: true });
    meta.setAttribute('data-settings', JSON.stringify(settings));
    window.__wlmSmokeTestDriver = true;
    return true;
  };
  if (!patch()) {
    const observer = new MutationObserver(() => { if (patch()) observer.disconnect(); });
    observer.observe(document, { childList: true, subtree: true });
  }
})();`;

/** Opens a window with VS Code's test payload and waits for the in-host run to call back with its exit code. */
async function runHostTests(server: CodeServer, workbench: Workbench, workspace: string, resultsFile: string): Promise<Outcome[]> {
  const testsEntry = await buildHostTests();
  const extensionDir = server.installedExtension(EXTENSION_ID);
  if (!extensionDir) throw new Error(`e2e: ${EXTENSION_ID} is not in ${server.extensionsDir} after --install-extension`);
  const authority = `127.0.0.1:${server.port}`;
  const payload = JSON.stringify([
    ['extensionDevelopmentPath', `vscode-remote://${authority}${extensionDir}`],
    ['extensionTestsPath', `vscode-remote://${authority}${testsEntry}`],
  ]);
  const page = workbench.page;
  let exitCode: number | undefined;
  const exited = new Promise<number>((resolve) => {
    void page.exposeFunction('codeAutomationExit', (code: number) => {
      exitCode = code;
      resolve(code);
    });
  });
  await page.exposeFunction('codeAutomationLog', (type: string, args: unknown[]) => {
    // Console arguments as the extension host sends them: a printf-style format first (mocha's reporter).
    const parts = (Array.isArray(args) ? args : [args]).map((a) => (typeof a === 'string' ? a : JSON.stringify(a)));
    const rest = parts.slice(1);
    const head = (parts[0] ?? '').replace(/%[sdifoOj]/g, () => (rest.length ? rest.shift()! : ''));
    const text = [head, ...rest].join(' ');
    if (text.trim()) console.log(`  [host ${type}] ${text.trimEnd()}`);
  });
  // The payload is honoured only with the smoke-test driver on, which code-server's CLI refuses:
  // switch it on in the workbench configuration before the workbench reads it.
  await page.addInitScript({ content: ENABLE_SMOKE_TEST_DRIVER });
  await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`);
  const timeoutMs = 180_000;
  const code = await Promise.race([exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), timeoutMs))]);
  await workbench.screenshot('host-tests-done').catch(() => undefined);
  if (code === null) throw new Error(`e2e: the in-host tests did not finish within ${timeoutMs / 1000} s`);
  if (!existsSync(resultsFile)) throw new Error(`e2e: the in-host run exited with ${exitCode} and wrote no results to ${resultsFile}`);
  const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as HostTestResult[];
  if (results.length === 0) throw new Error(`e2e: the in-host run exited with ${exitCode} and ran no test`);
  return results.map((r) => ({ name: `host: ${r.title}`, ok: r.ok, ms: r.ms, error: r.error }));
}

async function main(): Promise<number> {
  const started = Date.now();
  const stages: Record<string, number> = {};
  const outcomes: Outcome[] = [];
  const notRun: string[] = []; // scenarios whose feature this build does not have yet (not counted)
  const stage = async <T>(name: string, body: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await body();
    } finally {
      stages[name] = Date.now() - t0;
    }
  };

  checkTools();
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  // The platform package `node scripts/package.mjs --target linux-x64` makes, unless --vsix says.
  const vsix = vsixArg ? path.resolve(vsixArg) : path.join(repoRoot, `${manifest.name}-${process.platform}-${process.arch}-${manifest.version}.vsix`);
  if (!existsSync(vsix)) throw new Error(`e2e: ${vsix} not found; HINT: npm run build && node scripts/package.mjs --target ${process.platform}-${process.arch}`);

  const tempRoot = await makeTempRoot();
  await fs.rm(screenshotsDir, { recursive: true, force: true });
  const resultsFile = path.join(tempRoot, 'host-results.json');
  let server: CodeServer | undefined;
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  let workbench: Workbench | undefined;
  let crashed: unknown;
  const trustedState: ScenarioContext['state'] = {};
  try {
    const workspace = await prepareWorkspace(tempRoot);
    server = await stage('start code-server (install .vsix)', () => CodeServer.start({ tempRoot, vsix, userSettings, env: { WLM_E2E_RESULTS: resultsFile } }));
    console.log(`e2e: code-server ${server.url} (pid ${server.pid}), workspace ${workspace}`);
    browser = await stage('start chromium', () => launchBrowser(tempRoot));
    const page = browser.browser.pages()[0] ?? (await browser.browser.newPage());
    workbench = new Workbench(page, { screenshotsDir });
    const openStartedAt = Date.now();
    await stage('open workbench', () => workbench!.open(`${server!.url}/?folder=${encodeURIComponent(workspace)}`));
    const opened = { startedAt: openStartedAt, readyAt: Date.now() };

    const failedNames = new Set<string>();
    /** Plays the scenarios of one session in order; a scenario whose prerequisite failed is not run. */
    const play = async (list: Scenario[], context: ScenarioContext): Promise<void> => {
      for (const scenario of list) {
        if (only && !only.test(scenario.name)) continue;
        const reason = scenario.unavailable?.();
        if (reason) {
          notRun.push(`${scenario.name}: ${reason}`);
          console.log(`not run: ${scenario.name} (${reason})`);
          continue;
        }
        const blocker = scenario.needs?.find((n) => failedNames.has(n));
        const t0 = Date.now();
        if (blocker) {
          failedNames.add(scenario.name);
          outcomes.push({ name: scenario.name, ok: false, ms: 0, error: `not run: it needs "${blocker}", which failed` });
          continue;
        }
        try {
          await scenario.run(context);
          outcomes.push({ name: scenario.name, ok: true, ms: Date.now() - t0 });
        } catch (err) {
          failedNames.add(scenario.name);
          const shot = await context.workbench.screenshot(`FAILED-${scenario.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`).catch(() => null);
          outcomes.push({ name: scenario.name, ok: false, ms: Date.now() - t0, error: `${err instanceof Error ? err.message : String(err)}${shot ? ` (screenshot ${shot})` : ''}` });
        }
        console.log(`${outcomes.at(-1)!.ok ? 'ok  ' : 'FAIL'} ${scenario.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      }
    };
    const trustedScenarios = scenarios.filter((s) => (s.session ?? 'trusted') === 'trusted');
    const untrustedScenarios = scenarios.filter((s) => s.session === 'untrusted' && (!only || only.test(s.name)));
    await stage('UI scenarios', () => play(trustedScenarios, { workbench: workbench!, workspace, server: server!, state: trustedState, opened }));

    if (!only) {
      // A fresh page: the UI window's extension host ends, and the test window gets the workspace alone.
      await page.close();
      const hostPage = await browser.browser.newPage();
      workbench = new Workbench(hostPage, { screenshotsDir });
      try {
        outcomes.push(...(await stage('in-host mocha tests', () => runHostTests(server!, workbench!, workspace, resultsFile))));
      } catch (err) {
        outcomes.push({ name: 'host: the in-host test run', ok: false, ms: stages['in-host mocha tests'] ?? 0, error: err instanceof Error ? err.message : String(err) });
      }
    }

    if (untrustedScenarios.length > 0) {
      // Workspace trust is a code-server flag: a second one, with trust on, a fresh profile (so the
      // folder was never trusted) and the extension already installed.
      await workbench.page.close();
      await server.stop();
      const { extensionsDir } = server;
      const untrustedRoot = path.join(tempRoot, 'untrusted');
      await fs.mkdir(untrustedRoot, { recursive: true });
      server = await stage('start code-server (workspace trust on)', () =>
        CodeServer.start({ tempRoot: untrustedRoot, vsix, userSettings: untrustedSettings, workspaceTrust: true, extensionsDir }),
      );
      workbench = new Workbench(await browser.browser.newPage(), { screenshotsDir });
      const untrustedOpenedAt = Date.now();
      await stage('open untrusted workbench', () => workbench!.open(`${server!.url}/?folder=${encodeURIComponent(workspace)}`));
      const untrustedOpened = { startedAt: untrustedOpenedAt, readyAt: Date.now() };
      await stage('untrusted scenarios', () => play(untrustedScenarios, { workbench: workbench!, workspace, server: server!, state: {}, opened: untrustedOpened }));
    }
  } catch (err) {
    crashed = err;
  } finally {
    if (crashed && workbench) await workbench.screenshot('crash').catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
  }

  // Report: one line per test, the timings, the logs on failure, and the closing count.
  console.log('\ne2e results');
  for (const o of outcomes) console.log(`  ${o.ok ? 'pass' : 'FAIL'} ${o.name} (${(o.ms / 1000).toFixed(1)} s)${o.error ? `\n       ${o.error}` : ''}`);
  for (const line of notRun) console.log(`  not run (feature missing) ${line}`);
  if (crashed) console.log(`  FAIL the e2e harness itself: ${crashed instanceof Error ? crashed.message : String(crashed)}`);
  console.log('stages: ' + Object.entries(stages).map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ') + `; total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (trustedState.baseGhost) console.log(`first ghost text from the base model (no training): ${trustedState.baseGhost}`);
  const failed = outcomes.filter((o) => !o.ok).length + (crashed ? 1 : 0);
  if (failed > 0) {
    if (workbench?.lastScreenshot) console.log(`last screenshot: ${workbench.lastScreenshot}`);
    console.log(collectLogs([tempRoot]));
  }
  if (!keep && failed === 0) await fs.rm(tempRoot, { recursive: true, force: true }).catch(() => undefined);
  else console.log(`temp folder kept: ${tempRoot}`);
  console.log(`${outcomes.filter((o) => o.ok).length} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
