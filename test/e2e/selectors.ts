// Every CSS selector the end-to-end tests use against the VS Code workbench, in one place: when a
// VS Code release renames a class, this is the only file to change. Measured on code-server
// 4.139.1 (VS Code 1.139.1); see shared/E2E.md. No logic here beyond building selector strings.

export const workbench = {
  ready: '.monaco-workbench',
  activityBar: '.activitybar',
  /** An activity bar entry by the start of its label (its title, then maybe a keybinding). */
  activityEntry: (label: string) => `.activitybar [aria-label^="${label}"]`,
  statusBarItem: (textPart: string) => `.statusbar-item:has-text("${textPart}")`,
  /** Every status bar item (plain CSS, for code that runs in the page). */
  statusBarItemAny: '.statusbar-item',
};

export const quickInput = {
  widget: '.quick-input-widget',
  input: '.quick-input-widget input',
  row: '.quick-input-list .monaco-list-row',
  rowWithText: (text: string) => `.quick-input-list .monaco-list-row:has-text("${text}")`,
  /** Inside a row: its label alone (a description and a detail may follow it). */
  rowLabel: '.label-name',
};

export const notifications = {
  toastMessage: '.notifications-toasts .notification-list-item-message',
  /** A toast whose message contains the text (case-sensitive substring). */
  toastWithText: (text: string) => `.notifications-toasts .notification-list-item:has-text("${text}")`,
  /** A progress notification shows a progress bar inside its toast while it runs. */
  progressToast: '.notifications-toasts .notification-list-item:has(.monaco-progress-container.active)',
  /** Buttons inside a toast (e.g. "Cancel" on a cancellable progress notification). */
  toastButton: (toastText: string, button: string) =>
    `.notifications-toasts .notification-list-item:has-text("${toastText}") .monaco-button:has-text("${button}")`,
  /** The notification centre keeps every notification of the window, toasts that timed out too. */
  centerItem: '.notifications-center .notification-list-item',
  centerMessage: '.notifications-center .notification-list-item-message',
  itemErrorIcon: '.notification-list-item-icon.codicon-error',
  itemSource: '.notification-list-item-source',
};

export const editor = {
  /** The focused text editor's lines (not a diff or output view). */
  lines: '.editor-instance .monaco-editor .view-lines',
  activeTab: '.tabs-container .tab.active',
  tabWithName: (name: string) => `.tabs-container .tab[aria-label^="${name}"]`,
  /** Inline-completion ghost text: single-line pieces (split per token), the preview, multi-line. */
  ghostText: '.monaco-editor .view-line .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text',
};

export const webview = {
  /** A webview view's outer iframe once loaded; the page itself sits in its #active-frame. */
  outerFrame: 'iframe.webview.ready',
  innerFrame: '#active-frame',
};

export const panes = {
  /** A view's pane header; a container with a single view hides it (wait with state 'attached'). */
  viewPane: (title: string) => `.pane-header[aria-label^="${title}"]`,
  sideBar: '.part.sidebar',
  /** A view's title bar action (a `view/title` menu entry shown as an icon), by its command title. */
  titleAction: (title: string) => `.part.sidebar .title-actions .action-label[aria-label*="${title}"]`,
};
