// "Summarize Function" on the server: which definition the cursor is in, a one-line summary of it
// from the serving session, and the doc comment to insert. Finding definitions and writing doc
// comments is models/src/summaries/functionAt.ts; decoding is models/src/summaries/summarize.ts; this only joins them.
import { fileURLToPath } from 'node:url';
import { ResponseError } from 'vscode-languageserver';
import { languageOf, SUMMARY_LANGUAGES } from '../../models/src/data/sourceScanner';
import { findFunctionAt, formatDocComment } from '../../models/src/summaries/functionAt';
import { summarize } from '../../models/src/summaries/summarize';
import type { CompletionSession } from '../../models/src/infer/session';
import { ErrorCodes, type SummarizeRequest } from '../../protocol/src/customMessages';
import { LruCache } from './completion';

/** The summaries module's language id for a document: VS Code's own id, or one from the file name. */
function summaryLanguage(uri: string, languageId: string): string | undefined {
  if (SUMMARY_LANGUAGES.includes(languageId)) return languageId;
  try {
    return languageOf(uri.startsWith('file:') ? fileURLToPath(uri) : uri);
  } catch {
    return undefined;
  }
}

export async function summarizeAt(
  document: { uri: string; languageId: string; text: string },
  line: number,
  serving: { model: string; session: CompletionSession },
  signal?: AbortSignal,
): Promise<SummarizeRequest.Result> {
  const language = summaryLanguage(document.uri, document.languageId);
  if (!language) {
    throw new ResponseError(ErrorCodes.invalidParams, `cannot summarize ${document.languageId} code (supported: ${SUMMARY_LANGUAGES.join(', ')})`);
  }
  const definition = findFunctionAt(document.text, language, line);
  if (!definition.ok) throw new ResponseError(ErrorCodes.invalidParams, `line ${line + 1}: ${definition.reason}`);
  const result = await summarize(serving.session, definition.code, { signal });
  const comment = formatDocComment(result.summary, language, definition.insert.indent);
  return {
    model: serving.model,
    name: definition.name ?? null,
    kind: definition.kind,
    summary: result.summary,
    docComment: comment.ok ? comment.text : null,
    insertLine: definition.insert.line,
    trainedForSummaries: result.trainedForSummaries,
    ms: result.ms,
  };
}

/** Summaries shown on hover, per model and function body: hovering again costs nothing. */
const hoverCache = new LruCache<string, string>(256);

/**
 * The summary to show when the pointer rests on a definition's header line (the lines from its
 * start to the one naming it), or null anywhere else: hovering inside a body is reading code,
 * not asking what the function does.
 */
export async function hoverSummaryAt(
  document: { uri: string; languageId: string; text: string },
  line: number,
  serving: { model: string; session: CompletionSession },
  signal?: AbortSignal,
): Promise<string | null> {
  const language = summaryLanguage(document.uri, document.languageId);
  if (!language) return null;
  const definition = findFunctionAt(document.text, language, line);
  if (!definition.ok) return null;
  const lines = document.text.split('\n');
  let header = definition.startLine;
  while (definition.name && header < definition.endLine && !lines[header].includes(definition.name)) header++;
  if (line < definition.startLine || line > header) return null;
  const key = `${serving.model}\u0000${definition.code}`;
  const cached = hoverCache.get(key);
  if (cached !== undefined) return cached;
  const { summary } = await summarize(serving.session, definition.code, { signal });
  if (signal?.aborted) return null;
  hoverCache.set(key, summary);
  return summary;
}
