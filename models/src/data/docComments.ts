// From a doc comment to a one-sentence summary: the comment's first sentence, markup and tags
// removed, or nothing when the comment is not documentation (a licence header, a linter directive,
// commented-out code, tags alone, prose too long to be a summary). It finds no comments itself
// (sourceScanner.ts does) and writes none (summaries/functionAt.ts does).
import type { DocStyle } from './sourceScanner';

export const DEFAULT_MAX_SUMMARY_WORDS = 48;

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

