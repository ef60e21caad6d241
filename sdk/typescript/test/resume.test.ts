/**
 * Live queries through failures, randomized (seed: `STRAND_SDK_SEED`; rounds:
 * `STRAND_SDK_ROUNDS`): the server killed with SIGKILL and restarted while writers go on, the
 * socket cut at random moments, mid-snapshot included, and a client that stops reading until
 * the server disconnects it as a slow consumer. Afterwards the materialized rows
 * equal a fresh query, and the changes applied never went back in `_seq` (no duplicate);
 * any gap would leave the rows unequal.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Change, Client } from '../src/index.js';
import { Proxy, StrandProcess, adminClient, canonical, random, sleep, waitFor } from './harness.js';

const SEED = Number(process.env.STRAND_SDK_SEED ?? Date.now() % 1_000_000);
const ROUNDS = Number(process.env.STRAND_SDK_ROUNDS ?? 20);
console.log(`# resume tests: STRAND_SDK_SEED=${SEED} STRAND_SDK_ROUNDS=${ROUNDS}`);

type Item = { id: bigint; v: number; _seq: string };

/** Writes random inserts, updates and deletes until stopped; failures (server down) are fine:
 *  what committed is what a fresh query shows. */
function writer(client: Client, table: string, rand: () => number): { stop: () => Promise<void> } {
  let running = true;
  const done = (async () => {
    while (running) {
      const id = Math.floor(rand() * 60);
      const choice = rand();
      const sql =
        choice < 0.4
          ? `INSERT INTO ${table} (id, v) VALUES (${id}, ${Math.floor(rand() * 10)})`
          : choice < 0.8
            ? `UPDATE ${table} SET v = v + 1 WHERE id = ${id}`
            : `DELETE FROM ${table} WHERE id = ${id}`;
      await client.query(sql).catch(() => undefined);
      await sleep(rand() * 8);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Records every change and checks that applied `_seq`s only go up between resets (a top-K
 *  window's message may move several rows at one `_seq`: `sameSeq` allows that). */
function recorder(sameSeq = false): { onChange: (rows: Item[], change: Change<Item>) => void; problems: string[] } {
  let last = 0n;
  const problems: string[] = [];
  return {
    problems,
    onChange: (_rows, change) => {
      const seq = BigInt(change.seq ?? '0');
      if (change.type === 'reset' || change.type === 'snapshot' || change.type === 'restore') {
        last = seq;
        return;
      }
      if (seq < last || (seq === last && !sameSeq)) problems.push(`${change.type} at ${seq} after ${last}`);
      last = seq;
    },
  };
}

async function settled(client: Client, live: { rows: Item[] }, sql: string): Promise<void> {
  const fresh = async () => {
    const [result] = await client.query(sql).catch(() => [undefined]);
    return result ? canonical(result.rows) : 'unavailable';
  };
  let expected = '';
  await waitFor(
    async () => {
      expected = await fresh();
      return canonical(live.rows) === expected;
    },
    () => `live rows\n${canonical(live.rows)}\n!= query\n${expected}`,
    30_000,
  );
}

test('the server killed and restarted under writes: rows equal a fresh query', { timeout: 180_000 }, async () => {
  const rand = random(SEED);
  const server = await StrandProcess.start();
  try {
    const admin = adminClient(server.url);
    await admin.query("CREATE NAMESPACE app; CREATE TABLE app.items (id BIGINT PRIMARY KEY, v INT) WITH (TYPE = 'SHARED')");
    const watcher = adminClient(server.url);
    const check = recorder();
    const live = watcher.live<Item>('SELECT id, v FROM app.items WHERE v < 8', check.onChange, { batchSize: 7 });
    const writing = writer(admin, 'app.items', rand);
    for (let round = 0; round < ROUNDS; round++) {
      await sleep(50 + rand() * 250);
      await server.kill();
      await sleep(rand() * 200);
      await server.restart();
    }
    await sleep(200);
    await writing.stop();
    await settled(admin, live, 'SELECT id, v, _seq FROM app.items WHERE v < 8');
    assert.deepEqual(check.problems, []);
    live.unsubscribe();
    watcher.close();
    admin.close();
  } finally {
    await server.stop();
  }
});

test('the socket cut at random moments, mid-snapshot too: rows equal a fresh query', { timeout: 180_000 }, async () => {
  const rand = random(SEED + 1);
  const server = await StrandProcess.start(['--fsync', 'never']);
  const proxy = await Proxy.start(() => server.port);
  try {
    const admin = adminClient(server.url);
    await admin.query("CREATE NAMESPACE app; CREATE TABLE app.items (id BIGINT PRIMARY KEY, v INT) WITH (TYPE = 'SHARED')");
    const values = Array.from({ length: 300 }, (_, i) => `(${i}, ${i % 10})`).join(', ');
    await admin.query(`INSERT INTO app.items (id, v) VALUES ${values}`);
    const writing = writer(admin, 'app.items', rand);
    let midSnapshotCuts = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const watcher = adminClient(proxy.url);
      const check = recorder();
      let batches = 0;
      const cutAt = 1 + Math.floor(rand() * 5);
      const live = watcher.live<Item>(
        'SELECT id, v FROM app.items',
        (rows, change) => {
          check.onChange(rows, change);
          // The first cut lands inside the first snapshot: after a batch that has more.
          if (change.type === 'snapshot' && ++batches === cutAt) {
            midSnapshotCuts += 1;
            proxy.cut();
          }
        },
        { batchSize: 1 + Math.floor(rand() * 20) },
      );
      for (let cut = 0; cut < 3; cut++) {
        await sleep(rand() * 60);
        proxy.cut();
      }
      await settled(admin, live, 'SELECT id, v, _seq FROM app.items');
      assert.deepEqual(check.problems, [], `round ${round}`);
      live.unsubscribe();
      watcher.close();
    }
    await writing.stop();
    // 300 rows in batches of at most 20: a cut after batch 1 to 5 is inside the snapshot.
    assert.ok(midSnapshotCuts > 0, 'at least one round cut the first snapshot half-way');
    admin.close();
  } finally {
    await proxy.stop();
    await server.stop();
  }
});

test('a top-K window through socket cuts under writes: rows equal a fresh query', { timeout: 180_000 }, async () => {
  const rand = random(SEED + 2);
  const server = await StrandProcess.start(['--fsync', 'never']);
  const proxy = await Proxy.start(() => server.port);
  try {
    const admin = adminClient(server.url);
    await admin.query("CREATE NAMESPACE app; CREATE TABLE app.items (id BIGINT PRIMARY KEY, v INT) WITH (TYPE = 'SHARED')");
    const values = Array.from({ length: 60 }, (_, i) => `(${i}, ${i % 10})`).join(', ');
    await admin.query(`INSERT INTO app.items (id, v) VALUES ${values}`);
    const writing = writer(admin, 'app.items', rand);
    const watcher = adminClient(proxy.url);
    const check = recorder(true);
    const live = watcher.live<Item>('SELECT id, v FROM app.items ORDER BY v DESC LIMIT 5 OFFSET 2', check.onChange);
    for (let cut = 0; cut < ROUNDS; cut++) {
      await sleep(rand() * 100);
      proxy.cut();
    }
    await writing.stop();
    await settled(admin, live, 'SELECT id, v, _seq FROM app.items ORDER BY v DESC LIMIT 5 OFFSET 2');
    assert.deepEqual(check.problems, []);
    assert.equal(live.rows.length, 5);
    live.unsubscribe();
    watcher.close();
    admin.close();
  } finally {
    await proxy.stop();
    await server.stop();
  }
});

test('a slow consumer is disconnected by the server, reconnects and resumes', { timeout: 120_000 }, async () => {
  const server = await StrandProcess.start(['--fsync', 'never']);
  const proxy = await Proxy.start(() => server.port);
  try {
    const admin = adminClient(server.url);
    await admin.query("CREATE NAMESPACE app; CREATE TABLE app.items (id BIGINT PRIMARY KEY, v INT, pad TEXT) WITH (TYPE = 'SHARED')");
    const watcher = adminClient(proxy.url);
    const states: string[] = [];
    watcher.onStateChange((state) => states.push(state));
    const check = recorder();
    const live = watcher.live<Item>('SELECT id, v, pad FROM app.items', check.onChange);
    await waitFor(() => live.lastSeq !== undefined, () => 'snapshot');
    // The client stops reading while about 24 MB of changes are written: more than the
    // sockets buffer and the server queues for one connection (2 MiB), so it is cut off.
    proxy.stall();
    const pad = 'p'.repeat(1_000);
    for (let batch = 0; batch < 24; batch++) {
      const rows = Array.from({ length: 1_000 }, (_, i) => `(${batch * 1_000 + i}, ${i % 7}, '${pad}')`).join(', ');
      await admin.query(`INSERT INTO app.items (id, v, pad) VALUES ${rows}`);
    }
    await sleep(500);
    proxy.unstall();
    await waitFor(() => states.includes('reconnecting'), () => `states ${states}`);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /strand_slow_consumer_disconnects_total [1-9]/, 'the server cut it as a slow consumer');
    await settled(admin, live, 'SELECT id, v, pad, _seq FROM app.items');
    assert.deepEqual(check.problems, []);
    assert.equal(live.rows.length, 24_000);
    live.unsubscribe();
    watcher.close();
    admin.close();
  } finally {
    await proxy.stop();
    await server.stop();
  }
});
