/**
 * Which address a request goes to when a client has several (`urls`), without a server: a
 * fake `fetch` answers per address. A request moves to the next member only when nothing of
 * it ran or when it only reads, at most once over the list; a write that may have run
 * rejects, and the next request starts past the member that failed. The WebSocket opens on
 * the addresses in turn.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient, StrandError, type WebSocketConstructor } from '../src/index.js';

const A = 'http://a.test';
const B = 'http://b.test';
const C = 'http://c.test';
const OK = { status: 'success', results: [{ columns: [], rows: [], row_count: 1 }] };

type Answer = { status: number; body: unknown } | 'refused' | 'reset';

/** A fetch that answers each address with the next of its scripted answers (default: OK), and
 *  records which addresses were asked. */
function fakeFetch(script: Record<string, Answer[]>): { fetch: typeof fetch; asked: string[] } {
  const asked: string[] = [];
  const fetchImpl = async (input: string | URL | Request): Promise<Response> => {
    const url = new URL(String(input));
    const origin = url.origin;
    asked.push(origin);
    const answer = script[origin]?.shift() ?? { status: 200, body: OK };
    // What Node's fetch throws: the reason is in `cause.code`.
    const failed = (code: string) => new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
    if (answer === 'refused') throw failed('ECONNREFUSED');
    if (answer === 'reset') throw failed('UND_ERR_SOCKET');
    return new Response(JSON.stringify(answer.body), { status: answer.status });
  };
  return { fetch: fetchImpl as typeof fetch, asked };
}

function error503(code: string, extra: Record<string, unknown> = {}): Answer {
  return { status: 503, body: { status: 'error', error: { code, message: code, ...extra } } };
}

function client(fetchImpl: typeof fetch) {
  return createClient({ urls: [A, B, C], auth: { username: 'admin', password: 'pw' }, fetch: fetchImpl });
}

test('createClient takes exactly one of url and urls', () => {
  const auth = { username: 'u', password: 'p' };
  const invalid = (run: () => unknown) =>
    assert.throws(run, (e: unknown) => e instanceof StrandError && e.code === 'invalid_options');
  invalid(() => createClient({ auth }));
  invalid(() => createClient({ url: A, urls: [B], auth }));
  invalid(() => createClient({ urls: [], auth }));
  invalid(() => createClient({ urls: ['a.test:8080'], auth }));
  assert.ok(createClient({ urls: [`${A}/`], auth }));
});

test('a write refused with not_leader or a refused connection moves on, and stays at the one that answered', async () => {
  const { fetch, asked } = fakeFetch({ [A]: ['refused'], [B]: [error503('not_leader')] });
  const strand = client(fetch);
  await strand.query('INSERT INTO app.t VALUES (1)');
  assert.deepEqual(asked, [A, B, C]);
  await strand.query('INSERT INTO app.t VALUES (2)');
  assert.deepEqual(asked.slice(3), [C], 'the next request starts at the member that answered');
});

test('a write that may have run is not sent again, and the next request starts elsewhere', async () => {
  for (const failure of [error503('unavailable'), 'reset' as const]) {
    const { fetch, asked } = fakeFetch({ [A]: [failure] });
    const strand = client(fetch);
    await assert.rejects(strand.query('UPDATE app.t SET v = 1'), (e: StrandError) =>
      e.code === (failure === 'reset' ? 'network' : 'unavailable'),
    );
    assert.deepEqual(asked, [A]);
    await strand.query('UPDATE app.t SET v = 1');
    assert.deepEqual(asked, [A, B]);
  }
});

test('a read moves on after unavailable or a lost connection', async () => {
  const { fetch, asked } = fakeFetch({ [A]: ['reset'], [B]: [error503('unavailable')] });
  await client(fetch).query('SELECT * FROM app.t');
  assert.deepEqual(asked, [A, B, C]);
});

test('a request of several statements is not sent again once one committed', async () => {
  const { fetch, asked } = fakeFetch({ [A]: [error503('not_leader', { statement: 2, committed_statements: 1 })] });
  await assert.rejects(client(fetch).query('INSERT INTO app.t VALUES (1); INSERT INTO app.t VALUES (2)'), /not_leader/);
  assert.deepEqual(asked, [A]);
});

test('one pass over the list, then the last error', async () => {
  const { fetch, asked } = fakeFetch({
    [A]: [error503('not_leader')],
    [B]: [error503('not_leader')],
    [C]: ['refused'],
  });
  const insert = client(fetch).query('INSERT INTO app.t VALUES (1)');
  await assert.rejects(insert, (e: StrandError) => e.code === 'network' && e.notSent === true);
  assert.deepEqual(asked, [A, B, C]);
});

test('errors other than 503 and the network are the answer', async () => {
  const syntax = { status: 'error', error: { code: 'syntax_error', message: 'x' } };
  const { fetch, asked } = fakeFetch({ [A]: [{ status: 400, body: syntax }] });
  await assert.rejects(client(fetch).query('SELEC 1'), /x/);
  assert.deepEqual(asked, [A]);
});

test('the WebSocket opens on each address in turn', async () => {
  const opened: string[] = [];
  // A socket that fails at once, as one to a dead member does.
  class DeadSocket {
    onopen: (() => void) | null = null;
    onclose: (() => void) | null = null;
    onerror: (() => void) | null = null;
    onmessage: (() => void) | null = null;
    readyState = 0;
    constructor(url: string) {
      opened.push(url);
      setTimeout(() => this.onclose?.(), 1);
    }
    send(): void {}
    close(): void {}
  }
  const strand = createClient({
    urls: [A, B, C],
    auth: { username: 'admin', password: 'pw' },
    webSocket: DeadSocket as unknown as WebSocketConstructor,
    backoff: { initialMs: 1, maxMs: 2 },
  });
  strand.connect();
  const deadline = Date.now() + 5_000;
  while (opened.length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  strand.close();
  const [a, b, c] = ['a', 'b', 'c'].map((host) => `ws://${host}.test/v1/ws`);
  assert.deepEqual(opened.slice(0, 5), [a, b, c, a, b]);
});
