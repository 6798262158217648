// When the host refuses a sandbox, the error names why and how to fix it: every
// refusal is a HostCapabilityError with a fix. Real refusals where this host can
// make them (a seccomp filter like a container engine's, a read-only cgroupfs, a
// user without subordinate ids); the mapping's decisions for the causes it cannot
// make (AppArmor's user-namespace restriction, a container's masked /proc, ...).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { HostCapabilityError } from '../../src/errors.ts';
import { mapRuntimeError, type Circumstances } from '../../src/runtime/errors-map.ts';
import { isRoot } from '../helpers/host.ts';
import { rootlessUserReady, unprivilegedUser, userEnv } from '../helpers/unprivileged.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
interface Outcome { ok: boolean; name?: string; code?: string; message?: string; fix?: string }

function lastJson(stdout: string, stderr: string): Outcome {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) throw new Error(`no result:\n${stdout}${stderr}`);
  return JSON.parse(line) as Outcome;
}

/** Starts a sandbox in a process whose system calls `refuse` are refused as a container engine's seccomp profile refuses them. */
function startUnderSeccomp(refuse: Record<string, string>, options: object = {}, asUser?: string[]): Outcome {
  const argv = [...(asUser ?? []), process.execPath, fixture('seccomp-start.ts'), JSON.stringify(refuse), JSON.stringify(options)];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  return lastJson(r.stdout, r.stderr);
}

const CONTAINER_FIX = /--privileged \(GitLab runner: privileged = true[\s\S]*--cap-add SYS_ADMIN --security-opt seccomp=unconfined/;

describe('inside a container whose seccomp profile refuses what sandboxes need', () => {
  test.runIf(isRoot)('each refused stage is CONTAINER_RESTRICTED naming the seccomp profile, with the flags that lift it', () => {
    for (const [syscall, errno, doing] of [['clone3', 'ENOSYS', "creating the sandbox's first process"], ['sethostname', 'EPERM', 'setting its host name'],
      ['pivot_root', 'EPERM', 'preparing its root file system']] as const) {
      const r = startUnderSeccomp({ [syscall]: errno });
      expect(r, syscall).toMatchObject({ ok: false, name: 'HostCapabilityError', code: 'CONTAINER_RESTRICTED' });
      expect(r.message).toContain(`${doing} was refused`);
      expect(r.message).toMatch(/seccomp profile \(Docker's and podman's default profiles refuse/);
      expect(r.message).toContain(errno);
      expect(r.fix).toMatch(CONTAINER_FIX);
    }
    expect(startUnderSeccomp({})).toEqual({ ok: true }); // the same process without the refusals starts it
  });

  test.runIf(isRoot)('the same for an unprivileged user (its sandbox refused inside its own user namespace)', () => {
    // nobody, whose only id maps without newuidmap: a seccomp filter needs no_new_privs, under which setuid helpers gain nothing (next test).
    const nobody = { uid: 65534, gid: 65534, name: 'nobody' };
    const asUser = ['setpriv', `--reuid=${nobody.uid}`, `--regid=${nobody.gid}`, '--clear-groups', '--', ...userEnv(nobody, '/')];
    const r = startUnderSeccomp({ sethostname: 'EPERM' }, {}, asUser);
    expect(r).toMatchObject({ ok: false, code: 'CONTAINER_RESTRICTED', message: expect.stringContaining('setting its host name was refused') });
    expect(r.fix).toMatch(CONTAINER_FIX);
  });

  test.runIf(rootlessUserReady)('no_new_privs (a container\'s no-new-privileges): newuidmap gains nothing, and the error says so', () => {
    const user = unprivilegedUser();
    const code = `const { startContainer } = await import(${JSON.stringify(new URL('../../src/runtime/index.ts', import.meta.url).href)});
      await startContainer({ cmd: ['true'] }).then(() => console.log('{"ok":true}'), (e) => console.log(JSON.stringify({ ok: false, code: e.code, message: e.message, fix: e.fix })));`;
    const r = spawnSync('setpriv', ['--no-new-privs', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', ...userEnv(user, '/'),
      process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
    const out = lastJson(r.stdout, r.stderr);
    expect(out).toMatchObject({ ok: false, code: 'NO_NEW_PRIVILEGES', message: expect.stringMatching(/newuidmap is setuid root, but this process runs with no_new_privs/) });
    expect(out.fix).toMatch(/no-new-privileges[\s\S]*allowPrivilegeEscalation: true/);
  });
});

describe.runIf(isRoot)('root with a read-only cgroupfs (a container\'s default)', () => {
  // In a mount namespace of its own, every cgroup mount remounted read-only: the host's stay as they are.
  const script = `
    for m in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do mount -o remount,bind,ro "$m" || exit 99; done
    exec "$@"`;
  const probe = `
    const { startContainer } = await import(${JSON.stringify(new URL('../../src/runtime/index.ts', import.meta.url).href)});
    const { readFileSync, readlinkSync, readdirSync } = await import('node:fs');
    const c = await startContainer({ cmd: ['sh', '-c', 'sleep 1000 & sleep 1000'] });
    const stats = await c.stats().then(() => 'stats', (e) => e.code);
    const ns = readlinkSync('/proc/' + c.pid + '/ns/pid');
    const inNs = () => readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).filter((p) => { try { return readlinkSync('/proc/' + p + '/ns/pid') === ns; } catch { return false; } }).length;
    // The shell forks its first sleeper after it started: give it a moment (up to 5 s) to be there.
    for (let i = 0; i < 250 && inNs() < 3; i++) await new Promise((r) => setTimeout(r, 20));
    const before = inNs();
    await c.stop({ timeout: 0 });
    const limited = await startContainer({ memory: '64m' }).then(() => ({ ok: true }), (e) => ({ code: e.code, name: e.name, message: e.message, fix: e.fix }));
    console.log(JSON.stringify({ stats, before, after: inNs(), limited }));`;

  test('no limits: the sandbox runs without a cgroup, and stop still ends all of it; limits: CGROUPS_READ_ONLY with the fix', () => {
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', process.execPath, '--input-type=module', '-e', probe],
      { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { stats: string; before: number; after: number; limited: Outcome };
    expect(out.stats).toBe('NO_CGROUP');
    expect(out.before).toBeGreaterThanOrEqual(3); // pid 1 and its two sleepers
    expect(out.after).toBe(0);
    expect(out.limited).toMatchObject({ name: 'HostCapabilityError', code: 'CGROUPS_READ_ONLY', message: expect.stringMatching(/\/sys\/fs\/cgroup is mounted read-only/) });
    expect(out.limited.fix).toMatch(/--privileged[\s\S]*or ask for no limits/);
  });
});

describe.runIf(isRoot)('a user without subordinate ids', () => {
  test('an image user beyond their own id is SUBORDINATE_IDS_MISSING with the usermod that grants them; without one the sandbox runs', () => {
    // nobody: every Debian host has it, and /etc/subuid grants it nothing.
    expect(readFileSync('/etc/subuid', 'utf8')).not.toMatch(/^nobody:/m);
    const nobody = { uid: 65534, gid: 65534, name: 'nobody' };
    const start = (options: object) => {
      const code = `const { startContainer } = await import(${JSON.stringify(new URL('../../src/runtime/index.ts', import.meta.url).href)});
        await startContainer({ cmd: ['true'], ...${JSON.stringify(options)} }).then(async (c) => { await c.wait(); console.log(JSON.stringify({ ok: true })); },
          (e) => console.log(JSON.stringify({ ok: false, name: e.name, code: e.code, message: e.message, fix: e.fix })));`;
      const r = spawnSync('setpriv', [`--reuid=${nobody.uid}`, `--regid=${nobody.gid}`, '--clear-groups', '--', ...userEnv(nobody, '/'),
        process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
      return lastJson(r.stdout, r.stderr);
    };
    expect(start({})).toEqual({ ok: true });
    const r = start({ user: '1000:1000' });
    expect(r).toMatchObject({ ok: false, name: 'HostCapabilityError', code: 'SUBORDINATE_IDS_MISSING' });
    expect(r.message).toMatch(/needs gid 1000, which is not mapped: \/etc\/subgid grants nobody no range/);
    expect(r.fix).toBe('sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody');
  });
});

describe('the mapping, for causes this host cannot produce', () => {
  const free = { engine: undefined, seccompFiltered: false, noNewPrivs: false, capSysAdmin: true, capSysAdminBounding: true, capSysResource: true, appArmorRestrictsUserNamespaces: false,
    appArmorProfile: undefined, cgroupfsReadOnly: false, procMasked: false };
  const circumstances = (c: Partial<Circumstances['confinement']>, rootless = true): Circumstances => ({
    rootless, confinement: { ...free, ...c }, uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
    idMapHelpers: true, user: 'dev',
  });
  const event = (stage: string, code: string, path = '', message = 'refused') => ({ type: 'error' as const, stage, path, errno: 1, code, message });

  test('Ubuntu 24.04: AppArmor lets the user namespace be made, then refuses its uid map, mounts and pivot_root: USER_NAMESPACES_RESTRICTED with the sysctl', () => {
    const ubuntu = circumstances({ appArmorRestrictsUserNamespaces: true });
    for (const [stage, path] of [['userns', '/proc/1234/uid_map'], ['rootfs', '/'], ['mount', '/proc'], ['overlay', 'lower'], ['network', 'lo'], ['hostname', 'sbx']]) {
      const e = mapRuntimeError(event(stage!, 'EPERM', path), ubuntu);
      expect(e, stage).toMatchObject({ code: 'USER_NAMESPACES_RESTRICTED', fix: expect.stringMatching(/kernel\.apparmor_restrict_unprivileged_userns=0/) });
    }
    expect(mapRuntimeError(event('userns', 'EPERM', 'newuidmap'), ubuntu).code).toBe('USER_NAMESPACES_RESTRICTED');
  });

  test('a container that masks /proc: a fresh /proc mount refused is CONTAINER_RESTRICTED with the unmask flags', () => {
    const e = mapRuntimeError(event('mount', 'EPERM', '/proc'), circumstances({ engine: 'docker', seccompFiltered: true, procMasked: true }, false));
    expect(e).toMatchObject({ code: 'CONTAINER_RESTRICTED', fix: expect.stringMatching(/unmask=ALL[\s\S]*systempaths=unconfined/) });
  });

  test('root in a container without CAP_SYS_ADMIN and without a seccomp filter: the missing capability is named', () => {
    const e = mapRuntimeError(event('namespaces', 'EPERM'), circumstances({ engine: 'docker', capSysAdmin: false, capSysAdminBounding: false }, false));
    expect(e).toMatchObject({ code: 'CONTAINER_RESTRICTED', message: expect.stringMatching(/its processes lack CAP_SYS_ADMIN/), fix: expect.stringMatching(CONTAINER_FIX) });
  });

  test('raising an rlimit without CAP_SYS_RESOURCE, a missing newuidmap, an LSM denial: each names its cause', () => {
    expect(mapRuntimeError(event('rlimits', 'EPERM'), circumstances({ capSysResource: false }, false)).code).toBe('CAPABILITY_MISSING');
    expect(mapRuntimeError(event('userns', 'ENOENT', 'newuidmap'), circumstances({})).fix).toMatch(/apt-get install uidmap/);
    expect(mapRuntimeError(event('rootfs', 'EACCES', '/'), circumstances({ appArmorProfile: 'snap.code.code' }))).toMatchObject({
      code: 'SETUP_NOT_PERMITTED', message: expect.stringContaining('the AppArmor profile "snap.code.code"'), fix: expect.stringContaining('dmesg') });
  });

  test('every refusal at every stage, under every confinement, is a HostCapabilityError with a fix', () => {
    // (not the sandbox's own process, whose working directory or user may be refused for reasons of its own)
    const stages = ['clone', 'namespaces', 'userns', 'hostname', 'network', 'rootfs', 'overlay', 'mount', 'devices', 'capabilities', 'rlimits', 'cgroup', 'init', 'ports'];
    const confinements: Partial<Circumstances['confinement']>[] = [{}, { seccompFiltered: true, engine: 'docker', capSysAdmin: false, capSysAdminBounding: false },
      { capSysAdmin: false }, { capSysAdminBounding: false, capSysAdmin: false }, { noNewPrivs: true }, { appArmorRestrictsUserNamespaces: true }, { appArmorProfile: 'docker-default (enforce)' }, { procMasked: true, engine: 'podman' }];
    for (const stage of stages) for (const code of ['EPERM', 'EACCES']) for (const c of confinements) for (const rootless of [true, false]) {
      const e = mapRuntimeError(event(stage, code), circumstances(c, rootless));
      expect(e, `${stage} ${code} ${JSON.stringify(c)} rootless=${rootless}`).toBeInstanceOf(HostCapabilityError);
      expect(e.fix, `${stage} ${code}`).toMatch(/\S/);
    }
  });
});
