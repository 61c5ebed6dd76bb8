// Inline completions: the prompt around the cursor, the debounce-aware cancellation, a small LRU
// cache, the swap of the serving model, and the post-processing that returns nothing rather than
// junk. It does not run a model itself: the session (models/src/infer/session.ts) is injected, so the
// pure parts here are tested without onnxruntime.

export type CompletionMode = 'line' | 'block';

/** The part of CompletionSession the server uses (models/src/infer/session.ts). */
export interface CompletionBackend {
  readonly provider: string;
  complete(req: {
    prefix: string;
    suffix?: string;
    mode: CompletionMode;
    maxTokens: number;
    signal?: AbortSignal;
    uri?: string; // the document being edited, so the open-files cache does not predict it from itself
    minMeanLogProb?: number; // withhold a completion the model is less sure of than this
  }): Promise<{ text: string; tokens: number; ms: number }>;
  /** The open-files cache of the completion mixture (absent when the model folder has none). */
  observeDocument?(uri: string, text: string): void;
  forgetDocument?(uri: string): void;
  close(): Promise<void>;
}

/** Structurally the LSP CancellationToken, kept minimal so tests can pass their own. */
export interface CancellationLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

// ---------------------------------------------------------------------------------------------
// Prompt building (pure)

export interface PromptOptions {
  maxPrefixChars: number; // the model sees at most blockSize tokens; ~3 chars a token, with room
  maxSuffixChars: number; // for fill-in-the-middle and for the repeat check
  multiline: boolean;
}

export const DEFAULT_PROMPT_OPTIONS: PromptOptions = { maxPrefixChars: 3000, maxSuffixChars: 1000, multiline: false };

export interface Prompt {
  prefix: string; // text before the cursor, starting at a line boundary
  suffix: string; // text after the cursor, ending at a line boundary
  linePrefix: string; // the cursor line up to the cursor
  lineSuffix: string; // the rest of the cursor line
  mode: CompletionMode;
}

/** Punctuation may follow the cursor (`f(|) {`); a word after it means editing inside a line: no completion. */
const COMPLETABLE_LINE_SUFFIX = /^[^\p{L}\p{N}_$]*$/u;

/** The prompt at `offset` in `text`, or null where a completion would only get in the way. */
export function buildPrompt(text: string, offset: number, opts: PromptOptions = DEFAULT_PROMPT_OPTIONS): Prompt | null {
  if (!Number.isInteger(offset) || offset < 0 || offset > text.length) return null;
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const newlineAfter = text.indexOf('\n', offset);
  const lineEnd = newlineAfter === -1 ? text.length : newlineAfter;
  const linePrefix = text.slice(lineStart, offset);
  const lineSuffix = text.slice(offset, lineEnd).replace(/\r$/, '');
  if (!COMPLETABLE_LINE_SUFFIX.test(lineSuffix)) return null;

  // Start the prefix at a line boundary so the model never sees half a token at the front.
  let prefixStart = Math.max(0, offset - opts.maxPrefixChars);
  if (prefixStart > 0) {
    const nextLine = text.indexOf('\n', prefixStart - 1) + 1;
    prefixStart = nextLine > 0 && nextLine <= lineStart ? nextLine : prefixStart;
  }
  let suffixEnd = Math.min(text.length, offset + opts.maxSuffixChars);
  if (suffixEnd < text.length) {
    const lastNewline = text.lastIndexOf('\n', suffixEnd - 1);
    if (lastNewline >= lineEnd) suffixEnd = lastNewline + 1;
  }
  // A block only makes sense at the end of a line; in the middle of one, complete that line.
  const mode: CompletionMode = opts.multiline && lineSuffix.trim() === '' ? 'block' : 'line';
  return { prefix: text.slice(prefixStart, offset), suffix: text.slice(offset, suffixEnd), linePrefix, lineSuffix, mode };
}

// ---------------------------------------------------------------------------------------------
// Post-processing (pure)

const MAX_BLOCK_LINES = 12;

function indentOf(line: string): number {
  return /^[ \t]*/.exec(line)![0].length;
}

function lastNonEmptyLine(text: string): string {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i].trim() !== '') return lines[i];
  return '';
}

/**
 * The text to show as ghost text for the model's raw output, or null when it would be junk:
 * empty, whitespace only, what already follows the cursor, or a copy of the line above.
 */
export function postProcess(raw: string, prompt: Prompt): string | null {
  let text = raw.replace(/\r\n?/g, '\n');
  if (prompt.mode === 'line') {
    const newline = text.indexOf('\n');
    // A completion at the very end of a line may start with the newline itself; then we show nothing
    // on this line rather than inventing the next one.
    if (newline !== -1) text = text.slice(0, newline);
  } else {
    text = cutBlock(text, prompt);
  }
  text = text.replace(/[ \t]+$/gm, '').replace(/\n+$/, '');
  if (text.trim() === '') return null;

  // The rest of the line stays after the ghost text: drop the part of the completion that would
  // type it twice (completion "a, b);" before ");" becomes "a, b").
  const rest = prompt.lineSuffix.trimEnd();
  if (rest !== '' && prompt.mode === 'line') {
    for (let k = Math.min(rest.length, text.length); k > 0; k--) {
      if (text.endsWith(rest.slice(0, k))) {
        text = text.slice(0, text.length - k);
        break;
      }
    }
    if (text.trim() === '') return null;
  }

  const core = text.trim();
  const following = prompt.suffix.slice(prompt.lineSuffix.length).trimStart();
  if (following.startsWith(core)) return null; // the model predicts what is already there
  if (prompt.linePrefix.trim() === '' && core === lastNonEmptyLine(prompt.prefix).trim()) return null; // a loop
  return text;
}

/** A block ends at a blank line, at a line indented less than where it started, or at a cap. */
function cutBlock(text: string, prompt: Prompt): string {
  const lines = text.split('\n');
  const baseIndent = indentOf(prompt.linePrefix.trim() === '' ? prompt.linePrefix : lastNonEmptyLine(prompt.prefix));
  const kept: string[] = [lines[0]];
  for (let i = 1; i < lines.length && kept.length < MAX_BLOCK_LINES; i++) {
    const line = lines[i];
    if (line.trim() === '') break;
    // A closing bracket at a shallower indent ends the block it belongs to: keep it, then stop.
    if (indentOf(line) < baseIndent) {
      if (/^\s*[)\]}]/.test(line)) kept.push(line);
      break;
    }
    kept.push(line);
  }
  return kept.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Cache

/** A least-recently-used map: Map keeps insertion order, so re-inserting marks an entry as fresh. */
export class LruCache<K, V> {
  private readonly entries = new Map<K, V>();
  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    if (!this.entries.has(key)) return undefined;
    const value = this.entries.get(key)!;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as K);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

// ---------------------------------------------------------------------------------------------
// The serving model, swapped atomically

interface ServingEntry<B extends CompletionBackend> {
  name: string;
  dir: string;
  backend: B;
  inFlight: number;
  retired: boolean;
}

/**
 * Which model serves completions. A new model is opened first and swapped in afterwards, so
 * requests never see a half-loaded one; the old session closes once its last request finished.
 */
export class ActiveModel<B extends CompletionBackend = CompletionBackend> {
  private entry: ServingEntry<B> | null = null;
  constructor(private readonly open: (modelDir: string) => Promise<B>) {}

  get name(): string | null {
    return this.entry?.name ?? null;
  }
  get dir(): string | null {
    return this.entry?.dir ?? null;
  }
  get provider(): string | null {
    return this.entry?.backend.provider ?? null;
  }

  async activate(name: string, dir: string): Promise<void> {
    const backend = await this.open(dir);
    const previous = this.entry;
    this.entry = { name, dir, backend, inFlight: 0, retired: false };
    if (previous) await this.retire(previous);
  }

  async deactivate(): Promise<void> {
    const previous = this.entry;
    this.entry = null;
    if (previous) await this.retire(previous);
  }

  /** Runs `fn` on the current session, keeping it open until `fn` settles; null when none serves. */
  async use<T>(fn: (backend: B, name: string) => Promise<T>): Promise<T | null> {
    const entry = this.entry;
    if (!entry) return null;
    entry.inFlight++;
    try {
      return await fn(entry.backend, entry.name);
    } finally {
      entry.inFlight--;
      if (entry.retired && entry.inFlight === 0) await entry.backend.close().catch(() => undefined);
    }
  }

  private async retire(entry: ServingEntry<B>): Promise<void> {
    entry.retired = true;
    if (entry.inFlight === 0) await entry.backend.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// The request path

export interface CompletionInput {
  text: string; // the whole document
  offset: number; // the cursor
  uri?: string; // the document's identity, for the open-files cache
}

export interface CompletionSettings {
  multiline: boolean;
  maxTokens: number;
  debounceMs: number;
  minTokenProbability?: number; // 0 shows everything; else the least geometric-mean token probability shown
}

export interface CompletionOutcome {
  text: string | null;
  source: 'cache' | 'typed-ahead' | 'model' | 'none';
  reason?: string; // why nothing: 'cancelled', 'no model', 'no prompt', 'junk'
  ms: number;
}

/** Resolves after `ms`, or at once when the token is cancelled (the caller checks which). */
function debounce(ms: number, token: CancellationLike): Promise<void> {
  if (ms <= 0 || token.isCancellationRequested) return Promise.resolve();
  return new Promise((resolve) => {
    const subscription = token.onCancellationRequested(() => {
      clearTimeout(timer);
      subscription.dispose();
      resolve();
    });
    const timer = setTimeout(() => {
      subscription.dispose();
      resolve();
    }, ms);
  });
}

export class InlineCompleter {
  private readonly cache = new LruCache<string, string | null>(128);
  /** The last suggestion shown, so that typing into it keeps showing its remainder without inference. */
  private lastShown: { model: string; prefix: string; suffix: string; text: string } | null = null;
  /** One inference at a time: the session's KV cache is not shared between concurrent runs. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Open documents, latest text; handed to the serving model's cache lazily, right before inference. */
  private readonly openDocuments = new Map<string, string>();
  /** What each serving backend has been shown of them, so a swapped-in model catches up by itself. */
  private readonly observedBy = new WeakMap<CompletionBackend, Map<string, string>>();

  constructor(private readonly model: ActiveModel, private readonly promptOptions: Omit<PromptOptions, 'multiline'> = DEFAULT_PROMPT_OPTIONS) {}

  /** An open document's current text (cheap: nothing is tokenized until the next inference). */
  observeDocument(uri: string, text: string): void {
    this.openDocuments.set(uri, text);
  }

  forgetDocument(uri: string): void {
    this.openDocuments.delete(uri);
  }

  /** Brings the backend's cache up to date with the open documents, except the one being edited. */
  private syncDocuments(backend: CompletionBackend, editing: string | undefined): void {
    if (!backend.observeDocument) return;
    let seen = this.observedBy.get(backend);
    if (!seen) this.observedBy.set(backend, (seen = new Map()));
    for (const [uri, text] of this.openDocuments) {
      if (uri !== editing && seen.get(uri) !== text) {
        backend.observeDocument(uri, text);
        seen.set(uri, text);
      }
    }
    for (const uri of [...seen.keys()]) {
      if (!this.openDocuments.has(uri)) {
        backend.forgetDocument?.(uri);
        seen.delete(uri);
      }
    }
  }

  /** Forget cached completions (a new model serves, or settings changed). */
  reset(): void {
    this.cache.clear();
    this.lastShown = null;
  }

  async complete(input: CompletionInput, settings: CompletionSettings, token: CancellationLike): Promise<CompletionOutcome> {
    const started = performance.now();
    const none = (reason: string): CompletionOutcome => ({ text: null, source: 'none', reason, ms: performance.now() - started });
    const modelName = this.model.name;
    if (modelName === null) return none('no model');
    const prompt = buildPrompt(input.text, input.offset, { ...this.promptOptions, multiline: settings.multiline });
    if (!prompt) return none('no prompt');

    const typedAhead = this.typedAhead(modelName, prompt);
    if (typedAhead !== null) return { text: typedAhead, source: 'typed-ahead', ms: performance.now() - started };
    const key = [modelName, prompt.mode, settings.maxTokens, settings.minTokenProbability ?? 0, prompt.prefix, prompt.suffix].join('\u0000');
    if (this.cache.has(key)) {
      const text = this.cache.get(key)!;
      if (text !== null) this.remember(modelName, prompt, text);
      return text === null ? none('junk') : { text, source: 'cache', ms: performance.now() - started };
    }

    await debounce(settings.debounceMs, token);
    if (token.isCancellationRequested) return none('cancelled');

    const run = this.queue.then(async () => {
      // The user may have typed on while an earlier request ran: check again before inference.
      if (token.isCancellationRequested) return undefined;
      return this.model.use(async (backend, name) => {
        const controller = new AbortController();
        const subscription = token.onCancellationRequested(() => controller.abort());
        try {
          this.syncDocuments(backend, input.uri);
          const minP = settings.minTokenProbability ?? 0;
          const result = await backend.complete({
            prefix: prompt.prefix,
            suffix: prompt.suffix,
            mode: prompt.mode,
            maxTokens: settings.maxTokens,
            signal: controller.signal,
            uri: input.uri,
            minMeanLogProb: minP > 0 ? Math.log(minP) : undefined,
          });
          return { name, raw: result.text, aborted: controller.signal.aborted };
        } catch (err) {
          // A session stopped by our signal throws; that is a cancelled request, not a failure.
          if (controller.signal.aborted) return { name, raw: '', aborted: true };
          throw err;
        } finally {
          subscription.dispose();
        }
      });
    });
    this.queue = run.catch(() => undefined);
    const result = await run;
    if (result === undefined) return none('cancelled');
    if (result === null) return none('no model');
    if (result.aborted) return none('cancelled');
    const text = postProcess(result.raw, prompt);
    // Cache under the model that produced it: a swap during inference must not poison the new one.
    this.cache.set([result.name, prompt.mode, settings.maxTokens, settings.minTokenProbability ?? 0, prompt.prefix, prompt.suffix].join('\u0000'), text);
    if (text === null) return none('junk');
    this.remember(result.name, prompt, text);
    return { text, source: 'model', ms: performance.now() - started };
  }

  private remember(model: string, prompt: Prompt, text: string): void {
    this.lastShown = { model, prefix: prompt.prefix, suffix: prompt.suffix, text };
  }

  private typedAhead(model: string, prompt: Prompt): string | null {
    const last = this.lastShown;
    if (!last || last.model !== model || last.suffix !== prompt.suffix) return null;
    // Only an exact extension of the prompt shown; a slid prefix window falls back to the cache.
    if (!prompt.prefix.startsWith(last.prefix)) return null;
    const typed = prompt.prefix.slice(last.prefix.length);
    if (typed === '' || typed.includes('\n') || !last.text.startsWith(typed)) return null;
    const remainder = last.text.slice(typed.length);
    return remainder.trim() === '' ? null : remainder;
  }
}
