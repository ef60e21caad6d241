/**
 * Errors the SDK rejects with: the server's own (its `code`, `message` and, for SQL, the
 * `position` of the problem) and the client's (`network`, `closed`, `protocol`).
 */

/** Where in the SQL text a problem is: 1-based line and column (columns count characters). */
export interface Position {
  line: number;
  column: number;
}

/** A failure, with the server's stable `code` to branch on and its `message` for people. */
export class StrandError extends Error {
  /** The server's error code (`syntax_error`, `unauthorized`, ...), or the client's: `network`, `closed`, `protocol`,
   *  `invalid_options`. */
  readonly code: string;
  /** Where in the SQL the problem is, when the server said. */
  readonly position?: Position;
  /** The HTTP status of the answer, for HTTP requests. */
  readonly status?: number;
  /** The oldest `_seq` a resume may start from (`resume_too_old`). */
  readonly lowestSeq?: string;
  /** For a request of several statements: the 1-based index of the one that failed. */
  readonly statement?: number;
  /** For a request of several statements: how many before the failed one were applied. */
  readonly committedStatements?: number;
  /** For a `network` failure: the connection was refused, so the request never reached the
   *  server (only Node's `fetch` says so; in a browser it is never set). */
  readonly notSent?: boolean;

  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = 'StrandError';
    this.code = code;
    if (details.position) this.position = details.position;
    if (details.status !== undefined) this.status = details.status;
    if (details.lowestSeq !== undefined) this.lowestSeq = details.lowestSeq;
    if (details.statement !== undefined) this.statement = details.statement;
    if (details.committedStatements !== undefined) this.committedStatements = details.committedStatements;
    if (details.notSent) this.notSent = true;
  }
}

/** What a StrandError may carry besides its code and message. */
export interface ErrorDetails {
  position?: Position;
  status?: number;
  lowestSeq?: string;
  statement?: number;
  committedStatements?: number;
  notSent?: boolean;
}

/** The `error` object of an HTTP error answer or a WebSocket `error` message, as a StrandError. */
export function fromServerError(error: unknown, status?: number): StrandError {
  const object = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const code = typeof object.code === 'string' ? object.code : 'protocol';
  const message = typeof object.message === 'string' ? object.message : `the server answered ${status ?? 'an error'} without a message`;
  const position = object.position as Position | undefined;
  const details: ErrorDetails = {};
  if (position && typeof position.line === 'number' && typeof position.column === 'number') {
    details.position = { line: position.line, column: position.column };
  }
  if (status !== undefined) details.status = status;
  if (typeof object.lowest_seq === 'string') details.lowestSeq = object.lowest_seq;
  if (typeof object.statement === 'number') details.statement = object.statement;
  if (typeof object.committed_statements === 'number') details.committedStatements = object.committed_statements;
  return new StrandError(code, message, details);
}
