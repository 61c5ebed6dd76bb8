// Summarize Function's editor side: the definition enclosing a line (with its code and any doc
// comment it already has, and where a new one goes), and a summary written back as a doc comment in
// the language's style. It generates no summary (summarize.ts does) and mines no pairs
// (data/summaryPairs.ts does).
import { findDefinitions, definitionCode, LineIndex, languageSpec, unsupported, type Definition, type DefinitionKind } from '../data/sourceScanner';
import { summaryFromComment } from '../data/docComments';

export interface DefinitionAt {
  ok: true;
  name?: string;
  kind: DefinitionKind;
  startLine: number; // 0-based, first line of the definition (its first decorator)
  endLine: number; // 0-based, last line
  start: number; // offsets in the text, end exclusive
  end: number;
  code: string; // as minePairs would give it (docstring removed), unbounded
  doc?: { start: number; end: number; startLine: number; endLine: number; summary: string }; // the existing doc comment
  insert: { line: number; indent: string; placement: 'above' | 'bodyStart' }; // where a new doc comment goes: before this 0-based line, with this indent
}

export interface NotFound {
  ok: false;
  reason: string;
}

/** The innermost definition whose lines (doc comment included) enclose the 0-based `line`. */
export function findFunctionAt(text: string, languageId: string, line: number): DefinitionAt | NotFound {
  const spec = languageSpec(languageId);
  if (!spec) return { ok: false, reason: unsupported(languageId) };
  if (text.trim() === '') return { ok: false, reason: 'the document is empty: there is no function to summarize' };
  const lines = new LineIndex(text);
  if (!Number.isInteger(line) || line < 0 || line >= lines.count) {
    return { ok: false, reason: `line ${line} (0-based) is outside the document, which has lines 0..${lines.count - 1}` };
  }
  let best: Definition | undefined;
  for (const definition of findDefinitions(text, spec)) {
    const first = lines.lineOf(definition.doc && definition.doc.style !== 'docstring' ? definition.doc.start : definition.headStart);
    const last = lines.lineOf(definition.end);
    if (line < first || line > last) continue;
    if (!best || definition.headStart >= best.headStart) best = definition;
  }
  if (!best) return { ok: false, reason: `no function, method or class encloses line ${line + 1}` };
  const startLine = lines.lineOf(best.headStart);
  let insert: DefinitionAt['insert'] = { line: startLine, indent: best.indent, placement: 'above' };
  if (spec.commentOut === 'python') {
    if (best.bodyLine === undefined) return { ok: false, reason: `${best.name ?? 'the definition'} at line ${best.keywordLine + 1} has its body on the header line; put it on its own line to add a docstring` };
    insert = { line: best.bodyLine, indent: best.bodyIndent ?? best.indent + '    ', placement: 'bodyStart' };
  }
  const doc = best.doc;
  return {
    ok: true, name: best.name, kind: best.kind, startLine, endLine: lines.lineOf(best.end), start: best.headStart, end: best.end,
    code: definitionCode(text, best),
    doc: doc && {
      start: doc.start, end: doc.end, startLine: lines.lineOf(doc.start), endLine: lines.lineOf(doc.end),
      summary: summaryFromComment(doc.body, doc.style),
    },
    insert,
  };
}

export interface FormatOptions {
  width?: number; // wrap lines longer than this (default 100)
}

function wrapWords(text: string, width: number): string[] {
  const rows: string[] = [];
  let row = '';
  for (const word of text.split(' ')) {
    if (row && row.length + 1 + word.length > width) { rows.push(row); row = word; }
    else row = row ? `${row} ${word}` : word;
  }
  if (row) rows.push(row);
  return rows;
}

/**
 * A summary as a doc comment in the language's style, each line starting with `indent` and ending
 * with a newline: `/** ... *\/` (TypeScript, JavaScript, Java, C, ...), `///` (Rust, Swift, Dart),
 * `/// <summary>` (C#), `//` (Go), `#` (shell, Ruby) or a `"""docstring"""` (Python, placed at the
 * start of the body: see findFunctionAt's `insert`). The sentence gets a capital and a period.
 */
export function formatDocComment(summary: string, languageId: string, indent: string, opts: FormatOptions = {}): { ok: true; text: string } | NotFound {
  const spec = languageSpec(languageId);
  if (!spec) return { ok: false, reason: unsupported(languageId) };
  let sentence = summary.replace(/\s+/g, ' ').trim();
  if (sentence === '') return { ok: false, reason: 'the summary is empty: nothing to write (hint: generate or type a summary first)' };
  if (/^\s*$/.test(indent) === false) return { ok: false, reason: `indent must be spaces or tabs, got ${JSON.stringify(indent)}` };
  sentence = sentence[0].toUpperCase() + sentence.slice(1);
  if (!/[.!?]$/.test(sentence)) sentence += '.';
  const width = Math.max(20, (opts.width ?? 100) - indent.length);
  const prefixed = (prefix: string, rows: string[]): string => rows.map((row) => `${indent}${prefix}${row}`.trimEnd() + '\n').join('');
  switch (spec.commentOut) {
    case 'jsdoc': {
      const safe = sentence.replace(/\*\//g, '*\\/');
      if (safe.length + 7 <= width) return { ok: true, text: `${indent}/** ${safe} */\n` };
      return { ok: true, text: `${indent}/**\n${prefixed(' * ', wrapWords(safe, width - 3))}${indent} */\n` };
    }
    case 'triple':
      return { ok: true, text: prefixed('/// ', wrapWords(sentence, width - 4)) };
    case 'csharp': {
      const xml = sentence.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      return { ok: true, text: `${indent}/// <summary>\n${prefixed('/// ', wrapWords(xml, width - 4))}${indent}/// </summary>\n` };
    }
    case 'line':
      return { ok: true, text: prefixed('// ', wrapWords(sentence, width - 3)) };
    case 'hash':
      return { ok: true, text: prefixed('# ', wrapWords(sentence, width - 2)) };
    case 'python': {
      const safe = sentence.replace(/\\/g, '\\\\').replace(/"""/g, '\\"\\"\\"');
      if (safe.length + 6 <= width) return { ok: true, text: `${indent}"""${safe}"""\n` };
      return { ok: true, text: `${indent}"""${prefixed('', wrapWords(safe, width - 3)).slice(indent.length)}${indent}"""\n` };
    }
  }
}

