#!/usr/bin/env node
// After `tsc --emitDeclarationOnly`: the types of both builds.
// - dist/**/*.d.ts describe the ES modules (dist/**/*.js); tsc keeps the sources' ".ts" in
//   relative imports, which are made to name the .js files a consumer's TypeScript resolves.
// - A .d.cts twin of each describes the CommonJS build (dist/**/*.cjs) for `require()`: with
//   "type": "module", a .d.ts would tell a CommonJS consumer the package is ESM only.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dist = join(import.meta.dirname, '..', 'dist');
// './x.ts', '../y/z.ts' in `from '…'`, `import('…')` and `declare module '…'`
const RELATIVE_TS = /(['"])(\.\.?\/[^'"]*?)\.ts\1/g;

let files = 0;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const path = join(entry.parentPath, entry.name);
  const text = readFileSync(path, 'utf8');
  writeFileSync(path, text.replace(RELATIVE_TS, '$1$2.js$1'));
  writeFileSync(path.replace(/\.d\.ts$/, '.d.cts'), text.replace(RELATIVE_TS, '$1$2.cjs$1'));
  files++;
}
if (!files) throw new Error(`no declarations in ${dist}: run tsc --emitDeclarationOnly first`);
