// Test helpers that touch the host: temporary dirs, third-party tools, overlay
// mounts inside a private mount namespace (they vanish with it), tree snapshots.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { afterAll } from 'vitest';
import { removeTree } from '../../../src/image/fs-util.ts';

export const isRoot = process.geteuid?.() === 0;
export const NODE = process.execPath;

const created: string[] = [];
// Temporary trees go after each test file (removeTree copes with read-only dirs);
// VTC_KEEP_TEST_DIRS=1 keeps them for a post-mortem.
afterAll(() => {
  if (!process.env.VTC_KEEP_TEST_DIRS) for (const dir of created.splice(0)) removeTree(dir);
});

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(`${tmpdir()}/vtc-${prefix}-`);
  created.push(dir);
  return dir;
}

export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

export function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd, input: opts.input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A tiny root filesystem: busybox, a shell, passwd/group. */
export function busyboxRootfs(root: string): void {
  mkdirSync(`${root}/bin`, { recursive: true });
  mkdirSync(`${root}/etc`, { recursive: true });
  cpSync('/bin/busybox', `${root}/bin/busybox`);
  for (const tool of ['sh', 'ls', 'cat', 'id', 'test']) symlinkSync('busybox', `${root}/bin/${tool}`);
  writeFileSync(`${root}/etc/passwd`, 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nsvc:x:999:999::/:/bin/false\n');
  writeFileSync(`${root}/etc/group`, 'root:x:0:\napp:x:1000:\nsvc:x:999:\nwheel:x:10:app\naudio:x:29:app,svc\n');
}

/**
 * Mounts the layers read-only with overlay in a new mount namespace and runs a
 * shell script with the merged tree at $ROOT. Returns stdout.
 */
export function inOverlay(lowerDirs: string[], overlayOptions: string[], script: string, opts: { rootless?: boolean } = {}): string {
  const opt = [`lowerdir=${lowerDirs.join(':')}`, ...overlayOptions].join(',');
  const inner = `set -e; ROOT=$(mktemp -d); mount -t overlay overlay -o '${opt}' "$ROOT"; export ROOT; ${script}`;
  const unshare = opts.rootless ? ['-Urm'] : ['-m', '--propagation', 'private'];
  return run('unshare', [...unshare, 'sh', '-c', inner]);
}

/** Every path under dir with its type, mode, size and content hash: compare before and after. */
export function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string, rel: string): void => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    let extra = '';
    if (st.isSymbolicLink()) extra = readlinkSync(p);
    else if (st.isFile()) extra = createHash('sha1').update(readFileSync(p)).digest('hex');
    out.push(`${rel} ${st.mode.toString(8)} ${st.size} ${extra}`);
    if (st.isDirectory()) for (const name of readdirSync(p).sort()) walk(`${p}/${name}`, `${rel}/${name}`);
  };
  walk(dir, '.');
  return out;
}

/** The directory as an uncompressed tar made by GNU tar (numeric owner, root-owned). */
export function tarOf(root: string): Buffer {
  return execFileSync('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
}
