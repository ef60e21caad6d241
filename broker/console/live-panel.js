// The live panel: one subscription at a time, its rows in a table that is changed in place
// (rows are kept, moved and refilled, not redrawn), so a change is seen as a change: the row
// it touched is marked for a moment, and a deleted row stays, struck through, before it goes.
// The SDK keeps the rows and resumes after a reconnect; this panel only draws them.

import { columnHeader, element, fillCell, rowCount } from './render.js';

/** How long a changed row stays marked (the CSS animations last as long). */
const MARK_MS = 1500;
/** Rows drawn at most: a subscription to a large table stays usable; the count says the rest. */
const LIVE_ROWS_SHOWN_MAX = 2000;
/** The class a row is marked with, by the change that touched it. */
const MARK_OF = { insert: 'row-inserted', update: 'row-updated', delete: 'row-deleted' };
const MARKS = Object.values(MARK_OF);

export class LivePanel {
  /** `view`: the panel's elements (table, status, count, lastSeq, error, sql, stop). */
  constructor(view) {
    this.view = view;
    this.subscription = undefined;
    this.generation = 0;
    this.clear();
  }

  /** Subscribe to `sql` on `client`, in place of the subscription shown now. */
  start(client, sql) {
    this.stop();
    this.clear();
    const generation = ++this.generation;
    this.view.sql.textContent = sql;
    this.view.sql.hidden = false;
    const onRows = (rows, change) => {
      if (generation === this.generation) this.update(rows, change);
    };
    const onError = (error) => {
      if (generation === this.generation) this.ended(error);
    };
    try {
      this.subscription = client.live(sql, onRows, { onError });
      this.showStatus('subscribed');
      this.view.stop.disabled = false;
    } catch (error) {
      this.ended(error);
    }
  }

  /** Unsubscribe; the rows last seen stay on the page. */
  stop() {
    if (this.subscription === undefined) return;
    this.generation += 1;
    this.subscription.unsubscribe();
    this.subscription = undefined;
    this.dropMarks();
    this.showStatus('stopped');
    this.view.stop.disabled = true;
  }

  /** Forget the table (a new subscription, or logging out). */
  clear() {
    for (const timer of this.timers?.values() ?? []) clearTimeout(timer);
    this.columns = undefined;
    this.keyColumn = undefined;
    this.lines = new Map(); // row id -> <tr>
    this.shown = new WeakMap(); // <tr> -> the row object it shows, to skip refilling it
    this.timers = new Map(); // row id -> the timeout that ends its mark
    this.deleted = new Map(); // row id -> its index while shown deleted
    this.view.table.tHead.replaceChildren();
    this.view.table.tBodies[0].replaceChildren();
    this.view.error.hidden = true;
    this.view.sql.hidden = true;
    this.view.count.textContent = rowCount(0);
    this.view.lastSeq.textContent = '—';
    this.showStatus('not subscribed');
  }

  /** The SDK's rows after a snapshot batch or a change. */
  update(rows, change) {
    const type = change?.type;
    const changed = change?.row ?? change?.oldRow;
    if (this.columns === undefined || type === 'reset') this.useColumns(this.columnsOf(rows));
    if (this.columns !== undefined) {
      if (type === 'reset') this.dropMarks();
      if (type === 'delete' && changed) this.keepDeleted(changed);
      this.draw(rows);
      if (changed && Object.hasOwn(MARK_OF, type)) this.mark(this.keyOf(changed), MARK_OF[type]);
    }
    const shown = Math.min(rows.length, LIVE_ROWS_SHOWN_MAX);
    this.view.count.textContent =
      shown < rows.length ? `${shown} of ${rowCount(rows.length)} shown` : rowCount(rows.length);
    this.view.lastSeq.textContent = this.subscription?.lastSeq ?? change?.seq ?? '—';
  }

  /** The server refused or ended the subscription: say why, keep the rows last seen. */
  ended(error) {
    this.subscription = undefined;
    this.generation += 1;
    this.dropMarks();
    const code = typeof error?.code === 'string' ? error.code : 'error';
    const message = error?.message ? String(error.message) : String(error);
    this.view.error.replaceChildren(element('strong', 'error-code', code), ' ', message);
    this.view.error.hidden = false;
    this.view.stop.disabled = true;
    this.showStatus('ended');
  }

  showStatus(text) {
    this.view.status.textContent = text;
    this.view.status.dataset.status = text;
  }

  /** The columns: the SDK's if it gives them (in SELECT-list order, with types), else the
   *  first row's keys with `_seq` last. */
  columnsOf(rows) {
    const known = this.subscription?.columns;
    if (Array.isArray(known) && known.length > 0) {
      return known.map((column) => (typeof column === 'string' ? { name: column } : column));
    }
    if (rows.length === 0) return undefined;
    const names = Object.keys(rows[0]).filter((name) => name !== '_seq');
    return [...names, '_seq'].map((name) => ({ name }));
  }

  /** Show `columns`; other columns than before (a fresh snapshot after ADD COLUMN) start the
   *  table over. */
  useColumns(columns) {
    const names = columns?.map((column) => column.name);
    if (names === undefined || names.join('\n') === this.columns?.map((c) => c.name).join('\n')) {
      return;
    }
    this.dropMarks();
    this.lines.clear();
    this.view.table.tBodies[0].replaceChildren();
    this.columns = columns;
    // A row's identity on the page: `id` if selected, else the first column (never `_seq`,
    // which changes with every version of the row); the SDK keys its rows the same way.
    this.keyColumn = names.includes('id') ? 'id' : (names.find((n) => n !== '_seq') ?? '_seq');
    this.view.table.tHead.replaceChildren(element('tr', '', ...columns.map(columnHeader)));
  }

  /** The row's `data-key`; also its id, except for rows that repeat a key (`draw`). */
  keyOf(row) {
    return String(row[this.keyColumn] ?? '');
  }

  /** Keep the deleted row's line where it is until its mark ends. */
  keepDeleted(row) {
    const id = this.keyOf(row);
    let line = this.lines.get(id);
    if (line === undefined) {
      line = this.newLine(row);
      this.lines.set(id, line);
    }
    const index = Array.prototype.indexOf.call(this.view.table.tBodies[0].rows, line);
    this.deleted.set(id, index < 0 ? Number.MAX_SAFE_INTEGER : index);
  }

  newLine(row) {
    const line = document.createElement('tr');
    line.dataset.key = this.keyOf(row);
    this.fill(line, row);
    return line;
  }

  fill(line, row) {
    if (this.shown.get(line) === row) return;
    this.shown.set(line, row);
    const cells = line.cells;
    while (cells.length < this.columns.length) line.insertCell();
    this.columns.forEach((column, i) => fillCell(cells[i], row[column.name]));
  }

  /** Make the table body show `rows` (and the deleted rows still marked), moving as little. */
  draw(rows) {
    if (this.columns === undefined) return;
    const order = [];
    const repeats = new Map();
    for (const row of rows.slice(0, LIVE_ROWS_SHOWN_MAX)) {
      // Rows without a unique key column (a keyless STREAM table) repeat keys: `key#n`.
      const key = this.keyOf(row);
      const seen = repeats.get(key) ?? 0;
      repeats.set(key, seen + 1);
      order.push({ id: seen === 0 ? key : `${key}#${seen}`, row });
    }
    for (const [id, index] of this.deleted) {
      if (repeats.has(id)) this.deleted.delete(id); // back again: no longer deleted
      else order.splice(Math.min(index, order.length), 0, { id, row: undefined });
    }
    const body = this.view.table.tBodies[0];
    order.forEach(({ id, row }, i) => {
      let line = this.lines.get(id);
      if (line === undefined) {
        line = this.newLine(row);
        this.lines.set(id, line);
      } else if (row !== undefined) {
        this.fill(line, row);
      }
      if (body.rows[i] !== line) body.insertBefore(line, body.rows[i] ?? null);
    });
    while (body.rows.length > order.length) body.rows[body.rows.length - 1].remove();
    const ids = new Set(order.map(({ id }) => id));
    for (const id of this.lines.keys()) {
      if (!ids.has(id)) this.forget(id);
    }
  }

  /** Mark a row with `kind` for MARK_MS; a deleted row then leaves the table. */
  mark(id, kind) {
    const line = this.lines.get(id);
    if (line === undefined) return;
    clearTimeout(this.timers.get(id));
    line.classList.remove(...MARKS);
    void line.offsetWidth; // restart the animation when a row changes again within MARK_MS
    line.classList.add(kind);
    const timer = setTimeout(() => {
      this.timers.delete(id);
      line.classList.remove(kind);
      if (kind === 'row-deleted' && this.deleted.delete(id)) {
        line.remove();
        this.lines.delete(id);
      }
    }, MARK_MS);
    this.timers.set(id, timer);
  }

  /** End every mark now: deleted rows leave at once. */
  dropMarks() {
    for (const [id, timer] of this.timers) {
      clearTimeout(timer);
      this.lines.get(id)?.classList.remove(...MARKS);
    }
    this.timers.clear();
    for (const id of this.deleted.keys()) {
      this.lines.get(id)?.remove();
      this.lines.delete(id);
    }
    this.deleted.clear();
  }

  forget(id) {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.lines.delete(id);
  }
}
