/**
 * The console and the SDK in a real Chromium (playwright-core driving Debian's
 * `/usr/bin/chromium`, or `CHROMIUM`), against a real `strand serve`:
 * - the console: log in, SQL results, an error at its position, a live table whose rows are
 *   marked as they are inserted, updated and deleted, and that goes on by itself after the
 *   server restarts;
 * - the SDK as a page loads it: BIGINT exact, and IndexedDB persistence (a reloaded page
 *   shows its rows with the server down, then resumes when it is back).
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { chromium, type Browser, type Page } from 'playwright-core';

import { ADMIN_PASSWORD, StrandProcess, adminClient } from '../test/harness.js';

let browser: Browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
});

after(async () => {
  await browser.close();
});

/** A page that fails the test on any script error or console error. */
async function openPage(url: string, bypassCSP = false): Promise<{ page: Page; problems: string[] }> {
  // The console's own test keeps its Content-Security-Policy; the SDK's evaluates test code
  // in the page, which the policy (rightly) forbids.
  const page = await (await browser.newContext({ bypassCSP, viewport: { width: 1280, height: 800 } })).newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  await page.goto(url);
  return { page, problems };
}

test('the console: log in, query, errors at their position, a live table across a restart', { timeout: 120_000 }, async () => {
  const server = await StrandProcess.start();
  try {
    const admin = adminClient(server.url);
    await admin.query(
      "CREATE NAMESPACE app; CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT) WITH (TYPE = 'SHARED'); " +
        "INSERT INTO app.tickets (id, title) VALUES (1, 'Jam'), (2, 'Printer'), (9007199254740993, 'Big')",
    );
    const { page, problems } = await openPage(`${server.url}/`);

    await page.fill('#username', 'admin');
    await page.fill('#password', 'wrong');
    await page.click('#login-form button[type=submit]');
    await page.locator('#login-error').filter({ hasText: 'invalid user name or password' }).waitFor();
    await page.fill('#password', ADMIN_PASSWORD);
    await page.click('#login-form button[type=submit]');
    await page.locator('#connection-state', { hasText: 'live' }).waitFor();
    await page.locator('#catalog', { hasText: 'tickets' }).waitFor();

    await page.fill('#sql', 'SELECT id, title FROM app.tickets');
    await page.click('#run');
    await page.locator('#results table tbody tr').nth(2).waitFor();
    assert.match(await page.locator('#results').innerText(), /9007199254740993/, 'BIGINT exact in the results');

    await page.fill('#sql', 'SELECT id,\n  nope FROM app.tickets');
    await page.click('#run');
    const error = page.locator('#sql-error');
    await error.waitFor();
    assert.match(await error.innerText(), /nope/);
    assert.match(await error.innerText(), /line 2, column 3/);
    const selected = await page.$eval('#sql', (e) => {
      const area = e as HTMLTextAreaElement;
      return area.value.slice(area.selectionStart, area.selectionEnd);
    });
    assert.equal(selected.trim(), 'nope', 'the editor selects the error');

    await page.fill('#sql', 'SELECT id, title FROM app.tickets');
    await page.click('#run-live');
    await page.locator('#live-table tbody tr').nth(2).waitFor();
    await admin.query("INSERT INTO app.tickets (id, title) VALUES (3, 'Door')");
    await page.locator('#live-table tr[data-key="3"].row-inserted').waitFor();
    await admin.query("UPDATE app.tickets SET title = 'Jam 2' WHERE id = 1");
    await page.locator('#live-table tr[data-key="1"].row-updated', { hasText: 'Jam 2' }).waitFor();
    await admin.query('DELETE FROM app.tickets WHERE id = 2');
    await page.locator('#live-table tr[data-key="2"].row-deleted').waitFor();
    await page.locator('#live-table tr[data-key="2"]').waitFor({ state: 'detached' });
    assert.match(await page.locator('#live-last-seq').innerText(), /\d{10,}/, '_seq shown');
    // The test's artifact (docs/console.png is a copy of one).
    await admin.query("UPDATE app.tickets SET title = 'Jam (fixed)' WHERE id = 1");
    await page.locator('#live-table tr[data-key="1"].row-updated', { hasText: 'Jam (fixed)' }).waitFor();
    const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}console.png` });

    await server.kill();
    await page.locator('#connection-state', { hasText: 'reconnecting' }).waitFor();
    await server.restart();
    await page.locator('#connection-state', { hasText: 'live' }).waitFor({ timeout: 30_000 });
    await adminClient(server.url).query("INSERT INTO app.tickets (id, title) VALUES (4, 'After restart')");
    await page.locator('#live-table tr[data-key="4"]', { hasText: 'After restart' }).waitFor({ timeout: 30_000 });
    // A refused reconnect logs a failed WebSocket in the console; that is expected here.
    assert.deepEqual(
      problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(p)),
      [],
    );
    await page.close();
  } finally {
    await server.stop();
  }
});

test('the SDK in a page: BIGINT exact, IndexedDB rows shown offline, then a resume', { timeout: 120_000 }, async () => {
  const server = await StrandProcess.start();
  try {
    const admin = adminClient(server.url);
    await admin.query("CREATE NAMESPACE app; CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'SHARED')");
    await admin.query("INSERT INTO app.notes (id, body) VALUES ($1, 'big'), (1, 'one')", ['9007199254740993']);
    const { page, problems } = await openPage(`${server.url}/`, true);
    const script = (password: string) => `
      const sdk = await import('/console/strand-client.js');
      const client = sdk.createClient({ url: location.origin, auth: { username: 'admin', password: ${JSON.stringify(password)} } });
      window.changes = [];
      window.live = client.live('SELECT id, body FROM app.notes', (rows, change) => window.changes.push(change.type),
        { persist: sdk.indexedDbPersistence('strand-test') });
      window.client = client;`;
    const run = (code: string) => page.evaluate(`(async () => { ${code} })()`);

    const [exact] = (await page.evaluate(`(async () => {
      const sdk = await import('/console/strand-client.js');
      const client = sdk.createClient({ url: location.origin, auth: { username: 'admin', password: ${JSON.stringify(ADMIN_PASSWORD)} } });
      const [result] = await client.query('SELECT id FROM app.notes WHERE body = $1', ['big']);
      return [result.rows[0].id === 9007199254740993n];
    })()`)) as boolean[];
    assert.equal(exact, true, 'BIGINT arrives as the exact bigint in the browser');

    await run(script(ADMIN_PASSWORD));
    await page.waitForFunction('window.live.lastSeq !== undefined && window.live.rows.length === 2');
    await page.waitForTimeout(200); // the store is written shortly after each change
    await run('window.live.unsubscribe(); window.client.close();');

    await admin.query("INSERT INTO app.notes (id, body) VALUES (2, 'two')");
    // A reloaded page (its modules loaded: a real one would have them cached), then offline.
    await page.reload();
    await run("await import('/console/strand-client.js');");
    await server.kill();
    await run(script(ADMIN_PASSWORD));
    await page.waitForFunction('window.changes[0] === "restore"');
    assert.equal(await page.evaluate('window.live.rows.length'), 2, 'the stored rows, with the server down');
    assert.equal(await page.evaluate('String(window.live.rows.find((r) => r.body === "big").id)'), '9007199254740993');
    await server.restart();
    await page.waitForFunction('window.live.rows.length === 3', undefined, { timeout: 30_000 });
    assert.ok(!(await page.evaluate('window.changes.includes("reset")')), 'resumed, not re-downloaded');
    await run('window.live.unsubscribe(); window.client.close();');
    assert.deepEqual(
      problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource|Failed to fetch/.test(p)),
      [],
    );
    await page.close();
  } finally {
    await server.stop();
  }
});
