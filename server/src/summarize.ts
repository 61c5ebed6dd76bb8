// "Summarize Function" on the server: which definition the cursor is in, a one-line summary of it
// from the serving session, and the doc comment to insert. Finding definitions and writing doc
// comments is models/src/summaries.ts; decoding is models/src/summarize.ts; this only joins them.
import { fileURLToPath } from 'node:url';
import { ResponseError } from 'vscode-languageserver';
import { findFunctionAt, formatDocComment, languageOf, SUMMARY_LANGUAGES } from '../../models/src/summaries';
import { summarize } from '../../models/src/summarize';
import type { CompletionSession } from '../../models/src/session';
import { ErrorCodes, type SummarizeRequest } from './protocol';

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
