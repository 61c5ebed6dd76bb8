// The extension manifest (package.json) follows VS Code's conventions: engines no older than what
// the locked dependencies need, @types/vscode matched to the engine, every command with a category,
// every setting described, enums explained, the icon and walkthrough files present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

interface Version { major: number; minor: number; patch: number }

/** The lowest version a range such as ^1.91.0, ~1.91.0, >=22 or 1.91.0 admits. */
function minimumOf(range: string): Version {
  const match = /^\s*(?:\^|~|>=)?\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(range);
  assert.ok(match, `cannot read the version range ${JSON.stringify(range)}`);
  return { major: Number(match[1]), minor: Number(match[2] ?? 0), patch: Number(match[3] ?? 0) };
}

const compare = (a: Version, b: Version): number => a.major - b.major || a.minor - b.minor || a.patch - b.patch;
const show = (v: Version): string => `${v.major}.${v.minor}.${v.patch}`;

function installed(name: string): { version: string; engines?: Record<string, string> } {
  return JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8'));
}

test('engines.vscode is at least what every installed dependency needs, and @types/vscode matches it', () => {
  const engine = minimumOf(manifest.engines.vscode);
  for (const name of Object.keys({ ...manifest.dependencies, ...manifest.devDependencies })) {
    if (!existsSync(path.join(root, 'node_modules', name, 'package.json'))) continue; // optional, not installed here
    const wants = installed(name).engines?.vscode;
    if (wants) assert.ok(compare(engine, minimumOf(wants)) >= 0, `${name} needs VS Code ${wants} but engines.vscode is ${manifest.engines.vscode}`);
  }
  // Types newer than the engine let code call APIs the oldest supported VS Code lacks.
  const types = minimumOf(installed('@types/vscode').version);
  assert.equal(`${types.major}.${types.minor}`, `${engine.major}.${engine.minor}`, `@types/vscode ${show(types)} vs engines.vscode ${manifest.engines.vscode}`);
});

test('engines.node names a supported Node.js (22 or newer)', () => {
  assert.ok(minimumOf(manifest.engines.node).major >= 22, `engines.node is ${manifest.engines.node}`);
});

test('runs where the workspace files are, and says why it cannot run in a virtual workspace', () => {
  assert.deepEqual(manifest.extensionKind, ['workspace']);
  assert.equal(manifest.capabilities.virtualWorkspaces.supported, false);
  assert.match(manifest.capabilities.virtualWorkspaces.description, /disk/);
  assert.equal(manifest.capabilities.untrustedWorkspaces.supported, 'limited');
});

test('every command has a title and the Workspace LM category; menus name only declared commands', () => {
  const commands = new Set<string>();
  for (const command of manifest.contributes.commands) {
    assert.ok(command.title, `${command.command} has no title`);
    assert.equal(command.category, 'Workspace LM', `${command.command} has no category`);
    commands.add(command.command);
  }
  for (const [menu, items] of Object.entries(manifest.contributes.menus ?? {}) as [string, { command?: string }[]][]) {
    for (const item of items) if (item.command) assert.ok(commands.has(item.command), `menu ${menu} names undeclared ${item.command}`);
  }
});

test('every setting has a description, a scope and a default; enums explain each value', () => {
  const properties = manifest.contributes.configuration.properties as Record<string, Record<string, unknown>>;
  for (const [key, setting] of Object.entries(properties)) {
    assert.ok(key.startsWith('workspaceLm.'), key);
    assert.ok(typeof setting.description === 'string' || typeof setting.markdownDescription === 'string', `${key} has no description`);
    assert.ok(!(setting.description && setting.markdownDescription), `${key} has both description and markdownDescription`);
    assert.ok('default' in setting, `${key} has no default`);
    assert.ok(typeof setting.scope === 'string', `${key} has no scope`);
    const text = String(setting.description ?? '');
    // A plain description cannot link: one naming another setting belongs in markdownDescription.
    assert.doesNotMatch(text, /workspaceLm\.[a-zA-Z]/, `${key}'s description names a setting; use markdownDescription`);
    if (Array.isArray(setting.enum)) {
      assert.ok(Array.isArray(setting.enumDescriptions), `${key} has an enum without enumDescriptions`);
      assert.equal((setting.enumDescriptions as unknown[]).length, setting.enum.length, `${key}: one description per value`);
    }
  }
  assert.ok(properties['workspaceLm.trace.server'], 'workspaceLm.trace.server traces the language client');
});

test('the icon is a 128 px PNG, and the licence and changelog ship', () => {
  const png = readFileSync(path.join(root, manifest.icon));
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [128, 128], 'IHDR width and height');
  assert.equal(manifest.license, 'MIT');
  assert.match(readFileSync(path.join(root, 'LICENSE'), 'utf8'), /^MIT License/);
  assert.ok(existsSync(path.join(root, 'CHANGELOG.md')));
  assert.equal(manifest.preview, true);
  assert.ok(manifest.categories.length > 0 && manifest.keywords.length > 0);
});

test('the walkthrough has three steps, each with its page and a way to complete it', () => {
  const [walkthrough] = manifest.contributes.walkthroughs;
  assert.deepEqual(walkthrough.steps.map((s: { id: string }) => s.id), ['train', 'complete', 'metrics']);
  for (const step of walkthrough.steps) {
    assert.ok(existsSync(path.join(root, step.media.markdown)), `${step.media.markdown} is missing`);
    assert.ok(step.completionEvents.length > 0, `${step.id} never completes`);
  }
});

test('menus: training only when trusted, Cancel only while a job runs, view and editor actions with icons', () => {
  const menus = manifest.contributes.menus as Record<string, { command: string; when?: string; group?: string }[]>;
  const when = (menu: string, command: string) => menus[menu]?.find((item) => item.command === command)?.when;
  assert.equal(when('commandPalette', 'workspaceLm.train'), 'isWorkspaceTrusted');
  assert.equal(when('commandPalette', 'workspaceLm.fineTune'), 'isWorkspaceTrusted');
  assert.equal(when('commandPalette', 'workspaceLm.cancelTraining'), 'workspaceLm.jobRunning');
  assert.match(when('commandPalette', 'workspaceLm.summarizeFunction') ?? '', /editor/);
  // The context key a `when` clause names is one the client sets.
  const extension = readFileSync(path.join(root, 'client', 'src', 'extension.ts'), 'utf8');
  assert.match(extension, /'workspaceLm\.jobRunning'/);

  const commands = new Map((manifest.contributes.commands as { command: string; icon?: string }[]).map((c) => [c.command, c]));
  const viewActions = menus['view/title'].filter((item) => /\bview == workspaceLm\.metrics\b/.test(item.when ?? ''));
  assert.deepEqual(viewActions.map((item) => item.command), ['workspaceLm.train', 'workspaceLm.evaluate', 'workspaceLm.refreshMetrics']);
  for (const item of viewActions) {
    assert.match(commands.get(item.command)?.icon ?? '', /^\$\([a-z-]+\)$/, `${item.command} needs a codicon to show in the view's title bar`);
    assert.match(item.group ?? '', /^navigation/);
  }
  assert.match(when('view/title', 'workspaceLm.train') ?? '', /isWorkspaceTrusted/);
  assert.match(when('editor/context', 'workspaceLm.summarizeFunction') ?? '', /editorTextFocus/);
  // Completions can be switched off per language (the status bar menu does it).
  assert.equal(manifest.contributes.configuration.properties['workspaceLm.enableCompletions'].scope, 'language-overridable');
});
