// Escape attempts from inside a sandbox (test/security/probe.py), and what the host must still look like after.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { Container } from '../../src/index.ts';
import { busyboxRootfs, tarOf } from '../image/helpers/host.ts';
import { writeImage } from '../image/helpers/oci-builder.ts';
import type { TarEntrySpec } from '../image/helpers/tar-builder.ts';
import { tarArchive } from '../image/helpers/tar-builder.ts';

export const PROBE = readFileSync(fileURLToPath(new URL('./probe.py', import.meta.url)), 'utf8');

/** The probes run on the host's python3 (image 'host'): without it these tests cannot attempt anything. */
export const hasPython = spawnSync('python3', ['-c', 'import ctypes']).status === 0;

export interface ProbeResult { ok: boolean; errno: string | null; detail: unknown }

/** Runs one probe by exec in the sandbox (as its root unless user is given). */
export async function probe(c: Container, name: string, args: string[] = [], user?: string): Promise<ProbeResult> {
  const r = await c.exec(['python3', '-c', PROBE, name, ...args], user ? { user } : {});
  if (r.exitCode !== 0) throw new Error(`probe ${name} failed to run (exit ${r.exitCode}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as ProbeResult;
}

/** The same probe as a sandbox's main process: the filter and the rest must hold there too, not only for exec. */
export function probeCommand(name: string, args: string[] = []): string[] {
  return ['python3', '-c', PROBE, name, ...args];
}

/** Capability bits of a /proc/<pid>/status hex mask. */
export function capabilityBits(hex: string): bigint {
  return BigInt(`0x${hex}`);
}

/** A status field of a host process. */
export function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line?.split(':')[1]?.trim() ?? '';
}

/** Busybox applets the security tests use, beyond busyboxRootfs's few. */
const APPLETS = ['sleep', 'stat', 'touch', 'dd', 'df', 'tail', 'echo', 'mkdir', 'rm', 'ln', 'mkfifo', 'chmod', 'chown', 'env', 'pwd', 'readlink', 'uniq', 'wc', 'sed', 'cut', 'grep', 'true', 'find', 'sort'];

/** An OCI layout in dir: a busybox root (files owned by the image's root) plus, optionally, a layer of given entries. */
export function busyboxImage(dir: string, extra: TarEntrySpec[] = []): string {
  const root = join(dir, 'rootfs');
  busyboxRootfs(root);
  for (const applet of APPLETS) execFileSync('ln', ['-sf', 'busybox', join(root, 'bin', applet)]);
  const image = join(dir, 'image');
  writeImage(image, [tarOf(root), ...(extra.length ? [tarArchive(extra)] : [])], { config: { Cmd: ['sleep', '100000'], Env: ['PATH=/bin'] } });
  return image;
}

/**
 * Whether this kernel can idmap a mount of path's file system (what makes a granted mount's
 * root-owned files the sandbox root's). ext4, xfs and btrfs can on any kernel that has idmapped
 * mounts at all; tmpfs since Linux 6.3; overlayfs and 9p (the cgroup2 lane guest's /var/tmp) not:
 * there a granted mount is bound as it is.
 */
export function idmappable(path: string): boolean {
  const [major = 0, minor = 0] = release().split('.').map(Number);
  const tmpfs = major > 6 || (major === 6 && minor >= 3);
  const type = statfsSync(path).type;
  return [0xef53, 0x58465342, 0x9123683e].includes(type) || (type === 0x01021994 && tmpfs);
}

/** Runs a shell script in the sandbox; it must succeed (its stderr is in the failure). Returns its stdout. */
export async function sh(c: Container, script: string): Promise<string> {
  const r = await c.exec(['sh', '-c', script]);
  expect(r.exitCode, `${script}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

