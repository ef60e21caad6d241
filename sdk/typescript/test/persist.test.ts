/**
 * Persistence and the fresh-snapshot paths: a live query that comes back (a reloaded page)
 * shows its stored rows before the network answers, then resumes from the stored `_seq`
 * without downloading the result again; with `localStorage` the same. When the history after
 * the stored `_seq` is gone (`resume_too_old`), it takes a fresh snapshot and replaces its
 * rows with it.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  localStoragePersistence,
  memoryPersistence,
  type Change,
  type KeyValueStorage,
  type Persistence,
} from '../src/index.js';
import { Proxy, StrandProcess, adminClient, canonical, sleep, waitFor } from './harness.js';

type Note = { id: bigint; body: string; _seq: string };

async function comesBackOffline(persist: Persistence): Promise<void> {
  const server = await StrandProcess.start(['--fsync', 'never']);
  const proxy = await Proxy.start(() => server.port);
  try {
    const admin = adminClient(server.url);
    await admin.query("CREATE NAMESPACE app; CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'SHARED')");
    await admin.query("INSERT INTO app.notes (id, body) VALUES (1, 'one'), (2, 'two'), (9007199254740993, 'big')");
    const sql = 'SELECT id, body FROM app.notes';

    const first = adminClient(proxy.url);
    const visit = first.live<Note>(sql, () => undefined, { persist });
    await waitFor(() => visit.lastSeq !== undefined, () => 'first snapshot');
    const stored = canonical(visit.rows);
    visit.unsubscribe();
    first.close();

    // While the page is away: changes of every kind.
    await admin.query("INSERT INTO app.notes (id, body) VALUES (3, 'three')");
    await admin.query("UPDATE app.notes SET body = 'two!' WHERE id = 2");
    await admin.query('DELETE FROM app.notes WHERE id = 1');

    // The page comes back with the network down: the stored rows at once.
    proxy.offline = true;
    const second = adminClient(proxy.url);
    const changes: Change<Note>[] = [];
    const again = second.live<Note>(sql, (_rows, change) => changes.push(change), { persist });
    await waitFor(() => changes.length > 0, () => 'restored rows');
    assert.equal(changes[0]?.type, 'restore');
    assert.equal(canonical(again.rows), stored, 'the rows of the last visit');
    assert.equal(again.rows.find((r) => r.body === 'big')?.id, 9007199254740993n, 'BIGINT survives storage');
    await sleep(300);
    assert.equal(second.state, 'connecting', 'still offline');

    // The network returns: a resume from the stored _seq, not a new snapshot.
    proxy.offline = false;
    const [fresh] = await admin.query('SELECT id, body, _seq FROM app.notes');
    await waitFor(() => canonical(again.rows) === canonical(fresh?.rows ?? []), () => canonical(again.rows));
    const kinds = changes.slice(1).map((c) => c.type);
    assert.deepEqual([...kinds].sort(), ['delete', 'insert', 'update'], `resumed, not re-downloaded: ${kinds}`);
    again.unsubscribe();
    second.close();
    admin.close();
  } finally {
    await proxy.stop();
    await server.stop();
  }
}

test('memory persistence: rows before the network, then a resume', { timeout: 60_000 }, async () => {
  await comesBackOffline(memoryPersistence());
});

test('localStorage persistence: the same through Web Storage', { timeout: 60_000 }, async () => {
  const items = new Map<string, string>();
  const storage: KeyValueStorage = {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  };
  await comesBackOffline(localStoragePersistence('test:', storage));
  assert.ok([...items.keys()].every((key) => key.startsWith('test:')));
  assert.equal(items.size, 1);
});

test('resume_too_old: a fresh snapshot replaces the stored rows', { timeout: 90_000 }, async () => {
  // Small segments and a fast retention sweep: a STREAM table's expired history goes quickly.
  const server = await StrandProcess.start(['--segment-bytes', '4096', '--retention-interval-ms', '200']);
  try {
    const admin = adminClient(server.url);
    await admin.query("CREATE NAMESPACE app; CREATE TABLE app.typing (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'STREAM', TTL_SECONDS = 1)");
    const sql = 'SELECT id, body FROM app.typing';
    const persist = memoryPersistence();
    const body = 'x'.repeat(350);
    const insert = (from: number) =>
      admin.query(`INSERT INTO app.typing (id, body) VALUES ${Array.from({ length: 6 }, (_, i) => `(${from + i}, '${body}')`).join(', ')}`);
    await insert(0);
    const first = adminClient(server.url);
    const visit = first.live<Note>(sql, () => undefined, { persist });
    await waitFor(() => visit.lastSeq !== undefined, () => 'first snapshot');
    visit.unsubscribe();
    first.close();

    // Many segments of rows that expire, then new rows; retention removes the old history.
    for (let batch = 1; batch < 12; batch++) await insert(batch * 6);
    await sleep(1_500);
    await insert(1_000);
    await sleep(1_500);

    const second = adminClient(server.url);
    const changes: Change<Note>[] = [];
    const again = second.live<Note>(sql, (_rows, change) => changes.push(change), { persist });
    await waitFor(() => changes.some((c) => c.type === 'reset'), () => `changes: ${changes.map((c) => c.type)}`);
    assert.equal(changes[0]?.type, 'restore');
    // Rows keep expiring (TTL 1 s), so the query is asked again on each poll.
    let expected = '';
    await waitFor(
      async () => {
        const [fresh] = await admin.query('SELECT id, body, _seq FROM app.typing');
        expected = canonical(fresh?.rows ?? []);
        return canonical(again.rows) === expected;
      },
      () => `${canonical(again.rows)}\n!=\n${expected}`,
    );
    again.unsubscribe();
    second.close();
    admin.close();
  } finally {
    await server.stop();
  }
});
