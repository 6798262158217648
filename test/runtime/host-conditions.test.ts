// The README's troubleshooting codes, each reached by arranging the host condition for
// real, in namespaces and copies of our own (the host's settings stay as they are):
// a cgroup v2 root that does not pass memory down, no C compiler, overlay refusing the
// image's tree. USER_NAMESPACES_DISABLED and _RESTRICTED: rootless.test.ts.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { tempDir } from '../image/helpers/host.ts';
import { isRoot } from '../helpers/host.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Runs `code` (an ES module body with `lib`, the package's src/runtime/index.ts, imported) in a fresh
 * Node, optionally under `sh -c prefix` (which ends by exec'ing Node: "$@"). Each line it prints
 * with report() comes back parsed.
 */
function runNode(code: string, opts: { prefix?: string[]; env?: NodeJS.ProcessEnv; packageDir?: string } = {}): unknown[] {
  const lib = JSON.stringify(join(opts.packageDir ?? repo, 'src', 'runtime', 'index.ts'));
  const body = `const lib = await import(${lib});
const report = (v) => console.log('REPORT ' + JSON.stringify(v));
const outcome = (p) => p.then(async (c) => { await c.wait?.(); return 'STARTED'; }, (e) => ({ code: e.code, name: e.name, message: e.message, fix: e.fix }));
${code}`;
  const argv = [process.execPath, '--input-type=module', '-e', body];
  const r = opts.prefix ? spawnSync(opts.prefix[0]!, [...opts.prefix.slice(1), ...argv], { encoding: 'utf8', env: opts.env, timeout: 120_000 })
    : spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: opts.env, timeout: 120_000 });
  const reports = r.stdout.split('\n').filter((l) => l.startsWith('REPORT ')).map((l) => JSON.parse(l.slice(7)) as unknown);
  if (!reports.length) throw new Error(`no report (exit ${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return reports;
}

/** The root of the cgroup2 mount, when it does not pass the memory controller down (a hybrid host such as this one). */
function unifiedRootWithoutMemory(): string | undefined {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.includes(' - cgroup2 '));
  const mountPoint = line?.split(' ')[4];
  if (!mountPoint) return undefined;
  return readFileSync(join(mountPoint, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('memory') ? undefined : mountPoint;
}
const unified = unifiedRootWithoutMemory();

describe.runIf(isRoot)('host conditions', () => {
  // Where the cgroup v2 root passes every controller down (the cgroup2 lane), limits.test.ts
  // reaches the code with a parent of its own that lacks one.
  test.runIf(unified)('CGROUP_CONTROLLERS_MISSING: cgroup v2 whose root does not pass memory down; a sandbox without limits still runs', () => {
    // A mount namespace where cgroup2 is the only hierarchy (the v1 ones unmounted there, not on the host):
    // as on a pure cgroup v2 host, with this hybrid host's cgroup2 root, which cannot have memory.
    const parent = `/vitest-container-controllers-${process.pid}`;
    const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8');
    const [limited, plain, driver] = runNode(`
      report(await outcome(lib.startContainer({ memory: '64m', cgroupParent: '${parent}', cmd: ['true'] })));
      report(await outcome(lib.startContainer({ cgroupParent: '${parent}', cmd: ['true'] })));
      report(lib.cgroupDriver()?.version);`,
    { prefix: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"', 'sh'] });
    expect(driver).toBe(2);
    expect(limited).toMatchObject({
      code: 'CGROUP_CONTROLLERS_MISSING', name: 'HostCapabilityError',
      message: expect.stringMatching(/cgroup \/sys\/fs\/cgroup does not pass the memory.* controller/),
      fix: expect.stringContaining('echo "+memory'),
    });
    expect(plain).toBe('STARTED');
    const made = existsSync(join(unified!, parent));
    if (made) rmdirSync(join(unified!, parent)); // (a regression must not leave it on the host)
    expect(made).toBe(false); // nothing was made in the tree
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toBe(hostMounts);
  });

  test('NATIVE_BUILD_FAILED: a copy of the package without a built runtime, and no C compiler on PATH', () => {
    const pkg = tempDir('native-build');
    cpSync(join(repo, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(repo, 'src'), join(pkg, 'src'), { recursive: true });
    mkdirSync(join(pkg, 'native'));
    for (const f of readdirSync(join(repo, 'native')).filter((n) => /\.[ch]$|^build\.mjs$/.test(n))) cpSync(join(repo, 'native', f), join(pkg, 'native', f));
    symlinkSync(join(repo, 'node_modules'), join(pkg, 'node_modules'));
    const start = `report(await outcome(lib.startContainer({ cmd: ['true'] })));`;
    const noCompiler = { HOME: pkg, PATH: join(pkg, 'no-compiler-here') };
    expect(runNode(start, { packageDir: pkg, env: noCompiler })).toEqual([{
      code: 'NATIVE_BUILD_FAILED', name: 'HostCapabilityError',
      message: expect.stringMatching(/no C compiler "cc" on PATH/), fix: expect.stringContaining('gcc'),
    }]);
    expect(existsSync(join(pkg, 'native', 'build', 'vtc-runtime'))).toBe(false);
    // doctor says the same before anything is started
    const doctor = spawnSync(process.execPath, [join(pkg, 'src', 'cli', 'main.ts'), 'doctor', '--json'], { encoding: 'utf8', env: noCompiler, timeout: 120_000 });
    const check = (JSON.parse(doctor.stdout) as { checks: { id: string; status: string; code?: string }[] }).checks.find((c) => c.id === 'native-helper');
    expect(check).toMatchObject({ status: 'fail', code: 'NATIVE_BUILD_FAILED' });
    // The compiler was the cause: with one on PATH the same copy builds its runtime and starts.
    expect(runNode(start, { packageDir: pkg, env: { HOME: pkg, PATH: process.env.PATH } })).toEqual(['STARTED']);
    expect(existsSync(join(pkg, 'native', 'build', 'vtc-runtime'))).toBe(true);
  });

  // BUG (reported to the lead, fails until fixed). What cannot be made here: a kernel without
  // overlayfs (ENODEV, the one case mapped to OVERLAY_UNAVAILABLE today): this kernel has it built
  // in, and the cgroup2 guest's own root is an overlay. What can: overlay refusing the image's
  // tree, as it does when tests run in a container inside a container (the tree is on an overlay
  // already stacked two deep; the kernel's limit). Today that is SANDBOX_SETUP_FAILED, and its
  // message gives the runtime's own probe's leftover ("Unknown parameter 'vtc-probe'") instead of
  // the kernel's reason.
  test('overlay unavailable for the image (stacking depth): OVERLAY_UNAVAILABLE with the kernel\'s reason', () => {
    const dir = tempDir('overlay-depth');
    mkdirSync(join(dir, 'tree', 'bin'), { recursive: true });
    cpSync('/bin/busybox', join(dir, 'tree', 'bin', 'busybox'));
    writeFileSync(join(dir, 'stack.sh'), `set -e
for level in one two; do
  mkdir "$D/$level"; mount -t tmpfs vtc "$D/$level"; mkdir "$D/$level/upper" "$D/$level/work" "$D/$level/merged"
  mount -t overlay vtc -o "lowerdir=$LOWER,upperdir=$D/$level/upper,workdir=$D/$level/work" "$D/$level/merged"
  LOWER="$D/$level/merged"
done
exec "$@"`);
    const [err] = runNode(`report(await outcome(lib.startContainer({ image: 'rootfs:${dir}/two/merged', cmd: ['/bin/busybox', 'true'] })));`, {
      prefix: ['unshare', '-m', '--propagation', 'private', 'sh', join(dir, 'stack.sh')], env: { ...process.env, D: dir, LOWER: join(dir, 'tree') },
    });
    expect(err).toMatchObject({ code: 'OVERLAY_UNAVAILABLE', message: expect.stringContaining('stacking depth'), fix: expect.any(String) });
  });
});
