// Runs a small shell script in fresh namespaces made by util-linux `unshare`.
// Everything it mounts lives in its own mount namespace and vanishes with it;
// the one host directory it gets ($1) is removed afterwards.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ProbeOutcome {
  /** The script's exit code (unshare itself fails with 1 and says why on stderr). */
  status: number | null;
  stderr: string;
  /** `unshare` is not installed: nothing could be probed. */
  noUnshare: boolean;
}

export function probeInNamespaces(unshareFlags: string[], script: string): ProbeOutcome {
  const dir = mkdtempSync(join(tmpdir(), 'vtc-doctor-'));
  try {
    const r = spawnSync('unshare', [...unshareFlags, '--', 'sh', '-c', script, 'sh', dir], { encoding: 'utf8', timeout: 5000 });
    const noUnshare = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    return { status: r.status, stderr: (r.stderr ?? r.error?.message ?? '').trim(), noUnshare };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The flags that give the namespaces a sandbox of this user gets: rootless adds a user namespace mapping us to root. */
export function sandboxLikeFlags(rootless: boolean): string[] {
  return rootless ? ['--user', '--map-root-user', '--mount'] : ['--mount'];
}
