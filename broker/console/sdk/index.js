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
import { Connection } from './connection.js';
import { StrandError } from './errors.js';
import { AddressRing, HttpApi } from './http.js';
import { LiveQuery } from './live.js';
export { StrandError } from './errors.js';
export { compareSeq } from './values.js';
export { memoryPersistence, localStoragePersistence, indexedDbPersistence, } from './persist.js';
const DEFAULT_BACKOFF = { initialMs: 200, maxMs: 5_000 };
/** The addresses `options` name, without trailing slashes: exactly one of `url` and `urls`. */
function addressesOf(options) {
    const { url, urls } = options;
    if ((url === undefined) === (urls === undefined)) {
        throw new StrandError('invalid_options', 'give createClient exactly one of `url` and `urls`');
    }
    const list = urls === undefined ? [url] : urls;
    if (!Array.isArray(list) || list.length === 0) {
        throw new StrandError('invalid_options', '`urls` must be a non-empty array of addresses');
    }
    return list.map((address) => {
        if (typeof address !== 'string' || !/^https?:\/\/[^/]/.test(address)) {
            throw new StrandError('invalid_options', `not an http(s) address: ${String(address)}`);
        }
        return address.replace(/\/+$/, '');
    });
}
export function createClient(options) {
    const addresses = addressesOf(options);
    const int64 = options.int64 ?? 'bigint';
    const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    const http = new HttpApi(new AddressRing(addresses), options.auth, int64, fetchImpl);
    const webSocket = options.webSocket ?? globalThis.WebSocket;
    let connection;
    let nextId = 1;
    const authenticate = async (address) => {
        const token = await http.tokenFor(address);
        if (token !== undefined)
            return { type: 'authenticate', method: 'jwt', token };
        throw new StrandError('unauthorized', 'no credentials');
    };
    const socket = () => {
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
        live(sql, onChange, liveOptions = {}) {
            const query = new LiveQuery(`live-${nextId++}`, sql, onChange, liveOptions, int64, socket());
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
