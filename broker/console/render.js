// How the console shows values, results and SQL errors. Every piece of data is set as text,
// never parsed as HTML, so nothing a row or a message holds can become markup on the page.

/** Rows of one result drawn as a table; past this the page would slow down for no reader. */
export const RESULT_ROWS_SHOWN_MAX = 1000;

/** A new element of `tag` with `className`, holding `children` (strings become text). */
export function element(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children);
  return node;
}

/** A value as text, or null for SQL NULL. BIGINTs arrive as bigint, `_seq` as a string,
 *  JSON documents as objects (whose BIGINTs may be bigint too, which JSON.stringify refuses). */
export function formatValue(value) {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') {
    return JSON.stringify(value, (_, inner) => (typeof inner === 'bigint' ? String(inner) : inner));
  }
  return String(value);
}

/** Show `value` in `cell`: NULL as a grey `null`, told apart from the text 'null' by its style. */
export function fillCell(cell, value) {
  const text = formatValue(value);
  cell.classList.toggle('null', text === null);
  cell.textContent = text ?? 'null';
}

/** The header cell of a column: its name, and its SQL type when known. */
export function columnHeader(column) {
  const header = element('th', '', element('span', 'column-name', column.name));
  if (column.type) header.append(element('span', 'column-type', column.type));
  header.scope = 'col';
  return header;
}

/** `rows` under `columns` ({name, type}), cells in the columns' order. */
export function resultTable(columns, rows) {
  const table = element('table', 'grid');
  table.createTHead().append(element('tr', '', ...columns.map(columnHeader)));
  const body = table.createTBody();
  for (const row of rows) {
    const line = body.insertRow();
    for (const column of columns) fillCell(line.insertCell(), row[column.name]);
  }
  return table;
}

/** `n row(s)` */
export function rowCount(count) {
  return `${count} ${count === 1 ? 'row' : 'rows'}`;
}

/** One statement's result: a table when it has columns, else its message or its count. */
export function resultView(result, index, count) {
  const columns = result.columns ?? [];
  const rows = result.rows ?? [];
  const title = count > 1 ? `Statement ${index + 1}` : 'Result';
  const summary =
    columns.length > 0 ? rowCount(rows.length) : (result.message ?? rowCount(result.rowCount));
  const heading = element('h3', '', title, element('span', 'summary', summary));
  const view = element('section', 'result', heading);
  if (columns.length > 0) {
    const shown = rows.slice(0, RESULT_ROWS_SHOWN_MAX);
    view.append(element('div', 'table-scroll', resultTable(columns, shown)));
    if (shown.length < rows.length) {
      const note = `The first ${shown.length} of ${rows.length} rows are shown.`;
      view.append(element('p', 'note', note));
    }
  }
  return view;
}

const WORD = /[\p{L}\p{N}_$]/u;

/**
 * Where a server position ({line, column}: 1-based, columns counting characters) falls in
 * `text`: the UTF-16 offsets `from`..`to` of the word (or the one character) it points at,
 * the line's text and the line up to the column, for the caret. Null past the last line.
 */
export function positionRange(text, position) {
  let start = 0;
  for (let line = 1; line < position.line; line += 1) {
    const newline = text.indexOf('\n', start);
    if (newline < 0) return null;
    start = newline + 1;
  }
  const end = text.indexOf('\n', start);
  const lineText = text.slice(start, end < 0 ? text.length : end);
  const characters = Array.from(lineText);
  const before = characters.slice(0, Math.max(position.column - 1, 0)).join('');
  const rest = characters.slice(Math.max(position.column - 1, 0));
  let length = Math.min(rest.length, 1);
  if (WORD.test(rest[0] ?? '')) {
    length = rest.findIndex((c) => !WORD.test(c));
    if (length < 0) length = rest.length;
  }
  const from = start + before.length;
  return { from, to: from + rest.slice(0, length).join('').length, lineText, before };
}

/** The offending line with a caret under the column; tabs are kept so the caret lines up. */
export function caretLines(range) {
  const padding = Array.from(range.before, (c) => (c === '\t' ? '\t' : ' ')).join('');
  return `${range.lineText}\n${padding}^`;
}

/** The children of the error box: the server's code and message, and where the problem is. */
export function errorView(error, range) {
  const code = typeof error?.code === 'string' ? error.code : 'error';
  const message = error?.message ? String(error.message) : String(error);
  const parts = [element('p', '', element('strong', 'error-code', code), ' ', message)];
  if (error?.position) {
    const { line, column } = error.position;
    parts.push(element('p', 'error-position', `line ${line}, column ${column}`));
    if (range) parts.push(element('pre', 'error-caret', caretLines(range)));
  }
  return parts;
}
