/**
 * A live query on a three-member cluster (`urls`) whose member dies under it: its WebSocket
 * starts on the leader, which is killed with SIGKILL while a writer goes on; the socket
 * reconnects to the next member and the query resumes there by `_seq`. The killed member is
 * restarted and the one now serving the socket killed in turn. The writer's client also has
 * every member and finds the leader by `not_leader` answers. Afterwards the live rows equal a
 * SELECT on a surviving member (`_seq`s included) and what the acknowledged writes leave; the
 * server sent no change twice (its `_seq`s only go up, across members) and the SDK applied
 * none twice.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient, type Change, type Client, type WebSocketConstructor } from '../src/index.js';
import { StrandCluster } from './cluster-harness.js';
import { ADMIN_PASSWORD, canonical, sleep, waitFor, type StrandProcess } from './harness.js';

type Item = { id: bigint; v: number; _seq: string };

const SELECT = 'SELECT id, v, _seq FROM app.items';
const KILLS = 2;

function clusterClient(urls: string[], webSocket?: WebSocketConstructor): Client {
  return createClient({
    urls,
    auth: { username: 'admin', password: ADMIN_PASSWORD },
    backoff: { initialMs: 50, maxMs: 500 },
    ...(webSocket ? { webSocket } : {}),
  });
}

/** A WebSocket that records where each socket was opened and the `_seq` of every change the
 *  server sent, before the SDK sees (and might drop) it. */
function watchedWebSocket(): { webSocket: WebSocketConstructor; opened: string[]; changeSeqs: bigint[] } {
  const opened: string[] = [];
  const changeSeqs: bigint[] = [];
  const Base = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket!;
  class Watched extends Base {
    constructor(url: string) {
      super(url);
      opened.push(url);
      this.addEventListener('message', (event: MessageEvent) => {
        const message = JSON.parse(String(event.data)) as { type: string; seq?: string; rows?: { _seq: string }[] };
        if (message.type === 'change') changeSeqs.push(BigInt(message.seq ?? message.rows?.[0]?._seq ?? '0'));
      });
    }
  }
  return { webSocket: Watched as WebSocketConstructor, opened, changeSeqs };
}

/** Runs `sql` until the cluster acknowledges it (each statement here may run twice: an INSERT
 *  whose first try landed answers `duplicate_key`). */
async function acknowledged(client: Client, sql: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await client.query(sql);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'duplicate_key') return;
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

/** Inserts ids 1, 2, ..., sets v = 1 on every third id and deletes every fifth, until stopped.
 *  Returns what the acknowledged statements leave, by id. */
function writer(client: Client): { stop: () => Promise<Map<bigint, number>>; written: () => number } {
  const model = new Map<bigint, number>();
  let running = true;
  let id = 0n;
  const done = (async () => {
    while (running) {
      id += 1n;
      await acknowledged(client, `INSERT INTO app.items (id, v) VALUES (${id}, 0)`);
      model.set(id, 0);
      if (id % 3n === 0n) {
        await acknowledged(client, `UPDATE app.items SET v = 1 WHERE id = ${id - 1n}`);
        if (model.has(id - 1n)) model.set(id - 1n, 1);
      }
      if (id % 5n === 0n) {
        await acknowledged(client, `DELETE FROM app.items WHERE id = ${id - 2n}`);
        model.delete(id - 2n);
      }
      await sleep(5);
    }
  })();
  return {
    written: () => Number(id),
    stop: async () => {
      running = false;
      await done;
      return model;
    },
  };
}

/** The member whose address the socket opened last. */
function serving(cluster: StrandCluster, opened: string[]): StrandProcess {
  const last = opened[opened.length - 1]!;
  const member = cluster.members.find((m) => last === `${m.url.replace(/^http/, 'ws')}/v1/ws`);
  assert.ok(member, `the socket opened on ${last}, not a member`);
  return member;
}

test('a live query resumes on another member when its member is killed', { timeout: 240_000 }, async () => {
  const cluster = await StrandCluster.start(3);
  const clients: Client[] = [];
  try {
    const leader = await cluster.leader();
    const others = cluster.members.filter((member) => member !== leader);
    const admin = clusterClient([leader.url]);
    clients.push(admin);
    await admin.query("CREATE NAMESPACE app; CREATE TABLE app.items (id BIGINT PRIMARY KEY, v INT) WITH (TYPE = 'SHARED')");
    await cluster.caughtUp(cluster.members);

    // The subscriber's socket starts on the leader; the writer's requests on a follower.
    const watched = watchedWebSocket();
    const subscriber = clusterClient([leader.url, ...others.map((m) => m.url)], watched.webSocket);
    const writes = clusterClient([...others.map((m) => m.url), leader.url]);
    clients.push(subscriber, writes);
    let applied = 0n;
    const problems: string[] = [];
    const onChange = (_rows: Item[], change: Change<Item>) => {
      const seq = BigInt(change.seq ?? '0');
      if (change.type === 'snapshot' || change.type === 'reset') {
        applied = seq;
        return;
      }
      if (seq <= applied) problems.push(`${change.type} at ${seq} after ${applied}`);
      applied = seq;
    };
    const live = subscriber.live<Item>(SELECT, onChange);
    await waitFor(() => live.lastSeq !== undefined, () => 'no snapshot');

    const run = writer(writes);
    for (let kill = 0; kill < KILLS; kill++) {
      const before = run.written();
      await waitFor(() => run.written() >= before + 20, () => `writes stalled at ${run.written()}`, 60_000);
      const victim = serving(cluster, watched.opened);
      const openedBefore = watched.opened.length;
      await victim.kill();
      await waitFor(
        () => watched.opened.length > openedBefore && serving(cluster, watched.opened) !== victim && subscriber.state === 'live',
        () => `the socket did not move off the killed member: ${watched.opened.join(' ')}`,
        30_000,
      );
      const during = run.written();
      await waitFor(() => run.written() >= during + 20, () => `no writes after the kill: ${run.written()}`, 60_000);
      // Back before the next kill, so two of three members stay up.
      await victim.restart();
      await cluster.leader(cluster.members);
    }
    const model = await run.stop();

    const survivor = serving(cluster, watched.opened);
    const reader = clusterClient([survivor.url]);
    clients.push(reader);
    await cluster.caughtUp(cluster.members);
    let expected = '';
    await waitFor(
      async () => {
        const [result] = await reader.query<Item>(SELECT);
        expected = canonical(result!.rows);
        return canonical(live.rows) === expected;
      },
      () => `live rows\n${canonical(live.rows)}\n!= the member's\n${expected}`,
      30_000,
    );
    const byId = new Map(live.rows.map((row) => [row.id, row.v]));
    assert.deepEqual(byId, model, 'the live rows are what the acknowledged writes leave');
    assert.deepEqual(problems, [], 'the SDK applied no change twice or out of order');
    const sent = watched.changeSeqs;
    const backwards = sent.filter((seq, i) => i > 0 && seq <= sent[i - 1]!);
    assert.deepEqual(backwards, [], 'the members sent no change twice');
    assert.ok(watched.opened.length >= 1 + KILLS, `sockets opened: ${watched.opened.join(' ')}`);
    console.log(`cluster test: ${sent.length} changes, ${model.size} rows; sockets opened: ${watched.opened.join(' ')}`);
    live.unsubscribe();
  } finally {
    for (const client of clients) client.close();
    await cluster.stop();
  }
});
