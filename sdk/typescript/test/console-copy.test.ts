/**
 * The console that `strand serve` embeds (broker/console/sdk/) holds this SDK's compiled
 * modules; they are committed so that building the server needs no Node. This fails when
 * they differ from the build this test run made: run `npm run build:console`.
 */

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

test('the console embeds the current build of the SDK', () => {
  const dist = fileURLToPath(new URL('../src/', import.meta.url));
  const copy = fileURLToPath(new URL('../../../../broker/console/sdk/', import.meta.url));
  const built = readdirSync(dist).filter((name) => name.endsWith('.js')).sort();
  assert.deepEqual(readdirSync(copy).sort(), built, 'the same modules');
  for (const name of built) {
    assert.equal(
      readFileSync(`${copy}${name}`, 'utf8'),
      readFileSync(`${dist}${name}`, 'utf8'),
      `broker/console/sdk/${name} is stale: run npm run build:console in sdk/typescript`,
    );
  }
});
