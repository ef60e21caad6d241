/**
 * Live queries against a real server: snapshot then changes, filter move-in and move-out,
 * many subscriptions on one WebSocket, and errors as rejected promises / `onError`.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { StrandError, type Change } from '../src/index.js';
import { StrandProcess, adminClient, canonical, waitFor } from './harness.js';

let server: StrandProcess;

before(async () => {
  server = await StrandProcess.start(['--fsync', 'never']);
  const admin = adminClient(server.url);
  await admin.query(
    'CREATE NAMESPACE app; CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT, n INT) ' +
      "WITH (TYPE = 'SHARED')",
  );
});

after(async () => {
  await server.stop();
});

type Ticket = { id: bigint; title: string; n: number; _seq: string };

async function queryRows(sql: string): Promise<Record<string, unknown>[]> {
  const [result] = await adminClient(server.url).query(sql);
  return result?.rows ?? [];
}

test('a snapshot in batches, then every change, in _seq order', async () => {
  const admin = adminClient(server.url);
  await admin.query("INSERT INTO app.tickets (id, title, n) VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)");
  const sql = 'SELECT id, title, n FROM app.tickets WHERE id < 100';
  const changes: Change<Ticket>[] = [];
  const live = admin.live<Ticket>(sql, (_rows, change) => changes.push(change), { batchSize: 2 });
  await waitFor(() => live.lastSeq !== undefined, () => 'the snapshot completes');
  assert.equal(canonical(live.rows), canonical(await queryRows(`SELECT id, title, n, _seq FROM app.tickets WHERE id < 100`)));
  assert.deepEqual(
    changes.map((c) => c.type),
    ['snapshot', 'snapshot'],
    'one event per batch of two rows',
  );
  assert.equal(typeof live.rows[0]?.id, 'bigint');
  assert.equal(typeof live.lastSeq, 'string');

  await admin.query("INSERT INTO app.tickets (id, title, n) VALUES (4, 'd', 4)");
  await admin.query("UPDATE app.tickets SET title = 'b2' WHERE id = 2");
  await admin.query('DELETE FROM app.tickets WHERE id = 1');
  const expected = 'SELECT id, title, n, _seq FROM app.tickets WHERE id < 100';
  await waitFor(async () => canonical(live.rows) === canonical(await queryRows(expected)), () => canonical(live.rows));
  const live_changes = changes.slice(2);
  assert.deepEqual(
    live_changes.map((c) => c.type),
    ['insert', 'update', 'delete'],
  );
  assert.equal(live_changes[1]?.oldRow?.title, 'b');
  assert.equal(live_changes[2]?.row?.title, 'a', 'a delete carries the row as it was held');
  const seqs = live_changes.map((c) => BigInt(c.seq ?? '0'));
  assert.ok(seqs.every((seq, i) => i === 0 || seq > (seqs[i - 1] ?? 0n)), 'strictly increasing _seq');
  assert.equal(live.lastSeq, live_changes[2]?.seq);
  live.unsubscribe();
  admin.close();
});

test('rows move in and out of the filter as inserts and deletes', async () => {
  const admin = adminClient(server.url);
  await admin.query("INSERT INTO app.tickets (id, title, n) VALUES (200, 'x', 1)");
  const changes: Change<Ticket>[] = [];
  const live = admin.live<Ticket>('SELECT id, n FROM app.tickets WHERE n > 5', (_rows, change) => changes.push(change));
  await waitFor(() => live.lastSeq !== undefined, () => 'snapshot');
  const before = live.rows.length;
  await admin.query('UPDATE app.tickets SET n = 10 WHERE id = 200');
  await waitFor(() => live.rows.some((r) => r.id === 200n), () => 'row 200 enters');
  assert.equal(changes.at(-1)?.type, 'insert');
  await admin.query('UPDATE app.tickets SET n = 1 WHERE id = 200');
  await waitFor(() => !live.rows.some((r) => r.id === 200n), () => 'row 200 leaves');
  assert.equal(changes.at(-1)?.type, 'delete');
  assert.equal(live.rows.length, before);
  live.unsubscribe();
  admin.close();
});

test('parameters bind a live query once; a bigint parameter is exact', async () => {
  const admin = adminClient(server.url);
  await admin.query('CREATE TABLE app.chat (id BIGINT PRIMARY KEY, conversation BIGINT, body TEXT)');
  await admin.query("INSERT INTO app.chat (id, conversation, body) VALUES (1, 9007199254740993, 'mine'), (2, 7, 'other')");
  const live = admin.live<{ id: bigint; body: string }>(
    'SELECT id, body FROM app.chat WHERE conversation = $1',
    () => undefined,
    { params: [9007199254740993n] },
  );
  await waitFor(() => live.lastSeq !== undefined, () => 'snapshot');
  assert.deepEqual(live.rows.map((r) => r.body), ['mine']);
  await admin.query("INSERT INTO app.chat (id, conversation, body) VALUES (3, 7, 'x'), (4, 9007199254740993, 'mine too')");
  await waitFor(() => live.rows.length === 2, () => JSON.stringify(live.rows.map((r) => r.body)));
  assert.deepEqual(live.rows.map((r) => r.body).sort(), ['mine', 'mine too']);
  live.unsubscribe();
  admin.close();
});

test('a top-K window: rows enter and leave together, at the write\'s seq', async () => {
  const admin = adminClient(server.url);
  await admin.query("CREATE TABLE app.board (id BIGINT PRIMARY KEY, score INT) WITH (TYPE = 'SHARED')");
  await admin.query('INSERT INTO app.board (id, score) VALUES (1, 10), (2, 20), (3, 30), (4, 40)');
  const changes: Change<{ id: bigint; score: number }>[] = [];
  const sizes: number[] = [];
  const sql = 'SELECT id, score FROM app.board ORDER BY score DESC LIMIT 3';
  const live = admin.live<{ id: bigint; score: number }>(sql, (rows, change) => {
    changes.push(change);
    sizes.push(rows.length);
  });
  await waitFor(() => live.lastSeq !== undefined, () => 'snapshot');
  assert.deepEqual(live.rows.map((r) => r.id), [4n, 3n, 2n], 'the snapshot in the query\'s order');
  // Player 1 jumps to the top: it enters and player 2 leaves, in one message.
  await admin.query('UPDATE app.board SET score = 99 WHERE id = 1');
  await waitFor(() => live.rows.some((r) => r.id === 1n), () => 'player 1 enters');
  const moved = changes.slice(-2);
  assert.deepEqual(moved.map((c) => c.type).sort(), ['delete', 'insert']);
  assert.equal(moved[0]?.seq, moved[1]?.seq, 'both at the write\'s seq');
  assert.equal(live.lastSeq, moved[0]?.seq);
  assert.ok(sizes.slice(-2).every((n) => n === 3), 'the application never sees a half window');
  const fresh = await queryRows(`SELECT id, score, _seq FROM app.board ORDER BY score DESC LIMIT 3`);
  assert.equal(canonical(live.rows), canonical(fresh));
  live.unsubscribe();
  admin.close();
});

test('asOfSeq starts from a past snapshot and replays what followed', async () => {
  const admin = adminClient(server.url);
  await admin.query("CREATE TABLE app.audit (id BIGINT PRIMARY KEY, v INT) WITH (TYPE = 'SHARED')");
  await admin.query('INSERT INTO app.audit (id, v) VALUES (1, 1), (2, 2)');
  const [then] = await admin.query('SELECT MAX(_seq) AS s FROM app.audit');
  const asOfSeq = String(then?.rows[0]?.s);
  await admin.query('UPDATE app.audit SET v = 10 WHERE id = 1');
  await admin.query('DELETE FROM app.audit WHERE id = 2');
  const types: string[] = [];
  const live = admin.live<{ id: bigint; v: number }>('SELECT id, v FROM app.audit', (_rows, c) => types.push(c.type), { asOfSeq });
  await waitFor(() => live.rows.length === 1 && live.rows[0]?.v === 10, () => JSON.stringify(live.rows.map((r) => [String(r.id), r.v])));
  assert.deepEqual(types, ['snapshot', 'update', 'delete'], 'the past snapshot, then what followed');
  live.unsubscribe();
  admin.close();
});

test('many live queries share one WebSocket', async () => {
  let sockets = 0;
  const Counting = class extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets += 1;
    }
  };
  const admin = adminClient(server.url, { webSocket: Counting });
  await admin.query('CREATE TABLE app.counts (id BIGINT PRIMARY KEY, k INT)');
  const lives = Array.from({ length: 30 }, (_, k) =>
    admin.live<{ id: bigint; k: number }>(`SELECT id, k FROM app.counts WHERE k = ${k}`, () => undefined),
  );
  const values = Array.from({ length: 120 }, (_, i) => `(${i}, ${i % 30})`).join(', ');
  await admin.query(`INSERT INTO app.counts (id, k) VALUES ${values}`);
  await admin.query('UPDATE app.counts SET k = 0 WHERE id < 10');
  for (const [k, live] of lives.entries()) {
    const sql = `SELECT id, k, _seq FROM app.counts WHERE k = ${k}`;
    await waitFor(async () => canonical(live.rows) === canonical(await queryRows(sql)), () => `k = ${k}`);
  }
  assert.equal(sockets, 1);
  lives.forEach((live) => live.unsubscribe());
  admin.close();
});

test('errors reject with the server code, message and position', async () => {
  const admin = adminClient(server.url);
  await assert.rejects(admin.query('SELECT id FROM app.tickets WHERE'), (error: unknown) => {
    assert.ok(error instanceof StrandError);
    assert.equal(error.code, 'syntax_error');
    assert.equal(error.status, 400);
    assert.ok(error.message.length > 0);
    assert.equal(error.position?.line, 1);
    return true;
  });
  const wrong = adminClient(server.url, { auth: { username: 'admin', password: 'wrong' } });
  await assert.rejects(wrong.query('SELECT 1'), (error: unknown) => error instanceof StrandError && error.code === 'unauthorized');
  const refused = await new Promise<StrandError>((resolve) => {
    admin.live('SELECT nope FROM app.tickets', () => undefined, { onError: resolve });
  });
  assert.equal(refused.code, 'unknown_column');
  assert.match(refused.message, /nope/);
  admin.close();
});

test('BIGINT values past 2^53 arrive exactly', async () => {
  const admin = adminClient(server.url);
  await admin.query('CREATE TABLE app.big (id BIGINT PRIMARY KEY, n BIGINT)');
  await admin.query('INSERT INTO app.big (id, n) VALUES ($1, $2)', [9007199254740993n, '-9007199254740993']);
  const [result] = await admin.query<{ id: bigint; n: bigint }>('SELECT id, n FROM app.big');
  assert.equal(result?.rows[0]?.id, 9007199254740993n);
  assert.equal(result?.rows[0]?.n, -9007199254740993n);
  const live = admin.live<{ id: bigint; n: bigint }>('SELECT id, n FROM app.big', () => undefined);
  await waitFor(() => live.rows.length === 1, () => 'snapshot');
  assert.equal(live.rows[0]?.id, 9007199254740993n);
  await admin.query('UPDATE app.big SET n = $1 WHERE id = $2', [9007199254740995n, 9007199254740993n]);
  await waitFor(() => live.rows[0]?.n === 9007199254740995n, () => String(live.rows[0]?.n));
  live.unsubscribe();
  admin.close();
  const strings = adminClient(server.url, { int64: 'string' });
  const [text] = await strings.query<{ id: string }>('SELECT id FROM app.big');
  assert.equal(text?.rows[0]?.id, '9007199254740993');
});
