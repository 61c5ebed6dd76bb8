// Source text scanned as a careful scanner, not a parser: which languages are known (by file
// extension and VS Code id), a lexer per language family that blanks out comments and string
// contents (offsets kept), and the definitions it then finds line by line — their extent, name,
// kind and the doc comment above (or, in Python, inside) them — without being fooled by a "{" in a
// string or a "def" in a docstring. Where a language is not covered, or code is too unusual, it
// finds nothing rather than something wrong. Pure functions on strings: it reads no files
// (files.ts does) and decides nothing about summaries (docComments.ts, summaryPairs.ts do).

export type DefinitionKind = 'function' | 'method' | 'class' | 'type';

// ---------------------------------------------------------------------------------------------
// Languages

type LexerFamily = 'c' | 'python' | 'hash';
export type DocStyle = 'jsdoc' | 'bang' | 'block' | 'triple' | 'inner' | 'line' | 'hash';
type DefinitionMatcher = (src: string) => { name?: string; kind: DefinitionKind } | null;

export interface LanguageSpec {
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

export function unsupported(languageId: string): string {
  return `unsupported language "${languageId}" (supported: ${SUMMARY_LANGUAGES.join(', ')})`;
}


/** The scanner's description of a VS Code language id, or undefined when it does not know it. */
export function languageSpec(languageId: string): LanguageSpec | undefined {
  return Object.hasOwn(LANGUAGES, languageId) ? LANGUAGES[languageId] : undefined;
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

export class LineIndex {
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

export interface DocComment {
  start: number;
  end: number;
  style: DocStyle | 'docstring';
  body: string; // the comment's text without its markers, one entry per line joined by '\n'
}

export interface Definition {
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

export function leadingWhitespace(s: string): string {
  return /^[ \t]*/.exec(s)![0];
}

/** Columns of a line's indentation, a tab reaching the next multiple of 8 as Python counts it. */
export function indentWidth(line: string): number {
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
export function findDefinitions(text: string, spec: LanguageSpec): Definition[] {
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

/** The definition's code without its docstring (Python), dedented. */
export function definitionCode(text: string, definition: Definition): string {
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
