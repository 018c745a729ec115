/**
 * The one error type protocol code throws for bad input. Parsers raise this and nothing else, so
 * the relay can tell a hostile or broken peer (close, count, move on) from a bug in our code.
 */
export class ProtocolError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}
