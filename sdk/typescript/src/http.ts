/**
 * The HTTP half of the client: `POST /v1/api/auth/login` and `POST /v1/api/sql`
 * (docs/http.md), with `fetch`. Every SQL request asks for BIGINT values as strings and
 * decodes them by the result's `columns`.
 */

import { StrandError, fromServerError } from './errors.js';
import { bigintColumns, decodeRow, encodeParams, type Column, type Int64Mode, type RawRow } from './values.js';

/** How the client proves who it is: a user name and password, or a token from `login`. */
export type Auth = { username: string; password: string } | { token: string };

/** One statement's result. */
export interface QueryResult<Row = Record<string, unknown>> {
  /** The columns in SELECT-list order, with their SQL types; empty for statements without rows. */
  columns: Column[];
  rows: Row[];
  /** Rows returned or written. */
  rowCount: number;
  /** A summary for statements without rows (`table app.t created`). */
  message?: string;
}

/** The HTTP API of one server, with the credentials of one user. */
export class HttpApi {
  private token: string | undefined;

  constructor(
    private readonly baseUrl: string,
    private readonly auth: Auth,
    private readonly int64: Int64Mode,
    private readonly fetchImpl: typeof fetch,
  ) {
    if ('token' in auth) this.token = auth.token;
  }

  /** Log in with the user name and password; returns (and from now on uses) the token. */
  async login(): Promise<string> {
    if (!('username' in this.auth)) {
      if (this.token === undefined) throw new StrandError('unauthorized', 'no credentials to log in with');
      return this.token;
    }
    const body = { username: this.auth.username, password: this.auth.password };
    const answer = await this.post('/v1/api/auth/login', body, false);
    const token = (answer as { token?: unknown }).token;
    if (typeof token !== 'string') throw new StrandError('protocol', 'the login answer has no token');
    this.token = token;
    return token;
  }

  /** Drop the token (it was refused) if a password can get a new one; `true` if so. */
  forgetToken(): boolean {
    if (!('username' in this.auth) || this.token === undefined) return false;
    this.token = undefined;
    return true;
  }

  /** The token, logging in first when the client has a password and no token yet. */
  async currentToken(): Promise<string | undefined> {
    if (this.token === undefined && 'username' in this.auth) await this.login();
    return this.token;
  }

  /** Run one or more statements; resolves with one result per statement. */
  async query<Row = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<Row>[]> {
    const answer = await this.post('/v1/api/sql', { sql, params: encodeParams(params), bigint: 'string' }, true);
    const results = (answer as { results?: unknown }).results;
    if (!Array.isArray(results)) throw new StrandError('protocol', 'the SQL answer has no results');
    return results.map((result: Record<string, unknown>) => {
      const columns = (Array.isArray(result.columns) ? result.columns : []) as Column[];
      const bigints = bigintColumns(columns);
      const rows = (Array.isArray(result.rows) ? result.rows : []) as RawRow[];
      const decoded: QueryResult<Row> = {
        columns,
        rows: rows.map((row) => decodeRow<Row>(row, bigints, this.int64)),
        rowCount: typeof result.row_count === 'number' ? result.row_count : rows.length,
      };
      if (typeof result.message === 'string') decoded.message = result.message;
      return decoded;
    });
  }

  private authorization(): string | undefined {
    if (this.token !== undefined) return `Bearer ${this.token}`;
    if ('username' in this.auth) return `Basic ${base64(`${this.auth.username}:${this.auth.password}`)}`;
    return undefined;
  }

  private async post(path: string, body: unknown, authenticated: boolean, retried = false): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const authorization = authenticated ? this.authorization() : undefined;
    if (authorization) headers.authorization = authorization;
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    } catch (error) {
      throw new StrandError('network', `cannot reach ${this.baseUrl}: ${(error as Error).message ?? error}`);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new StrandError('protocol', `HTTP ${response.status}: the answer is not JSON`, { status: response.status });
    }
    if (!response.ok) {
      // An expired token: log in again once with the password, if there is one.
      if (response.status === 401 && authenticated && !retried && this.token !== undefined && 'username' in this.auth) {
        this.token = undefined;
        await this.login();
        return this.post(path, body, authenticated, true);
      }
      throw fromServerError((json as { error?: unknown }).error, response.status);
    }
    return json;
  }
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
