// The same sandbox suite, run by an unprivileged user: a user namespace maps
// them to root inside, /etc/subuid ranges (through newuidmap) map the rest.
// Limits need cgroup delegation, which this lane does not have: it checks that
// asking for them is a clear error, not a silent downgrade.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { rootlessUserReady, unprivilegedUser, userEnv, workspaceFor } from '../helpers/unprivileged.ts';

test.runIf(rootlessUserReady && !process.env.VTC_ROOTLESS_LANE)('the sandbox suite passes as an unprivileged user', () => {
  const user = unprivilegedUser();
  const ws = workspaceFor(user);
  try {
    const r = spawnSync('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--',
      ...userEnv(user, ws.home, { VTC_ROOTLESS_LANE: '1', VTC_LEAK_CYCLES: '200' }),
      join(ws.root, 'node_modules', '.bin', 'vitest'), 'run', '--configLoader', 'native', '--root', ws.root,
      'test/runtime/sandbox.test.ts', 'test/runtime/lifecycle.test.ts', 'test/runtime/limits-rootless.test.ts', 'test/runtime/network.test.ts'],
    { cwd: ws.root, encoding: 'utf8', timeout: 240_000 });
    const output = `${r.stdout}\n${r.stderr}`;
    expect(r.status, output).toBe(0);
    expect(output).toMatch(/Tests\s+.*\d+ passed/);
    expect(output).not.toMatch(/\d+ failed/);
  } finally {
    ws.remove();
  }
}, 300_000);

test.runIf(rootlessUserReady)('a host without user namespaces: a typed error naming the sysctl that fixes it', () => {
  // For real, without touching the host: the limit is per user namespace, so set it to 0 in one
  // of our own and run an unprivileged sandbox start inside it.
  const user = unprivilegedUser();
  const ws = workspaceFor(user);
  try {
    const script = `import('${join(ws.root, 'src', 'index.ts')}').then(({ startContainer }) => startContainer({ cmd: ['true'] }))` +
      `.then(() => console.log('STARTED'), (e) => console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message })))`;
    // A user namespace of ours with uids 0-65535 mapped (written directly, as root), where the limit is 0.
    // The inner shell re-execs once mapped: capabilities are computed at exec, and before the maps it was nobody.
    const runner = join(ws.home, 'no-userns.sh');
    writeFileSync(runner, `#!/bin/sh
if [ "$1" = inner ]; then shift; read go < "$FIFO"; exec sh "$0" mapped "$@"; fi
if [ "$1" = mapped ]; then shift; echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --reuid=${user.uid} --regid=${user.gid} --clear-groups -- "$@"; fi
export FIFO="${join(ws.home, 'go')}"; mkfifo "$FIFO"
unshare --user sh "$0" inner "$@" & P=$!
while [ "$(readlink /proc/$P/ns/user)" = "$(readlink /proc/self/ns/user)" ]; do sleep 0.01; done
echo "0 0 65536" > /proc/$P/uid_map && echo "0 0 65536" > /proc/$P/gid_map && echo go > "$FIFO"
wait $P
`, { mode: 0o755 });
    const r = spawnSync('sh', [runner, ...userEnv(user, ws.home), process.execPath, '-e', script], { encoding: 'utf8', timeout: 60_000 });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    expect(line, `${r.stdout}${r.stderr}`).not.toBe('STARTED');
    const err = JSON.parse(line) as { code: string; name: string; message: string };
    expect(err).toMatchObject({ code: 'USER_NAMESPACES_DISABLED', name: 'HostCapabilityError' });
    expect(err.message).toMatch(/user\.max_user_namespaces=0[\s\S]*fix: sudo sysctl -w user\.max_user_namespaces=/);
  } finally {
    ws.remove();
  }
});
