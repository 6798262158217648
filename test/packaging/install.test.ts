// Installing the package as a user does: from its npm tarball, with npm 11 and with pnpm 10,
// on a PATH with no C compiler; then a real sandbox starts from an image whose unpacking needs
// koffi (a whiteout), with the prebuilt runtime. On an architecture without a prebuilt runtime
// it is built from source, and with no compiler either the error says what is missing.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { arch } from 'node:process';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { isRoot } from '../helpers/host.ts';
import { leftoverCgroups } from '../helpers/run-fixture.ts';
import { packedProject, packedTarball, pnpm, type Manager, type PackedProject } from '../helpers/packed-project.ts';
import { tarArchive } from '../image/helpers/tar-builder.ts';
import { writeImage } from '../image/helpers/oci-builder.ts';

// What npm and pnpm run (or ask approval for) when installing a package: npm 11 counts `prepare` too.
const LIFECYCLE_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare'];

/** An OCI layout: busybox and two files in one layer; the next deletes one of them (a whiteout, made with koffi's mknod). */
function writeWhiteoutImage(dir: string): void {
  const base = tarArchive([
    { name: 'bin/', type: 'dir', mode: 0o755 },
    { name: 'bin/busybox', data: readFileSync('/bin/busybox'), mode: 0o755 },
    ...['sh', 'cat', 'test', 'sleep'].map((tool) => ({ name: `bin/${tool}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc/', type: 'dir', mode: 0o755 },
    { name: 'etc/hello', data: 'hello from the image\n' },
    { name: 'etc/gone', data: 'deleted by the next layer\n' },
  ]);
  const upper = tarArchive([{ name: 'etc/', type: 'dir', mode: 0o755 }, { name: 'etc/.wh.gone', data: '' }]);
  writeImage(dir, [base, upper], { architecture: arch === 'arm64' ? 'arm64' : 'amd64', config: { Cmd: ['sleep', '3600'] } });
}

// The whole user story in one script: import the package, start a sandbox, run a command in it.
const START = `
import { withContainer } from 'vitest-environment-container';
try {
  const r = await withContainer({ image: './image', cgroupParent: process.env.VTC_CGROUP_PARENT },
    (c) => c.exec(['sh', '-c', 'cat /etc/hello; test -e /etc/gone || echo gone']));
  console.log(JSON.stringify(r));
} catch (err) {
  console.log(JSON.stringify({ error: { code: err.code, message: err.message, fix: err.fix } }));
}
`;

/** Install-output lines that mention this package together with scripts, builds or approval. */
function complaintsAboutUs(output: string): string[] {
  return output.split('\n').filter((l) => l.includes('vitest-environment-container') && /warn|script|build|approv|ignor|allow/i.test(l));
}

async function startSandbox(p: PackedProject, env: Record<string, string> = {}): Promise<{ result: Record<string, unknown>; output: string }> {
  const r = await p.node(['start.mjs'], env);
  expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
  const line = r.output.trim().split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`start.mjs printed no result (exit ${r.code}):\n${r.output}`);
  return { result: JSON.parse(line) as Record<string, unknown>, output: r.output };
}

test('the tarball: prebuilt runtimes for linux-x64 and linux-arm64, the C sources for other architectures, no install script', async () => {
  const t = await packedTarball();
  expect(t.files).toEqual(expect.arrayContaining(['native/prebuilt/linux-x64/vtc-runtime', 'native/prebuilt/linux-arm64/vtc-runtime', 'native/build.mjs', 'native/main.c']));
  expect(t.files.filter((f) => f.startsWith('native/build/'))).toEqual([]); // a developer's own build never ships
  const p = await packedProject({ manager: 'npm' });
  const manifest = JSON.parse(readFileSync(join(p.packageDir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  expect(Object.keys(manifest.scripts ?? {}).filter((s) => LIFECYCLE_SCRIPTS.includes(s))).toEqual([]);
}, 600_000);

describe.runIf(isRoot).each<Manager>(['npm', 'pnpm'])('installed with %s from the tarball, with no C compiler on PATH', (manager) => {
  let project: PackedProject | undefined;

  beforeAll(async () => {
    if (manager === 'pnpm' && !(await pnpm())) return;
    project = await packedProject({ manager, fresh: true, packageJson: { type: 'module' }, files: { 'start.mjs': START, } });
    writeWhiteoutImage(join(project.dir, 'image'));
  }, 600_000);

  test('installs without an approval prompt or a warning about this package\'s scripts', ({ skip }) => {
    if (!project) return skip('pnpm 10 could not be installed');
    expect(project.install.code).toBe(0);
    expect(complaintsAboutUs(project.install.output)).toEqual([]);
  });

  test('a sandbox starts from an image (unpacked with koffi) with the prebuilt runtime: nothing is compiled', async ({ skip }) => {
    if (!project) return skip('pnpm 10 could not be installed');
    const { result, output } = await startSandbox(project);
    expect(result, output).toEqual({ exitCode: 0, stdout: 'hello from the image\ngone\n', stderr: '' });
    expect(existsSync(join(project.packageDir, 'native', 'build'))).toBe(false);
  }, 120_000);

  test.runIf(manager === 'npm')('without a prebuilt runtime for this architecture: NATIVE_BUILD_FAILED names the missing compiler; with one, it is built from source', async () => {
    const p = project!;
    // An architecture the package has no binary for looks exactly like this to the runtime.
    rmSync(join(p.packageDir, 'native', 'prebuilt', `linux-${arch}`), { recursive: true });
    const { result } = await startSandbox(p);
    const error = result.error as { code: string; message: string; fix: string };
    expect(error.code).toBe('NATIVE_BUILD_FAILED');
    expect(error.message).toContain(`there is no prebuilt runtime for linux-${arch} (the package ships linux-x64 and linux-arm64)`);
    expect(error.message).toContain('no C compiler "cc" on PATH');
    expect(error.fix).toMatch(/apt-get install gcc libc6-dev/);
    // The fix, applied: a compiler on PATH.
    const built = await startSandbox(p, { PATH: `${dirname(process.execPath)}:/usr/bin:/bin` });
    expect(built.result, built.output).toEqual({ exitCode: 0, stdout: 'hello from the image\ngone\n', stderr: '' });
    expect(existsSync(join(p.packageDir, 'native', 'build', 'vtc-runtime'))).toBe(true);
  }, 120_000);
});
