// Whether inline completions may be asked for a document: not while the user has snoozed them, and
// not in a language they turned off (workspaceLm.enableCompletions overridden for that language).
// The check sits in the language client's inline-completion middleware, so a gated request never
// reaches the server: the server reads settings per document URI, which carries no language
// overrides. It owns the snooze (kept in memory: a window reload ends it) and nothing else.
import * as vscode from 'vscode';
import type { Middleware } from 'vscode-languageclient/node';

const SECTION = 'workspaceLm';
const SETTING = 'enableCompletions';

/** When the snooze ends: a time (ms since the epoch), or when the window restarts. */
export type SnoozeEnd = number | 'restart';

type InlineMiddleware = NonNullable<Middleware['provideInlineCompletionItems']>;

export class CompletionGate implements vscode.Disposable {
  private end: SnoozeEnd | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event; // snoozed, resumed, or a language switched

  /** When the snooze ends; null when completions are not snoozed. */
  get snoozedUntil(): SnoozeEnd | null {
    return this.end;
  }

  /** Snoozes for `minutes`, or until the window restarts; a new snooze replaces the old one. */
  snooze(minutes: number | 'restart'): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (minutes === 'restart') {
      this.end = 'restart';
    } else {
      this.end = Date.now() + minutes * 60_000;
      this.timer = setTimeout(() => this.resume(), minutes * 60_000);
    }
    this.changed.fire();
  }

  resume(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.end === null) return;
    this.end = null;
    this.changed.fire();
  }

  /** workspaceLm.enableCompletions as it applies to the language of this document. */
  enabledFor(document: { languageId: string; uri: vscode.Uri }): boolean {
    return vscode.workspace.getConfiguration(SECTION, { languageId: document.languageId, uri: document.uri }).get<boolean>(SETTING, true);
  }

  allows(document: { languageId: string; uri: vscode.Uri }): boolean {
    return this.end === null && this.enabledFor(document);
  }

  /**
   * Turns completions off (or back on) for the language of a document, in the user settings:
   * "[typescript]": { "workspaceLm.enableCompletions": false }. Turning on removes the language
   * overrides that turned it off, then writes `true` only if the setting would still be off.
   */
  async setEnabledForLanguage(document: { languageId: string; uri: vscode.Uri }, enabled: boolean): Promise<void> {
    const scope = { languageId: document.languageId, uri: document.uri };
    const config = vscode.workspace.getConfiguration(SECTION, scope);
    if (!enabled) {
      await config.update(SETTING, false, vscode.ConfigurationTarget.Global, true);
    } else {
      const inspected = config.inspect<boolean>(SETTING);
      const levels: [boolean | undefined, vscode.ConfigurationTarget][] = [
        [inspected?.workspaceFolderLanguageValue, vscode.ConfigurationTarget.WorkspaceFolder],
        [inspected?.workspaceLanguageValue, vscode.ConfigurationTarget.Workspace],
        [inspected?.globalLanguageValue, vscode.ConfigurationTarget.Global],
      ];
      for (const [value, target] of levels) if (value === false) await config.update(SETTING, undefined, target, true);
      if (!this.enabledFor(document)) await config.update(SETTING, true, vscode.ConfigurationTarget.Global, true);
    }
    this.changed.fire();
  }

  /** The middleware: asks `inner` (and through it the server) only when the gate allows the document. */
  middleware(inner: InlineMiddleware): Required<Pick<Middleware, 'provideInlineCompletionItems'>> {
    return {
      provideInlineCompletionItems: (document, position, context, token, next) =>
        this.allows(document) ? inner(document, position, context, token, next) : [],
    };
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.changed.dispose();
  }
}
