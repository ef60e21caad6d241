/**
 * `--http-tls`: the SDK talks to `https://` and `wss://`, trusting the server's own
 * certificate (`<data-dir>/tls/cert.pem`) the way Node is told to trust one,
 * `NODE_EXTRA_CA_CERTS`, which Node reads at start: so the client runs in a child process.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ADMIN_PASSWORD, StrandProcess } from './harness.js';

test('over https and wss with the server certificate trusted', { timeout: 60_000 }, async () => {
  const server = await StrandProcess.start(['--http-tls', '--fsync', 'never']);
  try {
    const script = fileURLToPath(new URL('./tls-client.js', import.meta.url));
    const run = (extraCa: string | undefined) => {
      const env: NodeJS.ProcessEnv = { ...process.env, STRAND_URL: `https://localhost:${server.port}`, STRAND_PASSWORD: ADMIN_PASSWORD };
      if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa;
      else delete env.NODE_EXTRA_CA_CERTS;
      return spawnSync(process.execPath, ['--experimental-websocket', script], { env, encoding: 'utf8', timeout: 30_000 });
    };
    const trusted = run(join(server.dataDir, 'tls', 'cert.pem'));
    assert.equal(trusted.status, 0, `${trusted.stdout}\n${trusted.stderr}`);
    assert.match(trusted.stdout, /query over https: 9007199254740993/);
    assert.match(trusted.stdout, /live over wss: one, two/);
    const untrusted = run(undefined);
    assert.notEqual(untrusted.status, 0, 'without the certificate the client cannot connect');
    assert.match(untrusted.stdout + untrusted.stderr, /network/);
  } finally {
    await server.stop();
  }
});
