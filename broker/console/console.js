// The console page: logging in and the session, the catalog, the SQL editor and its results,
// and the connection's state. The page is an ordinary client of the public API through the
// SDK (strand-client.js, built from sdk/typescript); the live panel is live-panel.js, and
// render.js draws values, results and errors.

import { createClient, StrandError } from './strand-client.js';
import { LivePanel } from './live-panel.js';
import { element, errorView, positionRange, resultView } from './render.js';

// sessionStorage: a reload stays logged in, closing the tab logs out, other tabs see nothing.
const TOKEN_KEY = 'strand.console.token';
const USER_KEY = 'strand.console.user';
const SQL_KEY = 'strand.console.sql';

const byId = (id) => document.getElementById(id);
const editor = byId('sql');

const live = new LivePanel({
  table: byId('live-table'),
  status: byId('live-status'),
  count: byId('live-count'),
  lastSeq: byId('live-last-seq'),
  error: byId('live-error'),
  sql: byId('live-sql'),
  stop: byId('stop-live'),
});

let client;
let stopWatchingState;

function showConnectionState(state) {
  const shown = byId('connection-state');
  shown.textContent = state;
  shown.dataset.state = state;
}

function showView(loggedIn) {
  byId('login-view').hidden = loggedIn;
  byId('app-view').hidden = !loggedIn;
  byId('logout').hidden = !loggedIn;
  byId('user-name').hidden = !loggedIn;
}

/** Use `token` from now on: a client of its own, the app in view, the catalog loaded. */
function startSession(token, user) {
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(USER_KEY, user);
  client = createClient({ url: location.origin, auth: { token } });
  showConnectionState(client.state);
  stopWatchingState = client.onStateChange(showConnectionState);
  // Open the WebSocket now, so the state shown is the connection's, before any live query.
  client.connect();
  byId('user-name').textContent = user;
  showView(true);
  editor.value = sessionStorage.getItem(SQL_KEY) ?? editor.value;
  editor.focus();
  loadCatalog();
}

/** Back to the login form, with `message` shown there if given. */
function endSession(message) {
  live.stop();
  live.clear();
  stopWatchingState?.();
  client?.close();
  client = undefined;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
  showConnectionState('closed');
  byId('catalog').replaceChildren();
  byId('results').replaceChildren();
  byId('sql-error').hidden = true;
  showLoginError(message);
  showView(false);
  byId('username').focus();
}

function showLoginError(message) {
  byId('login-error').textContent = message ?? '';
  byId('login-error').hidden = !message;
}

/** A token's end (expired, or its user dropped) shows as `unauthorized`: log in again. */
function endedSession(error) {
  if (!(error instanceof StrandError) || error.code !== 'unauthorized') return false;
  endSession(`Session ended: ${error.message}`);
  return true;
}

async function logIn(event) {
  event.preventDefault();
  const username = byId('username').value;
  const password = byId('password').value;
  const submit = event.submitter ?? byId('login-form').querySelector('button');
  submit.disabled = true;
  showLoginError(undefined);
  // This client only trades the password for a token: the session's client holds the
  // token, so the password is not kept in memory for reconnects.
  const exchange = createClient({ url: location.origin, auth: { username, password } });
  try {
    const token = await exchange.login();
    byId('password').value = '';
    startSession(token, username);
  } catch (error) {
    showLoginError(error?.message ? String(error.message) : String(error));
  } finally {
    exchange.close();
    submit.disabled = false;
  }
}

/** Quote a name that would not survive unquoted (SQL folds unquoted names to lower case). */
function sqlName(name) {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

async function loadCatalog() {
  const session = client;
  const catalog = byId('catalog');
  catalog.setAttribute('aria-busy', 'true');
  try {
    const [namespaces, tables, topics] =
      await session.query('SHOW NAMESPACES; SHOW TABLES; SHOW TOPICS');
    if (session === client) {
      catalog.replaceChildren(catalogView(namespaces.rows, tables.rows, topics.rows));
    }
  } catch (error) {
    if (session === client && !endedSession(error)) {
      const problem = `The catalog could not be read: ${error?.message ?? error}`;
      catalog.replaceChildren(element('p', 'error', problem));
    }
  } finally {
    catalog.removeAttribute('aria-busy');
  }
}

/** Namespaces, each with its tables (buttons that put a SELECT in the editor) and topics. */
function catalogView(namespaces, tables, topics) {
  if (namespaces.length === 0) {
    return element('p', 'note', 'No namespaces yet. Try CREATE NAMESPACE app;');
  }
  const list = element('ul', 'namespaces');
  for (const { namespace } of namespaces) {
    const items = element('ul', 'objects');
    for (const table of tables.filter((t) => t.namespace === namespace)) {
      const button = element('button', 'object', element('span', 'object-name', table.table),
        element('span', `badge badge-${String(table.type).toLowerCase()}`, table.type));
      button.type = 'button';
      button.dataset.sql = `SELECT * FROM ${sqlName(namespace)}.${sqlName(table.table)}`;
      button.title = button.dataset.sql;
      items.append(element('li', '', button));
    }
    for (const topic of topics.filter((t) => t.namespace === namespace)) {
      const one = Number(topic.partitions) === 1;
      const partitions = `${topic.partitions} ${one ? 'partition' : 'partitions'}`;
      const item = element('li', 'object topic', element('span', 'object-name', topic.topic),
        element('span', 'badge badge-topic', 'TOPIC'));
      item.title = topic.sources ? `${partitions}, from ${topic.sources}` : partitions;
      items.append(item);
    }
    if (items.children.length === 0) items.append(element('li', 'note', 'empty'));
    list.append(element('li', 'namespace', element('h3', '', namespace), items));
  }
  return list;
}

function pickTable(event) {
  const button = event.target.closest('button[data-sql]');
  if (button === null) return;
  editor.value = button.dataset.sql;
  sessionStorage.setItem(SQL_KEY, editor.value);
  editor.focus();
}

function hideSqlError() {
  byId('sql-error').hidden = true;
  byId('sql-error').replaceChildren();
}

/** The server's code and message; where the error has a position, that place is selected. */
function showSqlError(error, sql) {
  const box = byId('sql-error');
  const range = error?.position ? positionRange(sql, error.position) : null;
  box.replaceChildren(...errorView(error, range));
  box.hidden = false;
  if (range !== null && editor.value === sql) {
    editor.focus();
    editor.setSelectionRange(range.from, range.to);
  }
}

async function run() {
  const sql = editor.value;
  const session = client;
  if (session === undefined || sql.trim() === '') return;
  const button = byId('run');
  button.disabled = true;
  hideSqlError();
  const results = byId('results');
  results.setAttribute('aria-busy', 'true');
  const started = performance.now();
  try {
    const answers = await session.query(sql);
    if (session !== client) return; // logged out meanwhile
    const took = `${Math.round(performance.now() - started)} ms`;
    const statements = answers.length === 1 ? 'statement' : 'statements';
    results.replaceChildren(
      ...answers.map((answer, i) => resultView(answer, i, answers.length)),
      element('p', 'note', `${answers.length} ${statements} in ${took}`),
    );
    // DDL changes the catalog; re-reading it is one cheap request.
    if (/\b(create|drop|alter)\b/i.test(sql)) loadCatalog();
  } catch (error) {
    if (session !== client) return;
    results.replaceChildren();
    if (!endedSession(error)) showSqlError(error, sql);
  } finally {
    results.removeAttribute('aria-busy');
    button.disabled = false;
  }
}

function runLive() {
  // One SELECT: a trailing `;` (as the editor's text often ends) is not a second statement.
  const sql = editor.value.trim().replace(/;\s*$/, '');
  if (client === undefined || sql === '') return;
  hideSqlError();
  live.start(client, sql);
}

function onEditorKey(event) {
  if (event.key !== 'Enter' || !(event.ctrlKey || event.metaKey)) return;
  event.preventDefault();
  if (event.shiftKey) runLive();
  else run();
}

byId('login-form').addEventListener('submit', logIn);
byId('logout').addEventListener('click', () => endSession(undefined));
byId('catalog').addEventListener('click', pickTable);
byId('refresh-catalog').addEventListener('click', () => loadCatalog());
byId('run').addEventListener('click', run);
byId('run-live').addEventListener('click', runLive);
byId('stop-live').addEventListener('click', () => live.stop());
editor.addEventListener('keydown', onEditorKey);
editor.addEventListener('input', () => sessionStorage.setItem(SQL_KEY, editor.value));

const savedToken = sessionStorage.getItem(TOKEN_KEY);
if (savedToken) startSession(savedToken, sessionStorage.getItem(USER_KEY) ?? '');
else showView(false);
