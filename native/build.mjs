#!/usr/bin/env node
// Builds the native runtime from every native/*.c with a C compiler (no node-gyp, no install script).
//
//   node native/build.mjs              this machine's binary, native/build/vtc-runtime: a source
//                                      checkout, or an installed package on an architecture with
//                                      no prebuilt binary (src/runtime/native.ts runs this on first use)
//   node native/build.mjs --prebuilt   the binaries the npm package ships (run by `npm pack`):
//                                      native/prebuilt/linux-<arch>/vtc-runtime for every TARGETS
//                                      entry, static and stripped, the foreign one cross-compiled
//
// Which binary a process uses is decided in one place: src/runtime/native.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readSync, closeSync, readdirSync, statSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const runtimeBinary = join(here, 'build', 'vtc-runtime');

/**
 * What the package ships, by Node's process.arch. A prebuilt binary is static (it runs on any
 * Linux of its architecture, whatever its C library) and built by Debian's GNU toolchains: the
 * native compiler for the host's architecture, a cross compiler for the other
 * (gcc-aarch64-linux-gnu + libc6-dev-arm64-cross on x86-64; gcc-x86-64-linux-gnu + libc6-dev-amd64-cross on arm64).
 */
export const TARGETS = {
  x64: { cross: 'x86_64-linux-gnu-gcc', elfMachine: 62, debian: 'gcc-x86-64-linux-gnu libc6-dev-amd64-cross' },
  arm64: { cross: 'aarch64-linux-gnu-gcc', elfMachine: 183, debian: 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross' },
};

export function prebuiltBinary(arch) {
  return join(here, 'prebuilt', `linux-${arch}`, 'vtc-runtime');
}

/** Thrown with code NO_COMPILER (exit status 3 as a script) or COMPILE_FAILED (1). */
class BuildError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const FLAGS = ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-Wno-format-truncation'];

function sources() {
  return readdirSync(here).filter((f) => f.endsWith('.c') || f.endsWith('.h')).sort();
}

/** Compiles every native/*.c to `out` (atomically: readers never see a half-written binary). */
function compile(cc, out, extra) {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync(cc, [...FLAGS, ...extra, '-o', tmp, ...sources().filter((f) => f.endsWith('.c')).map((f) => join(here, f))], { stdio: 'pipe' });
  } catch (err) {
    rmSync(tmp, { force: true });
    if (err.code === 'ENOENT') throw new BuildError('NO_COMPILER', `no C compiler "${cc}" on PATH`);
    const output = `${err.stderr ?? ''}${err.stdout ?? ''}`.trim() || err.message;
    throw new BuildError('COMPILE_FAILED', `${cc} failed:\n${output.split('\n').slice(0, 30).join('\n')}`);
  }
  renameSync(tmp, out);
}

/** True when a source file is newer than the binary (or it does not exist). */
function stale(binary) {
  if (!existsSync(binary)) return true;
  const built = statSync(binary).mtimeMs;
  return sources().some((f) => statSync(join(here, f)).mtimeMs > built);
}

/** This machine's binary, built when missing or older than a source file. */
export function buildNative({ quiet = false } = {}) {
  if (!stale(runtimeBinary)) return runtimeBinary;
  const cc = process.env.CC || 'cc';
  // Linked statically when the C library allows it (Debian's libc6-dev ships libc.a): every
  // sandbox, exec and file copy starts this binary, and a static one skips the dynamic loader
  // (~0.3 ms per start). Without libc.a (e.g. Fedora without glibc-static) it is linked dynamically.
  try {
    compile(cc, runtimeBinary, ['-static']);
  } catch (err) {
    if (err.code !== 'COMPILE_FAILED') throw err;
    compile(cc, runtimeBinary, []);
  }
  if (!quiet) console.error(`built ${runtimeBinary}`);
  return runtimeBinary;
}

/** The ELF header's machine and whether the file asks for a dynamic loader (a PT_INTERP segment). */
export function elfInfo(path) {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 || head[5] !== 1) throw new Error(`${path} is not a little-endian 64-bit ELF file`);
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    let dynamic = false;
    for (let i = 0; i < phnum; i++) if (table.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) dynamic = true;
    return { machine: head.readUInt16LE(18), dynamic };
  } finally {
    closeSync(fd);
  }
}

/** The binaries the package ships: every target, static and stripped, checked for their architecture. */
export function buildPrebuilt({ quiet = false } = {}) {
  for (const [arch, target] of Object.entries(TARGETS)) {
    const cc = arch === process.arch ? process.env.CC || 'cc' : target.cross;
    const out = prebuiltBinary(arch);
    try {
      compile(cc, out, ['-static', '-s']);
    } catch (err) {
      const fix = arch === process.arch ? 'apt-get install gcc libc6-dev' : `apt-get install ${target.debian}`;
      throw new BuildError(err.code, `building the prebuilt linux-${arch} runtime: ${err.message}\n(needs a static C library for ${arch}; Debian: ${fix})`);
    }
    const elf = elfInfo(out);
    if (elf.machine !== target.elfMachine || elf.dynamic) {
      rmSync(out, { force: true });
      throw new BuildError('COMPILE_FAILED', `${cc} made a ${elf.dynamic ? 'dynamically linked' : 'static'} binary for ELF machine ${elf.machine}; linux-${arch} needs a static one for machine ${target.elfMachine}`);
    }
    if (!quiet) console.error(`built ${out} (${Math.round(statSync(out).size / 1024)} KiB, static)`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    if (process.argv.includes('--prebuilt')) buildPrebuilt();
    else buildNative();
  } catch (err) {
    console.error(`vitest-environment-container: ${err.message}`);
    process.exit(err.code === 'NO_COMPILER' ? 3 : 1);
  }
}
