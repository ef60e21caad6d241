/**
 * The client half of tls.test.ts, run in its own Node process (so `NODE_EXTRA_CA_CERTS`
 * applies): SQL over `STRAND_URL` (https), then a live query over wss. Prints what it saw;
 * exits non-zero on any failure.
 */

import { createClient } from '../src/index.js';

const client = createClient({
  url: process.env.STRAND_URL ?? '',
  auth: { username: 'admin', password: process.env.STRAND_PASSWORD ?? '' },
  backoff: { initialMs: 20, maxMs: 200 },
});
try {
  await client.query(
    "CREATE NAMESPACE app; CREATE TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT) WITH (TYPE = 'SHARED'); " +
      "INSERT INTO app.notes (id, body) VALUES (9007199254740993, 'one')",
  );
  const [result] = await client.query<{ id: bigint }>('SELECT id FROM app.notes');
  console.log(`query over https: ${result?.rows[0]?.id}`);
  const rows = await new Promise<string[]>((resolve, reject) => {
    const live = client.live<{ body: string }>(
      'SELECT id, body FROM app.notes',
      (current) => {
        if (current.length === 1 && live.lastSeq !== undefined) {
          client.query("INSERT INTO app.notes (id, body) VALUES (2, 'two')").catch(reject);
        }
        if (current.length === 2) resolve(current.map((row) => row.body).sort());
      },
      { onError: reject },
    );
    setTimeout(() => reject(new Error(`no live rows; state ${client.state}`)), 20_000);
  });
  console.log(`live over wss: ${rows.join(', ')}`);
  client.close();
} catch (error) {
  console.log(`failed: ${(error as { code?: string }).code ?? ''} ${(error as Error).message}`);
  client.close();
  process.exit(1);
}
