/**
 * `@strand/client`: Strand from a browser or Node 20+, with nothing but `fetch` and
 * `WebSocket`.
 *
 * ```ts
 * const client = createClient({ url: 'http://127.0.0.1:8080', auth: { username, password } });
 * // or a cluster's members: createClient({ urls: ['http://a:8080', 'http://b:8080'], auth })
 * const [result] = await client.query('SELECT id, title FROM app.tickets WHERE id = $1', [7n]);
 * const live = client.live('SELECT id, title, status FROM app.tickets', (rows, change) => render(rows));
 * ```
 *
 * Owns: the HTTP calls (`http.ts`), the one shared WebSocket and its reconnects
 * (`connection.ts`), each live query's materialized rows and resume point (`live.ts`), and
 * where those are kept between visits (`persist.ts`). BIGINT values arrive as `bigint`
 * (or strings) and `_seq` as a string: never a rounded number (`values.ts`).
 */

import { Connection, type Backoff, type ConnectionState, type WebSocketConstructor } from './connection.js';
import { StrandError } from './errors.js';
import { AddressRing, HttpApi, type Auth, type QueryResult } from './http.js';
import { LiveQuery, type Change, type LiveOptions } from './live.js';
import type { Column, Int64Mode } from './values.js';

export { StrandError } from './errors.js';
export type { ErrorDetails, Position } from './errors.js';
export type { Auth, QueryResult } from './http.js';
export type { Change, LiveOptions } from './live.js';
export type { ConnectionState, Backoff, WebSocketConstructor } from './connection.js';
export type { Column, Int64Mode, RawRow } from './values.js';
export { compareSeq } from './values.js';
export {
  memoryPersistence,
  localStoragePersistence,
  indexedDbPersistence,
  type Persistence,
  type StoredResult,
  type KeyValueStorage,
} from './persist.js';

export interface ClientOptions {
  /** The server's HTTP address, e.g. `http://127.0.0.1:8080` or `https://strand.example`.
   *  Give this or `urls`, not both. */
  url?: string;
  /** The HTTP addresses of a cluster's members (or of replicas of one server), instead of
   *  `url`. The WebSocket opens on one and, each time it is lost or cannot open, reconnects
   *  to the next in the list (round robin, with `backoff`); every live query resumes there
   *  from its last `_seq`. An HTTP request goes to the address that answered last and is
   *  sent to the next ones (at most one pass over the list) only when nothing of it ran
   *  (connection refused, `not_leader`, `too_many_connections`) or when it only reads (a
   *  single SELECT, or a login), which may also move on after `unavailable`, `overloaded` or a
   *  lost connection. A write that may have run (`unavailable`, a connection lost
   *  mid-request) rejects; sending it again is the caller's decision. Each member signs its
   *  own tokens: give a user name and password, not a token. */
  urls?: readonly string[];
  auth: Auth;
  /** BIGINT columns as `bigint` (default) or as decimal strings. `_seq` is always a string. */
  int64?: Int64Mode;
  /** Reconnect delays: full jitter up to `initialMs * 2^attempt`, at most `maxMs`. */
  backoff?: Partial<Backoff>;
  /** The WebSocket class, where there is no global one (Node 20 without
   *  `--experimental-websocket`: pass the `ws` package's). */
  webSocket?: WebSocketConstructor;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
}

/** A handle on a live query. */
export interface Live<Row> {
  /** The materialized result, keyed by primary key, in a stable order. */
  readonly rows: Row[];
  /** The result's columns in SELECT-list order, with their SQL types. */
  readonly columns: Column[];
  /** The `_seq` the rows are at: a resume point (a decimal string). */
  readonly lastSeq: string | undefined;
  /** Set when the server refused or ended the subscription for good. */
  readonly error: StrandError | undefined;
  unsubscribe(): void;
}

export interface Client {
  /** Log in with the user name and password; resolves with the token, which the client then
   *  uses for every call to that server (and logs in again with the password when it
   *  expires). With `urls`, each member signs its own: the client logs in to each it uses. */
  login(): Promise<string>;
  /** Open the WebSocket now (live queries open it anyway): for pages that show its state. */
  connect(): void;
  /** Run SQL over HTTP: one result per statement. Rejects with a `StrandError`. */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>[]>;
  /** Subscribe to a SELECT: `onChange(rows, change)` after each snapshot batch and each change. */
  live<Row = Record<string, unknown>>(
    sql: string,
    onChange: (rows: Row[], change: Change<Row>) => void,
    options?: LiveOptions<Row>,
  ): Live<Row>;
  /** The WebSocket's state. */
  readonly state: ConnectionState;
  onStateChange(listener: (state: ConnectionState) => void): () => void;
  /** Drop the WebSocket as a network cut would; it reconnects and every live query resumes. */
  reconnect(): void;
  /** Close the WebSocket for good; live queries stop. */
  close(): void;
}

const DEFAULT_BACKOFF: Backoff = { initialMs: 200, maxMs: 5_000 };

/** The addresses `options` name, without trailing slashes: exactly one of `url` and `urls`. */
function addressesOf(options: ClientOptions): string[] {
  const { url, urls } = options as { url?: unknown; urls?: unknown };
  if ((url === undefined) === (urls === undefined)) {
    throw new StrandError('invalid_options', 'give createClient exactly one of `url` and `urls`');
  }
  const list = urls === undefined ? [url] : urls;
  if (!Array.isArray(list) || list.length === 0) {
    throw new StrandError('invalid_options', '`urls` must be a non-empty array of addresses');
  }
  return list.map((address: unknown) => {
    if (typeof address !== 'string' || !/^https?:\/\/[^/]/.test(address)) {
      throw new StrandError('invalid_options', `not an http(s) address: ${String(address)}`);
    }
    return address.replace(/\/+$/, '');
  });
}

export function createClient(options: ClientOptions): Client {
  const addresses = addressesOf(options);
  const int64 = options.int64 ?? 'bigint';
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const http = new HttpApi(new AddressRing(addresses), options.auth, int64, fetchImpl);
  const webSocket = options.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  let connection: Connection | undefined;
  let nextId = 1;

  const authenticate = async (address: string): Promise<Record<string, unknown>> => {
    const token = await http.tokenFor(address);
    if (token !== undefined) return { type: 'authenticate', method: 'jwt', token };
    throw new StrandError('unauthorized', 'no credentials');
  };
  const socket = (): Connection => {
    if (!webSocket) {
      throw new StrandError('unsupported', 'no WebSocket here: pass `webSocket` to createClient');
    }
    connection ??= new Connection({
      addresses,
      authenticate,
      // Once per refusal streak: a password that itself is wrong fails the login instead.
      credentialsRefused: (address) => http.forgetToken(address),
      webSocket,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
    });
    return connection;
  };

  return {
    login: () => http.login(),
    connect: () => socket().start(),
    query: (sql, params) => http.query(sql, params),
    live<Row>(sql: string, onChange: (rows: Row[], change: Change<Row>) => void, liveOptions: LiveOptions<Row> = {}) {
      const query = new LiveQuery<Row>(`live-${nextId++}`, sql, onChange, liveOptions, int64, socket());
      query.start();
      return query;
    },
    get state() {
      return connection?.state ?? 'connecting';
    },
    onStateChange: (listener) => socket().onStateChange(listener),
    reconnect: () => connection?.reconnectNow(),
    close: () => connection?.close(),
  };
}
