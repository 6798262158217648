#!/usr/bin/env node
// Builds native/build/vtc-runtime with the system C compiler (no node-gyp).
// Runs at `npm install` (prepare) and before tests; rebuilds only when a source
// file is newer than the binary. Exported for the runtime, which calls it on
// first use so that a checkout without a build still works.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const runtimeBinary = join(here, 'build', 'vtc-runtime');

function missingCompiler(cc) {
  return new Error(`vitest-environment-container: no C compiler found ("${cc}"). ` +
    'Install one (Debian/Ubuntu: apt-get install gcc libc6-dev; Fedora: dnf install gcc) or set CC.');
}

export function buildNative({ quiet = false } = {}) {
  const sources = readdirSync(here).filter((f) => f.endsWith('.c') || f.endsWith('.h'));
  const newest = Math.max(...sources.map((f) => statSync(join(here, f)).mtimeMs));
  if (existsSync(runtimeBinary) && statSync(runtimeBinary).mtimeMs >= newest) return runtimeBinary;
  const cc = process.env.CC || 'cc';
  mkdirSync(join(here, 'build'), { recursive: true });
  const tmp = `${runtimeBinary}.${process.pid}.tmp`;
  const args = ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-Wno-format-truncation', '-o', tmp,
    ...sources.filter((f) => f.endsWith('.c')).map((f) => join(here, f))];
  // Linked statically when the C library allows it (Debian's libc6-dev ships libc.a): every
  // sandbox, exec and file copy starts this binary, and a static one skips the dynamic loader
  // (~0.3 ms per start). Without libc.a (e.g. Fedora without glibc-static) it is linked dynamically.
  let linked = false;
  try {
    execFileSync(cc, [...args, '-static'], { stdio: 'pipe' });
    linked = true;
  } catch (err) {
    if (err.code === 'ENOENT') throw missingCompiler(cc);
  }
  if (!linked) {
    try {
      execFileSync(cc, args, { stdio: quiet ? 'pipe' : 'inherit' });
    } catch (err) {
      if (err.code === 'ENOENT') throw missingCompiler(cc);
      throw new Error(`vitest-environment-container: building native/vtc-runtime failed: ${err.stderr ?? err.message}`);
    }
  }
  renameSync(tmp, runtimeBinary); // atomic: concurrent builders never see a half-written binary
  if (!quiet) console.error(`built ${runtimeBinary}`);
  return runtimeBinary;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    buildNative();
  } catch (err) {
    console.error(err.message);
    // At install time a missing compiler must not break `npm install`: the
    // runtime tries again on first use and explains what is missing then.
    if (!process.argv.includes('--install')) process.exit(1);
  }
}
