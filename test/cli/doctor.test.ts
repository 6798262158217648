// `doctor` against the real host: as root, as an unprivileged user without
// cgroup delegation, and with user namespaces disabled (in a namespace of its own).
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, test } from 'vitest';
import { isRoot } from '../helpers/host.ts';
import { asUser, cli, cliAsUser, leftoversOf, rootlessUserReady, unprivilegedUser, withUserNamespacesDisabled } from './helpers.ts';

/** The report line of one check: "✓ title: summary" (and its fix line, if any). */
function line(stdout: string, title: string): string {
  const lines = stdout.split('\n');
  const i = lines.findIndex((l) => l.slice(2).startsWith(`${title}:`));
  if (i < 0) throw new Error(`no "${title}" line in:\n${stdout}`);
  return lines[i]! + (lines[i + 1]?.startsWith('    fix: ') ? `\n${lines[i + 1]}` : '');
}

describe.runIf(isRoot)('doctor as root', () => {
  test('every check passes and the sandbox probe really runs, exit 0', () => {
    const r = cli(['doctor', '--memory', '64m']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const title of ['user namespaces', 'overlayfs', 'confinement', 'cgroups', 'native helper', 'image cache', 'sandbox']) {
      expect(line(r.stdout, title)).toMatch(/^✓ /);
    }
    expect(line(r.stdout, 'cgroups')).toMatch(/cgroup v[12].*sandboxes get a cgroup under \/.*vitest-container with the limits asked for/);
    expect(line(r.stdout, 'sandbox')).toMatch(/started image host and ran `true`/);
    expect(r.stdout).toMatch(/can run here/);
  });

  test('says which seccomp filter the sandboxes get: the default, none, or a profile (a bad one fails)', () => {
    expect(line(cli(['doctor']).stdout, 'sandbox seccomp')).toMatch(/^✓ sandbox seccomp: the default profile: \d+ system calls allowed; keyring, io_uring/);
    const open = cli(['doctor', '--seccomp', 'unconfined']);
    expect(line(open.stdout, 'sandbox seccomp')).toMatch(/^! sandbox seccomp: unconfined: no filter/);
    expect(open.status).toBe(0);
    const bad = cli(['doctor', '--seccomp', '/nonexistent/profile.json']);
    expect(line(bad.stdout, 'sandbox seccomp')).toMatch(/^✗ sandbox seccomp: seccomp: cannot read the profile \/nonexistent\/profile\.json/);
    expect(bad.status).toBe(1);
  });

  test('--json gives the same checks with their ids', () => {
    const r = cli(['doctor', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; rootless: boolean; checks: { id: string; status: string }[] };
    expect(report.ok).toBe(true);
    expect(report.rootless).toBe(false);
    expect(report.checks.map((c) => c.id)).toEqual(['options', 'node', 'user-namespaces', 'overlay', 'confinement', 'seccomp', 'cgroups', 'id-maps', 'native-helper', 'image-cache', 'sandbox']);
  });

  test('impossible options fail with the runtime\'s own message, exit 1; bad flags exit 2', () => {
    const r = cli(['doctor', '--memory', '1k']);
    expect(r.status).toBe(1);
    expect(line(r.stdout, 'options')).toMatch(/^✗ options: memory: 1k is below/);
    const bad = cli(['doctor', '--no-such-flag']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no-such-flag/);
  });

  test('probes leave no mounts, directories or processes behind', () => {
    const scratch = () => readdirSync(tmpdir()).filter((n) => n.startsWith('vtc-doctor-'));
    const [mounts, dirs] = [readFileSync('/proc/self/mountinfo', 'utf8'), scratch()];
    const r = cli(['doctor', '--memory', '64m']);
    expect(r.status).toBe(0);
    expect(leftoversOf(r.pid!)).toEqual({ runtimes: [], cgroups: [], bundles: [] });
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toBe(mounts);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain('vtc-doctor');
    expect(scratch()).toEqual(dirs);
  });
});

describe.runIf(rootlessUserReady)('doctor as an unprivileged user', () => {
  test('user namespaces and overlay work; cgroup limits are unavailable, with the fix', () => {
    const user = unprivilegedUser();
    const r = cliAsUser(user, ['doctor']);
    expect(r.stdout).toMatch(new RegExp(`as ${user.name} \\(rootless\\)`));
    expect(line(r.stdout, 'user namespaces')).toMatch(/^✓ /);
    expect(line(r.stdout, 'overlayfs')).toMatch(/^✓ .*in a user namespace/);
    expect(line(r.stdout, 'cgroups')).toMatch(/^! .*limits cannot be enforced\n {4}fix: .*(root|Delegate=yes)/);
    expect(line(r.stdout, 'sandbox')).toMatch(/^✓ /);
    // Without limits requested, no delegation is only a warning.
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  test('--memory cannot work without delegation: ✗ and exit 1, the sandbox probe says the runtime\'s CGROUP error', () => {
    const r = cliAsUser(unprivilegedUser(), ['doctor', '--memory', '256m']);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(line(r.stdout, 'cgroups')).toMatch(/^✗ .*limits cannot be enforced\n {4}fix: /);
    expect(line(r.stdout, 'sandbox')).toMatch(/^✗ .*cannot create a cgroup.*\n {4}fix: /);
    const json = JSON.parse(cliAsUser(unprivilegedUser(), ['doctor', '--memory', '256m', '--json']).stdout) as { checks: { id: string; code?: string }[] };
    expect(json.checks.find((c) => c.id === 'sandbox')?.code).toBe('CGROUP_DELEGATION_MISSING');
  });
});

describe.runIf(rootlessUserReady)('doctor with user namespaces disabled', () => {
  test('says so, with the sysctl that fixes it, exit 1; the host setting is untouched', async () => {
    const hostSetting = readFileSync('/proc/sys/user/max_user_namespaces', 'utf8');
    const r = await withUserNamespacesDisabled(asUser(unprivilegedUser(), ['doctor']));
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(line(r.stdout, 'user namespaces')).toMatch(/^✗ user namespaces: user namespaces are disabled on this host \(user\.max_user_namespaces=0\).*\n {4}fix: sudo sysctl -w user\.max_user_namespaces=\d+/);
    expect(line(r.stdout, 'overlayfs')).toMatch(/^✗ /);
    expect(line(r.stdout, 'sandbox')).toMatch(/^✗ .*user namespaces are disabled/);
    expect(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')).toBe(hostSetting);
    expect(hostSetting.trim()).not.toBe('0');
  });
});
