/**
 * The HTTP half of the client: `POST /v1/api/auth/login` and `POST /v1/api/sql`
 * (docs/http.md), with `fetch`. Every SQL request asks for BIGINT values as strings and
 * decodes them by the result's `columns`.
 */
import { StrandError, fromServerError } from './errors.js';
import { bigintColumns, decodeRow, encodeParams } from './values.js';
/** The HTTP API of one server, with the credentials of one user. */
export class HttpApi {
    baseUrl;
    auth;
    int64;
    fetchImpl;
    token;
    constructor(baseUrl, auth, int64, fetchImpl) {
        this.baseUrl = baseUrl;
        this.auth = auth;
        this.int64 = int64;
        this.fetchImpl = fetchImpl;
        if ('token' in auth)
            this.token = auth.token;
    }
    /** Log in with the user name and password; returns (and from now on uses) the token. */
    async login() {
        if (!('username' in this.auth)) {
            if (this.token === undefined)
                throw new StrandError('unauthorized', 'no credentials to log in with');
            return this.token;
        }
        const body = { username: this.auth.username, password: this.auth.password };
        const answer = await this.post('/v1/api/auth/login', body, false);
        const token = answer.token;
        if (typeof token !== 'string')
            throw new StrandError('protocol', 'the login answer has no token');
        this.token = token;
        return token;
    }
    /** Drop the token (it was refused) if a password can get a new one; `true` if so. */
    forgetToken() {
        if (!('username' in this.auth) || this.token === undefined)
            return false;
        this.token = undefined;
        return true;
    }
    /** The token, logging in first when the client has a password and no token yet. */
    async currentToken() {
        if (this.token === undefined && 'username' in this.auth)
            await this.login();
        return this.token;
    }
    /** Run one or more statements; resolves with one result per statement. */
    async query(sql, params = []) {
        const answer = await this.post('/v1/api/sql', { sql, params: encodeParams(params), bigint: 'string' }, true);
        const results = answer.results;
        if (!Array.isArray(results))
            throw new StrandError('protocol', 'the SQL answer has no results');
        return results.map((result) => {
            const columns = (Array.isArray(result.columns) ? result.columns : []);
            const bigints = bigintColumns(columns);
            const rows = (Array.isArray(result.rows) ? result.rows : []);
            const decoded = {
                columns,
                rows: rows.map((row) => decodeRow(row, bigints, this.int64)),
                rowCount: typeof result.row_count === 'number' ? result.row_count : rows.length,
            };
            if (typeof result.message === 'string')
                decoded.message = result.message;
            return decoded;
        });
    }
    authorization() {
        if (this.token !== undefined)
            return `Bearer ${this.token}`;
        if ('username' in this.auth)
            return `Basic ${base64(`${this.auth.username}:${this.auth.password}`)}`;
        return undefined;
    }
    async post(path, body, authenticated, retried = false) {
        const headers = { 'content-type': 'application/json' };
        const authorization = authenticated ? this.authorization() : undefined;
        if (authorization)
            headers.authorization = authorization;
        let response;
        try {
            response = await this.fetchImpl(`${this.baseUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
        }
        catch (error) {
            throw new StrandError('network', `cannot reach ${this.baseUrl}: ${error.message ?? error}`);
        }
        const text = await response.text();
        let json;
        try {
            json = JSON.parse(text);
        }
        catch {
            throw new StrandError('protocol', `HTTP ${response.status}: the answer is not JSON`, { status: response.status });
        }
        if (!response.ok) {
            // An expired token: log in again once with the password, if there is one.
            if (response.status === 401 && authenticated && !retried && this.token !== undefined && 'username' in this.auth) {
                this.token = undefined;
                await this.login();
                return this.post(path, body, authenticated, true);
            }
            throw fromServerError(json.error, response.status);
        }
        return json;
    }
}
function base64(text) {
    const bytes = new TextEncoder().encode(text);
    let binary = '';
    for (const byte of bytes)
        binary += String.fromCharCode(byte);
    return btoa(binary);
}
