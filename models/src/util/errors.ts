// Errors written for the user: the CLI prints their message alone, the server returns it as the
// response's message. Anything else is a bug and keeps its stack.
export class UserError extends Error {
  override name = 'UserError';
}

/** Control characters and undecodable bytes: a terminal acts on some of them (escape sequences). */
const UNPRINTABLE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]/g;

/**
 * Why JSON.parse refused a file, in words safe to show: the parser quotes the text it choked on,
 * and a damaged file's text may be raw bytes.
 */
export function jsonParseProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.search(UNPRINTABLE) >= 0 ? 'it holds binary data, not JSON text' : message;
}

/** A message with its control characters written as escapes, for a terminal (\n and \t stay). */
export function printable(message: string): string {
  return message.replace(UNPRINTABLE, (c) => (c === '\ufffd' ? '?' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
