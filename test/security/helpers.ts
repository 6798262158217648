// Escape attempts from inside a sandbox (test/security/probe.py), and what the host must still look like after.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
const APPLETS = ['sleep', 'stat', 'touch', 'dd', 'df', 'tail', 'echo', 'mkdir', 'rm'];

/** An OCI layout in dir: a busybox root (files owned by the image's root) plus, optionally, a layer of given entries. */
export function busyboxImage(dir: string, extra: TarEntrySpec[] = []): string {
  const root = join(dir, 'rootfs');
  busyboxRootfs(root);
  for (const applet of APPLETS) execFileSync('ln', ['-sf', 'busybox', join(root, 'bin', applet)]);
  const image = join(dir, 'image');
  writeImage(image, [tarOf(root), ...(extra.length ? [tarArchive(extra)] : [])], { config: { Cmd: ['sleep', '100000'], Env: ['PATH=/bin'] } });
  return image;
}
