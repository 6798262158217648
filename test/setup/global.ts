// What the suite needs from the machine, set up once per run (Vitest's globalSetup),
// so that `npm test` passes on a fresh machine as it does in CI:
// - a private temporary directory for the run (TMPDIR), removed at the end: nothing
//   the tests or the programs they start write there is left in /tmp;
// - sbin directories on PATH (chroot, useradd: a root shell started with su lacks them);
// - as root, the unprivileged user the rootless tests run as: `vtc-rootless`, with
//   subordinate id ranges (/etc/subuid, /etc/subgid), made when missing; when it
//   cannot be had, one line says what to install and those tests are skipped.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOTLESS_USER, ROOTLESS_SKIPPED } from '../helpers/unprivileged.ts';

function onPath(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
}

function hasRange(file: string, name: string): boolean {
  try {
    return readFileSync(file, 'utf8').split('\n').some((l) => l.split(':')[0] === name && Number(l.split(':')[2]) > 0);
  } catch {
    return false;
  }
}

/** The first id after every range /etc/subuid and /etc/subgid grant (100000 when they grant none). */
function freeRangeStart(): number {
  let end = 100000;
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // no such file: usermod makes it
    }
    for (const [, start, count] of text.split('\n').map((l) => l.split(':'))) end = Math.max(end, Number(start) + Number(count) || 0);
  }
  return end;
}

/** The user exists with subordinate ids, or the reason it cannot. */
function ensureRootlessUser(): string | undefined {
  const missing = ['newuidmap', 'newgidmap'].filter((b) => !onPath(b));
  if (missing.length) return `${missing.join(' and ')} not found (Debian/Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils)`;
  if (spawnSync('id', ['-u', ROOTLESS_USER]).status !== 0) {
    // A regular account (not --system): useradd gives it subordinate id ranges where login.defs says so.
    const r = spawnSync('useradd', ['--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin',
      '--comment', 'vitest-environment-container rootless tests', ROOTLESS_USER], { encoding: 'utf8' });
    if (r.status !== 0) return `useradd ${ROOTLESS_USER} failed: ${(r.stderr || r.error?.message || '').trim()} (Debian/Ubuntu: apt-get install passwd)`;
    console.log(`test setup: made the user ${ROOTLESS_USER} for the rootless tests (userdel ${ROOTLESS_USER} removes it)`);
  }
  if (!hasRange('/etc/subuid', ROOTLESS_USER) || !hasRange('/etc/subgid', ROOTLESS_USER)) {
    const start = freeRangeStart(), range = `${start}-${start + 65535}`;
    const r = spawnSync('usermod', ['--add-subuids', range, '--add-subgids', range, ROOTLESS_USER], { encoding: 'utf8' });
    if (r.status !== 0) return `usermod could not give ${ROOTLESS_USER} subordinate ids: ${(r.stderr || '').trim()}`;
  }
  return undefined;
}

export default function setup(): () => void {
  const run = mkdtempSync(join(tmpdir(), 'vtc-test-run-'));
  chmodSync(run, 0o1777); // the rootless tests' user writes here too
  process.env.TMPDIR = run;
  const path = (process.env.PATH ?? '').split(':');
  process.env.PATH = [...path, ...['/usr/local/sbin', '/usr/sbin', '/sbin'].filter((d) => !path.includes(d))].join(':');
  if (process.getuid!() === 0) {
    const skipped = ensureRootlessUser();
    if (skipped) {
      process.env[ROOTLESS_SKIPPED] = skipped;
      console.log(`test setup: the rootless tests are skipped: ${skipped}`);
    }
  }
  return () => rmSync(run, { recursive: true, force: true });
}
