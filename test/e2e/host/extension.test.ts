// Mocha tests that run inside VS Code's extension host against the installed .vsix: activation,
// command registration, settings declared with the server's defaults, and inline completions from
// a trained model through VS Code's own inline-suggest commands, also switched off for a language.
// The UI scenarios (run.ts) train that model first; these tests never train.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { describe, it, after } from 'mocha';
import { DEFAULT_SETTINGS } from '../../../server/src/settings';

const EXTENSION_ID = 'workspace-lm.workspace-lm';

interface ContributedCommand {
  command: string;
  title: string;
  category?: string;
}

function extension(): vscode.Extension<unknown> {
  const found = vscode.extensions.getExtension(EXTENSION_ID);
  assert.ok(found, `extension ${EXTENSION_ID} is not installed; installed: ${vscode.extensions.all.map((e) => e.id).filter((id) => !id.startsWith('vscode.')).join(', ')}`);
  return found;
}

function contributedCommands(): ContributedCommand[] {
  return (extension().packageJSON.contributes?.commands ?? []) as ContributedCommand[];
}

/** Checks `test` every `everyMs` until it holds (true) or `timeoutMs` runs out (false). */
async function poll(test: () => Promise<boolean>, timeoutMs: number, everyMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await test()) return true;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return false;
}

describe('Workspace LM in the extension host', () => {
  it('activates', async () => {
    await extension().activate();
    assert.equal(extension().isActive, true);
  });

  it('registers every command its manifest contributes, the train command among them', async () => {
    const contributed = contributedCommands();
    assert.ok(contributed.length > 0, 'package.json contributes no commands');
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.map((c) => c.command).filter((id) => !registered.has(id));
    assert.deepEqual(missing, [], `contributed but not registered after activation: ${missing.join(', ')}`);
    const titles = contributed.map((c) => (c.category ? `${c.category}: ${c.title}` : c.title));
    assert.ok(
      titles.some((t) => t.includes('Train Model on Workspace')),
      `no "Train Model on Workspace" command among ${JSON.stringify(titles)}`,
    );
  });

  it('declares every server setting in package.json with the server default', () => {
    const config = vscode.workspace.getConfiguration('workspaceLm');
    for (const [key, serverDefault] of Object.entries(DEFAULT_SETTINGS)) {
      const inspected = config.inspect(key);
      assert.ok(inspected && inspected.defaultValue !== undefined, `workspaceLm.${key} is not declared in package.json`);
      assert.deepEqual(inspected.defaultValue, serverDefault, `workspaceLm.${key}: package.json default differs from server/src/settings.ts`);
    }
  });

  it('reads the workspace settings the fixture sets (preset tiny)', () => {
    const inspected = vscode.workspace.getConfiguration('workspaceLm').inspect('preset');
    assert.equal(inspected?.workspaceValue, 'tiny');
    assert.equal(vscode.workspace.getConfiguration('workspaceLm').get('preset'), 'tiny');
  });

  describe('with a trained model', () => {
    after(async () => {
      // Leave the fixture file as it was on disk.
      await vscode.commands.executeCommand('workbench.action.files.revert');
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });

    it('the inline provider returns an item for a document, which VS Code inserts', async () => {
      const folder = vscode.workspace.workspaceFolders?.[0];
      assert.ok(folder, 'no workspace folder open');
      const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, 'src', 'length.ts'));
      const editor = await vscode.window.showTextDocument(document);
      const end = document.lineAt(document.lineCount - 1).range.end;
      await editor.edit((edit) => edit.insert(end, '\n  return '));
      const cursor = document.lineAt(document.lineCount - 1).range.end;
      editor.selection = new vscode.Selection(cursor, cursor);
      const before = document.getText();

      // Ask VS Code for inline suggestions and accept whatever it shows: the text grows only if
      // the provider returned an item. The language server may still be loading the model.
      const accepted = await poll(
        async () => {
          await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
          await new Promise((resolve) => setTimeout(resolve, 750));
          await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
          return document.getText() !== before;
        },
        60_000,
        250,
      );
      assert.ok(accepted, 'no inline completion was inserted within 60 s after "  return " at the end of src/length.ts (is a model trained and active?)');
      const inserted = document.getText().slice(before.length);
      assert.ok(document.getText().startsWith(before), 'accepting changed text before the cursor');
      assert.ok(inserted.trim().length > 0, `the accepted completion is blank: ${JSON.stringify(inserted)}`);
    });

    it('completions turned off for the document language (a language override) stop, and come back when on', async () => {
      // What the status bar menu writes: "[typescript]": { "workspaceLm.enableCompletions": false }.
      // Off before any text is typed, so no suggestion fetched earlier can be accepted.
      const config = vscode.workspace.getConfiguration('workspaceLm', { languageId: 'typescript' });
      await config.update('enableCompletions', false, vscode.ConfigurationTarget.Global, true);
      const folder = vscode.workspace.workspaceFolders![0];
      // The site the test above completed, as it was on disk.
      const document = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder.uri, 'src', 'length.ts'));
      const editor = await vscode.window.showTextDocument(document);
      await vscode.commands.executeCommand('workbench.action.files.revert');
      const acceptsSomething = (before: string, timeoutMs: number) =>
        poll(
          async () => {
            await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
            await new Promise((resolve) => setTimeout(resolve, 500));
            await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
            return document.getText() !== before;
          },
          timeoutMs,
          250,
        );
      let before: string;
      let cursor: vscode.Position;
      try {
        assert.equal(document.languageId, 'typescript');
        assert.equal(vscode.workspace.getConfiguration('workspaceLm', document).get('enableCompletions'), false);
        await editor.edit((edit) => edit.insert(document.lineAt(document.lineCount - 1).range.end, '\n  return '));
        cursor = document.lineAt(document.lineCount - 1).range.end;
        editor.selection = new vscode.Selection(cursor, cursor);
        before = document.getText();
        assert.equal(await acceptsSomething(before, 5_000), false, 'a completion was inserted in typescript with completions off for it');
      } finally {
        await config.update('enableCompletions', undefined, vscode.ConfigurationTarget.Global, true);
      }
      assert.equal(vscode.workspace.getConfiguration('workspaceLm', document).get('enableCompletions'), true);
      // The same text in a new document version, so VS Code asks the provider again.
      const end = document.lineAt(document.lineCount - 1).range.end;
      await editor.edit((edit) => edit.insert(end, 'x'));
      await editor.edit((edit) => edit.delete(new vscode.Range(end, end.translate(0, 1))));
      assert.equal(document.getText(), before);
      editor.selection = new vscode.Selection(cursor, cursor);
      assert.ok(await acceptsSomething(before, 30_000), 'no completion within 30 s after turning completions back on for the language');
    });
  });
});
