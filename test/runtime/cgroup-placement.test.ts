// Where a user's sandboxes get their cgroups on cgroup v2, for real: in a subtree
// delegated to the user as systemd delegates user@UID.service, with nothing
// configured; and, with no delegation, an error whose fix, run as given, makes
// limits work. Needs root on a pure cgroup v2 host (the cgroup2 lane's guest);
// everything it makes is below cgroups of its own, removed at the end.
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { cgroupDriver } from '../../src/runtime/index.ts';
import { systemdBooted } from '../../src/runtime/cgroups/diagnosis.ts';
import { rootlessUserReady, unprivilegedUser, type UnprivilegedUser } from '../helpers/unprivileged.ts';

const CG = '/sys/fs/cgroup';
const probe = fileURLToPath(new URL('../fixtures/cgroup-probe.ts', import.meta.url));
const v2 = cgroupDriver()?.version === 2;
const rootPasses = (c: string) => readFileSync(join(CG, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes(c);

interface Probe { ok: boolean; cgroup?: string; files?: Record<string, string>; goneAfterStop?: boolean; parentGoneAfterStop?: boolean; code?: string; message?: string; fix?: string }

/** The probe's argv, as the user (setpriv), for a shell that has moved itself into a cgroup first. */
function probeArgv(user: UnprivilegedUser, options: object[]): string[] {
  return ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', 'env', '-i', `PATH=${process.env.PATH}`, 'HOME=/', 'NO_COLOR=1',
    process.execPath, probe, JSON.stringify(options)];
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `script` in sh as root, then the probe as the user; returns the probe's lines. */
function run(script: string, user: UnprivilegedUser, options: object[], attempt = 1): Probe[] {
  const r = spawnSync('sh', ['-c', `${script} exec ${probeArgv(user, options).map(quote).join(' ')}`], { encoding: 'utf8', timeout: 120_000 });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{'));
  if (lines.length === options.length) return lines.map((l) => JSON.parse(l) as Probe);
  // The probe reports every outcome as a line; Node crashing under the cgroup2 lane's emulated CPU
  // (SIGSEGV, SIGILL, SIGTRAP, SIGBUS: never an outcome of the code under test) gets one more try.
  if (attempt === 1 && ['SIGSEGV', 'SIGILL', 'SIGTRAP', 'SIGBUS'].includes(r.signal ?? '')) {
    console.warn(`cgroup probe: Node crashed (${r.signal}); once more`);
    return run(script, user, options, 2);
  }
  throw new Error(`probe said (exit ${r.status ?? r.signal}${r.error ? `, ${r.error.message}` : ''}):\n${r.stdout}${r.stderr}`);
}

const made: string[] = [];
function mkcg(dir: string): string {
  mkdirSync(dir, { recursive: true });
  made.push(dir);
  return dir;
}
/** Removes a cgroup tree we made, deepest first, ending what still runs in it. */
function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeTree(join(dir, e.name));
  for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      spawnSync('sleep', ['0.05']);
    }
  }
}
afterAll(() => {
  for (const dir of made.reverse()) removeTree(dir);
});

describe.runIf(v2 && rootlessUserReady && ['memory', 'cpu', 'pids'].every(rootPasses))('cgroup v2 placement for a user', () => {
  const user = rootlessUserReady ? unprivilegedUser() : { uid: -1, gid: -1, name: '' };
  const base = join(CG, `vtc-placement-${process.pid}`);

  test('a subtree delegated like systemd\'s user@UID.service: limits work with nothing configured; the sandboxes\' parent is a process-free child of it; cpuset is not needed for them, and where it is, its error\'s fix works', () => {
    // systemd's layout: the slices pass on what user@.service delegates (pids memory cpu, no cpuset),
    // user@UID.service (its directory, cgroup.procs, cgroup.subtree_control) belongs to the user,
    // the user manager sits in init.scope, the user's processes in scopes under app.slice.
    mkcg(base);
    const slice = mkcg(join(base, `user-${user.uid}.slice`));
    const manager = mkcg(join(slice, `user@${user.uid}.service`));
    const leaf = mkcg(join(manager, 'app.slice', 'tests.scope'));
    mkcg(join(manager, 'init.scope'));
    for (const d of [base, slice]) writeFileSync(join(d, 'cgroup.subtree_control'), '+pids +memory +cpu');
    for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) chownSync(join(manager, f), user.uid, user.gid);
    spawnSync('chown', ['-R', `${user.uid}:${user.gid}`, join(manager, 'app.slice'), join(manager, 'init.scope')]);
    const userManager = spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', 'sleep', '1000'], { stdio: 'ignore' });
    writeFileSync(join(manager, 'init.scope', 'cgroup.procs'), String(userManager.pid));
    // (user@UID.service passes nothing on yet: what a limit needs is enabled there by us, the delegatee)
    try {
      const into = `echo $$ > ${leaf}/cgroup.procs &&`;
      const [limited, cpuset] = run(into, user, [{ memory: '64m', cpus: 0.5, pids: 16 }, { cpuset: '0' }]);
      expect(limited, JSON.stringify(limited)).toMatchObject({ ok: true, goneAfterStop: true, parentGoneAfterStop: true });
      const relativeManager = manager.slice(CG.length);
      expect(dirname(limited!.cgroup!)).toBe(join(relativeManager, 'vitest-container'));
      expect(limited!.files).toMatchObject({ 'memory.max': String(64 * 1024 * 1024), 'cpu.max': '50000 100000', 'pids.max': '17' });
      expect(readFileSync(join(manager, 'cgroup.subtree_control'), 'utf8').split(/\s+/)).toEqual(expect.arrayContaining(['memory', 'cpu', 'pids']));
      expect(readdirSync(leaf).filter((n) => statSync(join(leaf, n)).isDirectory())).toEqual([]); // nothing beside the test process
      // cpuset: not delegated by the slices. The error names the first level that does not pass it on, and the fix every one.
      expect(cpuset).toMatchObject({ ok: false, code: 'CGROUP_CONTROLLERS_MISSING' });
      expect(cpuset!.message).toContain(`cgroup ${rootPasses('cpuset') ? base : CG} does not pass the cpuset controller`);
      expect(cpuset!.fix).toMatch(/^enable them once, as root: echo "\+cpuset" > /);
      expect(spawnSync('sh', ['-c', cpuset!.fix!.replace(/^enable them once, as root: /, '')]).status).toBe(0);
      const [pinned] = run(into, user, [{ cpuset: '0' }]);
      expect(pinned, JSON.stringify(pinned)).toMatchObject({ ok: true, files: { 'cpuset.cpus': '0' } });
    } finally {
      userManager.kill('SIGKILL');
    }
  }, 300_000);

  test('no delegated cgroup above the test process: CGROUP_DELEGATION_MISSING, and its fix, run as given, makes limits work', () => {
    const leaf = mkcg(join(mkcg(`${base}-outside`), 'session'));
    const into = `echo $$ > ${leaf}/cgroup.procs &&`;
    const [refused] = run(into, user, [{ memory: '64m' }]);
    expect(refused).toMatchObject({ ok: false, code: 'CGROUP_DELEGATION_MISSING', message: expect.stringMatching(/no cgroup above this process is delegated to vtc-rootless/) });
    if (systemdBooted()) {
      expect(refused!.fix).toMatch(/systemd-run --user --scope -p Delegate=yes /); // (a systemd host: not run here)
      return;
    }
    // Without systemd: a cgroup of the user's own, the shell moved into a leaf of it, then the test command.
    const delegated = join(CG, `vtc-${user.name}`);
    made.push(delegated);
    expect(refused!.fix).toMatch(new RegExp(`^sudo sh -c '.*' && echo \\$\\$ \\| sudo tee ${delegated}/session/cgroup.procs && `));
    const script = `sudo() { "$@"; }; ${refused!.fix!.replace(/ && [^&]*$/, ' &&')}`; // the test command: the probe
    const [limited] = run(script, user, [{ memory: '64m', pids: 16 }]);
    expect(limited, JSON.stringify(limited)).toMatchObject({ ok: true, files: { 'memory.max': String(64 * 1024 * 1024), 'pids.max': '17' } });
    expect(dirname(limited!.cgroup!)).toBe(`/vtc-${user.name}/vitest-container`);
  }, 300_000);
});
