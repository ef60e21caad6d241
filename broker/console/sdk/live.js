/**
 * A live query: one subscription's materialized result, kept equal to the query's result as
 * of its last `_seq` (docs/websocket.md, "Applying changes") across reconnects.
 *
 * Invariants:
 * - `lastSeq` is only ever a point the server can resume from: the snapshot's boundary once
 *   the snapshot is complete, then the `_seq` of each change applied. A change at or below it
 *   is a duplicate and is dropped.
 * - After a lost socket, the subscription resumes from `lastSeq` when it has one; a snapshot
 *   cut half-way has none and is taken again. A snapshot taken while rows are held (a cut
 *   first snapshot, `resume_too_old`, an interrupted subscription) is staged and replaces the
 *   held rows only once complete, so the application never sees a half result.
 */
import { fromServerError } from './errors.js';
import { SEQ_COLUMN, bigintColumns, compareSeq, decodeRow, encodeParams, encodeRow, } from './values.js';
/** Codes after which the subscription starts over with a fresh snapshot. */
const FRESH_SNAPSHOT_CODES = new Set(['resume_too_old', 'schema_changed']);
/** Codes after which the subscription resumes where it was. */
const RESUME_CODES = new Set(['subscription_interrupted']);
export class LiveQuery {
    id;
    sql;
    onChange;
    options;
    int64;
    connection;
    /** The `_seq` the result is at (undefined until the first snapshot is complete). */
    lastSeq;
    /** Set when the subscription was refused or ended for good. */
    error;
    held = new Map();
    staged;
    schema = [];
    bigints = [];
    boundary;
    phase = 'subscribing';
    sentFrom;
    saveTimer;
    constructor(id, sql, onChange, options, int64, connection) {
        this.id = id;
        this.sql = sql;
        this.onChange = onChange;
        this.options = options;
        this.int64 = int64;
        this.connection = connection;
        this.lastSeq = options.fromSeq;
    }
    /** The result's columns in SELECT-list order with their SQL types (`_seq` last when the
     *  query did not select it); empty until the server acknowledged the subscription. */
    get columns() {
        return this.schema;
    }
    /** The materialized result, in a stable order (first arrival). */
    get rows() {
        return Array.from(this.held.values());
    }
    /** Start: rows from persistence first (when any), then the subscription. */
    start() {
        const stored = this.options.persist?.load(this.storageKey());
        if (stored instanceof Promise) {
            stored.then((result) => this.begin(result), () => this.begin(undefined));
        }
        else {
            this.begin(stored);
        }
    }
    /** Stop: nothing more arrives; the stored rows stay for the next visit. */
    unsubscribe() {
        if (this.phase === 'ended')
            return;
        this.phase = 'ended';
        this.flushSave();
        this.connection.remove(this.id);
    }
    subscribeMessage() {
        const options = { bigint: 'string' };
        if (this.options.batchSize !== undefined)
            options.batch_size = this.options.batchSize;
        if (this.options.params && this.options.params.length > 0)
            options.params = encodeParams(this.options.params);
        this.sentFrom = this.lastSeq;
        if (this.lastSeq !== undefined)
            options.from_seq_id = this.lastSeq;
        // AS OF only for the first snapshot: a resume continues from where the rows are.
        else if (this.options.asOfSeq !== undefined)
            options.as_of_seq = this.options.asOfSeq;
        this.phase = 'subscribing';
        return { type: 'subscribe', subscription: { id: this.id, sql: this.sql, options } };
    }
    receive(message) {
        if (this.phase === 'ended')
            return;
        switch (message.type) {
            case 'subscription_ack':
                return this.acknowledged(message);
            case 'initial_data_batch':
                return this.batch(message);
            case 'change':
                return this.change(message);
            case 'error':
                return this.failed(fromServerError(message));
        }
    }
    disconnected() {
        if (this.phase === 'ended')
            return;
        // A snapshot cut half-way has no resume point: the next one is staged and replaces.
        this.staged = undefined;
        this.phase = 'subscribing';
    }
    closed(error) {
        if (this.phase === 'ended')
            return;
        this.phase = 'ended';
        this.flushSave();
        if (error)
            this.end(error);
    }
    begin(stored) {
        if (this.phase === 'ended')
            return;
        if (stored && stored.sql === this.sql && this.options.fromSeq === undefined) {
            this.setColumns(stored.columns);
            for (const raw of stored.rows) {
                const row = decodeRow(raw, this.bigints, this.int64);
                this.held.set(this.keyOf(row), row);
            }
            this.lastSeq = stored.lastSeq;
            this.emit({ type: 'restore', seq: stored.lastSeq });
        }
        this.connection.add(this.id, this);
    }
    acknowledged(message) {
        this.setColumns(message.schema ?? []);
        this.boundary = String(message.snapshot_end_seq ?? '0');
        if (this.sentFrom !== undefined) {
            // A resume: changes after `sentFrom` follow (keyed or exact); no snapshot.
            this.phase = 'live';
            return;
        }
        this.phase = 'snapshot';
        this.staged = this.held.size > 0 || this.lastSeq !== undefined ? new Map() : undefined;
    }
    batch(message) {
        if (this.phase !== 'snapshot')
            return;
        const target = this.staged ?? this.held;
        for (const raw of message.rows ?? []) {
            const row = decodeRow(raw, this.bigints, this.int64);
            target.set(this.keyOf(row), row);
        }
        const control = (message.batch_control ?? {});
        if (control.has_more) {
            if (!this.staged)
                this.emit({ type: 'snapshot', seq: this.boundary });
            this.connection.send({ type: 'next_batch', subscription_id: this.id });
            return;
        }
        const replaced = this.staged !== undefined;
        if (this.staged) {
            this.held = this.staged;
            this.staged = undefined;
        }
        this.phase = 'live';
        this.lastSeq = this.boundary;
        this.emit({ type: replaced ? 'reset' : 'snapshot', seq: this.boundary });
        this.scheduleSave();
    }
    change(message) {
        if (this.phase !== 'live')
            return;
        const rows = message.rows ?? [];
        const oldRows = message.old_rows ?? [];
        const first = rows[0] ?? oldRows[0];
        if (first === undefined)
            return;
        // A top-K window's change names its write's `_seq`: its rows keep their versions' own
        // (a row that enters because another left is older than the write).
        const seq = message.seq !== undefined ? String(message.seq) : String(first[SEQ_COLUMN]);
        if (this.lastSeq !== undefined && compareSeq(seq, this.lastSeq) <= 0)
            return;
        const kind = message.change_type;
        if (kind !== 'insert' && kind !== 'update' && kind !== 'delete')
            return;
        const decode = (raw) => decodeRow(raw, this.bigints, this.int64);
        this.lastSeq = seq;
        // All of one message is applied before the application hears of it: it never sees a
        // window with a row gone and its replacement not yet in.
        const changes = [];
        if (kind === 'insert') {
            for (const row of rows.map(decode)) {
                this.held.set(this.keyOf(row), row);
                changes.push({ type: 'insert', row, seq });
            }
        }
        else if (kind === 'delete') {
            for (const row of rows.map(decode)) {
                const key = this.keyOf(row);
                const gone = this.held.get(key);
                this.held.delete(key);
                changes.push({ type: 'delete', row: gone ?? row, seq });
            }
        }
        else {
            // `old_rows` are the rows as held before (for a top-K window, several rows may leave
            // and enter at once): those not in `rows` are gone, the rest are updated.
            const olds = new Map(oldRows.map(decode).map((row) => [this.keyOf(row), row]));
            const news = rows.map(decode);
            const kept = new Set(news.map((row) => this.keyOf(row)));
            for (const [key, old] of olds) {
                if (kept.has(key))
                    continue;
                this.held.delete(key);
                changes.push({ type: 'delete', row: old, seq });
            }
            for (const row of news) {
                const key = this.keyOf(row);
                const oldRow = olds.get(key);
                this.held.set(key, row);
                const change = { type: oldRow === undefined ? 'insert' : 'update', row, seq };
                if (oldRow !== undefined)
                    change.oldRow = oldRow;
                changes.push(change);
            }
        }
        for (const change of changes)
            this.emit(change);
        this.scheduleSave();
    }
    failed(error) {
        if (FRESH_SNAPSHOT_CODES.has(error.code)) {
            // The history to resume from is gone: a fresh snapshot, staged, replaces the rows.
            this.lastSeq = undefined;
            this.connection.resubscribe(this.id);
            return;
        }
        if (RESUME_CODES.has(error.code) && this.lastSeq !== undefined) {
            this.connection.resubscribe(this.id);
            return;
        }
        if (error.code === 'no_pending_batch')
            return;
        this.end(error);
    }
    end(error) {
        this.error = error;
        this.phase = 'ended';
        this.connection.remove(this.id);
        this.options.onError?.(error);
    }
    setColumns(columns) {
        this.schema = columns;
        this.bigints = bigintColumns(columns);
    }
    keyOf(row) {
        const key = this.options.key;
        if (typeof key === 'function')
            return key(row);
        const name = key ?? this.defaultKeyColumn();
        return String(row[name]);
    }
    defaultKeyColumn() {
        if (this.schema.some((c) => c.name === 'id'))
            return 'id';
        return this.schema.find((c) => c.name !== SEQ_COLUMN)?.name ?? 'id';
    }
    emit(change) {
        this.onChange(this.rows, change);
    }
    storageKey() {
        if (this.options.persistKey !== undefined)
            return this.options.persistKey;
        const params = this.options.params ?? [];
        // The same SQL with other parameters is another result.
        return params.length === 0 ? this.sql : `${this.sql} ${JSON.stringify(encodeParams(params))}`;
    }
    scheduleSave() {
        if (!this.options.persist || this.saveTimer !== undefined)
            return;
        this.saveTimer = setTimeout(() => {
            this.saveTimer = undefined;
            this.save();
        }, 50);
    }
    flushSave() {
        if (this.saveTimer === undefined)
            return;
        clearTimeout(this.saveTimer);
        this.saveTimer = undefined;
        this.save();
    }
    save() {
        const persist = this.options.persist;
        if (!persist || this.lastSeq === undefined)
            return;
        const stored = {
            sql: this.sql,
            columns: this.schema,
            lastSeq: this.lastSeq,
            rows: this.rows.map(encodeRow),
        };
        const saved = persist.save(this.storageKey(), stored);
        if (saved instanceof Promise)
            saved.catch(() => undefined);
    }
}
