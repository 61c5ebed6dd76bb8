// Saved files into the serving model's workspace n-gram as they change: the editor's saves
// (textDocument/didSave) and files changed on disk by anything else (workspace/didChangeWatchedFiles).
// Owns which of them count (files.ts's rules: .gitignore, excludes, secret files never opened,
// secrets scrubbed), the text an open file had before its first save (as the editor opened it:
// what training may have counted), and batching: what changes while a batch is taken in goes in
// with the next. It counts nothing itself (mixture.ts, ngram.ts do) and never writes
// ngram.bin: the file on disk keeps training's counts, and the next training counts the files again.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readWorkspaceFile } from '../../models/src/data/files';
import { scrubSecrets } from '../../models/src/data/secrets';

/** What a batch did to the n-gram (CompletionSession.takeSavedFiles); null when no mixture serves. */
export type TakenIn = { files: number; tokensIn: number; tokensOut: number; encodeMs: number; updateMs: number } | null;

export interface SavedFilesHost {
  folder(): string | null; // the workspace folder: files outside it are not the workspace's
  trusted(): boolean; // an untrusted workspace's files are not read, as training does not read them
  exclude(): Promise<string[]>; // workspaceLm.exclude
  take(files: { key: string; text: string | null; before?: string | null }[]): Promise<TakenIn>;
  taken(result: TakenIn, sources: number): void; // after each batch: the n-gram may have changed; `sources` workspace source files were saved
  log(message: string): void;
}

// More changed text than this at once (a branch checked out, a formatter run over the tree) is not
// an edit to keep up with: the files past it wait for the next training, and the log says so.
// Taking in 1 MiB (~280K tokens) costs 0.5-1 s of this thread (ngram.ts applyChanges, 2 shared cores).
export const MAX_BATCH_BYTES = 1 << 20;

// FileChangeType (LSP): 1 created, 2 changed, 3 deleted.
const FILE_CHANGED = 2;
const FILE_DELETED = 3;

export class SavedFiles {
  // Open files' text before their next save: as the editor opened them (the file on disk, unless
  // the editor restored unsaved changes), then as each save left them.
  private readonly beforeSave = new Map<string, string>();
  private readonly pending = new Map<string, 'changed' | 'deleted'>();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly host: SavedFilesHost) {}

  /** An editor opened a file: its text now is what its first save replaces. */
  opened(uri: string, text: string): void {
    const file = filePath(uri);
    if (file !== null && typeof text === 'string') this.beforeSave.set(file, text);
  }

  closed(uri: string): void {
    const file = filePath(uri);
    if (file !== null) this.schedule(async () => void this.beforeSave.delete(file));
  }

  /** The editor saved a file. */
  saved(uri: string): void {
    this.changed([{ uri, type: FILE_CHANGED }]);
  }

  /** Files created, changed or deleted on disk (FileChangeType 1, 2, 3): by the editor or anything else. */
  changed(changes: readonly { uri: string; type: number }[]): void {
    if (!this.host.trusted()) return;
    for (const { uri, type } of changes) {
      const file = filePath(uri);
      if (file !== null) this.pending.set(file, type === FILE_DELETED ? 'deleted' : 'changed');
    }
    if (this.pending.size > 0) this.schedule(() => this.takePending());
  }

  private schedule(job: () => Promise<void>): void {
    this.queue = this.queue.then(job).catch((err: Error) => this.host.log(`saved files: ${err.stack ?? err.message}`));
  }

  /** The file's text as training would read it, or null (not a workspace source file, gone). */
  private async read(file: string): Promise<string | null> {
    const folder = this.host.folder();
    if (folder === null) return null;
    return (await readWorkspaceFile(folder, file, { exclude: await this.host.exclude() })).text;
  }

  private async takePending(): Promise<void> {
    if (this.pending.size === 0) return; // taken in with an earlier batch
    const batch = [...this.pending];
    this.pending.clear();
    const files: { key: string; text: string | null; before?: string | null }[] = [];
    const left: string[] = [];
    let bytes = 0;
    const folder = this.host.folder();
    for (const [file, change] of batch) {
      const text = change === 'deleted' ? null : await this.read(file);
      if (text !== null && bytes + text.length > MAX_BATCH_BYTES) {
        left.push(file);
        continue;
      }
      bytes += text?.length ?? 0;
      const before = this.beforeSave.get(file);
      // Scrubbed as the text now is: the n-gram only ever held scrubbed text.
      // Under the posix path readWorkspaceFile scrubs with (a Windows path's separators would read differently).
      files.push({ key: file, text, before: before === undefined || folder === null ? undefined : scrubSecrets(before, path.relative(folder, file).split(path.sep).join('/')) });
      if (before !== undefined) {
        if (text === null) this.beforeSave.delete(file);
        else this.beforeSave.set(file, text);
      }
    }
    if (left.length > 0) this.host.log(`saved files: ${batch.length} files changed at once, more than ${MAX_BATCH_BYTES >> 20} MiB of text; ${left.length} are left for the next training to count`);
    // A file that is no source (a build output) comes with no text: it takes out only what an
    // earlier batch put in (it was deleted, or is ignored now), else it changes nothing.
    const sources = files.filter((f) => f.text !== null).length;
    const result = await this.host.take(files);
    this.host.taken(result, sources);
  }
}

function filePath(uri: string): string | null {
  if (typeof uri !== 'string' || !uri.startsWith('file:')) return null;
  try {
    return fileURLToPath(uri);
  } catch {
    return null;
  }
}
