// Code summaries, the data side: mines (code, summary) pairs from doc comments in source text, finds
// the definition around a line ("Summarize Function"), writes a summary back as a doc comment, and
// lays a pair out as tokens. Pure functions on strings: it reads no files (files.ts does), trains
// nothing and scores nothing (textMetrics.ts, summaryBaseline.ts).
//
// It is a careful scanner, not a parser: each language gets a lexer that blanks out comments and
// string contents (offsets kept), so brackets can be balanced and definitions matched line by line
// without being fooled by a "{" in a string or a "def" in a docstring. Where a language is not
// covered, or code is too unusual, it mines nothing rather than something wrong.

export interface SummaryPair {
  code: string; // the definition (decorators included, doc comment and docstring excluded), dedented, bounded
  summary: string; // first sentence of the doc comment, markup and tags removed, no final period
  name?: string; // the defined name when there is one
  line: number; // 0-based line of the definition's keyword line (`def`, `function`, `fn`, ...)
  language: string; // VS Code language id
  docStart: number; // offset of the doc comment (or docstring literal) in the text
  docEnd: number; // offset just past it
  defStart: number; // offset where the definition starts (its first decorator, if any)
}

export interface MineOptions {
  maxCodeLines?: number; // code is cut at a line boundary past this many lines (default 80)
  maxCodeChars?: number; // ... or past this many characters (default 4000)
  maxSummaryWords?: number; // longer first sentences are prose, not summaries: skipped (default 48)
}

export type DefinitionKind = 'function' | 'method' | 'class' | 'type';

const DEFAULT_MAX_CODE_LINES = 80;
const DEFAULT_MAX_CODE_CHARS = 4000;
const DEFAULT_MAX_SUMMARY_WORDS = 48;

// ---------------------------------------------------------------------------------------------
// Languages

type LexerFamily = 'c' | 'python' | 'hash';
export type DocStyle = 'jsdoc' | 'bang' | 'block' | 'triple' | 'inner' | 'line' | 'hash';
type DefinitionMatcher = (src: string) => { name?: string; kind: DefinitionKind } | null;

interface LanguageSpec {
  lexer: LexerFamily;
  docStyles: DocStyle[]; // comment styles that document the definition below them
  singleQuoteStrings: boolean; // false: 'x' is a char literal and a lone ' is a lifetime (Rust)
  templateStrings: boolean; // JavaScript `...${expr}...`
  rawBackticks: boolean; // Go `raw strings`
  regexLiterals: boolean; // JavaScript /regex/
  decorator: RegExp | null; // a line starting a decorator/attribute/annotation
  extent: 'braces' | 'indent' | 'end'; // how a definition's body ends
  matchDefinition: DefinitionMatcher;
  commentOut: 'jsdoc' | 'triple' | 'csharp' | 'line' | 'python' | 'hash'; // formatDocComment's style
}

const EXTENSION_LANGUAGES: Record<string, string> = {
  ts: 'typescript', mts: 'typescript', cts: 'typescript', tsx: 'typescriptreact',
  js: 'javascript', mjs: 'javascript', cjs: 'javascript', jsx: 'javascriptreact',
  py: 'python', pyi: 'python', rs: 'rust', cs: 'csharp', go: 'go', java: 'java',
  kt: 'kotlin', kts: 'kotlin', scala: 'scala', swift: 'swift', dart: 'dart', php: 'php',
  c: 'c', h: 'c', cc: 'cpp', cpp: 'cpp', cxx: 'cpp', hpp: 'cpp', hh: 'cpp', hxx: 'cpp',
  sh: 'shellscript', bash: 'shellscript', zsh: 'shellscript', rb: 'ruby',
};

/** The VS Code language id of a file from its name, or undefined when no summary miner covers it. */
export function languageOf(relPath: string): string | undefined {
  const base = relPath.replace(/\\/g, '/').split('/').pop() ?? '';
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return undefined;
  return EXTENSION_LANGUAGES[base.slice(dot + 1).toLowerCase()];
}

const IDENT = '[A-Za-z_$][\\w$]*';
const CONTROL_WORDS = new Set([
  'if', 'for', 'while', 'switch', 'catch', 'with', 'return', 'function', 'typeof', 'await', 'yield', 'new',
  'super', 'this', 'else', 'do', 'try', 'throw', 'delete', 'void', 'in', 'of', 'case', 'import', 'export',
  'require', 'foreach', 'using', 'lock', 'goto', 'sizeof', 'fixed', 'when', 'match', 'defined', 'elif',
  'unless', 'until', 'assert', 'static_assert', 'decltype', 'alignof', 'nameof', 'default',
]);

/** Words that start a statement, never a declaration: `return foo(x)` is a call. */
const C_STATEMENT_WORDS = new Set([
  'return', 'new', 'throw', 'await', 'case', 'else', 'if', 'for', 'while', 'switch', 'catch', 'yield', 'goto',
  'delete', 'sizeof', 'typeof', 'in', 'of', 'do', 'lock', 'fixed', 'using', 'defer', 'go', 'echo', 'print',
]);

/** Index of the bracket closing the one at `open` in blanked code, or -1 within `limit` chars. */
function matchingClose(code: string, open: number, limit = 4000): number {
  let depth = 0;
  const stop = Math.min(code.length, open + limit);
  for (let i = open; i < stop; i++) {
    const c = code[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) return i;
      if (depth < 0) return -1;
    }
  }
  return -1;
}

/** `src` at `at` starts a function value: `function`, `x =>`, `(a, b) =>`, `async (...): T =>`. */
function startsFunctionValue(src: string, at: number): boolean {
  const rest = src.slice(at).replace(/^\s*(?:async\s+)?/, '');
  const offset = src.length - rest.length;
  if (/^function\b/.test(rest)) return true;
  if (new RegExp(`^${IDENT}\\s*=>`).test(rest)) return true;
  let open = offset;
  if (rest.startsWith('<')) {
    const closeAngle = src.indexOf('>', offset);
    if (closeAngle < 0) return false;
    open = src.indexOf('(', closeAngle);
    if (open < 0 || src.slice(closeAngle + 1, open).trim() !== '') return false;
  } else if (!rest.startsWith('(')) return false;
  const close = matchingClose(src, open);
  return close >= 0 && /^\s*(?::[^;\n]*?)?=>/.test(src.slice(close + 1, close + 400));
}

const TS_MODIFIERS = '(?:(?:export|default|declare|public|private|protected|static|readonly|async|override|abstract|get|set|accessor)\\s+)*';

const TS_INTERFACE = new RegExp(`^(?:export\\s+)?(?:default\\s+)?(?:declare\\s+)?(?:interface|(?:const\\s+)?enum|type(?=\\s+${IDENT}\\s*(?:<[^=;]*>)?\\s*=))\\s+(${IDENT})`);
const TS_CONST = new RegExp(`^(?:export\\s+)?(?:declare\\s+)?(?:const|let|var)\\s+(${IDENT})\\s*(?::[^=;]+)?=`);
const JS_MEMBER_ASSIGNMENT = new RegExp(`^(?:${IDENT}\\.)+(${IDENT})\\s*=(?!=)`);
const TS_MEMBER = new RegExp(`^(${TS_MODIFIERS})\\*?\\s*(#?${IDENT})\\s*[?!]?\\s*`);

const matchTypeScript: DefinitionMatcher = (src) => {
  let m = /^(?:export\s+)?(?:default\s+)?(?:declare\s+)?(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)?\s*[<(]/.exec(src);
  if (m) return { name: m[1], kind: 'function' };
  m = /^(?:export\s+)?(?:default\s+)?(?:declare\s+)?(?:abstract\s+)?class\b\s*([A-Za-z_$][\w$]*)?/.exec(src);
  if (m) return { name: m[1], kind: 'class' };
  m = TS_INTERFACE.exec(src);
  if (m) return { name: m[1], kind: 'type' };
  m = TS_CONST.exec(src);
  if (m) return startsFunctionValue(src, m[0].length) ? { name: m[1], kind: 'function' } : null;
  m = JS_MEMBER_ASSIGNMENT.exec(src); // exports.parse = function (...) / Foo.prototype.bar = (...) =>
  if (m) return startsFunctionValue(src, m[0].length) ? { name: m[1], kind: 'function' } : null;
  // Class members: `name(...) {`, `name(...): T;` (overload, abstract), `name = (...) => ...`.
  m = TS_MEMBER.exec(src);
  if (!m || CONTROL_WORDS.has(m[2]) || m[2] === 'class' || m[2] === 'const' || m[2] === 'let' || m[2] === 'var') return null;
  const after = m[0].length;
  const modifiers = m[1].trim();
  if (src[after] === '(' || src[after] === '<') {
    const open = src[after] === '(' ? after : src.indexOf('(', after);
    const close = open < 0 ? -1 : matchingClose(src, open);
    if (close < 0) return null;
    const tail = src.slice(close + 1, close + 400);
    if (/^\s*(?::[^;{}=]*?)?\{/.test(tail) || /^\s*:[^;{}]*;/.test(tail) || (modifiers !== '' && /^\s*;/.test(tail))) {
      return { name: m[2], kind: 'method' };
    }
    return null;
  }
  const property = /^(?::[^=;]+)?=(?!=)/.exec(src.slice(after));
  if (property && startsFunctionValue(src, after + property[0].length)) return { name: m[2], kind: 'method' };
  return null;
};

const matchPython: DefinitionMatcher = (src) => {
  let m = /^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*[([]/.exec(src);
  if (m) return { name: m[1], kind: 'function' };
  m = /^class\s+([A-Za-z_]\w*)/.exec(src);
  return m ? { name: m[1], kind: 'class' } : null;
};

const RUST_VISIBILITY = '(?:pub(?:\\s*\\([^)]*\\))?\\s+)?';
const RUST_FN = new RegExp(`^${RUST_VISIBILITY}(?:(?:const|async|unsafe|default)\\s+)*(?:extern\\s+(?:"[^"]*"\\s+)?)?fn\\s+([A-Za-z_]\\w*)`);
const RUST_TYPE = new RegExp(`^${RUST_VISIBILITY}(?:unsafe\\s+)?(?:struct|enum|trait|union|type)\\s+([A-Za-z_]\\w*)`);

const matchRust: DefinitionMatcher = (src) => {
  let m = RUST_FN.exec(src);
  if (m) return { name: m[1], kind: 'function' };
  m = RUST_TYPE.exec(src);
  return m ? { name: m[1], kind: m[0].includes('trait') ? 'type' : 'class' } : null;
};

/** Java, C#, Kotlin, Scala, Swift, Dart, PHP, Go, C, C++: keyword definitions first, then the
 *  C-style `Type name(` shape (at least one word before the name, none of them a control word). */
const matchCStyle: DefinitionMatcher = (src) => {
  const line = src.split('\n', 1)[0];
  let m = /^(?:[\w@]+\s+)*?(?:func|fun|def|function|fn)\s+(?:\([^)]*\)\s*)?(?:<[^>]*>\s*)?(?:[\w.]+\.)?([A-Za-z_$][\w$]*)/.exec(line);
  if (m && !CONTROL_WORDS.has(m[1])) return { name: m[1], kind: 'function' };
  m = /^(?:[\w@]+\s+)*?(class|interface|struct|enum|record|trait|object|protocol|extension|type)\s+([A-Za-z_$][\w$]*)/.exec(line);
  // `type` declares only at the start of a line (Go `type Buffer struct`, Scala `type Id = Int`).
  const typeKeywordOk = m && (m[1] !== 'type' || line.startsWith('type '));
  if (m && typeKeywordOk && !/^(?:return|new|case|throw)\b/.test(line)) {
    return { name: m[2], kind: ['interface', 'trait', 'protocol', 'type'].includes(m[1]) ? 'type' : 'class' };
  }
  m = /^((?:[\w$.<>[\],?*&:~]+\s+)+)[*&]*((?:[A-Za-z_]\w*::)*~?[A-Za-z_$][\w$]*)\s*(?:<[^()]*>)?\s*\(/.exec(line);
  if (!m) return null;
  const words = m[1].trim().split(/\s+/);
  if (words.some((word) => C_STATEMENT_WORDS.has(word)) || CONTROL_WORDS.has(m[2]) || /[=]/.test(m[1])) return null;
  return { name: m[2].split('::').pop(), kind: 'function' };
};

const matchShell: DefinitionMatcher = (src) => {
  const m = /^(?:function\s+([A-Za-z_][\w.:-]*)\s*(?:\(\s*\))?|([A-Za-z_][\w.:-]*)\s*\(\s*\))\s*\{?/.exec(src);
  return m ? { name: m[1] ?? m[2], kind: 'function' } : null;
};

const matchRuby: DefinitionMatcher = (src) => {
  let m = /^def\s+(?:self\.)?([A-Za-z_][\w]*[?!=]?)/.exec(src);
  if (m) return { name: m[1], kind: 'function' };
  m = /^(?:class|module)\s+([A-Z][\w:]*)/.exec(src);
  return m ? { name: m[1], kind: 'class' } : null;
};

const AT_DECORATOR = /^@[A-Za-z_$][\w$.]*/;

function cLike(docStyles: DocStyle[], extra: Partial<LanguageSpec> = {}): LanguageSpec {
  return {
    lexer: 'c', docStyles, singleQuoteStrings: false, templateStrings: false, rawBackticks: false, regexLiterals: false,
    decorator: AT_DECORATOR, extent: 'braces', matchDefinition: matchCStyle, commentOut: 'jsdoc', ...extra,
  };
}

const TYPESCRIPT = cLike(['jsdoc'], { singleQuoteStrings: true, templateStrings: true, regexLiterals: true, matchDefinition: matchTypeScript });
const LANGUAGES: Record<string, LanguageSpec> = {
  typescript: TYPESCRIPT, typescriptreact: TYPESCRIPT, javascript: TYPESCRIPT, javascriptreact: TYPESCRIPT,
  python: {
    lexer: 'python', docStyles: ['hash'], singleQuoteStrings: true, templateStrings: false, rawBackticks: false, regexLiterals: false,
    decorator: AT_DECORATOR, extent: 'indent', matchDefinition: matchPython, commentOut: 'python',
  },
  rust: cLike(['triple', 'jsdoc'], { decorator: /^#\[/, matchDefinition: matchRust, commentOut: 'triple' }),
  csharp: cLike(['triple', 'jsdoc'], { decorator: /^\[[A-Za-z_]/, commentOut: 'csharp' }),
  go: cLike(['line', 'block'], { rawBackticks: true, decorator: null, commentOut: 'line' }),
  java: cLike(['jsdoc']),
  kotlin: cLike(['jsdoc']),
  scala: cLike(['jsdoc']),
  swift: cLike(['jsdoc', 'triple'], { commentOut: 'triple' }),
  dart: cLike(['jsdoc', 'triple'], { commentOut: 'triple' }),
  php: cLike(['jsdoc'], { singleQuoteStrings: true, decorator: /^#\[/ }),
  c: cLike(['jsdoc', 'bang', 'triple', 'line', 'block'], { decorator: null }),
  cpp: cLike(['jsdoc', 'bang', 'triple', 'line', 'block'], { decorator: /^\[\[/ }),
  shellscript: {
    lexer: 'hash', docStyles: ['hash'], singleQuoteStrings: true, templateStrings: false, rawBackticks: false, regexLiterals: false,
    decorator: null, extent: 'braces', matchDefinition: matchShell, commentOut: 'hash',
  },
  ruby: {
    lexer: 'hash', docStyles: ['hash'], singleQuoteStrings: true, templateStrings: false, rawBackticks: false, regexLiterals: false,
    decorator: null, extent: 'end', matchDefinition: matchRuby, commentOut: 'hash',
  },
};

/** Language ids the miner, findFunctionAt and formatDocComment understand. */
export const SUMMARY_LANGUAGES: readonly string[] = Object.keys(LANGUAGES);

function unsupported(languageId: string): string {
  return `unsupported language "${languageId}" (supported: ${SUMMARY_LANGUAGES.join(', ')})`;
}

// ---------------------------------------------------------------------------------------------
// Lexing: blank comments and string contents, keep every offset

interface CommentSpan {
  start: number;
  end: number; // exclusive
  block: boolean; // /* ... */ rather than a line comment
}

interface Blanked {
  code: string; // the text with comments and string contents replaced by spaces (newlines kept)
  comments: CommentSpan[];
}

const REGEX_CAN_FOLLOW = new Set(['', '(', ',', '=', ':', '[', '!', '&', '|', '?', '{', '}', ';', '+', '-', '*', '%', '<', '>', '~', '^']);

function blankSource(text: string, spec: LanguageSpec): Blanked {
  const out = text.split('');
  const comments: CommentSpan[] = [];
  const n = text.length;
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  // Scans a quoted literal from its opening quote; returns the offset past its end.
  const skipQuoted = (i: number, quote: string, multiline: boolean, escapes: boolean): number => {
    let k = i + quote.length;
    while (k < n) {
      const c = text[k];
      if (escapes && c === '\\') { k += 2; continue; }
      if (text.startsWith(quote, k)) return k + quote.length;
      if (c === '\n' && !multiline) return k;
      k++;
    }
    return n;
  };
  const templateBraces: number[] = []; // open-brace counts of the `${ }` we are inside
  let lastSignificant = '';
  let i = 0;
  const scanTemplate = (from: number): number => {
    // From inside a template literal: to its closing backtick, or into a `${` (returns after it).
    let k = from;
    while (k < n) {
      if (text[k] === '\\') { k += 2; continue; }
      if (text[k] === '`') { blank(from, k); return k + 1; }
      if (text[k] === '$' && text[k + 1] === '{') { blank(from, k); templateBraces.push(0); return k + 2; }
      k++;
    }
    blank(from, n);
    return n;
  };
  while (i < n) {
    const c = text[i];
    const next = text[i + 1];
    if (spec.lexer === 'c' && c === '/' && next === '/') {
      const end = text.indexOf('\n', i) < 0 ? n : text.indexOf('\n', i);
      comments.push({ start: i, end, block: false });
      blank(i, end);
      i = end;
      continue;
    }
    if (spec.lexer === 'c' && c === '/' && next === '*') {
      const close = text.indexOf('*/', i + 2);
      const end = close < 0 ? n : close + 2;
      comments.push({ start: i, end, block: true });
      blank(i, end);
      i = end;
      continue;
    }
    if (spec.lexer !== 'c' && c === '#' && (spec.lexer === 'python' || i === 0 || /[\s;]/.test(text[i - 1]))) {
      const end = text.indexOf('\n', i) < 0 ? n : text.indexOf('\n', i);
      comments.push({ start: i, end, block: false });
      blank(i, end);
      i = end;
      continue;
    }
    if (spec.lexer === 'python' && (c === '"' || c === "'")) {
      const triple = text.startsWith(c.repeat(3), i);
      const quote = triple ? c.repeat(3) : c;
      const end = skipQuoted(i, quote, triple, true);
      blank(i + quote.length, end); // the closing quotes too: at column 0 they must not end a block
      i = end;
      lastSignificant = c;
      continue;
    }
    if (c === '"' || (c === "'" && spec.singleQuoteStrings)) {
      const end = skipQuoted(i, c, spec.lexer === 'hash', spec.lexer !== 'hash' || c === '"');
      blank(i + 1, end);
      i = end;
      lastSignificant = c;
      continue;
    }
    if (c === "'") {
      // A char literal ('a', '\n', '\u{1F600}'); otherwise a Rust lifetime or label, left as code.
      const literal = /^'(?:\\[^']{1,10}|[^'\\\n])'/.exec(text.slice(i, i + 14));
      if (literal) {
        blank(i + 1, i + literal[0].length - 1);
        i += literal[0].length;
        lastSignificant = c;
        continue;
      }
    }
    if (c === '`' && spec.templateStrings) { i = scanTemplate(i + 1); lastSignificant = '`'; continue; }
    if (c === '`' && spec.rawBackticks) {
      const close = text.indexOf('`', i + 1);
      const end = close < 0 ? n : close + 1;
      blank(i + 1, Math.max(i + 1, end - 1));
      i = end;
      continue;
    }
    if (c === '/' && spec.regexLiterals && (REGEX_CAN_FOLLOW.has(lastSignificant) || /\b(?:return|typeof|case|in|of)\s*$/.test(text.slice(Math.max(0, i - 8), i)))) {
      const literal = /^\/(?:\\.|\[(?:\\.|[^\]\\\n])*\]|[^/\\\n[])+\/[a-z]*/.exec(text.slice(i, i + 1000));
      if (literal) {
        blank(i + 1, i + literal[0].length - 1);
        i += literal[0].length;
        lastSignificant = '/';
        continue;
      }
    }
    if (templateBraces.length > 0 && c === '{') templateBraces[templateBraces.length - 1]++;
    if (templateBraces.length > 0 && c === '}') {
      if (templateBraces[templateBraces.length - 1] === 0) {
        templateBraces.pop();
        i = scanTemplate(i + 1);
        lastSignificant = '`';
        continue;
      }
      templateBraces[templateBraces.length - 1]--;
    }
    if (!/\s/.test(c)) lastSignificant = /[\w$]/.test(c) ? 'w' : c;
    i++;
  }
  return { code: out.join(''), comments };
}

class LineIndex {
  readonly starts: number[] = [0];
  constructor(private readonly text: string) {
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') this.starts.push(i + 1);
  }
  get count(): number {
    return this.starts.length;
  }
  lineOf(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
  start(line: number): number {
    return this.starts[line];
  }
  /** Offset of the line's newline (or the end of the text). */
  end(line: number): number {
    return line + 1 < this.starts.length ? this.starts[line + 1] - 1 : this.text.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Definitions and the doc comments above (or inside) them

interface DocComment {
  start: number;
  end: number;
  style: DocStyle | 'docstring';
  body: string; // the comment's text without its markers, one entry per line joined by '\n'
}

interface Definition {
  name?: string;
  kind: DefinitionKind;
  headStart: number; // start of the line of the first decorator, or of the keyword line
  keywordLine: number;
  end: number; // offset past the last character of the definition
  hasBody: boolean;
  indent: string; // leading whitespace of the keyword line
  bodyLine?: number; // Python: first line of the body, where a docstring goes
  bodyIndent?: string;
  doc?: DocComment;
  mergedInto?: Definition; // an overload signature folded into its neighbour
}

function leadingWhitespace(s: string): string {
  return /^[ \t]*/.exec(s)![0];
}

/** Columns of a line's indentation, a tab reaching the next multiple of 8 as Python counts it. */
function indentWidth(line: string): number {
  let width = 0;
  for (const c of leadingWhitespace(line)) width = c === '\t' ? (Math.floor(width / 8) + 1) * 8 : width + 1;
  return width;
}

/** End of a bracketed definition: its `{ ... }` block, or its statement when it has none. */
function braceExtent(code: string, lines: LineIndex, from: number): { end: number; hasBody: boolean } {
  let depth = 0;
  let sawBlock = false;
  for (let i = from; i < code.length; i++) {
    const c = code[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth < 0) return { end: trimEnd(code, i), hasBody: sawBlock }; // left the enclosing scope
      if (depth === 0 && c === '}') {
        sawBlock = true;
        // A `{ ... }` in a return type or generic constraint is followed by the body on its line;
        // a union or intersection type goes on with `|` or `&` on the next.
        const lineEnd = code.indexOf('\n', i) < 0 ? code.length : code.indexOf('\n', i);
        const rest = code.slice(i + 1, lineEnd).trim();
        if (rest.includes('{') || rest.startsWith('=>')) continue;
        if (rest.startsWith(';')) return { end: i + 1 + code.slice(i + 1).indexOf(';') + 1, hasBody: true };
        const nextLine = code.slice(lineEnd + 1, lineEnd + 200).trimStart();
        if (rest === '' && /^(?:[|&.?:]|=>)/.test(nextLine) && !nextLine.startsWith('...')) continue;
        return { end: i + 1, hasBody: true };
      }
    } else if (c === ';' && depth === 0) {
      return { end: i + 1, hasBody: sawBlock };
    } else if (c === '\n' && depth === 0) {
      const line = lines.lineOf(i);
      const current = code.slice(lines.start(line), i).trim();
      const nextLine = line + 1 < lines.count ? code.slice(lines.start(line + 1), lines.end(line + 1)).trim() : '';
      const continues = current === '' || /(?:[,=(+\-*/&|?:<>]|=>)$/.test(current) ||
        /^(?:[{.?:)\]|&]|=>|->|throws\b|where\b|extends\b|implements\b|noexcept\b)/.test(nextLine);
      if (!continues) return { end: trimEnd(code, i), hasBody: sawBlock };
    }
  }
  return { end: trimEnd(code, code.length), hasBody: sawBlock };
}

function trimEnd(code: string, end: number): number {
  while (end > 0 && /\s/.test(code[end - 1])) end--;
  return end;
}

/** End of a Python definition: its header to the `:`, then every line indented deeper. */
function indentExtent(code: string, lines: LineIndex, from: number, indent: number): { end: number; bodyLine?: number } {
  let depth = 0;
  let colon = -1;
  for (let i = from; i < code.length; i++) {
    const c = code[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === ':' && depth === 0 && code[i + 1] !== '=') { colon = i; break; }
  }
  if (colon < 0) return { end: lines.end(lines.lineOf(from)) };
  const headerLine = lines.lineOf(colon);
  if (code.slice(colon + 1, lines.end(headerLine)).trim() !== '') return { end: trimEnd(code, lines.end(headerLine)) }; // def f(): return 1
  let end = lines.end(headerLine);
  let bodyLine: number | undefined;
  depth = 0;
  for (let line = headerLine + 1; line < lines.count; line++) {
    const content = code.slice(lines.start(line), lines.end(line));
    if (content.trim() === '') continue; // blank, a comment, or inside a multi-line string
    if (depth === 0 && indentWidth(content) <= indent) break;
    bodyLine ??= line;
    for (const c of content) {
      if (c === '(' || c === '[' || c === '{') depth++;
      else if (c === ')' || c === ']' || c === '}') depth = Math.max(0, depth - 1);
    }
    end = lines.end(line);
  }
  return { end: trimEnd(code, end), bodyLine };
}

/** End of a Ruby definition: the `end` at its own indentation. */
function endKeywordExtent(code: string, lines: LineIndex, keywordLine: number, indent: number): number {
  const first = code.slice(lines.start(keywordLine), lines.end(keywordLine));
  if (/\bend\s*$/.test(first)) return trimEnd(code, lines.end(keywordLine));
  for (let line = keywordLine + 1; line < lines.count; line++) {
    const content = code.slice(lines.start(line), lines.end(line));
    if (content.trim() === '') continue;
    const depth = indentWidth(content);
    if (depth === indent && /^\s*end\b/.test(content)) return trimEnd(code, lines.end(line));
    if (depth < indent) return trimEnd(code, lines.start(line));
  }
  return trimEnd(code, code.length);
}

/** Offset past the decorators/attributes starting at `at`, or `at` when there are none. */
function skipDecorators(code: string, at: number, spec: LanguageSpec): number {
  if (!spec.decorator) return at;
  let pos = at;
  for (;;) {
    const m = spec.decorator.exec(code.slice(pos, pos + 200));
    if (!m) return pos;
    let end = pos + m[0].length;
    if (code[pos] === '[' || (code[pos] === '#' && code[pos + 1] === '[')) {
      const open = code.indexOf('[', pos);
      const close = matchingClose(code, open);
      if (close < 0) return pos;
      end = close + 1;
    } else if (code[end] === '(') {
      const close = matchingClose(code, end);
      if (close < 0) return pos;
      end = close + 1;
    }
    const rest = /^[ \t]*/.exec(code.slice(end))![0];
    pos = end + rest.length;
    if (code[pos] === '\n') return pos;
  }
}

function commentStyle(raw: string, block: boolean): DocStyle {
  if (block) {
    if (raw.startsWith('/**') && !raw.startsWith('/**/')) return 'jsdoc';
    return raw.startsWith('/*!') ? 'bang' : 'block';
  }
  if (raw.startsWith('#')) return 'hash';
  if (raw.startsWith('///') && !raw.startsWith('////')) return 'triple';
  return raw.startsWith('//!') ? 'inner' : 'line';
}

/** The comment text without its markers: `/** * */`, `///`, `//`, `#`. */
function stripMarkers(raw: string, style: DocStyle): string {
  if (style === 'jsdoc' || style === 'bang' || style === 'block') {
    const inner = raw.replace(/^\/\*[*!]?/, '').replace(/\*+\/$/, '');
    return inner.split('\n').map((line) => line.replace(/^\s*\*(?!\*) ?/, '').replace(/^\s+/, '')).join('\n');
  }
  const marker = style === 'hash' ? /^\s*#+ ?/ : /^\s*\/\/[/!]? ?/;
  return raw.split('\n').map((line) => line.replace(marker, '')).join('\n');
}

/** Groups of comments: a block comment alone, or consecutive own-line line comments of one style. */
function commentGroups(text: string, comments: CommentSpan[], lines: LineIndex): { start: number; end: number; style: DocStyle; raw: string }[] {
  const groups: { start: number; end: number; style: DocStyle; raw: string; lastLine: number }[] = [];
  for (const comment of comments) {
    const line = lines.lineOf(comment.start);
    if (text.slice(lines.start(line), comment.start).trim() !== '') continue; // trails code: not a doc
    const raw = text.slice(comment.start, comment.end);
    const style = commentStyle(raw, comment.block);
    const previous = groups[groups.length - 1];
    if (!comment.block && previous && previous.style === style && previous.lastLine === line - 1) {
      previous.end = comment.end;
      previous.raw = text.slice(previous.start, comment.end);
      previous.lastLine = line;
      continue;
    }
    groups.push({ start: comment.start, end: comment.end, style, raw, lastLine: lines.lineOf(comment.end) });
  }
  return groups;
}

/** The Python docstring opening the body at `bodyLine`, if the body's first statement is a string. */
function pythonDocstring(text: string, lines: LineIndex, bodyLine: number): DocComment | undefined {
  const lineText = text.slice(lines.start(bodyLine), lines.end(bodyLine));
  const m = /^([ \t]*)([rRuU]?)("""|'''|"|')/.exec(lineText);
  if (!m) return undefined;
  const start = lines.start(bodyLine) + m[1].length;
  const quote = m[3];
  const open = start + m[2].length + quote.length;
  let k = open;
  while (k < text.length && !text.startsWith(quote, k)) {
    if (text[k] === '\\') k++;
    else if (text[k] === '\n' && quote.length === 1) return undefined;
    k++;
  }
  if (k >= text.length) return undefined;
  const end = k + quote.length;
  const after = text.slice(end, lines.end(lines.lineOf(end)));
  if (!/^\s*(?:#.*)?$/.test(after)) return undefined; // "doc".format(...) is an expression, not a docstring
  return { start, end, style: 'docstring', body: cleanDocstring(text.slice(open, k)) };
}

/** inspect.cleandoc: first line stripped, the rest dedented by their common indentation. */
function cleanDocstring(raw: string): string {
  const rows = raw.replace(/\t/g, '    ').split('\n');
  const rest = rows.slice(1);
  const indents = rest.filter((row) => row.trim() !== '').map((row) => leadingWhitespace(row).length);
  const margin = indents.length > 0 ? Math.min(...indents) : 0;
  return [rows[0].trim(), ...rest.map((row) => row.slice(margin).trimEnd())].join('\n').trim();
}

/** Every definition the language's matcher recognises, with its extent and doc comment. */
function findDefinitions(text: string, spec: LanguageSpec): Definition[] {
  const { code, comments } = blankSource(text, spec);
  const lines = new LineIndex(text);
  const groups = commentGroups(text, comments, lines);
  const groupByEnd = new Map<number, (typeof groups)[number]>();
  for (const group of groups) groupByEnd.set(trimEnd(text, group.end), group);
  const definitions: Definition[] = [];
  let pendingHead: number | null = null; // start of the decorators seen above, waiting for their definition
  const open: Definition[] = [];

  // A doc comment ends just before `head`: only whitespace between, and no blank line.
  const docAbove = (head: number): DocComment | undefined => {
    let k = head;
    while (k > 0 && /[ \t]/.test(text[k - 1])) k--;
    if (k > 0 && text[k - 1] === '\n') k--;
    if (k > 0 && text[k - 1] === '\r') k--;
    while (k > 0 && /[ \t]/.test(text[k - 1])) k--;
    const group = groupByEnd.get(k);
    if (!group || !spec.docStyles.includes(group.style)) return undefined;
    return { start: group.start, end: group.end, style: group.style, body: stripMarkers(group.raw, group.style) };
  };

  for (let line = 0; line < lines.count; line++) {
    const lineStart = lines.start(line);
    const content = code.slice(lineStart, lines.end(line));
    const trimmed = content.trimStart();
    if (trimmed === '') continue;
    let at = lineStart + content.length - trimmed.length;
    const afterDecorators = skipDecorators(code, at, spec);
    if (afterDecorators > at) {
      pendingHead ??= lineStart;
      const decoratorEndLine = lines.lineOf(afterDecorators);
      if (code.slice(afterDecorators, lines.end(decoratorEndLine)).trim() === '') { line = decoratorEndLine; continue; }
      at = afterDecorators;
    }
    const match = spec.matchDefinition(code.slice(at, at + 2000));
    if (!match) { pendingHead = null; continue; }
    const headStart = pendingHead ?? lineStart;
    pendingHead = null;
    const keywordLine = lines.lineOf(at);
    const indent = leadingWhitespace(text.slice(lines.start(keywordLine), lines.end(keywordLine)));
    const definition: Definition = { name: match.name, kind: match.kind, headStart, keywordLine, end: 0, hasBody: true, indent };
    if (spec.extent === 'indent') {
      const extent = indentExtent(code, lines, at, indentWidth(indent));
      definition.end = extent.end;
      definition.bodyLine = extent.bodyLine;
      definition.hasBody = extent.bodyLine !== undefined;
      if (extent.bodyLine !== undefined) {
        definition.bodyIndent = leadingWhitespace(text.slice(lines.start(extent.bodyLine), lines.end(extent.bodyLine)));
        definition.doc = pythonDocstring(text, lines, extent.bodyLine);
      }
    } else if (spec.extent === 'end') {
      definition.end = endKeywordExtent(code, lines, keywordLine, indentWidth(indent));
    } else {
      const extent = braceExtent(code, lines, at);
      definition.end = extent.end;
      definition.hasBody = extent.hasBody;
    }
    definition.doc ??= docAbove(headStart) ?? (headStart !== lineStart ? docAbove(lineStart) : undefined);
    // A function directly inside a class is a method. `open` holds the definitions still enclosing this line.
    while (open.length > 0 && open[open.length - 1].end < definition.end) open.pop();
    const outer = open[open.length - 1];
    if (outer && outer.kind === 'class' && definition.kind === 'function') definition.kind = 'method';
    open.push(definition);
    definitions.push(definition);
  }
  foldOverloads(text, definitions);
  return definitions.filter((definition) => !definition.mergedInto);
}

/** TypeScript-style overloads: signatures without a body, then the implementation, one definition. */
function foldOverloads(text: string, definitions: Definition[]): void {
  for (let k = 0; k + 1 < definitions.length; k++) {
    const signature = definitions[k];
    if (signature.mergedInto || signature.hasBody || !signature.name) continue;
    let next = k + 1;
    while (next < definitions.length) {
      const candidate = definitions[next];
      const gap = text.slice(signature.end, candidate.headStart);
      if (candidate.name !== signature.name || !/^(?:\s|\/\/[^\n]*|\/\*[\s\S]*?\*\/)*$/.test(gap)) break;
      candidate.mergedInto = signature;
      signature.end = candidate.end;
      signature.hasBody = candidate.hasBody;
      next++;
      if (candidate.hasBody) break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// From a comment to a one-sentence summary

// A licence or file header, not documentation. A bare "license" is allowed: "Prints the license text".
const NOT_DOCS = /\b(?:copyright|spdx-license-identifier|licen[cs]ed (?:under|to)|all rights reserved|permission is hereby granted)\b|\(c\)\s*\d{4}|@(?:file|fileoverview|overview|module|packageDocumentation|license|preserve|copyright)\b/i;
const DIRECTIVE = /^\s*(?:eslint|tslint|jshint|jscs|global\s|prettier-ignore|istanbul\s|c8\s|@ts-|pylint:|noqa|type:\s*ignore|fmt:|mypy:|#?region\b|#?endregion\b|shellcheck\s|rubocop:|frozen_string_literal|nolint|go:|\+build|-\*-|!\/|swiftlint:|NOLINT|clang-format|pragma\b)/i;
const SECTION_HEADER = /^(?:args|arguments|parameters|params|returns?|yields?|raises|throws|exceptions?|examples?|notes?|attributes|see also|references|todo|warnings?|usage|properties|keyword arguments|other parameters)\s*:?\s*$/i;
const ABBREVIATIONS = new Set(['e.g', 'i.e', 'etc', 'vs', 'cf', 'approx', 'no', 'fig', 'mr', 'dr', 'st', 'incl', 'resp', 'esp', 'ca', 'al']);

/** True when a comment line reads as code rather than prose: commented-out code is not a summary. */
function looksLikeCode(line: string): boolean {
  const s = line.trim();
  if (s === '') return false;
  return /[;{}]$/.test(s) || /^[})\]]/.test(s) ||
    /^(?:if|for|while|return|const|let|var|def|class|import|from|function|print|elif|else|try|except|switch|case|public|private|protected|static|#include|#define|using|package|func|fn|pub|val|echo|local|export)\b.*[(=:{;[]/.test(s) ||
    /^[\w$.]+(?:\[[^\]]*\])?\s*(?:[+\-*/%|&]?=|:=)\s*\S/.test(s) ||
    /^[\w$.]+\([^()]*\)\s*;?$/.test(s) ||
    /^(?:<\/?[a-z][\w-]*[^>]*>\s*)+$/i.test(s) && !/<\/?(?:p|br|summary|remarks|para)\b/i.test(s);
}

/** Inline markup to plain text: JSDoc/Javadoc tags, C# XML doc, Doxygen, Sphinx, Markdown, HTML. */
function stripMarkup(s: string): string {
  return s
    .replace(/\{@(?:link|linkcode|linkplain)\s+([^}|\s]+)(?:\s*\|\s*|\s+)([^}]+)\}/g, '$2') // {@link X | text} → text
    .replace(/\{@(?:link|linkcode|linkplain|code|literal|value)\s+([^}]*)\}/g, '$1') // {@link X} → X
    .replace(/\{@inheritDoc\}/gi, '')
    .replace(/<see\s+(?:cref|href|langword)="(?:[A-Z]:)?([^"]+)"\s*\/>/g, '$1') // C# <see cref="T:X"/> → X
    .replace(/<(?:paramref|typeparamref)\s+name="([^"]+)"\s*\/>/g, '$1')
    .replace(/<see\s+(?:cref|href)="[^"]*"\s*>([^<]*)<\/see>/g, '$1')
    .replace(/[\\@](?:c|p|a|e|em|b|ref)\s+(\S+)/g, '$1') // Doxygen inline commands
    .replace(/:(?:[\w-]+:)?[\w-]+:`~?([^`]+)`/g, '$1') // Sphinx :class:`x` → x
    .replace(/!?\[([^\]]+)\]\([^)]*\)/g, '$1') // Markdown [text](url) → text
    .replace(/\[([^\]]+)\]\[[^\]]*\]/g, '$1') // [text][ref] → text
    .replace(/\[(`[^`\]]+`|[\w:.]+(?:\(\))?)\](?!\()/g, '$1') // Rust intra-doc [`X`] → `X`
    .replace(/`+([^`]*)`+/g, '$1')
    .replace(/\*\*([^*]+)\*\*/g, '$1')
    .replace(/(^|[^\w*])\*([^*\s][^*]*?)\*(?![\w*])/g, '$1$2') // *emphasis*
    .replace(/<\/?(?:p|br|b|i|u|em|strong|code|pre|tt|ul|ol|li|a|span|div|sup|sub|blockquote|h[1-6]|summary|remarks|para|c|see|seealso|returns?|value|example|small|big|var|kbd|samp|dfn|cite|q|s|strike|mark)\b[^>]*\/?>/gi, '')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;|&apos;/g, "'").replace(/&nbsp;/g, ' ').replace(/&amp;/g, '&');
}

/** The first sentence: up to a . ! or ? followed by a space or the end, abbreviations aside. */
function firstSentence(s: string): string {
  const boundary = /[.!?](?=\s|$)/g;
  for (let m = boundary.exec(s); m; m = boundary.exec(s)) {
    const word = /([\w.]+)$/.exec(s.slice(0, m.index))?.[1].toLowerCase() ?? '';
    if (m[0] === '.' && (ABBREVIATIONS.has(word) || /^[a-z]$/i.test(word) && /\.\w\.?$/.test(s.slice(0, m.index + 1)))) continue;
    return s.slice(0, m.index + 1);
  }
  return s;
}

/**
 * The summary a doc comment gives: its first sentence, with tags, markup and spare whitespace
 * removed and no final period. Empty when the comment is not documentation (a licence, a lint
 * directive, commented-out code, only @tags such as @deprecated).
 */
export function summaryFromComment(body: string, style: DocStyle | 'docstring' = 'jsdoc', maxWords = DEFAULT_MAX_SUMMARY_WORDS): string {
  if (NOT_DOCS.test(body) || DIRECTIVE.test(body)) return '';
  let text = body.replace(/\r/g, '');
  const xmlSummary = /<summary>([\s\S]*?)<\/summary>/i.exec(text);
  if (xmlSummary) text = xmlSummary[1];
  const paragraph: string[] = [];
  let tagDescription = '';
  for (const raw of text.split('\n')) {
    const row = raw.trim();
    const brief = /^[@\\](?:brief|summary|description|desc|short)\b\s*(.*)$/i.exec(row);
    if (brief) {
      if (paragraph.length > 0) break;
      tagDescription = brief[1];
      continue;
    }
    if (/^[@\\]\w+/.test(row) || /^:(?:param|type|returns?|rtype|raises?|var|ivar|cvar)\b/.test(row) || row.startsWith('>>>')) break;
    if (SECTION_HEADER.test(row) || /^#{1,6}\s/.test(row) || /^[-=~^]{3,}$/.test(row)) break;
    if (row === '') {
      if (paragraph.length > 0 || tagDescription) break;
      continue;
    }
    if (tagDescription) tagDescription += ' ' + row;
    else paragraph.push(row);
  }
  if (paragraph.length === 0 && tagDescription) paragraph.push(tagDescription);
  if (paragraph.length === 0) return '';
  if ((style === 'line' || style === 'hash' || style === 'block') && paragraph.filter(looksLikeCode).length * 2 >= paragraph.length) return '';
  let summary = firstSentence(stripMarkup(paragraph.join(' ')).replace(/\s+/g, ' ').trim());
  summary = summary.replace(/\s*\.$/, '').trim();
  if (!/\p{L}/u.test(summary) || /^(?:todo|fixme|xxx|hack)\b/i.test(summary)) return '';
  if (summary.split(' ').length > maxWords) return '';
  return summary;
}

// ---------------------------------------------------------------------------------------------
// Mining

/** Removes the first line's indentation from every line (string contents at column 0 stay). */
function dedent(code: string): string {
  const rows = code.split('\n');
  const margin = leadingWhitespace(rows[0]);
  if (margin === '') return code;
  // The first line's exact whitespace where a line starts with it; else as many columns of it.
  return rows.map((row) => {
    if (row.startsWith(margin)) return row.slice(margin.length);
    let cut = 0;
    while (cut < row.length && /[ \t]/.test(row[cut]) && indentWidth(row.slice(0, cut + 1)) <= indentWidth(margin)) cut++;
    return row.slice(cut);
  }).join('\n');
}

function bound(code: string, maxLines: number, maxChars: number): string {
  let rows = code.split('\n');
  if (rows.length > maxLines) rows = rows.slice(0, maxLines);
  let bounded = rows.join('\n');
  if (bounded.length > maxChars) {
    const cut = bounded.lastIndexOf('\n', maxChars);
    bounded = bounded.slice(0, cut > 0 ? cut : maxChars);
  }
  return bounded.replace(/\s+$/, '');
}

/** The definition's code without its docstring (Python), dedented. */
function definitionCode(text: string, definition: Definition): string {
  const doc = definition.doc;
  let code: string;
  if (doc && doc.style === 'docstring') {
    const lineStart = text.lastIndexOf('\n', doc.start - 1) + 1;
    const lineEnd = text.indexOf('\n', doc.end);
    // The docstring's line goes, and the blank lines that set it apart from the code below.
    const after = lineEnd < 0 || lineEnd >= definition.end ? '' : text.slice(lineEnd + 1, definition.end).replace(/^(?:[ \t]*\r?\n)+/, '');
    code = text.slice(definition.headStart, lineStart) + after;
  } else {
    code = text.slice(definition.headStart, definition.end);
  }
  return dedent(code.replace(/\r/g, '')).replace(/\s+$/, '');
}

/**
 * (code, summary) pairs from the documented definitions of one source text. Definitions whose doc
 * comment gives no summary (licences, directives, commented-out code, tag-only comments) and
 * comments separated from the code by a blank line give no pair. Unknown languages give [].
 */
export function minePairs(text: string, languageId: string, relPath?: string, opts: MineOptions = {}): SummaryPair[] {
  const spec = LANGUAGES[languageId] ?? (relPath ? LANGUAGES[languageOf(relPath) ?? ''] : undefined);
  if (!spec || text.trim() === '') return [];
  const language = LANGUAGES[languageId] ? languageId : languageOf(relPath ?? '')!;
  const maxLines = opts.maxCodeLines ?? DEFAULT_MAX_CODE_LINES;
  const maxChars = opts.maxCodeChars ?? DEFAULT_MAX_CODE_CHARS;
  const pairs: SummaryPair[] = [];
  for (const definition of findDefinitions(text, spec)) {
    const doc = definition.doc;
    if (!doc) continue;
    const summary = summaryFromComment(doc.body, doc.style, opts.maxSummaryWords ?? DEFAULT_MAX_SUMMARY_WORDS);
    if (!summary) continue;
    const code = bound(definitionCode(text, definition), maxLines, maxChars);
    if (code === '') continue;
    pairs.push({
      code, summary, name: definition.name, line: definition.keywordLine, language,
      docStart: doc.start, docEnd: doc.end, defStart: definition.headStart,
    });
  }
  return pairs;
}

/** The code with all whitespace removed: copies that differ only in layout share this key. */
function codeKey(code: string): string {
  return code.replace(/\s+/g, '');
}

/**
 * The held-out pairs whose code does not also occur among the training pairs (whitespace aside), and
 * each only once. Workspaces hold copies (src/ and dist/, vendored files): without this, retrieval
 * would score its own training data.
 */
export function withoutDuplicates<T extends { code: string }>(heldOut: readonly T[], train: readonly { code: string }[]): T[] {
  const seen = new Set(train.map((pair) => codeKey(pair.code)));
  const kept: T[] = [];
  for (const pair of heldOut) {
    const key = codeKey(pair.code);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(pair);
  }
  return kept;
}

// ---------------------------------------------------------------------------------------------
// The definition at the cursor, and writing a summary back

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
  const spec = LANGUAGES[languageId];
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
  const spec = LANGUAGES[languageId];
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

// ---------------------------------------------------------------------------------------------
// Token layout for training and generation

/** What the layout needs of the tokenizer (CodeTokenizer has it). */
export interface SummaryTokenizer {
  encode(text: string): number[];
  special: { code: number; summary: number; endOfText: number };
}

/**
 * A training sequence `<|code|> code <|summary|> summary <|endoftext|>` of at most maxTokens ids.
 * The markers are the reserved special ids (the text "<|code|>" would encode as plain text). When
 * it does not fit, the summary keeps up to half the budget and the code loses its tail.
 */
export function summaryTrainingTokens(pair: { code: string; summary: string }, tokenizer: SummaryTokenizer, maxTokens: number): number[] {
  if (!Number.isInteger(maxTokens) || maxTokens < 5) throw new Error(`summaryTrainingTokens: maxTokens must be an integer >= 5, got ${maxTokens}`);
  const { code, summary, endOfText } = tokenizer.special;
  const summaryIds = tokenizer.encode(pair.summary).slice(0, Math.floor((maxTokens - 3) / 2));
  const codeIds = tokenizer.encode(pair.code).slice(0, maxTokens - 3 - summaryIds.length);
  return [code, ...codeIds, summary, ...summaryIds, endOfText];
}

/** The prompt whose continuation is a summary: `<|code|> code <|summary|>`, code cut to fit maxTokens. */
export function summaryPromptTokens(codeText: string, tokenizer: SummaryTokenizer, maxTokens: number): number[] {
  if (!Number.isInteger(maxTokens) || maxTokens < 3) throw new Error(`summaryPromptTokens: maxTokens must be an integer >= 3, got ${maxTokens}`);
  const { code, summary } = tokenizer.special;
  return [code, ...tokenizer.encode(codeText).slice(0, maxTokens - 2), summary];
}
