/**
 * Pages of other origins, in a real Chromium: a page served from an origin named by
 * `--cors-origins` loads the SDK from the server, runs SQL and subscribes; a page from an
 * origin not named (same app server, another host name) can neither read an answer nor open
 * the WebSocket.
 */

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';

import { chromium, type Browser } from 'playwright-core';

import { ADMIN_PASSWORD, StrandProcess, adminClient } from '../test/harness.js';

let browser: Browser;
let app: Server;
let appPort = 0;

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  app = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end('<!doctype html><title>an app</title><p>an app on another origin</p>');
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const address = app.address();
  appPort = typeof address === 'object' && address ? address.port : 0;
});

after(async () => {
  await browser.close();
  await new Promise((resolve) => app.close(resolve));
});

test('a named origin may call and subscribe; another may not', { timeout: 60_000 }, async () => {
  const allowed = `http://127.0.0.1:${appPort}`;
  const server = await StrandProcess.start(['--cors-origins', allowed, '--fsync', 'never']);
  try {
    await adminClient(server.url).query(
      "CREATE NAMESPACE app; CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'SHARED'); " +
        "INSERT INTO app.notes (id, body) VALUES (1, 'hello')",
    );
    const strand = server.url;
    const ws = strand.replace('http', 'ws');
    const probe = `(async () => {
      const answer = { fetched: null, socket: null, live: null };
      try {
        const response = await fetch('${strand}/v1/api/sql', { method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Basic ' + btoa('admin:${ADMIN_PASSWORD}') },
          body: JSON.stringify({ sql: 'SELECT body FROM app.notes' }) });
        answer.fetched = (await response.json()).results[0].rows[0].body;
      } catch (error) { answer.fetched = 'refused: ' + error.name; }
      answer.socket = await new Promise((resolve) => {
        const socket = new WebSocket('${ws}/v1/ws');
        socket.onopen = () => { socket.close(); resolve('open'); };
        socket.onerror = () => resolve('refused');
      });
      try {
        const sdk = await import('${strand}/console/strand-client.js');
        const client = sdk.createClient({ url: '${strand}', auth: { username: 'admin', password: '${ADMIN_PASSWORD}' } });
        answer.live = await new Promise((resolve, reject) => {
          client.live('SELECT id, body FROM app.notes', (rows) => { if (rows.length === 1) resolve(rows[0].body); }, { onError: reject });
          setTimeout(() => resolve('no rows'), 5000);
        });
        client.close();
      } catch (error) { answer.live = 'refused: ' + error.name; }
      return answer;
    })()`;
    const context = await browser.newContext();
    const named = await context.newPage();
    await named.goto(`${allowed}/`);
    assert.deepEqual(await named.evaluate(probe), { fetched: 'hello', socket: 'open', live: 'hello' });
    const other = await context.newPage();
    await other.goto(`http://localhost:${appPort}/`);
    const refused = (await other.evaluate(probe)) as Record<string, string>;
    assert.match(refused.fetched ?? '', /^refused/, 'the answer is kept from the page');
    assert.equal(refused.socket, 'refused', 'the upgrade is refused');
    assert.match(refused.live ?? '', /^refused/, 'not even the SDK loads cross-origin');
    await context.close();
  } finally {
    await server.stop();
  }
});
