// Errors written for the user: the CLI prints their message alone, the server returns it as the
// response's message. Anything else is a bug and keeps its stack.
export class UserError extends Error {
  override name = 'UserError';
}
