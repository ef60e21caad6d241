/**
 * The HTTP half of the client: `POST /v1/api/auth/login` and `POST /v1/api/sql`
 * (docs/http.md), with `fetch`. Every SQL request asks for BIGINT values as strings and
 * decodes them by the result's `columns`. With several addresses (a cluster's members), a
 * request goes to the one that answered last and moves on to the next one only when that is
 * safe: nothing of it ran, or it only reads (docs/sdk.md, "Clusters").
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

/** The addresses of a client's servers (several: the members of one cluster), and the one
 *  its next request starts at. */
export class AddressRing {
  private current = 0;

  constructor(readonly addresses: readonly string[]) {
    if (addresses.length === 0) throw new StrandError('invalid_options', 'no server address');
  }

  /** One pass for one request: the current address first, then the others in list order. */
  pass(): string[] {
    const count = this.addresses.length;
    return this.addresses.map((_, step) => this.addresses[(this.current + step) % count]!);
  }

  /** `address` answered: the next request starts there (a leader stays the target). */
  answered(address: string): void {
    this.current = Math.max(0, this.addresses.indexOf(address));
  }

  /** `address` failed: the next request starts after it, even if this one is not sent again
   *  (a write that may have run is the caller's to retry, and should not meet a dead member). */
  failed(address: string): void {
    const at = this.addresses.indexOf(address);
    if (at === this.current) this.current = (at + 1) % this.addresses.length;
  }
}

/** Whether a request may run twice: a read or a login may, a write must not. */
export type Replay = 'idempotent' | 'once';

/** The HTTP API of one server or of the members of one cluster, with the credentials of one
 *  user. Each member signs its own tokens, so they are kept per address. */
export class HttpApi {
  private readonly tokens = new Map<string, string>();

  constructor(
    private readonly ring: AddressRing,
    private readonly auth: Auth,
    private readonly int64: Int64Mode,
    private readonly fetchImpl: typeof fetch,
  ) {}

  /** Log in with the user name and password; returns (and from now on uses, at the address
   *  that answered) the token. */
  async login(): Promise<string> {
    if (!('username' in this.auth)) return this.auth.token;
    return this.failover((address) => this.loginAt(address), 'idempotent');
  }

  /** Drop the token `address` refused if a password can get a new one; `true` if so. */
  forgetToken(address: string): boolean {
    if (!('username' in this.auth)) return false;
    return this.tokens.delete(address);
  }

  /** The token for `address`, logging in there first when the client has a password and no
   *  token from that server yet. */
  async tokenFor(address: string): Promise<string | undefined> {
    if (!('username' in this.auth)) return this.auth.token;
    return this.tokens.get(address) ?? this.loginAt(address);
  }

  /** Run one or more statements; resolves with one result per statement. A request that fails
   *  before anything ran, or a read, is sent to the next address (`failover`). */
  async query<Row = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<Row>[]> {
    const body = { sql, params: encodeParams(params), bigint: 'string' };
    const replay: Replay = readOnly(sql) ? 'idempotent' : 'once';
    const answer = await this.failover((address) => this.post(address, '/v1/api/sql', body, true), replay);
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

  /** Run `request` at each address of one pass until one answers, while the failure says the
   *  request may be sent again (`sendElsewhere`); then its error. */
  private async failover<T>(request: (address: string) => Promise<T>, replay: Replay): Promise<T> {
    let failure: unknown;
    for (const address of this.ring.pass()) {
      try {
        const answer = await request(address);
        this.ring.answered(address);
        return answer;
      } catch (error) {
        failure = error;
        if (!(error instanceof StrandError) || !memberFailed(error)) throw error;
        this.ring.failed(address);
        if (!sendElsewhere(error, replay)) throw error;
      }
    }
    throw failure;
  }

  private async loginAt(address: string): Promise<string> {
    if (!('username' in this.auth)) return this.auth.token;
    const body = { username: this.auth.username, password: this.auth.password };
    const answer = await this.post(address, '/v1/api/auth/login', body, false);
    const token = (answer as { token?: unknown }).token;
    if (typeof token !== 'string') throw new StrandError('protocol', 'the login answer has no token');
    this.tokens.set(address, token);
    return token;
  }

  private authorization(address: string): string {
    if (!('username' in this.auth)) return `Bearer ${this.auth.token}`;
    const token = this.tokens.get(address);
    if (token !== undefined) return `Bearer ${token}`;
    return `Basic ${base64(`${this.auth.username}:${this.auth.password}`)}`;
  }

  private async post(address: string, path: string, body: unknown, authenticated: boolean, retried = false): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (authenticated) headers.authorization = this.authorization(address);
    let response: Response;
    try {
      response = await this.fetchImpl(`${address}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    } catch (error) {
      const message = `cannot reach ${address}: ${(error as Error).message ?? error}`;
      throw new StrandError('network', message, { notSent: connectionRefused(error) });
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
      if (response.status === 401 && authenticated && !retried && this.forgetToken(address)) {
        await this.loginAt(address);
        return this.post(address, path, body, authenticated, true);
      }
      throw fromServerError((json as { error?: unknown }).error, response.status);
    }
    return json;
  }
}

/** The member is down, cut off, not leading or full: the next request should start at
 *  another one. */
function memberFailed(error: StrandError): boolean {
  return error.code === 'network' || error.status === 503;
}

/** Whether a request that failed this way may be sent to the next member. Only when nothing
 *  of it ran (the connection was refused; `not_leader`; `too_many_connections`), or when
 *  running it twice is harmless. `unavailable` after a write means "may or may not be
 *  stored": the caller decides (an INSERT retried may meet its own row as `duplicate_key`). */
function sendElsewhere(error: StrandError, replay: Replay): boolean {
  if (replay === 'idempotent') return true;
  if (error.code === 'network') return error.notSent === true;
  const nothingRan = error.code === 'not_leader' || error.code === 'too_many_connections';
  // Several statements: a leader that stepped down after the first committed names how many.
  return nothingRan && (error.committedStatements ?? 0) === 0;
}

/** One SELECT (or SHOW, DESCRIBE, EXPLAIN) and nothing else. Conservative: a `;` anywhere
 *  but at the end (even in a string) counts as several statements, which may write. */
export function readOnly(sql: string): boolean {
  const text = sql.replace(/^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*/, '').replace(/[\s;]*$/, '');
  if (text.includes(';')) return false;
  return /^(select|show|describe|explain)\b/i.test(text) && !/^explain\s+analy[sz]e\b/i.test(text);
}

/** The connection was refused, so the request never left: Node's fetch says so in its
 *  error's `cause` (`ECONNREFUSED`, also inside an AggregateError for a name with several
 *  addresses). Browsers do not say why a fetch failed: there this is always false. */
function connectionRefused(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | undefined)?.cause as
    | { code?: unknown; errors?: unknown }
    | undefined;
  if (cause === undefined || cause === null) return false;
  if (Array.isArray(cause.errors) && cause.errors.length > 0) {
    return cause.errors.every((inner) => (inner as { code?: unknown }).code === 'ECONNREFUSED');
  }
  return cause.code === 'ECONNREFUSED';
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
