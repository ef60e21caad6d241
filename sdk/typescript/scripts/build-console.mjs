// Copies the SDK's compiled modules (dist/src/*.js, after `npm run build`) into the console
// that `strand serve` embeds (broker/console/sdk/), and writes broker/console/strand-client.js,
// the module the console imports. The copies are committed, so building the server needs no
// Node; test/console-copy.test.ts fails when they differ from a fresh build.
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/src/', import.meta.url));
const consoleDir = fileURLToPath(new URL('../../../broker/console/', import.meta.url));
const target = `${consoleDir}sdk/`;
rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
const modules = readdirSync(dist).filter((name) => name.endsWith('.js')).sort();
for (const name of modules) copyFileSync(`${dist}${name}`, `${target}${name}`);
writeFileSync(
  `${consoleDir}strand-client.js`,
  '// The SDK (sdk/typescript), as the console loads it: written by `npm run build:console`.\n' +
    "export * from './sdk/index.js';\n",
);
console.log(`copied ${modules.join(', ')} to ${target}`);
