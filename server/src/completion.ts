// Inline completions: whether and how to complete at the cursor, the debounce-aware cancellation, a
// small LRU cache, the reuse of a suggestion the user is typing into, and the swap of the serving
// model. It does not run a model, pick the prompt window or clean a completion: the session
// (models/src/infer/session.ts) does all three, and serialises its calls, so the pure parts here
// are tested with an injected backend, without onnxruntime.
import { createHash } from 'node:crypto';
import type { CompletionMode } from '../../models/src/infer/postprocess';

/** The part of CompletionSession the server uses (models/src/infer/session.ts). */
export interface CompletionBackend {
  readonly provider: string;
  /** The text to show ('' for nothing), cleaned; calls are served one at a time, in order. */
  complete(req: {
    prefix: string; // the document before the cursor, from its start: the session picks the window
    suffix?: string; // the document after the cursor
    mode: CompletionMode;
    maxTokens: number;
    signal?: AbortSignal;
    uri?: string; // the document being edited, so the open-files cache does not predict it from itself
    minMeanLogProb?: number; // withhold a completion the model is less sure of than this
  }): Promise<{ text: string; tokens: number; ms: number }>;
  /** The open-files cache of the completion mixture (absent when the model folder has none). */
  observeDocument?(uri: string, text: string): void;
  forgetDocument?(uri: string): void;
  /** An opened document, tokenized ahead (off the completion path) so its first completion is not. */
  prepareDocument?(uri: string, text: string): void;
  close(): Promise<void>;
}

/** Structurally the LSP CancellationToken, kept minimal so tests can pass their own. */
export interface CancellationLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

// ---------------------------------------------------------------------------------------------
// Whether to complete (pure)

/** Punctuation may follow the cursor (`f(|) {`); a word after it means editing inside a line: no completion. */
const COMPLETABLE_LINE_SUFFIX = /^[^\p{L}\p{N}_$]*$/u;

/**
 * How to complete at `offset` in `text`, or null where a completion would only get in the way. A
 * block only makes sense at the end of a line; in the middle of one, complete that line.
 */
export function completionMode(text: string, offset: number, multiline: boolean): CompletionMode | null {
  if (!Number.isInteger(offset) || offset < 0 || offset > text.length) return null;
  const newlineAfter = text.indexOf('\n', offset);
  const lineSuffix = text.slice(offset, newlineAfter === -1 ? text.length : newlineAfter).replace(/\r$/, '');
  if (!COMPLETABLE_LINE_SUFFIX.test(lineSuffix)) return null;
  return multiline && lineSuffix.trim() === '' ? 'block' : 'line';
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
  reason?: string; // why nothing: 'cancelled', 'no model', 'no prompt' (no place to complete), 'junk' (cleaned away)
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

/** The document split at the cursor, and how to complete there. */
interface Cursor {
  prefix: string; // the whole document before the cursor
  suffix: string; // and after it
  mode: CompletionMode;
}

/**
 * A completion's cache key: the model, what shapes the answer, the cursor and a digest of the
 * whole document (the prompt window is the session's to choose, so the key covers all it may see).
 */
function cacheKey(model: string, text: string, cursor: Cursor, settings: CompletionSettings): string {
  const digest = createHash('sha1').update(text).digest('base64');
  return [model, cursor.mode, settings.maxTokens, settings.minTokenProbability ?? 0, cursor.prefix.length, digest].join('\u0000');
}

export class InlineCompleter {
  private readonly cache = new LruCache<string, string | null>(128);
  /** The last suggestion shown, so that typing into it keeps showing its remainder without inference. */
  private lastShown: { model: string; prefix: string; suffix: string; text: string } | null = null;
  /** Open documents, latest text; handed to the serving model's cache lazily, right before inference. */
  private readonly openDocuments = new Map<string, string>();
  /** What each serving backend has been shown of them, so a swapped-in model catches up by itself. */
  private readonly observedBy = new WeakMap<CompletionBackend, Map<string, string>>();

  constructor(private readonly model: ActiveModel) {}

  /** An open document's current text (cheap: nothing is tokenized until the next inference). */
  observeDocument(uri: string, text: string): void {
    // A client's malformed didOpen (no text, a number) must not reach the model's cache: one bad
    // document there would fail every completion.
    if (typeof uri !== 'string' || typeof text !== 'string') return;
    this.openDocuments.set(uri, text);
  }

  forgetDocument(uri: string): void {
    this.openDocuments.delete(uri);
  }

  /** A document just opened: the serving model may tokenize it ahead, off the completion path. */
  documentOpened(uri: string, text: string): void {
    if (typeof uri !== 'string' || typeof text !== 'string') return;
    void this.model.use(async (backend) => backend.prepareDocument?.(uri, text));
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
    const mode = completionMode(input.text, input.offset, settings.multiline);
    if (mode === null) return none('no prompt');
    const cursor: Cursor = { prefix: input.text.slice(0, input.offset), suffix: input.text.slice(input.offset), mode };

    // Typing into the suggestion shown needs no digest of the document: checked first.
    const typedAhead = this.typedAhead(modelName, cursor);
    if (typedAhead !== null) return { text: typedAhead, source: 'typed-ahead', ms: performance.now() - started };
    const key = cacheKey(modelName, input.text, cursor, settings);
    if (this.cache.has(key)) {
      const text = this.cache.get(key)!;
      if (text !== null) this.remember(modelName, cursor, text);
      return text === null ? none('junk') : { text, source: 'cache', ms: performance.now() - started };
    }

    await debounce(settings.debounceMs, token);
    if (token.isCancellationRequested) return none('cancelled');

    // No queue here: the session serves one call at a time, and drops a call whose signal was
    // aborted while it waited (the user typed on), before inference.
    const result = await this.model.use(async (backend, name) => {
      if (token.isCancellationRequested) return { name, text: '', aborted: true };
      const controller = new AbortController();
      const subscription = token.onCancellationRequested(() => controller.abort());
      try {
        this.syncDocuments(backend, input.uri);
        const minP = settings.minTokenProbability ?? 0;
        const { text } = await backend.complete({
          prefix: cursor.prefix,
          suffix: cursor.suffix,
          mode,
          maxTokens: settings.maxTokens,
          signal: controller.signal,
          uri: input.uri,
          minMeanLogProb: minP > 0 ? Math.log(minP) : undefined,
        });
        return { name, text, aborted: controller.signal.aborted };
      } catch (err) {
        // A session stopped by our signal throws; that is a cancelled request, not a failure.
        if (controller.signal.aborted) return { name, text: '', aborted: true };
        throw err;
      } finally {
        subscription.dispose();
      }
    });
    if (result === null) return none('no model');
    if (result.aborted) return none('cancelled');
    // The session's text is final (cleaned by models/src/infer/postprocess.ts); '' is nothing to show.
    const text = result.text === '' ? null : result.text;
    // Cache under the model that produced it: a swap during inference must not poison the new one.
    this.cache.set(result.name === modelName ? key : cacheKey(result.name, input.text, cursor, settings), text);
    if (text === null) return none('junk');
    this.remember(result.name, cursor, text);
    return { text, source: 'model', ms: performance.now() - started };
  }

  private remember(model: string, cursor: Cursor, text: string): void {
    this.lastShown = { model, prefix: cursor.prefix, suffix: cursor.suffix, text };
  }

  private typedAhead(model: string, cursor: Cursor): string | null {
    const last = this.lastShown;
    if (!last || last.model !== model || last.suffix !== cursor.suffix) return null;
    if (!cursor.prefix.startsWith(last.prefix)) return null;
    const typed = cursor.prefix.slice(last.prefix.length);
    if (typed === '' || typed.includes('\n') || !last.text.startsWith(typed)) return null;
    const remainder = last.text.slice(typed.length);
    return remainder.trim() === '' ? null : remainder;
  }
}
