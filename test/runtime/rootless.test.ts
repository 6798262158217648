// The same sandbox suite, run by an unprivileged user: a user namespace maps
// them to root inside, /etc/subuid ranges (through newuidmap) map the rest.
// Limits need cgroup delegation, which this lane does not have: it checks that
// asking for them is a clear error, not a silent downgrade.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, test } from 'vitest';
import { rootlessUserReady, unprivilegedUser, userEnv, workspaceFor } from '../helpers/unprivileged.ts';

// The files this lane runs, each with the tests that need root and so are skipped here. Every
// other test in them must run and pass: a suite that silently skipped (a misread isRoot, a
// describe.runIf gone wrong) fails this as surely as a failing test.
const ROOTLESS_LANE: Record<string, string[]> = {
  'test/runtime/sandbox.test.ts': [],
  'test/runtime/lifecycle.test.ts': ['processes that start and stop sandboxes at once never trip over the default cgroup parent, which goes with its last sandbox'],
  'test/runtime/limits-rootless.test.ts': [],
  'test/runtime/network.test.ts': [],
  'test/security/escapes.test.ts': [],
  'test/runner/pool-rootless.test.ts': [],
  'test/security/bad-input.test.ts': [
    'ENOSPC while unpacking is IMAGE_CACHE_FULL naming the cache and the fix; nothing is left of the attempt',
    'images prune removes a stale half-written memo',
    'CGROUP_LIMIT_REJECTED, and every cgroup level made for it is gone again',
  ],
  'test/runtime/commit.test.ts': [
    'Redis: SAVE, then commit; each fork serves the keys',
    'Postgres: CHECKPOINT, then commit while it runs; a fork starts on the data with its rows',
  ],
  'test/image/commit-layer.test.ts': [],
  'test/runtime/copy.test.ts': [],
  'test/security/copy-hostile.test.ts': [],
  // every test here is about sandboxes started as root
  'test/security/host-root.test.ts': [
    'the sandbox\'s ids are an unprivileged host range, and its root is uid 0 only inside',
    'what host root\'s rights would open stays shut: /etc/shadow, a 0600 file of root\'s, other sandboxes\' run directories',
    'a granted mount is usable as given: its files are the sandbox root\'s, writes reach the host as root\'s',
    'a granted mount the kernel cannot idmap (overlayfs, as / is in a Docker job) still works, and a warning names it and the fix',
    'images keep their owners: ids stored shifted into the range read as the image\'s inside',
    'mounts[].readonly: the mount and the host mount below it are read-only inside',
    'image host: the host\'s mounts are visible, and a write to one goes to the throwaway layer, never to the host',
  ],
};

interface JsonReport { testResults: { name: string; status: string; assertionResults: { title: string; status: string }[] }[] }

test.runIf(rootlessUserReady && !process.env.VTC_ROOTLESS_LANE)('the sandbox suite passes as an unprivileged user: every test that does not need root runs', () => {
  const user = unprivilegedUser();
  const ws = workspaceFor(user);
  try {
    const report = join(ws.home, 'report.json');
    const r = spawnSync('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--',
      ...userEnv(user, ws.home, { VTC_ROOTLESS_LANE: '1', VTC_LEAK_CYCLES: '200' }),
      join(ws.root, 'node_modules', '.bin', 'vitest'), 'run', '--configLoader', 'native', '--root', ws.root,
      '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...Object.keys(ROOTLESS_LANE)],
    { cwd: ws.root, encoding: 'utf8', timeout: 240_000 });
    const output = `${r.stdout}\n${r.stderr}`;
    expect(r.status, output).toBe(0);
    const files = (JSON.parse(readFileSync(report, 'utf8')) as JsonReport).testResults;
    const inRepo = (name: string) => relative(ws.root, name);
    expect(files.map((f) => inRepo(f.name)).sort(), output).toEqual(Object.keys(ROOTLESS_LANE).sort());
    for (const f of files) {
      const rootOnly = ROOTLESS_LANE[inRepo(f.name)]!;
      const passed = f.assertionResults.filter((t) => t.status === 'passed').map((t) => t.title);
      const notRun = f.assertionResults.filter((t) => t.status !== 'passed').map((t) => `${t.title} (${t.status})`);
      expect(notRun, `${f.name}\n${output}`).toEqual(rootOnly.map((t) => `${t} (skipped)`));
      expect(passed.length, f.name).toBe(f.assertionResults.length - rootOnly.length);
    }
  } finally {
    ws.remove();
  }
}, 300_000);

/**
 * Runs a sandbox start as the unprivileged user inside a user and mount namespace of ours (uids
 * 0-65535 mapped, written directly as root), after `setup` ran there as its root: the host's own
 * settings stay as they are. Returns the start's error ({ code, name, message }) or 'STARTED'.
 */
function startAsUserAfter(setup: string): { code?: string; name?: string; message?: string } | 'STARTED' {
  const user = unprivilegedUser();
  const ws = workspaceFor(user);
  try {
    const script = `import('${join(ws.root, 'src', 'index.ts')}').then(({ startContainer }) => startContainer({ cmd: ['true'] }))` +
      `.then(() => console.log('STARTED'), (e) => console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message })))`;
    // The inner shell re-execs once mapped: capabilities are computed at exec, and before the maps it was nobody.
    const runner = join(ws.home, 'userns.sh');
    writeFileSync(runner, `#!/bin/sh
USER_UID=${user.uid} USER_GID=${user.gid}
as_user() { setpriv --reuid=$USER_UID --regid=$USER_GID --clear-groups -- "$@"; }
if [ "$1" = inner ]; then shift; read go < "$FIFO"; exec sh "$0" mapped "$@"; fi
if [ "$1" = mapped ]; then shift
${setup}
  as_user "$@"; rc=$?; [ -z "$HOLD" ] || kill $HOLD; exit $rc
fi
export FIFO="${join(ws.home, 'go')}"; mkfifo "$FIFO"
unshare --user --mount sh "$0" inner "$@" & P=$!
while [ "$(readlink /proc/$P/ns/user)" = "$(readlink /proc/self/ns/user)" ]; do sleep 0.01; done
echo "0 0 65536" > /proc/$P/uid_map && echo "0 0 65536" > /proc/$P/gid_map && echo go > "$FIFO"
wait $P
`, { mode: 0o755 });
    const r = spawnSync('sh', [runner, ...userEnv(user, ws.home), process.execPath, '-e', script], { encoding: 'utf8', timeout: 60_000 });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    if (line === 'STARTED') return line;
    try {
      return JSON.parse(line) as { code: string; name: string; message: string };
    } catch {
      throw new Error(`no result from the start:\n${r.stdout}${r.stderr}`);
    }
  } finally {
    ws.remove();
  }
}

test.runIf(rootlessUserReady)('a host without user namespaces: a typed error naming the sysctl that fixes it', () => {
  // For real: the limit is per user namespace, so it is 0 in one of ours.
  const err = startAsUserAfter('  echo 0 > /proc/sys/user/max_user_namespaces || exit 90');
  expect(err).toMatchObject({ code: 'USER_NAMESPACES_DISABLED', name: 'HostCapabilityError' });
  expect(err !== 'STARTED' && err.message).toMatch(/user\.max_user_namespaces=0[\s\S]*fix: sudo sysctl -w user\.max_user_namespaces=/);
});

test.runIf(rootlessUserReady)("AppArmor's restriction on unprivileged user namespaces: USER_NAMESPACES_RESTRICTED, naming the sysctl that lifts it", () => {
  // What can be made here for real: the kernel refusing the sandbox's user namespace (each user may
  // own one in our namespace, and the user owns one already), with the limit itself not 0. What
  // cannot: AppArmor, which this kernel does not have; its sysctl reads 1 from a file of ours
  // (a tmpfs over /proc/sys/kernel, in our mount namespace only).
  const refused = `  echo 1 > /proc/sys/user/max_user_namespaces || exit 90
  setpriv --reuid=$USER_UID --regid=$USER_GID --clear-groups -- unshare --user sleep 3600 & HOLD=$!
  for i in $(seq 500); do [ "$(readlink /proc/$HOLD/ns/user)" = "$(readlink /proc/self/ns/user)" ] || break; sleep 0.01; done`;
  const err = startAsUserAfter(`${refused}
  mount -t tmpfs vtc-sysctl /proc/sys/kernel && echo 1 > /proc/sys/kernel/apparmor_restrict_unprivileged_userns || exit 91`);
  expect(err).toMatchObject({ code: 'USER_NAMESPACES_RESTRICTED', name: 'HostCapabilityError' });
  expect(err !== 'STARTED' && err.message).toMatch(/AppArmor restricts unprivileged user namespaces[\s\S]*fix: sudo sysctl -w kernel\.apparmor_restrict_unprivileged_userns=0/);
  // The same refusal without that sysctl is not blamed on AppArmor.
  expect(startAsUserAfter(refused)).toMatchObject({ code: 'USER_NAMESPACES_UNAVAILABLE' });
});
