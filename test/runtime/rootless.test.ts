// The same sandbox suite, run by an unprivileged user: a user namespace maps
// them to root inside, /etc/subuid ranges (through newuidmap) map the rest.
// Limits need cgroup delegation, which this lane does not have: it checks that
// asking for them is a clear error, not a silent downgrade.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { isRoot } from '../helpers/host.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function unprivilegedUser(): { uid: number; gid: number; name: string } {
  const r = spawnSync('id', ['-u', 'vtc-rootless']);
  if (r.status === 0) {
    return { uid: Number(r.stdout.toString()), gid: Number(spawnSync('id', ['-g', 'vtc-rootless']).stdout.toString()), name: 'vtc-rootless' };
  }
  return { uid: 65534, gid: 65534, name: 'nobody' };
}

function readableBy(uid: number, gid: number, path: string): boolean {
  return spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'test', '-r', path]).status === 0;
}

test.runIf(isRoot && !process.env.VTC_ROOTLESS_LANE)('the sandbox suite passes as an unprivileged user', () => {
  const user = unprivilegedUser();
  const home = mkdtempSync(join(tmpdir(), 'vtc-rootless-'));
  chmodSync(home, 0o777);
  let root = repo;
  // A checkout under a private home (CI clones into one) is out of the user's reach: copy it.
  if (!readableBy(user.uid, user.gid, join(repo, 'package.json'))) {
    root = join(home, 'repo');
    for (const part of ['package.json', 'tsconfig.json', 'vitest.config.ts', 'src', 'test', 'native', 'node_modules']) {
      if (existsSync(join(repo, part))) cpSync(join(repo, part), join(root, part), { recursive: true, verbatimSymlinks: true });
    }
    spawnSync('chmod', ['-R', 'a+rX', home]);
  }
  try {
    const nodeBin = dirname(process.execPath);
    const r = spawnSync('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--',
      'env', '-i', `HOME=${home}`, `USER=${user.name}`, `PATH=${nodeBin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`, 'VTC_ROOTLESS_LANE=1', 'VTC_LEAK_CYCLES=200',
      join(root, 'node_modules', '.bin', 'vitest'), 'run', '--configLoader', 'native', '--root', root,
      'test/runtime/sandbox.test.ts', 'test/runtime/lifecycle.test.ts', 'test/runtime/limits-rootless.test.ts', 'test/runtime/network.test.ts'], { cwd: root, encoding: 'utf8', timeout: 240_000 });
    const output = `${r.stdout}\n${r.stderr}`;
    expect(r.status, output).toBe(0);
    expect(output).toMatch(/Tests\s+.*\d+ passed/);
    expect(output).not.toMatch(/\d+ failed/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}, 300_000);

