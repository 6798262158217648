// The few system calls Node has no API for: mknod (overlay whiteouts, FIFOs),
// extended attributes (opaque directories, file capabilities, cgroup v2
// marks) and flock (making cgroup v2 levels one process at a time, and one
// process fetching a layer or pulling a reference at a time). koffi is
// required on first use, not imported: loading its native addon takes ~8 ms,
// which every test worker would pay for nothing.
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type koffiModule from 'koffi';

interface Libc {
  errno: () => number;
  mknod: (path: string, mode: number, dev: bigint) => number;
  lsetxattr: (path: string, name: string, value: Buffer, size: number, flags: number) => number;
  lgetxattr: (path: string, name: string, value: Buffer, size: number) => number;
  flock: (fd: number, operation: number) => number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (!libc) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof koffiModule;
    const lib = koffi.load('libc.so.6');
    libc = {
      errno: () => koffi.errno(),
      mknod: lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)') as Libc['mknod'],
      lsetxattr: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)') as Libc['lsetxattr'],
      lgetxattr: lib.func('long lgetxattr(const char *path, const char *name, void *value, size_t size)') as Libc['lgetxattr'],
      flock: lib.func('int flock(int fd, int operation)') as Libc['flock'],
    };
  }
  return libc;
}

const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
const LOCK_EX = 2;
const LOCK_NB = 4;
const EINTR = 4;
const EWOULDBLOCK = 11;
const ENODATA = 61;
const ENOTSUP = 95;

export class SyscallError extends Error {
  readonly errno: number;
  readonly syscall: string;
  constructor(syscall: string, errno: number, path: string) {
    super(`${syscall}(${path}) failed: errno ${errno}`);
    this.syscall = syscall;
    this.errno = errno;
  }
}

/** The overlay whiteout: a character device 0:0 (allowed unprivileged since Linux 5.8). */
export function mkWhiteout(path: string): void {
  if (load().mknod(path, S_IFCHR, 0n) !== 0) throw new SyscallError('mknod', load().errno(), path);
}

export function mkFifo(path: string, mode: number): void {
  if (load().mknod(path, S_IFIFO | (mode & 0o777), 0n) !== 0) throw new SyscallError('mknod', load().errno(), path);
}

/** Sets an xattr on the path itself, never on a symlink's target. */
export function setXattr(path: string, name: string, value: Buffer): void {
  if (load().lsetxattr(path, name, value, value.length, 0) !== 0) throw new SyscallError('lsetxattr', load().errno(), path);
}

/** The xattr's value, or undefined when absent or unsupported by the filesystem. */
export function getXattr(path: string, name: string): Buffer | undefined {
  const buf = Buffer.alloc(256);
  const n = load().lgetxattr(path, name, buf, buf.length);
  if (n < 0) {
    const errno = load().errno();
    if (errno === ENODATA || errno === ENOTSUP) return undefined;
    throw new SyscallError('lgetxattr', errno, path);
  }
  return buf.subarray(0, n);
}

/**
 * Runs fn holding an exclusive flock on path (a file or directory, cgroupfs included), blocking
 * until it is free. The lock goes with the descriptor, so a process that dies holding it frees it.
 */
export function withFileLock<T>(path: string, fn: () => T): T {
  const fd = openSync(path, 'r');
  try {
    while (load().flock(fd, LOCK_EX) !== 0) {
      const errno = load().errno();
      if (errno !== EINTR) throw new SyscallError('flock', errno, path);
    }
    return fn();
  } finally {
    closeSync(fd);
  }
}

/** Takes an exclusive flock on an open descriptor if nobody holds one: true when taken. Never blocks. */
export function tryLock(fd: number, path: string): boolean {
  for (;;) {
    if (load().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const errno = load().errno();
    if (errno === EWOULDBLOCK) return false;
    if (errno !== EINTR) throw new SyscallError('flock', errno, path);
  }
}
